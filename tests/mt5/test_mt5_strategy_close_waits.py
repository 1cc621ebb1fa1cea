"""A strategy's ``ctx.close`` through the MT5 broker on the emulated terminal (netting).

The broker's cancel is queued to its thread (answered when it has run: ``settle``), not at
once. A bracketed position (SL/TP on the terminal's position: kept, so nothing to wait for)
closes in the same bar, as before; a resting limit sell of the strategy's own is waited for.
On MT5 a filled pending order ends with its deals (no final status follows).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness, live_engine, minute_bar, settle_and_pump
from tests.runtime.helpers import Scripted
from tests.venues.mt5.constants import TRADE_ACTION_REMOVE
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderType

LOT = 10_000.0
ASK = 1.1050


def _netting() -> Mt5Harness:
    venue = Mt5Harness.netting()
    venue.symbols = ("EURUSD",)
    venue.connect()
    venue.terminal.set_price("EURUSD", 1.1000, 1.1001)
    return venue


def _close(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close("EURUSD")


def _rest(quantity: float):  # type: ignore[no-untyped-def]
    def rest(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.sell("EURUSD", quantity, order_type=OrderType.LIMIT, price=ASK)

    return rest


def _events(journal: Journal, kind: str) -> list[tuple[str, dict[str, object]]]:
    rows = journal.query("SELECT message, data FROM events WHERE kind = ? ORDER BY id", kind)
    return [(str(m), json.loads(d) if d else {}) for m, d in rows]


def _run(engine: Engine, venue: Mt5Harness, i: int) -> None:
    engine.run([minute_bar(i, 1.1)])
    settle_and_pump(engine, venue)


def _volume(venue: Mt5Harness) -> float:
    return sum(p.volume for p in venue.terminal.positions_get() or ())


def test_mt5_bracketed_close_goes_in_the_same_bar() -> None:
    venue = _netting()
    try:
        buy = lambda c, b: c.buy("EURUSD", LOT, stop_loss=1.0950, take_profit=1.1100)  # noqa: E731
        engine, journal = live_engine(venue, Scripted({0: buy, 2: _close}))
        _run(engine, venue, 0)
        _run(engine, venue, 1)
        assert engine.position("EURUSD").quantity == LOT
        engine.run([minute_bar(2, 1.1)])
        assert journal.query("SELECT quantity FROM orders WHERE tag = 'close'") == [(LOT,)]
        assert _events(journal, "close_waits") == []
        for _ in range(3):
            settle_and_pump(engine, venue)
        assert engine.position("EURUSD").quantity == 0.0 and not engine.open_orders()
        assert venue.terminal.positions_get() == ()
    finally:
        venue.close()


def test_mt5_close_waits_for_the_resting_sells_cancel_then_closes() -> None:
    venue = _netting()
    try:
        buy = lambda c, b: c.buy("EURUSD", LOT)  # noqa: E731
        engine, journal = live_engine(venue, Scripted({0: buy, 1: _rest(LOT), 2: _close}))
        _run(engine, venue, 0)
        _run(engine, venue, 1)
        [sell] = [o.client_order_id for o in engine.open_orders()]
        engine.run([minute_bar(2, 1.1)])
        [(_m, data)] = _events(journal, "close_waits")
        assert data["waiting_for"] == [sell]
        assert journal.query("SELECT quantity FROM orders WHERE tag = 'close'") == []
        for _ in range(3):
            settle_and_pump(engine, venue)
        assert journal.query("SELECT quantity FROM orders WHERE tag = 'close'") == [(LOT,)]
        assert engine.position("EURUSD").quantity == 0.0 and not engine.open_orders()
        assert venue.terminal.positions_get() == ()
    finally:
        venue.close()


def test_mt5_part_exit_filled_before_its_cancel_runs_the_close_sells_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Long 0.2 lot, a limit sell of 0.1 resting at 1.1050; the strategy closes and the price
    trades through 1.1050 an instant before the terminal takes the cancel (the removal finds
    the order filled): the sell's deal ends it. The close must still sell the other 0.1."""
    venue = _netting()
    try:
        terminal = venue.terminal
        send = terminal.order_send
        traded: list[bool] = []

        def fill_first(request: dict[str, Any]) -> Any:
            if request.get("action") == TRADE_ACTION_REMOVE and not traded:
                traded.append(True)
                terminal.set_price("EURUSD", 1.1060, 1.1061)  # the pending sell fills
            return send(request)

        monkeypatch.setattr(terminal, "order_send", fill_first)
        buy = lambda c, b: c.buy("EURUSD", 2 * LOT)  # noqa: E731
        engine, journal = live_engine(venue, Scripted({0: buy, 1: _rest(LOT), 2: _close}))
        _run(engine, venue, 0)
        _run(engine, venue, 1)
        assert engine.position("EURUSD").quantity == 2 * LOT
        [sell] = [o.client_order_id for o in engine.open_orders()]
        engine.run([minute_bar(2, 1.1)])  # the close waits; the cancel is queued
        assert _events(journal, "close_waits")
        for _ in range(4):
            settle_and_pump(engine, venue)
        assert traded
        fills = journal.query("SELECT quantity, client_order_id FROM fills WHERE side = 'sell'")
        assert (LOT, sell) in [tuple(f) for f in fills]  # the resting sell filled
        assert engine.position("EURUSD").quantity == 0.0, (
            f"the strategy's close never went: {engine.position('EURUSD').quantity} held, "
            f"nothing working ({engine.open_orders()}); {_events(journal, 'close_waits')}"
        )
        assert _volume(venue) == 0.0
    finally:
        venue.close()
