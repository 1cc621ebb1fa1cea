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


def _decisions(
    bars: list[Bar],
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[float]]:
    strategy = EmaCross(EmaCrossParams(fast=5, slow=20, stop_loss_pct=0.01, take_profit_pct=0.02))
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
