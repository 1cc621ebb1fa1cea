"""R29a: a live bot refused because the journal holds a position on a symbol removed from
spec.market.symbols, when the venue already closed that position while the bot was down (a
person at the terminal, a venue stop-out not booked as the bot's fill). The refusal said only
"keep it in spec.market.symbols until it is closed": putting the symbol back starts a bot whose
reconciliation finds the journal's +1000 against a flat venue and goes Degraded; a person's
resume books nothing, so the journal holds the position for ever and every later removal of
the symbol is refused again. The way out (``spec.broker.adoptVenuePositions`` for one start,
which journals the venue's flat position as a reconciliation fill) was written nowhere in it.
"""

from __future__ import annotations

from tradefleet_runtime.model import CarriedState, Fill, Side
from tradefleet_runtime.restart_spec_check import restart_refusals

HOUR = 3600
MONDAY = 1483315200


def test_the_removed_symbol_refusal_names_the_way_out_when_the_venue_is_flat() -> None:
    state = CarriedState(
        initial_capital=100000.0,
        fills=[Fill("o1", "EURUSD", Side.BUY, 1000.0, 1.05, 0.0, MONDAY, "f1")],
        last_bar_ts=MONDAY + 7 * HOUR,
    )
    refusals = restart_refusals(state, HOUR, ["GBPUSD"], HOUR)
    assert len(refusals) == 1
    message = str(refusals[0])
    assert "spec.broker.adoptVenuePositions: true" in message, message
    # Reconciliation adopts only a listed symbol's position: the symbol goes back in first,
    # and the setting is set back after (it would take over any difference on every start).
    assert "list EURUSD again" in message and "set it back to false" in message, message
