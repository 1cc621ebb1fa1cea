"""What a ccxt error means for the bot: a ``ReasonCode``, and whether (and when) to try again.

Pure functions over what an exception carries — its class names (ccxt's hierarchy, so no ccxt
import here), its message (where ccxt puts the venue's JSON body), the HTTP status and the
response headers — so each rule is testable without a venue.

Retry rules (the issue's): network errors, timeouts, 5xx, ``ExchangeNotAvailable``, rate limits
(429/418 with ``Retry-After``) and a skewed clock are retried with exponential backoff and
jitter; ``InvalidOrder``, ``InsufficientFunds``, ``AuthenticationError`` and every other venue
refusal never are. A request that may have reached the venue (timeout, dropped connection,
5xx) is *in doubt*: an order is looked up by its client order id before it is sent again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from tradefleet_runtime.sdk import ReasonCode


class Retry(StrEnum):
    NEVER = "never"  # the venue refused: final
    SAFE = "safe"  # the venue did not act on it (rate limit, clock): send again after the wait
    IN_DOUBT = "in_doubt"  # it may have acted (timeout, dropped, 5xx): look before sending again
    RESYNC_CLOCK = "resync_clock"  # timestamp outside recvWindow: resync, then send again


@dataclass(frozen=True, slots=True)
class Failure:
    """One classified error. ``message`` is the venue's words (never a credential)."""

    code: ReasonCode
    retry: Retry
    message: str
    venue_code: int | None = None
    wait_s: float | None = None  # the venue's Retry-After (or ban end), seconds from now

    @property
    def duplicate(self) -> bool:
        return self.code is ReasonCode.DUPLICATE_CLIENT_ID


# Binance (spot and USDⓈ-M) error codes: developers.binance.com …/errors and …/error-code.
BINANCE_CODES: dict[int, ReasonCode] = {
    -1003: ReasonCode.RATE_LIMITED,
    -1001: ReasonCode.VENUE_UNAVAILABLE,
    -1008: ReasonCode.VENUE_UNAVAILABLE,  # server busy
    -1021: ReasonCode.VENUE_REJECTED,  # timestamp outside recvWindow (clock resync)
    -1022: ReasonCode.AUTHENTICATION,
    -2014: ReasonCode.AUTHENTICATION,
    -2015: ReasonCode.AUTHENTICATION,
    -1111: ReasonCode.INVALID_QUANTITY,  # precision over the maximum for the asset
    -1013: ReasonCode.VENUE_REJECTED,  # filter failure: refined from the filter's name below
    -2010: ReasonCode.VENUE_REJECTED,  # new order rejected: refined from the message below
    -2011: ReasonCode.UNKNOWN_ORDER,
    -2013: ReasonCode.UNKNOWN_ORDER,
    -2018: ReasonCode.INSUFFICIENT_FUNDS,
    -2019: ReasonCode.INSUFFICIENT_FUNDS,
    -2021: ReasonCode.INVALID_PRICE,  # would immediately trigger
    -2022: ReasonCode.REDUCE_ONLY,
    -4003: ReasonCode.INVALID_QUANTITY,
    -4004: ReasonCode.BELOW_MIN_QUANTITY,
    -4005: ReasonCode.INVALID_QUANTITY,
    -4013: ReasonCode.INVALID_PRICE,
    -4014: ReasonCode.INVALID_PRICE,
    -4016: ReasonCode.INVALID_PRICE,
    -4023: ReasonCode.INVALID_QUANTITY,
    -4116: ReasonCode.DUPLICATE_CLIENT_ID,
    -4164: ReasonCode.BELOW_MIN_NOTIONAL,
    -5021: ReasonCode.EXPIRED,  # FOK could not fill
    -5022: ReasonCode.VENUE_REJECTED,  # post-only would take
    -20132: ReasonCode.DUPLICATE_CLIENT_ID,  # client algo id (conditional orders)
}

