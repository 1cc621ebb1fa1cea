"""Closed candles from a venue, stitched into one bar stream (pure: no I/O, no clock).

A venue answers a candle request with whatever it has, including the candle still forming;
the live feed (``ccxt_feed``) hands those answers here with the venue's time. This module
decides what a bot may see:

- only closed candles: one whose open + timeframe is after the venue's time is dropped (it
  comes back on a later request, complete);
- each candle once, oldest first, bars of one timestamp in the bot's ``symbols`` order;
- a timestamp is released when every symbol has its candle, or a later one (the missing one
  is a gap), or its candle is ``late_s`` overdue (the symbol is passed over for that
  timestamp; a candle arriving after its timestamp was released is dropped and counted);
- gaps follow the csv feed's policy: counted and traded through, refused, or filled with flat
  candles at the previous close.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime

from tradefleet_plugins.feeds.csv_params import GapPolicy
from tradefleet_runtime.sdk import Bar, DataError, FeedReport

_new_bar = tuple.__new__


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def last_closed_open(venue_now: float, timeframe_s: int) -> int:
    """Open time of the newest candle closed at ``venue_now``."""
    return math.floor(venue_now / timeframe_s) * timeframe_s - timeframe_s


def history_start(
    venue_now: float, timeframe_s: int, warmup_bars: int, resume_after_ts: int
) -> int:
    """Open time of the first candle to send: ``warmup_bars`` closed candles before now, and
    for a restarted bot also ``warmup_bars`` before the first candle closing after
    ``resume_after_ts`` (everything since then follows)."""
    start = last_closed_open(venue_now, timeframe_s) - (warmup_bars - 1) * timeframe_s
    if resume_after_ts > 0:
        first_unhandled = (resume_after_ts // timeframe_s) * timeframe_s
        start = min(start, first_unhandled - warmup_bars * timeframe_s)
    return start


class CandleStitcher:
    """Per-symbol closed candles in, one time-ordered bar stream out."""

    def __init__(
        self,
        symbols: Sequence[str],
        timeframe_s: int,
        policy: GapPolicy,
        report: FeedReport,
        first_ts: int,
        end_ts: int | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self.timeframe_s = timeframe_s
        self.policy = policy
        self.report = report
        # The newest timestamp released; nothing at or before it is released again.
        self.start = first_ts
        self.end = end_ts  # candles opening at or after it are not wanted
        self.frontier = first_ts - timeframe_s
        self.last_seen: dict[str, int] = {}
        self.pending: dict[str, deque[Bar]] = {s: deque() for s in self.symbols}
        self._closes: dict[str, float] = {}  # last released close per symbol

    def next_ts(self) -> int:
        return self.frontier + self.timeframe_s

    def finished(self) -> bool:
        """True once every candle before ``end`` was released."""
        return self.end is not None and self.next_ts() >= self.end

    def cursor(self, symbol: str) -> int:
        """Open time of the next candle wanted for ``symbol``."""
        return max(self.last_seen.get(symbol, self.frontier), self.frontier) + self.timeframe_s

    def wants(self, symbol: str) -> bool:
        """True while ``symbol`` has no candle at or after the next timestamp to release."""
        return not self.pending[symbol]

    def add(self, symbol: str, rows: Sequence[Sequence[object]], venue_now: float) -> int:
        """Take a venue's OHLCV rows ([ms, o, h, l, c, v], any order); return how many were new.

        Rows not closed at ``venue_now`` are dropped (asked for again later); rows already
        seen are ignored.
        """
        tf = self.timeframe_s
        added = 0
        for row in sorted(rows, key=lambda r: _ms(r[0])):
            ts = _ms(row[0]) // 1000
            if ts + tf > venue_now or (self.end is not None and ts >= self.end):
                break  # still forming (and so is everything after it), or past the end
            last = self.last_seen.get(symbol)
            if last is not None and ts <= last:
                continue  # seen already (pages overlap)
            if ts < self.start:
                continue  # before the first candle asked for
            if ts <= self.frontier:
                # Its timestamp was released without it (passed over as late): too late now.
                self.last_seen[symbol] = ts
                self.report.gaps += 1
                self.report.missing_bars += 1
                self.report.notes.append(
                    f"{symbol}: candle at {iso(ts)} came after its time was released; dropped"
                )
                continue
            prices = _prices(row)
            if prices is None:
                self.report.notes.append(f"{symbol}: candle at {iso(ts)} has no prices; skipped")
                continue
            if last is not None and ts - last > tf:
                self._gap(symbol, last, ts)
            self.last_seen[symbol] = ts
            self.pending[symbol].append(_new_bar(Bar, (symbol, tf, ts, *prices)))
            added += 1
        return added

    def _gap(self, symbol: str, last: int, ts: int) -> None:
        tf = self.timeframe_s
        absent = (ts - last) // tf - 1
        if absent <= 0:
            return
        self.report.gaps += 1
        self.report.missing_bars += absent
        self.report.notes.append(
            f"{symbol}: gap of {absent} candle(s) between {iso(last)} and {iso(ts)}, "
            f"policy {self.policy.value}"
        )
        if self.policy is GapPolicy.FAIL:
            raise DataError(
                f"{symbol}: the venue has no candle between {iso(last)} and {iso(ts)} "
                f"({absent} missing; spec.data.params.gap_policy: fail)"
            )
        if self.policy is GapPolicy.FILL:
            queue = self.pending[symbol]
            close = queue[-1].close if queue else self._closes.get(symbol)
            if close is None:
                return
            for k in range(1, absent + 1):
                at = last + k * tf
                if at <= self.frontier:
                    continue  # released already without it
                queue.append(_new_bar(Bar, (symbol, tf, at, close, close, close, close, 0.0)))
                self.report.filled_bars += 1

    def ready(self, venue_now: float, late_s: float) -> list[Bar]:
        """The bars that can be released now, in order."""
        out: list[Bar] = []
        tf = self.timeframe_s
        while True:
            heads = [q[0].ts for q in self.pending.values() if q]
            if not heads:
                return out
            at = min(heads)
            for symbol in self.symbols:
                if not self.pending[symbol] and venue_now < at + tf + late_s:
                    return out  # its candle may still come
            for symbol in self.symbols:
                queue = self.pending[symbol]
                if queue and queue[0].ts == at:
                    bar = queue.popleft()
                    self._release(bar)
                    out.append(bar)
                elif not queue and self.last_seen.get(symbol, at) < at:
                    self.report.notes.append(
                        f"{symbol}: no candle {late_s:g}s after {iso(at + tf)}; passed over"
                    )
            self.frontier = at

    def _release(self, bar: Bar) -> None:
        report = self.report
        report.bars += 1
        if report.first_ts is None:
            report.first_ts = bar.ts
        report.last_ts = bar.ts
        self._closes[bar.symbol] = bar.close


def _ms(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"a candle's time is not a number: {value!r}")
    return int(value)


def _prices(row: Sequence[object]) -> tuple[float, float, float, float, float] | None:
    """(open, high, low, close, volume) as floats, or None when a price is missing."""
    values: list[float] = []
    for i in range(1, 6):
        raw = row[i] if i < len(row) else None
        if raw is None and i == 5:
            values.append(0.0)  # some venues send no volume
            continue
        if not isinstance(raw, int | float | str) or isinstance(raw, bool):
            return None
        try:
            value = float(raw)
        except ValueError:
            return None
        if not math.isfinite(value) or (i < 5 and value <= 0):
            return None
        values.append(value)
    open_, high, low, close, volume = values
    return open_, high, low, close, volume
