"""Planted credentials in the ccxt broker's Secret files appear in no log line, error, event,
report or journal byte — through orders, refusals, timeouts, a rate limit, a rotation to a
wrong secret (the venue refuses the signature) and a refused connect.

(The serve-level planted-secret test, ``tests/e2e/test_serve_observability.py``, covers the
control tokens and webhook keys; a live ``serve`` run with this broker joins it when the
runtime serves live bots.)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from tests.venues.binance.server import FakeBinance
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams
from tradefleet_runtime.journal.sqlite import Journal
from tradefleet_runtime.sdk import (
    BrokerContext,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Side,
)

PLANTED_KEY = "PLANTEDkey7Qx2Vb9LmN4pR8sT1uW6yZ3aC5dE0fG"
PLANTED_SECRET = "PLANTEDsecret9Hj2Kl5Mn8Pq1Rs4Tu7Vw0Xy3Za6Bc"
PLANTED_ROTATED = "PLANTEDrotated1Aa2Bb3Cc4Dd5Ee6Ff7Gg8Hh9Ii0"
PLANTED = (PLANTED_KEY, PLANTED_SECRET, PLANTED_ROTATED)
SYMBOL = "BTCUSDT"


def _write(folder: Path, key: str, secret: str) -> None:
    (folder / "apiKey").write_text(key + "\n")
    (folder / "secret").write_text(secret + "\n")
    for name in ("apiKey", "secret"):
        stat = (folder / name).stat()
        os.utime(folder / name, (stat.st_atime, stat.st_mtime + 1))


def _wait(broker: CcxtBroker, seen: list[Any], cid: str) -> None:
    import time

    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        seen.extend(broker.drain_events())
        if any(
            isinstance(e, OrderUpdate) and e.client_order_id == cid and e.status.is_final
            for e in seen
        ) or any(
            isinstance(e, OrderUpdate) and e.client_order_id == cid and e.status is OrderStatus.OPEN
            for e in seen
        ):
            return
        time.sleep(0.02)
    raise AssertionError(f"no answer for {cid}: {seen}")


def test_planted_credentials_appear_in_no_log_error_event_or_journal_byte(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeBinance(default_account=False).start()
    fake.add_account(PLANTED_KEY, PLANTED_SECRET, spot={"USDT": 100_000, "BTC": 1})
    fake.set_price(SYMBOL, 50_000, market="spot")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    _write(credentials, PLANTED_KEY, PLANTED_SECRET)
    params = CcxtBrokerParams(
        exchange="binance",
        api_url=fake.url,
        poll_interval_s=0.05,
        timeout_ms=1000,
        backoff_base_s=0.05,
        max_retries=2,
    )
    seen: list[Any] = []
    texts: list[str] = []
    broker = CcxtBroker(params)
    context = BrokerContext("secret-bot", "live", (SYMBOL,), "USDT", 1e5, credentials)
    try:
        broker.connect(context)
        fake.faults.inject("accept_then_timeout", path="/api/v3/order", method="POST", hold_s=2)
        fake.faults.inject("rate_limit", path="/api/v3/order", method="POST", retry_after=1)
        fake.faults.inject(
            "reject",
            path="/api/v3/order",
            method="POST",
            code=-2010,
            msg="Account has insufficient balance for requested action.",
        )
        for i, order_type in enumerate(
            (OrderType.LIMIT, OrderType.LIMIT, OrderType.LIMIT, OrderType.MARKET)
        ):
            cid = f"sec{i}"
            price = 45_000.0 if order_type is OrderType.LIMIT else None
            seen.append(broker.submit(Order(cid, SYMBOL, Side.BUY, 0.01, order_type, price)))
            _wait(broker, seen, cid)
        broker.amend("sec0", None, 44_000.0)
        seen.append(broker.query_order("sec0"))
        seen.extend(broker.order_reports(0))
        seen.extend(broker.fill_reports(0))
        seen.extend(broker.position_reports())
        # Rotation to a secret the venue does not know: every signed request is refused.
        _write(credentials, PLANTED_KEY, PLANTED_ROTATED)
        seen.append(broker.submit(Order("sec9", SYMBOL, Side.BUY, 0.01, OrderType.LIMIT, 45_000.0)))
        _wait(broker, seen, "sec9")
        try:
            broker.query_order("sec0")
        except Exception as error:  # refused: its words are checked too
            texts.append(f"{type(error).__name__}: {error!r} {error}")
        broker.cancel_all(SYMBOL)
        texts.append(repr(broker.is_connected()))
    finally:
        broker.close()
    # A connect the venue refuses: the error names the venue, never the key.
    refused = CcxtBroker(params)
    try:
        refused.connect(context)
    except Exception as error:
        texts.append(f"{type(error).__name__}: {error!r} {error} {error.__cause__!r}")
    finally:
        refused.close()
    fake.stop()
    assert any(
        isinstance(e, OrderUpdate)
        and e.status is OrderStatus.REJECTED
        and e.client_order_id == "sec9"
        for e in seen
    ), "the rotated (wrong) secret was really used"
    journal_path = tmp_path / "journal.sqlite"
    journal = Journal(journal_path)
    journal.start_run(
        run_id="r1",
        bot="secret-bot",
        mode="live",
        currency="USDT",
        initial_capital=1e5,
        timeframe_s=60,
        config_hash="x",
        manifest={},
    )
    for event in seen:
        if isinstance(event, OrderUpdate):
            journal.update_order(
                event.client_order_id, event.status, event.ts, event.reason, event.venue_order_id
            )
            journal.record_event(event.ts, "order", event.reason, {"code": event.code.value})
        elif isinstance(event, Fill):
            journal.record_fill(event, Position(event.symbol, event.quantity), OrderStatus.FILLED)
    journal.flush()
    journal.close()
    texts += [repr(e) for e in seen]
    texts += [caplog.text]
    texts += [f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records]
    texts += [repr(params), params.model_dump_json(), repr(broker)]
    everything = "\n".join(texts)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("journal.sqlite*"))
    assert "sec1" in everything and len(caplog.records) > 0  # the outputs were collected
    for secret in PLANTED:
        assert secret not in everything
        assert secret.encode() not in raw
