"""Order rules from AssetPairs and the account, enforced as Kraken does, and the ccxt
exception class each refusal raises (from ccxt's own ``describe()['exceptions']``).

ccxt's ``kraken.create_order`` rounds the volume (``amount_to_precision``, truncating to
``lot_decimals``) and the price (``price_to_precision``, to ``pair_decimals``) itself,
so an unrounded value only reaches the venue through the raw endpoint
(``privatePostAddOrder``).  Kraken's strings and ccxt's classes:

* "EOrder:Order minimum not met" (below ``ordermin``)     -> InvalidOrder
* "EGeneral:Invalid arguments:volume"                     -> InvalidOrder (broad)
* "EGeneral:Invalid arguments:price"                      -> InvalidOrder
* "EOrder:Cost minimum not met" (below ``costmin``)       -> ExchangeError (not mapped)
* "EOrder:Tick size check failed" (off ``tick_size``)     -> ExchangeError (not mapped)
* "EOrder:Insufficient funds" (free balance)              -> InsufficientFunds
* "EQuery:Unknown asset pair"                             -> ExchangeError (ccxt maps
  "EQuery:Invalid asset pair" to BadSymbol, not this string)
* "EGeneral:Invalid arguments"                            -> BadRequest
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from tests.venues.kraken import errors as E
from tests.venues.kraken.server import FakeKraken

from .helpers import BTC, ETH


@pytest.fixture
def ex(kraken: ccxt.kraken) -> ccxt.kraken:
    kraken.load_markets()
    return kraken


def raw(ex: ccxt.kraken, **params: Any) -> Any:
    req = {"pair": "XXBTZUSD", "type": "buy", "ordertype": "limit"}
    return ex.privatePostAddOrder({**req, **params})


def test_ccxt_precision_helpers_are_accepted(ex: ccxt.kraken, fake_kraken: FakeKraken) -> None:
    qty = ex.amount_to_precision(BTC, 0.0123456789)
    price = ex.price_to_precision(BTC, 49_000.04)
    assert (qty, price) == ("0.01234567", "49000")
    ex.create_order(BTC, "limit", "buy", float(qty), float(price))
    o = fake_kraken.orders()[0]
    assert str(o.vol) == "0.01234567" and o.price == 49_000
    ex.create_order(ETH, "limit", "buy", 0.123456789, 2_900.005)
    o = fake_kraken.orders()[1]
    assert str(o.vol) == "0.12345678" and str(o.price) in ("2900.01", "2900")


@pytest.mark.parametrize(
    ("params", "klass", "error"),
    [
        ({"volume": "0.00004", "price": "49000"}, ccxt.InvalidOrder, E.ORDER_MINIMUM),
        ({"volume": "0.000050001", "price": "49000"}, ccxt.InvalidOrder, E.INVALID_VOLUME),
        ({"volume": "abc", "price": "49000"}, ccxt.InvalidOrder, E.INVALID_VOLUME),
        ({"volume": "0.01"}, ccxt.InvalidOrder, E.INVALID_PRICE),
        ({"volume": "0.01", "price": "-5"}, ccxt.InvalidOrder, E.INVALID_PRICE),
        ({"volume": "0.01", "price": "49000.05"}, ccxt.ExchangeError, E.TICK_SIZE),
        ({"volume": "0.0001", "price": "1000"}, ccxt.ExchangeError, E.COST_MINIMUM),
        ({"volume": "10", "price": "49000"}, ccxt.InsufficientFunds, E.INSUFFICIENT_FUNDS),
        ({"volume": "1", "price": "1", "pair": "DOGEUSD"}, ccxt.ExchangeError, E.UNKNOWN_PAIR),
        ({"volume": "0.01", "price": "49000", "ordertype": "iceberg"}, ccxt.ExchangeError,
         E.INVALID_ORDERTYPE),
        ({"volume": "0.01", "price": "49000", "reduce_only": "true"}, ccxt.ExchangeError,
         E.NO_POSITION),
    ],
)  # fmt: skip
def test_refusals_and_their_ccxt_classes(
    ex: ccxt.kraken, fake_kraken: FakeKraken, params: dict[str, str], klass: type, error: str
) -> None:
    with pytest.raises(klass) as err:
        raw(ex, **params)
    assert f'"error":["{error}"]' in str(err.value)
    if klass is ccxt.ExchangeError:
        assert type(err.value) is ccxt.ExchangeError
    assert fake_kraken.orders() == []
    assert fake_kraken.requests[-1].status == 200  # refusals come with HTTP 200


def test_funds_are_the_free_balance(ex: ccxt.kraken, fake_kraken: FakeKraken) -> None:
    """Open orders hold funds (hold_trade): a sell of more BTC than is free is refused even
    though the total would cover it; so is a buy the held USD leaves no room for."""
    ex.create_order(BTC, "limit", "sell", 0.8, 60_000)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(BTC, "limit", "sell", 0.3, 61_000)
    ex.create_order(BTC, "limit", "sell", 0.2, 61_000)
    bal = ex.fetch_balance()
    assert (bal["BTC"]["used"], bal["BTC"]["free"]) == (1.0, 0.0)
    ex.create_order(BTC, "limit", "buy", 1.95, 49_000)  # 95,798 of 100,000 USD held
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(BTC, "market", "buy", 0.1)
    with pytest.raises(ccxt.InsufficientFunds):  # an amend that needs more is refused too
        ex.edit_order(fake_kraken.orders()[-1].txid, BTC, "limit", "buy", 2.1, None)
    assert fake_kraken.orders()[-1].vol == Decimal("1.95")
    ex.cancel_all_orders()
    assert ex.fetch_balance()["USD"]["used"] == 0
    ex.create_order(BTC, "market", "buy", 0.1)


def test_ccxt_refuses_below_precision_before_sending(
    ex: ccxt.kraken, fake_kraken: FakeKraken
) -> None:
    """0.000000004 BTC truncates to 0 at lot_decimals 8: ccxt raises InvalidOrder itself."""
    before = len(fake_kraken.requests)
    with pytest.raises(ccxt.InvalidOrder):
        ex.create_order(BTC, "limit", "buy", 0.000000004, 49_000)
    assert fake_kraken.requests[before:] == []


def test_validate_checks_without_placing(ex: ccxt.kraken, fake_kraken: FakeKraken) -> None:
    resp = raw(ex, volume="0.01", price="49000", validate="true")
    assert resp["result"] == {"descr": {"order": "buy 0.01000000 XBTUSD @ limit 49000.0"}}
    assert fake_kraken.orders() == []
    with pytest.raises(ccxt.InvalidOrder):
        raw(ex, volume="0.00001", price="49000", validate="true")


def test_post_only_and_ioc(ex: ccxt.kraken, fake_kraken: FakeKraken) -> None:
    """A post-only limit that would take is cancelled; an IOC limit that cannot fill too."""
    o = ex.create_order(BTC, "limit", "buy", 0.01, 51_000, {"postOnly": True})
    assert fake_kraken.requests[-1].params["oflags"] == "post"
    got = ex.fetch_order(o["id"], BTC)
    assert (got["status"], got["postOnly"], got["filled"]) == ("canceled", True, 0)
    assert got["info"]["reason"] == "Post only order"
    o = ex.create_order(BTC, "limit", "buy", 0.01, 49_000, {"timeInForce": "IOC"})
    assert ex.fetch_order(o["id"], BTC)["status"] == "canceled"
    o = ex.create_order(BTC, "limit", "buy", 0.01, 49_000, {"postOnly": True})
    assert ex.fetch_order(o["id"], BTC)["status"] == "open"


def test_query_orders_arguments(ex: ccxt.kraken, fake_kraken: FakeKraken) -> None:
    """QueryOrders needs well-formed txids ("EGeneral:Invalid arguments" -> BadRequest); a
    well-formed unknown one is left out, which ccxt's fetch_order turns into OrderNotFound."""
    with pytest.raises(ccxt.BadRequest):
        ex.privatePostQueryOrders({"txid": "None"})
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order("OAAAAA-BBBBB-CCCCCC", BTC)
    assert ex.privatePostQueryOrders({"txid": "OAAAAA-BBBBB-CCCCCC"})["result"] == {}
