"""A restart moves no risk baseline: ``prop-firm`` keeps the day's start and its "no entries
until the next trading day", ``circuit-breaker`` its day, week and peak and the tier they set,
and the engine its equity peak and day's start (the status's drawdown and today's P&L).

Each plugin restored from the journaled equity (``restores-equity``) decides as the one that
lived through the same bars; without the restore, a bot down 4% on the day could lose another
5% after a restart, and a breaker at tier 2 would trade again at tier 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.runtime.helpers import HOUR, Scripted, bar, flat_bars, paper_engine
from tests.runtime.risk_helpers import bot_with, manifest
from tradefleet_plugins.risk.circuit_breaker import CircuitBreaker
from tradefleet_plugins.risk.circuit_breaker_params import CircuitBreakerParams
from tradefleet_plugins.risk.prop_firm import PropFirm
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.capabilities import Capability
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Instrument, OrderIntent, Position, RiskAction, Side
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.session import BotSession

# Noon in Prague, 2024-03-30: a 40-hour path crosses the trading day's boundary (midnight).
NOON = int(datetime(2024, 3, 30, 11, tzinfo=UTC).timestamp())
HELD = {"X": Position("X", 100, 100.0)}
STOPS = {"X": ((100.0, 99.99),)}


def ctx(equity: float, ts: int, positions: dict[str, Position] | None = None) -> RiskContext:
    return RiskContext(
        ts=ts,
        equity=equity,
        # The engine's: a position is paid for in cash (equity = cash + Σ quantity × mark).
        cash=equity
        - sum(p.quantity * 100.0 for p in (HELD if positions is None else positions).values()),
        start_of_day_equity=equity,
        peak_equity=equity,
        positions=HELD if positions is None else positions,
        marks={"X": 100.0},
        instrument=Instrument("X"),
        stops=STOPS,
        initial_equity=100_000.0,
    )


def entry(quantity: float) -> OrderIntent:
    return OrderIntent("X", Side.BUY, quantity, stop_loss=99.0)  # risks quantity × 1


def _stamps(count: int) -> list[int]:
    return [NOON + i * HOUR for i in range(count)]


# Equity that stays above the total-loss flatten (8% of 100,000): the total lock is journaled
# and restored on its own (``restores-lock``); this is about the baselines.
PATHS = st.lists(st.floats(92_500.0, 108_000.0), min_size=1, max_size=40)
QUANTITIES = (500.0, 1_500.0, 3_000.0, 6_000.0)


@settings(max_examples=80, deadline=None)
@given(PATHS)
def test_prop_firm_restored_from_the_journal_decides_as_the_one_that_lived(
    path: list[float],
) -> None:
    stamps = _stamps(len(path))
    lived = PropFirm(PropFirmParams())
    for ts, equity in zip(stamps, path, strict=True):
        lived.account_actions(ctx(equity, ts))  # after each bar, as the engine asks
    restored = PropFirm(PropFirmParams())
    restored.restore_equity(stamps, path)
    now = ctx(path[-1], stamps[-1] + HOUR // 2)
    for quantity in QUANTITIES:
        theirs, ours = lived.check(entry(quantity), now), restored.check(entry(quantity), now)
        assert (ours.action, ours.quantity, ours.code) == (
            theirs.action,
            theirs.quantity,
            theirs.code,
        )


def test_a_day_down_4_percent_may_not_lose_5_more_after_a_restart() -> None:
    stamps, path = _stamps(3), [100_000.0, 98_000.0, 97_000.0]  # one day, 3% down
    later = ctx(97_000.0, stamps[-1] + HOUR, positions={})
    no_costs = PropFirmParams(fee_bps=0.0, slippage_bps=0.0)  # risks quantity × 1, no more
    forgetful = PropFirm(no_costs)  # what a restart without the journal would be
    assert forgetful.check(entry(4_000.0), later).action is RiskAction.APPROVE
    restored = PropFirm(no_costs)
    restored.restore_equity(stamps, path)
    # The day's floor is 95,000: 2,000 of room; a 4,000 risk is refused, 1,500 is not.
    assert restored.check(entry(4_000.0), later).action is RiskAction.VETO
    assert restored.check(entry(1_500.0), later).action is RiskAction.APPROVE


def test_a_blocked_day_stays_blocked_after_a_restart() -> None:
    stamps, path = _stamps(3), [100_000.0, 95_900.0, 96_500.0]  # 4.1%: flattened, blocked
    restored = PropFirm(PropFirmParams())
    restored.restore_equity(stamps, path)
    decision = restored.check(entry(1.0), ctx(96_500.0, stamps[-1] + HOUR, positions={}))
    assert (decision.action, decision.code) == (RiskAction.VETO, "daily_loss")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(70_000.0, 130_000.0), min_size=1, max_size=40))
def test_circuit_breaker_restored_from_the_journal_is_at_the_tier_it_reached(
    path: list[float],
) -> None:
    params = CircuitBreakerParams()
    stamps = _stamps(len(path))
    lived = CircuitBreaker(params)
    for ts, equity in zip(stamps, path, strict=True):
        lived.account_actions(ctx(equity, ts))
    restored = CircuitBreaker(params)
    restored.restore_equity(stamps, path)
    assert restored.tier() == lived.tier()
    now = ctx(path[-1], stamps[-1] + HOUR // 2)
    for quantity in QUANTITIES:
        theirs, ours = lived.check(entry(quantity), now), restored.check(entry(quantity), now)
        assert (ours.action, ours.quantity) == (theirs.action, theirs.quantity)
    # What the tiers asked of the account was done before the restart: nothing is repeated.
    assert restored.account_actions(ctx(path[-1], stamps[-1] + HOUR // 2)) == []


class _Recorder:
    def __init__(self) -> None:
        self.shown: list[tuple[list[int], list[float]]] = []

    def restore_equity(self, timestamps: Sequence[int], equity: Sequence[float]) -> None:
        self.shown.append((list(timestamps), list(equity)))


def _engine(journal: Journal, run_id: str, hooks: RiskHooks) -> Engine:
    return paper_engine(journal, run_id, Scripted(), hooks=hooks)


def test_the_journal_shows_each_plugin_the_account_since_its_last_reset(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    first = Journal(path, durable=True)
    engine = _engine(first, "run-1", RiskHooks())
    engine.run([bar(i, 100, 100, 100, 100) for i in range(5)])
    reset_at = engine.now - 2 * HOUR  # a person reset "b"'s lock at the third bar's close
    first.record_event(reset_at, "risk_lock_reset", "b lock reset", {"plugin": "b"})
    first.close()

    second = Journal(path, durable=True)
    a, b = _Recorder(), _Recorder()
    restarted = _engine(second, "run-2", RiskHooks(equity_restorers=[("a", a), ("b", b)]))
    timestamps, equity = second.account_equity("bot")
    assert len(timestamps) == 5 and list(equity) == [10_000.0] * 5
    restarted.restore_equity(timestamps, equity, second.lock_resets("bot"))
    assert a.shown == [(list(timestamps), list(equity))]
    # From the reset on: the snapshot at its time is the equity the reset started from.
    assert b.shown == [(list(timestamps[2:]), list(equity[2:]))]
    shown = second.query("SELECT data FROM events WHERE kind = 'risk_equity_restored'")
    assert len(shown) == 2
    second.close()


@pytest.mark.parametrize("plugin", ["prop-firm", "circuit-breaker"])
def test_the_built_in_baseline_plugins_declare_it(plugin: str) -> None:
    registry = PluginRegistry.discover()
    assert registry.get(PluginKind.RISK, plugin).spec.has(Capability.RESTORES_EQUITY)


def test_a_restarted_paper_bot_restores_its_breakers_baselines(tmp_path: Path) -> None:
    """Through the session, as ``serve`` and ``run`` start a bot: the breaker that saw the
    account fall 12% from its peak before the restart is at tier 2 after it, not tier 0."""
    registry = PluginRegistry.discover()
    document = manifest([{"name": "circuit-breaker"}], mode="paper", capital=10_000.0)
    path = tmp_path / "journal.sqlite"
    # 100 units bought at 100, the market falls to 88: 12% of the peak equity is gone.
    prices = [100.0, 100.0, 100.0, 94.0, 88.0]
    opener = Scripted({0: lambda ctx, b: ctx.buy("TEST", 100)})
    journal = Journal(path, durable=True)
    first = BotSession(
        bot_with(registry, document, opener, tmp_path), journal, bars=flat_bars(prices)
    )
    first.run_to_end()
    journal.close()
    breaker = first.bot.risk[0][1]
    assert breaker.tier() == 2  # type: ignore[attr-defined]

    journal = Journal(path, durable=True)
    second = BotSession(bot_with(registry, document, Scripted(), tmp_path), journal, bars=[])
    second.open()
    restarted = second.bot.risk[0][1]
    assert restarted.tier() == 2  # type: ignore[attr-defined]
    shown = journal.query("SELECT data FROM events WHERE kind = 'risk_equity_restored'")
    assert len(shown) == 1 and '"snapshots": 5' in shown[0][0]
    tiers = journal.query("SELECT message FROM events WHERE kind = 'risk_tier' ORDER BY id")
    assert tiers[-1][0] == "circuit-breaker tier 0 -> 2"  # said again after the restart
    journal.close()


def test_a_restarted_bot_keeps_its_equity_peak_and_days_start(tmp_path: Path) -> None:
    """The status's drawdown and today's P&L (their metrics and the drawdown alerts) are the
    account's after a restart: a bot 8.6% below its peak is not at 0% because it restarted."""
    registry = PluginRegistry.discover()
    document = manifest([], mode="paper", capital=10_000.0)
    path = tmp_path / "journal.sqlite"
    # 100 units bought at 100. The 24th bar closes at midnight: day 2 starts at 10,500, the
    # peak; then 9,500 and 9,600.
    prices = [100.0] * 23 + [105.0, 95.0, 96.0]
    opener = Scripted({0: lambda ctx, b: ctx.buy("TEST", 100)})
    journal = Journal(path, durable=True)
    first = BotSession(
        bot_with(registry, document, opener, tmp_path), journal, bars=flat_bars(prices)
    )
    first.run_to_end()
    assert first.engine is not None
    lived = (first.engine.peak_equity, first.engine.day_start_equity, first.engine.equity)
    assert lived == (10_500.0, 10_500.0, 9_600.0)
    journal.close()

    # The restart is shown the same bars: all of them were handled, so all are history.
    journal = Journal(path, durable=True)
    second = BotSession(
        bot_with(registry, document, Scripted(), tmp_path), journal, bars=flat_bars(prices)
    )
    second.run_to_end()
    assert second.engine is not None
    restarted = second.engine
    assert (restarted.peak_equity, restarted.day_start_equity, restarted.equity) == lived
    journal.close()
