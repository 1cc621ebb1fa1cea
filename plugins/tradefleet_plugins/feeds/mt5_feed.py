"""The ``mt5`` data feed: bars from a MetaTrader 5 terminal.

History first (``copy_rates_from_pos``: the strategy's warm-up, and for a restarted bot every
bar since the last one it handled), then each bar once its close time plus ``settle_s`` has
passed on the trade server's clock; the bar still forming is never handed over. The server's
clock is read from the terminal's ticks (``symbol_info_tick(...).time``), never taken from the
host's clock, which may be off. Bar times come in the server's zone and leave in UTC: the zone
is measured from the ticks (brokers run whole- or half-hour zones) and re-measured as the feed
runs, so a broker's DST switch (UTC+2 in winter, UTC+3 in summer) is followed;
``server_offset_s`` is the fallback while no tick has shown the zone, and a check (the mt5
broker measures it the same way: ``mt5_link.ServerClock``). That clock, in UTC, is the market's
time the feed tells the runtime (``tells-market-time``; while no tick comes, a weekend, the
host's clock taken back by the most it may be off, so it neither lags nor runs ahead): a
restarted bot trades only the newest closed bar, the ones before it are history.

Missing bars follow the csv feed's gap policy. While it waits the feed calls
``FeedRequest.idle`` every quarter second and asks the terminal every ``poll_s``, so control
calls and the broker's events never wait for a bar, and ends its bars within a quarter second
of ``FeedRequest.should_stop``. A terminal that fails for a while (IPC timeouts, a restart) is
retried with backoff for up to ``max_outage_s``; an unknown symbol fails at once. A feed that
has handed over nothing for a few bars says why in its report and log.

The terminal is shared with the ``mt5`` broker (the real package is one per process): calls
take the same per-terminal lock as the broker's thread.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tradefleet_plugins.brokers.mt5_link import (
    AUTH_FAILED,
    IPC_LOST,
    ServerClock,
    load_bridge,
    load_terminal,
    measure_zone,
    nearest_zone,
    terminal_lock,
    zone_name,
)
from tradefleet_plugins.brokers.mt5_params import SymbolMap
from tradefleet_plugins.feeds.mt5_bars import apply_gap_policy, mt5_timeframe, rows_to_bars
from tradefleet_plugins.feeds.mt5_feed_params import Mt5FeedParams
from tradefleet_runtime.sdk import Bar, DataError, FeedReport, FeedRequest

log = logging.getLogger(__name__)

_IDLE_S = 0.25
_MAX_BARS = 100_000
# The folder the operator mounts the broker's credentials Secret at: the feed reads the bridge's
# token from it (a feed is given no credentials folder of its own).
_CREDENTIALS_DIR_ENV = "TRADEFLEET_CREDENTIALS_DIR"
# At start, how long the feed waits for a tick that shows the zone before falling back to
# server_offset_s (only when the terminal's last tick does not already agree with it).
_MEASURE_WAIT_S = 60.0
# Nothing handed over for this many bars: the feed says why (a note and a warning).
_STALL_BARS = 3
# Retrying a failing terminal: the first wait, doubled up to the longest.
_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 15.0
# The shortest wait between two looks at the terminal: never a busy loop.
_MIN_WAIT_S = 0.05
# last_error() of a call the terminal refused outright; for a symbol, an unknown one.
_CALL_FAILED = -1
_WEEK_S = 7 * 86_400


class _Stopped(Exception):
    """The bot was asked to stop while the feed waited: the stream ends."""


def _credentials_dir() -> Path | None:
    folder = os.environ.get(_CREDENTIALS_DIR_ENV)
    return Path(folder) if folder else None


# -- pure decisions ---------------------------------------------------------------------------
def bar_open(t: float, timeframe_s: int) -> int:
    """The open time of the bar holding ``t`` (MT5's weekly bars open on Sunday)."""
    seconds = int(t // 1)
    if timeframe_s == _WEEK_S:
        return seconds - (seconds - 3 * 86_400) % _WEEK_S  # 1970-01-04 was a Sunday
    return seconds - seconds % timeframe_s


def is_closed(open_s: int, timeframe_s: int, settle_s: float, server_now: float) -> bool:
    """A bar (open time in server seconds) may be handed over: its close plus ``settle_s``
    has passed on the server's clock."""
    return open_s + timeframe_s + settle_s <= server_now


def server_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S") + " server time"


def stall_reason(
    newest: Mapping[str, int | None],
    handed: Mapping[str, int | None],
    server_now: float,
    quiet_s: float,
) -> str:
    """Why nothing was handed over for ``quiet_s``: the terminal's newest bar (server open
    time) per symbol against the last one handed over."""
    waiting = [
        symbol
        for symbol, top in newest.items()
        if top is not None and (handed.get(symbol) is None or top > (handed[symbol] or 0))
    ]
    if waiting:
        tops = ", ".join(f"{s} {server_time(newest[s] or 0)}" for s in waiting)
        return (
            f"no bar handed over for {quiet_s:.0f} s: the terminal's newest bars ({tops}) have "
            f"not closed on the server's clock ({server_time(server_now)}, from its ticks) plus "
            "settle_s"
        )
    last = [t for t in handed.values() if t is not None]
    since = f" since {server_time(max(last))}" if last else ""
    return (
        f"no bar handed over for {quiet_s:.0f} s: the terminal has no new bar{since} (market "
        f"closed or a quiet symbol; server clock {server_time(server_now)})"
    )


class _Series:
    """One symbol's progress: the last bar handed over, in UTC and as the server stamped it."""

    __slots__ = ("bar", "dropped", "looked", "newest", "open_s", "pending")

    def __init__(self) -> None:
        self.bar: Bar | None = None
        self.open_s: int | None = None  # server time: immune to a zone change
        self.newest: int | None = None  # the terminal's newest bar at the last look
        self.looked: float | None = None  # the server's clock at the last look
        self.pending = 0  # bars of the last look newer than the last handed over
        self.dropped = False  # bars were dropped to keep times in order (said once)

    def count(self, first: int, timeframe_s: int, server_now: float) -> int:
        """How many bars to ask for: the first time ``first``; then those still pending and
        any opened since the last look (a bar exists only once a tick falls in it), so a
        market closed for days is not asked for days of bars every poll."""
        if self.looked is None:
            return first
        return min(self.pending + int(server_now - self.looked) // timeframe_s + 2, _MAX_BARS)


class Mt5Feed:
    def __init__(
        self,
        params: Mt5FeedParams,
        terminal: Any = None,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.params = params
        self._terminal = terminal
        self._clock = clock or time.time  # the host's UTC seconds
        self._sleep = sleep or time.sleep
        self._names = SymbolMap(params.symbols)
        self._report = FeedReport()
        self._server = ServerClock(params.server_offset_s)
        self._request = FeedRequest(symbols=(), timeframe_s=60)

    def report(self) -> FeedReport:
        return self._report

    def market_time(self) -> float | None:
        """``tells-market-time``: the trade server's clock now, in UTC (from the ticks seen;
        None before the first): a restarted bot trades only the newest closed bar."""
        return self._server.utc_now(self._clock())

    def release_slack_s(self) -> float:
        """``ReleaseSlack``: a bar is handed over ``settle_s`` after its close, found at the
        next ask (every ``poll_s``)."""
        return self.params.settle_s + 2 * self.params.poll_s

    def _note(self, text: str) -> None:
        log.warning("mt5 feed: %s", text)
        self._report.notes.append(text)

    # -- the terminal ---------------------------------------------------------------------------
    def _call(self, function: str, *args: Any, symbol: str | None = None) -> Any:
        """``function(*args)``; passing failures retried with backoff (idle served, a stop
        honoured) for up to ``max_outage_s``, others raised at once."""
        started: float | None = None
        delay = _BACKOFF_S
        while True:
            module = self._terminal
            with terminal_lock(module):
                result = getattr(module, function)(*args)
                failed = result is None or result is False
                code, message = module.last_error() if failed else (0, "")
            if not failed:
                if started is not None:
                    log.info("mt5 feed: the terminal answers %s again", function)
                return result
            code = int(code)
            if symbol is not None and code == _CALL_FAILED and self._unknown(symbol):
                where = (
                    f"spec.data.params.symbols.{symbol}"
                    if symbol in self.params.symbols
                    else "spec.market.symbols"
                )
                raise DataError(
                    f"{where}: the MetaTrader 5 terminal does not know "
                    f"{self._names.venue(symbol)!r}"
                )
            if code not in IPC_LOST and code != _CALL_FAILED:
                raise DataError(
                    f"data_feed: the MetaTrader 5 terminal answered {function} with error "
                    f"{code} ({message})"
                )
            now = self._clock()
            if started is None:
                started = now
            limit = self.params.max_outage_s
            if now - started >= limit:
                raise DataError(
                    f"data_feed: the MetaTrader 5 terminal kept failing {function} for "
                    f"{now - started:.0f} s (last error {code} {message}); the feed gives up "
                    f"after spec.data.params.max_outage_s ({limit:.10g} s)"
                )
            log.warning(
                "mt5 feed: %s failed (%s %s), retry in %.2fs", function, code, message, delay
            )
            if not self._wait_until(min(now + delay, started + limit), self._request):
                raise _Stopped
            if code in IPC_LOST:
                self._reconnect()
            delay = min(delay * 2, _MAX_BACKOFF_S)

    def _unknown(self, symbol: str) -> bool:
        module = self._terminal
        with terminal_lock(module):
            if module.symbol_info(self._names.venue(symbol)) is not None:
                return False
            return bool(module.last_error()[0] == _CALL_FAILED)

    def _reconnect(self) -> bool:
        """Bring a lost terminal back (as at start); whether it answers."""
        module = self._terminal
        with terminal_lock(module):
            return module.terminal_info() is not None or bool(module.initialize())

    def _connect(self) -> None:
        if self._terminal is None:
            self._terminal = (
                load_bridge(self.params, _credentials_dir())
                if self.params.bridge_address is not None
                else load_terminal(self.params.terminal)
            )
        started = self._clock()
        delay = _BACKOFF_S
        while not self._reconnect():
            with terminal_lock(self._terminal):
                code, message = self._terminal.last_error()
            waited = self._clock() - started
            if code == AUTH_FAILED or waited >= self.params.max_outage_s:
                raise DataError(
                    f"data_feed: MetaTrader 5 terminal not reachable ({code} {message}) after "
                    f"{waited:.0f} s (spec.data.params.max_outage_s)"
                )
            if not self._wait_until(self._clock() + delay, self._request):
                raise _Stopped
            delay = min(delay * 2, _MAX_BACKOFF_S)

    def _look(self, symbols: tuple[str, ...]) -> None:
        """Read the server's clock from the newest tick of ``symbols``; follow its zone."""
        ticks = [self._call("symbol_info_tick", self._names.venue(s), symbol=s) for s in symbols]
        newest = max(int(t.time) for t in ticks)
        # The broker's measurement (``ServerClock``, shared): bar times follow what fills do.
        news = self._server.follow(newest, self._clock(), self.params.server_offset_s)
        if news is not None:
            self._note(news)

    def _measure(self, symbols: tuple[str, ...]) -> None:
        """At start: the server's zone before any bar is converted with it (a tick that agrees
        with server_offset_s at once; else a new tick, waited for a little while)."""
        deadline = self._clock() + _MEASURE_WAIT_S
        while True:
            self._look(symbols)
            if self._server.measured:
                return
            now = self._clock()
            if now >= deadline:
                break
            step = min(self.params.poll_s, _IDLE_S)
            if not self._wait_until(min(now + step, deadline), self._request):
                raise _Stopped
        self._note(
            f"no tick in {_MEASURE_WAIT_S:.0f} s showed the trade server's zone (market "
            f"closed?): bar times use server_offset_s ({zone_name(self.params.server_offset_s)}) "
            "until one does"
        )

    # -- the bars -------------------------------------------------------------------------------
    def bars(self, request: FeedRequest) -> Iterator[Bar]:
        self._request = request
        try:
            yield from self._stream(request)
        except _Stopped:
            log.info("mt5 feed: the bot is stopping: no more bars requested")

    def _stream(self, request: FeedRequest) -> Iterator[Bar]:
        self._connect()
        timeframe = request.timeframe_s
        tf = mt5_timeframe(timeframe)
        symbols = request.symbols
        for symbol in symbols:
            self._call("symbol_select", self._names.venue(symbol), True, symbol=symbol)
        self._measure(symbols)
        count = request.warmup_bars + 1
        if request.resume_after_ts:
            count += max(int(self._clock() - request.resume_after_ts) // timeframe, 0)
        first = min(count, _MAX_BARS)
        series = {symbol: _Series() for symbol in symbols}
        server = self._server
        # The history: every bar closed on the server's clock, at once (settle_s is for a
        # bar the feed saw close, not for one the terminal already holds).
        yield from self._closed(symbols, tf, timeframe, first, series, 0.0)
        quiet_since = self._clock()
        said = False
        while True:
            host = self._clock()
            now = server.now(host)
            # Wake when the next bar's close plus settle_s passes on the server's clock, and
            # at least every poll_s (a zone to re-measure, a late bar); never sooner than
            # _MIN_WAIT_S, so a market that has gone quiet is never a busy loop.
            settle = self.params.settle_s
            next_due = bar_open(now - settle, timeframe) + timeframe + settle
            wait = max(min(self.params.poll_s, next_due - now), _MIN_WAIT_S)
            if not self._wait_until(host + wait, request):
                return
            self._look(symbols)
            handed = yield from self._closed(symbols, tf, timeframe, first, series, settle)
            host = self._clock()
            now = server.now(host)
            if handed:
                quiet_since, said = host, False
            elif not said and host - quiet_since >= _STALL_BARS * timeframe:
                said = True
                self._note(
                    stall_reason(
                        {s: v.newest for s, v in series.items()},
                        {s: v.open_s for s, v in series.items()},
                        now,
                        host - quiet_since,
                    )
                )

    def _wait_until(self, due: float, request: FeedRequest) -> bool:
        """Wait for ``due`` on the host's clock: False once the bot is asked to stop (the
        stream then ends within a quarter second, not at the next bar)."""
        while True:
            if request.should_stop is not None and request.should_stop():
                return False
            left = due - self._clock()
            if left <= 0:
                return True
            if request.idle is not None:
                request.idle()
            self._sleep(min(left, _IDLE_S))

    def _closed(
        self,
        symbols: tuple[str, ...],
        tf: int,
        timeframe: int,
        first: int,
        series: dict[str, _Series],
        settle_s: float,
    ) -> Generator[Bar, None, int]:
        """The closed bars newer than the last handed over, all symbols merged by time; how
        many. ``first``: how many bars to ask for at a symbol's first look."""
        server = self._server
        fresh: list[tuple[int, int, Bar]] = []
        for index, symbol in enumerate(symbols):
            state = series[symbol]
            # The server's clock before the rows are read: a row it shows closed was closed
            # when fetched (the clock is a lower bound, so this errs late, never early).
            now = server.now(self._clock())
            count = state.count(first, timeframe, now)
            rows = self._call(
                "copy_rates_from_pos", self._names.venue(symbol), tf, 0, count, symbol=symbol
            )
            state.newest = int(rows[-1]["time"]) if len(rows) else state.newest
            state.looked = now
            after = state.open_s if state.open_s is not None else -1
            newer = [row for row in rows if int(row["time"]) > after]
            ready = [row for row in newer if is_closed(int(row["time"]), timeframe, settle_s, now)]
            state.pending = len(newer) - len(ready)
            if not ready:
                continue
            state.open_s = int(ready[-1]["time"])
            bars = rows_to_bars(ready, symbol, timeframe, server.offset)
            previous = state.bar
            if previous is not None and bars[0].ts <= previous.ts:
                # The zone was re-measured (a wrong server_offset_s at a closed-market start):
                # times stay in order, the bars that would go back are dropped, and said.
                kept = [bar for bar in bars if bar.ts > previous.ts]
                if not state.dropped:
                    state.dropped = True
                    self._note(
                        f"{symbol}: bars dropped: with the re-measured zone they open at or "
                        f"before the last one handed over ({previous.ts}), until they pass it"
                    )
                bars = kept
                if not bars:
                    continue
            result = apply_gap_policy(previous, bars, self.params.gap_policy, timeframe)
            report = self._report
            report.gaps += result.gaps
            report.missing_bars += result.missing
            report.filled_bars += result.filled
            if result.gaps:
                report.notes.append(f"{symbol}: {result.gaps} gap(s), {result.missing} missing")
            state.bar = result.bars[-1]
            fresh.extend((bar.ts, index, bar) for bar in result.bars)
        fresh.sort(key=lambda item: (item[0], item[1]))
        for _, _, bar in fresh:
            report = self._report
            report.bars += 1
            report.first_ts = bar.ts if report.first_ts is None else report.first_ts
            report.last_ts = bar.ts
            yield bar
        return len(fresh)


__all__ = ["Mt5Feed", "ServerClock", "bar_open", "is_closed", "measure_zone", "nearest_zone"]
