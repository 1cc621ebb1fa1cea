"""quality-guard: slippage Cpk cuts sizes then stops entries (a lock); exits always pass."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.runtime.helpers import HOUR, T0, Scripted, bar, flat_bars
from tests.runtime.risk_helpers import bot_with, earlier_run, events, manifest, open_session
from tradefleet_plugins.risk.quality_guard import (
    NORMAL,
    SHRINK,
    STOPPED,
    QualityGuard,
    assess,
    slippage_bps,
    slippage_cpk,
)
from tradefleet_plugins.risk.quality_guard_params import QualityGuardParams
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Order,
    OrderIntent,
    OrderStatus,
    Position,
    RiskAction,
    Side,
    Trade,
)
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.process_capability import capability_indices
from tradefleet_runtime.sdk.testing import check_shrink_or_veto, judge

P = QualityGuardParams(window=10, min_samples=5, slippage_limit_bps=20.0)
BUY = OrderIntent("X", Side.BUY, 10.0)
EXIT = OrderIntent("X", Side.SELL, 10.0, reduce_only=True)


def fed(guard: QualityGuard, samples: list[float], side: Side = Side.BUY) -> QualityGuard:
    """Each sample becomes one market order decided at 100 and filled ``sample`` bp worse."""
    for i, sample in enumerate(samples):
        order_id = f"o{len(guard._slippage)}-{i}"
        guard.on_order(Order(order_id, "X", side, 1.0), 100.0)
        price = 100.0 * (1 + sample / 10_000.0 * side.sign)
        guard.on_fill(Fill(order_id, "X", side, 1.0, price, 0.0, 0, f"f-{order_id}"))
    return guard


# -- the measure ------------------------------------------------------------------------------


def test_slippage_is_signed_so_that_worse_is_positive() -> None:
    assert slippage_bps(Side.BUY, 101.0, 100.0) == pytest.approx(100.0)
    assert slippage_bps(Side.SELL, 99.0, 100.0) == pytest.approx(100.0)
    assert slippage_bps(Side.SELL, 101.0, 100.0) == pytest.approx(-100.0)


def test_cpk_is_the_reported_one_sided_figure_and_constant_samples_are_read_by_their_mean() -> None:
    samples = [1.0, 3.0, 2.0, 5.0, 4.0]
    cpk, mean, sigma = slippage_cpk(samples, 20.0)
    assert cpk == capability_indices(samples, None, 20.0).cpk
    assert cpk == pytest.approx((20.0 - mean) / (3 * sigma))
    assert slippage_cpk([5.0] * 5, 20.0)[0] == math.inf
    assert slippage_cpk([25.0] * 5, 20.0)[0] == -math.inf


@pytest.mark.parametrize(
    ("samples", "state"),
    [
        ([1.0, 2.0, 3.0, 2.0], NORMAL),  # fewer than min_samples: no action whatever the figure
        ([30.0, 31.0, 29.0, 30.0], NORMAL),
        ([1.0, 2.0, 3.0, 2.0, 1.0], NORMAL),  # Cpk ≈ 7.7
        ([0.0, 10.0, 5.0, 0.0, 10.0], SHRINK),  # mean 5, sigma 5: Cpk 1.0 → below 1.33
        ([0.0, 12.0, 6.0, 0.0, 12.0], STOPPED),  # mean 6, sigma 6: Cpk 0.78 < 1.0
        ([25.0] * 5, STOPPED),  # no spread, beyond the limit
    ],
)
def test_states_follow_the_cpk_thresholds(samples: list[float], state: int) -> None:
    params = QualityGuardParams(window=10, min_samples=5, slippage_limit_bps=20.0,
                                shrink_below_cpk=1.33, stop_below_cpk=0.9)  # fmt: skip
    assert assess(samples, [], params)[0] == state


@given(st.lists(st.floats(-50, 80, allow_nan=False), min_size=5, max_size=30))
def test_the_state_only_worsens_as_cpk_falls(samples: list[float]) -> None:
    state, why = assess(samples, [], P)
    cpk = slippage_cpk(samples, P.slippage_limit_bps)[0]
    expected = STOPPED if cpk < P.stop_below_cpk else SHRINK if cpk < P.shrink_below_cpk else NORMAL
    assert state == expected
    assert (why == "") == (state == NORMAL)


def test_win_rate_floor_shrinks_once_there_are_enough_trades() -> None:
    params = QualityGuardParams(window=10, min_samples=5, win_rate_floor=0.4)
    assert assess([], [True, False, False, False], params)[0] == NORMAL  # 4 trades: too few
    state, why = assess([], [True, False, False, False, False], params)
    assert state == SHRINK and "win rate 20%" in why
    assert assess([], [True, True, False, False, False], params)[0] == NORMAL  # 40%: at the floor


# -- params -----------------------------------------------------------------------------------


def test_params_name_the_field_that_breaks_the_order_of_thresholds() -> None:
    with pytest.raises(ValidationError) as error:
        QualityGuardParams(shrink_below_cpk=1.0, stop_below_cpk=1.0)
    [problem] = error.value.errors()
    assert problem["loc"] == ("stop_below_cpk",)
    assert "shrink_below_cpk" in problem["msg"]
    with pytest.raises(ValidationError) as error:
        QualityGuardParams(window=10, min_samples=11)
    assert error.value.errors()[0]["loc"] == ("min_samples",)
    with pytest.raises(ValidationError):
        QualityGuardParams(shrink_factor=1.0)  # a "shrink" that keeps the size
    assert QualityGuardParams().stop_below_cpk < QualityGuardParams().shrink_below_cpk


# -- decisions, through the SDK's testing kit -------------------------------------------------


def test_a_capable_process_approves_everything() -> None:
    guard = fed(QualityGuard(P), [1.0, 2.0, 3.0, 2.0, 1.0, 2.0])
    assert [d.action for d in judge(guard, [BUY, EXIT])] == [RiskAction.APPROVE] * 2


def test_shrinks_entries_never_exits_and_never_grows() -> None:
    guard = fed(
        QualityGuard(
            QualityGuardParams(
                window=10, min_samples=5, slippage_limit_bps=20.0, stop_below_cpk=0.9
            )
        ),
        [0.0, 10.0, 5.0, 0.0, 10.0],
    )  # fmt: skip  (Cpk 1.0: shrink, not stop)
    entry, exit_, unsized = check_shrink_or_veto(
        guard, [BUY, EXIT, OrderIntent("X", Side.BUY)], name="quality-guard"
    )
    assert not any(v.fault for v in (entry, exit_, unsized))
    assert entry.quantity == 5.0 and entry.decision.code == "quality_shrink"
    assert "slippage Cpk 1.00" in entry.decision.reason
    assert exit_.quantity == 10.0 and exit_.decision.action is RiskAction.APPROVE
    assert unsized.decision.action is RiskAction.APPROVE  # nothing to shrink before the sizer
    assert guard.tier() == SHRINK and guard.lock_reason() is None


def test_stops_entries_with_a_lock_until_a_person_resets_it() -> None:
    guard = fed(QualityGuard(P), [0.0, 12.0, 6.0, 0.0, 12.0])
    entry, exit_ = check_shrink_or_veto(guard, [BUY, EXIT])
    assert entry.vetoed and entry.decision.code == "quality_stopped"
    assert exit_.quantity == 10.0 and not exit_.vetoed
    reason = guard.lock_reason()
    assert reason is not None and "slippage Cpk 0.78" in reason and guard.tier() == STOPPED
    fed(guard, [1.0, 1.0, 2.0, 1.0, 1.0, 2.0])  # better fills do not lift a lock by themselves
    assert judge(guard, BUY)[0].action is RiskAction.VETO
    assert guard.reset_lock() is None and guard.lock_reason() is None
    assert guard.tier() == NORMAL and judge(guard, BUY)[0].action is RiskAction.APPROVE
    fed(guard, [0.0, 12.0, 6.0, 0.0])  # the samples started afresh: 4 < min_samples
    assert guard.tier() == NORMAL


def test_restored_lock_vetoes_entries_after_a_restart() -> None:
    guard = QualityGuard(P)
    guard.restore_lock("entries stopped: slippage Cpk 0.50", 123)
    assert guard.lock_reason() == "entries stopped: slippage Cpk 0.50"
    assert judge(guard, BUY)[0].code == "quality_stopped"
    assert judge(guard, EXIT)[0].action is RiskAction.APPROVE


def test_bracket_children_are_measured_against_their_own_prices() -> None:
    guard = QualityGuard(P)
    parent = Order("p", "X", Side.BUY, 1.0, stop_loss=95.0, take_profit=110.0)
    guard.on_order(parent, 100.0)
    guard.on_fill(Fill("p-sl", "X", Side.SELL, 1.0, 94.05, 0.0, 0, "f1"))  # stop slipped 1%
    guard.on_fill(Fill("unknown", "X", Side.SELL, 1.0, 50.0, 0.0, 0, "f2"))  # not measured
    assert list(guard._slippage) == [pytest.approx(100.0)]


def test_win_rate_comes_from_the_bound_trades() -> None:
    guard = QualityGuard(QualityGuardParams(window=10, min_samples=5, win_rate_floor=0.5))
    trades: list[Trade] = []
    guard.bind_trades(trades)
    for pnl in (10.0, -5.0, -5.0, -5.0, -5.0):
        trades.append(Trade("X", 1, 1.0, 0, 1, 100.0, 100.0 + pnl, pnl, 0.0))
    guard.on_fill(Fill("none", "X", Side.SELL, 1.0, 100.0, 0.0, 0, "f"))  # a closing fill
    [verdict] = check_shrink_or_veto(guard, BUY)
    assert verdict.quantity == 5.0 and "win rate 20%" in verdict.decision.reason


# -- in the engine ----------------------------------------------------------------------------


def gapped_bars(gaps_bps: list[float]) -> list[Bar]:
    """Flat bars at 100 whose next open is ``gaps_bps[k]`` worse for the k-th order: the bot
    buys on even bars and closes on odd ones, each filled at the next bar's open."""
    bars = [bar(0, 100.0, 100.0, 100.0, 100.0)]
    for k, gap in enumerate(gaps_bps):
        sign = 1.0 if k % 2 == 0 else -1.0  # a buy fills worse higher, a sell lower
        price = 100.0 * (1 + sign * gap / 10_000.0)
        bars.append(bar(k + 1, price, price, price, 100.0))
    return bars


