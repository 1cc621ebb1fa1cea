"""Spot OCO order lists (POST /api/v3/orderList/oco and friends), driven by the real ccxt.

Binance "New Order list - OCO": a list has an above and a below order; a SELL list a
LIMIT_MAKER / TAKE_PROFIT(_LIMIT) above and a STOP_LOSS(_LIMIT) below (a BUY list the
mirror); "activation of one order immediately cancels the other"; "LIMIT_MAKER price > Last
Traded Price > stopPrice" (SELL) else -2010 "The relationship of the prices for the orders is
not correct."; "Canceling an individual order from an order list will cancel the entire order
list." ccxt has no unified OCO call: the raw ``privatePostOrderListOco`` etc. are used, the
unified calls for the legs (each an ordinary order with its ``orderListId``).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from tests.venues.binance.errors import BinanceError
from tests.venues.binance.fixtures import make_ccxt_binance
from tests.venues.binance.server import FakeBinance
from tests.venues.binance.state import Candle, _check_oco_types

from .helpers import SPOT, call, client

D = Decimal
LIST_PATH = "/api/v3/orderList/oco"
modes = pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])


def sell_list(**over: str) -> dict[str, str]:
    """A SELL list at last 50,000: take-profit LIMIT_MAKER 52,000 above, STOP_LOSS 48,000
    below, for 0.1 BTC."""
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "quantity": "0.1",
        "listClientOrderId": "list-1",
        "aboveType": "LIMIT_MAKER",
        "aboveClientOrderId": "tp-1",
        "abovePrice": "52000",
        "belowType": "STOP_LOSS",
        "belowClientOrderId": "sl-1",
        "belowStopPrice": "48000",
    }
    params.update(over)
    return params


def leg_ids(answer: dict[str, Any]) -> dict[str, str]:
    """clientOrderId -> orderId (as ccxt's unified calls take it) of a list's legs."""
    return {o["clientOrderId"]: str(o["orderId"]) for o in answer["orders"]}


@pytest.fixture
def ex(fake_binance: FakeBinance) -> Iterator[Any]:
    fake_binance.set_price("BTCUSDT", 50_000)
    exchange = make_ccxt_binance(fake_binance)
    exchange.load_markets()
    yield exchange


def holding_only(fake: FakeBinance, key: str, btc: str) -> Any:
    """A client for a fresh account that holds ``btc`` BTC and nothing else."""
    fake.add_account(key, key + "Secret", spot={"BTC": btc, "USDT": 0})
    exchange = make_ccxt_binance(fake, api_key=key, secret=key + "Secret")
    exchange.load_markets()
    return exchange


@modes
async def test_a_sell_list_holds_the_base_once(fake_binance: FakeBinance, async_: bool) -> None:
    """An account holding exactly the quantity places the list (both legs NEW, the coin held
    once); the same two orders sent singly are refused for the balance."""
    fake_binance.set_price("BTCUSDT", 50_000)
    fake_binance.add_account("ocoOne", "ocoOneSecret", spot={"BTC": "0.1", "USDT": 0})
    async with client(fake_binance, False, async_, api_key="ocoOne", secret="ocoOneSecret") as ex:
        await call(ex.load_markets)
        answer = await call(ex.privatePostOrderListOco, sell_list())
        assert answer["contingencyType"] == "OCO" and answer["listClientOrderId"] == "list-1"
        assert (answer["listStatusType"], answer["listOrderStatus"]) == (
            "EXEC_STARTED",
            "EXECUTING",
        )
        # the stop-loss leg first, as in Binance's examples; one transaction time for all
        assert [o["clientOrderId"] for o in answer["orders"]] == ["sl-1", "tp-1"]
        reports = answer["orderReports"]
        assert [r["type"] for r in reports] == ["STOP_LOSS", "LIMIT_MAKER"]
        assert {r["orderListId"] for r in reports} == {answer["orderListId"]}
        assert {r["status"] for r in reports} == {"NEW"}
        assert {r["transactTime"] for r in reports} == {answer["transactionTime"]}
        assert "fills" not in reports[0]  # RESULT by default
        balance = await call(ex.fetch_balance)
        assert balance["BTC"]["used"] == 0.1 and balance["BTC"]["free"] == 0
    single = holding_only(fake_binance, "ocoTwo", "0.1")
    single.create_order(SPOT, "limit", "sell", 0.1, 52_000, {"timeInForce": "GTC"})
    with pytest.raises(ccxt.InsufficientFunds):
        single.create_order(SPOT, "market", "sell", 0.1, None, {"stopLossPrice": 48_000})


def test_the_limit_leg_filling_expires_the_stop_leg(fake_binance: FakeBinance, ex: Any) -> None:
    ids = leg_ids(ex.privatePostOrderListOco(sell_list()))
    fake_binance.set_price("BTCUSDT", 52_000)  # the LIMIT_MAKER fills at its price
    assert ex.fetch_order(ids["tp-1"], SPOT)["status"] == "closed"
    stop = ex.fetch_order(ids["sl-1"], SPOT)
    assert stop["status"] == "expired" and stop["info"]["status"] == "EXPIRED"
    acct = fake_binance.account()
    assert acct.spot_locked["BTC"] == 0 and acct.spot_free["BTC"] == D("0.9")
    assert acct.spot_free["USDT"] == D(100_000) + D(5_200) - D("5.2")  # 0.1 % maker fee
    listed = ex.privateGetOrderList({"origClientOrderId": "list-1"})
    assert (listed["listStatusType"], listed["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert "orderReports" not in listed
    assert ex.privateGetOpenOrderList() == []
    (trade,) = ex.fetch_my_trades(SPOT)
    assert trade["order"] == ids["tp-1"] and trade["price"] == 52_000 and trade["amount"] == 0.1
    assert trade["info"]["orderListId"] == listed["orderListId"]


def test_the_stop_triggering_expires_the_limit_leg(fake_binance: FakeBinance, ex: Any) -> None:
    ids = leg_ids(ex.privatePostOrderListOco(sell_list()))
    fake_binance.set_price("BTCUSDT", 47_900)  # STOP_LOSS triggers, fills at market
    stop = ex.fetch_order(ids["sl-1"], SPOT)
    assert stop["status"] == "closed" and stop["average"] == 47_900
    assert ex.fetch_order(ids["tp-1"], SPOT)["status"] == "expired"
    fake_binance.set_price("BTCUSDT", 52_500)  # the expired limit no longer fills
    assert ex.fetch_order(ids["tp-1"], SPOT)["filled"] == 0
    acct = fake_binance.account()
    assert acct.spot_locked["BTC"] == 0 and acct.spot_free["BTC"] == D("0.9")


def test_cancelling_one_leg_cancels_the_list(fake_binance: FakeBinance, ex: Any) -> None:
    """DELETE /api/v3/order on a leg: both legs CANCELED, the coin freed; the answer is the
    list's cancel shape (see server._spot_cancel_answer for why)."""
    ids = leg_ids(ex.privatePostOrderListOco(sell_list()))
    answer = ex.privateDeleteOrder({"symbol": "BTCUSDT", "orderId": ids["tp-1"]})
    assert (answer["listStatusType"], answer["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert [r["status"] for r in answer["orderReports"]] == ["CANCELED", "CANCELED"]
    assert [r["origClientOrderId"] for r in answer["orderReports"]] == ["sl-1", "tp-1"]
    assert {ex.fetch_order(i, SPOT)["status"] for i in ids.values()} == {"canceled"}
    assert ex.fetch_balance()["BTC"]["used"] == 0
    with pytest.raises(ccxt.OrderNotFound, match="Unknown order sent"):
        ex.cancel_order(ids["sl-1"], SPOT)


def test_delete_order_list_by_list_client_order_id(fake_binance: FakeBinance, ex: Any) -> None:
    placed = ex.privatePostOrderListOco(sell_list())
    answer = ex.privateDeleteOrderList({"symbol": "BTCUSDT", "listClientOrderId": "list-1"})
    assert answer["orderListId"] == placed["orderListId"]
    assert (answer["listStatusType"], answer["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert [r["status"] for r in answer["orderReports"]] == ["CANCELED", "CANCELED"]
    assert fake_binance.account().spot_locked["BTC"] == 0
    with pytest.raises(ccxt.ExchangeError, match="Unknown order list sent"):
        ex.privateDeleteOrderList({"symbol": "BTCUSDT", "orderListId": placed["orderListId"]})
    # the listClientOrderId is free again once its list is done
    again = ex.privatePostOrderListOco(
        sell_list(aboveClientOrderId="tp-2", belowClientOrderId="sl-2")
    )
    assert again["listClientOrderId"] == "list-1" and again["orderListId"] != placed["orderListId"]


def test_a_duplicate_leg_client_id_places_nothing(fake_binance: FakeBinance, ex: Any) -> None:
    ex.create_order(SPOT, "limit", "buy", 0.01, 45_000, {"newClientOrderId": "taken"})
    locked = dict(fake_binance.account().spot_locked)
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        ex.privatePostOrderListOco(sell_list(belowClientOrderId="taken"))
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        ex.privatePostOrderListOco(sell_list(aboveClientOrderId="same", belowClientOrderId="same"))
    assert [o.client_order_id for o in fake_binance.orders()] == ["taken"]
    assert fake_binance.account().spot_locked == locked
    assert ex.privateGetOpenOrderList() == []


def test_a_limit_maker_that_would_take_places_nothing(fake_binance: FakeBinance, ex: Any) -> None:
    """A SELL LIMIT_MAKER at or below the last price breaks "LIMIT_MAKER price > Last Traded
    Price": Binance answers the OCO's own -2010 message, not the single order's."""
    with pytest.raises(ccxt.InvalidOrder, match="relationship of the prices"):
        ex.privatePostOrderListOco(sell_list(abovePrice="49000"))
    with pytest.raises(ccxt.InvalidOrder, match="relationship of the prices"):
        ex.privatePostOrderListOco(sell_list(belowStopPrice="50000"))  # would trigger now
    assert fake_binance.orders() == [] and fake_binance.state.spot.order_lists == {}
    assert fake_binance.account().spot_locked["BTC"] == 0


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"aboveType": "LIMIT"}, -1158),  # Order type not supported in OCO.
        ({"belowType": "LIMIT_MAKER", "belowPrice": "48000"}, -1168),  # both limits
        ({"aboveType": "STOP_LOSS", "aboveStopPrice": "52000"}, -1197),  # sell stop above
        ({"belowType": "TAKE_PROFIT"}, -1199),  # sell take-profit below
        ({"side": "BUY"}, -1196),  # a buy list's stop loss must be above
        ({"side": "BUY", "belowType": "TAKE_PROFIT"}, -1165),  # its LIMIT_MAKER below
    ],
)
def test_leg_types_follow_binances_rules(
    fake_binance: FakeBinance, ex: Any, over: dict[str, str], code: int
) -> None:
    with pytest.raises(ccxt.ExchangeError, match=f'"code":{code},'):
        ex.privatePostOrderListOco(sell_list(**over))
    assert fake_binance.orders() == []


def test_a_missing_leg_parameter_is_named_as_the_legs(ex: Any) -> None:
    with pytest.raises(ccxt.BadRequest, match="Mandatory parameter 'belowTimeInForce'"):
        ex.privatePostOrderListOco(sell_list(belowType="STOP_LOSS_LIMIT", belowPrice="47900"))
    with pytest.raises(ccxt.BadRequest, match="Mandatory parameter 'abovePrice'"):
        ex.privatePostOrderListOco(sell_list(abovePrice=""))


def test_legs_are_ordinary_orders_with_their_list_id(fake_binance: FakeBinance, ex: Any) -> None:
    answer = ex.privatePostOrderListOco(sell_list())
    list_id = answer["orderListId"]
    opened = ex.fetch_open_orders(SPOT)
    assert sorted(o["clientOrderId"] for o in opened) == ["sl-1", "tp-1"]
    assert {o["info"]["orderListId"] for o in opened} == {list_id}
    stop = next(o for o in opened if o["clientOrderId"] == "sl-1")
    assert stop["triggerPrice"] == 48_000 and stop["info"]["isWorking"] is False
    assert {o["info"]["orderListId"] for o in ex.fetch_orders(SPOT)} == {list_id}
    by_client = ex.fetch_order(None, SPOT, {"origClientOrderId": "tp-1"})
    assert by_client["info"]["orderListId"] == list_id
    (listed,) = ex.privateGetOpenOrderList()
    assert listed == ex.privateGetOrderList({"orderListId": list_id})
    assert listed["orders"] == answer["orders"] and "orderReports" not in listed
    with pytest.raises(ccxt.OrderNotFound):
        ex.privateGetOrderList({"orderListId": list_id + 1})


def test_a_buy_list_holds_the_quote_of_its_larger_leg(fake_binance: FakeBinance, ex: Any) -> None:
    """BUY: a LIMIT_MAKER 49,000 below, a STOP_LOSS_LIMIT 51,000 (limit 51,100) above: the
    list holds 0.1 x 51,100 once; the limit leg filling holds (and spends) its own 4,900."""
    ids = leg_ids(
        ex.privatePostOrderListOco(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "quantity": "0.1",
                "aboveType": "STOP_LOSS_LIMIT",
                "aboveClientOrderId": "buy-stop",
                "aboveStopPrice": "51000",
                "abovePrice": "51100",
                "aboveTimeInForce": "GTC",
                "belowType": "LIMIT_MAKER",
                "belowClientOrderId": "buy-limit",
                "belowPrice": "49000",
            }
        )
    )
    assert list(ids) == ["buy-stop", "buy-limit"]  # the stop-loss leg first here too
    acct = fake_binance.account()
    assert acct.spot_locked["USDT"] == D(5_110)
    fake_binance.set_price("BTCUSDT", 48_990)
    assert ex.fetch_order(ids["buy-limit"], SPOT)["status"] == "closed"
    assert ex.fetch_order(ids["buy-stop"], SPOT)["status"] == "expired"
    assert acct.spot_locked["USDT"] == 0 and acct.spot_free["USDT"] == D(100_000) - D(4_900)
    assert acct.spot_free["BTC"] == D("1.1") - D("0.0001")  # fee in the base received


