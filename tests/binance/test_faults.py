"""Every fault is reproducible by name, and ccxt raises what it raises for the real venue.

Expected exception classes come from ccxt's own error handling, not from the fake:
``binance.handle_errors`` raises DDoSProtection for HTTP 418/429, the exchange's
``exceptions`` map turns ``-1021`` into InvalidNonce, and ccxt's base
``httpExceptions`` turns 5xx into ExchangeNotAvailable; timeouts raise
RequestTimeout and broken connections NetworkError (see ccxt ``base/exchange.py``
``fetch``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import ccxt
import pytest

from tests.venues.binance.faults import FAULTS
from tests.venues.binance.server import FakeBinance
from tests.venues.venue_checks import COMMON_FAULT_NAMES, check_unknown_fault_name_is_refused

from .helpers import MODE_IDS, MODES, PERP, SPOT, call, client, order_path

modes = pytest.mark.parametrize(("futures", "async_"), MODES, ids=MODE_IDS)


def test_fault_names_are_stable() -> None:
    """The names later broker tests use to reproduce each fault."""
    assert set(FAULTS) == COMMON_FAULT_NAMES | {"ip_ban", "funding_unavailable"}


def test_unknown_fault_name_is_refused(fake_binance: FakeBinance) -> None:
    check_unknown_fault_name_is_refused(fake_binance)


@modes
async def test_accept_then_timeout_creates_exactly_one_order(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """The order is created but the response never arrives: ccxt raises RequestTimeout.
    Binance docs ("General API information"): a timeout or 5XX means the execution status
    is UNKNOWN and could have been a success — so the client looks the order up by
    origClientOrderId ("Query order"), and a resubmission with the same newClientOrderId
    is refused as a duplicate of an open order (spot -2010 "Duplicate order sent.",
    USDⓈ-M -4116 "ClientOrderId is duplicated.")."""
    sym = PERP if futures else SPOT
    kind = "usdm" if futures else "spot"
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_, timeout_ms=400) as ex:
        await call(ex.load_markets)
        fake_binance.faults.inject("accept_then_timeout", path=order_path(futures), method="POST")
        with pytest.raises(ccxt.RequestTimeout):
            await call(
                ex.create_order, sym, "limit", "buy", 0.01, 49_000, {"newClientOrderId": "att-1"}
            )
        orders = fake_binance.orders(kind)
        assert len(orders) == 1 and orders[0].client_order_id == "att-1"
        found = await call(ex.fetch_order, None, sym, {"origClientOrderId": "att-1"})
        assert found["status"] == "open" and found["clientOrderId"] == "att-1"
        with pytest.raises(ccxt.InvalidOrder) as err:
            await call(
                ex.create_order, sym, "limit", "buy", 0.01, 49_000, {"newClientOrderId": "att-1"}
            )
        expected = "ClientOrderId is duplicated." if futures else "Duplicate order sent."
        assert expected in str(err.value)
        assert len(fake_binance.orders(kind)) == 1  # no double submit


@modes
async def test_timeout_without_execution(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """``timeout`` hangs before executing: RequestTimeout and no order exists."""
    sym = PERP if futures else SPOT
    async with client(fake_binance, futures, async_, timeout_ms=400) as ex:
        await call(ex.load_markets)
        fake_binance.faults.inject("timeout", path=order_path(futures))
        with pytest.raises(ccxt.RequestTimeout):
            await call(ex.create_order, sym, "limit", "buy", 0.01, 49_000)
        assert fake_binance.orders("usdm" if futures else "spot") == []


@modes
async def test_rate_limit_429_and_ip_ban_418(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """Binance "LIMITS": HTTP 429 when a request rate limit is broken, 418 for an IP
    auto-banned after continuing to send requests after 429s; body code -1003
    TOO_MANY_REQUESTS; ``Retry-After`` header. ccxt binance.handle_errors raises
    DDoSProtection for 418/429 (RateLimitExceeded is its subclass)."""
    sym = PERP if futures else SPOT
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        fake_binance.faults.inject("rate_limit", path=order_path(futures))
        with pytest.raises(ccxt.DDoSProtection, match="-1003"):
            await call(ex.create_order, sym, "market", "buy", 0.01)
        fake_binance.faults.inject("ip_ban", path=order_path(futures))
        with pytest.raises(ccxt.DDoSProtection, match="IP banned until"):
            await call(ex.create_order, sym, "market", "buy", 0.01)
        assert fake_binance.orders("usdm" if futures else "spot") == []


def test_rate_limit_headers_on_the_wire(fake_binance: FakeBinance) -> None:
    """429 / 418 carry ``Retry-After`` and ``{"code":-1003,...}`` (Binance "LIMITS")."""
    fake_binance.faults.inject("rate_limit", path="/api/v3/time", retry_after=7)
    fake_binance.faults.inject("ip_ban", path="/api/v3/time", retry_after=120)
    for status, retry in ((429, "7"), (418, "120")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(fake_binance.url + "/api/v3/time", timeout=5)
        assert err.value.code == status
        assert err.value.headers["Retry-After"] == retry
        assert json.loads(err.value.read())["code"] == -1003
    with urllib.request.urlopen(fake_binance.url + "/api/v3/time", timeout=5) as ok:
        assert "serverTime" in json.loads(ok.read())


@modes
async def test_5xx_burst_then_recovery(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """N consecutive 500/502/503: ccxt maps them (httpExceptions) to ExchangeNotAvailable;
    the request after the burst succeeds."""
    sym = PERP if futures else SPOT
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        for status in (500, 502, 503):
            fake_binance.faults.inject("server_error", path=order_path(futures), status=status)
        for _ in range(3):
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await call(ex.create_order, sym, "market", "buy", 0.01)
        fake_binance.faults.inject("server_error", status=503, times=2)
        for _ in range(2):
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await call(ex.fetch_ticker, sym)
        assert (await call(ex.create_order, sym, "market", "buy", 0.01))["status"] == "closed"
        fake_binance.faults.inject("server_error", status=503, json_code=-1001)
        with pytest.raises(ccxt.OperationFailed, match="-1001"):
            await call(ex.fetch_ticker, sym)


@modes
async def test_partial_fill(fake_binance: FakeBinance, futures: bool, async_: bool) -> None:
    """An order that fills only a fraction is PARTIALLY_FILLED (ccxt status 'open',
    filled < amount); the remainder fills as the price path moves on."""
    sym = PERP if futures else SPOT
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        fake_binance.faults.inject("partial_fill", path=order_path(futures), fraction=0.4)
        order = await call(
            ex.create_order, sym, "limit", "buy", 0.01, 50_100, {"newClientOrderId": "pf-1"}
        )
        assert order["status"] == "open"
        assert order["filled"] == pytest.approx(0.004)
        assert order["remaining"] == pytest.approx(0.006)
        info = await call(ex.fetch_order, order["id"], sym)
        assert info["info"]["status"] == "PARTIALLY_FILLED"
        assert [o["id"] for o in await call(ex.fetch_open_orders, sym)] == [order["id"]]
        fake_binance.set_price("BTCUSDT", 50_050)
        done = await call(ex.fetch_order, order["id"], sym)
        assert done["status"] == "closed" and done["filled"] == pytest.approx(0.01)
        trades = await call(ex.fetch_my_trades, sym)
        assert [t["amount"] for t in trades] == pytest.approx([0.004, 0.006])


@modes
async def test_reject_with_real_codes(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """``reject`` answers with any Binance code/message; ccxt maps it with its exceptions
    table: -2010 "Account has insufficient balance..." -> InsufficientFunds,
    -1013 "Filter failure: LOT_SIZE" -> InvalidOrder, -1121 -> BadSymbol, -1015 ->
    RateLimitExceeded."""
    sym = PERP if futures else SPOT
    path = order_path(futures)
    cases: list[tuple[int, str, type[Exception]]] = [
        (-2010, "Account has insufficient balance for requested action.", ccxt.InsufficientFunds),
        (-1013, "Filter failure: LOT_SIZE", ccxt.InvalidOrder),
        (-1121, "Invalid symbol.", ccxt.BadSymbol),
        (
            -1015,
            "Too many new orders; current limit is 100 orders per 10 SECOND.",
            ccxt.RateLimitExceeded,
        ),
    ]
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        for code, msg, exc in cases:
            fake_binance.faults.inject("reject", path=path, code=code, msg=msg)
            with pytest.raises(exc):
                await call(ex.create_order, sym, "market", "buy", 0.01)
        assert fake_binance.orders("usdm" if futures else "spot") == []


@modes
async def test_dropped_connections(fake_binance: FakeBinance, futures: bool, async_: bool) -> None:
    """A socket closed mid-request is a NetworkError in ccxt (ExchangeNotAvailable is a
    subclass raised by the async client). ``accept_then_drop`` executes first, so the order
    exists and can be found by client order id."""
    sym = PERP if futures else SPOT
    kind = "usdm" if futures else "spot"
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        fake_binance.faults.inject("drop_connection", path=order_path(futures))
        with pytest.raises(ccxt.NetworkError):
            await call(ex.create_order, sym, "limit", "buy", 0.01, 49_000)
        assert fake_binance.orders(kind) == []
        fake_binance.faults.inject("accept_then_drop", path=order_path(futures))
        with pytest.raises(ccxt.NetworkError):
            await call(
                ex.create_order, sym, "limit", "buy", 0.01, 49_000, {"newClientOrderId": "drop-2"}
            )
        assert len(fake_binance.orders(kind)) == 1
        found = await call(ex.fetch_order, None, sym, {"origClientOrderId": "drop-2"})
        assert found["status"] == "open"


@modes
async def test_clock_skew_gives_invalid_nonce(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """Binance "Timing security": reject unless timestamp < serverTime + 1000 and
    serverTime - timestamp <= recvWindow; -1021 INVALID_TIMESTAMP, mapped by ccxt to
    InvalidNonce. Server behind the client -> "1000ms ahead"; ahead -> "outside of the
    recvWindow"."""
    sym = PERP if futures else SPOT
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        fake_binance.faults.inject("clock_skew", offset_ms=-20_000)
        with pytest.raises(ccxt.InvalidNonce, match="1000ms ahead of the server's time"):
            await call(ex.fetch_balance)
        fake_binance.faults.inject("clock_skew", offset_ms=20_000, times=2)
        with pytest.raises(ccxt.InvalidNonce, match="outside of the recvWindow"):
            await call(ex.fetch_open_orders, sym)
        server_time = await call(ex.fetch_time)
        assert server_time - ex.milliseconds() > 15_000  # public endpoints see the skew too
        assert (await call(ex.fetch_balance))["USDT"]["total"] > 0