def buy_then_close(count: int) -> Scripted:
    """A strategy that buys on even bars and closes on odd ones, for ``count`` bars."""

    def act(i: int):  # type: ignore[no-untyped-def]
        def buy_or_close(ctx: StrategyContext, _: Bar) -> None:
            if i % 2 == 0:
                ctx.submit(OrderIntent("TEST", Side.BUY))
            else:
                ctx.close("TEST")

        return buy_or_close

    return Scripted({i: act(i) for i in range(count)})


def test_deteriorating_fills_shrink_then_stop_entries_while_exits_pass(
    tmp_path: Path,
) -> None:
    # Entries fill 1-3 bp worse for a while, then each worse than the last; exits stay at 1 bp
    # (so the stop comes on an entry's fill, with a position left to close).
    entry_gaps = [1.0, 2.0, 3.0] * 2 + [4.0 + 5.0 * k for k in range(15)]
    gaps = [g for entry in entry_gaps for g in (entry, 1.0)]
    strategy = buy_then_close(len(gaps))
    risk = [
        {"name": "fixed-size", "params": {"quantity": 10}},
        {"name": "quality-guard", "params": {"window": 12, "min_samples": 6,
                                             "slippage_limit_bps": 40}},
    ]  # fmt: skip
    bot = bot_with(PluginRegistry.discover(), manifest(risk, capital=100_000.0), strategy,
                   tmp_path)  # fmt: skip
    session = open_session(bot)
    assert session.engine is not None
    session.engine.run(gapped_bars(gaps))
    journal = session.journal
    sent = journal.query(
        "SELECT client_order_id, side, quantity, reduce_only FROM orders ORDER BY created_ts, rowid"
    )
    entries = [float(q) for _, side, q, reduce in sent if side == "buy" and not reduce]
    exits = [row for row in sent if row[3]]
    # Full size while capable, then halved, then no entry at all.
    assert entries[0] == 10.0 and 5.0 in entries
    assert entries == sorted(entries, reverse=True)
    first_half = entries.index(5.0)
    assert all(q == 10.0 for q in entries[:first_half])
    decisions = journal.query(
        "SELECT ts, plugin, action, reason, side FROM risk_decisions ORDER BY id"
    )
    [(message, data)] = events(journal, "risk_locked")
    assert message.startswith("quality-guard locked trading") and "slippage Cpk" in message
    since = json.loads(data)["since_ts"]
    before = [row for row in decisions if row[0] < since]
    after = [row for row in decisions if row[0] >= since]
    assert ("shrink", "buy") in {(a, side) for _, p, a, _, side in before if p == "quality-guard"}
    assert not any(a == "veto" for _, _, a, _, _ in before)
    # From the stop on: every entry vetoed (by the guard or the engine's lock gate), naming
    # the figure; every exit approved by the whole chain, so the last position was closed.
    assert {(a, side) for _, _, a, _, side in after} == {("veto", "buy"), ("approve", "sell")}
    assert all("slippage Cpk" in r for _, _, a, r, _ in after if a == "veto")
    assert len(entries) < len(entry_gaps)  # entries stopped before the script ran out
    assert exits and session.engine.portfolio.positions["TEST"].quantity == 0.0
    assert session.engine.risk_tiers()["quality-guard"] == STOPPED


