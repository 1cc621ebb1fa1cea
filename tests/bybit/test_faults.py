"""Every fault is reproducible by name, and ccxt raises what it raises for the real venue.

Expected classes come from ccxt's own handling, not from the fake: ``bybit``'s
``describe()['exceptions']['exact']`` maps retCode 10006 -> RateLimitExceeded,
10002 -> InvalidNonce, 110007 -> InsufficientFunds, 110072 -> InvalidOrder; its
``httpExceptions`` maps HTTP 403 -> RateLimitExceeded; ccxt's base ``httpExceptions``
maps 5xx -> ExchangeNotAvailable; timeouts raise RequestTimeout and broken
connections NetworkError (ccxt ``base/exchange.py`` ``fetch``).
"""

from __future__ import annotations

import time

import ccxt
import pytest

from tests.venues import venue_checks as checks
from tests.venues.bybit.faults import FAULTS
from tests.venues.bybit.server import FakeBybit

from .helpers import ASYNC_MODES, CREATE, MODE_IDS, PERP, call, client

modes = pytest.mark.parametrize("async_", ASYNC_MODES, ids=MODE_IDS)


def test_fault_names_are_stable() -> None:
    assert set(FAULTS) == checks.COMMON_FAULT_NAMES | {"funding_unavailable"}


def test_unknown_fault_name_is_refused(fake_bybit: FakeBybit) -> None:
    checks.check_unknown_fault_name_is_refused(fake_bybit)


@modes
async def test_accept_then_timeout_creates_exactly_one_order(
    fake_bybit: FakeBybit, async_: bool
) -> None:
    """Created, but no answer: RequestTimeout; exactly one order on the venue; found by
    orderLinkId; a retry with the same orderLinkId is refused (110072 -> InvalidOrder)."""
    async with client(fake_bybit, async_, timeout_ms=400) as ex:
        await call(ex.load_markets)
        await call(ex.fetch_balance)  # the unified-account probe happens before the fault
        fake_bybit.faults.inject("accept_then_timeout", path=CREATE, method="POST")
        with pytest.raises(ccxt.RequestTimeout):
            await call(
                ex.create_order, PERP, "limit", "buy", 0.01, 49_000, {"clientOrderId": "att-1"}
            )
        orders = fake_bybit.orders()
        assert len(orders) == 1 and orders[0].link_id == "att-1"
        found = await call(ex.fetch_open_orders, PERP, None, None, {"orderLinkId": "att-1"})
        assert [o["clientOrderId"] for o in found] == ["att-1"]
        with pytest.raises(ccxt.InvalidOrder, match="OrderLinkedID is duplicate"):
            await call(
                ex.create_order, PERP, "limit", "buy", 0.01, 49_000, {"clientOrderId": "att-1"}
            )
        assert len(fake_bybit.orders()) == 1


@modes
async def test_timeout_executes_nothing(fake_bybit: FakeBybit, async_: bool) -> None:
    async with client(fake_bybit, async_, timeout_ms=400) as ex:
        await call(ex.load_markets)
        await call(ex.fetch_balance)
        await checks.check_timeout_executes_nothing(ex, fake_bybit, CREATE, PERP)


@modes
async def test_rate_limit_10006_and_ip_403(fake_bybit: FakeBybit, async_: bool) -> None:
    async with client(fake_bybit, async_) as ex:
        await call(ex.load_markets)
        await call(ex.fetch_balance)
        fake_bybit.faults.inject("rate_limit", path=CREATE, retry_after=2)
        with pytest.raises(ccxt.RateLimitExceeded, match="Too many visits"):
            await call(ex.create_order, PERP, "market", "buy", 0.01)
        headers = {k.lower(): v for k, v in ex.last_response_headers.items()}
        assert headers["x-bapi-limit-status"] == "0"
        assert int(headers["x-bapi-limit-reset-timestamp"]) > time.time() * 1000
        fake_bybit.faults.inject("rate_limit", status=403)
        with pytest.raises(ccxt.RateLimitExceeded):
            await call(ex.fetch_positions, [PERP])
        assert fake_bybit.orders() == []


