"""``POST /webhook/signal``: every refusal with its own status, reason and counter; key rotation;
fuzzed bodies and headers never make a 5xx nor reach ``submit`` unless fully valid."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from tests.service.webhook_client import GOOD_SIGNAL, WEBHOOK_PATH, sign, signal_body
from tradefleet_runtime.service.api import Direction, Signal, SignalConflict, SignalResult
from tradefleet_runtime.service.webhook import (
    OUTCOMES,
    KeyStore,
    NonceMemory,
    RateLimiter,
    Refusal,
    SignalBody,
    SourceFilter,
    WebhookConfig,
    add_webhook_routes,
    check_timestamp_window,
    client_address,
    compute_signature,
    key_fingerprint,
    parse_signal_body,
    verify_signature,
)

KEY = b"default-key-3f9a1c7e5b2d4f60-0123456789ab"
ALERTS_KEY = b"alerts-key-8e2b6d0a4c1f3e57-0123456789ab"
TV_KEY = b"tv-key-1234567890-abcdefghijklmnop"
NOW = 1_763_900_000
BOT = "eurusd-bot"
SYMBOLS = ("EURUSD", "GBPUSD")


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]


@dataclass
class Harness:
    client: TestClient[web.Request, web.Application]
    clock: FakeClock
    registry: CollectorRegistry
    keys_dir: Path
    submitted: list[Signal] = field(default_factory=list)
    answer: Callable[[Signal], Awaitable[SignalResult]] | None = None
    symbols: Callable[[], Collection[str]] = lambda: SYMBOLS
    texts: list[str] = field(default_factory=list)  # every response body, for the secrets test

    def count(self, outcome: str) -> float:
        value = self.registry.get_sample_value(
            "tradefleet_webhook_requests_total", {"bot": BOT, "outcome": outcome}
        )
        return value or 0.0

    def counts(self) -> dict[str, float]:
        return {o: self.count(o) for o in OUTCOMES if self.count(o)}

    async def post(
        self, body: bytes | Any, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Reply:
        async with self.client.post(WEBHOOK_PATH, data=body, headers=headers, **kwargs) as r:
            text = await r.text()
            self.texts.append(text)
            try:
                payload = json.loads(text)
            except ValueError:
                payload = {"text": text}
            return Reply(r.status, payload, dict(r.headers))

    async def send(
        self,
        body: bytes | None = None,
        *,
        key: bytes = KEY,
        ts: int | None = None,
        key_id: str | None = None,
        nonce: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> Reply:
        body = signal_body() if body is None else body
        ts = int(self.clock.now) if ts is None else ts
        headers = sign(key, body, ts, key_id=key_id, nonce=nonce)
        headers.update(extra or {})
        return await self.post(body, headers)


def write_key(keys_dir: Path, key_id: str, key: bytes) -> None:
    """Atomically, as a Secret volume update would."""
    tmp = keys_dir / f".tmp-{key_id}"
    tmp.write_bytes(key)
    os.replace(tmp, keys_dir / key_id)


@contextlib.asynccontextmanager
async def running(tmp_path: Path, **config: Any) -> AsyncIterator[Harness]:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir(exist_ok=True)
    write_key(keys_dir, "default", KEY + b"\n")  # a trailing newline is stripped
    write_key(keys_dir, "alerts", ALERTS_KEY)
    registry = CollectorRegistry()
    counter = prometheus_client.Counter(
        "tradefleet_webhook_requests",
        "webhook requests by outcome",
        ("bot", "outcome"),
        registry=registry,
    )
    clock = FakeClock(NOW)
    app = web.Application()
    holder: list[Harness] = []

    async def submit(signal: Signal) -> SignalResult:
        harness = holder[0]
        harness.submitted.append(signal)
        if harness.answer is not None:
            return await harness.answer(signal)
        return SignalResult(accepted=True, client_order_id=f"wh-{len(harness.submitted)}")

    add_webhook_routes(
        app,
        config=WebhookConfig(keys_dir=keys_dir, **config),
        submit=submit,
        known_symbols=lambda: holder[0].symbols(),
        requests_total=counter,
        bot=BOT,
        clock=clock,
    )
    async with TestClient(TestServer(app)) as client:
        harness = Harness(client=client, clock=clock, registry=registry, keys_dir=keys_dir)
        holder.append(harness)
        yield harness


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(tmp_path) as h:
        yield h


def assert_refused(h: Harness, reply: Reply, status: int, outcome: str, reason: str) -> None:
    assert reply.status == status, reply.body
    assert reply.body["accepted"] is False
    assert reply.body["outcome"] == outcome
    assert reason.lower() in reply.body["reason"].lower(), reply.body["reason"]
    assert h.submitted == []
    assert h.counts() == {outcome: 1.0}


# --------------------------------------------------------------------------- accepted


async def test_good_signal_is_accepted_once_with_the_right_signal(harness: Harness) -> None:
    reply = await harness.send(nonce="alert-0001")
    assert reply.status == 202
    signal_id = reply.body["signal_id"]
    assert signal_id.startswith(f"key-{key_fingerprint(KEY)}:sig-")  # never the unsigned nonce
    assert reply.body == {
        "accepted": True,
        "client_order_id": "wh-1",
        "signal_id": signal_id,
        "outcome": "accepted",
    }
    assert harness.submitted == [
        Signal(
            symbol="EURUSD",
            direction=Direction.BUY,
            entry=1.0850,
            stop_loss=1.0830,
            take_profit=1.0890,
            volume=0.01,
            current_price=1.0851,
            timeframe="M5",
            pattern_type="M5_BOS",
            source="tradingview",
            confidence=0.85,
            signal_id=signal_id,
            received_at=NOW,
        )
    ]
    assert harness.counts() == {"accepted": 1.0}


async def test_minimal_sell_signal_with_another_key_and_no_nonce(harness: Harness) -> None:
    body = json.dumps(
        {
            "symbol": "GBPUSD",
            "direction": "sell",
            "price_levels": {"entry": 1.25, "stop_loss": 1.26, "take_profit": 1.23},
        }
    ).encode()
    reply = await harness.send(body, key=ALERTS_KEY, key_id="alerts")
    assert reply.status == 202, reply.body
    [signal] = harness.submitted
    assert signal.direction is Direction.SELL
    assert signal.volume is None and signal.confidence is None and signal.current_price is None
    assert signal.source == "" and signal.timeframe == ""
    assert signal.signal_id.startswith(f"key-{key_fingerprint(ALERTS_KEY)}:sig-")
    assert reply.body["signal_id"] == signal.signal_id


async def test_timestamp_exactly_at_the_window_edge_is_accepted(harness: Harness) -> None:
    assert (await harness.send(ts=NOW - 300)).status == 202
    assert (await harness.send(ts=NOW + 300)).status == 202


# --------------------------------------------------------------------------- refusals


def _body(**levels: Any) -> bytes:
    return signal_body(price_levels={**GOOD_SIGNAL["price_levels"], **levels})


REFUSALS: dict[str, tuple[Callable[[Harness], Awaitable[Reply]], int, str, str]] = {
    "wrong key": (lambda h: h.send(key=b"not-the-key"), 401, "bad_signature", "does not match"),
    "tampered body": (
        lambda h: h.post(signal_body(volume=5.0), sign(KEY, signal_body(), NOW)),
        401,
        "bad_signature",
        "does not match",
    ),
    "signed with another timestamp": (
        lambda h: h.post(
            signal_body(),
            {**sign(KEY, signal_body(), NOW - 1), "X-Tradefleet-Timestamp": str(NOW)},
        ),
        401,
        "bad_signature",
        "does not match",
    ),
    "no signature": (
        lambda h: h.post(signal_body(), {"X-Tradefleet-Timestamp": str(NOW)}),
        401,
        "bad_signature",
        "missing X-Tradefleet-Signature",
    ),
    "signature not sha256=hex": (
        lambda h: h.send(extra={"X-Tradefleet-Signature": "md5=abc"}),
        401,
        "bad_signature",
        "sha256=",
    ),
    "no timestamp": (
        lambda h: h.post(
            signal_body(),
            {"X-Tradefleet-Signature": sign(KEY, signal_body(), NOW)["X-Tradefleet-Signature"]},
        ),
        401,
        "bad_signature",
        "missing X-Tradefleet-Timestamp",
    ),
    "timestamp not unix seconds": (
        lambda h: h.send(extra={"X-Tradefleet-Timestamp": "2025-11-23T10:00:00Z"}),
        401,
        "bad_signature",
        "unix seconds",
    ),
    "unknown key id": (
        lambda h: h.send(key_id="nobody"),
        401,
        "unknown_key",
        "unknown key id",
    ),
    "key id with a path": (
        lambda h: h.send(key_id="../keys/default"),
        401,
        "unknown_key",
        "not a valid key id",
    ),
    "hidden file as key id": (
        lambda h: h.send(key_id="..data"),
        401,
        "unknown_key",
        "not a valid key id",
    ),
    "stale": (lambda h: h.send(ts=NOW - 301), 410, "stale", "outside ±300 s"),
    "from the future": (lambda h: h.send(ts=NOW + 301), 410, "stale", "outside ±300 s"),
    "not JSON": (lambda h: h.send(b"symbol=EURUSD&side=buy"), 400, "malformed", "not valid JSON"),
    "not UTF-8": (lambda h: h.send(b'{"symbol": "\xff"}'), 400, "malformed", "not UTF-8"),
    "empty body": (lambda h: h.send(b""), 400, "malformed", "not valid JSON"),
    "JSON array": (lambda h: h.send(b"[]"), 400, "malformed", "must be a JSON object"),
    "missing entry": (
        lambda h: h.send(signal_body(price_levels={"stop_loss": 1.0, "take_profit": 2.0})),
        400,
        "malformed",
        "price_levels.entry: Field required",
    ),
    "unknown direction": (
        lambda h: h.send(signal_body(direction="HOLD")),
        400,
        "malformed",
        "direction:",
    ),
    "stop on the wrong side": (
        lambda h: h.send(_body(stop_loss=1.09)),
        400,
        "malformed",
        "price_levels.stop_loss: must be below entry for a BUY",
    ),
    "negative price": (
        lambda h: h.send(_body(entry=-1.0)),
        400,
        "malformed",
        "price_levels.entry: Input should be greater than or equal to 0.000000000001",
    ),
    "price as a string": (
        lambda h: h.send(_body(entry="1.0850")),
        400,
        "malformed",
        "price_levels.entry",
    ),
    "NaN": (
        lambda h: h.send(signal_body().replace(b"0.01", b"NaN")),
        400,
        "malformed",
        "NaN is not allowed",
    ),
    "overflowing number": (
        lambda h: h.send(signal_body().replace(b"0.01", b"1e999")),
        400,
        "malformed",
        "volume",
    ),
    "zero volume": (lambda h: h.send(signal_body(volume=0)), 400, "malformed", "volume"),
    "confidence above 1": (
        lambda h: h.send(signal_body(metadata={"confidence": 1.5})),
        400,
        "malformed",
        "metadata.confidence",
    ),
    "unknown field": (
        lambda h: h.send(signal_body(volumne=1.0)),
        400,
        "malformed",
        "volumne: Extra inputs are not permitted",
    ),
    "duplicate key": (
        lambda h: h.send(b'{"symbol": "EURUSD", "symbol": "GBPUSD"}'),
        400,
        "malformed",
        "duplicate key 'symbol'",
    ),
    "deeply nested": (lambda h: h.send(b"[" * 60_000), 400, "malformed", "deeper than 32"),
    "nested just too deep": (
        lambda h: h.send(signal_body(metadata=json.loads("[" * 32 + "]" * 32))),
        400,
        "malformed",
        "nested deeper than 32 levels",
    ),
    "number with too many digits": (
        lambda h: h.send(signal_body().replace(b"0.01", b"0." + b"1" * 100)),
        400,
        "malformed",
        "more than 64 characters",
    ),
    "huge integer": (
        lambda h: h.send(signal_body().replace(b"0.01", b"9" * 5000)),
        400,
        "malformed",
        "more than 64 characters",
    ),
    "tiny volume": (
        lambda h: h.send(signal_body(volume=5e-324)),
        400,
        "malformed",
        "volume: Input should be greater than or equal to",
    ),
    "huge volume": (
        lambda h: h.send(signal_body(volume=1e308)),
        400,
        "malformed",
        "volume: Input should be less than or equal to 1000000000",
    ),
    "boolean volume": (lambda h: h.send(signal_body(volume=True)), 400, "malformed", "volume"),
    "bad nonce": (lambda h: h.send(nonce="a b"), 400, "malformed", "X-Tradefleet-Nonce"),
    "unknown symbol": (
        lambda h: h.send(signal_body(symbol="XAUUSD")),
        422,
        "unknown_symbol",
        "'XAUUSD' is not traded here",
    ),
    "declared too large": (
        lambda h: h.send(signal_body(pattern_type="x" * 70_000)),
        413,
        "too_large",
        "larger than 65536 bytes",
    ),
}


async def _chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 8192):
        yield b" " * 8192


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_each_refusal_has_its_status_reason_and_counter(harness: Harness, case: str) -> None:
    send, status, outcome, reason = REFUSALS[case]
    assert_refused(harness, await send(harness), status, outcome, reason)


async def test_chunked_body_too_large_is_refused_while_reading(harness: Harness) -> None:
    reply = await harness.post(_chunks(200_000), sign(KEY, b"", NOW))
    assert_refused(harness, reply, 413, "too_large", "larger than")


async def test_a_valid_signature_does_not_matter_for_a_too_large_body(tmp_path: Path) -> None:
    async with running(tmp_path, max_body_bytes=100) as h:
        assert_refused(h, await h.send(), 413, "too_large", "larger than 100 bytes")


async def test_the_same_request_is_the_same_signal_whatever_its_unsigned_nonce(
    harness: Harness,
) -> None:
    """The same signed request again (a retry, or a replay with the nonce stripped or changed)
    reaches the bot as the same signal id, whose journal answers it with the first outcome; a
    new request under a nonce already seen is refused ``409 replay``."""
    body = signal_body()
    headers = sign(KEY, body, NOW, nonce="n-1")
    assert (await harness.post(body, headers)).status == 202
    again = await harness.post(body, headers)
    other_nonce = await harness.post(body, {**headers, "X-Tradefleet-Nonce": "n-2"})
    no_nonce = await harness.post(body, {k: v for k, v in headers.items() if "Nonce" not in k})
    upper = headers["X-Tradefleet-Signature"].upper().replace("SHA256=", "sha256=")
    upper_case = await harness.post(body, {**headers, "X-Tradefleet-Signature": upper})
    assert [r.status for r in (again, other_nonce, no_nonce, upper_case)] == [202] * 4
    assert len({s.signal_id for s in harness.submitted}) == 1 and len(harness.submitted) == 5
    # the same nonce on a new request (another timestamp): refused, naming the retry rule
    reused = await harness.send(body, ts=NOW + 1, nonce="n-1")
    assert reused.status == 409 and reused.body["outcome"] == "replay"
    assert "same timestamp and body" in reused.body["reason"]
    assert len(harness.submitted) == 5
    assert harness.counts() == {"accepted": 5.0, "replay": 1.0}
    # once the timestamp is outside the window, the copy is stale
    harness.clock.now = NOW + 301
    assert (await harness.post(body, headers)).status == 410


async def test_forged_requests_do_not_poison_the_nonce_memory(harness: Harness) -> None:
    forged = await harness.send(key=b"attacker", nonce="next-alert")
    assert forged.status == 401
    assert (await harness.send(nonce="next-alert")).status == 202


async def test_concurrent_copies_are_accepted_once(harness: Harness) -> None:
    gate = asyncio.Event()

    async def slow(signal: Signal) -> SignalResult:
        await gate.wait()
        return SignalResult(True, client_order_id="wh-slow")

    harness.answer = slow
    body = signal_body()
    headers = sign(KEY, body, NOW)
    tasks = [asyncio.create_task(harness.post(body, headers)) for _ in range(5)]
    await asyncio.sleep(0.2)
    gate.set()
    replies = await asyncio.gather(*tasks)
    assert sorted(r.status for r in replies) == [202, 409, 409, 409, 409]
    for reply in replies:
        if reply.status == 409:
            assert reply.body["outcome"] == "in_progress" and reply.headers["Retry-After"] == "2"
    assert len(harness.submitted) == 1
    # answered: the same request again reaches the bot (whose journal has the first outcome)
    assert (await harness.post(body, headers)).status == 202


async def test_rate_limit_per_key(tmp_path: Path) -> None:
    async with running(tmp_path, rate_per_minute=3) as h:
        # (the same body at the same second is the same request, whatever the nonce)
        for i in range(3):
            assert (await h.send(nonce=f"r{i}", ts=NOW - i)).status == 202
        limited = await h.send(nonce="r3", ts=NOW - 3)
        assert limited.status == 429 and limited.body["outcome"] == "rate_limited"
        assert limited.headers["Retry-After"] == "20"
        # another key has its own budget; unauthenticated requests spend none
        assert (await h.send(key=ALERTS_KEY, key_id="alerts", nonce="a0")).status == 202
        for _ in range(5):
            assert (await h.send(key=b"forged", key_id="alerts")).status == 401
        assert (await h.send(key=ALERTS_KEY, key_id="alerts", ts=NOW - 1)).status == 202
        # a request refused for rate is not remembered: its retry passes once a token is back
        h.clock.now += 20
        assert (await h.send(nonce="r3", ts=NOW - 3)).status == 202
        assert h.counts() == {"accepted": 6.0, "rate_limited": 1.0, "bad_signature": 5.0}
        assert len(h.submitted) == 6


async def test_forbidden_source_and_forwarded_for(tmp_path: Path) -> None:
    async with running(tmp_path, allow_from=["10.0.0.0/8", "2001:db8::/32"]) as h:
        reply = await h.send(extra={"X-Forwarded-For": "10.1.2.3"})  # not trusted: ignored
        assert_refused(h, reply, 403, "forbidden_source", "source address not allowed")
    async with running(
        tmp_path, allow_from=["10.0.0.0/8", "2001:db8::/32"], trust_forwarded_for=True
    ) as h:
        assert (await h.send(extra={"X-Forwarded-For": "10.1.2.3, 127.0.0.1"})).status == 202
        assert (await h.send(ts=NOW + 1, extra={"X-Forwarded-For": "2001:db8::7"})).status == 202
        for hop in ("192.168.1.1", "garbage", "", "10.1.2.3.4"):
            reply = await h.send(ts=NOW + 2, extra={"X-Forwarded-For": hop})
            assert reply.status == 403, hop
        # without the header, the TCP peer (127.0.0.1) counts
        assert (await h.send(ts=NOW + 3)).status == 403
        assert h.count("forbidden_source") == 5 and len(h.submitted) == 2
    async with running(tmp_path, allow_from=["127.0.0.1/32"]) as h:
        assert (await h.send()).status == 202


async def test_refused_by_the_bot_is_422_with_its_reason(harness: Harness) -> None:
    async def veto(signal: Signal) -> SignalResult:
        return SignalResult(False, reason="risk: max-open-positions veto")

    harness.answer = veto
    reply = await harness.send()
    assert reply.status == 422
    assert reply.body == {
        "accepted": False,
        "reason": "risk: max-open-positions veto",
        "outcome": "refused",
    }
    assert len(harness.submitted) == 1 and harness.counts() == {"refused": 1.0}


async def test_a_replay_after_a_restart_without_its_nonce_is_the_same_signal(
    tmp_path: Path,
) -> None:
    """After a restart the webhook remembers nothing; the request sent again with its nonce
    removed still carries the first signal id, which the bot (its journal) knows."""
    journaled: dict[str, SignalResult] = {}  # the bot's signal_id memory

    async def bot(signal: Signal) -> SignalResult:
        return journaled.setdefault(
            signal.signal_id, SignalResult(True, client_order_id=f"order-{len(journaled)}")
        )

    body = signal_body()
    headers = sign(KEY, body, NOW, nonce="alert-0001")
    async with running(tmp_path) as before_restart:
        before_restart.answer = bot
        first = await before_restart.post(body, headers)
    async with running(tmp_path) as after_restart:
        after_restart.answer = bot
        stripped = {k: v for k, v in headers.items() if "Nonce" not in k}
        reply = await after_restart.post(body, stripped)
    assert (reply.status, reply.body) == (202, first.body)
    assert len(journaled) == 1


async def test_a_signal_the_bot_knows_with_other_content_is_409_refused(harness: Harness) -> None:
    async def conflict(signal: Signal) -> SignalResult:
        raise SignalConflict(signal.signal_id)

    harness.answer = conflict
    reply = await harness.send()
    assert reply.status == 409
    assert reply.body["accepted"] is False and reply.body["outcome"] == "refused"
    assert "already used for a different signal" in reply.body["reason"]
    assert harness.counts() == {"refused": 1.0}


async def test_a_failing_bot_is_503_unavailable(harness: Harness) -> None:
    async def boom(signal: Signal) -> SignalResult:
        raise RuntimeError("engine thread died")

    harness.answer = boom
    reply = await harness.send(nonce="x1")
    assert reply.status == 503 and reply.headers["Retry-After"] == "5"
    assert reply.body["outcome"] == "unavailable" and reply.body["accepted"] is False
    assert "send the same request again" in reply.body["reason"]
    # the retry is the same request: it reaches the bot again, as the same signal
    assert (await harness.send(nonce="x1")).status == 503
    assert harness.submitted[0].signal_id == harness.submitted[1].signal_id

    def broken() -> Collection[str]:
        raise RuntimeError("no instruments")

    harness.symbols = broken
    harness.answer = None
    assert (await harness.send(nonce="x2", ts=NOW + 1)).status == 503
    assert harness.counts() == {"unavailable": 3.0}
    assert len(harness.submitted) == 2


async def test_a_bot_that_does_not_answer_is_503(tmp_path: Path) -> None:
    async with running(tmp_path, submit_timeout_s=0.05) as h:

        async def hang(signal: Signal) -> SignalResult:
            await asyncio.sleep(10)
            raise AssertionError

        h.answer = hang
        reply = await h.send()
        assert reply.status == 503 and "did not answer in time" in reply.body["reason"]
        assert "same timestamp and body" in reply.body["reason"]
        # the bot still has it: the same request meanwhile is in progress, not submitted again
        again = await h.send()
        assert (again.status, again.body["outcome"]) == (409, "in_progress")
        assert again.headers["Retry-After"] == "2" and len(h.submitted) == 1


# --------------------------------------------------------------------------- keys


async def test_key_rotation_without_restart(harness: Harness) -> None:
    new_key = b"rotated-default-key-77aa01-0123456789abcdef"
    assert (await harness.send(nonce="k1")).status == 202
    write_key(harness.keys_dir, "default", new_key)
    old = await harness.send(nonce="k2")
    assert old.status == 401 and old.body["outcome"] == "bad_signature"
    assert (await harness.send(key=new_key, nonce="k3")).status == 202
    # a new key id appears, a revoked one disappears
    write_key(harness.keys_dir, "tradingview", TV_KEY)
    assert (await harness.send(key=TV_KEY, key_id="tradingview", nonce="k4")).status == 202
    (harness.keys_dir / "alerts").unlink()
    revoked = await harness.send(key=ALERTS_KEY, key_id="alerts", nonce="k5")
    assert revoked.status == 401 and revoked.body["outcome"] == "unknown_key"


async def test_rotation_in_a_kubernetes_secret_volume(tmp_path: Path) -> None:
    """kubelet's layout: KEYID -> ..data/KEYID, ..data -> ..<timestamp>; an update writes a new
    timestamped directory and swaps the ..data link atomically."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "..2025_01").mkdir()
    (secret / "..2025_01" / "default").write_bytes(KEY)
    os.symlink("..2025_01", secret / "..data")
    os.symlink("..data/default", secret / "default")
    store = KeyStore(secret)
    assert store.get("default") == KEY
    assert store.key_ids() == ["default"]
    (secret / "..2025_02").mkdir()
    (secret / "..2025_02" / "default").write_bytes(ALERTS_KEY)
    os.symlink("..2025_02", secret / "..data_tmp")
    os.replace(secret / "..data_tmp", secret / "..data")
    assert store.get("default") == ALERTS_KEY


