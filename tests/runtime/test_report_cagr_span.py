"""CAGR only over a span long enough to extrapolate to a year (30 days): a shorter run gives
none, shown as "-" in the table and null in the JSON, as Calmar and the benchmark's CAGR. (The
short run's table also shows the return over buy and hold in percentage points.)"""

from __future__ import annotations

import pytest
from rich.console import Console

from tradefleet_runtime.report.json_schema import report_json
from tradefleet_runtime.report.metrics import (
    MIN_CAGR_YEARS,
    SECONDS_PER_YEAR,
    ReportInput,
    SymbolRange,
    build_report,
    cagr,
)
from tradefleet_runtime.report.table import report_table

MINUTE = 60
DAY = 86400
MINUTES_PER_YEAR = 365.25 * 24 * 60


def test_sixteen_minutes_extrapolated_to_a_year_give_no_cagr() -> None:
    years = 16 / MINUTES_PER_YEAR  # 16 one-minute bars
    assert cagr(10_000.0, 9_870.25, years) is None  # a loss of 1.30 %, not -100 %
    assert cagr(10_000.0, 10_129.75, years) is None  # a gain of 1.30 %, not ~1e186 %


def test_cagr_from_thirty_days_on() -> None:
    thirty_days = 30 * DAY / SECONDS_PER_YEAR
    assert thirty_days == MIN_CAGR_YEARS
    assert cagr(100.0, 110.0, 29 * DAY / SECONDS_PER_YEAR) is None
    assert cagr(100.0, 110.0, thirty_days) == pytest.approx(1.1 ** (1 / thirty_days) - 1)
    assert cagr(100.0, 110.0, 0.5) == pytest.approx(0.21)


def test_a_sixteen_minute_run_reports_no_cagr_calmar_or_benchmark_cagr() -> None:
    start = 1_700_000_000
    stamps = [start + (i + 1) * MINUTE for i in range(16)]  # closes of 16 one-minute bars
    equity = [10_000.0 - 10.0 * i for i in range(15)] + [9_870.25]  # a drawdown, -1.30 %
    symbols = [SymbolRange("BTC/USDT", 16, start, 100.0, start + 15 * MINUTE, 101.3)]
    report = build_report(
        ReportInput(10_000.0, "USDT", MINUTE, stamps, equity, [0.0] * 16, [], 0.0, symbols)
    )
    assert report.figures.max_drawdown_pct > 0
    assert report.cagr is None and report.calmar is None
    document = report_json(report, "USDT")
    assert document["cagr_pct"] is None and document["calmar"] is None
    benchmark = document["benchmark"]
    assert isinstance(benchmark, dict) and benchmark["cagr_pct"] is None
    console = Console(record=True, width=200)
    console.print(report_table("run", report, "USDT"))
    rows = {
        line.strip("│┃ ").split("│")[0].strip(): line.strip("│┃ ").split("│")[-1].strip()
        for line in console.export_text().splitlines()
        if "│" in line
    }
    assert rows["CAGR"] == "-" and rows["Calmar"] == "-"
    assert rows["return"] == "-1.30 %"
    # -1.30 % against buy and hold's +1.30 %: 2.60 percentage points behind, not "-2.60 %".
    assert rows["return over buy and hold"] == "-2.60 percentage points"
