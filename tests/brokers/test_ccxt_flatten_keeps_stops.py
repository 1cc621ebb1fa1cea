"""An emergency flatten through the ccxt broker keeps a position's stop at the venue until the
close has filled.

Linear futures (the fake Binance USDⓈ-M and Bybit): the stop-loss and take-profit are reduce-only
conditional orders, the close a reduce-only market order; a close the venue refuses leaves the
stop working there. Spot (the fake Binance spot): the stop-loss and take-profit are one OCO list
holding the coin, and no reduce-only caps a close at the bot's position: a close sent beside them
is refused on an account funded in USDT only, and sells the account's other coins beside a
take-profit that fills on one holding more. So on spot the bot cancels them first and sends the
close once the venue has confirmed the cancel (``SpotCloses``).
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


def test_on_spot_the_stop_and_target_are_cancelled_before_the_close(tmp_path: Path) -> None:
    """The close is sent once, after the venue confirmed the OCO's cancel: never refused for
    the coin the OCO holds (it was, then sent again, before ``SpotCloses``)."""
    with coinless_spot(tmp_path) as harness:
        engine, journal, guards = _guarded(harness)
        held = engine.position(harness.symbol).quantity
        assert held > 0.0 and base_balance(harness)[1] == Decimal(str(held))  # the OCO holds it
        assert engine.halt("alice", "incident", flatten=True)
        [(message, flattened)] = _events(journal, "flattened")
        assert flattened["waiting"] == {harness.symbol: sorted(guards)}
        assert "confirm the cancel" in message
        _until(
            engine,
            lambda: engine.position(harness.symbol).quantity == 0.0 and not engine.open_orders(),
        )
        assert not _events(journal, "flatten_exits_cancelled")  # no close was refused
        assert base_balance(harness) == (Decimal(0), Decimal(0))
        assert all(_venue_status(harness, g) is OrderStatus.CANCELLED for g in guards)
        assert journal.flatten_owed(engine.config.bot_name) is None
        assert not _events(journal, "flatten_failed")
        _each_id_once(harness)


def test_on_spot_with_other_coins_a_target_that_fills_leaves_nothing_sold_twice(
    tmp_path: Path,
) -> None:
    """Walkthrough W21: an account holding a person's own coins beside the bot's. The close
    used to go at once beside the kept OCO (the venue took it from the person's coins), and a
    take-profit that filled before its cancel landed sold the bot's too: twice what the bot
    held, the surplus bought back at market. Now the OCO is cancelled first; a take-profit the
    market reaches before that cancel lands closes the position alone."""
    persons = Decimal("0.5")
    with coinless_spot(tmp_path) as harness:
        with harness.fake.state.lock:
            harness.fake.state.accounts[harness.fake.api_key].spot_free["BTC"] = persons
        engine, journal, _guards = _guarded(harness)
        held = Decimal(str(engine.position(harness.symbol).quantity))
        assert engine.halt("alice", "incident", flatten=True)
        harness.trade_through(TP + 500)  # before the OCO's cancel is heard
        _until(
            engine,
            lambda: engine.position(harness.symbol).quantity == 0.0 and not engine.open_orders(),
        )
        with harness.fake.state.lock:
            orders = harness.fake.orders("spot")
            sold = sum((o.executed_qty for o in orders if o.side == "SELL"), Decimal(0))
            bought = sum((o.executed_qty for o in orders if o.side == "BUY"), Decimal(0))
        assert sold == held and bought > 0  # the entry, and one sale of what it bought
        assert sum(base_balance(harness)) == persons  # the person's coins untouched
        assert journal.flatten_owed(engine.config.bot_name) is None
        _each_id_once(harness)