def test_keystore_rereads_in_place_rewrites_within_a_second(tmp_path: Path) -> None:
    now = [0.0]
    (tmp_path / "default").write_bytes(b"a" * 32)
    store = KeyStore(tmp_path, monotonic=lambda: now[0])
    assert store.get("default") == b"a" * 32
    st = os.stat(tmp_path / "default")
    (tmp_path / "default").write_bytes(b"b" * 32)  # same size; force the same mtime too
    os.utime(tmp_path / "default", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.get("default") == b"a" * 32  # not seen yet: nothing in the stat changed
    now[0] = 1.0
    assert store.get("default") == b"b" * 32


def test_keystore_does_not_use_a_short_key_and_names_its_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # "abc" signs requests anyone could forge after guessing it from one of them.
    (tmp_path / "weak").write_bytes(b"abc\n")
    (tmp_path / "default").write_bytes(KEY)
    with caplog.at_level("WARNING"):
        assert KeyStore(tmp_path).key_ids() == ["default"]
    assert "weak is shorter than 32 bytes: not used" in caplog.text
    assert "abc" not in caplog.text


def test_keystore_ignores_empty_hidden_and_missing(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"\n")
    (tmp_path / ".hidden").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "big").write_bytes(b"x" * 5000)
    assert KeyStore(tmp_path).key_ids() == []
    assert KeyStore(tmp_path / "missing").get("default") is None


