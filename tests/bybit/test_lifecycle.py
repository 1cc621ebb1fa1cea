"""Start/stop hygiene, the standalone command, and "nothing reaches the internet"."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import ccxt
import pytest

from tests.venues.bybit.fixtures import UnexpectedHost, make_ccxt_bybit
from tests.venues.bybit.server import FakeBybit

from .helpers import ASYNC_MODES, MODE_IDS, PERP, call, client

ROOT = Path(__file__).resolve().parents[2]
_seen_ports: list[int] = []


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _fake_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "fake-bybit"]


def test_fixture_serves_on_ephemeral_localhost_port(fake_bybit: FakeBybit) -> None:
    assert fake_bybit.host == "127.0.0.1" and fake_bybit.port > 0
    with urllib.request.urlopen(fake_bybit.url + "/v5/market/time", timeout=5) as resp:
        body = json.loads(resp.read())
    assert body["retCode"] == 0 and set(body["result"]) == {"timeSecond", "timeNano"}
    _seen_ports.append(fake_bybit.port)


def test_fixture_left_nothing_behind() -> None:
    """Runs after the previous test: its fixture has been torn down."""
    assert _seen_ports, "run together with the previous test"
    assert not _port_open(_seen_ports[-1])
    assert _fake_threads() == []


def test_context_manager_and_hanging_request_shutdown() -> None:
    """Stopping while a request hangs (accept_then_timeout) still closes port and thread."""
    fake = FakeBybit()
    with fake:
        port = fake.port
        fake.faults.inject("accept_then_timeout", path="/v5/market/time", hold_s=60)
        ex = make_ccxt_bybit(fake, timeout_ms=300)
        with pytest.raises(ccxt.RequestTimeout):
            ex.fetch_time()
        fake.faults.inject("timeout", path="/v5/market/time", hold_s=60)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /v5/market/time HTTP/1.1\r\nHost: x\r\n\r\n")  # left hanging
    sock.close()
    assert not _port_open(port)
    assert _fake_threads() == []


def test_restart_on_a_fixed_port_and_port_in_use() -> None:
    first = FakeBybit().start()
    port = first.port
    try:
        with pytest.raises(RuntimeError, match="failed to start"):
            FakeBybit(port=port).start()
    finally:
        first.stop()
    again = FakeBybit(port=port).start()
    try:
        assert again.port == port and _port_open(port)
    finally:
        again.stop()
    assert not _port_open(port)
    assert _fake_threads() == []


def test_standalone_command(tmp_path: Path) -> None:
    """``python -m tests.venues.bybit --port 0 --data CSV`` serves until SIGINT."""
    csv = tmp_path / "ohlcv.csv"
    csv.write_text(
        "timestamp,open,high,low,close,volume\n"
        "1699999980000,100,110,90,105,1\n"
        "1700000040000,105,106,100,101,2\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.venues.bybit", "--port", "0", "--data", str(csv)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("fake bybit listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        query = "/v5/market/kline?category=linear&symbol=BTCUSDT&interval=1&start=1699999980000"
        with urllib.request.urlopen(url + query, timeout=5) as resp:
            rows = json.loads(resp.read())["result"]["list"]
        assert [r[4] for r in rows[-2:]] == ["101", "105"]  # newest first
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _port_open(int(url.rsplit(":", 1)[1]))


@pytest.mark.parametrize("async_", ASYNC_MODES, ids=MODE_IDS)
async def test_every_ccxt_api_url_points_at_the_fake(fake_bybit: FakeBybit, async_: bool) -> None:
    """All ``urls['api']`` entries are on 127.0.0.1 and any other host is refused
    before I/O; unknown endpoints are recorded and raised as plain ExchangeError."""
    async with client(fake_bybit, async_) as ex:
        for name, url in ex.urls["api"].items():
            assert url.startswith(fake_bybit.url), (name, url)
        await call(ex.load_markets)
        await call(ex.fetch_balance)
        assert fake_bybit.unhandled == []
        with pytest.raises(UnexpectedHost):
            await call(ex.fetch, "https://api.bybit.com/v5/market/time")
        with pytest.raises(ccxt.ExchangeError, match="does not implement"):
            await call(ex.publicGetV5MarketOrderbook, {"category": "linear", "symbol": "BTCUSDT"})
        assert [r.path for r in fake_bybit.unhandled] == ["/v5/market/orderbook"]


def test_async_client_in_own_loop(fake_bybit: FakeBybit) -> None:
    async def run() -> float:
        ex = make_ccxt_bybit(fake_bybit, async_=True)
        try:
            return float((await ex.fetch_ticker(PERP))["last"])
        finally:
            await ex.close()

    assert asyncio.run(run()) == 50_000
