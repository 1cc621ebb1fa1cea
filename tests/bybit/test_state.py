"""The pure model, without HTTP: deterministic ids, matching, margin, TP/SL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.venues.bybit.errors import BybitError
from tests.venues.bybit.state import BybitState

BASE = {"category": "linear", "symbol": "BTCUSDT"}


def make() -> BybitState:
    st = BybitState()
    st.clock.frozen_ms = 1_700_000_040_000
    st.add_account("k", "s", 10_000)
    st.set_price("BTCUSDT", 50_000)
    return st


def order(st: BybitState, **p: str) -> str:
    return st.new_order(st.accounts["k"], {**BASE, **p}).order_id


def test_same_calls_same_ids_and_fills() -> None:
    def run() -> list[object]:
        st = make()
        order(st, side="Buy", orderType="Limit", qty="0.01", price="49000", orderLinkId="a")
        order(st, side="Buy", orderType="Market", qty="0.01")
        fills = st.set_price("BTCUSDT", 48_000)
        return [(o.order_id, o.status, o.cum_qty) for o in st.orders.values()] + [
            (f.exec_id, f.price, f.is_maker) for f in fills
        ]

    assert run() == run()


def test_resting_limit_fills_at_its_price_as_maker() -> None:
    st = make()
    oid = order(st, side="Sell", orderType="Limit", qty="0.01", price="51000")
    (fill,) = st.set_price("BTCUSDT", 52_000)
    assert fill.price == 51_000 and fill.is_maker and fill.fee_rate == Decimal("0.0002")
    assert st.orders[oid].status == "Filled"
    assert st.accounts["k"].positions[("BTCUSDT", 0)].size == Decimal("-0.01")


def test_margin_is_reserved_and_released() -> None:
    st = make()
    acct = st.accounts["k"]
    oid = order(st, side="Buy", orderType="Limit", qty="1", price="49000")  # IM 4,900 at 10x
    assert acct.order_im == 4_900
    with pytest.raises(BybitError) as err:
        order(st, side="Buy", orderType="Limit", qty="1.2", price="49000")
    assert err.value.code == 110007
    st.cancel(acct, {**BASE, "orderId": oid})
    assert acct.order_im == 0


def test_stop_loss_closes_and_take_profit_is_deactivated() -> None:
    st = make()
    order(st, side="Buy", orderType="Market", qty="0.1", takeProfit="55000", stopLoss="48000")
    kinds = sorted(o.stop_order_type for o in st.open_by_account["k"].values())
    assert kinds == ["StopLoss", "TakeProfit"]
    st.set_price("BTCUSDT", 47_500)
    assert st.accounts["k"].positions[("BTCUSDT", 0)].size == 0
    statuses = {o.stop_order_type: o.status for o in st.orders.values() if o.stop_order_type}
    assert statuses == {"StopLoss": "Filled", "TakeProfit": "Deactivated"}
    assert st.open_by_account["k"] == {}