async def test_secrets_never_appear_in_responses_logs_or_metrics(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for case in REFUSALS.values():
        await case[0](harness)
    await harness.send(nonce="ok")

    async def boom(signal: Signal) -> SignalResult:
        raise RuntimeError("failed")

    harness.answer = boom
    await harness.send(nonce="boom")
    secrets = [KEY, ALERTS_KEY, KEY.hex().encode(), ALERTS_KEY.hex().encode()]
    exposed = [
        *(t.encode() for t in harness.texts),
        caplog.text.encode(),
        prometheus_client.generate_latest(harness.registry),
    ]
    for secret in secrets:
        for text in exposed:
            assert secret not in text


# --------------------------------------------------------------------------- pure parts


def test_signature_matches_the_documented_recipe() -> None:
    body = signal_body()
    expected = sign(KEY, body, NOW)["X-Tradefleet-Signature"]
    assert compute_signature(KEY, str(NOW), body) == expected
    hex_digest = expected.removeprefix("sha256=")
    assert verify_signature(KEY, str(NOW), body, expected) == hex_digest
    assert verify_signature(KEY, str(NOW), body, "sha256=" + hex_digest.upper()) == hex_digest
    with pytest.raises(Refusal) as info:
        verify_signature(KEY, str(NOW), body + b" ", expected)
    assert info.value.status == 401 and KEY.decode() not in str(info.value)


def test_timestamp_window() -> None:
    assert check_timestamp_window("100", 400.0, 300) == 100
    with pytest.raises(Refusal) as info:
        check_timestamp_window("99", 400.0, 300)
    assert info.value.status == 410


def test_nonce_memory_expires_and_is_bounded() -> None:
    memory = NonceMemory(window_s=300, max_entries=3)
    memory.remember("k", "a", "sig-a", ts=1000, now=1000)
    assert memory.owner("k", "a", now=1300) == "sig-a"
    assert memory.owner("other-key", "a", now=1300) is None
    assert memory.owner("k", "a", now=1302) is None and len(memory) == 0
    for nonce in "abc":
        memory.remember("k", nonce, "sig-" + nonce, ts=2000, now=2000)
    assert not memory.has_room(now=2000)
    assert memory.has_room(now=2302)


def test_rate_limiter_refills_evenly() -> None:
    limiter = RateLimiter(rate_per_minute=60)
    assert all(limiter.take("k", 0.0) == 0.0 for _ in range(60))
    assert limiter.take("k", 0.0) == pytest.approx(1.0)
    assert limiter.take("k", 0.5) == pytest.approx(0.5)
    assert limiter.take("k", 1.0) == 0.0
    assert limiter.take("other", 1.0) == 0.0


def test_source_filter_and_client_address() -> None:
    sources = SourceFilter(["10.0.0.0/8", "192.168.1.7", "2001:db8::/32"])
    allowed = ["10.9.9.9", "192.168.1.7", "2001:db8::1", "::ffff:10.0.0.1", "[2001:db8::2]:443"]
    for text in allowed:
        assert sources.allows(client_address(text, [], trust_forwarded_for=False)), text
    for text in ["192.168.1.8", "11.0.0.1", "::1", "junk"]:
        assert not sources.allows(client_address(text, [], trust_forwarded_for=False)), text
    assert not sources.allows(None)
    assert SourceFilter([]).allows(None)
    xff = ["10.0.0.5:5555, 1.2.3.4", "9.9.9.9"]
    assert str(client_address("127.0.0.1", xff, trust_forwarded_for=True)) == "10.0.0.5"
    assert str(client_address("127.0.0.1", xff, trust_forwarded_for=False)) == "127.0.0.1"
    with pytest.raises(ValueError, match="not-a-cidr"):
        WebhookConfig(keys_dir=Path("."), allow_from=["not-a-cidr"])
    with pytest.raises(ValueError):
        WebhookConfig(keys_dir=Path("."), rate_per_minute=0)


# --------------------------------------------------------------------------- fuzzing

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

_fields = {
    "symbol": st.sampled_from(["EURUSD", "GBPUSD", "XAUUSD", "", "eurusd", 5, None]),
    "direction": st.sampled_from(["BUY", "SELL", "buy", "Sell", "HOLD", 1, None]),
    "price_levels": st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(
                st.floats(min_value=0.5, max_value=2.0),
                st.floats(),
                st.integers(-2, 3),
                st.text(max_size=4),
                st.none(),
            )
            for name in ("entry", "stop_loss", "take_profit", "current_price", "previous_high")
        },
    ),
    "volume": st.one_of(st.floats(min_value=-1, max_value=10), st.none(), st.text(max_size=3)),
    "timeframe": st.sampled_from(["M5", "H1", "", "5 min", 5]),
    "pattern_type": st.text(max_size=10),
    "metadata": st.one_of(
        st.fixed_dictionaries(
            {}, optional={"source": st.text(max_size=8), "confidence": st.floats(-1, 2)}
        ),
        _json_values,
    ),
}
_signal_like = st.fixed_dictionaries({}, optional={**_fields, "extra": _json_values})