def test_a_journaled_stop_holds_after_a_restart_until_a_person_resets_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite"
    journal = earlier_run(path)
    reason = "entries stopped: slippage Cpk 0.70 over the last 20 fills"
    journal.record_event(T0, "risk_locked", "locked",
                         {"plugin": "quality-guard", "reason": reason, "since_ts": T0})  # fmt: skip
    journal.close()
    strategy = Scripted(
        {0: lambda ctx, b: ctx.buy("TEST", 1), 1: lambda ctx, b: ctx.buy("TEST", 1)}
    )
    document = manifest([{"name": "quality-guard"}], mode="paper")
    session = open_session(bot_with(PluginRegistry.discover(), document, strategy, tmp_path), path)
    engine = session.engine
    assert engine is not None
    assert engine.state.locks() == {"quality-guard": reason}
    assert engine.risk_tiers()["quality-guard"] == STOPPED
    engine.run(flat_bars([100, 100]))
    assert engine.stats.orders == 0 and ("engine.locked", "veto") in engine.stats.risk_decisions
    assert engine.reset_risk_lock("quality-guard", "ops", "venue fixed") == (True, "")
    assert engine.state.locks() == {}


def test_the_slippage_window_survives_a_restart(tmp_path: Path) -> None:
    """Before, a restart emptied the window: a bot restarted at every deploy, with fewer fills
    between deploys than ``min_samples``, was never measured at all. Now the fills of earlier
    runs, with the prices their orders were decided at, refill it before the first bar."""

    # Entries 4 and 22 bp worse in turn, exits 1 bp: slippage Cpk 1.20 over the 12 fills,
    # between stop (1.0) and shrink (1.33).
    gaps = [g for entry in [4.0, 22.0] * 3 for g in (entry, 1.0)]
    risk = [
        {"name": "fixed-size", "params": {"quantity": 10}},
        {"name": "quality-guard", "params": {"window": 12, "min_samples": 12,
                                             "slippage_limit_bps": 40}},
    ]  # fmt: skip
    path = tmp_path / "j.sqlite"
    first = open_session(
        bot_with(
            PluginRegistry.discover(),
            manifest(risk, mode="paper"),
            buy_then_close(len(gaps)),
            tmp_path,
        ),
        path,
    )
    assert first.engine is not None
    first.engine.run(gapped_bars(gaps))
    assert first.engine.stats.fills == 12
    assert first.engine.risk_tiers()["quality-guard"] == SHRINK  # measured at the 12th fill
    first.journal.close()

    buy = Scripted({0: lambda ctx, _: ctx.submit(OrderIntent("TEST", Side.BUY))})
    second = open_session(
        bot_with(PluginRegistry.discover(), manifest(risk, mode="paper"), buy, tmp_path), path
    )
    engine = second.engine
    assert engine is not None
    # Shrinking from the first bar, with no fill of its own yet.
    assert engine.risk_tiers()["quality-guard"] == SHRINK
    [(_, data)] = events(second.journal, "risk_fills_restored")
    assert json.loads(data) == {"plugin": "quality-guard", "fills": 12}
    start = len(gaps) + 5
    engine.run([bar(start + k, 100.0, 100.0, 100.0, 100.0) for k in range(2)])
    [(quantity,)] = second.journal.query(
        "SELECT quantity FROM orders WHERE run_id = ?", second.journal.run_id
    )
    assert quantity == 5.0  # 10 without the restored fills: fewer than min_samples of its own


