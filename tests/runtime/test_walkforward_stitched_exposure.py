"""The walk-forward's stitched out-of-sample report keeps each window's exposure (R51).

Each window's run ends its open position as an end-of-data trade at the window's last close;
the report's trim of a symbol whose data ended early (``exposure_after_data_ends``) took that
trade's value off every later window's exposure: the printed stitched table said 40% where
the JSON's ``out_of_sample`` (the same curve, untrimmed) said 80%.
"""

from __future__ import annotations

import pytest

from tradefleet_runtime.model import END_OF_DATA, Trade
from tradefleet_runtime.optimize.commands import _report
from tradefleet_runtime.optimize.walkforward import stitch
from tradefleet_runtime.optimize.worker import Evaluation
from tradefleet_runtime.report.metrics import compute_figures

HOUR = 3600
T0 = 1_700_000_000
INITIAL = 10_000.0
DOCUMENT = {
    "spec": {"capital": {"initial": INITIAL, "currency": "USD"}, "market": {"timeframe": "1h"}}
}


def _window(first: int) -> Evaluation:
    """One out-of-sample window of 5 closes: flat at the first, then long 1 @ 100 held to the
    window's end, where its run ends it (END_OF_DATA), as ``worker.evaluate`` reports it."""
    stamps = tuple(T0 + (first + i) * HOUR for i in range(1, 6))
    held = Trade(
        "EURUSD", 1, 1.0, stamps[1], stamps[-1], 100.0, 100.0, 0.0, 0.0, "buy", END_OF_DATA
    )
    return Evaluation(
        {},
        (None, None),
        0,
        equity_ts=stamps,
        equity=(INITIAL,) * 5,
        exposure=(0.0, 100.0, 100.0, 100.0, 100.0),
        trades=(held,),
        fees=0.0,
    )


def test_the_stitched_report_says_the_exposure_the_windows_had() -> None:
    runs = [_window(0), _window(5)]
    timestamps, equity, exposure, trades, fees = stitch(INITIAL, runs)
    figures = compute_figures(
        initial=INITIAL,
        timestamps=timestamps,
        equity=equity,
        exposure=exposure,
        trades=trades,
        fees=fees,
    )
    assert figures.exposure_pct == pytest.approx(80.0)  # walkforward's JSON says this
    assert _report(DOCUMENT, runs).figures.exposure_pct == pytest.approx(80.0)
