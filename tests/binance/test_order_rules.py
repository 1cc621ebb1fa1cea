"""Order validation pinned to Binance's documented behaviour, seen through the real ccxt.

Amounts and prices rounded by ccxt's own ``amount_to_precision`` /
``price_to_precision`` are accepted; unrounded ones sent straight to the endpoint
(ccxt's implicit API, as a buggy caller would) are refused with the venue's
filter-failure codes, and ccxt raises the class it raises for the real venue.
"""

from __future__ import annotations

import ccxt
import pytest

from tests.venues.binance.server import FakeBinance

from .helpers import MODE_IDS, MODES, PERP, SPOT, call, client

modes = pytest.mark.parametrize(("futures", "async_"), MODES, ids=MODE_IDS)
sync_modes = pytest.mark.parametrize("futures", [False, True], ids=["spot", "usdm"])


@modes
async def test_ccxt_rounded_amounts_are_accepted(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """ccxt's createOrder truncates the amount to LOT_SIZE.stepSize and rounds the price to
    PRICE_FILTER.tickSize (market precision from exchangeInfo), so the venue accepts it."""
    sym = PERP if futures else SPOT
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        amount, price = 0.0123456789, 49_876.54321
        rounded_amount = ex.amount_to_precision(sym, amount)
        rounded_price = ex.price_to_precision(sym, price)
        assert (rounded_amount, rounded_price) == (
            ("0.012", "49876.5") if futures else ("0.01234", "49876.54")
        )
        order = await call(ex.create_order, sym, "limit", "buy", amount, price)
        assert order["amount"] == float(rounded_amount)
        assert order["price"] == float(rounded_price)
        sent = fake_binance.order_requests("usdm" if futures else "spot")[-1].params
        assert sent["quantity"] == rounded_amount and sent["price"] == rounded_price


def _raw_order(ex: ccxt.Exchange, futures: bool, quantity: str, price: str) -> object:
    """Send an order bypassing ccxt's rounding (implicit API)."""
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": quantity,
        "price": price,
    }
    if futures:
        return ex.fapiPrivatePostOrder(params)
    return ex.privatePostOrder(params)


def test_spot_unrounded_amount_and_price_are_refused(fake_binance: FakeBinance) -> None:
    """Spot "Filters": LOT_SIZE (quantity % stepSize == 0, minQty/maxQty), PRICE_FILTER
    (price % tickSize == 0), NOTIONAL (price * quantity >= minNotional); failures are
    -1013 "Filter failure: <FILTER>". ccxt's binance.handle_errors raises InvalidOrder for
    bodies mentioning LOT_SIZE / PRICE_FILTER; NOTIONAL falls to the -1013 -> BadRequest
    entry of its exceptions map."""
    fake_binance.set_price("BTCUSDT", 50_000)
    with pytest.raises(ccxt.InvalidOrder, match="Filter failure: LOT_SIZE"):
        _raw_order(_spot(fake_binance), False, "0.000015", "49000")
    with pytest.raises(ccxt.InvalidOrder, match="Filter failure: LOT_SIZE"):
        _raw_order(_spot(fake_binance), False, "0.000001", "49000")  # below minQty
    with pytest.raises(ccxt.InvalidOrder, match="Filter failure: PRICE_FILTER"):
        _raw_order(_spot(fake_binance), False, "0.001", "49000.005")
    with pytest.raises(ccxt.BadRequest, match="Filter failure: NOTIONAL"):
        _raw_order(_spot(fake_binance), False, "0.00001", "49000")  # 0.49 USDT < 5
    assert fake_binance.orders("spot") == []
    ok = _raw_order(_spot(fake_binance), False, "0.0002", "49000.01")
    assert isinstance(ok, dict) and ok["status"] == "NEW"


def _spot(fake: FakeBinance) -> ccxt.Exchange:
    from tests.venues.binance.fixtures import make_ccxt_binance

    ex = make_ccxt_binance(fake)
    ex.load_markets()
    return ex


