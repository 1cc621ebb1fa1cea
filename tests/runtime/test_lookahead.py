"""No lookahead: what happens after time t can change nothing decided at or before t."""

from __future__ import annotations

import random

import pytest

from tests.runtime.helpers import HOUR, T0, make_engine
from tests.runtime.test_accounting import _random_walk
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_plugins.strategies.ema_cross import EmaCross
from tradefleet_plugins.strategies.ema_cross_params import EmaCrossParams
from tradefleet_runtime.model import Bar
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.sdk import Strategy, build_strategy

# Params that make each built-in strategy trade on a 700-bar random walk. Every registered
# strategy must be listed (checked below), so a new one cannot skip this test.
EVERY_STRATEGY: dict[str, dict[str, object]] = {
    "ema-cross": {"fast": 5, "slow": 20, "stop_loss_pct": 0.01, "take_profit_pct": 0.02},
    "indicator-confluence": {"stop_loss_pct": 0.01, "take_profit_pct": 0.02, "ema_period": 20},
    "bos-retest": {
        "higher_timeframe": "3h",
        "swing_left": 1,
        "swing_right": 1,
        "retest_pips": 200,
        "pip_size": 0.01,
        "expiry_bars": 10,
    },
    "fib-atr": {"trend_period": 20, "swing_left": 2, "swing_right": 2},
    "ensemble": {
        "children": [
            {"name": "ema-cross", "params": {"fast": 3, "slow": 10}},
            {"name": "ema-cross", "params": {"fast": 5, "slow": 20}},
            {"name": "fib-atr", "params": {"trend_period": 20}},
        ],
        "quorum": 2,
    },
    # Trades only signals pushed from outside: no bar can make it decide anything.
    "external-signal": {},
}


def _decisions(
    bars: list[Bar], strategy: Strategy | None = None
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[float]]:
    if strategy is None:
        strategy = EmaCross(
            EmaCrossParams(fast=5, slow=20, stop_loss_pct=0.01, take_profit_pct=0.02)
        )
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.02, max_leverage=3))
    engine = make_engine(strategy, risk=[("fixed-fractional", sizer)], broker={"fee_bps": 3})
    engine.run(bars)
    result = engine.finish()
    orders = engine.journal.query(
        "SELECT client_order_id, side, quantity, order_type, price, created_ts FROM orders"
    )
    fills = engine.journal.query("SELECT client_order_id, price, quantity, ts FROM fills")
    return orders, fills, list(result.equity)


def _perturb_after(bars: list[Bar], cut: int, seed: int) -> list[Bar]:
    rng = random.Random(seed)
    changed = list(bars[: cut + 1])
    for original in bars[cut + 1 :]:
        scale = rng.uniform(0.8, 1.25)
        o, c = original.open * scale, original.close * rng.uniform(0.8, 1.25)
        changed.append(
            original._replace(open=o, close=c, high=max(o, c) * 1.01, low=min(o, c) * 0.99)
        )
    return changed


@pytest.mark.parametrize("cut", [40, 150, 333, 500])
def test_changing_bars_after_t_changes_no_decision_up_to_t(cut: int) -> None:
    bars = _random_walk(700, seed=11)
    orders, fills, equity = _decisions(bars)
    other_orders, other_fills, other_equity = _decisions(_perturb_after(bars, cut, seed=cut))
    decided_by = bars[cut].close_ts  # the last instant whose information is unchanged

    def upto(rows: list[tuple[object, ...]], ts_index: int) -> list[tuple[object, ...]]:
        return [r for r in rows if isinstance(r[ts_index], int) and r[ts_index] <= decided_by]

    assert upto(orders, 5) == upto(other_orders, 5)
    assert len(upto(orders, 5)) >= 1, "the strategy should have decided something before t"
    # Fills happen on the bar *after* a decision, so fills up to bar `cut` must be equal too.
    assert upto(fills, 3) == [r for r in upto(other_fills, 3) if r[3] <= bars[cut].ts]
    assert equity[: cut + 1] == other_equity[: cut + 1]
    assert orders != other_orders, "the perturbation should change later decisions"


def test_every_built_in_strategy_is_perturbed() -> None:
    registry = PluginRegistry.discover(entry_points=False)
    names = set(registry.names(PluginKind.STRATEGY))
    assert names == set(EVERY_STRATEGY)


@pytest.mark.parametrize("name", sorted(set(EVERY_STRATEGY) - {"external-signal"}))
@pytest.mark.parametrize("cut", [150, 400])
def test_no_built_in_strategy_decides_on_later_bars(name: str, cut: int) -> None:
    bars = _random_walk(700, seed=11)
    orders, fills, equity = _decisions(bars, build_strategy(name, EVERY_STRATEGY[name]))
    changed = _perturb_after(bars, cut, seed=cut)
    other_orders, other_fills, other_equity = _decisions(
        changed, build_strategy(name, EVERY_STRATEGY[name])
    )
    decided_by = bars[cut].close_ts
    assert [r for r in orders if int(str(r[5])) <= decided_by] == [
        r for r in other_orders if int(str(r[5])) <= decided_by
    ]
    assert len(orders) >= 2, f"{name} should decide something on the random walk"
    assert [r for r in fills if int(str(r[3])) <= bars[cut].ts] == [
        r for r in other_fills if int(str(r[3])) <= bars[cut].ts
    ]
    assert equity[: cut + 1] == other_equity[: cut + 1]


def test_a_strategy_never_sees_the_bar_it_is_filled_on() -> None:
    bars = _random_walk(50, seed=3)
    strategy = EmaCross(EmaCrossParams(fast=2, slow=3))
    engine = make_engine(
        strategy, risk=[("fixed-fractional", FixedFractional(FixedFractionalParams()))]
    )
    engine.run(bars)
    rows = engine.journal.query(
        "SELECT o.created_ts, f.ts FROM fills f JOIN orders o USING (run_id, client_order_id)"
    )
    assert rows
    for created_ts, fill_ts in rows:
        assert fill_ts >= created_ts  # filled on a bar that opened after the decision
        assert (created_ts - T0) % HOUR == 0
