"""Performance figures of a run, as pure functions of its equity curve and trades.

Sharpe and Sortino are annualised with the number of bars per year *observed in the data*
(a forex market closed at weekends has about 6,200 hourly bars a year, crypto 8,766), with a
zero risk-free rate. Returns are simple per-bar returns of equity. A bar is a close: snapshots
sharing a time (a paper or live run that ended on a fill after its last close journals that
close twice, before and after the fill) count as one bar, the last (``one_per_time``); the
drawdown is measured over every snapshot.

The trader's report (``build_report``) adds figures of the trades (expectancy, average win and
loss, duration, losing streak), groups (long/short, per symbol, per exit reason), calendar
months, CAGR and Calmar over the run's span (first bar's open to last bar's close; none
under 30 days, ``MIN_CAGR_YEARS``), and an equal-weight buy-and-hold benchmark. A position
still open at the end counts as a trade closed at the last close with the reason "end of
data" (no exit fee), so trades add up to the equity: each symbol's own last close, at that
bar's close time, when its data ends before the run's (``end_of_data_at_symbol_ends``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from itertools import pairwise
from typing import NamedTuple

import numpy as np

from tradefleet_runtime.brackets import (
    BRACKET_SPENT_TAG,
    LIQUIDATION_TAG,
    OUTSIDE_TAG,
    STOP_LOSS_TAG,
    STOP_REFUSED_TAG,
    TAKE_PROFIT_TAG,
)
from tradefleet_runtime.model import END_OF_DATA, Trade

SECONDS_PER_YEAR = 365.25 * 86400


@dataclass(frozen=True)
class Figures:
    trades: int
    win_rate: float
    net_pnl: float
    fees: float
    final_equity: float
    return_pct: float
    sharpe: float
    sortino: float
    max_drawdown_pct: float
    profit_factor: float | None  # None when there are no losing trades
    exposure_pct: float
    bars: int
    periods_per_year: float

    def as_json(self) -> dict[str, float | int | None]:
        figures = asdict(self)
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in figures.items()
        }


def periods_per_year(timestamps: Sequence[int] | np.ndarray) -> float:
    if len(timestamps) < 2:
        return 0.0
    span = float(timestamps[-1]) - float(timestamps[0])
    return (len(timestamps) - 1) / (span / SECONDS_PER_YEAR) if span > 0 else 0.0


def one_per_time(
    timestamps: Sequence[int] | np.ndarray,
    equity: np.ndarray,
    exposure: Sequence[float] | np.ndarray,
) -> tuple[Sequence[int] | np.ndarray, np.ndarray, Sequence[float] | np.ndarray]:
    """The equity snapshots with those of one time taken as one, the last: a run that ended on
    a fill after its last close journals two snapshots at that close (the equity at the close,
    then the equity it ended at; ``Engine._end_snapshot``). Counted as two, they were one bar
    more than the run handled, a return of no time in Sharpe and Sortino, and a period more a
    year. The series themselves, untouched, when every time is its own (any backtest)."""
    stamps = np.asarray(timestamps, dtype="int64")
    if stamps.size < 2 or stamps.size != equity.size:
        return timestamps, equity, exposure
    last = np.append(stamps[1:] != stamps[:-1], True)
    if last.all():
        return timestamps, equity, exposure
    kept_exposure = np.asarray(exposure, dtype=float)
    if kept_exposure.size == stamps.size:
        kept_exposure = kept_exposure[last]
    return stamps[last], equity[last], kept_exposure


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a fraction of that peak."""
    if equity.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(equity)
    return float(np.max((peaks - equity) / peaks))


def sharpe_sortino(equity: np.ndarray, initial: float, per_year: float) -> tuple[float, float]:
    if equity.size < 2 or per_year <= 0:
        return 0.0, 0.0
    curve = np.concatenate(([initial], equity))
    returns = np.diff(curve) / curve[:-1]
    mean = float(returns.mean())
    std = float(returns.std(ddof=1))
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    scale = math.sqrt(per_year)
    sharpe = mean / std * scale if std > 0 else 0.0
    sortino = mean / downside * scale if downside > 0 else 0.0
    return sharpe, sortino


