"""Whether a target-positions plan looks ahead: the vectorised path's guard (pure, no I/O).

The vectorised path trusts a strategy's ``target_positions``: a plan whose position after bar
``i`` reads a later bar (``close[i + 1]``, a whole-series mean, ``np.roll``) trades with
foresight, and a backtest or a sweep on it shows profits no bot can make (a probe's plan that
peeked one bar ahead turned -1,921 into +20,199). The event engine cannot be fooled so: it hands
``on_bar`` the bars up to now. So before the vectorised path takes a plan, the plan is asked
again of the same bars cut short after a bar ``cut``, with the bars after the cut replaced twice
(by a rise and by a fall): a plan that decides each bar from that bar and those before it gives
the very same targets up to ``cut`` all three times. A plan that does not is refused, naming the
first bar it decided otherwise, and the bot runs on the event engine.

The probes are short (the first ``WINDOW`` bars after warm-up, cut at ``CUTS`` places): they
cost a few plans of a few thousand bars, whatever the run's length. A plan whose foresight
shows only later in a long run is not caught here; ``sdk.testing.check_target_plan`` proves a
plan bar for bar against ``on_bar``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tradefleet_runtime.bar_columns import BarColumns
from tradefleet_runtime.capabilities import TargetPlan

__all__ = ["CUTS", "SUFFIX", "WINDOW", "plan_looks_ahead"]

#: Places the plan is cut at, spread over the first ``WINDOW`` bars after warm-up.
CUTS = 4
WINDOW = 2048
#: Bars kept after a cut, replaced by a rise and by a fall.
SUFFIX = 16
# How far the replaced bars move: 20% over the suffix, either way (a direction no plan that
# reads the future can decide alike for both).
_MOVE = 0.2


def plan_looks_ahead(
    plan_of: Callable[[BarColumns], TargetPlan | None],
    columns: BarColumns,
    target: np.ndarray,
    warmup: int,
) -> str | None:
    """Why ``target`` (``plan_of(columns).target``) depends on bars after the one it decides
    at, or None when every probe gave the same targets (module docstring)."""
    count = len(columns)
    last = min(count - 2, warmup + WINDOW)  # a cut needs one bar after it
    first = max(warmup, 0)
    if last < first:
        return None
    cuts = sorted({int(cut) for cut in np.linspace(first, last, CUTS)})
    for cut in cuts:
        end = min(count, cut + 1 + SUFFIX)
        for direction in (1.0, -1.0):
            probe = _moved_after(columns.take(slice(0, end)), cut, direction)
            plan = plan_of(probe)
            if plan is None:
                return f"no plan for the bars up to {cut} (a plan for the whole run)"
            got = np.asarray(plan.target)
            if got.shape != (end,):
                return f"a plan of {got.shape} for {end} bars"
            differs = np.flatnonzero(~_same(got[: cut + 1], target[: cut + 1]))
            if differs.size:
                at = int(differs[0])
                return (
                    f"its target at bar {at} (ts {int(columns.ts[at])}) changed when only bars "
                    f"after bar {cut} did: the plan reads bars after the one it decides at"
                )
    return None


def _moved_after(columns: BarColumns, cut: int, direction: float) -> BarColumns:
    """``columns`` with every bar after ``cut`` scaled along a steady rise (or fall) from the
    cut's close: OHLC stay consistent (one factor per bar), times stay as they are."""
    after = len(columns) - cut - 1
    factors = np.ones(len(columns))
    if after > 0:
        steps = np.arange(1, after + 1) / after
        scale = columns.close[cut] / columns.close[cut + 1 :]
        factors[cut + 1 :] = scale * (1.0 + direction * _MOVE * steps)
    return BarColumns(
        columns.ts,
        columns.open * factors,
        columns.high * factors,
        columns.low * factors,
        columns.close * factors,
        columns.volume,
    )


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # NaN where both are NaN is the same target (a plan may leave warm-up as NaN).
    result: np.ndarray = (a == b) | (np.isnan(a) & np.isnan(b))
    return result
