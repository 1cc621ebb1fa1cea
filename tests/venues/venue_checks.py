"""Test helpers and checks every fake venue's own tests share (``tests/<venue>/``).

Each venue's tests keep their own test functions (and so their names and counts); where a
check is the same on every venue, the test calls it here with the venue's paths, classes and
clients, and asserts what is its own (wire shapes, error strings) itself.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import ccxt
import pytest

from tests.venues.ccxt_wiring import UnexpectedHost

ROOT = Path(__file__).resolve().parents[2]

ASYNC_MODES = [False, True]
MODE_IDS = ["sync", "async"]

# The fault names later broker tests use to reproduce each fault on every venue (a venue
# may have more). Spelled out here, not taken from the fakes: a renamed fault must fail.
COMMON_FAULT_NAMES = {
    "accept_then_timeout",
    "timeout",
    "rate_limit",
    "server_error",
    "partial_fill",
    "reject",
    "drop_connection",
    "accept_then_drop",
    "clock_skew",
    "latency",
}


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a sync or async ccxt method and return its result."""
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


@asynccontextmanager
async def session(ex: Any, async_: bool) -> AsyncIterator[Any]:
    """The client ``ex``, closed afterwards when it is an async one."""
    try:
        yield ex
    finally:
        if async_:
            await ex.close()