@st.composite
def _nearly_valid(draw: st.DrawFn) -> dict[str, Any]:
    """Signals that are mostly valid: the right geometry, sometimes a wrong side or symbol."""
    direction = draw(st.sampled_from(["BUY", "SELL"]))
    entry = draw(st.floats(min_value=0.01, max_value=1e6))
    wrong_side = draw(st.integers(0, 4)) == 0
    risk = draw(st.floats(min_value=0.001, max_value=0.5)) * entry
    reward = draw(st.floats(min_value=0.001, max_value=1.0)) * entry
    if wrong_side:
        risk = -risk
    sign_ = 1 if direction == "BUY" else -1
    body: dict[str, Any] = {
        "symbol": draw(st.sampled_from([*SYMBOLS, "XAUUSD"])),
        "direction": direction,
        "price_levels": {
            "entry": entry,
            "stop_loss": entry - sign_ * risk,
            "take_profit": entry + sign_ * reward,
        },
    }
    if draw(st.booleans()):
        body["volume"] = draw(st.floats(min_value=0.001, max_value=100))
    if draw(st.booleans()):
        body["metadata"] = {"confidence": draw(st.floats(0, 1)), "source": "fuzz"}
    return body


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def _is_valid(body: bytes) -> bool:
    try:
        parsed = parse_signal_body(body)
    except Refusal:
        return False
    return parsed.symbol in SYMBOLS


