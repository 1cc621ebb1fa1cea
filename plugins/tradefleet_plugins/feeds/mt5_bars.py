"""Pure helpers of the ``mt5`` feed: bar lengths -> MT5 timeframes, rows -> bars in UTC, and
the gap policy. No terminal, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from tradefleet_plugins.feeds.csv_params import GapPolicy
from tradefleet_runtime.sdk import Bar, DataError

_MINUTES = frozenset({1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30})
_HOURS = frozenset({1, 2, 3, 4, 6, 8, 12, 24})
_WEEK = 7 * 86_400


def mt5_timeframe(seconds: int) -> int:
    """The ``TIMEFRAME_*`` constant of a bar length (M1..M30, H1..H12, D1, W1)."""
    if seconds % 60 == 0 and seconds // 60 in _MINUTES:
        return seconds // 60
    if seconds % 3600 == 0 and seconds // 3600 in _HOURS:
        return 0x4000 | (seconds // 3600)
    if seconds == _WEEK:
        return 0x8000 | 1
    raise DataError(
        f"timeframe: MetaTrader 5 has no {seconds} s bars (M1-M30, H1-H12, D1, W1 are served)"
    )


def rows_to_bars(rows: Iterable[Any], symbol: str, timeframe_s: int, offset_s: int) -> list[Bar]:
    """``copy_rates_*`` rows (server time) -> bars (UTC open time). Volume: real volume where
    the broker reports it (exchange symbols), else tick volume (forex, CFDs)."""
    bars = []
    for row in rows:
        real = float(row["real_volume"])
        bars.append(
            Bar(
                symbol,
                timeframe_s,
                int(row["time"]) - offset_s,
                float(row["open"]),
                float(row["high"]),
                float(row["low"]),
                float(row["close"]),
                real if real else float(row["tick_volume"]),
            )
        )
    return bars


class Gaps(NamedTuple):
    bars: list[Bar]
    gaps: int
    missing: int
    filled: int


def apply_gap_policy(
    previous: Bar | None, bars: Sequence[Bar], policy: GapPolicy, timeframe_s: int
) -> Gaps:
    """The csv feed's gap policy on a live series: ``previous`` is the last bar handed over."""
    out: list[Bar] = []
    gaps = missing = filled = 0
    last = previous
    for bar in bars:
        if last is not None and bar.ts - last.ts > timeframe_s:
            absent = (bar.ts - last.ts) // timeframe_s - 1
            gaps += 1
            missing += absent
            if policy is GapPolicy.FAIL:
                raise DataError(
                    f"{bar.symbol}: gap of {absent} bar(s) before {bar.ts} (gap_policy: fail)"
                )
            if policy is GapPolicy.FILL:
                close = last.close
                for k in range(1, absent + 1):
                    ts = last.ts + k * timeframe_s
                    out.append(Bar(bar.symbol, timeframe_s, ts, close, close, close, close, 0.0))
                filled += absent
        out.append(bar)
        last = bar
    return Gaps(out, gaps, missing, filled)


__all__ = ["Gaps", "apply_gap_policy", "mt5_timeframe", "rows_to_bars"]
