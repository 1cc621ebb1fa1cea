"""The real ccxt ``bybit`` (sync + async) drives the fake Bybit v5 linear end to end.

Covers: load markets (instruments-info), server time, ticker, OHLCV with the
still-forming candle, balance (UNIFIED wallet), market/limit orders with
``orderLinkId``, reduce-only, ``positionIdx`` in hedge mode, TP/SL attached,
conditional orders, cancel by id / by orderLinkId, cancel-all, amend, open and
closed orders, query by orderLinkId, my trades, positions, set leverage, margin
mode and position mode.
"""

from __future__ import annotations

import ccxt
import pytest

from tests.venues.bybit.server import FakeBybit

from .helpers import ASYNC_MODES, ETH, MODE_IDS, PERP, call, client

modes = pytest.mark.parametrize("async_", ASYNC_MODES, ids=MODE_IDS)


@modes
async def test_load_markets_reads_instrument_filters(fake_bybit: FakeBybit, async_: bool) -> None:
    """fetch_markets -> GET /v5/market/instruments-info?category=linear (and the
    status=PreLaunch call ccxt makes next to it); lotSizeFilter/priceFilter/leverageFilter."""
    async with client(fake_bybit, async_) as ex:
        markets = await call(ex.load_markets)
        m = markets[PERP]
        assert m["id"] == "BTCUSDT" and m["swap"] and m["linear"] and m["settle"] == "USDT"
        assert m["precision"] == {"amount": 0.001, "price": 0.1}
        assert m["limits"]["amount"] == {"min": 0.001, "max": 1190.0}
        assert m["limits"]["cost"]["min"] == 5
        assert m["limits"]["leverage"] == {"min": 1.0, "max": 100.0}
        assert markets[ETH]["precision"] == {"amount": 0.01, "price": 0.01}
        assert set(markets) == {PERP, ETH}
    assert {r.path for r in fake_bybit.requests} == {"/v5/market/instruments-info"}
    assert fake_bybit.unhandled == []


@modes
async def test_time_ticker_and_ohlcv_with_forming_candle(
    fake_bybit: FakeBybit, async_: bool
) -> None:
    """fetch_time -> /v5/market/time; fetch_ticker -> /v5/market/tickers;
    fetch_ohlcv -> /v5/market/kline (newest first on the wire, ccxt reverses it). The
    last row is the still-forming candle, as on the real venue."""
    fake_bybit.set_price("BTCUSDT", 50_100)
    async with client(fake_bybit, async_) as ex:
        now = await call(ex.fetch_time)
        assert abs(now - fake_bybit.state.now) < 5_000
        t = await call(ex.fetch_ticker, PERP)
        assert t["last"] == 50_100
        rows = await call(ex.fetch_ohlcv, PERP, "1m")
        assert rows[-1][4] == 50_100
        assert rows[-1][0] + 60_000 > now  # still forming: open + timeframe after the clock
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)


@modes
async def test_balance_orders_trades_positions(fake_bybit: FakeBybit, async_: bool) -> None:
    """fetch_balance (UNIFIED wallet), create market/limit with clientOrderId ->
    orderLinkId, fetch open/closed orders, my trades (/v5/execution/list), positions."""
    async with client(fake_bybit, async_) as ex:
        bal = await call(ex.fetch_balance)
        assert bal["USDT"]["total"] == 100_000 and bal["USDT"]["free"] == 100_000
        o = await call(ex.create_order, PERP, "market", "buy", 0.01, None, {"clientOrderId": "m-1"})
        assert o["clientOrderId"] == "m-1" and o["id"]
        lim = await call(
            ex.create_order, PERP, "limit", "buy", 0.01, 49_000, {"clientOrderId": "l-1"}
        )
        opens = await call(ex.fetch_open_orders, PERP)
        assert [x["id"] for x in opens] == [lim["id"]]
        assert opens[0]["status"] == "open" and opens[0]["price"] == 49_000
        closed = await call(ex.fetch_closed_orders, PERP)
        assert [x["clientOrderId"] for x in closed] == ["m-1"]
        assert closed[0]["filled"] == 0.01 and closed[0]["average"] == 50_000
        trades = await call(ex.fetch_my_trades, PERP)
        assert len(trades) == 1 and trades[0]["order"] == o["id"]
        assert trades[0]["takerOrMaker"] == "taker" and trades[0]["fee"]["currency"] == "USDT"
        pos = await call(ex.fetch_positions, [PERP])
        assert pos[0]["contracts"] == 0.01 and pos[0]["side"] == "long"
        assert pos[0]["entryPrice"] == 50_000
        one = await call(ex.fetch_position, PERP)
        assert one["contracts"] == 0.01 and one["leverage"] == 10
        bal = await call(ex.fetch_balance)
        assert bal["USDT"]["used"] > 0
        fake_bybit.set_price("BTCUSDT", 48_900)  # the limit crosses: maker fill at 49,000
        closed = await call(ex.fetch_closed_orders, PERP)
        assert {x["clientOrderId"] for x in closed} == {"m-1", "l-1"}
        all_pos = await call(ex.fetch_positions)
        assert all_pos[0]["contracts"] == 0.02