def test_futures_unrounded_amount_and_price_are_refused(binance_usdm: ccxt.Exchange) -> None:
    """USDⓈ-M error codes: -1111 "Precision is over the maximum defined for this asset."
    (more decimals than quantityPrecision/pricePrecision), -4014 "Price not increased by tick
    size.", -4004 "Quantity less than min quantity.", -4164 "Order's notional must be no
    smaller than 100 (unless you choose reduce only)." ccxt maps -1111/-4014/-4004 to
    BadRequest (generic exact map) and -4164 to InvalidOrder (linear map)."""
    ex = binance_usdm
    ex.load_markets()
    with pytest.raises(ccxt.BadRequest, match="-1111"):
        _raw_order(ex, True, "0.0015", "49000")
    with pytest.raises(ccxt.BadRequest, match="-1111"):
        _raw_order(ex, True, "0.002", "49000.123")
    with pytest.raises(ccxt.BadRequest, match="Price not increased by tick size"):
        _raw_order(ex, True, "0.002", "49000.15")
    with pytest.raises(ccxt.InvalidOrder, match="-4164"):
        ex.create_order(PERP, "limit", "buy", 0.001, 49_000)  # 49 USDT < 100
    assert ex.create_order(PERP, "limit", "buy", 0.003, 49_000)["status"] == "open"


@modes
async def test_insufficient_balance(fake_binance: FakeBinance, futures: bool, async_: bool) -> None:
    """Spot: -2010 "Account has insufficient balance for requested action." (ccxt exact
    message map -> InsufficientFunds); USDⓈ-M: -2019 "Margin is insufficient." (linear map
    -> InsufficientFunds)."""
    sym = PERP if futures else SPOT
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        amount = 100 if futures else 3  # 5M USDT at 20x, or 150k USDT spot
        with pytest.raises(ccxt.InsufficientFunds):
            await call(ex.create_order, sym, "market", "buy", amount)
        if not futures:
            with pytest.raises(ccxt.InsufficientFunds):
                await call(ex.create_order, sym, "limit", "sell", 2, 60_000)  # holds 1 BTC
        assert fake_binance.orders("usdm" if futures else "spot") == []


