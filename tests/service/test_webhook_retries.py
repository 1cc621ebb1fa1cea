"""One signed alert trades once: replayed, retried after a 503, or sent again after a restart.

Each test runs a real paper bot (``BotController``, ``external-signal`` with pyramiding, the
bundled EURUSD hours) behind the real HTTP server and webhook, and signs its requests the way
``service/webhook.py``'s docstring and ``docs/signals.md`` say
(``tests/service/webhook_client.sign``, written apart from the server's code).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.service.paper_bots import (
    SIGNALS,
    paper_controller,
    paper_manifest,
    short_eurusd,
    wait_for_a_bar,
)
from tests.service.webhook_client import WEBHOOK_PATH, sign, signal_body
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import Signal, SignalResult
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.service.http_server import HttpServer, build_app
from tradefleet_runtime.service.webhook import WebhookConfig, add_webhook_routes
from tradefleet_runtime.service.webhook_routes import webhook_routes

KEY = b"retry-trader-key-0123456789abcdef-0123456789"
LEVELS = {"entry": 1.05, "stop_loss": 1.04, "take_profit": 1.07, "current_price": 1.05}
BODY = signal_body(price_levels=LEVELS, volume=1000)


def _post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", WEBHOOK_PATH, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _root_order_ids(journal: Journal) -> set[str]:
    """Every entry order the bot ever journaled, over all its runs."""
    rows = journal.query("SELECT client_order_id FROM orders WHERE parent_id IS NULL")
    return {str(row[0]) for row in rows}


def _keys(folder: Path) -> Path:
    keys = folder / "keys"
    keys.mkdir(exist_ok=True)
    (keys / "default").write_bytes(KEY + b"\n")  # as `openssl rand -hex 32 > default` leaves it
    return keys


@contextmanager
def _serving(controller: BotController, routes: Callable[[web.Application], None]) -> Iterator[int]:
    """``controller`` started behind the HTTP server with ``routes``, at its first bar: the
    server's port. Both stopped on the way out."""
    server = HttpServer(build_app(controller, routes), "127.0.0.1", 0)
    port = server.start()
    controller.start()
    try:
        wait_for_a_bar(controller)
        yield port
    finally:
        server.stop()
        controller.stop()
        controller.wait(20)


@contextmanager
def _served(folder: Path, journal: Journal) -> Iterator[tuple[BotController, int]]:
    """The bot as ``tradefleet serve --webhook-keys`` wires it, at its first bar."""
    controller = paper_controller(paper_manifest("tv-bot", SIGNALS, short_eurusd(folder)), journal)
    with _serving(controller, webhook_routes(controller, _keys(folder))) as port:
        yield controller, port


@contextmanager
def _served_slowly(folder: Path, journal: Journal) -> Iterator[tuple[BotController, int]]:
    """The same bot, but its venue answers the first signal after 1 s and the webhook waits
    0.3 s: the 503 ``unavailable`` of a bot that may still act on it (the default wait is
    10 s)."""
    controller = paper_controller(paper_manifest("tv-bot", SIGNALS, short_eurusd(folder)), journal)

    calls: list[Signal] = []

    def slow(signal: Signal) -> SignalResult:
        calls.append(signal)
        if len(calls) == 1:  # the first signal's venue round trip; later answers are prompt
            time.sleep(1.0)
        return controller.submit_signal(signal)

    async def submit(signal: Signal) -> SignalResult:
        return await asyncio.get_running_loop().run_in_executor(None, slow, signal)

    def add(app: web.Application) -> None:
        add_webhook_routes(
            app,
            config=WebhookConfig(keys_dir=_keys(folder), submit_timeout_s=0.3),
            submit=submit,
            known_symbols=lambda: ("EURUSD",),
            requests_total=controller.metrics.webhook_requests,
            bot="tv-bot",
        )

    with _serving(controller, add) as port:
        yield controller, port


def test_a_captured_request_replayed_after_a_restart_without_its_nonce_does_not_trade_again(
    tmp_path: Path,
) -> None:
    """The nonce is not signed: a captured request replayed within the window after the bot
    restarted (a spec edit rolls the pod), with the ``X-Tradefleet-Nonce`` header removed or
    replaced, is still the same signal (its id comes from the signature only), which the
    journal answers with the first order: nothing new is placed."""
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    now = int(time.time())
    captured = sign(KEY, BODY, now, nonce="tv-1")
    with _served(tmp_path, journal) as (_controller, port):
        status, first = _post(port, BODY, captured)
    journal.close()
    assert status == 202, first

    journal = Journal(tmp_path / "j.sqlite", durable=True)
    stripped = {k: v for k, v in captured.items() if k != "X-Tradefleet-Nonce"}
    replaced = {**captured, "X-Tradefleet-Nonce": "evil-2"}
    with _served(tmp_path, journal) as (_controller, port):
        answers = [_post(port, BODY, stripped), _post(port, BODY, replaced)]
    orders = _root_order_ids(journal)
    journal.close()

    for status, answer in answers:
        assert (status, answer.get("client_order_id")) == (202, first["client_order_id"]), answer
        assert answer["signal_id"] == first["signal_id"]
    assert orders == {first["client_order_id"]}


def test_the_same_request_sent_again_after_a_503_is_in_progress_then_gets_the_first_order(
    tmp_path: Path,
) -> None:
    """After a 503 ("the bot may still act on it") the documented retry is the same request
    again, not re-signed: while the bot still handles the signal the answer is ``409
    in_progress`` with ``Retry-After``; once it has, the 202 with the order it placed. One
    alert, one order."""
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    request = sign(KEY, BODY, int(time.time()))  # no nonce: a TradingView relay has none
    with _served_slowly(tmp_path, journal) as (controller, port):
        first = _post(port, BODY, request)
        working = _post(port, BODY, request)
        time.sleep(1.5)  # the bot went on and placed the order
        retry = _post(port, BODY, request)
        entries = [o for o in controller.list_orders(True) if o.parent_id is None]
    journal.close()
    assert first[0] == 503, first
    assert (working[0], working[1]["outcome"]) == (409, "in_progress"), working
    assert len(entries) == 1
    assert (retry[0], retry[1].get("client_order_id")) == (202, entries[0].client_order_id)


def test_a_re_signed_request_under_a_nonce_already_used_is_refused_not_traded(
    tmp_path: Path,
) -> None:
    """A sender still following the old advice (after a 503, re-sign with a fresh timestamp
    and the same nonce) sends a new signed request: the bot refuses it ``409 replay`` naming
    the retry rule instead of placing a second order."""
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    now = int(time.time())
    with _served_slowly(tmp_path, journal) as (controller, port):
        first = _post(port, BODY, sign(KEY, BODY, now, nonce="tv-alert-1"))
        time.sleep(1.5)
        status, retry = _post(port, BODY, sign(KEY, BODY, now + 1, nonce="tv-alert-1"))
        entries = [o for o in controller.list_orders(True) if o.parent_id is None]
    journal.close()
    assert first[0] == 503, first
    assert len(entries) == 1
    assert (status, retry["outcome"]) == (409, "replay"), retry
    assert "same timestamp and body" in retry["reason"]
