"""A native trailing stop (a risk plugin's MOVE_STOP) through the ccxt broker, against the fake
Binance USDⓈ-M and Bybit linear venues.

Binance USDⓈ-M cannot modify a conditional order: the moved stop is placed under a derived id
(``<id>-a<n>``) and only then is the old one cancelled, so the position is never without a
stop at the venue; the broker answers under the bot's id. Bybit amends the conditional order's
trigger price in place (``/v5/order/amend``). A venue refusal leaves the old stop working.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.harness import BOT, QUANTITY, START_PRICE, VenueHarness, harness_for
from tests.brokers.stop_movers import Mover
from tests.runtime.helpers import Scripted, start_test_run
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderStatus, OrderType

SL, MOVED = 48_000.0, 49_000.0
FUTURES = ("binance-usdm", "bybit")
# Where each venue takes the stop's move: a fault aimed there refuses the move.
MOVE_PATH = {"binance-usdm": "/fapi/v1/algoOrder", "bybit": "/v5/order/amend"}
REFUSAL = {
    "binance-usdm": {"code": -2021, "msg": "Order would immediately trigger."},
    "bybit": {"code": 10001, "msg": "params error: TriggerPrice invalid"},
}


def _bar(harness: VenueHarness, i: int, close: float) -> Bar:
    now = int(time.time()) // 60 * 60 - 120
    return Bar(harness.symbol, 60, now + i * 60, close, close, close, close, 1.0)


def _until(engine: Engine, done: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; working: {engine.open_orders()}")
        engine.pump()
        time.sleep(0.02)


def _stop_price(engine: Engine) -> float | None:
    stops = [o for o in engine.open_orders() if o.order_type is OrderType.STOP]
    return stops[0].price if len(stops) == 1 else None


def _guarded(harness: VenueHarness, mover: Mover) -> tuple[Engine, Journal, str]:
    """A live bot long ``QUANTITY`` with its stop-loss at ``SL`` working at the venue."""
    journal = Journal(":memory:")
    start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)
    symbol = harness.symbol
    config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)
    buy = Scripted({0: lambda ctx, _bar: ctx.buy(symbol, QUANTITY, stop_loss=SL)})
    hooks = RiskHooks(bar_observers=(("trail", mover),), actors=(("trail", mover),))
    broker = harness.broker
    engine = Engine(config, buy, broker, journal, venue=broker, brackets=broker, hooks=hooks)
    engine.run([_bar(harness, 0, START_PRICE)])
    stop = f"{engine.last_order_id}-sl"
    _until(
        engine,
        lambda: (
            (r := broker.query_order(stop)) is not None
            and r.status is OrderStatus.OPEN
            and _stop_price(engine) == SL
            and engine.position(symbol).quantity == pytest.approx(QUANTITY)
        ),
    )
    return engine, journal, stop


def _venue_stops(harness: VenueHarness) -> list[tuple[str, Decimal, str]]:
    """(venue client id, trigger price, status) of every conditional order at the venue."""
    state = harness.fake.state
    with state.lock:
        if harness.name == "bybit":
            return [
                (o.link_id, o.trigger_price, o.status)
                for o in harness.fake.orders()
                if o.trigger_price
            ]
        return [
            (a.client_algo_id, a.trigger_price, a.status) for a in state.usdm.algo_orders.values()
        ]


def _working_triggers(harness: VenueHarness) -> list[Decimal]:
    working = ("NEW", "Untriggered")
    return [price for _cid, price, status in _venue_stops(harness) if status in working]


def _decisions(journal: Journal) -> list[tuple[Any, ...]]:
    return journal.query(
        "SELECT action, code, reason FROM risk_decisions WHERE plugin = 'trail' ORDER BY id"
    )


@pytest.mark.parametrize("venue", FUTURES)
def test_a_moved_stop_works_at_the_venue_at_its_new_trigger(tmp_path: Path, venue: str) -> None:
    with harness_for(venue, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, journal, stop = _guarded(harness, Mover(harness.symbol, {1: MOVED}))
        assert _working_triggers(harness) == [Decimal(str(SL))]
        engine.run([_bar(harness, 1, START_PRICE)])  # the plugin moves the stop to 49,000
        _until(engine, lambda: _stop_price(engine) == MOVED)

        # The venue holds one working stop, at the new trigger (USDⓈ-M: the old one cancelled).
        _until(engine, lambda: _working_triggers(harness) == [Decimal(str(MOVED))])
        if venue == "binance-usdm":
            by_id = {cid: status for cid, _price, status in _venue_stops(harness)}
            assert by_id == {stop: "CANCELED", f"{stop}-a1": "NEW"}
        report = harness.broker.query_order(stop)  # under the bot's id still
        assert report is not None and report.status is OrderStatus.OPEN
        assert report.price == pytest.approx(MOVED)
        # The engine's book, its journal and the decision agree.
        [(price,)] = journal.query("SELECT price FROM orders WHERE client_order_id = ?", stop)
        assert price == pytest.approx(MOVED)
        [(action, code, reason)] = _decisions(journal)
        assert (action, code) == ("approve", "trailing_stop")
        assert reason == f"stop moved from {SL:g} to {MOVED:g} by trail"

        # A fall through the new trigger (above the old one) closes the position there.
        harness.trade_through(48_900.0)
        _until(engine, lambda: engine.position(harness.symbol).quantity == 0.0)
        [trade] = engine.portfolio.trades
        assert trade.exit_reason == "stop_loss"
        assert MOVED - 200 <= trade.exit_price <= MOVED
        _until(engine, lambda: not engine.open_orders())
        assert _working_triggers(harness) == []


@pytest.mark.parametrize("venue", FUTURES)
def test_a_move_the_venue_refuses_leaves_the_old_stop_working(tmp_path: Path, venue: str) -> None:
    with harness_for(venue, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, journal, stop = _guarded(harness, Mover(harness.symbol, {1: MOVED}))
        harness.fake.faults.inject("reject", path=MOVE_PATH[venue], method="POST", **REFUSAL[venue])
        engine.run([_bar(harness, 1, START_PRICE)])
        _until(engine, lambda: bool(_decisions(journal)))
        [(action, code, reason)] = _decisions(journal)
        assert (action, code) == ("veto", "stop_move_refused_by_broker")
        assert str(REFUSAL[venue]["msg"])[:20] in reason
        assert _stop_price(engine) == SL
        [(price,)] = journal.query("SELECT price FROM orders WHERE client_order_id = ?", stop)
        assert price == pytest.approx(SL)
        assert _working_triggers(harness) == [Decimal(str(SL))]
        assert engine.stats.vetoes[("trail", "stop_move_refused_by_broker")] == 1

        # The old stop still protects the position: a fall through it closes there.
        harness.trade_through(47_900.0)
        _until(engine, lambda: engine.position(harness.symbol).quantity == 0.0)
        [trade] = engine.portfolio.trades
        assert trade.exit_reason == "stop_loss" and trade.exit_price <= SL


def test_on_usdm_an_old_stop_whose_cancel_fails_is_cancelled_later(tmp_path: Path) -> None:
    """The moved stop is placed, the old one's cancel refused: both are reduce-only stops at
    the venue for a while (never none); the broker cancels the old one at a later poll."""
    with harness_for("binance-usdm", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, journal, stop = _guarded(harness, Mover(harness.symbol, {1: MOVED}))
        harness.fake.faults.inject(
            "server_error", path="/fapi/v1/algoOrder", method="DELETE", status=503, times=1
        )
        engine.run([_bar(harness, 1, START_PRICE)])
        _until(engine, lambda: _stop_price(engine) == MOVED)
        _until(engine, lambda: _working_triggers(harness) == [Decimal(str(MOVED))])
        by_id = {cid: status for cid, _price, status in _venue_stops(harness)}
        assert by_id == {stop: "CANCELED", f"{stop}-a1": "NEW"}
        [(action, code, _reason)] = _decisions(journal)
        assert (action, code) == ("approve", "trailing_stop")


@pytest.mark.parametrize("venue", FUTURES)
def test_a_move_whose_answer_is_lost_after_it_landed_is_booked(tmp_path: Path, venue: str) -> None:
    """The venue took the move but its answer never came: what the broker says must be what
    the venue holds (never the book at 48,000 while the venue's trigger is 49,000)."""
    with harness_for(venue, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, journal, stop = _guarded(harness, Mover(harness.symbol, {1: MOVED}))
        harness.fake.faults.inject("accept_then_timeout", path=MOVE_PATH[venue], method="POST")
        engine.run([_bar(harness, 1, START_PRICE)])
        _until(engine, lambda: bool(_decisions(journal)), timeout=20.0)
        _until(engine, lambda: len(_working_triggers(harness)) == 1, timeout=20.0)
        [trigger] = _working_triggers(harness)
        assert _stop_price(engine) == pytest.approx(float(trigger))
        [(price,)] = journal.query("SELECT price FROM orders WHERE client_order_id = ?", stop)
        assert price == pytest.approx(float(trigger))