@modes
async def test_duplicate_open_client_order_id(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """newClientOrderId is "A unique id among open orders": a duplicate of an open order is
    refused (spot -2010 "Duplicate order sent." -> InvalidOrder; USDⓈ-M -4116
    "ClientOrderId is duplicated." -> InvalidOrder via ccxt's linear map). Once the order
    is no longer open the id may be reused."""
    sym = PERP if futures else SPOT
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        first = await call(
            ex.create_order, sym, "limit", "buy", 0.01, 45_000, {"newClientOrderId": "dup-1"}
        )
        with pytest.raises(ccxt.InvalidOrder) as err:
            await call(
                ex.create_order, sym, "limit", "buy", 0.01, 45_000, {"newClientOrderId": "dup-1"}
            )
        assert ("-4116" if futures else "-2010") in str(err.value)
        await call(ex.cancel_order, first["id"], sym)
        again = await call(
            ex.create_order, sym, "limit", "buy", 0.01, 45_000, {"newClientOrderId": "dup-1"}
        )
        assert again["id"] != first["id"]
        latest = await call(ex.fetch_order, None, sym, {"origClientOrderId": "dup-1"})
        assert latest["id"] == again["id"]  # lookup by client id returns the newest


@modes
async def test_unknown_orders(fake_binance: FakeBinance, futures: bool, async_: bool) -> None:
    """Query of a missing order: -2013 "Order does not exist."; cancel: -2011 "Unknown order
    sent." — ccxt maps both to OrderNotFound. Cancelling a filled order is also -2011."""
    sym = PERP if futures else SPOT
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        with pytest.raises(ccxt.OrderNotFound, match="Order does not exist"):
            await call(ex.fetch_order, "123", sym)
        with pytest.raises(ccxt.OrderNotFound, match="Order does not exist"):
            await call(ex.fetch_order, None, sym, {"origClientOrderId": "nope"})
        with pytest.raises(ccxt.OrderNotFound, match="Unknown order sent"):
            await call(ex.cancel_order, "123", sym)
        filled = await call(ex.create_order, sym, "market", "buy", 0.01)
        with pytest.raises(ccxt.OrderNotFound, match="Unknown order sent"):
            await call(ex.cancel_order, filled["id"], sym)


@sync_modes
def test_bad_symbol(fake_binance: FakeBinance, futures: bool) -> None:
    """-1121 "Invalid symbol." -> BadSymbol."""
    from tests.venues.binance.fixtures import make_ccxt_binance

    ex = make_ccxt_binance(fake_binance, futures=futures)
    with pytest.raises(ccxt.BadSymbol):
        if futures:
            ex.fapiPublicGetTicker24hr({"symbol": "NOPEUSDT"})
        else:
            ex.publicGetTicker24hr({"symbol": "NOPEUSDT"})


def test_futures_leverage_and_margin_type_rules(binance_usdm: ccxt.Exchange) -> None:
    """USDⓈ-M: -4028 "Leverage 200 is not valid" (ccxt BadRequest); changing margin type with
    an open position: -4048 "Margin type cannot be changed if there exists position."; with
    open orders -4047 (ccxt OperationRejected for both, generic map)."""
    ex = binance_usdm
    ex.load_markets()
    with pytest.raises(ccxt.BadRequest):  # ccxt itself checks 1..125 first
        ex.set_leverage(200, PERP)
    with pytest.raises(ccxt.BadRequest, match="Leverage 200 is not valid"):
        ex.fapiPrivatePostLeverage({"symbol": "BTCUSDT", "leverage": 200})
    order = ex.create_order(PERP, "limit", "buy", 0.01, 45_000)
    with pytest.raises(ccxt.ExchangeError, match="-4047"):
        ex.set_margin_mode("isolated", PERP)
    ex.cancel_order(order["id"], PERP)
    ex.create_order(PERP, "market", "buy", 0.01)
    with pytest.raises(ccxt.ExchangeError, match="-4048"):
        ex.set_margin_mode("isolated", PERP)


def test_reduce_only_rejected_without_position(binance_usdm: ccxt.Exchange) -> None:
    """-2022 "ReduceOnly Order is rejected." when there is nothing to reduce."""
    ex = binance_usdm
    ex.load_markets()
    with pytest.raises(ccxt.ExchangeError, match="-2022"):
        ex.create_order(PERP, "market", "sell", 0.01, None, {"reduceOnly": True})


def test_spot_limit_maker_that_would_take_is_rejected(binance_spot: ccxt.Exchange) -> None:
    """LIMIT_MAKER orders "are rejected if they would immediately match and trade as a taker"
    (-2010 "Order would immediately match and take."); ccxt sends LIMIT_MAKER for postOnly."""
    ex = binance_spot
    ex.load_markets()
    with pytest.raises(ccxt.InvalidOrder, match="Order would immediately match and take"):
        ex.create_order(SPOT, "limit", "buy", 0.01, 51_000, {"postOnly": True})
    assert ex.create_order(SPOT, "limit", "buy", 0.01, 49_000, {"postOnly": True})["id"]


def test_spot_max_num_orders(fake_binance: FakeBinance) -> None:
    """MAX_NUM_ORDERS (200 on BTCUSDT): the next resting order fails with
    -1013 "Filter failure: MAX_NUM_ORDERS"."""
    from tests.venues.binance.fixtures import make_ccxt_binance

    fake_binance.state.spot.symbols["BTCUSDT"].max_num_orders = 3
    ex = make_ccxt_binance(fake_binance)
    ex.load_markets()
    for _ in range(3):
        ex.create_order(SPOT, "limit", "buy", 0.001, 40_000)
    with pytest.raises(ccxt.BadRequest, match="MAX_NUM_ORDERS"):
        ex.create_order(SPOT, "limit", "buy", 0.001, 40_000)


def test_spot_market_buy_by_quote_quantity(binance_spot: ccxt.Exchange) -> None:
    """MARKET with quoteOrderQty: "the quantity ... will be calculated based on the market
    liquidity and quoteOrderQty"; ccxt sends it when given ``params={'cost': ...}``."""
    ex = binance_spot
    ex.load_markets()
    order = ex.create_order(SPOT, "market", "buy", None, None, {"cost": 1000})
    assert order["filled"] == pytest.approx(0.02)
    assert order["cost"] == pytest.approx(1000)
