"""The ``mt5`` data feed: bars from a MetaTrader 5 terminal.

History first (``copy_rates_from_pos``: the strategy's warm-up, and for a restarted bot every
bar since the last one it handled), then each bar once it has closed — its close time passed on
the server clock plus ``settle_s`` for its last ticks; the bar still forming is never handed
over. Bar times come in the trade server's time zone and leave in UTC (``server_offset_s``).
Missing bars follow the csv feed's gap policy. While it waits for the next bar the feed calls
``FeedRequest.idle`` every quarter second, so control calls and the broker's events never wait
for a bar, and ends its bars within a quarter second of ``FeedRequest.should_stop``.

The terminal is shared with the ``mt5`` broker (the real package is one per process): calls
take the same per-terminal lock as the broker's thread.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tradefleet_plugins.brokers.mt5_link import load_bridge, load_terminal, terminal_lock
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


def _credentials_dir() -> Path | None:
    folder = os.environ.get(_CREDENTIALS_DIR_ENV)
    return Path(folder) if folder else None


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
        self._clock = clock or time.time  # UTC seconds
        self._sleep = sleep or time.sleep
        self._names = SymbolMap(params.symbols)
        self._report = FeedReport()

    def report(self) -> FeedReport:
        return self._report

    def _call(self, function: str, *args: Any) -> Any:
        module = self._terminal
        with terminal_lock(module):
            result = getattr(module, function)(*args)
            if result is None:
                code, message = module.last_error()
                raise DataError(
                    f"data_feed: the MetaTrader 5 terminal answered {function} with error "
                    f"{code} ({message})"
                )
        return result

    def bars(self, request: FeedRequest) -> Iterator[Bar]:
        if self._terminal is None:
            self._terminal = (
                load_bridge(self.params, _credentials_dir())
                if self.params.bridge_address is not None
                else load_terminal(self.params.terminal)
            )
        with terminal_lock(self._terminal):
            if self._terminal.terminal_info() is None and not self._terminal.initialize():
                code, message = self._terminal.last_error()
                raise DataError(
                    f"data_feed: MetaTrader 5 terminal not reachable ({code} {message})"
                )
        timeframe = request.timeframe_s
        tf = mt5_timeframe(timeframe)
        symbols = request.symbols
        for symbol in symbols:
            if not self._call("symbol_select", self._names.venue(symbol), True):
                raise DataError(f"data_feed: the terminal does not know {symbol!r}")
        now = self._clock()
        count = request.warmup_bars + 1
        if request.resume_after_ts:
            count += max(int(now - request.resume_after_ts) // timeframe, 0)
        count = min(count, _MAX_BARS)
        last: dict[str, Bar | None] = dict.fromkeys(symbols)
        yield from self._closed(symbols, tf, timeframe, count, now, last)
        while True:
            newest = max((b.ts for b in last.values() if b is not None), default=0)
            due = (newest + 2 * timeframe if newest else self._clock()) + self.params.settle_s
            if not self._wait_until(due, request):
                return
            now = self._clock()
            behind = int(now - newest) // timeframe + 2 if newest else 2
            yield from self._closed(symbols, tf, timeframe, min(behind, _MAX_BARS), now, last)
            if not self._wait_until(
                min(self._clock() + self.params.poll_s, due + timeframe), request
            ):
                return

    def _wait_until(self, due: float, request: FeedRequest) -> bool:
        """Wait for ``due`` on the feed's clock: False once the bot is asked to stop (the
        stream then ends within a quarter second, not at the next bar)."""
        while True:
            if request.should_stop is not None and request.should_stop():
                log.info("mt5 feed: the bot is stopping: no more bars requested")
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
        count: int,
        now: float,
        last: dict[str, Bar | None],
    ) -> Iterator[Bar]:
        """The closed bars newer than the last handed over, all symbols merged by time."""
        offset = self.params.server_offset_s
        fresh: list[tuple[int, int, Bar]] = []
        for index, symbol in enumerate(symbols):
            rows = self._call("copy_rates_from_pos", self._names.venue(symbol), tf, 0, count)
            previous = last[symbol]
            after = previous.ts if previous is not None else -1
            # Closed: its close time has passed (the bar still forming is never handed over).
            bars = [
                bar
                for bar in rows_to_bars(rows, symbol, timeframe, offset)
                if bar.ts + timeframe <= now and bar.ts > after
            ]
            if not bars:
                continue
            result = apply_gap_policy(previous, bars, self.params.gap_policy, timeframe)
            report = self._report
            report.gaps += result.gaps
            report.missing_bars += result.missing
            report.filled_bars += result.filled
            if result.gaps:
                report.notes.append(f"{symbol}: {result.gaps} gap(s), {result.missing} missing")
            last[symbol] = result.bars[-1]
            fresh.extend((bar.ts, index, bar) for bar in result.bars)
        fresh.sort(key=lambda item: (item[0], item[1]))
        for _, _, bar in fresh:
            report = self._report
            report.bars += 1
            report.first_ts = bar.ts if report.first_ts is None else report.first_ts
            report.last_ts = bar.ts
            yield bar


__all__ = ["Mt5Feed"]
