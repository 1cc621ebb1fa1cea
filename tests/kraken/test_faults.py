"""Every fault is reproducible by name, and ccxt raises what it raises for the real venue.

Expected classes come from ccxt's own handling, not from the fake: ``kraken``'s
``describe()['exceptions']`` maps "EAPI:Rate limit exceeded" -> DDoSProtection (a
sibling of RateLimitExceeded, not a subclass), "EAPI:Invalid nonce" -> InvalidNonce,
"EAPI:Invalid key" -> AuthenticationError, "EService:Unavailable" ->
ExchangeNotAvailable; "EAPI:Invalid signature" is not in the map (plain ExchangeError);
ccxt's base ``httpExceptions`` map 5xx -> ExchangeNotAvailable (504 -> RequestTimeout)
and 429 -> RateLimitExceeded; timeouts raise RequestTimeout and broken connections
NetworkError (ccxt ``base/exchange.py`` ``fetch``).
"""

from __future__ import annotations

import urllib.request
from decimal import Decimal

import ccxt
import pytest

from tests.venues import venue_checks as checks
from tests.venues.kraken.faults import FAULTS
from tests.venues.kraken.server import FakeKraken

from .helpers import ADD, ASYNC_MODES, BTC, MODE_IDS, call, client

modes = pytest.mark.parametrize("async_", ASYNC_MODES, ids=MODE_IDS)


def test_fault_names_are_stable() -> None:
    assert set(FAULTS) == checks.COMMON_FAULT_NAMES


def test_unknown_fault_name_is_refused(fake_kraken: FakeKraken) -> None:
    checks.check_unknown_fault_name_is_refused(fake_kraken)


@modes
async def test_accept_then_timeout_creates_exactly_one_order(
    fake_kraken: FakeKraken, async_: bool
) -> None:
    """Placed, but no answer: RequestTimeout; exactly one order on the venue, found by its
    cl_ord_id; while it is open a retry with the same id is refused as a duplicate."""
    async with client(fake_kraken, async_, timeout_ms=400) as ex:
        await call(ex.load_markets)
        fake_kraken.faults.inject("accept_then_timeout", path=ADD)
        with pytest.raises(ccxt.RequestTimeout):
            await call(
                ex.create_order, BTC, "limit", "buy", 0.01, 49_000, {"clientOrderId": "att-1"}
            )
        orders = fake_kraken.orders()
        assert len(orders) == 1 and orders[0].cl_ord_id == "att-1"
        found = await call(ex.fetch_open_orders, BTC, None, None, {"clientOrderId": "att-1"})
        assert [o["id"] for o in found] == [orders[0].txid]
        with pytest.raises(ccxt.ExchangeError, match="Duplicate order"):
            await call(
                ex.create_order, BTC, "limit", "buy", 0.01, 49_000, {"clientOrderId": "att-1"}
            )
        assert len(fake_kraken.orders()) == 1


@modes
async def test_accept_then_timeout_on_a_filled_market_order_is_no_duplicate(
    fake_kraken: FakeKraken, async_: bool
) -> None:
    """The Kraken trap: the lost order filled at once, so its cl_ord_id is free again and a
    blind retry places a SECOND order. Look it up in the closed orders first."""
    async with client(fake_kraken, async_, timeout_ms=400) as ex:
        await call(ex.load_markets)
        fake_kraken.faults.inject("accept_then_timeout", path=ADD)
        with pytest.raises(ccxt.RequestTimeout):
            await call(ex.create_order, BTC, "market", "buy", 0.01, None, {"clientOrderId": "m"})
        lost = await call(ex.fetch_closed_orders, BTC, None, None, {"clientOrderId": "m"})
        assert [o["status"] for o in lost] == ["closed"]
        await call(ex.create_order, BTC, "market", "buy", 0.01, None, {"clientOrderId": "m"})
        assert len(fake_kraken.orders()) == 2
        assert fake_kraken.balance("XXBT") == Decimal("1.02")


@modes
async def test_timeout_executes_nothing(fake_kraken: FakeKraken, async_: bool) -> None:
    async with client(fake_kraken, async_, timeout_ms=400) as ex:
        await call(ex.load_markets)
        await checks.check_timeout_executes_nothing(ex, fake_kraken, ADD, BTC)


