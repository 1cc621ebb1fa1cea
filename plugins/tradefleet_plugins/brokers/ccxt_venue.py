"""The I/O shell of the ccxt broker: ccxt's async client on its own event-loop thread.

Every network call of the broker runs here, never on the engine thread. Requests wait behind
one gate while the venue has asked us to (a 429's or a 418 ban's ``Retry-After``): sending
anything during a ban extends it. Reads are retried with backoff (``ccxt_errors``); order
creation is retried by the broker itself, which must look an order up before sending it again.

ccxt is imported only when a broker is connected, so ``tradefleet plugins list`` never loads it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import re
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tradefleet_plugins.brokers.ccxt_credentials import (
    CredentialFiles,
    Credentials,
    CredentialsError,
)
from tradefleet_plugins.brokers.ccxt_errors import Failure, Retry, classify, wait_s
from tradefleet_plugins.brokers.ccxt_nonce import COUNTER_NONCE, one_signer_at_a_time
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams, MarketType
from tradefleet_runtime.sdk import ReasonCode

T = TypeVar("T")

log = logging.getLogger("tradefleet.brokers.ccxt")

# ccxt logs every request's headers (the API key among them) at DEBUG on its own logger; the
# exchange gets this one instead, which never emits.
_SILENT = logging.getLogger("tradefleet.brokers.ccxt.wire")
_SILENT.propagate = False
_SILENT.disabled = True

_ORDER_ENTRY = frozenset(
    {
        "create_order",
        "cancel_order",
        "edit_order",
        "cancel_all_orders",
        # Binance spot's OCO order lists (a bracket's two children as one), by ccxt's raw calls.
        "private_post_orderlist_oco",
        "private_delete_orderlist",
    }
)
# The venues that rate-limit their public endpoints apart from the private ones, with the
# spacing (ms a call) their public side allows. Kraken limits public calls per IP ("1 a second
# or less remains within the limits", its support article 206548367) and private calls by the
# key's call counter, which ccxt models by spacing an order list 3 s and own trades 6 s: a
# ticker behind them there waited past its use (``market_price`` found none fresh at 100 of
# 120 moments). Its tickers go through a client of their own, so the quote is never queued
# behind a poll, and at this spacing whatever ``rate_limit_ms`` says of the private tier: the
# public limit is the IP's. Elsewhere public and private calls share one count (Binance's
# weight per IP), so a ticker shares the reader's limiter, where it waits a fraction of a second.
_PUBLIC_APART_MS = {"kraken": 1000}
# The reads sent through that public client: unsigned, and what keeps a quote fresh.
_PUBLIC_READS = frozenset({"fetch_ticker", "fetch_tickers"})
# How long every request waits after a rate-limit refusal that names no wait (Kraken's
# "EAPI:Rate limit exceeded" has no Retry-After): its call counter falls only while nothing is
# sent, by a third of a call a second at the slowest tier.
_UNTIMED_LIMIT_HOLD_S = 3.0
# A nonce refusal is said at most this often (seconds): a second process on the key would
# otherwise fill the log.
_NONCE_WARNING_EVERY_S = 600.0
_SIGNATURE = re.compile(r"(signature|sign)=[0-9A-Fa-f]+")


class VenueFailure(Exception):
    """A request the venue refused or that could not be completed (after its retries)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(f"{failure.code.value}: {failure.message}")
        self.failure = failure


