"""A halted or locked bot lets a reversal's closing part through, never its opening part.

The gate (``TradingState.gate``) refuses what an order opens under a halt or a risk lock; an
order past the position there is cut to the part that closes what working exits do not close
already (``risk_driver.gate_cut``), sent reduce-only without the bracket it carried (event
``bracket_dropped``), the cut journaled and counted as the gate's decision. With nothing left to
close it is vetoed whole, as before. Closing the old position only reduces risk: before, the
whole reversal was refused and the position stayed open while the bot was halted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import Scripted, bar, flat_bars, make_engine
from tests.runtime.risk_helpers import bot_with, events, manifest, open_session
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.risk_driver import gate_cut
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderIntent, OrderType, RiskAction, RiskDecision, Side
from tradefleet_runtime.plugins.registry import PluginRegistry

_HALT = "bot is halted: kill switch"
_CUT = "; the sell of 25 cut to the 10 closing the TEST position, sent reduce-only"


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


def _decisions(journal: Journal) -> list[tuple[Any, ...]]:
    """The gate's and the chain's decisions on sells: (plugin, action, in, out, reason)."""
    return [
        tuple(row)
        for row in journal.query(
            "SELECT plugin, action, quantity_in, quantity_out, reason FROM risk_decisions"
            " WHERE side = 'sell' ORDER BY id"
        )
    ]


def _sells(journal: Journal) -> list[tuple[Any, ...]]:
    """The sells sent (not a bracket's children): (quantity, reduce_only, SL, TP)."""
    return [
        tuple(row)
        for row in journal.query(
            "SELECT quantity, reduce_only, stop_loss, take_profit FROM orders"
            " WHERE side = 'sell' AND parent_id IS NULL ORDER BY rowid"
        )
    ]


def _positions_held(journal: Journal) -> list[float]:
    """The position after each fill, summed from the journaled fills: a short shows below 0."""
    held, after = 0.0, []
    for side, quantity in journal.query("SELECT side, quantity FROM fills ORDER BY rowid"):
        held += quantity if side == "buy" else -quantity
        after.append(held)
    return after


def _halted_long(journal: Journal, sell: Any, before: Any = None) -> Engine:
    """Long 10 TEST at 100 (bar 0; ``before`` on bar 1), halted after bar 1; ``sell`` on bar 2,
    then two more bars."""
    actions = {0: lambda c, b: c.buy("TEST", 10), 2: sell}
    if before is not None:
        actions[1] = before
    engine = make_engine(Scripted(actions), journal=journal)
    bars = flat_bars([100.0] * 5)
    engine.run(bars[:2])
    engine.halt("test", "kill switch")
    engine.run(bars[2:])
    return engine


# -- the decision (pure) ----------------------------------------------------------------------


def test_gate_cut_lets_the_closing_part_through_a_halt_or_a_lock_only() -> None:
    sell = OrderIntent("TEST", Side.SELL, 25.0)
    halted = RiskDecision.veto(_HALT, "halted")
    assert gate_cut("engine.halted", halted, sell, 10.0) == RiskDecision.shrink(
        10.0, _HALT + _CUT, "halted"
    )
    locked = RiskDecision.veto("risk lock in force until a person resets it (x: y)", "risk_locked")
    cut = gate_cut("engine.locked", locked, sell, 2.5)
    assert cut is not None and (cut.action, cut.quantity) == (RiskAction.SHRINK, 2.5)
    assert cut.reason.endswith(
        "the sell of 25 cut to the 2.5 closing the TEST position, sent reduce-only"
    )
    assert gate_cut("engine.halted", halted, sell, 0.0) is None  # opens, or exits cover it all
    assert gate_cut("engine.halted", halted, sell._replace(quantity=None), 10.0) is None  # unsized
    paused = RiskDecision.veto("bot is paused", "paused")
    assert gate_cut("engine.paused", paused, sell, 10.0) is None  # a pause refuses it whole


# -- the engine ---------------------------------------------------------------------------------


def test_a_halted_long_selling_25_closes_its_10_reduce_only_and_never_goes_short() -> None:
    """Before: the whole sell was vetoed and the long stayed open while halted."""
    journal = Journal(":memory:")
    engine = _halted_long(journal, lambda c, b: c.sell("TEST", 25))
    assert _decisions(journal) == [("engine.halted", "shrink", 25.0, 10.0, _HALT + _CUT)]
    assert _sells(journal) == [(10.0, 1, None, None)]
    assert engine.position("TEST").quantity == 0.0
    assert _positions_held(journal) == [10.0, 0.0]  # never short
    assert engine.halted and not engine.open_orders("TEST")
    assert engine.stats.risk_decisions[("engine.halted", "shrink")] == 1  # counted
    assert events(journal, "bracket_dropped") == []  # it had no bracket


def test_a_halted_reversals_bracket_is_dropped_and_said() -> None:
    journal = Journal(":memory:")
    engine = _halted_long(
        journal, lambda c, b: c.sell("TEST", 25, stop_loss=105.0, take_profit=90.0)
    )
    assert _sells(journal) == [(10.0, 1, None, None)]  # journaled, and so sent, without them
    assert engine.position("TEST").quantity == 0.0
    assert journal.query("SELECT COUNT(*) FROM orders WHERE parent_id IS NOT NULL") == [(0,)]
    assert not engine.open_orders("TEST")
    ((message, _),) = events(journal, "bracket_dropped")
    assert "its stop-loss and take-profit dropped: the order only closes" in message
    assert "the sell of 25 was cut to the 10 closing the TEST position" in message


def test_a_halted_reversal_closes_only_what_working_exits_leave_and_then_nothing() -> None:
    """A resting exit of 6 (reduce-only) works before the halt: the sell of 25 goes as the 4
    it leaves; a second sell of 25 finds the whole position being closed, and is vetoed."""
    journal = Journal(":memory:")

    def sells(context: Any, bar: Bar) -> None:
        context.sell("TEST", 25)
        context.sell("TEST", 25)

    resting = lambda c, b: c.sell("TEST", 6, order_type=OrderType.LIMIT, price=150.0)  # noqa: E731
    engine = _halted_long(journal, sells, before=resting)
    cut = "; the sell of 25 cut to the 4 closing the TEST position, sent reduce-only"
    assert _decisions(journal) == [
        ("engine.halted", "shrink", 25.0, 4.0, _HALT + cut),
        ("engine.halted", "veto", 25.0, 0.0, _HALT),
    ]
    assert _sells(journal) == [(6.0, 1, None, None), (4.0, 1, None, None)]
    assert engine.position("TEST").quantity == 6.0  # the resting exit of 6 closes the rest
    assert [o.quantity for o in engine.open_orders("TEST")] == [6.0]


def test_a_risk_lock_lets_a_reversals_closing_part_through(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """probation (``scope: bot``) hibernates once LOSER's long closed 50% down and an entry met
    it: a lock held for every symbol. TEST's long of 10 is still open; its sell of 25 goes as
    the 10, reduce-only, decided by the gate (before: vetoed whole by ``engine.locked``)."""
    strategy = Scripted(  # one bar of LOSER, then one of TEST, at each time
        {
            0: lambda c, b: c.buy("LOSER", 100),
            1: lambda c, b: c.buy("TEST", 10),
            4: lambda c, b: c.sell("LOSER", 100),  # at 50: -5,000, a rolling loss of 50%
            6: lambda c, b: c.buy("LOSER", 1),  # probation hibernates: the lock is taken
            7: lambda c, b: c.sell("TEST", 25),
        }
    )
    document = manifest([{"name": "probation"}], symbols=("LOSER", "TEST"))
    session = open_session(bot_with(registry, document, strategy, tmp_path))
    engine, journal = session.engine, session.journal
    assert engine is not None and isinstance(journal, Journal)
    loser = flat_bars([100.0, 100.0, 50.0, 50.0, 50.0, 50.0], "LOSER")
    engine.run(sorted(loser + flat_bars([100.0] * 6), key=lambda b: (b.ts, b.symbol)))
    assert list(engine.state.locks()) == ["probation"]
    [(_, action, quantity_in, quantity_out, reason)] = [
        d for d in _decisions(journal) if d[0] == "engine.locked"
    ]
    assert (action, quantity_in, quantity_out) == ("shrink", 25.0, 10.0)
    assert reason == (
        "risk lock in force until a person resets it (probation: hibernating: rolling loss "
        "50.00% over 1 trade(s) beyond 15%)" + _CUT
    )
    sent = journal.query(
        "SELECT quantity, reduce_only FROM orders WHERE symbol = 'TEST' AND side = 'sell'"
    )
    assert [tuple(row) for row in sent] == [(10.0, 1)]
    assert engine.position("TEST").quantity == 0.0
    assert engine.stats.risk_decisions[("engine.locked", "shrink")] == 1


def test_a_halt_restored_at_a_restart_lets_the_closing_part_through_as_before(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """A paper bot long 10 is halted and stopped; restarted from its journal, still halted, its
    strategy sells 25: a reduce-only 10, as in the life before."""
    path = tmp_path / "journal.sqlite"
    document = manifest([], mode="paper")
    first = open_session(
        bot_with(registry, document, Scripted({0: lambda c, b: c.buy("TEST", 10)}), tmp_path), path
    )
    assert first.engine is not None and isinstance(first.journal, Journal)
    first.engine.run(flat_bars([100.0, 100.0]))
    assert first.engine.position("TEST").quantity == 10.0
    first.engine.halt("alice", "kill switch")
    first.journal.close()  # killed: no stop policy

    second = open_session(
        bot_with(registry, document, Scripted({0: lambda c, b: c.sell("TEST", 25)}), tmp_path), path
    )
    engine, journal = second.engine, second.journal
    assert engine is not None and isinstance(journal, Journal) and engine.halted
    assert engine.position("TEST").quantity == 10.0
    engine.run([bar(i, 100.0, 100.0, 100.0, 100.0) for i in (2, 3, 4)])
    [(plugin, action, quantity_in, quantity_out, reason)] = _decisions(journal)
    assert (plugin, action, quantity_in, quantity_out) == ("engine.halted", "shrink", 25.0, 10.0)
    assert reason.startswith("bot is halted: restored after restart (") and reason.endswith(_CUT)
    sent = journal.query(
        "SELECT quantity, reduce_only FROM orders WHERE side = 'sell' AND parent_id IS NULL"
    )
    assert [tuple(row) for row in sent] == [(10.0, 1)]
    assert engine.position("TEST").quantity == 0.0 and engine.halted
    journal.close()