@modes
async def test_rate_limit(fake_kraken: FakeKraken, async_: bool) -> None:
    """Kraken's rate-limit answers are JSON errors with HTTP 200, which ccxt raises as
    DDoSProtection; a 429 from the edge is RateLimitExceeded. Neither executes."""
    async with client(fake_kraken, async_) as ex:
        await call(ex.load_markets)
        fake_kraken.faults.inject("rate_limit", path=ADD)
        with pytest.raises(ccxt.DDoSProtection, match="EAPI:Rate limit exceeded") as err:
            await call(ex.create_order, BTC, "market", "buy", 0.01)
        assert not isinstance(err.value, ccxt.RateLimitExceeded)
        fake_kraken.faults.inject("rate_limit", path=ADD, error="EOrder:Rate limit exceeded")
        with pytest.raises(ccxt.DDoSProtection, match="EOrder:Rate limit exceeded"):
            await call(ex.create_order, BTC, "market", "buy", 0.01)
        fake_kraken.faults.inject("rate_limit", status=429)
        with pytest.raises(ccxt.RateLimitExceeded):
            await call(ex.fetch_balance)
        assert fake_kraken.orders() == []


@modes
async def test_server_error_burst(fake_kraken: FakeKraken, async_: bool) -> None:
    async with client(fake_kraken, async_) as ex:
        await call(ex.load_markets)
        await checks.check_server_error_burst(ex, fake_kraken, BTC)
        fake_kraken.faults.inject("server_error", status=520)
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await call(ex.fetch_ticker, BTC)
        fake_kraken.faults.inject("server_error", status=504)
        with pytest.raises(ccxt.RequestTimeout):
            await call(ex.fetch_ticker, BTC)
        fake_kraken.faults.inject("server_error", error="EService:Unavailable", path=ADD)
        with pytest.raises(ccxt.ExchangeNotAvailable, match="EService:Unavailable"):
            await call(ex.create_order, BTC, "market", "buy", 0.01)
        assert fake_kraken.orders() == []


@modes
async def test_partial_fill(fake_kraken: FakeKraken, async_: bool) -> None:
    """A limit fills 40 % now and rests; a market order fills 40 % now and the rest at the
    next price (or when the test calls fill_partials())."""
    async with client(fake_kraken, async_) as ex:
        fake_kraken.faults.inject("partial_fill", fraction=0.4)
        o = await call(ex.create_order, BTC, "limit", "buy", 0.01, 50_000, {"clientOrderId": "pf"})
        got = await call(ex.fetch_order, o["id"], BTC)
        assert (got["status"], got["filled"], got["remaining"]) == ("open", 0.004, 0.006)
        fake_kraken.set_price("XBTUSD", 49_990)  # crosses the limit: the rest fills at 50,000
        done = await call(ex.fetch_order, o["id"], BTC)
        assert (done["status"], done["filled"], done["average"]) == ("closed", 0.01, 50_000)
        assert len(done["trades"]) == 2
        fake_kraken.faults.inject("partial_fill", fraction=0.4)
        m = await call(ex.create_order, BTC, "market", "sell", 0.01)
        got = await call(ex.fetch_order, m["id"], BTC)
        assert (got["status"], got["filled"]) == ("open", 0.004)
        assert len(fake_kraken.fill_partials()) == 1
        done = await call(ex.fetch_order, m["id"], BTC)
        assert (done["status"], done["filled"]) == ("closed", 0.01)


@modes
async def test_reject_with_real_strings(fake_kraken: FakeKraken, async_: bool) -> None:
    cases = [
        ("EOrder:Insufficient funds", ccxt.InsufficientFunds),
        ("EGeneral:Invalid arguments", ccxt.BadRequest),
        ("EOrder:Order minimum not met", ccxt.InvalidOrder),
        ("EGeneral:Invalid arguments:volume", ccxt.InvalidOrder),
        ("EAPI:Invalid key", ccxt.AuthenticationError),
        ("EGeneral:Permission denied", ccxt.PermissionDenied),
        ("EService:Market in cancel_only mode", ccxt.OnMaintenance),
        ("EGeneral:Temporary lockout", ccxt.DDoSProtection),
        ("EOrder:Cost minimum not met", ccxt.ExchangeError),
    ]
    async with client(fake_kraken, async_) as ex:
        await call(ex.load_markets)
        for error, klass in cases:
            fake_kraken.faults.inject("reject", path=ADD, error=error)
            with pytest.raises(klass) as err:
                await call(ex.create_order, BTC, "market", "buy", 0.01)
            assert error in str(err.value)
        assert fake_kraken.orders() == []


