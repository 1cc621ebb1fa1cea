"""A request an older release journaled under its id then is not traded again after an upgrade.

Before the webhook's ids came from the signature, a request with a nonce was journaled as
``KEYID:NONCE``; later as ``KEYID:sig-<hash>``; now ``key-<fingerprint>:sig-<hash>``. The
upgrade rolls the pod: a sender whose request the old pod handled while being killed gets no
answer and resends the same request within the window, as the docs say. The new bot answers it
from the row the journal holds under the old id (same content); the old id never names a new
signal (the nonce is unsigned).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.service.paper_bots import (
    SIGNALS,
    at_first_bar,
    eurusd_signal,
    paper_controller,
    paper_manifest,
    short_eurusd,
)
from tests.service.test_webhook_retries import BODY, KEY, _keys, _post, _root_order_ids
from tests.service.webhook_client import sign
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.service.http_server import HttpServer, build_app
from tradefleet_runtime.service.webhook import former_signal_ids, parse_signal_body
from tradefleet_runtime.service.webhook_routes import webhook_routes


@contextmanager
def _served(folder: Path, journal: Journal) -> Iterator[tuple[BotController, int]]:
    """The bot behind its webhook as ``tradefleet serve`` wires it (``webhook_routes``: told
    the former ids), at its first bar."""
    controller = paper_controller(paper_manifest("tv-bot", SIGNALS, short_eurusd(folder)), journal)
    server = HttpServer(
        build_app(controller, webhook_routes(controller, _keys(folder))), "127.0.0.1", 0
    )
    port = server.start()
    try:
        with at_first_bar(controller):
            yield controller, port
    finally:
        server.stop()


def _upgrade_retry(tmp_path: Path, old_id: str, request: dict[str, str]) -> None:
    """``request``: the signed request the old pod journaled under ``old_id``, resent as is.
    (Signed once by the caller: signing it again a second later gives another signature, so
    another id, and the resend would be a new alert: a fresh-clone CI run failed so.)"""
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    with _served(tmp_path, journal) as (controller, _port):
        # the old webhook's way: the same checked body, journaled under the old id
        old = parse_signal_body(BODY).to_signal(signal_id=old_id, received_at=time.time())
        first = controller.submit_signal(old)
    journal.close()
    assert first.accepted, first

    journal = Journal(tmp_path / "j.sqlite", durable=True)  # the upgraded pod, same volume
    with _served(tmp_path, journal) as (_controller, port):
        status, retry = _post(port, BODY, request)  # the sender's retry: the same request
    orders = _root_order_ids(journal)
    journal.close()
    assert orders == {first.client_order_id}, f"one alert, two orders: {sorted(orders)}"
    assert status == 202 and retry["client_order_id"] == first.client_order_id, retry


def test_a_request_journaled_under_its_nonce_id_is_answered_after_the_upgrade(
    tmp_path: Path,
) -> None:
    request = sign(KEY, BODY, int(time.time()), nonce="tv-alert-1")
    _upgrade_retry(tmp_path, "default:tv-alert-1", request)


def test_a_request_journaled_under_its_key_id_and_signature_is_answered_after_the_upgrade(
    tmp_path: Path,
) -> None:
    request = sign(KEY, BODY, int(time.time()))
    digest = request["X-Tradefleet-Signature"].removeprefix("sha256=")
    [old_id] = former_signal_ids("default", None, digest)
    _upgrade_retry(tmp_path, old_id, request)


def test_a_former_id_only_answers_the_same_content_and_never_records(tmp_path: Path) -> None:
    """A former id journaled with other content (a sender reusing a nonce for another alert)
    is not this signal: it is handled as new, under its own id; nothing is written under the
    former id."""
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    bot = paper_controller(paper_manifest("tv-bot", SIGNALS, short_eurusd(tmp_path)), journal)
    with at_first_bar(bot):
        first = bot.submit_signal(eurusd_signal("default:n-1"))
        other = dataclasses.replace(eurusd_signal("key-ab:sig-1"), volume=2000.0)
        second = bot.submit_signal(other, former_ids=("default:n-1", "default:n-2"))
    rows = journal.query("SELECT signal_id FROM signals ORDER BY signal_id")
    journal.close()
    assert first.accepted and second.accepted, (first, second)
    assert second.client_order_id != first.client_order_id
    assert [r[0] for r in rows] == ["default:n-1", "key-ab:sig-1"]