def compute_figures(
    *,
    initial: float,
    timestamps: Sequence[int] | np.ndarray,
    equity: Sequence[float] | np.ndarray,
    exposure: Sequence[float] | np.ndarray,
    trades: Sequence[Trade],
    fees: float,
    net_pnls: np.ndarray | None = None,
) -> Figures:
    """The run's figures. ``net_pnls``: the trades' net P&L as an array, in place of
    ``trades`` (the vectorised path, which builds no Trade objects for a sweep)."""
    snapshots = np.asarray(equity, dtype=float)
    timestamps, curve, exposure = one_per_time(timestamps, snapshots, exposure)
    final = float(curve[-1]) if curve.size else initial
    per_year = periods_per_year(timestamps)
    sharpe, sortino = sharpe_sortino(curve, initial, per_year)
    if net_pnls is None:
        pnls = [t.net_pnl for t in trades]  # a computed property: read once per trade
        wins = [pnl for pnl in pnls if pnl > 0]
        losses = [pnl for pnl in pnls if pnl <= 0]
        count, won, won_total, lost_total = len(trades), len(wins), sum(wins), sum(losses)
    else:
        # Running sums, as Python's sum adds the lists above: the same figures to the bit.
        net = np.asarray(net_pnls, dtype=float)
        win, loss = net[net > 0], net[net <= 0]
        count, won = int(net.size), int(win.size)
        won_total = float(np.cumsum(win)[-1]) if win.size else 0
        lost_total = float(np.cumsum(loss)[-1]) if loss.size else 0
    gross_loss = -lost_total
    profit_factor = won_total / gross_loss if gross_loss > 0 else None
    # Share of bars that closed with a position open.
    exposed = float(np.mean(np.asarray(exposure, dtype=float) > 0.0)) if len(exposure) else 0.0
    return Figures(
        trades=count,
        win_rate=won / count if count else 0.0,
        net_pnl=final - initial,
        fees=fees,
        final_equity=final,
        return_pct=(final / initial - 1.0) * 100.0,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown_pct=max_drawdown(snapshots) * 100.0,  # every equity the run saw
        profit_factor=profit_factor,
        exposure_pct=exposed * 100.0,
        bars=int(curve.size),
        periods_per_year=per_year,
    )


# -- the trader's report: figures of trades, groups, months and a benchmark -------------------

# What kind of exit a fill reason is. Reasons are order tags (bracket children carry the
# brackets module's tags, strategies their own) or, untagged, the order type.
STOP_LOSS = "stop-loss"
TAKE_PROFIT = "take-profit"
SIGNAL = "signal"
RISK = "risk"
OUTSIDE = "outside"  # closed at the venue by someone else (a person, another program)
LIQUIDATION = "liquidation"  # closed by the venue: equity at the maintenance margin
# No reason recorded: trades of a journal from before reasons were kept (schema 4), whose
# migration could only give them ''. Not "signal": that would say the strategy chose them.
UNKNOWN = "unknown"
_STOP_REASONS = frozenset({STOP_LOSS_TAG, "stop-loss", "stop", "sl", "trailing_stop"})
_TARGET_REASONS = frozenset({TAKE_PROFIT_TAG, "take-profit", "tp"})
# Flattens the runtime itself sends: the kill switch and the stop policy; risk plugins' tags.
_RISK_REASONS = frozenset(
    {"emergency-flatten", "stop-flatten", STOP_REFUSED_TAG, BRACKET_SPENT_TAG}
)


def exit_kind(reason: str) -> str:
    """stop-loss, take-profit, risk, end of data, outside (closed at the venue by someone
    else, booked by the broker), liquidation (closed by the venue, the account's equity at its
    maintenance margin), unknown (none recorded), or signal (the strategy's own exits)."""
    if not reason:
        return UNKNOWN
    if reason == OUTSIDE_TAG:
        return OUTSIDE
    if reason == LIQUIDATION_TAG:
        return LIQUIDATION
    if reason in _STOP_REASONS:
        return STOP_LOSS
    if reason in _TARGET_REASONS:
        return TAKE_PROFIT
    if reason == END_OF_DATA:
        return END_OF_DATA
    if reason in _RISK_REASONS or reason.startswith("risk"):
        return RISK
    return SIGNAL


