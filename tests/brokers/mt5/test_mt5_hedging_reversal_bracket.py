"""A reversal with its own SL/TP: the new bracket protects what the reversal opened, and ends
with that position.

Long 10,000 with SL/TP, then a sell of 20,000 with another SL/TP. A netting account makes it
one deal reversing the position: the engine sizes the new children on the 20,000 filled and
cuts them to the 10,000 short the position holds (the long's children, whose level the
position no longer holds, are cut away — not reported as a level changed by hand). A hedging
account makes two deals: one closes the long's ticket (comment ``<id>``), one opens a 0.1-lot
short ticket (``<id>#1``), which alone carries the new SL/TP. The broker says which fill
closed another entry's ticket (``entries_reduced``); such a fill opened nothing of the sell's
own, so its children cover only the second deal: 10,000, as the ticket holds — not 20,000
("resized from 10000 to 20000: what of its entry filled"), which left the stop
``partially_filled`` and working for another 10,000 on a flat position once the short's SL
fired. A sell that only closes the long opens no ticket: its SL/TP protect nothing, and no
child is made for it.
"""

from __future__ import annotations

import logging

import pytest

from tests.brokers.mt5.harness import Mt5Harness, live_engine, minute_bar
from tests.brokers.mt5.test_mt5_sltp_by_hand import _pump, _stops, _venue
from tests.runtime.helpers import Scripted
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal

SL, TP = 1.0950, 1.1100

pytestmark = pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge


def _statuses(journal: Journal) -> dict[str, str]:
    return {order_id: status for order_id, status in journal.order_statuses()}


def _long_then(venue: Mt5Harness, sell: float) -> tuple[Engine, Journal]:
    """Long 10,000 with SL/TP, then a sell of ``sell`` with SL 1.105 / TP 1.09."""
    strategy = Scripted(
        {
            0: lambda ctx, bar: ctx.buy("EURUSD", 10_000.0, stop_loss=SL, take_profit=TP),
            1: lambda ctx, bar: ctx.sell(
                "EURUSD", sell, stop_loss=1.1050, take_profit=1.0900, tag="flip"
            ),
        }
    )
    engine, journal = live_engine(venue, strategy)
    for i in (0, 1):
        engine.run([minute_bar(i, 1.1)])
        _pump(engine, venue)
    return engine, journal


@pytest.mark.parametrize("margin", ["netting", "hedging"])
def test_a_reversals_stop_protects_what_it_opened_and_ends_with_it(
    margin: str, caplog: pytest.LogCaptureFixture
) -> None:
    venue = _venue(margin)
    try:
        with caplog.at_level(logging.WARNING):
            engine, journal = _long_then(venue, 20_000.0)
        # The long's children, cut by the reversal, are not taken for a level moved by hand
        # (a netting position's SL/TP are the reversal's now).
        assert "changed at the terminal" not in caplog.text
        (short,) = venue.terminal.positions_get() or ()
        assert short.volume == 0.1 and engine.portfolio.position("EURUSD").quantity == -10_000.0
        assert _stops(engine) == [(10_000.0, 1.1050)], "the stop of the 0.1-lot short"
        venue.terminal.set_price("EURUSD", 1.1060)  # the short's SL fires at the terminal
        engine.run([minute_bar(2, 1.106)])
        _pump(engine, venue)
        assert venue.terminal.positions_get() == ()
        assert engine.portfolio.position("EURUSD").quantity == 0.0
        working = [(o.client_order_id, o.quantity) for o in engine.open_orders()]
        assert working == [], f"flat, yet the bot works {working}"
        statuses = _statuses(journal)
        assert not [s for s in statuses.values() if s in ("open", "partially_filled")], statuses
    finally:
        venue.close()


def test_a_hedging_sell_that_only_closes_the_long_makes_no_children() -> None:
    venue = _venue("hedging")
    try:
        engine, journal = _long_then(venue, 10_000.0)
        assert venue.terminal.positions_get() == ()
        assert engine.portfolio.position("EURUSD").quantity == 0.0
        assert engine.open_orders() == [], "children for a position the sell never opened"
        flip = engine.last_order_id
        assert f"{flip}-sl" not in _statuses(journal)
    finally:
        venue.close()
