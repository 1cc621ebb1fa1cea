"""A moved stop is booked at the SL the MT5 position holds, read back after TRADE_ACTION_SLTP,
not at the one asked: the emulated server clamps an SL inside a stops level it does not state
in SymbolInfo (``held_stops_level``, a floating level) out to that distance."""

from __future__ import annotations

from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness, minute_bar, settle_and_pump
from tests.brokers.mt5.test_mt5_trailing_native import _bot as trailing_bot
from tests.brokers.stop_movers import Mover
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import OrderType

SL = 1.0950
ASKED = 1.0999  # 0.0001 under the bid (1.1000): inside the server's unstated 50 points
HELD = 1.0995  # the bid less 50 points, where the server holds it
MODES = ["netting", "hedging"]


def _bot(margin_mode: str, mover: Mover) -> tuple[Mt5Harness, Engine]:
    """A live bot long 10,000 EURUSD at 1.1 with SL 1.0950, on a server holding SLs at least
    50 points from the bid while its SymbolInfo says a stops level of 0."""
    return trailing_bot(margin_mode, mover, 0, held_stops_level=50)


def _query(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    journal: Journal = engine.journal  # type: ignore[assignment]
    return journal.query(sql)


@pytest.mark.parametrize("margin_mode", MODES)
def test_the_sl_the_position_holds_is_booked_not_the_one_asked(margin_mode: str) -> None:
    venue, engine = _bot(margin_mode, Mover("EURUSD", {1: ASKED}))
    try:
        engine.run([minute_bar(1, 1.1)])  # the plugin asks its move after this bar
        for _ in range(3):
            settle_and_pump(engine, venue)
        [position] = venue.terminal.positions_get() or ()
        assert position.sl == HELD  # the server clamped it
        [stop] = [o for o in engine.open_orders() if o.order_type is OrderType.STOP]
        assert stop.price == pytest.approx(HELD)  # the book: what the position holds
        [(price,)] = _query(engine, "SELECT price FROM orders WHERE tag = 'stop_loss'")
        assert price == pytest.approx(HELD)
        [(reason,)] = _query(
            engine, "SELECT reason FROM order_updates WHERE reason LIKE 'stop moved%'"
        )
        assert reason == "stop moved from 1.095 to 1.0995 by trail (1.0999 asked)"
        [(said,)] = _query(
            engine, "SELECT message FROM events WHERE kind = 'stop_move_venue_price'"
        )
        assert said == f"{stop.client_order_id}: the venue holds 1.0995 where 1.0999 was asked"

        # The position closes at the SL it holds: a fall to 1.0996 (under the 1.0999 asked,
        # above the 1.0995 held) leaves it open; one to 1.0995 closes it.
        venue.terminal.set_price("EURUSD", 1.0996)
        for _ in range(3):
            settle_and_pump(engine, venue)
        assert engine.position("EURUSD").quantity == pytest.approx(10_000.0)
        venue.terminal.set_price("EURUSD", 1.0995)
        for _ in range(3):
            settle_and_pump(engine, venue)
        [trade] = engine.portfolio.trades
        assert trade.exit_reason == "stop_loss" and trade.exit_price == pytest.approx(HELD)
    finally:
        venue.close()