@dataclass(frozen=True)
class TradeGroup:
    """Trades sharing a direction, a symbol or an exit reason. A win is a net P&L > 0."""

    trades: int
    wins: int
    net_pnl: float

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else 0.0

    @property
    def expectancy(self) -> float:
        return self.net_pnl / self.trades if self.trades else 0.0

    def as_json(self) -> dict[str, float | int]:
        return {
            "trades": self.trades,
            "wins": self.wins,
            "win_rate": self.win_rate,
            "net_pnl": self.net_pnl,
            "expectancy": self.expectancy,
        }


def group_trades(trades: Sequence[Trade], key: Callable[[Trade], str]) -> dict[str, TradeGroup]:
    """One ``TradeGroup`` per key, most trades first (ties by key)."""
    return _grouped([key(t) for t in trades], [t.net_pnl for t in trades])


def _grouped(keys: Sequence[str], net_pnls: Sequence[float]) -> dict[str, TradeGroup]:
    """``group_trades`` of trades given as their keys and net P&L, in the same order."""
    counts: dict[str, list[float]] = {}
    for name, pnl in zip(keys, net_pnls, strict=True):
        counts.setdefault(name, []).append(pnl)
    groups = {
        name: TradeGroup(len(pnls), sum(1 for p in pnls if p > 0), math.fsum(pnls))
        for name, pnls in counts.items()
    }
    return dict(sorted(groups.items(), key=lambda item: (-item[1].trades, item[0])))


def longest_losing_streak(trades: Sequence[Trade], net_pnls: Sequence[float] = ()) -> int:
    """Most consecutive trades, in order of exit, that were not wins (net P&L ≤ 0).

    ``net_pnls``: the trades' net P&L, in their order, when the caller has read them."""
    pnls = list(net_pnls) if len(net_pnls) == len(trades) else [t.net_pnl for t in trades]
    exits = [t.exit_ts for t in trades]
    if any(later < earlier for earlier, later in pairwise(exits)):
        # stable: same-time exits keep their order
        pnls = [pnls[k] for k in sorted(range(len(exits)), key=exits.__getitem__)]
    longest = current = 0
    for pnl in pnls:
        if pnl <= 0:
            current += 1
            longest = max(longest, current)
        else:
            current = 0
    return longest


# The shortest span given a CAGR: 30 days. CAGR extrapolates a run's growth to a year with the
# power 1/years, which multiplies a small return about 1/years times: ×12 over a month (a
# monthly return quoted as an annual rate, a figure traders read) but ×52 over a week, ×365
# over a day and ×32,870 over 16 one-minute bars, where a 1.3 % loss reads as -100 % (a total
# loss the account never had) and a 1.3 % gain as 1e186 %: noise made into a headline. A month
# still gives short backtests a figure (GIPS annualises nothing under a year; too strict here).
MIN_CAGR_YEARS = 30 * 86400 / SECONDS_PER_YEAR


def cagr(initial: float, final: float, years: float) -> float | None:
    """Compound annual growth rate (a fraction); None without a span, with equity ≤ 0, or
    over a span too short to extrapolate to a year (under ``MIN_CAGR_YEARS``, 30 days).

    Runs of 30 days to a year are extrapolated, as the formula does; read it with the span.
    """
    if years < MIN_CAGR_YEARS or initial <= 0 or final <= 0:
        return None
    try:
        return float((final / initial) ** (1.0 / years) - 1.0)
    except OverflowError:  # growth past a float even over 30 days (a ratio above ~1e25)
        return None


