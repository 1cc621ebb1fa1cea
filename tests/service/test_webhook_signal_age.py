"""A webhook alert's age counts from its signed timestamp (walkthrough W24).

The webhook handed the bot ``received_at`` = the moment the request arrived, never the signed
``X-Tradefleet-Timestamp``, and the controller answers within ``COMMAND_TIMEOUT_S`` or drops the
command: ``external-signal``'s ``max_signal_age_s`` could never refuse a webhook alert, and a bot
set to 60 s traded an alert signed 240 s ago (inside the webhook's 300 s window).

A real paper bot behind the real HTTP server and webhook, signed as a sender does
(``tests/service/webhook_client``).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.service.paper_bots import (
    paper_controller,
    paper_manifest,
    short_eurusd,
    wait_for_a_bar,
)
from tests.service.webhook_client import WEBHOOK_PATH, sign, signal_body
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.http_server import HttpServer, build_app
from tradefleet_runtime.service.webhook_routes import webhook_routes

KEY = b"signal-age-key-0123456789abcdef-0123456789abcdef"
LEVELS = {"entry": 1.05, "stop_loss": 1.04, "take_profit": 1.07, "current_price": 1.05}
BODY = signal_body(price_levels=LEVELS, volume=1000)
STRATEGY = {
    "name": "external-signal",
    "params": {"max_signal_age_s": 60, "allow_pyramiding": True},
}


def _post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", WEBHOOK_PATH, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@contextmanager
def _served(folder: Path) -> Iterator[int]:
    journal = Journal(folder / "j.sqlite", durable=True)
    keys = folder / "keys"
    keys.mkdir()
    (keys / "default").write_bytes(KEY + b"\n")
    controller = paper_controller(paper_manifest("tv-bot", STRATEGY, short_eurusd(folder)), journal)
    server = HttpServer(build_app(controller, webhook_routes(controller, keys)), "127.0.0.1", 0)
    port = server.start()
    controller.start()
    try:
        wait_for_a_bar(controller)
        yield port
    finally:
        server.stop()
        controller.stop()
        controller.wait(20)
        journal.close()


def test_a_fresh_alert_is_traded(tmp_path: Path) -> None:
    """The same alert signed now is accepted (the bot takes signals)."""
    with _served(tmp_path) as port:
        status, answer = _post(port, BODY, sign(KEY, BODY, int(time.time())))
    assert (status, answer["outcome"]) == (202, "accepted"), answer


def test_an_alert_older_than_max_signal_age_is_not_traded(tmp_path: Path) -> None:
    """Signed 240 s ago (inside the 300 s window, so not ``410 stale``) on a bot whose strategy
    refuses signals older than 60 s: refused, not traded."""
    with _served(tmp_path) as port:
        status, answer = _post(port, BODY, sign(KEY, BODY, int(time.time()) - 240))
    assert status == 422, answer
    assert answer["outcome"] == "refused" and "stale" in answer["reason"], answer
