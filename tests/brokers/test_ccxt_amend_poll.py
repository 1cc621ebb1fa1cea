"""A stop whose move is on its way to the venue is still polled: its fill is never hidden by
the move, and a cancel-replace's own cancel is never read as its end.

A risk plugin may move a position's stop at every event pump (``MOVE_STOP``): an amend is then
on its way most of the time. The ccxt broker used to leave an order alone while its amend ran,
so a stop that filled meanwhile was reported only when the amend came back — up to its
timeout, retries and backoff (10 s, 5 retries and up to 30 s between them by default), not one
poll interval. Now the poller reads the order meanwhile; only a cancel it reads during a
cancel-replace (Binance spot moves a stop by cancelling it and placing the moved one under
``<id>-a<n>``) is left to the amend, which knows whether the replacement is working.

Against the fake Binance spot and Bybit linear venues, with the real ccxt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
from tradefleet_runtime.sdk import AccountAction, ActionKind, RiskContext

SL, MOVED = 48_000.0, 49_000.0
# Where each venue takes a stop's move.
MOVE_PATH = {"binance-spot": "/api/v3/order/cancelReplace", "bybit": "/v5/order/amend"}
# How long each move takes at the venue in the slow-venue case (below the broker's timeout).
SLOW_MS = 2_500
TIMEOUT_MS = 6_000


class Ratchet:
    """From its second bar on, moves the stop one dollar tighter every time the engine asks
    (after each pump that brought events: the previous move's answer), from ``SL`` on."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.price = SL
        self.bars = 0

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1

    def account_actions(self, ctx: RiskContext) -> list[AccountAction]:
        if self.bars < 2:
            return []
        self.price += 1.0
        return [AccountAction(ActionKind.MOVE_STOP, "trail", self.symbol, price=self.price)]


def _bar(harness: VenueHarness, i: int) -> Bar:
    now = int(time.time()) // 60 * 60 - 120
    return Bar(
        harness.symbol, 60, now + i * 60, START_PRICE, START_PRICE, START_PRICE, START_PRICE, 1
    )


def _until(engine: Engine, done: Callable[[], bool], timeout: float = 10.0) -> float:
    """Pump until ``done()``; how long it took (s)."""
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out; working: {engine.open_orders()}")
        engine.pump()
        time.sleep(0.005)
    return time.monotonic() - start


def _stop_price(engine: Engine) -> float | None:
    stops = [o for o in engine.open_orders() if o.order_type is OrderType.STOP]
    return stops[0].price if len(stops) == 1 else None


def _guarded(harness: VenueHarness, mover: Any) -> tuple[Engine, Journal, str]:
    """A live bot long what its buy of ``QUANTITY`` holds (on Binance spot, less the fee in
    the coin), its stop-loss at ``SL`` working at the venue, not moved yet."""
    journal = Journal(":memory:")
    start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)
    symbol = harness.symbol
    config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)
    buy = Scripted({0: lambda ctx, _bar: ctx.buy(symbol, QUANTITY, stop_loss=SL)})
    hooks = RiskHooks(bar_observers=(("trail", mover),), actors=(("trail", mover),))
    broker = harness.broker
    engine = Engine(config, buy, broker, journal, venue=broker, brackets=broker, hooks=hooks)
    engine.run([_bar(harness, 0)])
    stop = f"{engine.last_order_id}-sl"
    _until(
        engine,
        lambda: (
            (r := broker.query_order(stop)) is not None
            and r.status is OrderStatus.OPEN
            and _stop_price(engine) == SL
            and engine.position(symbol).quantity > 0.0
        ),
    )
    return engine, journal, stop


def _requests(harness: VenueHarness, path: str) -> int:
    return sum(1 for r in list(harness.fake.requests) if r.path == path)


def _status(journal: Journal, client_order_id: str) -> str:
    [(status,)] = journal.query(
        "SELECT status FROM order_status WHERE client_order_id = ?", client_order_id
    )
    return str(status)


def _stop_fills(journal: Journal, stop: str) -> list[tuple[Any, ...]]:
    return journal.query("SELECT fill_id, quantity FROM fills WHERE client_order_id = ?", stop)


@pytest.mark.parametrize("venue", sorted(MOVE_PATH))
def test_a_stop_that_fills_while_its_move_is_on_the_way_is_reported_within_a_poll(
    tmp_path: Path, venue: str
) -> None:
    """The stop is moved at every pump; every move takes the venue 2.5 s. The price falls
    through the stop just after a move went out: the fill reaches the bot within a few polls
    (50 ms each here), not when the move comes back (2.5 s; at a venue that keeps failing the
    move, its retries and backoff)."""
    with harness_for(venue, tmp_path, timeout_ms=TIMEOUT_MS) as harness:
        assert isinstance(harness, VenueHarness)
        ratchet = Ratchet(harness.symbol)
        engine, journal, stop = _guarded(harness, ratchet)
        held = engine.position(harness.symbol).quantity
        path = MOVE_PATH[venue]
        harness.fake.faults.inject(
            "latency", path=path, method="POST", delay_ms=SLOW_MS, times=None
        )
        before = _requests(harness, path)
        engine.run([_bar(harness, 1)])  # the ratchet starts: a move at every pump from now on
        _until(engine, lambda: _requests(harness, path) > before)  # one is at the venue

        harness.trade_through(47_000.0)  # through the stop, still at 48,000 at the venue
        took = _until(engine, lambda: engine.position(harness.symbol).quantity == 0.0)
        assert took < 1.0, f"the stop's fill took {took:.2f} s to reach the bot"

        [trade] = engine.portfolio.trades
        assert trade.exit_reason == "stop_loss"
        fills = _stop_fills(journal, stop)
        assert len(fills) == len({fill_id for fill_id, _ in fills})  # each fill once
        assert sum(q for _, q in fills) == pytest.approx(held)
        # The move still on its way fails (the stop filled): nothing more is said of the stop.
        _until(engine, lambda: not engine._stop_moves, timeout=TIMEOUT_MS / 1000 + 5)
        time.sleep(4 * harness.params.poll_interval_s)
        engine.pump()
        assert _status(journal, stop) == OrderStatus.FILLED.value
        assert _stop_fills(journal, stop) == fills