@FUZZ
@given(
    body=st.binary(max_size=300)
    | _json_values.map(_encode)
    | _signal_like.map(_encode)
    | _nearly_valid().map(_encode)
)
def test_parse_signal_body_only_ever_refuses_with_400(body: bytes) -> None:
    try:
        parsed = parse_signal_body(body)
    except Refusal as refusal:
        assert refusal.status == 400 and refusal.outcome == "malformed"
        assert refusal.reason
    else:
        assert isinstance(parsed, SignalBody)
        levels = parsed.price_levels
        if parsed.direction == "BUY":
            assert levels.stop_loss < levels.entry < levels.take_profit
        else:
            assert levels.take_profit < levels.entry < levels.stop_loss


_header_names = st.sampled_from(
    [
        "X-Tradefleet-Key-Id",
        "X-Tradefleet-Timestamp",
        "X-Tradefleet-Signature",
        "X-Tradefleet-Nonce",
        "X-Forwarded-For",
        "Content-Type",
        "X-Other",
    ]
)
_header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("é€\t"),
    max_size=80,
) | st.sampled_from(
    ["default", "alerts", str(NOW), "sha256=" + "0" * 64, "sha256=", "-1", "9" * 30]
)


def _check_outcome(h: Harness, reply: Reply, submitted_before: int) -> None:
    assert 400 <= reply.status < 500 or reply.status == 202, (reply.status, reply.body)
    if reply.status == 202:
        assert len(h.submitted) == submitted_before + 1
    else:
        assert len(h.submitted) == submitted_before
        assert reply.body.get("accepted") is False or reply.status in (404, 405)
        if "outcome" in reply.body:
            assert reply.body["outcome"] in OUTCOMES