def test_partial_fill_caps_the_leg_that_fills(fake_binance: FakeBinance, ex: Any) -> None:
    """partial_fill on the list path: the first leg to fill fills ``fraction`` of it and
    keeps resting; the other leg is expired already. (A candle that closes back below the
    limit: the engine crosses a candle's high and then its close, and a capped order's
    cap lasts one fill.)"""
    fake_binance.faults.inject("partial_fill", path=LIST_PATH, method="POST", fraction=0.4)
    ids = leg_ids(ex.privatePostOrderListOco(sell_list()))
    with fake_binance.state.lock:
        fake_binance.state.spot.load_candles(
            "BTCUSDT", [Candle(0, D(50_000), D(52_000), D(50_000), D(51_000))]
        )
    fake_binance.advance("BTCUSDT", market="spot")
    limit = ex.fetch_order(ids["tp-1"], SPOT)
    assert limit["status"] == "open" and limit["filled"] == 0.04
    assert ex.fetch_order(ids["sl-1"], SPOT)["status"] == "expired"
    assert fake_binance.account().spot_locked["BTC"] == D("0.06")
    fake_binance.set_price("BTCUSDT", 52_100)
    assert ex.fetch_order(ids["tp-1"], SPOT)["status"] == "closed"
    assert fake_binance.account().spot_locked["BTC"] == 0