@modes
async def test_latency_is_added(fake_binance: FakeBinance, futures: bool, async_: bool) -> None:
    """``latency`` only delays; a delay longer than the client timeout is a RequestTimeout."""
    sym = PERP if futures else SPOT
    async with client(fake_binance, futures, async_, timeout_ms=400) as ex:
        await call(ex.load_markets)
        fake_binance.faults.inject("latency", delay_ms=50)
        assert (await call(ex.fetch_ticker, sym))["last"] > 0
        fake_binance.faults.inject("latency", delay_ms=800)
        with pytest.raises(ccxt.RequestTimeout):
            await call(ex.fetch_ticker, sym)


def test_faults_filter_by_path_method_and_times(fake_binance: FakeBinance) -> None:
    """A fault only hits requests matching its path/method, ``times`` times, FIFO."""
    f = fake_binance.faults.inject("rate_limit", path="/api/v3/order", method="DELETE", times=2)
    assert fake_binance.faults.take("POST", "/api/v3/order") is None
    assert fake_binance.faults.take("DELETE", "/api/v3/time") is None
    assert fake_binance.faults.take("DELETE", "/api/v3/order") is f
    assert fake_binance.faults.take("DELETE", "/api/v3/order") is f
    assert fake_binance.faults.take("DELETE", "/api/v3/order") is None
    forever = fake_binance.faults.inject("latency", times=None, delay_ms=0)
    for _ in range(5):
        assert fake_binance.faults.take("GET", "/x") is forever
    fake_binance.faults.clear()
    assert fake_binance.faults.pending() == []
