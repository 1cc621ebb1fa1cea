"""circuit-breaker: tier boundaries, actions through the order path, the journaled lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.runtime.helpers import HOUR, T0, Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, earlier_run, events, manifest, open_session
from tradefleet_plugins.risk.circuit_breaker import (
    LOCKED,
    NORMAL,
    REDUCE,
    WARN,
    CircuitBreaker,
    decide,
    measures,
    tier_for,
)
from tradefleet_plugins.risk.circuit_breaker_params import CircuitBreakerParams
from tradefleet_plugins.risk.rules import DayClock, exposure_cut, trading_day, trading_week
from tradefleet_runtime.model import OrderIntent, OrderType, Position, RiskAction, Side
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import Bot

P = CircuitBreakerParams()
EPS = 1e-9


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


@pytest.mark.parametrize(
    ("loss", "tier"),
    [
        (0.05 - EPS, NORMAL),
        (0.05, WARN),
        (0.05 + EPS, WARN),
        (0.10 - EPS, WARN),
        (0.10, REDUCE),
        (0.10 + EPS, REDUCE),
        (0.15 - EPS, REDUCE),
        (0.15, LOCKED),
        (0.15 + EPS, LOCKED),
    ],
)
def test_daily_tiers_at_their_boundaries(loss: float, tier: int) -> None:
    equity = 100_000.0 * (1 - loss)
    assert tier_for(measures(equity, 100_000, 100_000, 100_000, 100_000), P)[0] == tier


def test_drawdown_from_the_days_peak_counts_like_the_days_loss() -> None:
    # Up 20% during the day, then 10% off that peak: still up on the day, but tier 2.
    m = measures(108_000, 100_000, 120_000, 100_000, 120_000)
    assert m.day_loss == 0 and tier_for(m, P)[0] == REDUCE


@pytest.mark.parametrize(
    ("week_loss", "peak_dd", "tier"),
    [
        (0.10 - EPS, 0.0, NORMAL),
        (0.10, 0.0, REDUCE),
        (0.10 + EPS, 0.0, REDUCE),
        (0.0, 0.20 - EPS, NORMAL),
        (0.0, 0.20, LOCKED),
        (0.0, 0.20 + EPS, LOCKED),
    ],
)
def test_weekly_loss_and_max_drawdown_limits(week_loss: float, peak_dd: float, tier: int) -> None:
    # The week started at 100,000 and the peak was 100,000; the day started where equity is.
    base = 100_000.0
    equity = base * (1 - max(week_loss, peak_dd))
    week_start = base if week_loss else equity
    peak = base if peak_dd else equity
    got, reason = tier_for(measures(equity, equity, equity, week_start, peak), P)
    assert got == tier, reason


def test_decisions_per_tier() -> None:
    buy = OrderIntent("X", Side.BUY, 100.0)
    assert decide(buy, NORMAL, "", P).action is RiskAction.APPROVE
    warned = decide(buy, WARN, "5%", P)
    assert warned.action is RiskAction.SHRINK and warned.quantity == pytest.approx(75.0)
    assert decide(buy, REDUCE, "10%", P).action is RiskAction.VETO
    assert decide(buy, LOCKED, "15%", P).action is RiskAction.VETO
    close = OrderIntent("X", Side.SELL, 100.0, reduce_only=True)
    assert all(decide(close, t, "", P).action is RiskAction.APPROVE for t in range(4))


def test_exposure_cut_closes_the_riskiest_first() -> None:
    positions = {
        "A": Position("A", 10, 100),  # 1,000
        "B": Position("B", -30, 100),  # 3,000 (the riskiest)
        "C": Position("C", 20, 100),  # 2,000
    }
    marks = {"A": 100.0, "B": 100.0, "C": 100.0}
    cuts = exposure_cut(positions, marks, 0.5)  # 3,000 of 6,000
    assert cuts == [("B", 1.0)]
    cuts = exposure_cut(positions, marks, 0.75)  # 4,500: B whole, then C in part
    assert cuts[0] == ("B", 1.0) and cuts[1][0] == "C" and cuts[1][1] == pytest.approx(0.75)


def test_the_lock_cooldown_refuses_an_early_reset() -> None:
    breaker = CircuitBreaker(CircuitBreakerParams(cooldown_minutes=60))
    breaker.restore_lock("circuit breaker tier 3: daily drawdown 15%", T0)
    assert breaker.lock_reason() == "circuit breaker tier 3: daily drawdown 15%"
    breaker._now = T0 + 3599
    refusal = breaker.reset_lock()
    assert refusal is not None and "cooldown" in refusal
    breaker._now = T0 + 3600
    assert breaker.reset_lock() is None and breaker.lock_reason() is None


PRICES = [100, 100, 100, 99.5, 98.9, 98.9, 98.5, 97.9, 97.9, 97.4, 96.9, 96.5, 96, 96, 96, 96]


def _tripping_bot(registry: PluginRegistry, tmp: Path, cooldown: float = 120) -> Bot:
    strategy = Scripted(
        {
            0: lambda ctx, b: ctx.buy("TEST", 500),  # 5× equity: 1.0 down is 5%
            4: lambda ctx, b: ctx.buy("TEST", 100),  # tier 1: cut to 75
            5: lambda ctx, b: ctx.buy("TEST", 50, order_type=OrderType.LIMIT, price=90),  # rests
            13: lambda ctx, b: ctx.buy("TEST", 10),  # locked: vetoed by the engine
        }
    )
    breaker = {"name": "circuit-breaker", "params": {"cooldown_minutes": cooldown}}
    return bot_with(registry, manifest([breaker]), strategy, tmp)


def test_a_falling_account_walks_up_the_tiers_and_locks(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    bot = _tripping_bot(registry, tmp_path)
    session = open_session(bot)
    engine, journal = session.engine, session.journal
    assert engine is not None
    engine.run(flat_bars(PRICES))
    tiers = [json.loads(d)["tier"] for _, d in events(journal, "risk_tier")]
    assert tiers == [WARN, REDUCE, LOCKED]
    actions = [json.loads(d) for _, d in events(journal, "risk_action")]
    kinds = [a["kind"] for a in actions]
    assert kinds[:2] == ["cancel_entries", "reduce"] and kinds[-1] == "flatten"
    assert all(a["plugin"] == "circuit-breaker" for a in actions)
    # The orders the actions sent: reduce-only, tagged with the plugin, own id prefix.
    rows = journal.query(
        "SELECT client_order_id, side, reduce_only, tag FROM orders WHERE tag = ?",
        "risk:circuit-breaker",
    )
    assert len(rows) == 2 and all(r[1] == "sell" and r[2] == 1 for r in rows)
    assert all(str(r[0]).startswith(engine._prefix + "r") for r in rows)
    assert not engine.portfolio.open_positions  # flattened
    shrunk = journal.query(
        "SELECT quantity_in, quantity_out FROM risk_decisions WHERE plugin = 'circuit-breaker'"
        " AND action = 'shrink'"
    )
    assert shrunk == [(100.0, 75.0), (50.0, 37.5)]  # the market buy and the resting limit
    [(message, data)] = events(journal, "risk_locked")
    assert json.loads(data)["plugin"] == "circuit-breaker" and "tier 3" in message
    assert journal.risk_locks(bot.name)["circuit-breaker"][0].startswith("circuit breaker tier 3")
    vetoed = journal.query(
        "SELECT plugin, reason FROM risk_decisions WHERE action = 'veto' ORDER BY id DESC LIMIT 1"
    )
    assert vetoed[0][0] == "engine.locked"
    assert ("engine.locked", "veto") in engine.stats.risk_decisions
    assert [r[:3] for r in engine.risk_states()] == [
        ("circuit-breaker", True, engine.state.locks()["circuit-breaker"])
    ]
    assert engine.risk_states()[0][3] == LOCKED
    # The resting entry was cancelled by tier 2.
    assert not [o for o in engine.open_orders() if not o.reduce_only]


def test_reset_only_after_the_cooldown_and_journaled(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    bot = _tripping_bot(registry, tmp_path, cooldown=180)
    session = open_session(bot)
    engine, journal = session.engine, session.journal
    assert engine is not None
    bars = flat_bars([*PRICES, *[96.0] * 6])
    done = 0
    while "circuit-breaker" not in journal.risk_locks(bot.name):
        engine.run(bars[done : done + 1])
        done += 1
    since = journal.risk_locks(bot.name)["circuit-breaker"][1]
    assert since == engine.now
    found, refusal = engine.reset_risk_lock("circuit-breaker", "ops", "reviewed")
    assert found and "cooldown" in refusal
    assert events(journal, "risk_lock_reset_refused")
    assert engine.state.locks()
    engine.run(bars[done : done + 2])  # 2 hours later: still too early
    assert "cooldown" in engine.reset_risk_lock("circuit-breaker", "ops", "reviewed")[1]
    engine.run(bars[done + 2 : done + 3])  # 3 hours later
    assert engine.now - since >= 3 * HOUR
    assert engine.reset_risk_lock("circuit-breaker", "ops", "reviewed") == (True, "")
    [(_, data)] = events(journal, "risk_lock_reset")
    assert json.loads(data) == {"plugin": "circuit-breaker", "who": "ops", "reason": "reviewed"}
    assert journal.risk_locks(bot.name) == {}
    assert engine.state.locks() == {} and engine.risk_states()[0][3] == NORMAL
    assert engine.reset_risk_lock("nope", "ops", "x") == (False, "")


def test_a_journaled_lock_is_restored_by_a_paper_session(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    journal = earlier_run(path)
    journal.record_event(
        T0,
        "risk_locked",
        "locked",
        {"plugin": "circuit-breaker", "reason": "circuit breaker tier 3: x", "since_ts": T0},
    )
    journal.close()
    strategy = Scripted({0: lambda ctx, b: ctx.buy("TEST", 1)})
    document = manifest([{"name": "circuit-breaker"}], mode="paper")
    bot = bot_with(registry, document, strategy, tmp_path)
    session = open_session(bot, path)
    engine = session.engine
    assert engine is not None
    assert engine.state.locks() == {"circuit-breaker": "circuit breaker tier 3: x"}
    engine.run(flat_bars([100, 100]))
    assert engine.stats.orders == 0
    assert ("engine.locked", "veto") in engine.stats.risk_decisions
    assert events(session.journal, "risk_lock_restored")


@settings(max_examples=200, deadline=None)
@given(
    start_minute=st.integers(min_value=0, max_value=1439),
    moves=st.lists(
        st.sampled_from([-86401, -3600, -1, 0, 1, 59, 3600, 86399, 86400, 86401, 7 * 86400]),
        max_size=200,
    ),
    tz=st.sampled_from(["UTC", "Etc/UTC", "Europe/Prague", "America/New_York"]),
)
def test_day_clock_is_trading_day(start_minute: int, moves: list[int], tz: str) -> None:
    # The cached day bounds answer exactly as the per-ts conversion, in any direction of time.
    clock = DayClock(tz, start_minute)
    ts = 1_711_846_800  # 2024-03-31 01:00 UTC: a DST change in Prague
    for move in moves:
        ts += move
        assert clock.day(ts) == trading_day(ts, tz, start_minute)
        assert clock.week(ts) == trading_week(ts, tz, start_minute)
