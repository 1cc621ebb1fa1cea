"""``stop_moves.stop_held`` checks a venue's price's type, not only NaN, inf and <= 0:
``OrderUpdate.price`` comes from broker plugins, third-party ones included. A ``Decimal`` (a
broker reading a venue's string price exactly) raised TypeError on the engine thread
(``abs(venue - asked)``), ending the run; a ``bool`` was taken as the price 1.0, the stop
booked and journaled at 1 and re-armed there by a restart."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.runtime.test_stop_move_echo import ASKED, BARS, HoldingBroker, _engine, _stop
from tradefleet_runtime.engine.stop_moves import stop_held
from tradefleet_runtime.journal import Journal


def test_a_decimal_venue_price_is_booked_not_raised() -> None:
    # Old code: TypeError: unsupported operand type(s) for -: 'decimal.Decimal' and 'float'
    held = stop_held(95.0, Decimal("94.75"), 90.0, True, 0.01)  # type: ignore[arg-type]
    assert held.price == pytest.approx(94.75)


def test_a_bool_venue_price_is_unusable_not_a_stop_at_one() -> None:
    held = stop_held(95.0, True, 90.0, True, 0.01)  # type: ignore[arg-type]
    # Old code: StopHeld(price=True, ..., looser=...): the stop booked at 1.0.
    assert held.price == 95.0
    assert held.unusable


@pytest.mark.parametrize("said", [Decimal("94.75"), True], ids=["decimal", "bool"])
def test_a_move_answered_with_an_odd_price_type_keeps_the_engine_running(
    tmp_path: Path, said: object
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    broker = HoldingBroker(lambda asked: 94.75, said=lambda held: said)  # type: ignore[arg-type, return-value]
    engine = _engine(journal, broker, {2: ASKED})
    engine.run(BARS[:3])  # old code, decimal: TypeError out of engine.run
    price = _stop(engine).price
    assert price is not None and price > 90.0  # never booked at 1.0 (old code, bool)