def monthly_returns(
    timestamps: Sequence[int] | np.ndarray, equity: Sequence[float] | np.ndarray, initial: float
) -> list[tuple[str, float]]:
    """("YYYY-MM", return as a fraction) per calendar month (UTC) of the equity curve.

    A month's return is its last equity over the previous month's last (``initial`` for the
    first month); a bar belongs to the month its close time falls in.
    """
    stamps = np.asarray(timestamps, dtype="int64")
    curve = np.asarray(equity, dtype=float)
    if stamps.size == 0:
        return []
    months = stamps.astype("datetime64[s]").astype("datetime64[M]")
    last = np.flatnonzero(np.append(months[1:] != months[:-1], True))  # last bar of each month
    ends = curve[last]
    starts = np.concatenate(([initial], ends[:-1]))
    return [
        (str(month), float(end / start - 1.0))
        for month, end, start in zip(months[last], ends, starts, strict=True)
    ]


class SymbolRange(NamedTuple):
    """The bars a run traded for one symbol (journaled in ``run_symbols``)."""

    symbol: str
    bars: int
    first_ts: int  # open time of the first traded bar
    first_open: float
    last_ts: int  # open time of the last traded bar
    last_close: float

    @property
    def buy_and_hold(self) -> float:
        return self.last_close / self.first_open - 1.0 if self.first_open else 0.0


def end_of_data_at_symbol_ends(
    trades: Sequence[Trade], symbols: Sequence[SymbolRange], timeframe_s: int
) -> list[Trade]:
    """``trades`` with each end-of-data trade ending when its own symbol's data ended.

    The session ends every position still open at the run's last close time; a symbol whose
    data ended earlier (a shorter file) was last marked at its own last bar, so its trade ends
    at that bar's close (``last_ts + timeframe_s``): its held time, the average duration and the
    order of exits follow. Its price and P&L are the engine's: the symbol's mark, which is that
    bar's close and what the equity holds the position at, so trades still add up to the
    equity. Only ever moved earlier; a symbol without a range is left as it is.
    """
    ends = {s.symbol: s.last_ts + timeframe_s for s in symbols}
    stamped = []
    for trade in trades:
        end = ends.get(trade.symbol)
        if trade.exit_reason == END_OF_DATA and end is not None and end < trade.exit_ts:
            trade = replace(trade, exit_ts=end)
        stamped.append(trade)
    return stamped


@dataclass(frozen=True)
class Benchmark:
    """Buy and hold: equal parts of the capital in each symbol at the first traded bar's open,
    held to the last bar's close, never rebalanced, no fees. The portfolio's return is then
    the plain mean of the symbols' returns."""

    symbols: tuple[SymbolRange, ...]
    years: float

    @property
    def return_pct(self) -> float:
        return float(np.mean([s.buy_and_hold for s in self.symbols])) * 100.0

    def as_json(self) -> dict[str, object]:
        growth = cagr(1.0, 1.0 + self.return_pct / 100.0, self.years)
        return {
            "method": "equal-weight buy and hold: first traded open to last close, no fees",
            "return_pct": self.return_pct,
            "cagr_pct": None if growth is None else growth * 100.0,
            "symbols": {
                s.symbol: {
                    "first_open": s.first_open,
                    "last_close": s.last_close,
                    "return_pct": s.buy_and_hold * 100.0,
                }
                for s in self.symbols
            },
        }


@dataclass(frozen=True)
class ReportInput:
    """What a report is computed from: the same for a backtest just run and a journal read."""

    initial: float
    currency: str
    timeframe_s: int
    timestamps: Sequence[int] | np.ndarray  # close time of each bar (equity snapshots)
    equity: Sequence[float] | np.ndarray
    exposure: Sequence[float] | np.ndarray
    trades: Sequence[Trade]  # closed trades, then any still open as END_OF_DATA trades
    fees: float
    symbols: Sequence[SymbolRange] = ()
    # Funding the venue paid (+) or charged (-) in the run, booked into its cash: in the
    # equity and the net P&L, in no trade's P&L.
    funding: float = 0.0


