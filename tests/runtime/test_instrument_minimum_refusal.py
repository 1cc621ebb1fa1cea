"""An order whose quantity, on the instrument's lot step, is below its minimum is refused
before it leaves, and the refusal names the field (``quantity``) and the symbol."""

from __future__ import annotations

from typing import Any

from tests.runtime.helpers import Scripted, flat_bars, make_engine
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.model import Bar

SYMBOL = "BTC/USD"


def _buy(ctx: StrategyContext, bar: Bar) -> None:
    ctx.buy(bar.symbol, 4e-05)


def test_a_quantity_below_the_minimum_is_refused_naming_the_field_and_the_symbol() -> None:
    engine = make_engine(
        Scripted({0: _buy}),
        symbols=(SYMBOL,),
        broker={"default_instrument": {"lot_step": 1e-08, "min_quantity": 5e-05}},
    )
    engine.run(flat_bars([50_000.0, 50_100.0], symbol=SYMBOL))
    result = engine.finish()
    rows: list[Any] = engine.journal._db.execute(
        "SELECT action, reason, code FROM risk_decisions WHERE plugin = 'engine.sizing'"
    ).fetchall()
    assert result.fills == 0
    assert rows == [
        (
            "veto",
            "quantity: 4e-05 BTC/USD rounds to 4e-05 (lot step 1e-08), below BTC/USD's minimum "
            "quantity 5e-05",
            "below_minimum",
        )
    ]
