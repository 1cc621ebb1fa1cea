"""The real ccxt (sync + async, ``binance`` + ``binanceusdm``) drives the fake end to end.

Acceptance: load markets, fetch OHLCV, fetch ticker, place/fetch/cancel orders by
client order id, fetch open orders, my trades, balances, futures positions,
``set_leverage`` and ``set_margin_mode``.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import ccxt
import pytest

from tests.venues.binance.server import FakeBinance

from .helpers import MODE_IDS, MODES, PERP, SPOT, call, client

ROOT = Path(__file__).resolve().parents[2]

modes = pytest.mark.parametrize(("futures", "async_"), MODES, ids=MODE_IDS)


@modes
async def test_load_markets_builds_markets_from_exchange_info(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """ccxt's parse_market reads PRICE_FILTER.tickSize / LOT_SIZE.stepSize,minQty,maxQty and
    MIN_NOTIONAL.notional (futures) / NOTIONAL.minNotional (spot) — Binance
    "Exchange information" (spot GET /api/v3/exchangeInfo, futures GET /fapi/v1/exchangeInfo)."""
    async with client(fake_binance, futures, async_) as ex:
        markets = await call(ex.load_markets)
        sym = PERP if futures else SPOT
        m = markets[sym]
        assert m["id"] == "BTCUSDT"
        if futures:
            assert m["swap"] and m["linear"] and m["settle"] == "USDT"
            assert m["precision"] == {"amount": 0.001, "price": 0.1, "base": 1e-08, "quote": 1e-08}
            assert m["limits"]["cost"]["min"] == 100
            assert SPOT not in markets
        else:
            assert m["spot"]
            assert m["precision"]["amount"] == 1e-05 and m["precision"]["price"] == 0.01
            assert m["limits"]["amount"]["min"] == 1e-05
            assert m["limits"]["cost"]["min"] == 5
            assert PERP not in markets
    paths = {r.path for r in fake_binance.requests}
    assert paths == {"/fapi/v1/exchangeInfo" if futures else "/api/v3/exchangeInfo"}
    assert fake_binance.unhandled == []


@modes
async def test_ticker_and_ohlcv_follow_the_price_path(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """fetch_ticker -> GET ticker/24hr (lastPrice), fetch_ohlcv -> GET klines rows
    [openTime, o, h, l, c, v, closeTime, ...] (Binance "Kline/Candlestick data")."""
    sym = PERP if futures else SPOT
    fake_binance.set_price("BTCUSDT", 60_000)
    fake_binance.set_price("BTCUSDT", 60_500)
    fake_binance.set_price("BTCUSDT", 59_800)
    async with client(fake_binance, futures, async_) as ex:
        ticker = await call(ex.fetch_ticker, sym)
        assert ticker["last"] == 59_800
        candles = await call(ex.fetch_ohlcv, sym, "1m", None, 10)
        assert candles[-1][1:5] == [60_000, 60_500, 59_800, 59_800]
    assert fake_binance.unhandled == []


@modes
async def test_csv_replay_is_served_as_klines(
    fake_binance: FakeBinance, futures: bool, async_: bool, tmp_path: Path
) -> None:
    """Replaying OHLCV rows from a CSV: history becomes klines, ``advance`` plays the next row
    (its high/low fill resting limits)."""
    sym = PERP if futures else SPOT
    rows = (ROOT / "data" / "BTCUSD_H1_bitfinex_2017-2019.csv").read_text().splitlines()
    csv = tmp_path / "btc_h1.csv"
    csv.write_text("\n".join(rows[:301]) + "\n")  # header + 300 hourly rows
    n = fake_binance.load_csv(csv, "BTCUSDT", history=200)
    assert n == 300
    async with client(fake_binance, futures, async_) as ex:
        candles = await call(ex.fetch_ohlcv, sym, "1h", None, 24)
        assert len(candles) == 24
        assert all(b[0] - a[0] == 3_600_000 for a, b in itertools.pairwise(candles))
        last_close = candles[-1][4]
        ticker = await call(ex.fetch_ticker, sym)
        assert ticker["last"] == last_close
        fake_binance.advance("BTCUSDT")
        after = await call(ex.fetch_ohlcv, sym, "1h", None, 24)
        assert after[-1][0] == candles[-1][0] + 3_600_000


@modes
async def test_order_lifecycle_by_client_order_id(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """POST /order with newClientOrderId, GET /order with origClientOrderId, GET openOrders,
    DELETE /order (Binance "New order", "Query order", "Cancel order")."""
    sym = PERP if futures else SPOT
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        placed = await call(
            ex.create_order,
            sym,
            "limit",
            "buy",
            0.01,
            49_000,
            {"newClientOrderId": "tf-lifecycle-1"},
        )
        assert placed["status"] == "open"
        assert placed["clientOrderId"] == "tf-lifecycle-1"
        fetched = await call(ex.fetch_order, None, sym, {"origClientOrderId": "tf-lifecycle-1"})
        assert fetched["id"] == placed["id"]
        assert fetched["price"] == 49_000 and fetched["amount"] == 0.01
        by_id = await call(ex.fetch_order, placed["id"], sym)
        assert by_id["clientOrderId"] == "tf-lifecycle-1"
        open_orders = await call(ex.fetch_open_orders, sym)
        assert [o["clientOrderId"] for o in open_orders] == ["tf-lifecycle-1"]
        canceled = await call(ex.cancel_order, None, sym, {"origClientOrderId": "tf-lifecycle-1"})
        assert canceled["status"] == "canceled"
        assert await call(ex.fetch_open_orders, sym) == []
        closed = await call(ex.fetch_order, placed["id"], sym)
        assert closed["status"] == "canceled"
        history = await call(ex.fetch_orders, sym)
        assert [o["id"] for o in history] == [placed["id"]]
    assert fake_binance.unhandled == []


@modes
async def test_limit_fills_when_path_crosses_and_trades_are_reported(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """A resting BUY limit fills at its price (maker) when the price path trades through it;
    GET myTrades / userTrades report it with commission (Binance "Account trade list")."""
    sym = PERP if futures else SPOT
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        order = await call(
            ex.create_order, sym, "limit", "buy", 0.01, 49_500, {"newClientOrderId": "tf-cross-1"}
        )
        fake_binance.load_path("BTCUSDT", [49_800, 49_400, 49_900])
        assert fake_binance.advance("BTCUSDT") == []
        fills = fake_binance.advance("BTCUSDT")
        assert len(fills) == 1
        done = await call(ex.fetch_order, order["id"], sym)
        assert done["status"] == "closed" and done["filled"] == 0.01
        assert done["average"] == 49_500
        trades = await call(ex.fetch_my_trades, sym)
        assert len(trades) == 1
        t = trades[0]
        assert t["order"] == order["id"] and t["price"] == 49_500 and t["amount"] == 0.01
        assert t["takerOrMaker"] == "maker"
        if futures:
            assert t["fee"]["currency"] == "USDT"
            assert t["fee"]["cost"] == pytest.approx(0.01 * 49_500 * 0.0002)
        else:
            assert t["fee"]["currency"] == "BTC"  # commission in the received asset
            assert t["fee"]["cost"] == pytest.approx(0.01 * 0.001)


@modes
async def test_market_order_moves_balances(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """A MARKET order fills at the current price; spot free balances move (GET /api/v3/account
    ``balances[].free/locked``), futures wallet pays the commission (GET /fapi/v3/account)."""
    sym = PERP if futures else SPOT
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        before = await call(ex.fetch_balance)
        order = await call(ex.create_order, sym, "market", "buy", 0.02)
        assert order["status"] == "closed" and order["filled"] == 0.02
        assert order["average"] == 50_000
        after = await call(ex.fetch_balance)
        if futures:
            fee = 0.02 * 50_000 * 0.0005
            assert after["USDT"]["total"] == pytest.approx(before["USDT"]["total"] - fee)
            assert after["USDT"]["used"] == pytest.approx(0.02 * 50_000 / 20)
        else:
            assert after["USDT"]["free"] == pytest.approx(before["USDT"]["free"] - 1_000)
            assert after["BTC"]["free"] == pytest.approx(before["BTC"]["free"] + 0.02 * 0.999)
        # a resting limit locks funds on spot (free -> used)
        await call(ex.create_order, sym, "limit", "buy", 0.01, 40_000)
        locked = await call(ex.fetch_balance)
        if not futures:
            assert locked["USDT"]["used"] == pytest.approx(400)
            assert locked["USDT"]["free"] == pytest.approx(after["USDT"]["free"] - 400)
        else:
            assert locked["USDT"]["used"] == pytest.approx(after["USDT"]["used"] + 400 / 20)


@pytest.mark.parametrize(
    ("futures", "async_"), [(True, False), (True, True)], ids=["usdm-sync", "usdm-async"]
)
async def test_futures_positions_leverage_and_margin_mode(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """set_leverage -> POST /fapi/v1/leverage, set_margin_mode -> POST /fapi/v1/marginType,
    fetch_positions -> GET /fapi/v3/positionRisk (positionAmt, entryPrice, unRealizedProfit),
    realized PnL on close in userTrades.realizedPnl (Binance USDⓈ-M "Position Information V3")."""
    fake_binance.set_price("BTCUSDT", 50_000)
    async with client(fake_binance, futures, async_) as ex:
        await call(ex.load_markets)
        lev = await call(ex.set_leverage, 10, PERP)
        assert lev["leverage"] == 10 and lev["symbol"] == "BTCUSDT"
        res = await call(ex.set_margin_mode, "isolated", PERP)
        assert res["code"] == 200
        # setting the same mode again: Binance -4046 "No need to change margin type.";
        # ccxt's default options['setMarginMode']['throwMarginModeAlreadySet'] is True
        with pytest.raises(ccxt.MarginModeAlreadySet):
            await call(ex.set_margin_mode, "isolated", PERP)
        assert fake_binance.account().margin_type["BTCUSDT"] == "ISOLATED"
        assert fake_binance.account().leverage["BTCUSDT"] == 10
        assert await call(ex.fetch_positions, [PERP]) == []
        await call(ex.create_order, PERP, "market", "buy", 0.01)
        fake_binance.set_price("BTCUSDT", 51_000)
        positions = await call(ex.fetch_positions, [PERP])
        assert len(positions) == 1
        pos = positions[0]
        assert pos["side"] == "long" and pos["contracts"] == 0.01
        assert pos["entryPrice"] == 50_000 and pos["markPrice"] == 51_000
        assert pos["unrealizedPnl"] == pytest.approx(10)
        assert pos["marginMode"] == "isolated"
        v2 = await call(ex.fetch_positions, [PERP], {"useV2": True})
        assert v2[0]["leverage"] == 10
        await call(ex.create_order, PERP, "market", "sell", 0.01, None, {"reduceOnly": True})
        assert await call(ex.fetch_positions, [PERP]) == []
        trades = await call(ex.fetch_my_trades, PERP)
        assert trades[-1]["info"]["realizedPnl"] == "10"
        wallet = fake_binance.account().futures_wallet["USDT"]
        fees = 0.01 * 50_000 * 0.0005 + 0.01 * 51_000 * 0.0005
        assert float(wallet) == pytest.approx(100_000 + 10 - fees)


@modes
async def test_ohlcv_since_and_intervals(
    fake_binance: FakeBinance, futures: bool, async_: bool
) -> None:
    """klines ``startTime``/``limit``: with startTime the first ``limit`` candles from it;
    without, the latest ``limit``; intervals aggregate the 1-minute grid (Binance
    "Kline/Candlestick data": "If startTime and endTime are not sent, the most recent klines
    are returned")."""
    from tests.venues.binance.state import Candle

    sym = PERP if futures else SPOT
    d = Decimal
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    rows = [
        Candle(t0 + i * 60_000, d(100 + i), d(101 + i), d(99 + i), d(100 + i), d(1))
        for i in range(120)
    ]
    fake_binance.state.spot.load_candles("BTCUSDT", rows, history=120)
    fake_binance.state.usdm.load_candles("BTCUSDT", rows, history=120)
    async with client(fake_binance, futures, async_) as ex:
        first = await call(ex.fetch_ohlcv, sym, "1m", t0 + 10 * 60_000, 5)
        assert [c[0] for c in first] == [t0 + (10 + i) * 60_000 for i in range(5)]
        latest = await call(ex.fetch_ohlcv, sym, "1m", None, 3)
        assert [c[4] for c in latest] == [217, 218, 219]
        hours = await call(ex.fetch_ohlcv, sym, "1h")
        assert [(c[0], c[1], c[2], c[3], c[4], c[5]) for c in hours] == [
            (t0, 100, 160, 99, 159, 60),
            (t0 + 3_600_000, 160, 220, 159, 219, 60),
        ]
