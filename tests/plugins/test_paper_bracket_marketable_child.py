"""A take-profit placed at its entry's fill at a bar's open, which that open is already through,
was marketable when it reached the venue: a taker's fill (the slippage, ``fee_bps``). One form
of the rule marked only orders sent or moved by the bot as new, and such a child filled as a
maker at the open with no fee and no slippage.
"""

from __future__ import annotations

import pytest

from tests.runtime.helpers import Scripted, bar, make_engine

COSTS = {"fee_bps": 10.0, "maker_fee_bps": 0.0, "slippage_bps": 20.0}


def test_a_take_profit_born_through_the_open_is_a_takers_fill() -> None:
    # Decided at 100 with a take-profit at 105; the next bar gaps to 110: the market entry
    # fills at the open (110.22), and its take-profit at 105 is marketable the moment it exists.
    strategy = Scripted({0: lambda ctx, b: ctx.buy("TEST", 5, stop_loss=90.0, take_profit=105.0)})
    make_engine(strategy, broker=COSTS).run(
        [bar(0, 100, 100, 100, 100), bar(1, 110, 111, 109, 110), bar(2, 110, 111, 109, 110)]
    )
    (exit_fill,) = [f for f in strategy.fills if f.reason == "take_profit"]
    assert exit_fill.ts == bar(1, 110, 111, 109, 110).ts
    # A taker's fill at the open: 110 less 20 bps of slippage (never beyond the limit), 10 bps.
    assert exit_fill.price == pytest.approx(110 * 0.998)
    assert exit_fill.fee == pytest.approx(5 * 110 * 0.998 * 0.001)
