"""``exits`` beside the strategy's own reduce-only exits for the whole position (review R43).

A standalone reduce-only stop or take-profit the strategy placed (``ctx.submit(OrderIntent(...,
reduce_only=True))``) covers the position in ``RiskContext.closable`` as a ``close`` on its way
does. An ``exits`` that skipped positions so covered (meant for a strategy's close on its way)
never fired for them: no early exit, no trailing exit, no native trail. Its rules apply.
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
from tradefleet_runtime.model import Bar, OrderIntent, OrderType, Side

SYMBOL = "TEST"

BARS = [
    bar(0, 100, 100, 100, 100),  # buys 1
    bar(1, 100, 100, 100, 100),  # filled at 100; the strategy places its own stop at 90
    bar(2, 100, 100, 100, 100),  # the stop works
    bar(3, 100, 100, 94, 94),  # a loss of 6 of the 10 to the stop: past the early exit (50%)
    bar(4, 94, 94, 94, 94),
    bar(5, 94, 94, 94, 94),
]


def _hooks(plugin: Any) -> RiskHooks:
    return RiskHooks(bar_observers=(("exits", plugin),), actors=(("exits", plugin),))


def _buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0)


def _own_stop(quantity: float) -> Any:
    def place(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.submit(
            OrderIntent(SYMBOL, Side.SELL, quantity, OrderType.STOP, price=90.0, reduce_only=True)
        )

    return place


def _own_take_profit(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.submit(OrderIntent(SYMBOL, Side.SELL, 1.0, OrderType.LIMIT, price=130.0, reduce_only=True))


def _run(tmp_path: Path, actions: dict[int, Any], params: ExitsParams) -> Journal:
    journal = Journal(tmp_path / "journal.sqlite")
    engine = paper_engine(journal, "run-1", Scripted(actions), hooks=_hooks(Exits(params)))
    engine.run(BARS)
    return journal


def _risk_exits(journal: Journal) -> list[str]:
    return [
        str(message)
        for (message,) in journal.query("SELECT message FROM events WHERE kind = 'risk_action'")
    ]


def test_exits_early_exit_fires_beside_the_strategys_own_whole_stop(tmp_path: Path) -> None:
    """Long 1 at 100, the strategy's own reduce-only stop (no bracket) at 90 for the whole
    position. At a loss of 6 the early exit (50% of the stop distance) must close it, as it
    did before bf06df8. FAILS on bf06df8: ``closable`` is 0 (the stop is a reduce-only order
    without a parent), ``_closing_whole`` says the position is closing whole, no risk_action."""
    journal = _run(tmp_path, {0: _buy, 1: _own_stop(1.0)}, ExitsParams(early_exit_fraction=0.5))
    actions = _risk_exits(journal)
    assert any("flatten" in message for message in actions), (
        "exits asked no exit of a position whose only 'exit' is its own resting stop-loss: "
        f"risk actions {actions}"
    )


def test_exits_trailing_exit_fires_beside_a_whole_reduce_only_take_profit(
    tmp_path: Path,
) -> None:
    """Long 1 at 100, a resting reduce-only take-profit limit at 130 for all of it (no stop).
    A 5% trailing exit must fire at 94. FAILS on bf06df8 for the same reason: a resting
    limit far from the market is counted as an exit closing the position whole."""
    journal = _run(
        tmp_path,
        {0: _buy, 1: _own_take_profit},
        ExitsParams(early_exit_fraction=0.0, trailing_pct=0.05),
    )
    actions = _risk_exits(journal)
    assert any("flatten" in message for message in actions), (
        f"the trailing exit never fired beside a resting reduce-only limit: {actions}"
    )


def test_exits_rules_apply_to_a_position_partly_covered(tmp_path: Path) -> None:
    """Held: the strategy's own stop covers half the position; ``closable`` is 0.5, the early
    exit still fires. Would fail if ``_closing_whole`` skipped any position with a closable
    below its size."""
    journal = _run(tmp_path, {0: _buy, 1: _own_stop(0.5)}, ExitsParams(early_exit_fraction=0.5))
    actions = _risk_exits(journal)
    assert any("flatten" in message for message in actions), actions


def test_exits_native_trail_moves_the_strategys_own_whole_stop(tmp_path: Path) -> None:
    """Long 1 at 100, the strategy's own reduce-only stop at 90 for all of it; with
    ``trailing_native`` a rise to 120 must ask to move that stop up (MOVE_STOP), as before
    bf06df8. FAILS on bf06df8: the position reads as closing whole, no move is asked."""
    bars = [
        bar(0, 100, 100, 100, 100),
        bar(1, 100, 100, 100, 100),
        bar(2, 100, 100, 100, 100),
        bar(3, 100, 120, 100, 120),
        bar(4, 120, 120, 120, 120),
    ]
    journal = Journal(tmp_path / "journal.sqlite")
    params = ExitsParams(early_exit_fraction=0.0, trailing_pct=0.05, trailing_native=True)
    engine = paper_engine(
        journal, "run-1", Scripted({0: _buy, 1: _own_stop(1.0)}), hooks=_hooks(Exits(params))
    )
    engine.run(bars)
    actions = _risk_exits(journal)
    assert any("move_stop" in message for message in actions), actions
