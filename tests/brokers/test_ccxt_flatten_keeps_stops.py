"""An emergency flatten through the ccxt broker keeps a position's stop at the venue until the
close has filled.

Linear futures (the fake Binance USDⓈ-M and Bybit): the stop-loss and take-profit are reduce-only
conditional orders, the close a reduce-only market order; a close the venue refuses leaves the
stop working there. Spot (the fake Binance spot, an account funded in USDT only): the
stop-loss and take-profit are one OCO list holding the coin, so the venue refuses a close while
they rest; the bot cancels them and sends the close once the venue has confirmed the cancel.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.harness import (
    BOT,
    ORDER_PATH,
    QUANTITY,
    START_PRICE,
    VenueHarness,
    base_balance,
    coinless_spot,
    harness_for,
)
from tests.runtime.helpers import Scripted, start_test_run
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderStatus

SL, TP = 48_000.0, 52_000.0
FUTURES = ("binance-usdm", "bybit")


def _engine(harness: VenueHarness) -> tuple[Engine, Journal]:
    """A live engine on the harness's broker that buys ``QUANTITY`` with SL/TP on its bar."""
    journal = Journal(":memory:")
    start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)
    symbol = harness.symbol
    config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)
    buy = Scripted({0: lambda ctx, _bar: ctx.buy(symbol, QUANTITY, stop_loss=SL, take_profit=TP)})
    broker = harness.broker
    engine = Engine(config, buy, broker, journal, venue=broker, brackets=broker)
    now = int(time.time()) // 60 * 60 - 60
    engine.run([Bar(symbol, 60, now, START_PRICE, START_PRICE, START_PRICE, START_PRICE, 1.0)])
    return engine, journal


def _until(engine: Engine, done: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; working: {engine.open_orders()}")
        engine.pump()
        time.sleep(0.02)


def _venue_status(harness: VenueHarness, client_order_id: str) -> OrderStatus | None:
    report = harness.broker.query_order(client_order_id)
    return None if report is None else report.status


def _guarded(harness: VenueHarness) -> tuple[Engine, Journal, list[str]]:
    engine, journal = _engine(harness)
    entry = engine.last_order_id
    guards = [f"{entry}-sl", f"{entry}-tp"]
    _until(
        engine,
        lambda: (
            all(_venue_status(harness, g) is OrderStatus.OPEN for g in guards)
            and {o.client_order_id for o in engine.open_orders()} == set(guards)
        ),
    )
    return engine, journal, guards


def _each_id_once(harness: VenueHarness) -> None:
    """No client order id twice at the venue (the engine drained the broker's events, so the
    harness's own match of events against the venue does not apply)."""
    ids = harness.venue_client_ids()
    assert len(ids) == len(set(ids)), ids


def _events(journal: Journal, kind: str) -> list[tuple[str, dict[str, object]]]:
    rows = journal.query("SELECT message, data FROM events WHERE kind = ? ORDER BY id", kind)
    return [(str(message), json.loads(data) if data else {}) for message, data in rows]


# A refusal of the close, as each venue words it (neither is about funds or reduce-only).
REFUSAL = {
    "binance-usdm": {
        "code": -4131,
        "msg": "The counterparty's best price does not meet the PERCENT_PRICE filter limit.",
    },
    "bybit": {"code": 10001, "msg": "params error: the price band does not allow it"},
}


@pytest.mark.parametrize("venue", FUTURES)
def test_on_futures_a_refused_close_leaves_the_stop_working_at_the_venue(
    tmp_path: Path, venue: str
) -> None:
    with harness_for(venue, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, journal, guards = _guarded(harness)
        harness.fake.faults.inject(
            "reject", path=ORDER_PATH[venue], method="POST", **REFUSAL[venue]
        )
        assert engine.halt("alice", "incident", flatten=True)
        _until(engine, lambda: bool(_events(journal, "flatten_failed")))
        [(message, data)] = _events(journal, "flatten_failed")
        assert data["guards"] == guards and str(REFUSAL[venue]["msg"])[:20] in message
        assert all(_venue_status(harness, g) is OrderStatus.OPEN for g in guards)
        assert engine.position(harness.symbol).quantity == QUANTITY

        # Another emergency stop with flatten, the venue taking orders again: flat, and the
        # stop and take-profit are cancelled once the close has filled.
        assert not engine.halt("alice", "incident", flatten=True)
        _until(
            engine,
            lambda: engine.position(harness.symbol).quantity == 0.0 and not engine.open_orders(),
        )
        assert all(_venue_status(harness, g) is OrderStatus.CANCELLED for g in guards)
        assert journal.flatten_owed(engine.config.bot_name) is None
        _each_id_once(harness)


@pytest.mark.parametrize("venue", FUTURES)
def test_on_futures_the_stop_works_at_the_venue_until_the_close_filled(
    tmp_path: Path, venue: str
) -> None:
    with harness_for(venue, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, journal, guards = _guarded(harness)
        harness.fake.faults.inject("latency", path=ORDER_PATH[venue], method="POST", delay_ms=600)
        assert engine.halt("alice", "incident", flatten=True)
        time.sleep(0.3)  # the close is on its way, unanswered
        engine.pump()
        assert engine.position(harness.symbol).quantity == QUANTITY
        assert all(_venue_status(harness, g) is OrderStatus.OPEN for g in guards)
        _until(
            engine,
            lambda: engine.position(harness.symbol).quantity == 0.0 and not engine.open_orders(),
        )
        assert all(_venue_status(harness, g) is OrderStatus.CANCELLED for g in guards)
        assert journal.flatten_owed(engine.config.bot_name) is None
        assert not _events(journal, "flatten_failed")
        _each_id_once(harness)


def test_on_spot_the_close_goes_once_the_venue_released_the_coin(tmp_path: Path) -> None:
    with coinless_spot(tmp_path) as harness:
        engine, journal, guards = _guarded(harness)
        held = engine.position(harness.symbol).quantity
        assert held > 0.0 and base_balance(harness)[1] == Decimal(str(held))  # the OCO holds it
        assert engine.halt("alice", "incident", flatten=True)
        _until(
            engine,
            lambda: engine.position(harness.symbol).quantity == 0.0 and not engine.open_orders(),
        )
        [(message, _)] = _events(journal, "flatten_exits_cancelled")
        assert "insufficient balance" in message.lower()
        assert base_balance(harness) == (Decimal(0), Decimal(0))
        assert all(_venue_status(harness, g) is OrderStatus.CANCELLED for g in guards)
        assert journal.flatten_owed(engine.config.bot_name) is None
        assert not _events(journal, "flatten_failed")
        _each_id_once(harness)
