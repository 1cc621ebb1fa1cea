"""A quantity rounded down to the instrument's lot step is a shrink, journaled and counted.

Every change of an order's size is a risk decision (the money-safety rule): a sizer's 13.7 sent
as 13 on a whole-unit instrument used to leave only the sizer's 13.7 in the journal, so the
order's size had no decision behind it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.runtime.helpers import Scripted, flat_bars, make_engine
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.model import Bar

BARS = flat_bars([100.0, 101.0, 102.0])


def _buy(quantity: float) -> Any:
    def action(ctx: StrategyContext, bar: Bar) -> None:
        ctx.buy(bar.symbol, quantity)

    return action


def _run(quantity: float, lot_step: float) -> tuple[Any, list[tuple[Any, ...]]]:
    engine = make_engine(
        Scripted({0: _buy(quantity)}),
        broker={"default_instrument": {"lot_step": lot_step}},
    )
    engine.run(BARS)
    result = engine.finish()
    rows = engine.journal._db.execute(
        "SELECT plugin, action, quantity_in, quantity_out, reason, client_order_id, code"
        " FROM risk_decisions WHERE plugin = 'engine.sizing'"
    ).fetchall()
    return result, rows


def test_a_quantity_off_the_lot_step_is_a_journaled_shrink() -> None:
    result, rows = _run(13.7, 1.0)
    assert result.fills == 1
    assert result.open_positions[0].quantity == 13.0
    assert len(rows) == 1
    plugin, action, quantity_in, quantity_out, reason, order_id, code = rows[0]
    assert (plugin, action, quantity_in, quantity_out) == ("engine.sizing", "shrink", 13.7, 13.0)
    assert code == "lot_step"  # the journal's row says what the metrics count it by
    assert "lot step 1" in reason and order_id
    assert result.risk_decisions[("engine.sizing", "shrink")] == 1


@pytest.mark.parametrize(
    ("quantity", "step"), [(13.0, 1.0), (0.30000000000000004, 0.1), (2.5, 0.0)]
)
def test_a_quantity_on_the_step_is_no_decision(quantity: float, step: float) -> None:
    result, rows = _run(quantity, step)
    assert result.fills == 1
    assert rows == []
    assert ("engine.sizing", "shrink") not in result.risk_decisions