def test_fills_before_a_reset_of_the_lock_are_not_restored(tmp_path: Path) -> None:
    """A person's reset starts the samples afresh; a restart must not bring back the fills
    that made the lock."""
    path = tmp_path / "j.sqlite"
    journal = earlier_run(path)
    for k in range(8):
        order = Order(f"o{k}", "TEST", Side.BUY, 1.0, created_ts=T0 + k * HOUR)
        journal.record_order(order, OrderStatus.PENDING, T0 + k * HOUR, "", 100.0)
        journal.record_fill(
            Fill(f"o{k}", "TEST", Side.BUY, 1.0, 101.0, 0.0, T0 + k * HOUR, f"f{k}"),
            Position("TEST"),
            OrderStatus.FILLED,
        )
    journal.record_event(T0 + 5 * HOUR, "risk_lock_reset", "reset", {"plugin": "quality-guard"})
    journal.close()
    document = manifest([{"name": "quality-guard", "params": {"min_samples": 2}}], mode="paper")
    session = open_session(
        bot_with(PluginRegistry.discover(), document, Scripted(), tmp_path), path
    )
    [(_, data)] = events(session.journal, "risk_fills_restored")
    assert json.loads(data) == {"plugin": "quality-guard", "fills": 3}  # those at 5, 6 and 7