def json_kind(value: Any, number_or_text: tuple[type, ...] = ()) -> str:
    """What a JSON value is, for comparing a response's shape with a recorded one: bool,
    dict, list, or its type's name; "number-or-text" for a value of the types in
    ``number_or_text`` (a key the recording stores as text and the venue sends as a
    number)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, list):
        return "list"
    if number_or_text and isinstance(value, number_or_text):
        return "number-or-text"
    return type(value).__name__


def check_unknown_fault_name_is_refused(fake: Any) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fake.faults.inject("meteor_strike")


async def check_timeout_executes_nothing(ex: Any, fake: Any, path: str, symbol: str) -> None:
    """``timeout`` on ``path`` holds the order request without executing it."""
    fake.faults.inject("timeout", path=path)
    with pytest.raises(ccxt.RequestTimeout):
        await call(ex.create_order, symbol, "market", "buy", 0.01)
    assert fake.orders() == []


async def check_server_error_burst(ex: Any, fake: Any, symbol: str) -> None:
    """Three 502s from the edge are ExchangeNotAvailable each; the next request succeeds."""
    fake.faults.inject("server_error", status=502, times=3)
    for _ in range(3):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await call(ex.fetch_ticker, symbol)
    assert (await call(ex.fetch_ticker, symbol))["last"] == 50_000


async def check_drop_connection_and_accept_then_drop(
    ex: Any, fake: Any, path: str, symbol: str, client_id: Callable[[Any], Any], lookup: str
) -> None:
    """``drop_connection`` executes nothing; ``accept_then_drop`` executes the order, which
    is then found closed by its client id (``client_id(order)`` on the fake, the ``lookup``
    param in ccxt)."""
    fake.faults.inject("drop_connection", path=path)
    with pytest.raises(ccxt.NetworkError):
        await call(ex.create_order, symbol, "market", "buy", 0.01, None, {"clientOrderId": "d1"})
    assert fake.orders() == []
    fake.faults.inject("accept_then_drop", path=path)
    with pytest.raises(ccxt.NetworkError):
        await call(ex.create_order, symbol, "market", "buy", 0.01, None, {"clientOrderId": "d2"})
    assert [client_id(o) for o in fake.orders()] == ["d2"]
    closed = await call(ex.fetch_closed_orders, symbol, None, None, {lookup: "d2"})
    assert closed[0]["status"] == "closed"


async def check_latency(ex: Any, fake: Any, symbol: str) -> None:
    """``latency`` delays the answer (150 ms); one longer than the client's timeout (set
    under 1 s) is a RequestTimeout."""
    fake.faults.inject("latency", delay_ms=150)
    t0 = time.perf_counter()
    await call(ex.fetch_ticker, symbol)
    assert time.perf_counter() - t0 >= 0.15
    fake.faults.inject("latency", delay_ms=1_000)
    with pytest.raises(ccxt.RequestTimeout):
        await call(ex.fetch_ticker, symbol)


# ---------------------------------------------------------------------------
# lifecycle: start/stop hygiene, the standalone command, no internet
# ---------------------------------------------------------------------------


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def fake_threads(venue: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"fake-{venue}"]


def get_from_fixture(fake: Any, path: str, seen_ports: list[int]) -> Any:
    """The fixture's fake serves on an ephemeral localhost port: GET ``path`` there (JSON);
    the port is noted for :func:`check_left_nothing_behind`."""
    assert fake.host == "127.0.0.1" and fake.port > 0
    assert port_open(fake.port)
    with urllib.request.urlopen(fake.url + path, timeout=5) as resp:
        body = json.loads(resp.read())
    seen_ports.append(fake.port)
    return body


def check_left_nothing_behind(seen_ports: list[int], venue: str) -> None:
    """After the test that called :func:`get_from_fixture`: its fixture has been torn down."""
    assert seen_ports, "run together with the previous test"
    assert not port_open(seen_ports[-1])
    assert fake_threads(venue) == []


def check_hanging_request_shutdown(
    fake: Any, make_ccxt: Callable[..., Any], path: str, venue: str
) -> None:
    """Stopping while a request hangs (accept_then_timeout) still closes port and thread."""
    with fake:
        port = fake.port
        fake.faults.inject("accept_then_timeout", path=path, hold_s=60)
        ex = make_ccxt(fake, timeout_ms=300)
        with pytest.raises(ccxt.RequestTimeout):
            ex.fetch_time()
        fake.faults.inject("timeout", path=path, hold_s=60)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())  # left hanging
    sock.close()
    assert not port_open(port)
    assert fake_threads(venue) == []


def check_port_in_use_is_reported(make_fake: Callable[..., Any], venue: str) -> int:
    """A second fake on a port in use fails to start; returns that port, free again."""
    first = make_fake().start()
    port: int = first.port
    try:
        with pytest.raises(RuntimeError, match="failed to start"):
            make_fake(port=port).start()
    finally:
        first.stop()
    assert fake_threads(venue) == []
    return port


def check_restart_on(make_fake: Callable[..., Any], port: int, venue: str) -> None:
    """A fake starts again on a fixed port another has just released, and releases it."""
    again = make_fake(port=port).start()
    try:
        assert again.port == port and port_open(port)
    finally:
        again.stop()
    assert not port_open(port)
    assert fake_threads(venue) == []


def get_from_standalone(tmp_path: Path, venue: str, csv: str, query: str, *args: str) -> Any:
    """``python -m tests.venues.<venue> --port 0 --data CSV [args]`` serves ``csv``'s candles
    until SIGINT: GET ``query`` from it (JSON), then stop it and see the port closed."""
    data = tmp_path / "ohlcv.csv"
    data.write_text(csv)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", f"tests.venues.{venue}", "--port", "0", "--data", str(data), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"fake {venue} listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        with urllib.request.urlopen(url + query, timeout=5) as resp:
            body = json.loads(resp.read())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not port_open(int(url.rsplit(":", 1)[1]))
    return body


async def check_urls_point_at_the_fake(ex: Any, fake: Any, prefix: str, elsewhere: str) -> None:
    """All ``urls['api']`` entries start with ``prefix`` (on the fake), markets and balance
    load without an unknown endpoint, and any other host (``elsewhere``) is refused before
    I/O."""
    for name, url in ex.urls["api"].items():
        assert url.startswith(prefix), (name, url)
    await call(ex.load_markets)
    await call(ex.fetch_balance)
    assert fake.unhandled == []
    with pytest.raises(UnexpectedHost):
        await call(ex.fetch, elsewhere)


def last_price_in_own_loop(make_async_client: Callable[[], Any], symbol: str) -> float:
    """The fake's loop is separate: an async client in a fresh asyncio.run works too."""

    async def run() -> float:
        ex = make_async_client()
        try:
            return float((await ex.fetch_ticker(symbol))["last"])
        finally:
            await ex.close()

    return asyncio.run(run())