def test_path_faults_apply_to_the_list_endpoint(fake_binance: FakeBinance) -> None:
    """accept_then_timeout: placed, no answer (RequestTimeout), found by listClientOrderId,
    a resend refused as a duplicate; server_error and timeout: nothing placed."""
    fake_binance.set_price("BTCUSDT", 50_000)
    ex = make_ccxt_binance(fake_binance, timeout_ms=400)
    ex.load_markets()
    fake_binance.faults.inject("server_error", path=LIST_PATH, method="POST", status=503)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.privatePostOrderListOco(sell_list())
    fake_binance.faults.inject("timeout", path=LIST_PATH, method="POST", hold_s=1)
    with pytest.raises(ccxt.RequestTimeout):
        ex.privatePostOrderListOco(sell_list())
    assert fake_binance.orders() == []
    fake_binance.faults.inject("accept_then_timeout", path=LIST_PATH, method="POST", hold_s=1)
    with pytest.raises(ccxt.RequestTimeout):
        ex.privatePostOrderListOco(sell_list())
    found = ex.privateGetOrderList({"origClientOrderId": "list-1"})
    assert found["listOrderStatus"] == "EXECUTING" and len(fake_binance.orders()) == 2
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        ex.privatePostOrderListOco(sell_list())


def test_cancel_replace_of_a_leg_ends_the_list(fake_binance: FakeBinance, ex: Any) -> None:
    """order.cancelReplace: "Like order.cancel, if you cancel an individual order from an
    order list, the entire order list is canceled"; the new order is placed."""
    ids = leg_ids(ex.privatePostOrderListOco(sell_list()))
    answer = ex.privatePostOrderCancelReplace(
        {
            "symbol": "BTCUSDT",
            "cancelReplaceMode": "STOP_ON_FAILURE",
            "cancelOrderId": ids["tp-1"],
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.1",
            "price": "53000",
            "newClientOrderId": "tp-new",
        }
    )
    assert answer["cancelResult"] == answer["newOrderResult"] == "SUCCESS"
    assert answer["cancelResponse"]["listOrderStatus"] == "ALL_DONE"
    assert {ex.fetch_order(i, SPOT)["status"] for i in ids.values()} == {"canceled"}
    assert answer["newOrderResponse"]["orderListId"] == -1
    assert fake_binance.account().spot_locked["BTC"] == D("0.1")  # the new order's only