class VenueLoop:
    """An asyncio event loop on a daemon thread of its own."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coro`` on the loop and return at once."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (never from the loop itself)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


# What ccxt's Bybit client asks the venue before its first order (two calls: is the account
# unified?) and keeps in its options. Asked once at start, by the reader, and handed to the
# order client: otherwise each of the first orders sent at once asks again.
_ACCOUNT_KIND = ("enableUnifiedMargin", "enableUnifiedAccount", "unifiedMarginStatus")


def _linear_options(exchange: str) -> dict[str, Any]:
    if exchange == "bybit":
        return {"defaultType": "swap", "defaultSubType": "linear"}
    return {"defaultType": "swap"}


class CcxtVenue:
    """One ccxt client: built, pointed, authenticated, rate-limited and retried."""

    def __init__(self, params: CcxtBrokerParams, credentials: CredentialFiles | None) -> None:
        self.params = params
        self.credentials = credentials
        self.exchange: Any = None  # reads
        self.trader: Any = None  # order entry
        self.quoter: Any = None  # public reads, where the venue counts them apart
        self.connected = False
        # False while the credential files cannot be read (``refresh_credentials``): the
        # broker cannot sign a request, whatever the venue would answer.
        self.credentials_ok = True
        self._gate_until = 0.0  # loop time before which no request may leave
        self._nonce_warned_until = 0.0  # monotonic
        self._random = random.Random()

    # -- building --------------------------------------------------------------------------

    def build(self) -> Any:
        try:
            import ccxt.async_support as ccxt_async
        except ImportError:
            raise ImportError(
                "exchange: the ccxt broker needs the ccxt library — install tradefleet[ccxt] "
                "(the runtime image: build it with --build-arg EXTRAS=ccxt)"
            ) from None

        params = self.params
        klass = getattr(ccxt_async, params.exchange, None)
        if klass is None:
            raise ValueError(f"exchange: ccxt has no exchange {params.exchange!r}")
        linear = params.market_type is MarketType.LINEAR
        options: dict[str, Any] = {
            "fetchMarkets": {"types": ["linear"] if linear else ["spot"]},
            "warnOnFetchOpenOrdersWithoutSymbol": False,
            "fetchCurrencies": False,
            "fetchMargins": False,
        }
        options.update(_linear_options(params.exchange) if linear else {"defaultType": "spot"})
        options.update(params.options)
        config: dict[str, Any] = {
            "enableRateLimit": True,
            "timeout": params.timeout_ms,
            "options": options,
            "has": {"fetchCurrencies": False},
            "logger": _SILENT,
            "timeout_on_exit": 0,
        }
        if params.rate_limit_ms is not None:
            config["rateLimit"] = params.rate_limit_ms
        # Two clients, each with ccxt's rate limiter: one enters orders (create, cancel,
        # amend), one reads (polls, reports). An order never queues behind a poll's request
        # weight; together they stay far below the venues' limits (ccxt's spacing is
        # conservative: Binance 20 weight units a second of its 100).
        self.exchange = self._client(klass, config)
        self.trader = self._client(klass, config)
        public_ms = _PUBLIC_APART_MS.get(params.exchange)
        if public_ms is not None:
            # A third client with its own limiter and no key: it signs nothing, so it takes
            # no nonce and never waits for a signed request's turn (``ccxt_nonce``). It stays
            # behind the one ban gate: a venue that asked us to wait is sent nothing.
            spacing = max(public_ms, params.rate_limit_ms or 0)
            self.quoter = self._client(klass, dict(config, rateLimit=spacing), signed=False)
        if params.exchange in COUNTER_NONCE:
            one_signer_at_a_time(self.exchange, self.trader)
        return self.exchange

    def _client(self, klass: Any, config: dict[str, Any], signed: bool = True) -> Any:
        exchange = klass(dict(config, options=dict(config["options"])))
        if self.params.sandbox:
            exchange.set_sandbox_mode(True)
        if self.params.api_url:
            self._point_at(exchange, self.params.api_url.rstrip("/"))
        self._record_status(exchange)
        self._gate_sends(exchange)
        if signed and self.credentials is not None:
            self._apply(exchange, self.credentials.current)
        return exchange

    @property
    def public_apart(self) -> bool:
        """Whether public reads have a client (and a pace) of their own (``_PUBLIC_APART_MS``)."""
        return self.quoter is not None

    def _client_for(self, method: str) -> Any:
        """The client that sends ``method``: orders through the order client, the public
        reads a venue counts apart through the public one, the rest through the reader."""
        if method in _ORDER_ENTRY:
            return self.trader
        if method in _PUBLIC_READS and self.quoter is not None:
            return self.quoter
        return self.exchange

    def share_markets(self) -> None:
        """After ``load_markets`` on the reader: the order client uses the same markets, and
        what the reader learnt of the account (``_ACCOUNT_KIND``); the public client the
        markets."""
        self.trader.set_markets(self.exchange.markets, self.exchange.currencies)
        if self.quoter is not None:
            self.quoter.set_markets(self.exchange.markets, self.exchange.currencies)
        for key in _ACCOUNT_KIND:
            if key in self.exchange.options:
                self.trader.options[key] = self.exchange.options[key]

    @staticmethod
    def _point_at(exchange: Any, base: str) -> None:
        """Send every API path to ``base``; read errors as the real host's (ccxt picks a
        venue's error map by the URL's host, e.g. Binance spot vs USDⓈ-M)."""
        originals: dict[str, str] = {}
        api = exchange.urls["api"]
        for name, value in list(api.items()):
            if isinstance(value, str):
                real = value.replace("{hostname}", exchange.hostname or "")
                path = urlsplit(real).path
                api[name] = base + path
                originals[base + path] = real
        lookup = getattr(exchange, "get_exceptions_by_url", None)
        if lookup is None:
            return  # this venue's error map does not depend on the host
        prefixes = sorted(originals, key=len, reverse=True)

        def get_exceptions_by_url(url: str | None, exact_or_broad: str) -> Any:
            if url is not None:
                for prefix in prefixes:
                    if url.startswith(prefix):
                        url = originals[prefix] + url[len(prefix) :]
                        break
            return lookup(url, exact_or_broad)

        exchange.get_exceptions_by_url = get_exceptions_by_url

    @staticmethod
    def _record_status(exchange: Any) -> None:
        """Attach the HTTP status and headers to ccxt's exceptions (Retry-After lives there)."""
        handle_errors = exchange.handle_errors
        handle_status = exchange.handle_http_status_code

        def errors(code: Any, reason: Any, url: Any, method: Any, headers: Any, *rest: Any) -> Any:
            try:
                return handle_errors(code, reason, url, method, headers, *rest)
            except Exception as error:
                error.tf_status = code  # type: ignore[attr-defined]
                error.tf_headers = headers  # type: ignore[attr-defined]
                raise

        def status(code: Any, *rest: Any) -> Any:
            try:
                return handle_status(code, *rest)
            except Exception as error:
                error.tf_status = code  # type: ignore[attr-defined]
                raise

        exchange.handle_errors = errors
        exchange.handle_http_status_code = status

    def _gate_sends(self, exchange: Any) -> None:
        """Check the ban gate again at the moment a request leaves: ccxt's own rate limiter
        may have held it back, past the start of a ban another request ran into."""
        fetch = exchange.fetch

        async def gated(
            url: Any, method: str = "GET", headers: Any = None, body: Any = None
        ) -> Any:
            await self._gate()
            return await fetch(url, method, headers, body)

        exchange.fetch = gated

    @staticmethod
    def _apply(exchange: Any, credentials: Credentials) -> None:
        for name, value in credentials.values.items():
            setattr(exchange, name, value)

    # -- requests ---------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        text = _SIGNATURE.sub(r"\1=***", text)
        return self.credentials.redact(text) if self.credentials is not None else text

    def classify(self, error: BaseException) -> Failure:
        names = [klass.__name__ for klass in type(error).__mro__]
        status = getattr(error, "tf_status", None)
        headers = getattr(error, "tf_headers", None)
        message = self.redact(str(error) or type(error).__name__)
        return classify(
            names,
            message,
            status if isinstance(status, int) else None,
            headers if isinstance(headers, dict) else None,
            int(time.time() * 1000),
        )

    async def _gate(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            delay = self._gate_until - loop.time()
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    def _hold(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._gate_until = max(self._gate_until, loop.time() + seconds)

    async def once(self, method: str, *args: Any) -> Any:
        """One request (after any ban): the result, or ``VenueFailure`` classified."""
        await self._gate()
        self.refresh_credentials()
        try:
            result = await getattr(self._client_for(method), method)(*args)
        except Exception as error:
            failure = self.classify(error)
            # The venue answered (a refusal) or did not (network, 5xx, rate limit).
            self.connected = failure.retry is Retry.NEVER
            if failure.retry is Retry.RESYNC_CLOCK and self.params.exchange in COUNTER_NONCE:
                self._nonce_refused()
            if failure.wait_s is not None:
                self._hold(min(failure.wait_s, self.params.max_ban_wait_s) + 0.05)
            elif failure.code is ReasonCode.RATE_LIMITED:
                self._hold(_UNTIMED_LIMIT_HOLD_S)
            raise VenueFailure(failure) from None
        self.connected = True
        return result

    def refresh_credentials(self) -> None:
        """Re-read the credential files when they changed (before every request, and at each
        poll cycle: ``credentials_ok`` then follows the files even while no request leaves).

        Files that cannot be read now (a Secret update that left one missing or broken) fail
        the request as a refusal naming the file, before anything is signed or sent: nothing
        reached the venue, so an order is rejected, not in doubt, and sending it again before
        the files are fixed would fail alike. The next readable version is applied to both
        clients."""
        if self.credentials is None:
            return
        try:
            fresh = self.credentials.refresh()
        except CredentialsError as error:
            self.credentials_ok = False
            raise VenueFailure(
                Failure(ReasonCode.AUTHENTICATION, Retry.NEVER, str(error))
            ) from None
        self.credentials_ok = True
        if fresh is not None:
            self._apply(self.exchange, fresh)
            self._apply(self.trader, fresh)
            log.info("ccxt broker: credentials re-read after the files changed")

    def _nonce_refused(self) -> None:
        """This process signs one request at a time (``ccxt_nonce``), so a nonce refusal almost
        always means another process signs with the same key: say so, once in a while."""
        now = time.monotonic()
        if now < self._nonce_warned_until:
            return
        self._nonce_warned_until = now + _NONCE_WARNING_EVERY_S
        log.warning(
            "ccxt broker: %s refused a request for its nonce; another process (a second bot?) "
            "may be signing with the same API key — give each bot its own key, or a nonce "
            "window to the key",
            self.params.exchange,
        )

    def delay(self, failure: Failure, attempt: int) -> float:
        return wait_s(
            failure,
            attempt,
            self.params.backoff_base_s,
            self.params.backoff_max_s,
            self._random.random(),
        )

    async def recover(self, failure: Failure, attempt: int) -> bool:
        """Wait before the next try (resyncing the clock if that was the problem); False when
        the failure is final or the retries are used up."""
        if failure.retry is Retry.NEVER or attempt >= self.params.max_retries:
            return False
        if failure.wait_s is not None and failure.wait_s > self.params.max_ban_wait_s:
            return False
        if failure.retry is Retry.RESYNC_CLOCK:
            try:
                await self.exchange.load_time_difference()
                self.trader.options["timeDifference"] = self.exchange.options.get(
                    "timeDifference", 0
                )
            except Exception as error:
                log.warning("ccxt broker: clock resync failed: %s", self.redact(str(error)))
        await asyncio.sleep(self.delay(failure, attempt))
        await self._gate()
        return True

    async def request(self, method: str, *args: Any) -> Any:
        """A read (or an idempotent call), retried until it succeeds or may not be retried."""
        attempt = 0
        while True:
            try:
                return await self.once(method, *args)
            except VenueFailure as error:
                if not await self.recover(error.failure, attempt):
                    raise
                attempt += 1

    async def close(self) -> None:
        for client in (self.exchange, self.trader, self.quoter):
            if client is None:
                continue
            try:
                await client.close()
            except Exception as error:  # closing must not fail a shutdown
                log.warning("ccxt broker: close failed: %s", self.redact(str(error)))


__all__ = ["CcxtVenue", "VenueFailure", "VenueLoop"]
