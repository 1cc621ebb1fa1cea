"""USDⓈ-M conditional orders through the Algo Order API, as ccxt 4.5 sends them.

ccxt's binanceusdm routes stop / take-profit orders (``stopLossPrice``,
``takeProfitPrice``, ``triggerPrice``) to POST /fapi/v1/algoOrder with
``algoType=CONDITIONAL`` and ``triggerPrice``; queries them with ``params={'trigger':
True}`` (GET algoOrder / openAlgoOrders / allAlgoOrders, DELETE algoOrder). Shapes
follow the sample in ccxt's ``parse_order`` docstring. Trigger rule (USDⓈ-M "New
Order": STOP/STOP_MARKET BUY triggers at price >= stopPrice, SELL at <=;
TAKE_PROFIT(_MARKET) the reverse); one that would trigger at once is -2021 "Order would
immediately trigger." (ccxt linear map: OrderImmediatelyFillable).
"""

from __future__ import annotations

import ccxt
import pytest

from tests.venues.binance.server import FakeBinance

from .helpers import PERP, call, client

modes = pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])


@modes
async def test_reduce_only_stop_market_closes_the_position(
    fake_binance: FakeBinance, async_: bool
) -> None:
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, True, async_) as ex:
        await call(ex.load_markets)
        await call(ex.create_order, PERP, "market", "buy", 0.01)
        stop = await call(
            ex.create_order,
            PERP,
            "market",
            "sell",
            0.01,
            None,
            {"stopLossPrice": 48_000, "reduceOnly": True, "clientOrderId": "sl-1"},
        )
        assert stop["status"] == "open" and stop["triggerPrice"] == 48_000
        assert stop["clientOrderId"] == "sl-1"
        assert [r.path for r in fake_binance.requests if r.method == "POST"][-1] == (
            "/fapi/v1/algoOrder"
        )
        opened = await call(ex.fetch_open_orders, PERP, None, None, {"trigger": True})
        assert [o["id"] for o in opened] == [stop["id"]]
        assert await call(ex.fetch_open_orders, PERP) == []  # not a regular order yet
        fake_binance.set_price("BTCUSDT", 48_500)
        assert len(await call(ex.fetch_positions, [PERP])) == 1
        fake_binance.set_price("BTCUSDT", 47_900)
        assert await call(ex.fetch_positions, [PERP]) == []
        done = await call(ex.fetch_order, stop["id"], PERP, {"trigger": True})
        assert done["status"] == "closed" and done["info"]["algoStatus"] == "FINISHED"
        trades = await call(ex.fetch_my_trades, PERP)
        assert trades[-1]["price"] == 47_900 and trades[-1]["side"] == "sell"


@modes
async def test_take_profit_limit_cancel_and_rules(fake_binance: FakeBinance, async_: bool) -> None:
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, True, async_) as ex:
        await call(ex.load_markets)
        tp = await call(
            ex.create_order, PERP, "limit", "buy", 0.01, 47_000, {"takeProfitPrice": 47_100}
        )
        assert tp["info"]["orderType"] == "TAKE_PROFIT"
        with pytest.raises(ccxt.OrderImmediatelyFillable, match="-2021"):
            await call(
                ex.create_order, PERP, "market", "sell", 0.01, None, {"stopLossPrice": 51_000}
            )
        with pytest.raises(ccxt.BadRequest, match="-20132"):
            await call(
                ex.create_order,
                PERP,
                "limit",
                "buy",
                0.01,
                47_000,
                {"takeProfitPrice": 47_100, "clientOrderId": tp["clientOrderId"]},
            )
        await call(ex.cancel_order, tp["id"], PERP, {"trigger": True})
        fake_binance.set_price("BTCUSDT", 46_000)  # canceled: nothing triggers
        assert await call(ex.fetch_positions, [PERP]) == []
        history = await call(ex.fetch_orders, PERP, None, None, {"trigger": True})
        assert [o["status"] for o in history] == ["canceled"]
        with pytest.raises(ccxt.OrderNotFound):
            await call(ex.cancel_order, tp["id"], PERP, {"trigger": True})


def test_triggered_limit_rests_then_fills(
    fake_binance: FakeBinance, binance_usdm: ccxt.Exchange
) -> None:
    """A triggered STOP (limit) that cannot take becomes a resting LIMIT order."""
    ex = binance_usdm
    ex.load_markets()
    fake_binance.set_price("BTCUSDT", 50_000)
    algo = ex.create_order(PERP, "limit", "buy", 0.01, 50_400, {"triggerPrice": 50_500})
    fake_binance.set_price("BTCUSDT", 50_600)  # triggers; 50600 > limit 50400: rests
    info = ex.fetch_order(algo["id"], PERP, {"trigger": True})["info"]
    assert info["algoStatus"] == "TRIGGERED" and info["actualOrderId"]
    resting = ex.fetch_open_orders(PERP)
    assert [o["id"] for o in resting] == [info["actualOrderId"]]
    fake_binance.set_price("BTCUSDT", 50_300)
    assert ex.fetch_order(info["actualOrderId"], PERP)["status"] == "closed"
