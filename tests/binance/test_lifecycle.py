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

from tests.venues.binance.fixtures import UnexpectedHost, make_ccxt_binance
from tests.venues.binance.server import FakeBinance

from .helpers import MODE_IDS, MODES, call, client

ROOT = Path(__file__).resolve().parents[2]
_seen_ports: list[int] = []


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _fake_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "fake-binance"]


def test_fixture_serves_on_ephemeral_localhost_port(fake_binance: FakeBinance) -> None:
    assert fake_binance.host == "127.0.0.1" and fake_binance.port > 0
    assert _port_open(fake_binance.port)
    with urllib.request.urlopen(fake_binance.url + "/api/v3/ping", timeout=5) as resp:
        assert json.loads(resp.read()) == {}
    _seen_ports.append(fake_binance.port)


def test_fixture_left_nothing_behind() -> None:
    """Runs after the previous test: its fixture has been torn down."""
    assert _seen_ports, "run together with the previous test"
    assert not _port_open(_seen_ports[-1])
    assert _fake_threads() == []


def test_context_manager_and_hanging_request_shutdown() -> None:
    """Stopping while a request hangs (accept_then_timeout) still closes port and thread."""
    fake = FakeBinance()
    with fake:
        port = fake.port
        fake.faults.inject("accept_then_timeout", path="/api/v3/time", hold_s=60)
        ex = make_ccxt_binance(fake, timeout_ms=300)
        with pytest.raises(ccxt.RequestTimeout):
            ex.fetch_time()
        fake.faults.inject("timeout", path="/api/v3/time", hold_s=60)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /api/v3/time HTTP/1.1\r\nHost: x\r\n\r\n")  # left hanging
    sock.close()
    assert not _port_open(port)
    assert _fake_threads() == []


def test_restart_on_a_fixed_port() -> None:
    first = FakeBinance().start()
    port = first.port
    first.stop()
    again = FakeBinance(port=port).start()
    try:
        assert again.port == port and _port_open(port)
    finally:
        again.stop()
    assert not _port_open(port)


def test_port_in_use_is_reported() -> None:
    first = FakeBinance().start()
    try:
        with pytest.raises(RuntimeError, match="failed to start"):
            FakeBinance(port=first.port).start()
    finally:
        first.stop()
    assert _fake_threads() == []


def test_standalone_command(tmp_path: Path) -> None:
    """``python -m tests.venues.binance --port 0 --data CSV`` serves until SIGINT."""
    csv = tmp_path / "ohlcv.csv"
    csv.write_text(
        "timestamp,open,high,low,close,volume\n"
        "1700000000000,100,110,90,105,1\n"
        "1700000060000,105,106,100,101,2\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.venues.binance",
            "--port",
            "0",
            "--data",
            str(csv),
            "--symbol",
            "ETHUSDT",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("fake binance listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        query = "/api/v3/klines?symbol=ETHUSDT&interval=1m"
        with urllib.request.urlopen(url + query, timeout=5) as resp:
            rows = json.loads(resp.read())
        assert [r[4] for r in rows] == ["105.00000000", "101.00000000"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    port = int(url.rsplit(":", 1)[1])
    assert not _port_open(port)


@pytest.mark.parametrize(("futures", "async_"), MODES, ids=MODE_IDS)
async def test_every_ccxt_api_url_points_at_the_fake(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """No ccxt request can reach the internet: all ``urls['api']`` entries are on 127.0.0.1,
    and the guarded ``fetch`` refuses any other host before doing I/O."""
    async with client(fake_binance, futures, async_) as ex:
        for name, url in ex.urls["api"].items():
            assert url.startswith(fake_binance.url + "/"), (name, url)
        await call(ex.load_markets)
        await call(ex.fetch_balance)
        assert fake_binance.unhandled == []
        with pytest.raises(UnexpectedHost):
            await call(ex.fetch, "https://api.binance.com/api/v3/time")


def test_async_client_in_own_loop(fake_binance: FakeBinance) -> None:
    """The fake's loop is separate: an async client in a fresh asyncio.run works too."""

    async def run() -> float:
        ex = make_ccxt_binance(fake_binance, async_=True)
        try:
            return float((await ex.fetch_ticker("BTC/USDT"))["last"])
        finally:
            await ex.close()

    assert asyncio.run(run()) == 50_000