# Bybit v5 retCodes: bybit-exchange.github.io/docs/v5/error.
BYBIT_CODES: dict[int, ReasonCode] = {
    10002: ReasonCode.VENUE_REJECTED,  # timestamp outside recvWindow (clock resync)
    10003: ReasonCode.AUTHENTICATION,
    10004: ReasonCode.AUTHENTICATION,
    10005: ReasonCode.AUTHENTICATION,  # permission denied
    10006: ReasonCode.RATE_LIMITED,
    10016: ReasonCode.VENUE_UNAVAILABLE,
    110001: ReasonCode.UNKNOWN_ORDER,
    110003: ReasonCode.INVALID_PRICE,
    110004: ReasonCode.INSUFFICIENT_FUNDS,
    110007: ReasonCode.INSUFFICIENT_FUNDS,
    110012: ReasonCode.INSUFFICIENT_FUNDS,
    110017: ReasonCode.REDUCE_ONLY,
    110072: ReasonCode.DUPLICATE_CLIENT_ID,
    110092: ReasonCode.INVALID_PRICE,
    110093: ReasonCode.INVALID_PRICE,
    110094: ReasonCode.BELOW_MIN_NOTIONAL,
}

_CLOCK_CODES = frozenset({-1021, 10002})
# States of the venue that pass within seconds, each looked up and asked again at once (never
# taken for a refusal that lasts): a server busy or disconnected; Binance USDⓈ-M's -5028, its
# matching engine reaching the request after its recvWindow (late under load, ccxt's
# ``InvalidOrder``: not the bot's clock, which is -1021); Bybit's 110079, an order "processing
# and can not be operated, please try again later".
_SERVER_BUSY_CODES = frozenset({-1001, -1008, -5028, 10016, 110079})

_BINANCE_FILTERS: tuple[tuple[str, ReasonCode], ...] = (
    ("NOTIONAL", ReasonCode.BELOW_MIN_NOTIONAL),  # NOTIONAL and MIN_NOTIONAL
    ("LOT_SIZE", ReasonCode.INVALID_QUANTITY),
    ("MARKET_LOT_SIZE", ReasonCode.INVALID_QUANTITY),
    ("PRICE_FILTER", ReasonCode.INVALID_PRICE),
    ("PERCENT_PRICE", ReasonCode.INVALID_PRICE),
)