@dataclass(frozen=True)
class Report:
    """Everything the report table shows (``report.json_schema`` turns it into JSON)."""

    figures: Figures
    start_ts: int | None  # open of the first bar
    end_ts: int | None  # close of the last bar
    years: float
    cagr: float | None
    calmar: float | None  # CAGR over max drawdown; None without a drawdown or a CAGR
    expectancy: float  # mean net P&L per trade
    average_win: float | None
    average_loss: float | None  # ≤ 0
    average_duration_s: float | None
    longest_losing_streak: int
    by_direction: dict[str, TradeGroup]
    by_symbol: dict[str, TradeGroup]
    exit_reasons: dict[str, TradeGroup]
    monthly: list[tuple[str, float]]
    benchmark: Benchmark | None
    funding: float = 0.0


def exposure_after_data_ends(
    timestamps: Sequence[int] | np.ndarray,
    exposure: Sequence[float] | np.ndarray,
    trades: Sequence[Trade],
    symbols: Sequence[SymbolRange],
    timeframe_s: int,
) -> Sequence[float] | np.ndarray:
    """``exposure`` without each end-of-data trade of a symbol whose data ended before the
    run's, after it ended: its trade ends at the symbol's own last close
    (``end_of_data_at_symbol_ends``), but the engine held the position to the run's end at
    that mark, so the run's exposure counted it in the market after its trade had ended (98%
    where its trades held 88%). Only those: a walk-forward's stitched windows each end their
    own positions, which later windows never held."""
    ends = {s.symbol: s.last_ts + timeframe_s for s in symbols}
    ended = [
        (t.exit_ts, abs(t.quantity * t.exit_price))
        for t in trades
        if t.exit_reason == END_OF_DATA and t.quantity and ends.get(t.symbol) == t.exit_ts
    ]
    stamps = np.asarray(timestamps, dtype="int64")
    if not ended or not stamps.size or all(end >= stamps[-1] for end, _ in ended):
        return exposure
    trimmed = np.array(exposure, dtype=float)
    if trimmed.size != stamps.size:
        return exposure
    for end, value in ended:
        after = stamps > end
        trimmed[after] -= value
    # What is left of a float sum of the same values is no position.
    trimmed[trimmed <= 1e-9 * max(1.0, float(np.max(np.abs(exposure))))] = 0.0
    return trimmed


def build_report(data: ReportInput) -> Report:
    """All the report's figures, from a run's equity curve, trades and traded bars."""
    trades = data.trades
    figures = compute_figures(
        initial=data.initial,
        timestamps=data.timestamps,
        equity=data.equity,
        exposure=exposure_after_data_ends(
            data.timestamps, data.exposure, trades, data.symbols, data.timeframe_s
        ),
        trades=trades,
        fees=data.fees,
    )
    stamps = np.asarray(data.timestamps, dtype="int64")
    start = int(stamps[0]) - data.timeframe_s if stamps.size else None
    end = int(stamps[-1]) if stamps.size else None
    years = (end - start) / SECONDS_PER_YEAR if start is not None and end is not None else 0.0
    growth = cagr(data.initial, figures.final_equity, years)
    drawdown = figures.max_drawdown_pct / 100.0
    pnls = [t.net_pnl for t in trades]  # a computed property: read once per trade
    wins = [pnl for pnl in pnls if pnl > 0]
    losses = [pnl for pnl in pnls if pnl <= 0]
    return Report(
        figures=figures,
        start_ts=start,
        end_ts=end,
        years=years,
        cagr=growth,
        calmar=growth / drawdown if growth is not None and drawdown > 0 else None,
        expectancy=math.fsum(pnls) / len(pnls) if pnls else 0.0,
        average_win=math.fsum(wins) / len(wins) if wins else None,
        average_loss=math.fsum(losses) / len(losses) if losses else None,
        average_duration_s=(
            math.fsum(t.exit_ts - t.entry_ts for t in trades) / len(trades) if trades else None
        ),
        longest_losing_streak=longest_losing_streak(trades, pnls),
        by_direction=_grouped(["long" if t.direction > 0 else "short" for t in trades], pnls),
        by_symbol=_grouped([t.symbol for t in trades], pnls),
        exit_reasons=_grouped([t.exit_reason or "(none)" for t in trades], pnls),
        monthly=monthly_returns(stamps, data.equity, data.initial),
        benchmark=Benchmark(tuple(data.symbols), years) if data.symbols else None,
        funding=data.funding,
    )
