"""``ccxt``: closed OHLCV candles from a crypto venue, through the ccxt library.

History first: ``warmup_bars`` closed candles before now (and, for a restarted bot, everything
after the last candle it handled), paged through ``fetch_ohlcv``. A venue whose history no
longer reaches back that far (Kraken serves only its newest 720 candles) leaves a gap after
the resume point, counted and noted like any other. Then each candle once it has closed on the
*venue's* clock (``fetch_time`` when the venue has it, resynchronised every minute and carried
forward on the monotonic clock in between, so a step of the host's clock changes nothing; the
local clock otherwise) plus ``settle_s``; a candle still forming is never sent
(``candle_stitch``). Gaps are counted and handled by ``gap_policy``, like the csv feed's.
The venue's clock is the market's time the feed tells the runtime (``tells-market-time``; the
host's clock for a venue without ``fetch_time``, the one the feed then decides a close by): a
restarted bot trades only the newest closed candle, the ones before it are history.

Requests that fail for a passing reason — ccxt's ``NetworkError`` family (timeouts, dropped
connections, 5xx ``ExchangeNotAvailable``, ``RateLimitExceeded``/``DDoSProtection``) and
``OperationFailed`` — are retried with exponential backoff and jitter, never sooner than a
``Retry-After`` the venue sent (honoured in full, up to ``RETRY_AFTER_MAX_S``: a Binance 418
ban outlasts ``backoff_max_s``, and asking again early lengthens it). An
``AuthenticationError`` or ``BadSymbol`` is not retried: the feed fails with an error naming
the param to fix. ccxt's own rate limiter stays on.

The iterator runs on the engine's thread, so every wait goes through :meth:`CcxtFeed._wait`,
in slices of at most ``WAIT_SLICE_S``. Once the bot is asked to stop
(``FeedRequest.should_stop``) the feed sends no more requests and ends its bars at the next
slice, a retry against a venue that is down included: the bot stops within its grace period.
The clock (``time``, ``sleep`` and, where it has one, ``monotonic``) is the feed's ``clock``
attribute, which tests replace to replay candles without waiting for them. Intervals and
deadlines are measured on ``monotonic`` (``time`` stands in for a clock without it).

ccxt is imported when a feed is built, never by ``tradefleet plugins list``.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from tradefleet_plugins.feeds.candle_stitch import (
    CandleStitcher,
    first_unhandled,
    history_start,
    iso,
)
from tradefleet_plugins.feeds.ccxt_feed_params import CcxtFeedParams, MarketType, end_epoch
from tradefleet_plugins.market_names import repeated_market
from tradefleet_runtime.sdk import Bar, DataError, FeedReport, FeedRequest, format_timeframe

log = logging.getLogger("tradefleet.feeds.ccxt")

# The longest single sleep on the engine thread while waiting for a candle or a retry.
WAIT_SLICE_S = 0.25
# How often the venue's clock is asked for again (monotonic seconds).
RESYNC_S = 60.0
# The longest wait a venue's Retry-After is honoured for: beyond it the header is taken as
# garbled, and an hour is longer than any ban Binance hands out for a first offence.
RETRY_AFTER_MAX_S = 3600.0
_MESSAGE_CHARS = 300


class _Stopped(Exception):
    """The bot was asked to stop: the stream ends (raised out of any wait or retry)."""


class FeedClock(Protocol):
    """The feed's view of time: epoch seconds and a blocking sleep.

    A clock may also have ``monotonic()`` (seconds that never step back, like
    :func:`time.monotonic`): the feed measures intervals and deadlines on it. Without it
    ``time`` stands in (a test clock that only ever moves forward).
    """

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class CcxtFeed:
    """Closed candles of the bot's symbols from one ccxt venue."""

    def __init__(self, params: CcxtFeedParams, clock: FeedClock | None = None) -> None:
        self.params = params
        self.clock: FeedClock = clock if clock is not None else SystemClock()
        self.rng = random.Random()
        self.retries = 0
        self._report = FeedReport()
        self._ccxt = _import_ccxt()
        self.client: Any = self._make_client()
        # The venue's time minus the monotonic clock, as of the last ``fetch_time``.
        self._offset_s = 0.0
        self._synced_at: float | None = None  # monotonic seconds of that sync
        self._symbol_count = 1  # the bot's symbols (``bars``): one waits for no other
        # The runtime's idle hook (``FeedRequest.idle``): control calls and the broker's
        # events are served on the engine thread while the feed waits for a candle.
        self._idle: Callable[[], None] | None = None
        # The runtime's stop request (``FeedRequest.should_stop``): checked in every wait and
        # before every request.
        self._should_stop: Callable[[], bool] | None = None

    # -- the DataFeed contract ------------------------------------------------------------
    def report(self) -> FeedReport:
        notes = list(self._report.notes)
        if self.retries:
            notes.append(f"{self.params.exchange}: {self.retries} request(s) retried")
        return dataclasses.replace(self._report, notes=notes)

    def bars(self, request: FeedRequest) -> Iterator[Bar]:
        return self._stream(request)

    # -- tells-market-time ------------------------------------------------------------------
    def market_time(self) -> float | None:
        """The venue's time now by the feed's last sync (no request: the engine thread asks,
        while the feed may wait on its own thread), the clock it decides a candle closed by.
        None until the venue answered ``fetch_time``. For a venue without it (Bitstamp,
        Gemini, Bitfinex, …) the host's clock, which the feed decides a close by there: told
        nothing, a restarted bot traded every candle that closed while it was down, one after
        another at the prices of now."""
        if not self._has_time:
            return float(self.clock.time())
        return None if self._synced_at is None else self._venue_clock()

    def release_slack_s(self) -> float:
        """``ReleaseSlack``: a candle is asked for ``settle_s`` after its close, then every
        ``poll_s``; a timestamp waits up to ``late_s`` for a symbol whose candle is missing
        (a bot of several symbols)."""
        p = self.params
        waits = p.late_s if self._symbol_count > 1 else 0.0
        return p.settle_s + 2 * p.poll_s + waits

    # -- building the client ----------------------------------------------------------------
    def _make_client(self) -> Any:
        p = self.params
        ccxt = self._ccxt
        klass = getattr(ccxt, p.exchange, None)
        if p.exchange not in ccxt.exchanges or klass is None:
            raise DataError(
                f"spec.data.params.exchange: {p.exchange!r} is not an exchange ccxt "
                f"{ccxt.__version__} knows (e.g. binance, binanceusdm, bybit, kraken, okx)"
            )
        options: dict[str, Any] = {
            "fetchMarkets": {"types": [p.market_type.value]},
            "defaultType": "spot" if p.market_type is MarketType.SPOT else "swap",
            "fetchCurrencies": False,
        }
        if p.market_type is not MarketType.SPOT:
            options["defaultSubType"] = p.market_type.value
        options.update(p.ccxt_options)
        config: dict[str, Any] = {
            "enableRateLimit": True,
            "timeout": p.timeout_ms,
            "options": options,
            # Market data needs the markets, not the currencies (a private call on some venues).
            "has": {"fetchCurrencies": False},
        }
        if p.rate_limit_ms is not None:
            config["rateLimit"] = p.rate_limit_ms
        client = klass(config)
        if p.sandbox:
            try:
                client.set_sandbox_mode(True)
            except ccxt.NotSupported:
                raise DataError(
                    f"spec.data.params.sandbox: {p.exchange} has no sandbox/testnet in ccxt"
                ) from None
        if p.api_url is not None:
            point_at(client, p.api_url)
        return client

    # -- the stream -------------------------------------------------------------------------
    def _stream(self, request: FeedRequest) -> Iterator[Bar]:
        self._symbol_count = len(request.symbols)
        self._idle = request.idle
        self._should_stop = request.should_stop
        try:
            yield from self._candles(request)
        except _Stopped:
            log.info("%s: the bot is stopping: no more candles requested", self.params.exchange)

    def _candles(self, request: FeedRequest) -> Iterator[Bar]:
        p = self.params
        tf = request.timeframe_s
        self._call("load_markets", self.client.load_markets)
        venue_symbols = self._resolve_symbols(request.symbols)
        timeframe = self._timeframe(tf)
        end = end_epoch(p.end) if p.end is not None else None
        now = self._venue_now()
        start = history_start(now, tf, request.warmup_bars, request.resume_after_ts)
        resume = first_unhandled(request.resume_after_ts, tf)
        stitch = CandleStitcher(
            request.symbols, tf, p.gap_policy, self._report, start, end, resume_ts=resume
        )
        fetch = self._fetcher(stitch, venue_symbols, timeframe, tf)
        for symbol in request.symbols:
            fetch(symbol)
        yield from stitch.ready(self._venue_now(), p.late_s)
        while not stitch.finished():
            due = stitch.next_ts() + tf + p.settle_s
            self._wait(due - self._venue_now())
            for symbol in request.symbols:
                if stitch.wants(symbol):
                    fetch(symbol)
            released = stitch.ready(self._venue_now(), p.late_s)
            if released:
                yield from released
            else:
                self._wait(p.poll_s)  # the venue has not written it yet

    def _fetcher(
        self, stitch: CandleStitcher, venue_symbols: Mapping[str, str], timeframe: str, tf: int
    ) -> Callable[[str], None]:
        page = self.params.page_limit

        def fetch(symbol: str) -> None:
            """Every closed candle of ``symbol`` after the last one seen, page by page."""
            # A passed-over symbol is asked again from its newest candle, as far back as one
            # page reaches: what the venue had late is then seen late, at no extra request.
            cursor = stitch.cursor(symbol, reach=page - 1)
            while True:
                # The venue's time *before* the request: a candle closed then is closed in
                # the answer, whatever the venue did meanwhile.
                now = self._venue_now()
                if cursor + tf > now or (stitch.end is not None and cursor >= stitch.end):
                    return
                window_end = cursor + page * tf
                rows = self._call(
                    "fetch_ohlcv",
                    self.client.fetch_ohlcv,
                    venue_symbols[symbol],
                    timeframe,
                    cursor * 1000,
                    page,
                    {"until": window_end * 1000 - 1},
                    symbol=symbol,
                )
                noted = len(self._report.notes)
                stitch.add(symbol, rows, now)
                for note in self._report.notes[noted:]:
                    log.warning("%s: %s", self.params.exchange, note)
                newest = max((int(r[0]) // 1000 for r in rows), default=None)
                if newest is not None and newest >= cursor:
                    if newest + tf > now:
                        return  # reached the forming candle
                    cursor = newest + tf
                elif window_end + tf <= now:
                    cursor = window_end  # an empty stretch in the past (venue downtime)
                else:
                    return  # nothing closed yet

        return fetch

    # -- venue lookups ----------------------------------------------------------------------
    def _resolve_symbols(self, symbols: tuple[str, ...]) -> dict[str, str]:
        p = self.params
        markets: Mapping[str, Any] = self.client.markets or {}
        by_id: Mapping[str, Any] = self.client.markets_by_id or {}
        resolved: dict[str, str] = {}
        for i, symbol in enumerate(symbols):
            mapped = symbol in p.symbols
            venue = p.symbols.get(symbol, symbol)
            where = f"spec.data.params.symbols.{symbol}" if mapped else f"spec.market.symbols[{i}]"
            found = None
            market = markets.get(venue)
            if market is not None and _is_type(market, p.market_type):
                found = market["symbol"]
            else:
                candidates = by_id.get(venue) or []
                for candidate in candidates:
                    if _is_type(candidate, p.market_type):
                        found = candidate["symbol"]
                        break
            if found is None:
                examples = [s for s, m in markets.items() if _is_type(m, p.market_type)][:5]
                raise DataError(
                    f"{where}: {venue!r} is not a {p.exchange} {p.market_type.value} market "
                    f"(e.g. {', '.join(examples) or 'none loaded'}; see spec.data.params."
                    "market_type and spec.data.params.symbols)"
                )
            resolved[symbol] = found
        repeated = repeated_market(symbols, [resolved[s] for s in symbols], p.exchange)
        if repeated is not None:
            # Both bot symbols would get the same candles (and a paper broker would trade
            # each as a market of its own).
            raise DataError(repeated)
        return resolved

    def _timeframe(self, timeframe_s: int) -> str:
        client = self.client
        if not client.has.get("fetchOHLCV"):
            raise DataError(
                f"spec.data.params.exchange: {self.params.exchange} has no candles in ccxt"
            )
        names = list(client.timeframes or {})
        for name in names:
            if client.parse_timeframe(name) == timeframe_s:
                return str(name)
        raise DataError(
            f"spec.market.timeframe: {self.params.exchange} has no "
            f"{format_timeframe(timeframe_s)} candles (it has {', '.join(names)})"
        )

    # -- time -------------------------------------------------------------------------------
    def _monotonic(self) -> float:
        """Seconds for intervals and deadlines: the clock's ``monotonic`` (a host clock
        stepped back by NTP or a VM restore must not stretch a wait), else its ``time``."""
        clock: Any = self.clock
        read = getattr(clock, "monotonic", None)
        return float(read() if read is not None else clock.time())

    @property
    def _has_time(self) -> bool:
        """Whether the venue tells its time (ccxt's ``has['fetchTime']``)."""
        return bool(self.client.has.get("fetchTime"))

    def _venue_now(self) -> float:
        """The venue's time in epoch seconds, never ahead of it (the clock is resynchronised
        every ``RESYNC_S`` from ``fetch_time`` where the venue has it)."""
        due = self._synced_at is None or self._monotonic() - self._synced_at >= RESYNC_S
        if self._has_time and due:
            server_ms = self._call("fetch_time", self.client.fetch_time)
            after = self._monotonic()
            if isinstance(server_ms, int | float):
                # The server read its clock before ``after``: taking its reading as if made at
                # ``after`` errs late, so a candle is never counted closed too early.
                self._offset_s = server_ms / 1000 - after
                self._synced_at = after
        return self._venue_clock()

    def _venue_clock(self) -> float:
        """The venue's time by the last sync, without a request: carried forward on the
        monotonic clock, so a step of the host's clock does not move it; the host's clock
        where the venue has no time (or has not answered with one)."""
        if self._synced_at is None:
            return self.clock.time()
        return self._monotonic() + self._offset_s

    def _wait(self, seconds: float) -> None:
        """Wait ``seconds`` on the engine thread, in slices of at most ``WAIT_SLICE_S``.

        Every wait of the feed comes through here, and calls the runtime's idle hook
        (``FeedRequest.idle``) once per slice: control commands and venue events are served
        while the feed waits.
        """
        deadline = self._monotonic() + seconds
        while True:
            if self._idle is not None:
                self._idle()
            self._check_stop()
            left = deadline - self._monotonic()
            # A clock kept in float seconds leaves crumbs of a microsecond after the last
            # slice: not worth another wait.
            if left <= 1e-3:
                return
            self.clock.sleep(min(WAIT_SLICE_S, left))

    def _check_stop(self) -> None:
        """Raise :class:`_Stopped` once the bot is asked to stop (ends the stream)."""
        if self._should_stop is not None and self._should_stop():
            raise _Stopped

    # -- requests ---------------------------------------------------------------------------
    def _call(
        self, what: str, method: Callable[..., Any], *args: Any, symbol: str | None = None
    ) -> Any:
        """``method(*args)``, retried on passing failures; other failures named and raised."""
        ccxt = self._ccxt
        p = self.params
        attempt = 0
        while True:
            self._check_stop()
            try:
                return method(*args)
            except ccxt.AuthenticationError as error:
                raise DataError(
                    f"spec.data.params.exchange: {p.exchange} refused {what} as unauthorised "
                    f"({type(error).__name__}: {_short(error)}); the ccxt feed reads public "
                    "candles: check exchange, sandbox and api_url"
                ) from None
            except ccxt.BadSymbol as error:
                where = "spec.market.symbols"
                if symbol is not None and symbol in p.symbols:
                    where = f"spec.data.params.symbols.{symbol}"
                raise DataError(
                    f"{where}: {p.exchange} does not know {symbol or 'a symbol'!r} "
                    f"({type(error).__name__}: {_short(error)})"
                ) from None
            except ccxt.OperationFailed as error:
                if p.max_retries is not None and attempt >= p.max_retries:
                    raise DataError(
                        f"{p.exchange}: {what} still failing after {attempt + 1} attempt(s) "
                        f"({type(error).__name__}: {_short(error)}; "
                        "spec.data.params.max_retries)"
                    ) from None
                asked = self._asked_wait(error)
                delay = retry_delay(self._backoff(attempt), asked)
                attempt += 1
                self.retries += 1
                log.warning(
                    "%s: %s failed (%s), retry %d in %.2fs",
                    p.exchange,
                    what,
                    type(error).__name__,
                    attempt,
                    delay,
                )
                if asked is not None and asked >= delay:
                    log.warning(
                        "%s: the venue asked for %.0fs without requests (Retry-After%s): "
                        "waiting until %s",
                        p.exchange,
                        asked,
                        "" if asked <= RETRY_AFTER_MAX_S else f", cut to {RETRY_AFTER_MAX_S:.0f}s",
                        _utc(self._venue_clock() + delay),
                    )
                self._wait(delay)
            except ccxt.BaseError as error:
                raise DataError(
                    f"{p.exchange}: {what} failed ({type(error).__name__}: {_short(error)})"
                ) from None

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter (half fixed, half random), up to ``backoff_max_s``."""
        p = self.params
        ceiling = min(p.backoff_max_s, p.backoff_s * 2.0**attempt)
        return ceiling / 2 + self.rng.random() * ceiling / 2

    def _asked_wait(self, error: Exception) -> float | None:
        """Seconds the venue asked for before the next request, when ``error`` is a rate
        limit or ban (ccxt's ``DDoSProtection``/``RateLimitExceeded``) that said."""
        if not isinstance(error, (self._ccxt.DDoSProtection, self._ccxt.RateLimitExceeded)):
            return None
        headers = getattr(self.client, "last_response_headers", None) or {}
        return _retry_after(headers, self._venue_clock())


def retry_delay(backoff: float, asked: float | None) -> float:
    """The wait before a retry (pure): the backoff, or the venue's Retry-After when longer,
    in full up to ``RETRY_AFTER_MAX_S``. ``backoff_max_s`` bounds only the backoff: a
    request before the venue's time is up (Binance's 418) lengthens its ban."""
    if asked is None:
        return backoff
    return max(backoff, min(asked, RETRY_AFTER_MAX_S))


def _import_ccxt() -> Any:
    try:
        import ccxt
    except ImportError:  # pragma: no cover - ccxt is in the dev and ccxt extras
        raise DataError(
            "spec.data.name: the ccxt feed needs the ccxt library: pip install 'tradefleet[ccxt]'"
        ) from None
    return ccxt


def point_at(client: Any, api_url: str) -> None:
    """Send every API URL of ``client`` to ``api_url``, keeping each one's path (the ccxt
    feed's ``api_url``, and ``tradefleet funding-history --api-url``)."""
    hostname = getattr(client, "hostname", None) or ""

    def rewrite(value: Any) -> Any:
        if isinstance(value, str):
            return api_url + urlsplit(value.replace("{hostname}", hostname)).path
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        return value

    client.urls["api"] = rewrite(client.urls["api"])


def _is_type(market: Mapping[str, Any], market_type: MarketType) -> bool:
    if market_type is MarketType.SPOT:
        return bool(market.get("spot"))
    return bool(market.get(market_type.value)) and not market.get("spot")


def _retry_after(headers: Mapping[str, Any], venue_now: float) -> float | None:
    """Seconds the venue asked us to wait: ``Retry-After`` (Binance's 429/418), or the
    reset time of Bybit's ``X-Bapi-Limit-Reset-Timestamp`` (epoch ms)."""
    lowered = {str(k).lower(): v for k, v in headers.items()}
    try:
        if "retry-after" in lowered:
            return max(0.0, float(lowered["retry-after"]))
        if "x-bapi-limit-reset-timestamp" in lowered:
            return max(0.0, float(lowered["x-bapi-limit-reset-timestamp"]) / 1000 - venue_now)
    except (TypeError, ValueError):
        return None
    return None


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(error: Exception) -> str:
    text = str(error)
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "..."


__all__ = [
    "RETRY_AFTER_MAX_S",
    "WAIT_SLICE_S",
    "CcxtFeed",
    "FeedClock",
    "SystemClock",
    "iso",
    "point_at",
    "retry_delay",
]
