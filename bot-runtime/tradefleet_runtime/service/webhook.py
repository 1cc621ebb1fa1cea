"""The signed signal webhook: ``POST /webhook/signal``.

Alert senders push trade signals to a running bot through this endpoint (how to send one, for a
trader: ``docs/signals.md``). A sender must compute an HMAC and set headers: TradingView alerts
cannot, they need a relay that signs them. The endpoint is internet-facing and moves money, so
it refuses everything doubtful, says why in a small JSON body, and no input makes it answer
with a 5xx.

Signing a request
-----------------

Every request carries an HMAC-SHA256 signature made with one of the bot's keys. The keys live in
a directory (in a cluster: a mounted Kubernetes Secret): each file holds one key, and the file's
name is the key id. Surrounding whitespace (a trailing newline) is stripped from the key. Key
ids are 1..128 of ``[A-Za-z0-9_.-]``, not starting with ``.`` or ``-``; other names (a Secret
volume's ``..data``), subdirectories, empty files and files over 4 KiB are ignored, and a key
shorter than 32 bytes is not used (a warning names its file).
Files are re-read when they change (checked on each request, and re-read at least every second),
so a rotated or revoked key takes effect without a restart.

Headers:

``X-Tradefleet-Key-Id``
    the key's id (the file name); ``default`` when absent.
``X-Tradefleet-Timestamp``
    the current time in unix seconds (decimal digits only). It must be within
    ``replay_window_s`` (default 300 s) of the bot's clock, either way.
``X-Tradefleet-Signature``
    ``sha256=`` followed by the lowercase hex HMAC-SHA256, keyed with the key's bytes, of the
    timestamp header exactly as sent, a dot, and the raw request body::

        mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        headers["X-Tradefleet-Signature"] = f"sha256={mac}"

``X-Tradefleet-Nonce`` (optional)
    1 to 128 characters of ``[A-Za-z0-9_.:-]`` (else 400). It is not signed, so it never
    identifies a signal; it only guards a sender against itself: another signed request under a
    nonce the bot saw within the window (in this process) is refused ``409 replay``.

One signed request is one signal. Its id is ``key-<fingerprint>:sig-<hash of the signature>``
(the fingerprint a hash of the key's bytes, never the key): it comes only from what is signed
(the key, the timestamp, the body), never from an unsigned header — neither the nonce nor the
key id, so the same request is the same signal in any run, with or without a nonce, under any
key id that holds the same key. (A request an older release journaled under its id then,
``KEYID:sig-<hash>`` or, with a nonce, ``KEYID:NONCE``, is answered from that row when its
content matches; those ids only answer, nothing is journaled under them.) The bot journals the
id before it acts on the signal, and answers the id again with the first outcome (the 202 with
its order id, or its refusal), in this run or after a restart, as long as the timestamp is in
the window. So a captured request sent again trades nothing new, and a sender that got no
answer, or a 503, **retries by sending the same request again** — the same timestamp, body and
signature — within ``replay_window_s`` (300 s) of its timestamp. Re-signing with a fresh
timestamp makes a new signal, which trades again: do that only for a new alert. A request
refused before the bot saw it (401, 403, 410, 413, 429, 400, 422 ``unknown_symbol``) was not
acted on.

The body is the alert's JSON (UTF-8; ``NaN``/``Infinity``, numbers that overflow, number
literals over 64 characters, nesting deeper than 32, duplicate keys and unknown top-level fields
are refused; numbers must be JSON numbers, not strings or booleans; ``direction`` may be any
case; ``symbol`` must be one of the bot's symbols exactly)::

    {"symbol": "EURUSD", "timeframe": "M5", "pattern_type": "M5_BOS", "direction": "BUY",
     "price_levels": {"entry": 1.0850, "stop_loss": 1.0830, "take_profit": 1.0890,
                      "current_price": 1.0851},
     "volume": 0.01, "metadata": {"source": "tv", "confidence": 0.85}}

``volume`` is optional (the bot's sizer decides) and counts what the strategy reads it as
(``external-signal``: units of the base asset, or with ``volume_unit: lots`` MT5 lots, as
above), further price levels (``previous_high``, …) and
metadata fields are ignored, ``metadata.confidence`` is 0..1. Prices lie in 1e-12..1e12 and a
volume in 1e-9..1e9 (:mod:`~tradefleet_runtime.service.limits`). A BUY needs
``stop_loss < entry < take_profit``, a SELL ``take_profit < entry < stop_loss``. These field
checks are :func:`~tradefleet_runtime.service.api.validate_signal`, which gRPC ``SubmitSignal``
uses as well.

Checks, in order; the first that fails answers, and nothing is submitted unless all pass:

====================  ======  ====================================================
check                 status  outcome (the ``outcome`` label of the requests counter)
====================  ======  ====================================================
body size             413     ``too_large`` (``Content-Length``, then while reading)
source address        403     ``forbidden_source`` (``allow_from`` CIDRs; see below)
key id                401     ``unknown_key``
signature             401     ``bad_signature`` (missing/malformed headers too)
timestamp window      410     ``stale``
in progress           409     ``in_progress`` (with ``Retry-After``): the same request is
                              still being handled (its first copy waits for the bot); send
                              it again after ``Retry-After`` seconds to learn the outcome
nonce reused          409     ``replay``: another request came under this nonce within the
                              window (a malformed nonce header: 400 ``malformed``)
rate (per key)        429     ``rate_limited`` (with ``Retry-After``; also when the nonce
                              memory is full, rather than forget an entry)
JSON and fields       400     ``malformed`` (the reason names the field)
symbol                422     ``unknown_symbol``
the bot's answer      422     ``refused`` (the bot's reason: risk veto, stale price, …); the
                              same request again gets it again
the bot's state       409     ``refused``: the bot takes no signals now (still starting,
                              stopped) and did nothing; the request was fine (gRPC:
                              ``FAILED_PRECONDITION``). Send it again once the bot runs
bot failure           503     ``unavailable`` (with ``Retry-After``): the bot may still act
                              on it; send the same request again to learn the outcome
accepted              202     ``accepted``; the same request again gets the same answer
                              (the same ``client_order_id``) and places nothing
====================  ======  ====================================================

Refusals answer ``{"accepted": false, "reason": "...", "outcome": "..."}``; an accepted signal
answers ``{"accepted": true, "client_order_id": "...", "signal_id": "...", "outcome":
"accepted"}``. The body is never parsed before its signature is verified, the rate limit counts
only authenticated requests (retries too), and a nonce is remembered only once its request is
authenticated (so forged requests cannot fill the memory). The rate limit is a token bucket per
key id: ``rate_per_minute`` tokens refilled evenly, so a burst of up to ``rate_per_minute``
passes.

The source address is the TCP peer, or with ``trust_forwarded_for`` the first hop of the first
``X-Forwarded-For`` header (only behind a proxy that overwrites that header: anyone can send it).
An address that cannot be told or parsed is refused when ``allow_from`` is set.

503 is the one 5xx, and no input causes it: it means the bot itself failed (its ``submit`` raised
or did not answer within ``submit_timeout_s``). The bot may still act on the signal, or may have:
send the same request again (never re-signed) after ``Retry-After``: while the bot still works
on it the answer is ``409 in_progress``, then the signal's outcome. An unexpected error in this
module's own checks answers 400 ``malformed`` (and is logged), never a 5xx.

Keys never appear in logs, responses, metrics or exceptions; bodies are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import prometheus_client
from aiohttp import web

from tradefleet_runtime.service import limits
from tradefleet_runtime.service.api import (
    NoAnswer,
    NotNow,
    Signal,
    SignalBody,
    SignalConflict,
    SignalInvalid,
    SignalResult,
    validate_signal,
)

__all__ = [
    "KEY_ID_HEADER",
    "NONCE_HEADER",
    "OUTCOMES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WEBHOOK_PATH",
    "KeyStore",
    "NonceMemory",
    "RateLimiter",
    "Refusal",
    "SignalBody",
    "SourceFilter",
    "SubmitWithFormerIds",
    "WebhookConfig",
    "add_webhook_routes",
    "check_key_id",
    "check_nonce",
    "check_timestamp_window",
    "client_address",
    "compute_signature",
    "former_signal_ids",
    "key_fingerprint",
    "parse_signal_body",
    "parse_timestamp",
    "signal_id_for",
    "verify_signature",
]

log = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/webhook/signal"
KEY_ID_HEADER: Final = "X-Tradefleet-Key-Id"
TIMESTAMP_HEADER: Final = "X-Tradefleet-Timestamp"
SIGNATURE_HEADER: Final = "X-Tradefleet-Signature"
NONCE_HEADER: Final = "X-Tradefleet-Nonce"
DEFAULT_KEY_ID: Final = "default"

#: Every value the ``outcome`` label of the requests counter can take.
OUTCOMES: Final[tuple[str, ...]] = (
    "accepted",
    "bad_signature",
    "unknown_key",
    "stale",
    "replay",
    "forbidden_source",
    "malformed",
    "too_large",
    "unknown_symbol",
    "refused",
    "rate_limited",
    "unavailable",
    "in_progress",
)

_KEY_ID_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_NONCE_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,12}")
_SIGNATURE_RE: Final = re.compile(r"sha256=([0-9a-fA-F]{64})")
_MAX_KEY_FILE_BYTES: Final = 4096
# An HMAC key is a shared secret against guessing: a short one ("abc") could be brute-forced
# from a single signed request. Shorter keys are not used, and said so by file name.
MIN_KEY_BYTES: Final = 32
_MAX_REASON_CHARS: Final = 500
#: Hands a checked signal to the bot with the ids older releases journaled its request under.
SubmitWithFormerIds = Callable[[Signal, tuple[str, ...]], Awaitable[SignalResult]]
#: Seconds a sender is told to wait before asking again about a signal still being handled.
IN_PROGRESS_RETRY_S: Final = 2


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class WebhookConfig:
    """How the webhook checks requests. Invalid values raise ``ValueError`` at construction."""

    keys_dir: Path
    replay_window_s: int = 300
    rate_per_minute: int = 60
    allow_from: list[str] = field(default_factory=list)  # CIDRs; empty: any source
    trust_forwarded_for: bool = False  # use X-Forwarded-For's first hop (behind a proxy only)
    max_body_bytes: int = limits.MAX_BODY_BYTES
    submit_timeout_s: float = 10.0  # the bot must answer within this, else 503
    replay_memory_max: int = 100_000  # remembered nonces, over all keys

    def __post_init__(self) -> None:
        if self.replay_window_s <= 0:
            raise ValueError("replay_window_s must be positive")
        if self.rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if not self.submit_timeout_s > 0:
            raise ValueError("submit_timeout_s must be positive")
        if self.replay_memory_max <= 0:
            raise ValueError("replay_memory_max must be positive")
        SourceFilter(self.allow_from)  # raises ValueError naming a bad CIDR


# --------------------------------------------------------------------------- refusals


class Refusal(Exception):
    """A request is refused: the HTTP status, the counter outcome and a reason for the sender.

    The reason goes to the sender verbatim, so it never holds a key.
    """

    def __init__(
        self, status: int, outcome: str, reason: str, *, retry_after: int | None = None
    ) -> None:
        if outcome not in OUTCOMES:  # pragma: no cover - programming error
            raise ValueError(f"unknown outcome {outcome!r}")
        super().__init__(reason)
        self.status = status
        self.outcome = outcome
        self.reason = reason
        self.retry_after = retry_after


def _truncate(text: str, limit: int = _MAX_REASON_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- source address


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a peer or an X-Forwarded-For hop (``1.2.3.4``, ``1.2.3.4:80``,
    ``[::1]:80``, ``::1``); IPv4-mapped IPv6 becomes IPv4. ``None`` when it is not one."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    if "%" in text:  # an IPv6 zone id
        text = text.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(
    peer: str | None, forwarded_for: Sequence[str], *, trust_forwarded_for: bool
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's address: the first hop of the first ``X-Forwarded-For`` header when trusted
    and present, else the TCP peer. ``None`` when it cannot be told."""
    if trust_forwarded_for and forwarded_for:
        return _parse_ip(forwarded_for[0].split(",", 1)[0])
    if peer is None:
        return None
    return _parse_ip(peer)


