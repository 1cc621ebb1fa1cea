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
- a symbol's first candle later than the first one asked for is a short history: before a
  restarted bot's resume point only its warm-up is short (noted); after it, every candle the
  bot never got is a gap (a venue that serves only its newest candles, like Kraken's 720);
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


def first_unhandled(resume_after_ts: int, timeframe_s: int) -> int | None:
    """Open time of the first candle closing after ``resume_after_ts`` (a restarted bot's
    last handled close), or None for a bot's first run (``resume_after_ts`` 0)."""
    if resume_after_ts <= 0:
        return None
    return (resume_after_ts // timeframe_s) * timeframe_s


def history_start(
    venue_now: float, timeframe_s: int, warmup_bars: int, resume_after_ts: int
) -> int:
    """Open time of the first candle to send: ``warmup_bars`` closed candles before now, and
    for a restarted bot also ``warmup_bars`` before the first candle closing after
    ``resume_after_ts`` (everything since then follows)."""
    start = last_closed_open(venue_now, timeframe_s) - (warmup_bars - 1) * timeframe_s
    resume = first_unhandled(resume_after_ts, timeframe_s)
    if resume is not None:
        start = min(start, resume - warmup_bars * timeframe_s)
    return start


def short_history(
    first_ts: int, seen_ts: int, resume_ts: int | None, timeframe_s: int
) -> tuple[int, int]:
    """(warm-up candles missing, candles after the resume point missing) when a symbol's
    first candle is at ``seen_ts`` though history was asked from ``first_ts`` (pure).

    Candles before ``resume_ts`` (a restarted bot's first unhandled candle; None on a first
    run) are warm-up only: the bot handled that time already. Those after it are candles the
    bot never gets: a gap.
    """
    split = seen_ts if resume_ts is None else max(first_ts, min(seen_ts, resume_ts))
    warmup = max(0, (split - first_ts) // timeframe_s)
    missed = max(0, (seen_ts - split) // timeframe_s)
    return warmup, missed


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
        resume_ts: int | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self.timeframe_s = timeframe_s
        self.policy = policy
        self.report = report
        # The newest timestamp released; nothing at or before it is released again.
        self.start = first_ts
        self.end = end_ts  # candles opening at or after it are not wanted
        # A restarted bot's first unhandled candle: a shorter history than asked for is a
        # gap from here on, and only a short warm-up before it.
        self.resume = resume_ts
        self.frontier = first_ts - timeframe_s
        self.last_seen: dict[str, int] = {}
        self.pending: dict[str, deque[Bar]] = {s: deque() for s in self.symbols}
        self._closes: dict[str, float] = {}  # last released close per symbol
        # Per symbol, the newest candle dropped as late: a run of them is one gap.
        self._late: dict[str, int] = {}
        # The candles said to have no prices, by symbol: asked for again at every poll until
        # the next one closes (the cursor stays on them), they are said once.
        self._priceless: dict[str, int] = {}

    def next_ts(self) -> int:
        return self.frontier + self.timeframe_s

    def finished(self) -> bool:
        """True once every candle before ``end`` was released."""
        return self.end is not None and self.next_ts() >= self.end

    def cursor(self, symbol: str, reach: int = 0) -> int:
        """Open time of the next candle wanted for ``symbol``: the one after its newest seen.

        A symbol passed over (its newest seen is before the frontier) is asked again from
        there, at most ``reach`` candles before the next timestamp: a candle the venue has
        only later is then seen and dropped *as late*, not mistaken for one the venue does
        not have. ``reach`` bounds what a symbol with no candles for a long time costs.
        """
        tf = self.timeframe_s
        last = self.last_seen.get(symbol)
        after = self.start if last is None else last + tf
        return max(after, self.next_ts() - reach * tf)

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
            if last is None and ts > self.start:
                self._short_history(symbol, ts)
            if ts <= self.frontier:
                # Its timestamp was released without it (passed over as late): too late now.
                if last is not None and ts - last > tf:
                    self._gap(symbol, last, ts)  # and the venue lacks those before it
                self._dropped_late(symbol, ts)
                continue
            prices = _prices(row)
            if prices is None:
                if self._priceless.get(symbol) != ts:
                    self._priceless[symbol] = ts
                    self.report.notes.append(
                        f"{symbol}: candle at {iso(ts)} has no prices; skipped"
                    )
                continue
            if last is not None and ts - last > tf:
                self._gap(symbol, last, ts)
            self.last_seen[symbol] = ts
            self.pending[symbol].append(_new_bar(Bar, (symbol, tf, ts, *prices)))
            added += 1
        return added

    def _dropped_late(self, symbol: str, ts: int) -> None:
        """``ts`` came after its timestamp was released without it: counted missing, and a
        run of such candles counted as one gap."""
        tf = self.timeframe_s
        if self._late.get(symbol) != ts - tf:
            self.report.gaps += 1
        self._late[symbol] = ts
        self.last_seen[symbol] = ts
        self.report.missing_bars += 1
        self.report.notes.append(
            f"{symbol}: candle at {iso(ts)} passed over as late (the venue had it only after "
            "its time was released); dropped"
        )

    def _short_history(self, symbol: str, ts: int) -> None:
        """The symbol's first candle is at ``ts``, later than the first asked for."""
        tf = self.timeframe_s
        warmup, missed = short_history(self.start, ts, self.resume, tf)
        if warmup:
            last = self.start + (warmup - 1) * tf
            self.report.notes.append(
                f"{symbol}: warm-up short by {warmup} candle(s), {iso(self.start)} to "
                f"{iso(last)}: the venue's history starts at {iso(ts)}"
            )
        if missed and self.resume is not None:
            self._gap(
                symbol,
                self.resume - tf,
                ts,
                ": the venue's history no longer reaches back to the last candle handled "
                "before the restart",
            )

    def _gap(self, symbol: str, last: int, ts: int, why: str = "") -> None:
        tf = self.timeframe_s
        absent = (ts - last) // tf - 1
        if absent <= 0:
            return
        self.report.gaps += 1
        self.report.missing_bars += absent
        self.report.notes.append(
            f"{symbol}: gap of {absent} candle(s) between {iso(last)} and {iso(ts)}, "
            f"policy {self.policy.value}{why}"
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
                        f"{symbol}: no candle {late_s:.10g}s after {iso(at + tf)}; passed over"
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
