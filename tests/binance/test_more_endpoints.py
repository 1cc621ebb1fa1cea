"""Further ccxt calls a broker plugin is likely to make, each pinned to the Binance doc."""

from __future__ import annotations

import ccxt
import pytest

from tests.venues.binance.server import FakeBinance

from .helpers import MODE_IDS, MODES, PERP, SPOT, call, client

modes = pytest.mark.parametrize(("futures", "async_"), MODES, ids=MODE_IDS)


@modes
async def test_order_book_tickers_and_cancel_all(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """GET depth ("Order book": bids/asks as [price, qty] strings), GET ticker/24hr without a
    symbol (all tickers), DELETE openOrders (spot) / allOpenOrders (USDⓈ-M)."""
    sym = PERP if futures else SPOT
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        book = await call(ex.fetch_order_book, sym, 5)
        assert book["bids"][0][0] == 50_000 and book["asks"][0][0] > 50_000
        assert len(book["bids"]) == 5
        tickers = await call(ex.fetch_tickers)
        assert tickers[sym]["last"] == 50_000
        for price in (45_000, 46_000):
            await call(ex.create_order, sym, "limit", "buy", 0.01, price)
        await call(ex.cancel_all_orders, sym)
        assert await call(ex.fetch_open_orders, sym) == []
        statuses = {o["status"] for o in await call(ex.fetch_orders, sym)}
        assert statuses == {"canceled"}
    assert fake_binance.unhandled == []


@modes
async def test_time_in_force(fake_binance: FakeBinance, futures: bool, async_: bool) -> None:
    """IOC that cannot fill now expires (status EXPIRED -> ccxt 'expired'); spot FOK likewise;
    USDⓈ-M FOK that cannot fill is -5021 and post-only (GTX) that would take is -5022
    (binanceusdm exceptions: InvalidOrder); spot LIMIT_MAKER is covered elsewhere."""
    sym = PERP if futures else SPOT
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        ioc = await call(ex.create_order, sym, "limit", "buy", 0.01, 49_000, {"timeInForce": "IOC"})
        assert ioc["status"] == "expired" and ioc["filled"] == 0
        taken = await call(
            ex.create_order, sym, "limit", "buy", 0.01, 51_000, {"timeInForce": "IOC"}
        )
        assert taken["status"] == "closed" and taken["average"] == 50_000
        if futures:
            with pytest.raises(ccxt.InvalidOrder, match="-5021"):
                await call(
                    ex.create_order, sym, "limit", "buy", 0.01, 49_000, {"timeInForce": "FOK"}
                )
            with pytest.raises(ccxt.InvalidOrder, match="-5022"):
                await call(ex.create_order, sym, "limit", "buy", 0.01, 51_000, {"postOnly": True})
            maker = await call(
                ex.create_order, sym, "limit", "buy", 0.01, 49_000, {"postOnly": True}
            )
            assert maker["status"] == "open"
        else:
            fok = await call(
                ex.create_order, sym, "limit", "buy", 0.01, 49_000, {"timeInForce": "FOK"}
            )
            assert fok["status"] == "expired"


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_order_test_endpoint_validates_without_placing(
    fake_binance: FakeBinance, async_: bool
) -> None:
    """POST /api/v3/order/test ("Test new order"): validated like a real order, nothing
    placed. ccxt uses it for spot ``params={'test': True}`` (it ignores ``test`` for
    USDⓈ-M, so /fapi/v1/order/test exists on the fake but ccxt never calls it)."""
    async with client(fake_binance, False, async_) as ex:
        await call(ex.load_markets)
        await call(ex.create_order, SPOT, "limit", "buy", 0.01, 49_000, {"test": True})
        assert fake_binance.orders("spot") == []
        with pytest.raises(ccxt.InsufficientFunds):
            await call(ex.create_order, SPOT, "market", "buy", 5, None, {"test": True})
        assert [r.path for r in fake_binance.requests if r.method == "POST"] == [
            "/api/v3/order/test",
            "/api/v3/order/test",
        ]


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
async def test_futures_settings_reads(fake_binance: FakeBinance, async_: bool) -> None:
    """GET symbolConfig (fetch_leverages / fetch_margin_mode), GET positionSide/dual
    (fetch_position_mode: one-way), GET premiumIndex (fetch_funding_rate), GET
    commissionRate (fetch_trading_fee)."""
    async with client(fake_binance, True, async_) as ex:
        await call(ex.load_markets)
        await call(ex.set_leverage, 7, PERP)
        leverages = await call(ex.fetch_leverages, [PERP])
        assert leverages[PERP]["longLeverage"] == 7
        mode = await call(ex.fetch_margin_mode, PERP)
        assert mode["marginMode"] == "cross"
        assert (await call(ex.fetch_position_mode, PERP))["hedged"] is False
        fake_binance.set_funding_rate("BTCUSDT", "0.0001")
        rate = await call(ex.fetch_funding_rate, PERP)
        assert rate["markPrice"] == 50_000 and rate["fundingRate"] == 0.0001
        fee = await call(ex.fetch_trading_fee, PERP)
        assert (fee["maker"], fee["taker"]) == (0.0002, 0.0005)
    assert fake_binance.unhandled == []


def test_hedge_mode_position_side_is_refused(binance_usdm: ccxt.Exchange) -> None:
    """The fake is one-way mode; positionSide LONG/SHORT -> -4061 "Order's position side does
    not match user's setting." (ccxt OperationRejected via the generic map)."""
    binance_usdm.load_markets()
    with pytest.raises(ccxt.ExchangeError, match="-4061"):
        binance_usdm.create_order(PERP, "market", "buy", 0.01, None, {"positionSide": "LONG"})


def test_used_weight_header_accumulates(fake_binance: FakeBinance) -> None:
    """Every response carries X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter) (Binance
    "LIMITS"), counting the weight used in the current minute."""
    import urllib.request

    seen = []
    for _ in range(3):
        with urllib.request.urlopen(fake_binance.url + "/api/v3/exchangeInfo", timeout=5) as r:
            seen.append(int(r.headers["x-mbx-used-weight-1m"]))
    assert seen[1] - seen[0] == seen[2] - seen[1] == 20


def test_fetch_open_order_and_status_and_spot_fee(
    binance_spot: ccxt.Exchange, binance_usdm: ccxt.Exchange
) -> None:
    """GET /fapi/v1/openOrder (fetch_open_order; a closed order -> -2013), GET
    /sapi/v1/system/status (fetch_status), GET /sapi/v1/asset/tradeFee (spot
    fetch_trading_fee)."""
    binance_usdm.load_markets()
    order = binance_usdm.create_order(PERP, "limit", "buy", 0.01, 45_000)
    assert binance_usdm.fetch_open_order(order["id"], PERP)["status"] == "open"
    binance_usdm.cancel_order(order["id"], PERP)
    with pytest.raises(ccxt.OrderNotFound):
        binance_usdm.fetch_open_order(order["id"], PERP)
    assert binance_spot.fetch_status()["status"] == "ok"
    binance_spot.load_markets()
    fee = binance_spot.fetch_trading_fee(SPOT)
    assert (fee["maker"], fee["taker"]) == (0.001, 0.001)


@modes
async def test_edit_order(fake_binance: FakeBinance, futures: bool, async_: bool) -> None:
    """edit_order: spot POST /api/v3/order/cancelReplace (new orderId; a failed cancel with
    STOP_ON_FAILURE is -2022 "Order cancel-replace failed." -> ccxt BadResponse via the spot
    map), USDⓈ-M PUT /fapi/v1/order "Modify Order" (same orderId; a closed order is -2013
    -> OrderNotFound)."""
    sym = PERP if futures else SPOT
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        first = await call(
            ex.create_order, sym, "limit", "buy", 0.01, 45_000, {"newClientOrderId": "ed-1"}
        )
        edited = await call(ex.edit_order, first["id"], sym, "limit", "buy", 0.02, 46_000)
        assert (edited["amount"], edited["price"], edited["status"]) == (0.02, 46_000, "open")
        assert (edited["id"] == first["id"]) is futures
        open_orders = await call(ex.fetch_open_orders, sym)
        assert [(o["id"], o["price"]) for o in open_orders] == [(edited["id"], 46_000)]
        taken = await call(ex.edit_order, edited["id"], sym, "limit", "buy", 0.02, 50_500)
        assert taken["status"] == "closed" and taken["average"] == 50_000
        expected = ccxt.OrderNotFound if futures else ccxt.BadResponse
        with pytest.raises(expected):
            await call(ex.edit_order, edited["id"], sym, "limit", "buy", 0.02, 45_000)
        assert fake_binance.unhandled == []


def test_unimplemented_endpoint_is_recorded(
    fake_binance: FakeBinance, binance_usdm: ccxt.Exchange
) -> None:
    """Endpoints the fake does not implement answer 404 and are listed in
    ``fake.unhandled`` so a test can tell "not implemented here" from a venue error."""
    binance_usdm.load_markets()
    with pytest.raises(ccxt.ExchangeError, match="fake binance does not implement") as err:
        binance_usdm.set_position_mode(True)
    assert not isinstance(err.value, ccxt.NetworkError)  # not mistaken for a retryable error
    assert [(r.method, r.path) for r in fake_binance.unhandled] == [
        ("POST", "/fapi/v1/positionSide/dual")
    ]
