"""Risk plugins reading ``RiskContext.stops`` between a strategy's ``close`` and its fill
(review R42).

A strategy's close keeps the position's stop-loss working until it fills, so the account
actions a risk plugin takes at the bar the strategy closed see the closing position with its
stop. ``exits``' early exit then fired on it, asked a FLATTEN that cancelled the strategy's close
and sent its own: the trade's exit said ``risk:exits``, with a ``risk_action`` and owed closes
journaled. A position its working exits close whole gets no exit of ``exits`` now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.runtime.helpers import Scripted, bar, paper_engine
from tradefleet_plugins.risk.exits import Exits
from tradefleet_plugins.risk.exits_params import ExitsParams
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar


def _hooks(name: str, plugin: Any) -> RiskHooks:
    return RiskHooks(bar_observers=((name, plugin),), actors=((name, plugin),))


def _buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy("TEST", 1.0, stop_loss=90.0, take_profit=130.0)


def _close(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close("TEST")


BARS = [
    bar(0, 100, 100, 100, 100),
    bar(1, 100, 100, 100, 100),  # bought at 100, stop 90: early exit at a loss of 5 (50%)
    bar(2, 100, 100, 94, 94),  # a loss of 6: the strategy closes at this close
    bar(3, 94, 94, 94, 94),  # the close fills at the open
    bar(4, 94, 94, 94, 94),
]


def test_exits_early_exit_sends_no_second_close_beside_the_strategys(
    tmp_path: Path,
) -> None:
    """``exits`` (early exit at 50% of the stop distance) at the bar the strategy closed: the
    position is already closing at market; a FLATTEN of it sends a second close beside the
    strategy's (cancelled at the fill for want of a position, or, where reduce-only is
    checked at placement, past flat), and journals a risk exit of a position the strategy
    closed. Before e80e8fd the stop was gone and the early exit did not fire there."""
    journal = Journal(tmp_path / "journal.sqlite")
    exits = Exits(ExitsParams(early_exit_fraction=0.5))
    engine = paper_engine(
        journal, "run-1", Scripted({0: _buy, 2: _close}), hooks=_hooks("exits", exits)
    )
    engine.run(BARS)
    assert engine.position("TEST").quantity == 0.0
    exits_sent = journal.query(
        "SELECT client_order_id, tag FROM orders WHERE parent_id IS NULL AND reduce_only = 1"
    )
    actions = journal.query("SELECT message FROM events WHERE kind = 'risk_action'")
    assert len(exits_sent) == 1, (exits_sent, actions)
    assert actions == []
    [trade] = engine.portfolio.trades
    assert trade.exit_reason == "close"
