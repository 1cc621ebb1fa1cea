"""The trader's report figures on hand-made trades and equity with known answers, and the exit
reasons trades carry from their fills."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.runtime.helpers import HOUR, T0, Scripted, bar, run
from tradefleet_runtime.engine.portfolio import Portfolio
from tradefleet_runtime.model import END_OF_DATA, Fill, Side, Trade
from tradefleet_runtime.report.json_schema import report_json
from tradefleet_runtime.report.metrics import (
    ReportInput,
    SymbolRange,
    build_report,
    cagr,
    exit_kind,
    longest_losing_streak,
    monthly_returns,
)

DAY = 86400


def _ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def _trade(
    pnl: float,
    *,
    symbol: str = "AAA",
    direction: int = 1,
    entry: int = 0,
    exit_: int = DAY,
    reason: str = "signal-x",
) -> Trade:
    return Trade(symbol, direction, 1.0, entry, exit_, 100.0, 100.0 + pnl, pnl, 0.0, "e", reason)


def test_cagr_and_calmar_over_the_span_from_first_open_to_last_close() -> None:
    year = 365.25 * DAY
    start = _ts("2020-01-01T00:00:00")
    # Two "years" (first bar opens at start, last closes at start + 2 years); equity doubles
    # after a 20 % drawdown: CAGR √2 − 1, Calmar CAGR / 0.2.
    stamps = [start + DAY, start + int(year), start + int(2 * year)]
    report = build_report(
        ReportInput(
            initial=100.0,
            currency="USD",
            timeframe_s=DAY,
            timestamps=stamps,
            equity=[100.0, 80.0, 200.0],
            exposure=[1.0, 1.0, 1.0],
            trades=[],
            fees=0.0,
        )
    )
    assert report.years == pytest.approx(2.0, abs=1e-6)
    assert report.cagr == pytest.approx(2**0.5 - 1, rel=1e-6)
    assert report.calmar == pytest.approx((2**0.5 - 1) / 0.2, rel=1e-6)
    assert cagr(100.0, 0.0, 1.0) is None and cagr(100.0, 150.0, 0.0) is None


def test_trade_figures_expectancy_average_win_loss_duration_and_streak() -> None:
    pnls = [50.0, -10.0, -20.0, 0.0, 30.0, -5.0]
    trades = [_trade(p, entry=i * DAY, exit_=i * DAY + (i + 1) * HOUR) for i, p in enumerate(pnls)]
    report = build_report(ReportInput(100.0, "USD", HOUR, [HOUR], [145.0], [0.0], trades, 0.0))
    assert report.expectancy == pytest.approx(45.0 / 6)
    assert report.average_win == pytest.approx(40.0)
    assert report.average_loss == pytest.approx(-35.0 / 4)  # break-even counts as not a win
    assert report.average_duration_s == pytest.approx(3.5 * HOUR)
    # −10, −20, 0 in a row: three trades without a win.
    assert report.longest_losing_streak == 3
    assert longest_losing_streak([]) == 0


def test_streak_follows_exit_order_not_list_order() -> None:
    trades = [_trade(-1.0, exit_=3), _trade(5.0, exit_=2), _trade(-1.0, exit_=1)]
    assert longest_losing_streak(trades) == 1
    assert longest_losing_streak(trades, [t.net_pnl for t in trades]) == 1  # P&L read once


def test_long_short_per_symbol_and_exit_reasons() -> None:
    trades = [
        _trade(10.0, symbol="AAA", direction=1, reason="stop_loss"),
        _trade(-4.0, symbol="AAA", direction=-1, reason="stop_loss"),
        _trade(6.0, symbol="BBB", direction=1, reason="take_profit"),
        _trade(-2.0, symbol="BBB", direction=-1, reason="cross"),
        _trade(-3.0, symbol="BBB", direction=-1, reason="emergency-flatten"),
        _trade(1.0, symbol="AAA", direction=1, reason=END_OF_DATA),
    ]
    report = build_report(ReportInput(100.0, "USD", HOUR, [HOUR], [108.0], [0.0], trades, 0.0))
    long, short = report.by_direction["long"], report.by_direction["short"]
    assert (long.trades, long.wins, long.net_pnl) == (3, 3, pytest.approx(17.0))
    assert (short.trades, short.wins, short.net_pnl) == (3, 0, pytest.approx(-9.0))
    assert {k: (g.trades, g.net_pnl) for k, g in report.by_symbol.items()} == {
        "AAA": (3, pytest.approx(7.0)),
        "BBB": (3, pytest.approx(1.0)),
    }
    counts = {reason: group.trades for reason, group in report.exit_reasons.items()}
    assert counts == {
        "stop_loss": 2,
        "take_profit": 1,
        "cross": 1,
        "emergency-flatten": 1,
        END_OF_DATA: 1,
    }
    assert {r: exit_kind(r) for r in counts} == {
        "stop_loss": "stop-loss",
        "take_profit": "take-profit",
        "cross": "signal",
        "emergency-flatten": "risk",
        END_OF_DATA: "end of data",
    }
    assert next(iter(counts)) == "stop_loss"  # most trades first
    rows = report_json(report, "USD")["exit_reasons"]
    assert isinstance(rows, list)
    assert rows[0] == {
        "reason": "stop_loss",
        "kind": "stop-loss",
        "trades": 2,
        "wins": 1,
        "win_rate": 0.5,
        "net_pnl": 6.0,
        "expectancy": 3.0,
    }


def test_monthly_returns_chain_from_the_previous_month_end() -> None:
    stamps = [
        _ts("2021-01-10T00:00:00"),
        _ts("2021-01-31T23:00:00"),
        _ts("2021-02-15T00:00:00"),
        _ts("2021-04-01T00:00:00"),  # March has no bar: no row for it
    ]
    months = monthly_returns(stamps, [105.0, 110.0, 99.0, 108.9], 100.0)
    assert [m for m, _ in months] == ["2021-01", "2021-02", "2021-04"]
    assert [v for _, v in months] == pytest.approx([0.10, -0.10, 0.10])


def test_buy_and_hold_is_the_equal_weight_mean_from_first_open_to_last_close() -> None:
    symbols = [SymbolRange("AAA", 10, 0, 100.0, 9, 120.0), SymbolRange("BBB", 10, 0, 50.0, 9, 45.0)]
    report = build_report(
        ReportInput(100.0, "USD", HOUR, [HOUR, 2 * HOUR], [100.0, 110.0], [0, 0], [], 0.0, symbols)
    )
    assert report.benchmark is not None
    assert report.benchmark.return_pct == pytest.approx((20.0 - 10.0) / 2)
    document = report_json(report, "USD")
    benchmark = document["benchmark"]
    assert isinstance(benchmark, dict)
    assert benchmark["symbols"]["BBB"]["return_pct"] == pytest.approx(-10.0)


def test_trades_carry_the_reasons_of_their_opening_and_closing_fills() -> None:
    # Entry with a bracket (stop hit), a tagged entry closed by the strategy, then a reversal
    # in one fill, then a position left open at the end.
    strategy = Scripted(
        {
            0: lambda ctx, b: ctx.buy("TEST", 1, stop_loss=95, take_profit=150, tag="breakout"),
            3: lambda ctx, b: ctx.buy("TEST", 1, tag="dip"),
            5: lambda ctx, b: ctx.close("TEST", tag="target-hit"),
            7: lambda ctx, b: ctx.sell("TEST", 1, tag="fade"),
            9: lambda ctx, b: ctx.buy("TEST", 2, tag="flip"),
        }
    )
    prices = [100, 100, 94, 100, 100, 100, 103, 103, 103, 103, 101, 104]
    bars = [bar(i, p, max(p, 100), min(p, 100), p) for i, p in enumerate(prices)]
    engine, result = run(strategy, bars)
    # (The paper broker writes a market fill's reason as "market" whatever its tag, and a
    # resting order's as its tag: the trade keeps whatever its fills say.)
    f = [fill.reason for fill in strategy.fills]
    assert len(f) == 6 and f[1] == "stop_loss"
    reasons = [(t.entry_reason, t.exit_reason) for t in result.trades]
    assert reasons == [(f[0], "stop_loss"), (f[2], f[3]), (f[4], f[5])]
    # Journaled with them, and read back the same.
    assert engine.journal.trades("test") == result.trades  # type: ignore[attr-defined]
    # The long opened by the flip is still open: marked at the last close as "end of data".
    (open_trade,) = engine.portfolio.end_of_data_trades(result.equity_ts[-1])
    assert (open_trade.entry_reason, open_trade.exit_reason) == (f[5], END_OF_DATA)
    assert open_trade.exit_price == 104 and open_trade.direction == 1
    # Every trade, the open one included, adds up to the change of equity.
    total = sum(t.net_pnl for t in [*result.trades, open_trade])
    assert total == pytest.approx(result.final_equity - result.initial_capital)


def test_end_of_data_trade_after_a_partial_close_keeps_the_realised_part() -> None:
    portfolio = Portfolio(cash=1_000.0)
    portfolio.apply(Fill("a", "X", Side.BUY, 2.0, 10.0, 0.2, T0, "f1", "entry"))
    portfolio.apply(Fill("b", "X", Side.SELL, 1.0, 12.0, 0.1, T0 + HOUR, "f2", "half"))
    portfolio.marks["X"] = 13.0
    (trade,) = portfolio.end_of_data_trades(T0 + 2 * HOUR)
    assert trade.gross_pnl == pytest.approx(2.0 + 3.0)
    assert trade.fees == pytest.approx(0.3)
    assert trade.exit_price == pytest.approx(12.5)
    assert portfolio.equity() - 1_000.0 == pytest.approx(trade.net_pnl)
