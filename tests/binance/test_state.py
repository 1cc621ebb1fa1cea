"""The pure matching model (no HTTP): fills, fees, balances, positions, CSV replay."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.venues.binance.errors import BinanceError
from tests.venues.binance.state import BinanceState, read_ohlcv_csv

ROOT = Path(__file__).resolve().parents[2]
KEY = "k1"


def _state() -> BinanceState:
    s = BinanceState()
    s.add_account(KEY, "s1", spot={"USDT": 100_000, "BTC": 1}, futures={"USDT": 10_000})
    return s


def _limit(side: str, qty: str, price: str, coid: str | None = None) -> dict[str, str]:
    p = {
        "symbol": "BTCUSDT",
        "side": side,
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": qty,
        "price": price,
    }
    if coid:
        p["newClientOrderId"] = coid
    return p


def _market(side: str, qty: str) -> dict[str, str]:
    return {"symbol": "BTCUSDT", "side": side, "type": "MARKET", "quantity": qty}


def test_resting_limits_fill_in_price_then_time_priority() -> None:
    s = _state()
    acct = s.accounts[KEY]
    a = s.spot.new_order(acct, _limit("BUY", "0.01", "49000", "a"))
    b = s.spot.new_order(acct, _limit("BUY", "0.01", "49500", "b"))
    c = s.spot.new_order(acct, _limit("BUY", "0.01", "49500", "c"))
    fills = s.spot.set_price("BTCUSDT", D("49500"))
    assert [t.order_id for t in fills] == [b.order_id, c.order_id]
    assert a.status == "NEW" and b.status == c.status == "FILLED"
    assert all(t.is_maker and t.price == D("49500") for t in fills)


def test_spot_locks_and_fees() -> None:
    """Buy limit locks qty*price quote; fill pays commission in the received asset."""
    s = _state()
    acct = s.accounts[KEY]
    order = s.spot.new_order(acct, _limit("BUY", "0.1", "40000"))
    assert acct.spot_locked["USDT"] == D("4000")
    assert acct.spot_free["USDT"] == D("96000")
    s.spot.set_price("BTCUSDT", D("39000"))  # fills at the limit, not at 39000
    assert order.status == "FILLED" and order.cum_quote == D("4000")
    assert acct.spot_locked["USDT"] == 0 and acct.spot_free["USDT"] == D("96000")
    assert acct.spot_free["BTC"] == D("1") + D("0.1") - D("0.0001")
    sell = s.spot.new_order(acct, _market("SELL", "0.5"))
    assert sell.fills[0].commission == D("19.5") and sell.fills[0].commission_asset == "USDT"
    assert acct.spot_free["USDT"] == D("96000") + D("19500") - D("19.5")


def test_an_account_paying_fees_in_bnb_gets_all_it_bought_and_pays_in_bnb() -> None:
    """The account's "Using BNB to pay for fees": the commission in BNB at 25 % off, priced at
    BNBUSDT's last price; the coin bought (or the USDT received) whole. Without the BNB the
    commission is taken as without the switch."""
    s = BinanceState()
    s.add_account(KEY, "s1", spot={"USDT": 100_000, "BNB": D("0.001")}, bnb_fees=True)
    acct = s.accounts[KEY]
    s.spot.set_price("BNBUSDT", D("600"))
    s.spot.set_price("BTCUSDT", D("50000"))
    buy = s.spot.new_order(acct, _market("BUY", "0.01"))
    # 500 USDT x 0.1 % x 0.75 / 600
    assert (buy.fills[0].commission, buy.fills[0].commission_asset) == (D("0.000625"), "BNB")
    assert acct.spot_free["BTC"] == D("0.01")
    assert acct.spot_free["USDT"] == D("99500")
    assert acct.spot_free["BNB"] == D("0.000375")
    sell = s.spot.new_order(acct, _market("SELL", "0.01"))  # 0.000625 BNB due, 0.000375 held
    assert (sell.fills[0].commission, sell.fills[0].commission_asset) == (D("0.5"), "USDT")
    assert acct.spot_free["USDT"] == D("99999.5")


def test_cancel_releases_locked_funds() -> None:
    s = _state()
    acct = s.accounts[KEY]
    s.spot.new_order(acct, _limit("SELL", "0.4", "60000", "s1"))
    assert acct.spot_locked["BTC"] == D("0.4")
    s.spot.cancel_order(acct, {"symbol": "BTCUSDT", "origClientOrderId": "s1"})
    assert acct.spot_locked["BTC"] == 0 and acct.spot_free["BTC"] == D("1")
    with pytest.raises(BinanceError) as err:
        s.spot.cancel_order(acct, {"symbol": "BTCUSDT", "origClientOrderId": "s1"})
    assert err.value.code == -2011


def test_futures_position_average_entry_realized_pnl_and_flip() -> None:
    s = _state()
    acct = s.accounts[KEY]
    s.usdm.set_price("BTCUSDT", D("50000"))
    s.usdm.new_order(acct, _market("BUY", "0.010"))
    s.usdm.set_price("BTCUSDT", D("52000"))
    s.usdm.new_order(acct, _market("BUY", "0.010"))
    pos = acct.positions["BTCUSDT"]
    assert pos.amount == D("0.02") and pos.entry_price == D("51000")
    assert s.unrealized(acct, "BTCUSDT") == D("20")
    s.usdm.set_price("BTCUSDT", D("53000"))
    flip = s.usdm.new_order(acct, _market("SELL", "0.030"))
    assert flip.fills[0].realized_pnl == D("40")  # 0.02 * (53000 - 51000)
    assert pos.amount == D("-0.01") and pos.entry_price == D("53000")
    fees = sum(t.commission for t in s.usdm.trades[(KEY, "BTCUSDT")])
    assert acct.futures_wallet["USDT"] == D("10000") + D("40") - fees


def test_futures_margin_uses_leverage() -> None:
    s = _state()
    acct = s.accounts[KEY]
    s.usdm.set_price("BTCUSDT", D("50000"))
    with pytest.raises(BinanceError) as err:  # 250k notional / 20x = 12.5k > 10k
        s.usdm.new_order(acct, _market("BUY", "5"))
    assert err.value.code == -2019
    s.set_leverage(acct, "BTCUSDT", "50")
    s.usdm.new_order(acct, _market("BUY", "5"))
    assert s.futures_totals(acct)["position_im"] == D("5000")


def test_klines_aggregate_minutes_into_intervals() -> None:
    s = _state()
    rows = read_ohlcv_csv(ROOT / "data" / "BTCUSD_H1_bitfinex_2017-2019.csv")
    assert rows[0].open_time < rows[-1].open_time
    s.spot.load_candles("BTCUSDT", rows[:48], history=48)
    hourly = s.spot.klines("BTCUSDT", "1h", None, None, 500)
    assert len(hourly) == 48
    daily = s.spot.klines("BTCUSDT", "1d", None, None, 500)
    assert sum(c.volume for c in daily) == sum(c.volume for c in rows[:48])
    assert daily[-1].close == rows[47].close
    assert max(c.high for c in daily) == max(c.high for c in rows[:48])


def test_csv_formats() -> None:
    eur = read_ohlcv_csv(ROOT / "data" / "EURUSD_H1_2017.csv")
    assert eur[0].open_time == 1483308000000  # 01.01.2017 22:00 UTC
    assert eur[0].open == D("1.05236")


def test_replay_fills_on_candle_high_low() -> None:
    """A candle whose low trades through a resting BUY fills it even if it closes above."""
    s = _state()
    acct = s.accounts[KEY]
    s.spot.set_price("BTCUSDT", D("50000"))
    order = s.spot.new_order(acct, _limit("BUY", "0.01", "49000"))
    from tests.venues.binance.state import Candle

    s.spot.load_candles("BTCUSDT", [Candle(0, D("50000"), D("50500"), D("48900"), D("50200"))])
    s.spot.advance("BTCUSDT")
    assert order.status == "FILLED" and s.spot.prices["BTCUSDT"] == D("50200")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["BUY", "SELL"]),
            st.integers(min_value=1, max_value=50),  # qty in 0.001
            st.integers(min_value=45_000, max_value=55_000),  # limit price
            st.integers(min_value=45_000, max_value=55_000),  # next price
            st.booleans(),  # cancel something
        ),
        max_size=25,
    )
)
def test_spot_balances_are_conserved(
    steps: list[tuple[str, int, int, int, bool]],
) -> None:
    """Invariants: nothing goes negative; locked == what open orders hold; quote + base
    value only changes by trades and fees (no money created)."""
    s = _state()
    acct = s.accounts[KEY]
    s.spot.set_price("BTCUSDT", D("50000"))
    for side, qty, price, nxt, cancel in steps:
        try:
            s.spot.new_order(acct, _limit(side, str(D(qty) / 1000), str(price)))
        except BinanceError as exc:
            assert exc.code in (-2010, -1013)
        open_orders = s.spot.list_open(acct, "BTCUSDT")
        if cancel and open_orders:
            s.spot.cancel_order(
                acct, {"symbol": "BTCUSDT", "orderId": str(open_orders[0].order_id)}
            )
        s.spot.set_price("BTCUSDT", D(nxt))
        for asset in ("USDT", "BTC"):
            assert acct.spot_free.get(asset, D(0)) >= 0
            assert acct.spot_locked.get(asset, D(0)) >= 0
        open_orders = s.spot.list_open(acct, "BTCUSDT")
        assert acct.spot_locked.get("USDT", D(0)) == sum(
            (o.remaining * o.price for o in open_orders if o.side == "BUY"), D(0)
        )
        assert acct.spot_locked.get("BTC", D(0)) == sum(
            (o.remaining for o in open_orders if o.side == "SELL"), D(0)
        )
    trades = s.spot.trades.get((KEY, "BTCUSDT"), [])
    btc = D(1) + sum(
        (t.qty if t.side == "BUY" else -t.qty) - (t.commission if t.side == "BUY" else 0)
        for t in trades
    )
    usdt = D(100_000) + sum(
        (-t.quote_qty if t.side == "BUY" else t.quote_qty - t.commission) for t in trades
    )

    def total(asset: str) -> D:
        return acct.spot_free.get(asset, D(0)) + acct.spot_locked.get(asset, D(0))

    assert total("BTC") == btc and total("USDT") == usdt
