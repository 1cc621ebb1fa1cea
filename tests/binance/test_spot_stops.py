"""Spot conditional orders: STOP_LOSS(_LIMIT) and TAKE_PROFIT(_LIMIT) on the price path.

Binance spot "New order (TRADE)": STOP_LOSS / TAKE_PROFIT execute a MARKET order and
*_LIMIT a LIMIT order "when the stopPrice is reached"; "Price above market price:
STOP_LOSS BUY, TAKE_PROFIT SELL; Price below market price: STOP_LOSS SELL, TAKE_PROFIT
BUY"; an order that would trigger at once is refused with -2010 "Order would trigger
immediately.". Until triggered the order is NEW with ``isWorking: false``.
ccxt builds these from ``params={'stopLossPrice'|'takeProfitPrice': ...}``.
"""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from tests.venues.binance.server import FakeBinance

from .helpers import SPOT, call, client

modes = pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])


@modes
async def test_stop_loss_limit_triggers_on_the_way_down(
    fake_binance: FakeBinance, async_: bool
) -> None:
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, False, async_) as ex:
        await call(ex.load_markets)
        order = await call(
            ex.create_order, SPOT, "limit", "sell", 0.1, 47_900, {"stopLossPrice": 48_000}
        )
        assert order["info"]["type"] == "STOP_LOSS_LIMIT" and order["status"] == "open"
        assert order["triggerPrice"] == 48_000
        assert fake_binance.account().spot_locked["BTC"] == Decimal("0.1")
        raw = await call(ex.fetch_order, order["id"], SPOT)
        assert raw["info"]["isWorking"] is False
        fake_binance.set_price("BTCUSDT", 48_500)
        assert (await call(ex.fetch_order, order["id"], SPOT))["status"] == "open"
        fake_binance.set_price("BTCUSDT", 47_950)
        done = await call(ex.fetch_order, order["id"], SPOT)
        assert done["status"] == "closed" and done["average"] == 47_950
        assert done["info"]["isWorking"] is True
        assert fake_binance.account().spot_locked["BTC"] == 0


@modes
async def test_market_stops_and_take_profit(fake_binance: FakeBinance, async_: bool) -> None:
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, False, async_) as ex:
        await call(ex.load_markets)
        stop = await call(
            ex.create_order, SPOT, "market", "sell", 0.1, None, {"stopLossPrice": 49_000}
        )
        take = await call(
            ex.create_order, SPOT, "limit", "sell", 0.1, 55_000, {"takeProfitPrice": 55_000}
        )
        assert stop["info"]["type"] == "STOP_LOSS" and take["info"]["type"] == "TAKE_PROFIT_LIMIT"
        fake_binance.set_price("BTCUSDT", 55_100)  # take profit triggers, limit 55000 takes
        assert (await call(ex.fetch_order, take["id"], SPOT))["status"] == "closed"
        fake_binance.set_price("BTCUSDT", 48_000)  # stop triggers, fills at market
        done = await call(ex.fetch_order, stop["id"], SPOT)
        assert done["status"] == "closed" and done["average"] == 48_000
        with pytest.raises(ccxt.InvalidOrder, match="Order would trigger immediately"):
            await call(
                ex.create_order, SPOT, "market", "sell", 0.1, None, {"stopLossPrice": 49_000}
            )


def test_candle_low_triggers_a_stop(fake_binance: FakeBinance, binance_spot: ccxt.Exchange) -> None:
    """A replayed candle whose low passes the stop triggers it even if it closes above."""
    from tests.venues.binance.state import Candle

    fake_binance.set_price("BTCUSDT", 50_000)
    binance_spot.load_markets()
    order = binance_spot.create_order(SPOT, "market", "sell", 0.1, None, {"stopLossPrice": 49_000})
    d = Decimal
    fake_binance.state.spot.load_candles(
        "BTCUSDT", [Candle(0, d(50_000), d(50_100), d(48_800), d(49_900))]
    )
    fake_binance.advance("BTCUSDT", market="spot")
    done = binance_spot.fetch_order(order["id"], SPOT)
    assert done["status"] == "closed" and done["average"] == 48_800


def test_cancel_untriggered_stop_releases_funds(binance_spot: ccxt.Exchange) -> None:
    binance_spot.load_markets()
    order = binance_spot.create_order(SPOT, "limit", "buy", 0.1, 52_100, {"stopLossPrice": 52_000})
    balance = binance_spot.fetch_balance()
    assert balance["USDT"]["used"] == pytest.approx(5210)
    canceled = binance_spot.cancel_order(order["id"], SPOT)
    assert canceled["status"] == "canceled"
    assert binance_spot.fetch_balance()["USDT"]["used"] == 0