@modes
async def test_cancel_by_id_by_link_id_and_cancel_all(fake_bybit: FakeBybit, async_: bool) -> None:
    async with client(fake_bybit, async_) as ex:
        a = await call(ex.create_order, PERP, "limit", "buy", 0.01, 40_000, {"clientOrderId": "a"})
        await call(ex.create_order, PERP, "limit", "buy", 0.01, 40_100, {"clientOrderId": "b"})
        await call(ex.create_order, PERP, "limit", "sell", 0.01, 60_000, {"clientOrderId": "c"})
        c1 = await call(ex.cancel_order, a["id"], PERP)
        assert c1["id"] == a["id"]
        c2 = await call(ex.cancel_order, None, PERP, {"orderLinkId": "b"})
        assert c2["clientOrderId"] == "b"
        left = await call(ex.cancel_all_orders, PERP)
        assert [x["clientOrderId"] for x in left] == ["c"]
        assert await call(ex.fetch_open_orders, PERP) == []
        canceled = await call(ex.fetch_canceled_orders, PERP)
        assert {x["clientOrderId"] for x in canceled} == {"a", "b", "c"}
        assert {x["status"] for x in canceled} == {"canceled"}
        with pytest.raises(ccxt.OrderNotFound):
            await call(ex.cancel_order, a["id"], PERP)


@modes
async def test_query_by_order_link_id(fake_bybit: FakeBybit, async_: bool) -> None:
    """By orderLinkId: fetch_open_orders/fetch_closed_orders with params orderLinkId.
    ccxt's fetch_order(None, ...) sends orderId=None literally, so the portable path is
    the listing (or fetch_order with the venue id and acknowledged=True)."""
    async with client(fake_bybit, async_) as ex:
        o = await call(ex.create_order, PERP, "limit", "buy", 0.01, 49_000, {"clientOrderId": "q1"})
        got = await call(ex.fetch_open_orders, PERP, None, None, {"orderLinkId": "q1"})
        assert [x["id"] for x in got] == [o["id"]]
        one = await call(ex.fetch_order, o["id"], PERP, {"acknowledged": True})
        assert one["clientOrderId"] == "q1" and one["status"] == "open"
        fake_bybit.set_price("BTCUSDT", 48_000)
        done = await call(ex.fetch_closed_orders, PERP, None, None, {"orderLinkId": "q1"})
        assert [x["status"] for x in done] == ["closed"]
        assert await call(ex.fetch_open_orders, PERP, None, None, {"orderLinkId": "nope"}) == []


@modes
async def test_amend_order(fake_bybit: FakeBybit, async_: bool) -> None:
    """edit_order -> POST /v5/order/amend (native amend, same orderId)."""
    async with client(fake_bybit, async_) as ex:
        o = await call(ex.create_order, PERP, "limit", "buy", 0.01, 49_000, {"clientOrderId": "e1"})
        e = await call(ex.edit_order, o["id"], PERP, "limit", "buy", 0.02, 49_500.05)
        assert e["id"] == o["id"]
        got = (await call(ex.fetch_open_orders, PERP))[0]
        assert got["amount"] == 0.02 and got["price"] == 49_500.1  # ccxt rounded to the tick
        e2 = await call(
            ex.edit_order, None, PERP, "limit", "buy", None, 49_400, {"clientOrderId": "e1"}
        )
        assert e2["clientOrderId"] == "e1"
        assert fake_bybit.orders()[0].price == 49_400
        with pytest.raises(ccxt.BadRequest):  # unchanged parameters (10001)
            await call(ex.edit_order, o["id"], PERP, "limit", "buy", None, 49_400)