class SourceFilter:
    """An allowlist of networks (CIDRs, or single addresses); empty allows every source."""

    def __init__(self, allow_from: Sequence[str]) -> None:
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for cidr in allow_from:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"allow_from: {cidr!r} is not a CIDR ({exc})") from None
        self.networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(networks)

    @property
    def allows_any(self) -> bool:
        return not self.networks

    def allows(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        if not self.networks:
            return True
        if address is None:
            return False
        return any(address.version == net.version and address in net for net in self.networks)


# --------------------------------------------------------------------------- keys


class KeyStore:
    """The HMAC keys in a directory, one per file, named by key id.

    ``get`` checks the directory (names, inodes, sizes, mtimes) on each call and re-reads the
    files when that changed, or when ``max_age_s`` passed since the last read (so an in-place
    rewrite within the filesystem's timestamp granularity is still seen). A Kubernetes Secret
    volume swaps a ``..data`` symlink on update; the ``KEYID -> ..data/KEYID`` links then point
    at new inodes, which the check sees.
    """

    def __init__(
        self,
        keys_dir: Path,
        *,
        max_age_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dir = keys_dir
        self._max_age_s = max_age_s
        self._monotonic = monotonic
        self._fingerprint: tuple[tuple[str, int, int, int, int], ...] | None = None
        self._loaded_at = -math.inf
        self._keys: dict[str, bytes] = {}
        self._warned: set[str] = set()

    def _scan(self) -> tuple[tuple[str, int, int, int, int], ...]:
        entries: list[tuple[str, int, int, int, int]] = []
        try:
            with os.scandir(self._dir) as it:
                for entry in it:
                    if not _KEY_ID_RE.fullmatch(entry.name):
                        continue
                    try:
                        st = entry.stat(follow_symlinks=True)
                    except OSError:
                        continue
                    if not entry.is_file(follow_symlinks=True):
                        continue
                    entries.append((entry.name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError as exc:
            self._warn_once("dir", "webhook keys directory %s unreadable: %s", exc.strerror)
            return ()
        entries.sort()
        return tuple(entries)

    def _warn_once(self, what: str, message: str, *detail: object) -> None:
        """Logs ``message % (keys_dir, *detail)`` once per ``what`` (never a key's bytes)."""
        if what in self._warned:
            return
        self._warned.add(what)
        log.warning(message, self._dir, *detail)

    def _load(self, fingerprint: tuple[tuple[str, int, int, int, int], ...]) -> None:
        keys: dict[str, bytes] = {}
        for name, *_ in fingerprint:
            try:
                with open(self._dir / name, "rb") as fh:
                    raw = fh.read(_MAX_KEY_FILE_BYTES + 1)
            except OSError:
                continue
            if len(raw) > _MAX_KEY_FILE_BYTES:
                self._warn_once(f"big:{name}", "webhook key file %s/%s is over 4 KiB", name)
                continue
            key = raw.strip()
            if not key:
                self._warn_once(f"empty:{name}", "webhook key file %s/%s is empty", name)
                continue
            if len(key) < MIN_KEY_BYTES:
                self._warn_once(
                    f"short:{name}",
                    "webhook key file %s/%s is shorter than %d bytes: not used (make one with "
                    "`openssl rand -hex 32`)",
                    name,
                    MIN_KEY_BYTES,
                )
                continue
            keys[name] = key
        if not keys:
            self._warn_once("nokeys", "no webhook keys in %s")
        else:
            self._warned.discard("nokeys")
            self._warned.discard("dir")
        if set(keys) != set(self._keys):
            log.info("webhook key ids now: %s", ", ".join(sorted(keys)) or "(none)")
        self._keys = keys

    def refresh(self) -> None:
        now = self._monotonic()
        fingerprint = self._scan()
        if fingerprint != self._fingerprint or now - self._loaded_at >= self._max_age_s:
            self._load(fingerprint)
            self._fingerprint = fingerprint
            self._loaded_at = now

    def get(self, key_id: str) -> bytes | None:
        """The key for ``key_id``, or ``None`` when there is no such key (checked afresh)."""
        self.refresh()
        return self._keys.get(key_id)

    def key_ids(self) -> list[str]:
        self.refresh()
        return sorted(self._keys)


# --------------------------------------------------------------------------- signature


def compute_signature(key: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(key, f"{timestamp}." + body)>``."""
    mac = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def check_key_id(header: str | None) -> str:
    """The key id named by the header (``default`` when absent); ``Refusal`` 401 when it cannot
    name a key file."""
    if header is None:
        return DEFAULT_KEY_ID
    key_id = header.strip()
    if not _KEY_ID_RE.fullmatch(key_id):
        raise Refusal(401, "unknown_key", f"{KEY_ID_HEADER} is not a valid key id")
    return key_id


def parse_timestamp(header: str | None) -> str:
    """The timestamp header as sent (it is part of the signed text); ``Refusal`` 401 when it is
    missing or not unix seconds."""
    if header is None:
        raise Refusal(401, "bad_signature", f"missing {TIMESTAMP_HEADER}")
    if not _TIMESTAMP_RE.fullmatch(header):
        raise Refusal(401, "bad_signature", f"{TIMESTAMP_HEADER} must be unix seconds")
    return header


def verify_signature(key: bytes, timestamp: str, body: bytes, header: str | None) -> str:
    """Checks the signature header in constant time and returns its lowercase hex digest;
    ``Refusal`` 401 ``bad_signature`` when it is missing, malformed or wrong."""
    if header is None:
        raise Refusal(401, "bad_signature", f"missing {SIGNATURE_HEADER}")
    match = _SIGNATURE_RE.fullmatch(header.strip())
    if match is None:
        raise Refusal(401, "bad_signature", f"{SIGNATURE_HEADER} must be sha256=<64 hex digits>")
    given = match.group(1).lower()
    expected = compute_signature(key, timestamp, body)[len("sha256=") :]
    if not hmac.compare_digest(given.encode("ascii"), expected.encode("ascii")):
        raise Refusal(401, "bad_signature", "signature does not match")
    return given


def check_timestamp_window(timestamp: str, now: float, window_s: int) -> int:
    """The timestamp as an int; ``Refusal`` 410 ``stale`` when it is more than ``window_s``
    away from ``now`` (either way)."""
    ts = int(timestamp)
    if abs(now - ts) > window_s:
        raise Refusal(
            410,
            "stale",
            f"timestamp {ts} is outside ±{window_s} s of the server clock ({int(now)})",
        )
    return ts


def check_nonce(header: str | None) -> str | None:
    """The nonce header, or ``None`` when absent; ``Refusal`` 400 when malformed."""
    if header is None:
        return None
    if not _NONCE_RE.fullmatch(header):
        raise Refusal(400, "malformed", f"{NONCE_HEADER} must be 1..128 of [A-Za-z0-9_.:-]")
    return header


def key_fingerprint(key: bytes) -> str:
    """A short public name of a key's bytes: 16 hex digits of a hash of it, never the key (a
    key has at least :data:`MIN_KEY_BYTES` random bytes: its hash reveals nothing usable)."""
    return hashlib.sha256(b"tradefleet-webhook-key\x00" + key).hexdigest()[:16]


def _signature_hash(signature_hex: str) -> str:
    return hashlib.sha256(signature_hex.encode("ascii")).hexdigest()[:32]


def signal_id_for(key: bytes, signature_hex: str) -> str:
    """``key-<fingerprint>:sig-<hash of the signature>``: only what is signed (key, timestamp,
    body) names a signal. An unsigned header (the nonce, the key id) would let a captured
    request, replayed without it or with another, pass as a new signal and trade again: two key
    ids holding the same key name one signal."""
    return f"key-{key_fingerprint(key)}:sig-{_signature_hash(signature_hex)}"


def former_signal_ids(key_id: str, nonce: str | None, signature_hex: str) -> tuple[str, ...]:
    """The ids older releases journaled the same request under: ``KEYID:sig-<hash>``, and
    ``KEYID:NONCE`` before that (with a nonce). Only to answer a request one of them handled
    just before an upgrade (the sender retrying within the window): built from unsigned
    headers, they must never name a new signal."""
    ids = (f"{key_id}:sig-{_signature_hash(signature_hex)}",)
    return ids if nonce is None else (*ids, f"{key_id}:{nonce}")


# --------------------------------------------------------------------------- replay memory


class NonceMemory:
    """The nonces seen recently, per key, with the signature of the request that brought each,
    remembered until ``max(ts, now) + window`` (after which that request is stale anyway).
    Bounded: expired entries are dropped on each call, and a full memory refuses to remember
    more (the caller refuses the request) rather than forget an entry."""

    def __init__(self, window_s: int, max_entries: int = 100_000) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def expire(self, now: float) -> None:
        # Entries are in insertion order; expiries are nearly monotonic. Dropping from the
        # front until one has not expired may keep a few entries longer than needed: harmless.
        while self._entries:
            nonce, (expiry, _owner) = next(iter(self._entries.items()))
            if expiry > now:
                break
            del self._entries[nonce]

    def owner(self, key_id: str, nonce: str, now: float) -> str | None:
        """The signature of the request that brought ``nonce`` under ``key_id``; None when
        the nonce is not (or no longer) remembered."""
        self.expire(now)
        entry = self._entries.get((key_id, nonce))
        return entry[1] if entry is not None and entry[0] > now else None

    def has_room(self, now: float) -> bool:
        self.expire(now)
        return len(self._entries) < self.max_entries

    def remember(self, key_id: str, nonce: str, signature: str, ts: float, now: float) -> None:
        self._entries[(key_id, nonce)] = (max(ts, now) + self.window_s + 1, signature)
        self._entries.move_to_end((key_id, nonce))


# --------------------------------------------------------------------------- rate limit


class RateLimiter:
    """A token bucket per key: ``rate_per_minute`` tokens, refilled evenly over a minute (so a
    full bucket allows a burst of ``rate_per_minute``)."""

    def __init__(self, rate_per_minute: int) -> None:
        self.capacity = float(rate_per_minute)
        self.per_second = rate_per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, now: float) -> float:
        """Takes a token: 0.0 when allowed, else the seconds until one is available."""
        tokens, at = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - at) * self.per_second)
        at = max(at, now)  # a clock stepping back refills nothing, now or later
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, at)
            return 0.0
        self._buckets[key] = (tokens, at)
        return (1.0 - tokens) / self.per_second


# --------------------------------------------------------------------------- body


def parse_signal_body(body: bytes) -> SignalBody:
    """The body as a :class:`SignalBody`; ``Refusal`` 400 ``malformed`` naming the field.

    JSON within :mod:`~tradefleet_runtime.service.limits` (depth, number length), then
    :func:`~tradefleet_runtime.service.api.validate_signal`, the check gRPC ``SubmitSignal``
    uses too.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "malformed", "body is not UTF-8") from None
    try:
        data = limits.load_json(text)
    except limits.JsonRefused as exc:
        raise Refusal(400, "malformed", _truncate(f"body: {exc}")) from None
    if not isinstance(data, dict):
        raise Refusal(400, "malformed", "body must be a JSON object")
    try:
        return validate_signal(data)
    except SignalInvalid as exc:
        raise Refusal(400, "malformed", _truncate(str(exc))) from None


# --------------------------------------------------------------------------- handler


def _json_response(
    status: int, payload: Mapping[str, object], headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(payload),
        content_type="application/json",
        headers=dict(headers or {}),
    )


def _refusal_response(refusal: Refusal) -> web.Response:
    headers: dict[str, str] = {}
    if refusal.retry_after is not None:
        headers["Retry-After"] = str(max(1, refusal.retry_after))
    return _json_response(
        refusal.status,
        {"accepted": False, "reason": refusal.reason, "outcome": refusal.outcome},
        headers,
    )


def _conflict(signal_id: str) -> Refusal:
    """The bot journaled another signal under this id: 409, never the first signal's outcome as
    if this one had it. (An id is a hash of the key and the signature, so only a bot given the
    same id by another front end, gRPC ``SubmitSignal``, can see this.)"""
    return Refusal(
        409,
        "refused",
        f"signal_id {signal_id!r} was already used for a different signal",
    )


_MAY_STILL_ACT: Final = (
    "bot did not answer in time; it may still act on the signal: send the same request again "
    "(same timestamp and body, not re-signed) to learn its outcome"
)


class _Unavailable(Exception):
    """The bot (not the request) failed before submit: answered 503."""


class _WebhookHandler:
    def __init__(
        self,
        *,
        config: WebhookConfig,
        submit: Callable[[Signal], Awaitable[SignalResult]],
        submit_former: SubmitWithFormerIds | None,
        known_symbols: Callable[[], Collection[str]],
        requests_total: prometheus_client.Counter,
        bot: str,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.submit = submit
        self.submit_former = submit_former
        self.known_symbols = known_symbols
        self.bot = bot
        self.clock = clock
        self.sources = SourceFilter(config.allow_from)
        self.keys = KeyStore(config.keys_dir)
        self.memory = NonceMemory(config.replay_window_s, config.replay_memory_max)
        self.limiter = RateLimiter(config.rate_per_minute)
        # Signals handed to the bot that it has not answered yet (their first request may have
        # been answered 503 already): a copy meanwhile is told to come back, not submitted.
        self.working: dict[str, asyncio.Future[SignalResult]] = {}
        self.counters = {o: requests_total.labels(bot=bot, outcome=o) for o in OUTCOMES}

    async def handle(self, request: web.Request) -> web.Response:
        received_at = self.clock()
        context: dict[str, str] = {"key_id": "-", "source": request.remote or "-"}
        try:
            signal, former_ids = await self._check(request, received_at, context)
        except Refusal as refusal:
            return self._refuse(refusal, context)
        except _Unavailable:
            return self._unavailable("bot unavailable")
        except Exception:  # a bug here must not become a 5xx: refuse, and say so in the log
            log.exception("webhook: unexpected error while checking a request")
            return self._refuse(
                Refusal(400, "malformed", "request could not be processed"), context
            )
        return await self._submit(signal, former_ids, context)

    def _refuse(self, refusal: Refusal, context: Mapping[str, str]) -> web.Response:
        self.counters[refusal.outcome].inc()
        authenticated = context["key_id"] != "-"
        log.log(
            logging.INFO if authenticated else logging.DEBUG,
            "webhook refused: outcome=%s status=%d key_id=%s source=%s reason=%s",
            refusal.outcome,
            refusal.status,
            context["key_id"],
            context["source"],
            refusal.reason,
        )
        return _refusal_response(refusal)

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        too_large = Refusal(413, "too_large", f"body larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                chunk = await request.content.read(min(65536, limit + 1 - size))
            except Exception as exc:  # a broken transfer encoding, a dropped connection
                raise Refusal(400, "malformed", "body could not be read") from exc
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise too_large
        return b"".join(chunks)

    async def _check(
        self, request: web.Request, received_at: float, context: dict[str, str]
    ) -> tuple[Signal, tuple[str, ...]]:
        config = self.config
        headers = request.headers

        # 1. size, by the declared length first (nothing is read from an oversized request)
        declared = request.content_length
        if declared is not None and declared > config.max_body_bytes:
            raise Refusal(413, "too_large", f"body larger than {config.max_body_bytes} bytes")

        # 2. source address
        if not self.sources.allows_any:
            address = client_address(
                request.remote,
                headers.getall("X-Forwarded-For", []),
                trust_forwarded_for=config.trust_forwarded_for,
            )
            if address is not None:
                context["source"] = str(address)
            if not self.sources.allows(address):
                raise Refusal(403, "forbidden_source", "source address not allowed")

        body = await self._read_body(request)

        # 3. key id and signature (the body is not parsed before this passes)
        key_id = check_key_id(headers.get(KEY_ID_HEADER))
        key = self.keys.get(key_id)
        if key is None:
            raise Refusal(401, "unknown_key", "unknown key id")
        timestamp = parse_timestamp(headers.get(TIMESTAMP_HEADER))
        signature = verify_signature(key, timestamp, body, headers.get(SIGNATURE_HEADER))
        context["key_id"] = key_id

        # 4. timestamp window
        now = self.clock()
        ts = check_timestamp_window(timestamp, now, config.replay_window_s)

        # 5. the same signal still being handled; a nonce another request brought
        signal_id = signal_id_for(key, signature)
        if signal_id in self.working:
            raise Refusal(
                409,
                "in_progress",
                "this signal is still being handled: send the same request again to learn its "
                "outcome",
                retry_after=IN_PROGRESS_RETRY_S,
            )
        nonce = check_nonce(headers.get(NONCE_HEADER))
        owner = None if nonce is None else self.memory.owner(key_id, nonce, now)
        if owner is not None and owner != signature:
            raise Refusal(
                409,
                "replay",
                "this nonce came with another request within the window; a retry sends the "
                "first request again unchanged (same timestamp and body)",
            )

        # 6. rate limit per key (only authenticated requests count)
        wait = self.limiter.take(key_id, now)
        if wait > 0:
            raise Refusal(
                429,
                "rate_limited",
                f"more than {config.rate_per_minute} signals per minute for this key",
                retry_after=math.ceil(wait),
            )
        if nonce is not None and owner is None:
            if not self.memory.has_room(now):
                log.warning("webhook nonce memory full (%d entries)", len(self.memory))
                raise Refusal(429, "rate_limited", "too many recent signals", retry_after=60)
            self.memory.remember(key_id, nonce, signature, ts, now)

        # 7. JSON and fields
        parsed = parse_signal_body(body)

        # 8. known symbol
        try:
            symbols = self.known_symbols()
            known = parsed.symbol in symbols
        except Exception as exc:
            log.exception("webhook: known_symbols failed")
            raise _Unavailable from exc
        if not known:
            raise Refusal(422, "unknown_symbol", f"symbol {parsed.symbol!r} is not traded here")

        # The alert's age counts from when it was signed (the sender's clock, within the
        # window), not from when it arrived: a strategy's ``max_signal_age_s`` then refuses an
        # alert a sender's queue or retries held back, which an arrival time never shows.
        signal = parsed.to_signal(signal_id=signal_id, received_at=min(received_at, float(ts)))
        return signal, former_signal_ids(key_id, nonce, signature)

    def _start(self, signal: Signal, former_ids: tuple[str, ...]) -> asyncio.Future[SignalResult]:
        """Hands ``signal`` to the bot, marked as being handled until the bot answers (longer
        than this request waits, when the bot is slow)."""
        handed = (
            self.submit(signal)
            if self.submit_former is None
            else self.submit_former(signal, former_ids)
        )
        task = asyncio.ensure_future(handed)
        self.working[signal.signal_id] = task

        def done(finished: asyncio.Future[SignalResult]) -> None:
            self.working.pop(signal.signal_id, None)
            if not finished.cancelled():
                finished.exception()  # retrieved: an answer nobody waits for any more

        task.add_done_callback(done)
        return task

    async def _submit(
        self, signal: Signal, former_ids: tuple[str, ...], context: Mapping[str, str]
    ) -> web.Response:
        # Marked before the first await: ``_check`` saw the signal not being handled, and no
        # other request ran since (a copy arriving now is answered in_progress).
        task = self._start(signal, former_ids)
        try:
            # Shielded: a timeout ends this wait, not the bot's handling (the mark stays).
            result = await asyncio.wait_for(asyncio.shield(task), self.config.submit_timeout_s)
            if not isinstance(result, SignalResult):
                raise TypeError(f"submit returned {type(result).__name__}, not SignalResult")
        except TimeoutError:
            log.error("webhook: the bot did not answer signal %s in time", signal.signal_id)
            return self._unavailable(_MAY_STILL_ACT)
        except SignalConflict:
            return self._refuse(_conflict(signal.signal_id), context)
        except NoAnswer:  # a NotNow too, but the engine did not answer: worth retrying, 503
            log.warning("webhook: the bot did not answer signal %s in time", signal.signal_id)
            return self._unavailable(_MAY_STILL_ACT)
        except NotNow as exc:
            if exc.field == "signal_id":
                # About this signal, not the bot's state: handled, but its outcome could not be
                # journaled (the controller's words say where to look).
                log.warning("webhook: signal %s: %s", signal.signal_id, _truncate(str(exc)))
                return self._refuse(Refusal(409, "refused", _truncate(str(exc))), context)
            # The bot's state (still starting, stopped), not a failure of the bot nor of the
            # request: gRPC answers FAILED_PRECONDITION, here 409 with the bot's reason. A
            # state the bot is in is no error of ours: a warning, no traceback.
            log.warning(
                "webhook: signal %s not taken now: %s", signal.signal_id, _truncate(str(exc))
            )
            return self._refuse(
                Refusal(409, "refused", _truncate(f"the bot takes no signals now: {exc}")),
                context,
            )
        except Exception:
            log.exception("webhook: submitting signal %s failed", signal.signal_id)
            return self._unavailable(
                "bot unavailable; send the same request again (not re-signed) to learn whether "
                "it acted"
            )
        if not result.accepted:
            return self._refuse(
                Refusal(422, "refused", _truncate(result.reason or "refused by the bot")),
                context,
            )
        self.counters["accepted"].inc()
        log.info(
            "webhook accepted signal %s (%s %s) as %s",
            signal.signal_id,
            signal.direction.value,
            signal.symbol,
            result.client_order_id,
        )
        return _json_response(
            202,
            {
                "accepted": True,
                "client_order_id": result.client_order_id,
                "signal_id": signal.signal_id,
                "outcome": "accepted",
            },
        )

    def _unavailable(self, reason: str) -> web.Response:
        self.counters["unavailable"].inc()
        return _json_response(
            503,
            {"accepted": False, "reason": reason, "outcome": "unavailable"},
            {"Retry-After": "5"},
        )


def add_webhook_routes(
    app: web.Application,
    *,
    config: WebhookConfig,
    submit: Callable[[Signal], Awaitable[SignalResult]],
    known_symbols: Callable[[], Collection[str]],
    requests_total: prometheus_client.Counter,
    bot: str,
    clock: Callable[[], float] = time.time,
    submit_former: SubmitWithFormerIds | None = None,
) -> None:
    """Adds ``POST /webhook/signal`` to ``app``.

    ``submit`` hands a fully checked signal to the bot; ``submit_former``, when given, does
    instead, also told the ids older releases journaled the same request under
    (:func:`former_signal_ids`), so a request the bot took just before an upgrade is answered
    with its first outcome, not traded again; ``known_symbols`` names the symbols the
    bot trades; ``requests_total`` is a counter with labels ``("bot", "outcome")`` (its outcome
    values are :data:`OUTCOMES`, all created at zero here); ``clock`` is the wall clock in unix
    seconds.
    """
    handler = _WebhookHandler(
        config=config,
        submit=submit,
        submit_former=submit_former,
        known_symbols=known_symbols,
        requests_total=requests_total,
        bot=bot,
        clock=clock,
    )

    app.router.add_post(WEBHOOK_PATH, handler.handle)