@pytest.fixture
async def fuzz_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(tmp_path, rate_per_minute=1_000_000) as h:
        yield h


@FUZZ
@given(
    body=st.binary(max_size=200) | _signal_like.map(_encode),
    headers=st.dictionaries(_header_names, _header_values, max_size=6),
)
async def test_fuzzed_unsigned_requests_are_refused_with_4xx(
    fuzz_harness: Harness, body: bytes, headers: dict[str, str]
) -> None:
    h = fuzz_harness
    before = len(h.submitted)
    reply = await h.post(body, headers)
    assert reply.status != 202 or _is_valid(body)
    _check_outcome(h, reply, before)


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=200),
        _json_values.map(_encode),
        _signal_like.map(_encode),
        _nearly_valid().map(_encode),
        _nearly_valid().map(_encode),
    ),
    key_id=st.sampled_from([None, "default", "alerts"]),
    skew=st.integers(-330, 330),
    nonce=st.none() | _header_values,
)
async def test_fuzzed_validly_signed_requests_reach_submit_only_when_valid(
    fuzz_harness: Harness, body: bytes, key_id: str | None, skew: int, nonce: str | None
) -> None:
    h = fuzz_harness
    key = ALERTS_KEY if key_id == "alerts" else KEY
    before = len(h.submitted)
    reply = await h.send(body, key=key, key_id=key_id, ts=NOW + skew, nonce=nonce)
    _check_outcome(h, reply, before)
    event(f"status {reply.status}")
    if reply.status == 202:
        assert _is_valid(body) and abs(skew) <= 300
        assert h.submitted[-1].signal_id == reply.body["signal_id"]
    elif _is_valid(body) and abs(skew) <= 300 and reply.status not in (409, 400):
        pytest.fail(f"a valid signal was refused: {reply.body}")


