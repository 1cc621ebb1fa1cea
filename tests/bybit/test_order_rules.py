"""Order rules from instruments-info, enforced as Bybit does.

ccxt's ``bybit.create_order`` rounds the amount (``amount_to_precision``, truncating
to ``qtyStep``) and the price (``price_to_precision``, to ``tickSize``) itself, so
an unrounded value only reaches the venue through the raw endpoint
(``privatePostV5OrderCreate``): the fake refuses it with retCode 10001 (BadRequest).
Minimums: ``minOrderQty`` / ``maxOrderQty`` (10001), ``minNotionalValue`` (110094,
InvalidOrder), price band (110003, InvalidOrder), margin (110007, InsufficientFunds).
"""

from __future__ import annotations

from typing import Any

import ccxt
import pytest

from tests.venues.bybit.server import FakeBybit

from .helpers import ETH, PERP


@pytest.fixture
def ex(bybit: ccxt.bybit) -> ccxt.bybit:
    bybit.load_markets()
    return bybit


def raw(ex: ccxt.bybit, **params: Any) -> Any:
    req = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit"}
    return ex.privatePostV5OrderCreate({**req, **params})


def test_ccxt_precision_helpers_are_accepted(ex: ccxt.bybit, fake_bybit: FakeBybit) -> None:
    qty = ex.amount_to_precision(PERP, 0.0123456)
    price = ex.price_to_precision(PERP, 49_000.04)
    assert (qty, price) == ("0.012", "49000")
    ex.create_order(PERP, "limit", "buy", float(qty), float(price))
    o = fake_bybit.orders()[0]
    assert str(o.qty) == "0.012" and o.price == 49_000
    # create_order rounds by itself: 0.0129 -> 0.012 (truncated), 49,000.06 -> 49,000.1
    ex.create_order(PERP, "limit", "buy", 0.0129, 49_000.06)
    o = fake_bybit.orders()[1]
    assert str(o.qty) == "0.012" and str(o.price) == "49000.1"
    eth_qty = ex.amount_to_precision(ETH, 1.239)
    ex.create_order(ETH, "limit", "buy", float(eth_qty), 2_900.005)
    assert str(fake_bybit.orders()[2].qty) == "1.23"


@pytest.mark.parametrize(
    ("params", "klass", "code"),
    [
        ({"qty": "0.0123", "price": "49000"}, ccxt.BadRequest, 10001),  # not a qtyStep multiple
        ({"qty": "0.01", "price": "49000.05"}, ccxt.BadRequest, 10001),  # not a tickSize multiple
        ({"qty": "0.0005", "price": "49000"}, ccxt.BadRequest, 10001),  # below minOrderQty
        ({"qty": "1200", "price": "49000"}, ccxt.BadRequest, 10001),  # above maxOrderQty
        ({"qty": "0.001", "price": "4000"}, ccxt.InvalidOrder, 110094),  # below 5 USDT notional
        ({"qty": "0.01", "price": "0.01"}, ccxt.InvalidOrder, 110003),  # below minPrice
        ({"qty": "100", "price": "49000"}, ccxt.InsufficientFunds, 110007),  # margin
        ({"qty": "0.01", "price": "abc"}, ccxt.BadRequest, 10001),
    ],
)
def test_unrounded_or_out_of_bounds_is_refused(
    ex: ccxt.bybit, fake_bybit: FakeBybit, params: dict[str, str], klass: type, code: int
) -> None:
    with pytest.raises(klass) as err:
        raw(ex, **params)
    assert f'"retCode":{code}' in str(err.value)
    assert fake_bybit.orders() == []


def test_ccxt_refuses_below_precision_before_sending(ex: ccxt.bybit, fake_bybit: FakeBybit) -> None:
    """0.0004 BTC truncates to 0 at qtyStep 0.001: ccxt raises InvalidOrder itself."""
    before = len(fake_bybit.requests)
    with pytest.raises(ccxt.InvalidOrder):
        ex.create_order(PERP, "limit", "buy", 0.0004, 49_000)
    assert [r.path for r in fake_bybit.requests[before:]] == [
        "/v5/user/query-api",
        "/v5/account/info",
    ]


def test_market_qty_limit_and_unknown_symbol(ex: ccxt.bybit, fake_bybit: FakeBybit) -> None:
    with pytest.raises(ccxt.BadRequest):  # above maxMktOrderQty
        raw(ex, orderType="Market", qty="200")
    with pytest.raises(ccxt.BadSymbol):  # "Not supported symbols" (ccxt's broad map)
        raw(ex, symbol="DOGEUSDT", qty="1", price="1")


def test_duplicate_link_id_and_post_only(ex: ccxt.bybit, fake_bybit: FakeBybit) -> None:
    ex.create_order(PERP, "limit", "buy", 0.01, 49_000, {"clientOrderId": "dup"})
    ex.cancel_order(None, PERP, {"orderLinkId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match="110072"):  # unique even after cancel
        ex.create_order(PERP, "limit", "buy", 0.01, 49_000, {"clientOrderId": "dup"})
    o = ex.create_order(PERP, "limit", "buy", 0.01, 51_000, {"postOnly": True})
    got = ex.fetch_canceled_orders(PERP)
    assert o["id"] in {x["id"] for x in got}
    assert fake_bybit.state.orders[o["id"]].reject_reason == "EC_PostOnlyWillTakeLiquidity"
