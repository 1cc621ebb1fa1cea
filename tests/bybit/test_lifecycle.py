"""Start/stop hygiene, the standalone command, and "nothing reaches the internet"."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import ccxt
import pytest

from tests.venues import venue_checks as checks
from tests.venues.bybit.fixtures import make_ccxt_bybit
from tests.venues.bybit.server import FakeBybit

from .helpers import ASYNC_MODES, MODE_IDS, PERP, call, client

_seen_ports: list[int] = []


def test_fixture_serves_on_ephemeral_localhost_port(fake_bybit: FakeBybit) -> None:
    body = checks.get_from_fixture(fake_bybit, "/v5/market/time", _seen_ports)
    assert body["retCode"] == 0 and set(body["result"]) == {"timeSecond", "timeNano"}


def test_fixture_left_nothing_behind() -> None:
    """Runs after the previous test: its fixture has been torn down."""
    checks.check_left_nothing_behind(_seen_ports, "bybit")


def test_context_manager_and_hanging_request_shutdown() -> None:
    """Stopping while a request hangs (accept_then_timeout) still closes port and thread."""
    checks.check_hanging_request_shutdown(FakeBybit(), make_ccxt_bybit, "/v5/market/time", "bybit")


def test_restart_on_a_fixed_port_and_port_in_use() -> None:
    port = checks.check_port_in_use_is_reported(FakeBybit, "bybit")
    checks.check_restart_on(FakeBybit, port, "bybit")


def test_standalone_command(tmp_path: Path) -> None:
    """``python -m tests.venues.bybit --port 0 --data CSV`` serves until SIGINT."""
    csv = (
        "timestamp,open,high,low,close,volume\n"
        "1699999980000,100,110,90,105,1\n"
        "1700000040000,105,106,100,101,2\n"
    )
    query = "/v5/market/kline?category=linear&symbol=BTCUSDT&interval=1&start=1699999980000"
    rows = checks.get_from_standalone(tmp_path, "bybit", csv, query)["result"]["list"]
    assert [r[4] for r in rows[-2:]] == ["101", "105"]  # newest first


@pytest.mark.parametrize("async_", ASYNC_MODES, ids=MODE_IDS)
async def test_every_ccxt_api_url_points_at_the_fake(fake_bybit: FakeBybit, async_: bool) -> None:
    """All ``urls['api']`` entries are on 127.0.0.1 and any other host is refused
    before I/O; unknown endpoints are recorded and raised as plain ExchangeError."""
    async with client(fake_bybit, async_) as ex:
        elsewhere = "https://api.bybit.com/v5/market/time"
        await checks.check_urls_point_at_the_fake(ex, fake_bybit, fake_bybit.url, elsewhere)
        with pytest.raises(ccxt.ExchangeError, match="does not implement"):
            await call(ex.publicGetV5MarketOrderbook, {"category": "linear", "symbol": "BTCUSDT"})
        assert [r.path for r in fake_bybit.unhandled] == ["/v5/market/orderbook"]


def test_async_client_in_own_loop(fake_bybit: FakeBybit) -> None:
    make = partial(make_ccxt_bybit, fake_bybit, async_=True)
    assert checks.last_price_in_own_loop(make, PERP) == 50_000
