"""A terminal read that fails (None with an error that is not a lost terminal: the MT5 wheel
answers () when there is nothing) is no news to the broker's poll, never "nothing there".

Read as empty, a failed ``positions_get`` reported every accrued swap as 0 (the bot's equity
jumped by the swap for a poll, which a daily-loss plugin acting on the pump sees, and a false
high stays in the journaled peak), and cancelled every bracket child as "the position it
protected is closed"; a failed ``orders_get`` ended every resting order the bot had."""

from __future__ import annotations

import pytest

from tests.brokers.mt5.harness import (
    Mt5Harness,
    gold_pro_symbols,
    live_engine,
    minute_bar,
    settle_and_pump,
)
from tests.runtime.helpers import Scripted
from tests.venues.mt5 import MT5Terminal
from tests.venues.mt5.faults import CallError
from tradefleet_runtime.model import OrderType

LOT = 100_000.0
SWAP = -0.7  # USD a lot and night
BID = 1.1
RES_E_FAIL = -1  # "Terminal: Call failed": not a lost terminal (mt5_link.IPC_LOST)


def _venue() -> Mt5Harness:
    specs = gold_pro_symbols()
    specs["EURUSD"].update(commission_per_lot=0.0, swap_long=SWAP)
    harness = Mt5Harness.build("netting", venue=MT5Terminal(margin_mode="netting", symbols=specs))
    harness.symbols = ("EURUSD",)
    return harness.connect()


def test_a_failed_positions_read_does_not_drop_the_accrued_swap_from_equity() -> None:
    venue = _venue()
    try:
        strategy = Scripted({0: lambda ctx, bar: ctx.buy("EURUSD", LOT)})
        engine, _ = live_engine(venue, strategy)
        engine.run([minute_bar(0, BID)])
        settle_and_pump(engine, venue)
        venue.terminal.rollover(3)
        settle_and_pump(engine, venue)
        assert engine.portfolio.accrued == {"EURUSD": pytest.approx(3 * SWAP)}
        equity = engine.equity
        peak_before = engine.peak_equity

        # One read of the positions fails (the poll's second, ``_refresh_positions``); the
        # position and its -2.10 swap are unchanged at the terminal.
        venue.terminal.faults.script("positions_get", [None, CallError(RES_E_FAIL)])
        settle_and_pump(engine, venue)
        engine.run([minute_bar(1, BID)])

        [position] = venue.terminal.positions_get() or ()
        assert position.swap == pytest.approx(3 * SWAP)
        # Old code: the accrual is reported as 0 and equity rises by 2.10 (and the peak too).
        assert engine.portfolio.accrued == {"EURUSD": pytest.approx(3 * SWAP)}
        assert engine.equity == pytest.approx(equity)
        assert engine.peak_equity == pytest.approx(peak_before)
    finally:
        venue.close()


def test_a_failed_orders_read_does_not_end_a_resting_order() -> None:
    venue = _venue()
    try:
        strategy = Scripted(
            {0: lambda ctx, bar: ctx.buy("EURUSD", LOT, order_type=OrderType.LIMIT, price=1.05)}
        )
        engine, _ = live_engine(venue, strategy)
        engine.run([minute_bar(0, BID)])
        settle_and_pump(engine, venue)
        [resting] = engine.open_orders()
        venue.terminal.faults.script("orders_get", [CallError(RES_E_FAIL)])
        settle_and_pump(engine, venue)
        engine.run([minute_bar(1, BID)])
        settle_and_pump(engine, venue)
        # Old code: ended as "the terminal no longer holds the order" while it rests there.
        assert [o.client_order_id for o in engine.open_orders()] == [resting.client_order_id]
        assert len(venue.terminal.orders_get() or ()) == 1
    finally:
        venue.close()


def test_a_failed_positions_read_does_not_cancel_the_positions_stop_loss() -> None:
    venue = _venue()
    try:
        strategy = Scripted({0: lambda ctx, bar: ctx.buy("EURUSD", LOT, stop_loss=1.09)})
        engine, _ = live_engine(venue, strategy)
        engine.run([minute_bar(0, BID)])
        settle_and_pump(engine, venue)
        stops = [o.client_order_id for o in engine.open_orders() if o.order_type is OrderType.STOP]
        assert len(stops) == 1
        venue.terminal.faults.script("positions_get", [CallError(RES_E_FAIL)])
        settle_and_pump(engine, venue)
        # Old code: the stop-loss was said cancelled ("the position it protected is closed")
        # while the terminal's position still holds it.
        assert [
            o.client_order_id for o in engine.open_orders() if o.order_type is OrderType.STOP
        ] == stops
        [position] = venue.terminal.positions_get() or ()
        assert position.sl == pytest.approx(1.09)
    finally:
        venue.close()