def _spot_stops(harness: VenueHarness, stop: str) -> dict[str, tuple[str, float]]:
    """The bot's stop and its replacements at the fake Binance spot: client id -> (status,
    trigger price)."""
    with harness.fake.state.lock:
        return {
            o.client_order_id: (o.status, float(o.stop_price))
            for o in harness.fake.orders("spot")
            if o.client_order_id.startswith(stop)
        }


def _spot_fill_ids(harness: VenueHarness, client_order_id: str) -> list[str]:
    with harness.fake.state.lock:
        return [
            str(t.id)
            for o in harness.fake.orders("spot")
            if o.client_order_id == client_order_id
            for t in o.fills
        ]


def test_binance_spot_moves_a_native_trailing_stop_by_cancel_replace(tmp_path: Path) -> None:
    """The moved stop is placed under ``<id>-a1`` as the old one is cancelled (one request:
    cancel, then place); the bot keeps seeing it under its own id, at the new trigger, and its
    later fill is reported under that id, once."""
    with harness_for("binance-spot", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, journal, stop = _guarded(harness, Mover(harness.symbol, {1: MOVED}))
        held = engine.position(harness.symbol).quantity
        engine.run([_bar(harness, 1)])  # the plugin moves the stop to 49,000
        _until(engine, lambda: _stop_price(engine) == MOVED)

        assert _spot_stops(harness, stop) == {
            stop: ("CANCELED", SL),
            f"{stop}-a1": ("NEW", MOVED),
        }
        report = harness.broker.query_order(stop)  # under the bot's id
        assert report is not None and report.status is OrderStatus.OPEN
        assert report.price == pytest.approx(MOVED)
        [(price,)] = journal.query("SELECT price FROM orders WHERE client_order_id = ?", stop)
        assert price == pytest.approx(MOVED)
        [(action, code)] = journal.query(
            "SELECT action, code FROM risk_decisions WHERE plugin = 'trail'"
        )
        assert (action, code) == ("approve", "trailing_stop")

        harness.trade_through(48_900.0)  # through the moved stop, above the old one
        _until(engine, lambda: engine.position(harness.symbol).quantity == 0.0)
        [trade] = engine.portfolio.trades
        assert trade.exit_reason == "stop_loss"
        assert MOVED - 200 <= trade.exit_price <= MOVED
        time.sleep(4 * harness.params.poll_interval_s)  # later polls add nothing
        engine.pump()
        fills = _stop_fills(journal, stop)
        assert sorted(fill_id for fill_id, _ in fills) == sorted(
            _spot_fill_ids(harness, f"{stop}-a1")
        )
        assert len(fills) == 1 and fills[0][1] == pytest.approx(held)
        assert _spot_fill_ids(harness, stop) == []
        assert not engine.open_orders()


def test_a_cancel_replace_whose_answer_is_late_is_not_read_as_the_stop_s_end(
    tmp_path: Path,
) -> None:
    """Binance spot cancels the stop and places the moved one, but its answer never comes: the
    broker looks the replacement up (1.5 s timeout, then a retry whose cancel fails). The
    poller reads the old stop cancelled meanwhile, many times: that is the replace's cancel,
    not the stop's end (the bot would close the position at market, the moved stop working).
    The moved stop's later fill is the bot's stop-loss exit, reported once."""
    with harness_for("binance-spot", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        engine, journal, stop = _guarded(harness, Mover(harness.symbol, {1: MOVED}))
        held = engine.position(harness.symbol).quantity
        harness.fake.faults.inject(
            "accept_then_timeout", path=MOVE_PATH["binance-spot"], method="POST", hold_s=4
        )
        polls = _requests(harness, "/api/v3/openOrders")
        engine.run([_bar(harness, 1)])
        _until(engine, lambda: _stop_price(engine) == MOVED, timeout=15.0)
        assert _requests(harness, "/api/v3/openOrders") - polls > 5  # polled meanwhile
        assert _status(journal, stop) == OrderStatus.OPEN.value
        assert engine.position(harness.symbol).quantity == pytest.approx(held)
        assert _spot_stops(harness, stop) == {
            stop: ("CANCELED", SL),
            f"{stop}-a1": ("NEW", MOVED),
        }

        harness.trade_through(48_900.0)
        _until(engine, lambda: engine.position(harness.symbol).quantity == 0.0)
        [trade] = engine.portfolio.trades
        assert trade.exit_reason == "stop_loss"
        time.sleep(4 * harness.params.poll_interval_s)
        engine.pump()
        fills = _stop_fills(journal, stop)
        assert len(fills) == 1 and fills[0][1] == pytest.approx(held)
        # The position was never closed at market: the stop's fill is its only exit.
        assert journal.query("SELECT COUNT(*) FROM fills") == [(2,)]
