"""The real ccxt ``kraken`` (sync + async) drives the fake Kraken spot REST end to end.

Covers: load markets (AssetPairs, and Assets when currencies are fetched), server time,
ticker, OHLC with the still-forming candle, balance (BalanceEx with ``hold_trade``),
market/limit/stop-loss/take-profit orders with ``cl_ord_id``, query by txid, open and
closed orders filtered by client id and userref, amend, cancel by txid / by
``cl_ord_id`` / all, my trades, order trades (QueryTrades) and orders by ids.
"""

from __future__ import annotations

import ccxt
import pytest

from tests.venues.kraken.server import FakeKraken

from .helpers import ASYNC_MODES, BTC, ETH, MODE_IDS, call, client

modes = pytest.mark.parametrize("async_", ASYNC_MODES, ids=MODE_IDS)


@modes
async def test_load_markets_reads_asset_pairs(fake_kraken: FakeKraken, async_: bool) -> None:
    """fetch_markets -> GET /0/public/AssetPairs: pair_decimals/lot_decimals are the
    precisions, ordermin/costmin the limits, the first fee tiers the maker/taker fees."""
    async with client(fake_kraken, async_) as ex:
        markets = await call(ex.load_markets)
        assert set(markets) == {BTC, ETH}
        m = markets[BTC]
        assert (m["id"], m["altname"], m["wsId"]) == ("XXBTZUSD", "XBTUSD", "XBT/USD")
        assert (m["baseId"], m["quoteId"]) == ("BTC", "USD")
        assert m["spot"] and m["active"] and not m["margin"]
        assert m["precision"] == {"amount": 1e-08, "price": 0.1}
        assert m["limits"]["amount"]["min"] == 0.00005 and m["limits"]["cost"]["min"] == 0.5
        assert (m["taker"], m["maker"]) == (0.0026, 0.0016)
        assert markets[ETH]["precision"]["price"] == 0.01
    assert [r.path for r in fake_kraken.requests] == ["/0/public/AssetPairs"]
    assert fake_kraken.unhandled == []


@modes
async def test_load_markets_with_currencies_calls_assets(
    fake_kraken: FakeKraken, async_: bool
) -> None:
    """With ccxt's default fetchCurrencies, load_markets also calls /0/public/Assets; the
    X/Z-prefixed asset ids map to BTC/ETH/USD."""
    async with client(fake_kraken, async_, currencies=True) as ex:
        await call(ex.load_markets)
        assert ex.currencies["BTC"]["id"] == "XXBT"
        assert ex.currencies["USD"]["precision"] == 0.0001
        assert ex.markets[BTC]["precision"]["amount"] == 1e-08
    assert sorted(r.path for r in fake_kraken.requests) == [
        "/0/public/AssetPairs",
        "/0/public/Assets",
    ]