@modes
async def test_drop_connection_and_accept_then_drop(fake_kraken: FakeKraken, async_: bool) -> None:
    async with client(fake_kraken, async_) as ex:
        await call(ex.load_markets)
        await checks.check_drop_connection_and_accept_then_drop(
            ex, fake_kraken, ADD, BTC, lambda o: o.cl_ord_id, "clientOrderId"
        )


@modes
async def test_latency(fake_kraken: FakeKraken, async_: bool) -> None:
    async with client(fake_kraken, async_, timeout_ms=300) as ex:
        await call(ex.load_markets)
        await checks.check_latency(ex, fake_kraken, BTC)


@modes
async def test_clock_skew_moves_time_and_refuses_nothing(
    fake_kraken: FakeKraken, async_: bool
) -> None:
    """Kraken's nonce is a counter, not a timestamp: a skewed clock shows in Time only."""
    async with client(fake_kraken, async_) as ex:
        await call(ex.load_markets)
        fake_kraken.faults.inject("clock_skew", offset_ms=120_000, times=None)
        server = await call(ex.fetch_time)
        assert server - fake_kraken.state.now > 100_000
        assert (await call(ex.fetch_balance))["USD"]["total"] == 100_000
        await call(ex.create_order, BTC, "market", "buy", 0.01)
        fake_kraken.faults.clear()
        assert abs(await call(ex.fetch_time) - fake_kraken.state.now) < 2_000


@modes
async def test_bad_key_and_signature(fake_kraken: FakeKraken, async_: bool) -> None:
    """API-Sign is checked exactly: a wrong secret -> "EAPI:Invalid signature" (plain
    ExchangeError in ccxt), an unknown key -> "EAPI:Invalid key" (AuthenticationError)."""
    wrong = "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyBzZWNyZXQ="
    async with client(fake_kraken, async_, secret=wrong) as ex:
        with pytest.raises(ccxt.ExchangeError, match="EAPI:Invalid signature") as err:
            await call(ex.privatePostBalanceEx)
        assert type(err.value) is ccxt.ExchangeError
    async with client(fake_kraken, async_, api_key="nobody") as ex:
        with pytest.raises(ccxt.AuthenticationError, match="EAPI:Invalid key"):
            await call(ex.privatePostBalanceEx)
    async with client(fake_kraken, async_) as ex:
        assert (await call(ex.privatePostBalanceEx))["error"] == []


@modes
async def test_nonce_must_increase_per_key(fake_kraken: FakeKraken, async_: bool) -> None:
    """Two clients on one key: once one has sent a nonce ahead of the other's clock, the
    other's requests are refused ("EAPI:Invalid nonce" -> InvalidNonce) until its nonce
    passes it; a replayed request is refused the same way."""
    async with client(fake_kraken, async_) as ahead, client(fake_kraken, async_) as behind:
        ahead.options["timeDifference"] = -60_000  # ccxt's nonce() = now - timeDifference
        await call(ahead.privatePostBalanceEx)
        with pytest.raises(ccxt.InvalidNonce):
            await call(behind.privatePostBalanceEx)
        behind.options["timeDifference"] = -120_000
        await call(behind.privatePostBalanceEx)
    ex = ccxt.kraken({"apiKey": fake_kraken.api_key, "secret": fake_kraken.secret})
    signed = ex.sign("BalanceEx", ["private"], "POST", {})  # a fresh client: nonce = now

    def post() -> bytes:
        req = urllib.request.Request(
            fake_kraken.url + "/0/private/BalanceEx",
            data=signed["body"].encode(),
            headers=signed["headers"],
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            body: bytes = resp.read()
            return body

    assert b'"error":["EAPI:Invalid nonce"]' in post()  # behind the nonce the others sent
    fake_kraken.nonces.last.clear()  # as if the key were new
    assert post().startswith(b'{"error":[],')
    assert b'"error":["EAPI:Invalid nonce"]' in post()  # the same request replayed
