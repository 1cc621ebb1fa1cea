"""A stop-loss the venue ends because its take-profit filled whole (one-cancels-other) is said
as that, and only when what is left held has no other stop (reviews R44, R47): a pyramid's
newer bracket ending leaves the position under the older entry's stop, and says nothing (the
broker test ``test_ccxt_take_profit_part_pyramid``); a bracket ending beside a position with no
stop of its own says the position runs without one — not "cancelled outside the bot"."""

from __future__ import annotations

from tests.runtime.helpers import Scripted, flat_bars, make_engine
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar


def test_a_bracket_ended_beside_a_position_with_no_stop_says_so() -> None:
    def plain(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.buy("TEST", 1)

    def bracketed(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.buy("TEST", 1, stop_loss=90.0, take_profit=110.0)

    journal = Journal(":memory:")
    engine = make_engine(Scripted({0: plain, 1: bracketed}), journal=journal)
    engine.run(flat_bars([100.0, 100.0, 100.0, 112.0, 112.0]))  # through the take-profit
    assert engine.position("TEST").quantity == 1.0  # the plain buy's, no stop of its own
    said = [
        str(m)
        for (m,) in journal.query("SELECT message FROM events WHERE kind = ?", "stop_cancelled")
    ]
    assert len(said) == 1, said
    assert "one-cancels-other" in said[0] and "runs without a stop" in said[0]
    assert "outside the bot" not in said[0]