@modes
async def test_server_error_burst(fake_bybit: FakeBybit, async_: bool) -> None:
    async with client(fake_bybit, async_) as ex:
        await call(ex.load_markets)
        await checks.check_server_error_burst(ex, fake_bybit, PERP)
        fake_bybit.faults.inject("server_error", status=200, json_code=10016)
        with pytest.raises(ccxt.ExchangeError):
            await call(ex.fetch_ticker, PERP)


@modes
async def test_partial_fill(fake_bybit: FakeBybit, async_: bool) -> None:
    async with client(fake_bybit, async_) as ex:
        fake_bybit.faults.inject("partial_fill", fraction=0.4)
        o = await call(ex.create_order, PERP, "limit", "buy", 0.01, 50_000, {"clientOrderId": "pf"})
        got = (await call(ex.fetch_open_orders, PERP, None, None, {"orderLinkId": "pf"}))[0]
        assert got["id"] == o["id"] and got["status"] == "open"
        assert got["filled"] == 0.004 and got["remaining"] == 0.006
        assert got["info"]["orderStatus"] == "PartiallyFilled"
        fake_bybit.set_price("BTCUSDT", 49_990)
        done = await call(ex.fetch_closed_orders, PERP)
        assert done[0]["filled"] == 0.01
        assert len(await call(ex.fetch_my_trades, PERP)) == 2


@modes
async def test_reject_with_real_codes(fake_bybit: FakeBybit, async_: bool) -> None:
    cases = [
        (110007, "ab not enough for new order", ccxt.InsufficientFunds),
        (10001, "params error", ccxt.BadRequest),
        (110072, "OrderLinkedID is duplicate", ccxt.InvalidOrder),
        (10003, "API key is invalid.", ccxt.AuthenticationError),
        (110001, "order not exists or too late to cancel", ccxt.OrderNotFound),
    ]
    async with client(fake_bybit, async_) as ex:
        await call(ex.load_markets)
        await call(ex.fetch_balance)
        for code, msg, klass in cases:
            fake_bybit.faults.inject("reject", path=CREATE, code=code, msg=msg)
            with pytest.raises(klass):
                await call(ex.create_order, PERP, "market", "buy", 0.01)
        assert fake_bybit.orders() == []


@modes
async def test_drop_connection_and_accept_then_drop(fake_bybit: FakeBybit, async_: bool) -> None:
    async with client(fake_bybit, async_) as ex:
        await call(ex.load_markets)
        await call(ex.fetch_balance)
        await checks.check_drop_connection_and_accept_then_drop(
            ex, fake_bybit, CREATE, PERP, lambda o: o.link_id, "orderLinkId"
        )


@modes
async def test_clock_skew_is_10002_invalid_nonce(fake_bybit: FakeBybit, async_: bool) -> None:
    async with client(fake_bybit, async_) as ex:
        await call(ex.load_markets)
        fake_bybit.faults.inject("clock_skew", offset_ms=30_000, times=None)
        with pytest.raises(ccxt.InvalidNonce, match="recv_window"):
            await call(ex.fetch_balance)
        fake_bybit.faults.clear()
        assert (await call(ex.fetch_balance))["USDT"]["total"] == 100_000


@modes
async def test_latency(fake_bybit: FakeBybit, async_: bool) -> None:
    async with client(fake_bybit, async_, timeout_ms=300) as ex:
        await call(ex.load_markets)
        await checks.check_latency(ex, fake_bybit, PERP)


@modes
async def test_bad_signature_key_and_timestamp(fake_bybit: FakeBybit, async_: bool) -> None:
    """X-BAPI-SIGN is checked exactly: wrong secret -> 10004, unknown key -> 10003 (both
    AuthenticationError); a stale timestamp -> 10002 InvalidNonce."""
    async with client(fake_bybit, async_, secret="wrong") as ex:
        with pytest.raises(ccxt.AuthenticationError, match="error sign"):
            await call(ex.fetch_positions, [PERP])
    async with client(fake_bybit, async_, api_key="nobody") as ex:
        with pytest.raises(ccxt.AuthenticationError, match="API key is invalid"):
            await call(ex.fetch_positions, [PERP])
    async with client(fake_bybit, async_) as ex:
        await call(ex.load_markets)
        ex.options["timeDifference"] = 20_000  # ccxt's nonce() = now - timeDifference
        with pytest.raises(ccxt.InvalidNonce):
            await call(ex.fetch_balance)