_CODE = re.compile(r'"(?:code|retCode)"\s*:\s*"?(-?\d+)')
_MSG = re.compile(r'"(?:msg|retMsg)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_BANNED_UNTIL = re.compile(r"banned until (\d{12,14})")


def venue_code(message: str) -> int | None:
    """The venue's numeric error code inside a ccxt message (its JSON body), if any."""
    match = _CODE.search(message)
    return int(match.group(1)) if match else None


def venue_words(message: str) -> str:
    """The venue's own message (``msg``/``retMsg``), else ccxt's text, trimmed."""
    match = _MSG.search(message)
    return (match.group(1) if match else message).strip()[:300]


def retry_after_s(headers: Mapping[str, str] | None, message: str, now_ms: int) -> float | None:
    """How long the venue asked us to wait: ``Retry-After`` (seconds, 429/418), Bybit's
    ``X-Bapi-Limit-Reset-Timestamp`` (ms) on a limit hit, or Binance's "banned until" (ms)."""
    found: list[float] = []
    for name, value in (headers or {}).items():
        lower = name.lower()
        try:
            if lower == "retry-after":
                found.append(float(value))
            elif lower == "x-bapi-limit-reset-timestamp":
                found.append((int(value) - now_ms) / 1000.0)
        except ValueError:
            continue
    banned = _BANNED_UNTIL.search(message)
    if banned:
        found.append((int(banned.group(1)) - now_ms) / 1000.0)
    return max(max(found), 0.0) if found else None


def _refine(code: int, words: str, base: ReasonCode) -> ReasonCode:
    lower = words.lower()
    if code == -2010:
        if "duplicate" in lower:
            return ReasonCode.DUPLICATE_CLIENT_ID
        if "insufficient balance" in lower:
            return ReasonCode.INSUFFICIENT_FUNDS
        if "trigger immediately" in lower:
            return ReasonCode.INVALID_PRICE
        if "market is closed" in lower:
            return ReasonCode.MARKET_CLOSED
    if code == -1013:
        for name, reason in _BINANCE_FILTERS:
            if name in words:
                return reason
    return base


def classify(
    class_names: Sequence[str],
    message: str,
    http_status: int | None = None,
    headers: Mapping[str, str] | None = None,
    now_ms: int = 0,
) -> Failure:
    """Classify one error. ``class_names`` is the exception's class and its bases' names
    (``[c.__name__ for c in type(exc).__mro__]``)."""
    names = frozenset(class_names)
    code = venue_code(message)
    words = venue_words(message)
    wait = retry_after_s(headers, message, now_ms)
    if (code is not None and code in _CLOCK_CODES) or "InvalidNonce" in names:
        return Failure(ReasonCode.VENUE_REJECTED, Retry.RESYNC_CLOCK, words, code)
    known = BINANCE_CODES.get(code) if code is not None and code < 0 else None
    if known is None and code is not None and code > 0:
        known = BYBIT_CODES.get(code)
    if known is ReasonCode.AUTHENTICATION and http_status not in (418, 429):
        # ccxt raises Binance's -2015 as DDoSProtection once a key has worked (a temporary
        # ban looks the same); the venue's code says the key or its permissions were refused,
        # and retrying a refused key only digs the hole deeper.
        return Failure(ReasonCode.AUTHENTICATION, Retry.NEVER, words, code)
    rate_limited = (
        http_status in (418, 429)
        or code in (-1003, 10006)
        or bool(names & {"DDoSProtection", "RateLimitExceeded"})
    )
    if rate_limited:
        return Failure(ReasonCode.RATE_LIMITED, Retry.SAFE, words, code, wait)
    if code is not None and code in _SERVER_BUSY_CODES:
        return Failure(ReasonCode.VENUE_UNAVAILABLE, Retry.IN_DOUBT, words, code, wait)
    if known is not None:
        return Failure(_refine(code or 0, words, known), Retry.NEVER, words, code)
    if names & {"RequestTimeout", "NetworkError", "ExchangeNotAvailable", "BadResponse"} or (
        http_status is not None and http_status >= 500
    ):
        # It may have reached the venue: an order is looked up before it is sent again.
        return Failure(ReasonCode.VENUE_UNAVAILABLE, Retry.IN_DOUBT, words, code, wait)
    if "AuthenticationError" in names:
        return Failure(ReasonCode.AUTHENTICATION, Retry.NEVER, words, code)
    if "InsufficientFunds" in names:
        return Failure(ReasonCode.INSUFFICIENT_FUNDS, Retry.NEVER, words, code)
    if "DuplicateOrderId" in names:
        return Failure(ReasonCode.DUPLICATE_CLIENT_ID, Retry.NEVER, words, code)
    if "OrderNotFound" in names:
        return Failure(ReasonCode.UNKNOWN_ORDER, Retry.NEVER, words, code)
    if "OnMaintenance" in names:
        return Failure(ReasonCode.VENUE_UNAVAILABLE, Retry.IN_DOUBT, words, code, wait)
    return Failure(ReasonCode.VENUE_REJECTED, Retry.NEVER, words, code)


def backoff_s(attempt: int, base_s: float, max_s: float, jitter: float) -> float:
    """Exponential backoff with jitter: ``base × 2^attempt``, capped, scaled into
    [½, 1] by ``jitter`` ∈ [0, 1) so that many clients retrying at once spread out."""
    ceiling = min(max_s, base_s * (2.0 ** min(attempt, 30)))
    return ceiling * (0.5 + 0.5 * min(max(jitter, 0.0), 1.0))


def wait_s(failure: Failure, attempt: int, base_s: float, max_s: float, jitter: float) -> float:
    """How long to wait before the next try: never less than what the venue asked for
    (a request during a ban extends it), otherwise the backoff."""
    backoff = backoff_s(attempt, base_s, max_s, jitter)
    if failure.wait_s is not None:
        # A little over the venue's own figure: its clock and ours differ by a few ms.
        return failure.wait_s + 0.05 + 0.1 * jitter
    return backoff


__all__ = [
    "BINANCE_CODES",
    "BYBIT_CODES",
    "Failure",
    "Retry",
    "backoff_s",
    "classify",
    "retry_after_s",
    "venue_code",
    "venue_words",
    "wait_s",
]