@FUZZ
@given(
    headers=st.dictionaries(_header_names, _header_values, max_size=6),
    body=st.sampled_from([signal_body(), signal_body(symbol="GBPUSD"), b"{}"]),
)
async def test_fuzzed_headers_around_a_valid_signature(
    fuzz_harness: Harness, headers: dict[str, str], body: bytes
) -> None:
    h = fuzz_harness
    signed = sign(KEY, body, NOW, nonce=hashlib.sha256(repr(headers).encode()).hexdigest())
    before = len(h.submitted)
    reply = await h.post(body, {**signed, **headers})
    _check_outcome(h, reply, before)


async def test_counter_labels_stay_within_the_outcome_set(fuzz_harness: Harness) -> None:
    h = fuzz_harness
    for case in REFUSALS.values():
        await case[0](h)
    await h.post(b"\x00" * 10, {"X-Tradefleet-Key-Id": "\u00e9t\u00e9"})
    labels = {
        sample.labels["outcome"]
        for metric in h.registry.collect()
        for sample in metric.samples
        if "outcome" in sample.labels
    }
    assert labels == set(OUTCOMES)  # every outcome exists (at zero) and nothing else
    assert {
        sample.labels["bot"]
        for metric in h.registry.collect()
        for sample in metric.samples
        if "bot" in sample.labels
    } == {BOT}