@modes
async def test_time_ticker_and_ohlcv_with_forming_candle(
    fake_kraken: FakeKraken, async_: bool
) -> None:
    """fetch_time -> Time; fetch_ticker -> Ticker; fetch_ohlcv -> OHLC (oldest first, the
    last row still forming, as on the real venue); ``since`` reaches the venue in seconds."""
    clock = fake_kraken.state.clock
    now = clock.now_ms()
    minute = now - now % 60_000 + 60_000
    clock.frozen_ms = minute + 5_000
    fake_kraken.set_price("XBTUSD", 50_050, volume=2)
    clock.frozen_ms = minute + 65_000
    fake_kraken.set_price("XBTUSD", 50_100, volume=1)
    async with client(fake_kraken, async_) as ex:
        server = await call(ex.fetch_time)
        assert server == (minute + 65_000) // 1000 * 1000
        t = await call(ex.fetch_ticker, BTC)
        assert (t["last"], t["ask"], t["bid"]) == (50_100, 50_100, 50_099.9)
        rows = await call(ex.fetch_ohlcv, BTC, "1m")
        assert rows[-1] == [minute + 60_000, 50_100, 50_100, 50_100, 50_100, 1]
        assert rows[-1][0] + 60_000 > server  # still forming
        assert rows[-2] == [minute, 50_050, 50_050, 50_050, 50_050, 2]
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)
        since = await call(ex.fetch_ohlcv, BTC, "1m", minute + 60_000)
        assert [r[0] for r in since] == [minute + 60_000]
        assert fake_kraken.requests[-1].params["since"] == str((minute + 60_000) // 1000 - 60)
        hourly = await call(ex.fetch_ohlcv, BTC, "1h")
        assert hourly[-1][4] == 50_100 and hourly[-1][0] % 3_600_000 == 0


@modes
async def test_balance_orders_and_trades(fake_kraken: FakeKraken, async_: bool) -> None:
    """fetch_balance (BalanceEx: hold_trade is ccxt's 'used'), a market buy and a resting
    limit with clientOrderId -> cl_ord_id, open/closed orders, my trades; balances move
    by cost and fee (taker 0.26 %, maker 0.16 %, in USD)."""
    async with client(fake_kraken, async_) as ex:
        bal = await call(ex.fetch_balance)
        assert bal["USD"] == {"free": 100_000, "used": 0, "total": 100_000}
        assert bal["BTC"]["total"] == 1
        o = await call(ex.create_order, BTC, "market", "buy", 0.01, None, {"clientOrderId": "m-1"})
        assert o["id"].startswith("O") and len(o["id"]) == 19 and o["type"] == "market"
        assert o["clientOrderId"] is None  # AddOrder's answer does not echo cl_ord_id
        lim = await call(
            ex.create_order, BTC, "limit", "buy", 0.01, 49_000, {"clientOrderId": "l-1"}
        )
        opens = await call(ex.fetch_open_orders, BTC)
        assert [(x["id"], x["clientOrderId"], x["status"]) for x in opens] == [
            (lim["id"], "l-1", "open")
        ]
        assert opens[0]["price"] == 49_000 and opens[0]["remaining"] == 0.01
        bal = await call(ex.fetch_balance)
        assert bal["USD"]["total"] == pytest.approx(100_000 - 500 - 1.3)
        assert bal["USD"]["used"] == pytest.approx(0.01 * 49_000 * 1.0026)  # cost + taker fee
        assert bal["BTC"]["total"] == pytest.approx(1.01)
        closed = await call(ex.fetch_closed_orders, BTC)
        assert [(x["clientOrderId"], x["status"]) for x in closed] == [("m-1", "closed")]
        assert closed[0]["filled"] == 0.01 and closed[0]["average"] == 50_000
        fake_kraken.set_price("XBTUSD", 48_900)  # the limit crosses: maker fill at 49,000
        trades = await call(ex.fetch_my_trades, BTC)
        assert sorted((t["order"], t["price"], t["takerOrMaker"]) for t in trades) == sorted(
            [(o["id"], 50_000, "taker"), (lim["id"], 49_000, "maker")]
        )
        maker = next(t for t in trades if t["order"] == lim["id"])
        assert maker["fee"] == {"cost": pytest.approx(0.784), "currency": "USD"}
        assert maker["id"].startswith("T")
        bal = await call(ex.fetch_balance)
        assert bal["USD"]["used"] == 0
        assert bal["USD"]["total"] == pytest.approx(100_000 - 501.3 - 490.784)
        assert bal["BTC"]["total"] == pytest.approx(1.02)
        closed = await call(ex.fetch_closed_orders, BTC)
        assert {x["clientOrderId"] for x in closed} == {"m-1", "l-1"}
    assert fake_kraken.unhandled == []


@modes
async def test_cancel_by_txid_by_cl_ord_id_and_cancel_all(
    fake_kraken: FakeKraken, async_: bool
) -> None:
    async with client(fake_kraken, async_) as ex:
        a = await call(ex.create_order, BTC, "limit", "buy", 0.01, 40_000, {"clientOrderId": "a"})
        await call(ex.create_order, BTC, "limit", "buy", 0.01, 40_100, {"clientOrderId": "b"})
        await call(ex.create_order, BTC, "limit", "sell", 0.01, 60_000, {"clientOrderId": "c"})
        c1 = await call(ex.cancel_order, a["id"], BTC)
        assert c1["info"]["result"] == {"count": 1}
        assert fake_kraken.requests[-1].params["txid"] == a["id"]
        await call(ex.cancel_order, None, BTC, {"clientOrderId": "b"})
        assert fake_kraken.requests[-1].params.get("cl_ord_id") == "b"
        assert "txid" not in fake_kraken.requests[-1].params
        left = await call(ex.cancel_all_orders, BTC)
        assert left[0]["info"]["result"] == {"count": 1}
        assert await call(ex.fetch_open_orders, BTC) == []
        closed = await call(ex.fetch_closed_orders, BTC)
        assert {x["clientOrderId"] for x in closed} == {"a", "b", "c"}
        assert {(x["status"], x["info"]["reason"]) for x in closed} == {
            ("canceled", "User requested")
        }
        with pytest.raises(ccxt.OrderNotFound):  # "EOrder:Unknown order": only open orders
            await call(ex.cancel_order, a["id"], BTC)
        with pytest.raises(ccxt.OrderNotFound):
            await call(ex.cancel_order, None, BTC, {"clientOrderId": "b"})
        assert (await call(ex.fetch_balance))["USD"]["used"] == 0


@modes
async def test_look_up_by_client_id(fake_kraken: FakeKraken, async_: bool) -> None:
    """By cl_ord_id: fetch_open_orders / fetch_closed_orders with params clientOrderId
    (sent as Kraken's cl_ord_id filter).  ccxt's fetch_order(None, ..., {clientOrderId})
    sends it as ``userref`` with ``txid=None``: refused either way."""
    async with client(fake_kraken, async_) as ex:
        o = await call(ex.create_order, BTC, "limit", "buy", 0.01, 49_000, {"clientOrderId": "q1"})
        got = await call(ex.fetch_open_orders, BTC, None, None, {"clientOrderId": "q1"})
        assert [x["id"] for x in got] == [o["id"]]
        one = await call(ex.fetch_order, o["id"], BTC)
        assert (one["clientOrderId"], one["status"], one["amount"]) == ("q1", "open", 0.01)
        with pytest.raises(ccxt.ExchangeError, match="Invalid arguments:userref"):
            await call(ex.fetch_order, None, BTC, {"clientOrderId": "q1"})
        with pytest.raises(ccxt.BadRequest):  # userref 7 is fine, txid "None" is not
            await call(ex.fetch_order, None, BTC, {"clientOrderId": "7"})
        fake_kraken.set_price("XBTUSD", 48_000)
        assert await call(ex.fetch_open_orders, BTC, None, None, {"clientOrderId": "q1"}) == []
        done = await call(ex.fetch_closed_orders, BTC, None, None, {"clientOrderId": "q1"})
        assert [(x["id"], x["status"]) for x in done] == [(o["id"], "closed")]
        assert await call(ex.fetch_closed_orders, BTC, None, None, {"clientOrderId": "no"}) == []


@modes
async def test_userref_is_an_integer_tag(fake_kraken: FakeKraken, async_: bool) -> None:
    """userref (integer, not unique) tags orders; ccxt reports it as clientOrderId when the
    order has no cl_ord_id, and filters open/closed orders and QueryOrders by it."""
    async with client(fake_kraken, async_) as ex:
        a = await call(ex.create_order, BTC, "limit", "buy", 0.01, 45_000, {"userref": 42})
        b = await call(ex.create_order, BTC, "limit", "buy", 0.01, 45_100, {"userref": 42})
        await call(ex.create_order, BTC, "limit", "buy", 0.01, 45_200)
        tagged = await call(ex.fetch_open_orders, BTC, None, None, {"userref": 42})
        assert sorted(x["id"] for x in tagged) == sorted([a["id"], b["id"]])
        assert {x["clientOrderId"] for x in tagged} == {"42"}
        one = await call(ex.fetch_order, a["id"], BTC, {"userref": 42})
        assert one["id"] == a["id"]
        with pytest.raises(ccxt.OrderNotFound):  # the userref narrows QueryOrders
            await call(ex.fetch_order, a["id"], BTC, {"userref": 43})
        await call(ex.cancel_order, None, BTC, {"userref": 42})  # txid=42: all with userref 42
        assert len(await call(ex.fetch_open_orders, BTC)) == 1


@modes
async def test_amend_keeps_the_ids(fake_kraken: FakeKraken, async_: bool) -> None:
    """edit_order -> AmendOrder (order_qty, limit_price, by txid or cl_ord_id): the order
    keeps its txid and cl_ord_id; ccxt's result carries the amend_id as its 'id'."""
    async with client(fake_kraken, async_) as ex:
        o = await call(ex.create_order, BTC, "limit", "buy", 0.01, 49_000, {"clientOrderId": "e1"})
        e = await call(ex.edit_order, o["id"], BTC, "limit", "buy", 0.02, 49_500.05)
        assert e["id"] == e["info"]["amend_id"] != o["id"] and e["id"].startswith("T")
        sent = fake_kraken.requests[-1].params
        assert (sent["txid"], sent["order_qty"], sent["limit_price"]) == (
            o["id"],
            "0.02",
            ex.price_to_precision(BTC, 49_500.05),
        )
        got = await call(ex.fetch_order, o["id"], BTC)
        assert (got["id"], got["clientOrderId"], got["amount"]) == (o["id"], "e1", 0.02)
        assert got["price"] == float(ex.price_to_precision(BTC, 49_500.05))
        await call(ex.edit_order, None, BTC, "limit", "buy", None, 49_400, {"clientOrderId": "e1"})
        assert "txid" not in fake_kraken.requests[-1].params
        (same,) = await call(ex.fetch_open_orders, BTC, None, None, {"clientOrderId": "e1"})
        assert (same["id"], same["price"], same["amount"]) == (o["id"], 49_400, 0.02)
        await call(ex.edit_order, o["id"], BTC, "limit", "buy", None, 50_100)  # now marketable
        done = await call(ex.fetch_order, o["id"], BTC)
        assert (done["status"], done["filled"], done["average"]) == ("closed", 0.02, 50_000)
        with pytest.raises(ccxt.InvalidOrder, match="Unknown order"):  # not OrderNotFound
            await call(ex.edit_order, o["id"], BTC, "limit", "buy", None, 49_000)


@modes
async def test_stop_loss_and_take_profit(fake_kraken: FakeKraken, async_: bool) -> None:
    """stopLossPrice / takeProfitPrice -> ordertype stop-loss / take-profit (market) or the
    -limit kinds with price2; they rest until the price reaches them, then fill."""
    async with client(fake_kraken, async_) as ex:
        sl = await call(
            ex.create_order, BTC, "market", "sell", 0.01, None, {"stopLossPrice": 48_000}
        )
        assert (sl["type"], sl["stopLossPrice"]) == ("market", 48_000)
        tp = await call(
            ex.create_order, BTC, "market", "sell", 0.01, None, {"takeProfitPrice": 52_000}
        )
        sll = await call(
            ex.create_order, BTC, "limit", "sell", 0.01, 47_000, {"stopLossPrice": 47_500}
        )
        assert (sll["type"], sll["price"], sll["stopLossPrice"]) == ("limit", 47_000, 47_500)
        brk = await call(
            ex.create_order, BTC, "market", "buy", 0.01, None, {"stopLossPrice": 51_000}
        )
        sent = [r.params for r in fake_kraken.order_requests()]
        assert [(p["ordertype"], p["price"], p.get("price2")) for p in sent] == [
            ("stop-loss", "48000", None),
            ("take-profit", "52000", None),
            ("stop-loss-limit", "47500", "47000"),
            ("stop-loss", "51000", None),
        ]
        opens = {x["id"]: x for x in await call(ex.fetch_open_orders, BTC)}
        assert opens[tp["id"]]["takeProfitPrice"] == 52_000
        assert opens[sll["id"]]["info"]["descr"]["order"] == (
            "sell 0.01000000 XBTUSD @ stop loss 47500.0 -> limit 47000.0"
        )
        assert (await call(ex.fetch_balance))["BTC"]["used"] == pytest.approx(0.03)
        fake_kraken.set_price("XBTUSD", 51_000)  # the buy stop fires
        fake_kraken.set_price("XBTUSD", 52_000)  # take-profit fires
        fake_kraken.set_price("XBTUSD", 47_900)  # stop-loss fires
        fake_kraken.set_price("XBTUSD", 47_400)  # stop-loss-limit fires, sells at 47,400
        status = {
            x["id"]: (x["status"], x["average"]) for x in await call(ex.fetch_closed_orders, BTC)
        }
        assert status == {
            brk["id"]: ("closed", 51_000),
            tp["id"]: ("closed", 52_000),
            sl["id"]: ("closed", 47_900),
            sll["id"]: ("closed", 47_400),
        }
        row = (await call(ex.fetch_order, sll["id"], BTC))["info"]
        assert (row["stopprice"], row["limitprice"]) == ("47500.0", "47000.0")


@modes
async def test_order_trades_and_orders_by_ids(fake_kraken: FakeKraken, async_: bool) -> None:
    """fetch_order (trades=true) lists the order's trade ids; fetch_order_trades ->
    QueryTrades; fetch_orders_by_ids -> QueryOrders with several txids; my trades by time."""
    async with client(fake_kraken, async_) as ex:
        a = await call(ex.create_order, BTC, "market", "buy", 0.01)
        b = await call(ex.create_order, ETH, "market", "sell", 0.5)
        order = await call(ex.fetch_order, a["id"], BTC)
        (tid,) = [t["id"] for t in order["trades"]]
        trades = await call(ex.fetch_order_trades, a["id"], BTC, None, None, {"trades": [tid]})
        assert [(t["id"], t["order"], t["amount"]) for t in trades] == [(tid, a["id"], 0.01)]
        both = await call(ex.fetch_orders_by_ids, [a["id"], b["id"]])
        assert {(x["id"], x["symbol"], x["side"]) for x in both} == {
            (a["id"], BTC, "buy"),
            (b["id"], ETH, "sell"),
        }
        later = fake_kraken.state.now + 1_000
        assert await call(ex.fetch_my_trades, None, later) == []
        mine = await call(ex.fetch_my_trades)
        assert {t["symbol"] for t in mine} == {BTC, ETH}
    assert fake_kraken.unhandled == []


def test_trigger_price_is_not_mapped_by_ccxt(kraken: ccxt.kraken, fake_kraken: FakeKraken) -> None:
    """The trap: ccxt 4.5.90's kraken reads stopLossPrice/takeProfitPrice only; a unified
    ``triggerPrice`` goes out as an unknown field that Kraken ignores (its documented
    rule for unnecessary parameters), so the order is a plain market order, filled now."""
    o = kraken.create_order(BTC, "market", "sell", 0.01, None, {"triggerPrice": 48_000})
    sent = fake_kraken.order_requests()[-1].params
    assert (sent["ordertype"], sent["triggerPrice"]) == ("market", "48000")
    assert "price" not in sent
    assert kraken.fetch_order(o["id"], BTC)["status"] == "closed"


def test_closed_orders_and_trades_filters(kraken: ccxt.kraken, fake_kraken: FakeKraken) -> None:
    """ClosedOrders: start (exclusive) / end (inclusive) in seconds or as a txid,
    closetime open|close|both, ofs, without_count; TradesHistory: start / end / ofs."""
    clock = fake_kraken.state.clock
    t0 = 1_800_000_000_000
    ids = []
    for i in range(3):
        clock.frozen_ms = t0 + i * 10_000
        o = kraken.create_order(BTC, "limit", "buy", 0.01, 40_000 + i)
        clock.frozen_ms = t0 + i * 10_000 + 100_000  # closed well after all opened
        kraken.cancel_order(o["id"], BTC)
        ids.append(o["id"])

    def closed(**p: object) -> list[str]:
        return list(kraken.privatePostClosedOrders(p)["result"]["closed"])

    assert closed() == ids[::-1]  # newest first
    assert closed(start=(t0 + 10_000) // 1000) == ids[::-1]  # all closed after it ("both")
    assert closed(start=(t0 + 110_000) // 1000, closetime="close") == [ids[2]]
    assert closed(start=(t0 + 10_000) // 1000, closetime="open") == [ids[2]]
    assert closed(end=(t0 + 10_000) // 1000, closetime="open") == [ids[1], ids[0]]
    assert closed(start=ids[0], closetime="open") == [ids[2], ids[1]]  # a txid: its opentm
    assert closed(ofs=1) == [ids[1], ids[0]]
    resp = kraken.privatePostClosedOrders({"without_count": True})["result"]
    assert "count" not in resp and len(resp["closed"]) == 3
    with pytest.raises(ccxt.ExchangeError, match="closetime"):
        closed(closetime="sometime")
    # ccxt's fetch_closed_orders sends ``until`` as ``end`` in MILLISECONDS (its generic
    # handle_until_option), which Kraken reads as seconds: no upper bound in effect.
    assert len(kraken.fetch_closed_orders(BTC, None, None, {"until": t0})) == 3
    assert fake_kraken.requests[-1].params["end"] == str(t0)
    for i in range(3):
        clock.frozen_ms = t0 + 200_000 + i * 10_000
        kraken.create_order(BTC, "market", "buy", 0.01)
    trades = kraken.privatePostTradesHistory({"start": (t0 + 200_000) // 1000})["result"]
    assert trades["count"] == 2
    page = kraken.privatePostTradesHistory({"ofs": 2})["result"]
    assert page["count"] == 3 and len(page["trades"]) == 1
    mine = kraken.fetch_my_trades(BTC, t0 + 205_000, None, {"until": t0 + 215_000})
    assert [t["timestamp"] for t in mine] == [t0 + 210_000]
