"""Start/stop hygiene, the standalone command, and "nothing reaches the internet"."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from tests.venues import venue_checks as checks
from tests.venues.binance.fixtures import make_ccxt_binance
from tests.venues.binance.server import FakeBinance

from .helpers import MODE_IDS, MODES, client

_seen_ports: list[int] = []


def test_fixture_serves_on_ephemeral_localhost_port(fake_binance: FakeBinance) -> None:
    assert checks.get_from_fixture(fake_binance, "/api/v3/ping", _seen_ports) == {}


def test_fixture_left_nothing_behind() -> None:
    """Runs after the previous test: its fixture has been torn down."""
    checks.check_left_nothing_behind(_seen_ports, "binance")


def test_context_manager_and_hanging_request_shutdown() -> None:
    """Stopping while a request hangs (accept_then_timeout) still closes port and thread."""
    checks.check_hanging_request_shutdown(
        FakeBinance(), make_ccxt_binance, "/api/v3/time", "binance"
    )


def test_restart_on_a_fixed_port() -> None:
    first = FakeBinance().start()
    port = first.port
    first.stop()
    checks.check_restart_on(FakeBinance, port, "binance")


def test_port_in_use_is_reported() -> None:
    checks.check_port_in_use_is_reported(FakeBinance, "binance")


def test_standalone_command(tmp_path: Path) -> None:
    """``python -m tests.venues.binance --port 0 --data CSV`` serves until SIGINT."""
    csv = (
        "timestamp,open,high,low,close,volume\n"
        "1700000000000,100,110,90,105,1\n"
        "1700000060000,105,106,100,101,2\n"
    )
    query = "/api/v3/klines?symbol=ETHUSDT&interval=1m"
    rows = checks.get_from_standalone(tmp_path, "binance", csv, query, "--symbol", "ETHUSDT")
    assert [r[4] for r in rows] == ["105.00000000", "101.00000000"]


@pytest.mark.parametrize(("futures", "async_"), MODES, ids=MODE_IDS)
async def test_every_ccxt_api_url_points_at_the_fake(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """No ccxt request can reach the internet: all ``urls['api']`` entries are on 127.0.0.1,
    and the guarded ``fetch`` refuses any other host before doing I/O."""
    async with client(fake_binance, futures, async_) as ex:
        elsewhere = "https://api.binance.com/api/v3/time"
        await checks.check_urls_point_at_the_fake(
            ex, fake_binance, fake_binance.url + "/", elsewhere
        )


def test_async_client_in_own_loop(fake_binance: FakeBinance) -> None:
    """The fake's loop is separate: an async client in a fresh asyncio.run works too."""
    make = partial(make_ccxt_binance, fake_binance, async_=True)
    assert checks.last_price_in_own_loop(make, "BTC/USDT") == 50_000
