"""Start/stop hygiene, the standalone command, replayed candles, and "nothing reaches
the internet"."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import ccxt
import pytest

from tests.venues import venue_checks as checks
from tests.venues.candle_replay import ReplayClock, ScriptCandle
from tests.venues.kraken.fixtures import make_ccxt_kraken, replay_apply
from tests.venues.kraken.server import FakeKraken

from .helpers import ASYNC_MODES, BTC, MODE_IDS, call, client

_seen_ports: list[int] = []


def test_fixture_serves_on_ephemeral_localhost_port(fake_kraken: FakeKraken) -> None:
    body = checks.get_from_fixture(fake_kraken, "/0/public/Time", _seen_ports)
    assert body["error"] == [] and set(body["result"]) == {"unixtime", "rfc1123"}


def test_fixture_left_nothing_behind() -> None:
    """Runs after the previous test: its fixture has been torn down."""
    checks.check_left_nothing_behind(_seen_ports, "kraken")


def test_context_manager_and_hanging_request_shutdown() -> None:
    """Stopping while a request hangs (accept_then_timeout) still closes port and thread."""
    checks.check_hanging_request_shutdown(
        FakeKraken(), make_ccxt_kraken, "/0/public/Time", "kraken"
    )


def test_restart_on_a_fixed_port_and_port_in_use() -> None:
    port = checks.check_port_in_use_is_reported(FakeKraken, "kraken")
    checks.check_restart_on(FakeKraken, port, "kraken")


def test_standalone_command(tmp_path: Path) -> None:
    """``python -m tests.venues.kraken --port 0 --data CSV`` serves until SIGINT."""
    csv = (
        "timestamp,open,high,low,close,volume\n"
        "1699999980000,100,110,90,105,1\n"
        "1700000040000,105,106,100,101,2\n"
    )
    query = "/0/public/OHLC?pair=XBTUSD&interval=1&since=1699999900"
    rows = checks.get_from_standalone(tmp_path, "kraken", csv, query)["result"]["XXBTZUSD"]
    assert [r[4] for r in rows[:2]] == ["105.0", "101.0"]  # oldest first


@pytest.mark.parametrize("async_", ASYNC_MODES, ids=MODE_IDS)
async def test_every_ccxt_api_url_points_at_the_fake(fake_kraken: FakeKraken, async_: bool) -> None:
    """All ``urls['api']`` entries are on 127.0.0.1 and any other host is refused before
    I/O; unknown endpoints are recorded and raised as a plain ExchangeError."""
    async with client(fake_kraken, async_) as ex:
        elsewhere = "https://api.kraken.com/0/public/Time"
        await checks.check_urls_point_at_the_fake(ex, fake_kraken, fake_kraken.url, elsewhere)
        with pytest.raises(ccxt.ExchangeError, match="does not serve") as err:
            await call(ex.privatePostOpenPositions)
        assert type(err.value) is ccxt.ExchangeError
        assert [r.path for r in fake_kraken.unhandled] == ["/0/private/OpenPositions"]


def test_async_client_in_own_loop(fake_kraken: FakeKraken) -> None:
    make = partial(make_ccxt_kraken, fake_kraken, async_=True)
    assert checks.last_price_in_own_loop(make, BTC) == 50_000


def test_shared_candle_replay_plays_on_the_fake(fake_kraken: FakeKraken) -> None:
    """tests/venues/candle_replay.ReplayClock drives the fake's clock: a candle shows
    while it forms, and closes with the script's values once the clock passes it."""
    start = 1_700_000_040_000
    script = [ScriptCandle("XXBTZUSD", start, 50_000, 50_300, 49_800, 50_100, 3.0)]
    clock = ReplayClock(fake_kraken.state.clock, replay_apply(fake_kraken), script, start_ms=start)
    ex = make_ccxt_kraken(fake_kraken)
    first = ex.fetch_ohlcv(BTC, "1m", start, 1)
    assert first == [[start, 50_000, 50_000, 50_000, 50_000, 1.0]]
    clock.sleep(60)
    (done,) = ex.fetch_ohlcv(BTC, "1m", start, 1)
    assert done == [start, 50_000, 50_300, 49_800, 50_100, 3.0]
    assert clock.remaining() == 0