@modes
async def test_reduce_only_tp_sl_and_conditional(fake_bybit: FakeBybit, async_: bool) -> None:
    """Attached takeProfit/stopLoss become position TP/SL; a conditional order
    (triggerPrice + triggerDirection) rests Untriggered and fires on the cross."""
    async with client(fake_bybit, async_) as ex:
        with pytest.raises(ccxt.InvalidOrder):  # 110017 nothing to reduce
            await call(ex.create_order, PERP, "market", "sell", 0.01, None, {"reduceOnly": True})
        await call(
            ex.create_order,
            PERP,
            "market",
            "buy",
            0.02,
            None,
            {"clientOrderId": "entry", "takeProfit": 52_000, "stopLoss": 48_000},
        )
        tpsl = await call(ex.fetch_open_orders, PERP, None, None, {"orderFilter": "tpslOrder"})
        assert sorted(x["triggerPrice"] for x in tpsl) == [48_000, 52_000]
        pos = (await call(ex.fetch_positions, [PERP]))[0]
        assert pos["takeProfitPrice"] == 52_000 and pos["stopLossPrice"] == 48_000
        stop = await call(
            ex.create_order,
            PERP,
            "market",
            "buy",
            0.01,
            None,
            {"triggerPrice": 51_000, "triggerDirection": "ascending", "clientOrderId": "brk"},
        )
        got = await call(ex.fetch_open_orders, PERP, None, None, {"orderLinkId": "brk"})
        assert got[0]["triggerPrice"] == 51_000 and got[0]["info"]["orderStatus"] == "Untriggered"
        red = await call(ex.create_order, PERP, "market", "sell", 0.005, None, {"reduceOnly": True})
        assert red["id"]
        fake_bybit.set_price("BTCUSDT", 51_000)  # the breakout stop fires
        done = await call(ex.fetch_closed_orders, PERP, None, None, {"orderLinkId": "brk"})
        assert done[0]["id"] == stop["id"] and done[0]["filled"] == 0.01
        fake_bybit.set_price("BTCUSDT", 52_000)  # take-profit closes the whole position
        pos = (await call(ex.fetch_positions, [PERP]))[0]
        assert pos["contracts"] == 0
        assert await call(ex.fetch_open_orders, PERP) == []  # SL deactivated
        with pytest.raises(ccxt.InvalidOrder):  # 110092 expect Rising
            await call(
                ex.create_order,
                PERP,
                "market",
                "buy",
                0.01,
                None,
                {"triggerPrice": 51_000, "triggerDirection": "ascending"},
            )


@modes
async def test_leverage_margin_and_position_mode(fake_bybit: FakeBybit, async_: bool) -> None:
    """set_leverage -> /v5/position/set-leverage; set_margin_mode (UTA) ->
    /v5/account/set-margin-mode; set_position_mode -> /v5/position/switch-mode;
    hedge mode orders carry positionIdx 1/2 (ccxt's ``hedged`` param)."""
    async with client(fake_bybit, async_) as ex:
        await call(ex.set_leverage, 20, PERP)
        assert fake_bybit.account().leverage["BTCUSDT"] == 20
        with pytest.raises(ccxt.BadRequest):  # 110043 leverage not modified
            await call(ex.set_leverage, 20, PERP)
        with pytest.raises(ccxt.BadRequest):  # 110013 above maxLeverage
            await call(ex.set_leverage, 150, PERP)
        await call(ex.set_margin_mode, "isolated", PERP)
        assert fake_bybit.account().margin_mode == "ISOLATED_MARGIN"
        await call(ex.set_position_mode, True, PERP)
        with pytest.raises(ccxt.NoChange):  # 110025
            await call(ex.set_position_mode, True, PERP)
        await call(ex.create_order, PERP, "market", "buy", 0.01, None, {"hedged": True})
        await call(ex.create_order, PERP, "market", "sell", 0.02, None, {"hedged": True})
        assert [o.position_idx for o in fake_bybit.orders()] == [1, 2]
        pos = await call(ex.fetch_positions, [PERP])
        assert sorted((p["side"], p["contracts"]) for p in pos) == [
            ("long", 0.01),
            ("short", 0.02),
        ]
        assert all(p["hedged"] for p in pos)
        with pytest.raises(ccxt.BadRequest):  # 110024 position exists
            await call(ex.set_position_mode, False, PERP)
        with pytest.raises(ccxt.BadRequest):  # 10001 positionIdx 0 in hedge mode
            await call(ex.create_order, PERP, "market", "buy", 0.01, None, {"positionIdx": 0})
    assert fake_bybit.unhandled == []