def test_cancel_all_open_orders_cancels_lists_too(fake_binance: FakeBinance, ex: Any) -> None:
    """DELETE /api/v3/openOrders "includes orders that are part of an order list": a list
    is one list-shaped entry among the single orders' cancel shapes."""
    ex.create_order(SPOT, "limit", "buy", 0.01, 45_000, {"newClientOrderId": "single"})
    placed = ex.privatePostOrderListOco(sell_list())
    answer = ex.privateDeleteOpenOrders({"symbol": "BTCUSDT"})
    assert [e.get("clientOrderId") or e["listClientOrderId"] for e in answer] == [
        "cancel1000001",
        "list-1",
    ]
    assert answer[1]["orderListId"] == placed["orderListId"]
    assert [r["status"] for r in answer[1]["orderReports"]] == ["CANCELED", "CANCELED"]
    acct = fake_binance.account()
    assert acct.spot_locked["BTC"] == 0 and acct.spot_locked["USDT"] == 0
    assert ex.privateGetOrderList({"orderListId": placed["orderListId"]})["listStatusType"] == (
        "ALL_DONE"
    )


def test_a_take_profit_leg_triggering_expires_the_stop(fake_binance: FakeBinance, ex: Any) -> None:
    """A SELL list may take profit with a TAKE_PROFIT_LIMIT above (Binance: "TAKE_PROFIT_LIMIT
    price > Last Traded Price"): its trigger ends the list, then it fills as a limit."""
    ids = leg_ids(
        ex.privatePostOrderListOco(
            sell_list(
                aboveType="TAKE_PROFIT_LIMIT",
                aboveStopPrice="52000",
                abovePrice="52000",
                aboveTimeInForce="GTC",
            )
        )
    )
    assert fake_binance.account().spot_locked["BTC"] == D("0.1")
    fake_binance.set_price("BTCUSDT", 52_100)
    take = ex.fetch_order(ids["tp-1"], SPOT)
    assert take["status"] == "closed" and take["info"]["type"] == "TAKE_PROFIT_LIMIT"
    assert ex.fetch_order(ids["sl-1"], SPOT)["status"] == "expired"
    acct = fake_binance.account()
    assert acct.spot_locked["BTC"] == 0 and acct.spot_free["BTC"] == D("0.9")


@pytest.mark.parametrize(
    ("side", "above", "below", "code"),
    [
        ("SELL", "STOP_LOSS", "STOP_LOSS_LIMIT", -1197),
        ("SELL", "TAKE_PROFIT", "LIMIT_MAKER", -1166),
        ("SELL", "LIMIT_MAKER", "TAKE_PROFIT", -1199),
        ("BUY", "STOP_LOSS", "STOP_LOSS_LIMIT", -1196),
        ("BUY", "LIMIT_MAKER", "TAKE_PROFIT", -1165),
        ("BUY", "TAKE_PROFIT", "LIMIT_MAKER", -1198),
    ],
)
def test_each_leg_on_the_wrong_side_of_a_list_is_refused_with_binances_code(
    side: str, above: str, below: str, code: int
) -> None:
    with pytest.raises(BinanceError) as refused:
        _check_oco_types(side, above, below)
    assert refused.value.code == code


def test_legs_on_their_sides_pass() -> None:
    _check_oco_types("SELL", "LIMIT_MAKER", "STOP_LOSS")
    _check_oco_types("BUY", "STOP_LOSS", "LIMIT_MAKER")
