"""circuit-breaker, probation and quality-guard cut or refuse only what a reversal opens.

An order that sells more than the long it faces (a reversal sent as one order: ``ctx.sell``
past the position, a custom strategy's flip) is not reduce-only, yet part of it closes the
position (``RiskContext.closing``). That part is an exit, as pre-trade's caps have it: it
always goes. A rule that cuts entries cuts only what the order opens (long 500, tier 1's 25%
cut of a ``sell 600`` sends 575, not 450, which would leave the bot long 50 of a position the
strategy closed); a rule that refuses entries shrinks a reversal to its closing part (tier 2
lets the ``sell 600`` close the long instead of keeping it open while the account is down).
What a cut leaves to open below the instrument's minimum is not sent. An order that only
closes passes whole. (The engine's halt, pause and lock gate refuses a whole reversal before
the chain, by design: tests/runtime/test_risk_reducing.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.runtime.helpers import Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tradefleet_plugins.risk.circuit_breaker import WARN, CircuitBreaker, decide
from tradefleet_plugins.risk.circuit_breaker_params import CircuitBreakerParams
from tradefleet_plugins.risk.probation import Probation
from tradefleet_plugins.risk.probation_params import ProbationParams
from tradefleet_plugins.risk.quality_guard import QualityGuard
from tradefleet_plugins.risk.quality_guard_params import QualityGuardParams
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Instrument, OrderIntent, RiskAction, Side, Trade
from tradefleet_runtime.sdk.testing import risk_context

SELL_600 = OrderIntent("X", Side.SELL, 600.0)


def _long_500(equity: float = 10_000.0, **given: Any) -> Any:
    """The account long 500 X at 100, with ``equity``."""
    return risk_context("X", equity=equity, positions={"X": 500.0}, marks={"X": 100.0}, **given)


# -- circuit-breaker, in the engine --------------------------------------------------------------


def _run(tmp: Path, params: dict[str, Any], sell: float) -> tuple[float, list[Any]]:
    strategy = Scripted(
        {
            0: lambda ctx, b: ctx.buy("TEST", 500),  # fills at 100: 5x the 10,000 equity
            3: lambda ctx, b: ctx.sell("TEST", sell),  # at 99 (5% down): close and reverse
        }
    )
    chain = [{"name": "circuit-breaker", "params": {"reduce_fraction": 0.0001, **params}}]
    bot = bot_with(PluginRegistry.discover(), manifest(chain), strategy, tmp)
    session = open_session(bot)
    engine = session.engine
    assert engine is not None
    engine.run(flat_bars([100.0, 100.0, 99.0, 99.0, 99.0, 99.0, 99.0]))
    journal = session.journal
    assert isinstance(journal, Journal)
    decisions = journal.query(
        "SELECT action, quantity_in, quantity_out, reason FROM risk_decisions WHERE side = 'sell'"
        " AND plugin = 'circuit-breaker'"
    )
    return engine.position("TEST").quantity, list(decisions)


def test_breaker_tier_1_never_cuts_a_reversal_below_the_position_it_closes(
    tmp_path: Path,
) -> None:
    tier_1 = {"warn_drawdown": 0.02, "reduce_drawdown": 0.4, "lock_drawdown": 0.5,
              "max_drawdown": 0.6, "weekly_loss": 0.5}  # fmt: skip
    held, decisions = _run(tmp_path, tier_1, sell=600.0)
    assert "tier 1" in str(decisions)
    assert held <= 0.0, f"still long {held:g} after a sell of 600 against 500: {decisions}"
    assert held == -75.0  # the 100 it opens cut by 25%


def test_breaker_tier_2_lets_a_reversal_close_the_position(tmp_path: Path) -> None:
    tier_2 = {"warn_drawdown": 0.02, "reduce_drawdown": 0.04, "lock_drawdown": 0.5,
              "max_drawdown": 0.6, "weekly_loss": 0.5}  # fmt: skip
    held, decisions = _run(tmp_path, tier_2, sell=600.0)
    assert "tier 2" in str(decisions)
    assert held <= 0.0, f"still long {held:g} after a sell of 600 against 500: {decisions}"
    assert held == 0.0  # nothing opened: tier 2 takes no new entries


# -- circuit-breaker, its decision ----------------------------------------------------------------

# Tier 1 from 2% down, tier 2 from 4%, tier 3 (a lock) from 8%.
TIERS = CircuitBreakerParams(warn_drawdown=0.02, reduce_drawdown=0.04, lock_drawdown=0.08,
                             max_drawdown=0.5, weekly_loss=0.5)  # fmt: skip


def _breaker_at(equity: float) -> CircuitBreaker:
    """A breaker whose day started at 10,000 and is now at ``equity``."""
    breaker = CircuitBreaker(TIERS)
    breaker.account_actions(_long_500(10_000.0))
    breaker.account_actions(_long_500(equity))
    return breaker


def test_breaker_tiers_cut_only_what_a_reversal_opens() -> None:
    warned = _breaker_at(9_700.0).check(SELL_600, _long_500(9_700.0))
    assert warned.action is RiskAction.SHRINK and warned.quantity == 575.0, warned
    assert "600 -> 575 (500 close X's position)" in warned.reason
    for equity, code in ((9_500.0, "breaker_halt"), (9_000.0, "breaker_locked")):
        refused = _breaker_at(equity).check(SELL_600, _long_500(equity))
        assert refused.action is RiskAction.SHRINK and refused.quantity == 500.0, refused
        assert refused.code == code and "the part closing X's position" in refused.reason


def test_breaker_passes_an_order_that_only_closes() -> None:
    """Sent as a plain sell (the engine marks it reduce-only before the chain; the plugin on its
    own does not need that)."""
    decision = _breaker_at(9_500.0).check(OrderIntent("X", Side.SELL, 500.0), _long_500(9_500.0))
    assert decision.action is RiskAction.APPROVE and decision.quantity is None


def test_breaker_sends_no_opening_part_below_the_minimum() -> None:
    """Tier 1 leaves 75 of the 100 a reversal opens; the venue takes no less than 80: only the
    500 closing the long go."""
    ctx = _long_500(9_700.0, instrument=Instrument("X", lot_step=1.0, min_quantity=80.0))
    decision = _breaker_at(9_700.0).check(SELL_600, ctx)
    assert decision.action is RiskAction.SHRINK and decision.quantity == 500.0, decision
    assert "75, is below X's minimum quantity 80" in decision.reason


def test_breaker_still_refuses_entries_and_sells_an_exit_already_closes() -> None:
    """Unchanged: an entry in tier 2 is refused whole, and so is a sell whose long a working
    ``ctx.close`` closes already (the sell closes nothing and opens 600)."""
    breaker = _breaker_at(9_500.0)
    buy = breaker.check(OrderIntent("X", Side.BUY, 10.0), _long_500(9_500.0))
    assert buy.action is RiskAction.VETO
    covered = breaker.check(SELL_600, _long_500(9_500.0, closable={"X": 0.0}))
    assert covered.action is RiskAction.VETO
    decision = decide(OrderIntent("X", Side.BUY, 100.0), WARN, "x", TIERS)  # no account told
    assert decision.quantity == 75.0


# -- probation ------------------------------------------------------------------------------------


def _probation(loss: float) -> tuple[Probation, float]:
    """Probation whose one closed trade lost ``loss`` of the 10,000 before it; the equity now."""
    plugin = Probation(ProbationParams(window_trades=5))
    plugin.bind_trades([Trade("X", 1, 1, 0, 1, 100, 99, -10_000.0 * loss, 0.0)])
    return plugin, 10_000.0 * (1.0 - loss)


def test_probation_halves_only_what_a_reversal_opens() -> None:
    plugin, equity = _probation(0.06)  # from 5%: sizes x0.5
    decision = plugin.check(SELL_600, _long_500(equity))
    assert decision.action is RiskAction.SHRINK and decision.quantity == 550.0, decision
    entry = plugin.check(OrderIntent("X", Side.BUY, 600.0), _long_500(equity))
    assert entry.quantity == 300.0  # an entry that adds: halved whole, as before


def test_probation_hibernating_lets_a_reversal_close_the_position() -> None:
    plugin, equity = _probation(0.165)  # beyond 15%: hibernates
    decision = plugin.check(SELL_600, _long_500(equity))
    assert decision.action is RiskAction.SHRINK and decision.quantity == 500.0, decision
    assert decision.code == "hibernating"
    assert plugin.lock_reason() is not None  # the lock is taken all the same
    again = plugin.check(SELL_600, _long_500(equity))  # held by the lock: the close still goes
    assert again.action is RiskAction.SHRINK and again.quantity == 500.0
    assert (
        plugin.check(OrderIntent("X", Side.BUY, 1.0), _long_500(equity)).action is RiskAction.VETO
    )


# -- quality-guard --------------------------------------------------------------------------------


def test_quality_guard_shrinks_only_what_a_reversal_opens() -> None:
    guard = QualityGuard(QualityGuardParams(window=10, min_samples=5, win_rate_floor=0.5))
    guard.bind_trades([Trade("X", 1, 1, 0, 1, 100, 99, -1.0, 0.0)] * 5)  # 0% won: x0.5
    decision = guard.check(SELL_600, _long_500())
    assert decision.action is RiskAction.SHRINK and decision.quantity == 550.0, decision
    assert decision.code == "quality_shrink"


def test_quality_guard_stopped_lets_a_reversal_close_the_position() -> None:
    guard = QualityGuard(QualityGuardParams())
    guard.restore_lock("entries stopped: slippage Cpk 0.50", 0)
    decision = guard.check(SELL_600, _long_500())
    assert decision.action is RiskAction.SHRINK and decision.quantity == 500.0, decision
    assert decision.code == "quality_stopped"
    assert guard.check(OrderIntent("X", Side.BUY, 1.0), _long_500()).action is RiskAction.VETO
