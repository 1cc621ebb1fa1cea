"""What a spot trade leaves the account of the coin, as the bot counts it (``held_quantity``)
and books it (``fill_terms``): a fee taken in the coin is not held, the count is on the lot
step and never above what the account holds, and the cash booked is what the trade cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradefleet_plugins.brokers.ccxt_orders import (
    FillRules,
    fill_terms,
    held_quantity,
    terms_by_trade,
)

USDT = frozenset({"USDT"})
STEP = 0.00001
SPOT = FillRules(USDT, "BTC", STEP, spot=True)
LINEAR = FillRules(USDT, "BTC", STEP, spot=False)


def _trade(side: str, amount: float, fee: float, currency: str = "BTC") -> dict[str, Any]:
    return {
        "side": side,
        "amount": amount,
        "price": 50_000.0,
        "fee": {"cost": fee, "currency": currency},
    }


def test_a_buys_fee_in_the_coin_bought_is_not_held() -> None:
    held = held_quantity(_trade("buy", 0.01, 0.00001), "BTC", STEP)
    assert held == (0.00999, Decimal(0))


def test_the_count_is_on_the_lot_step_and_the_rest_is_dust() -> None:
    held = held_quantity(_trade("buy", 0.01234, 0.00001234), "BTC", STEP)
    assert held.quantity == 0.01232
    assert held.dust == Decimal("0.00000766")


def test_dust_so_far_counts_in_the_next_part() -> None:
    first = held_quantity(_trade("buy", 0.004, 0.000004), "BTC", STEP)
    assert first == (0.00399, Decimal("0.000006"))
    second = held_quantity(_trade("buy", 0.006, 0.000006), "BTC", STEP, first.dust)
    assert second == (0.006, Decimal(0))  # 0.005994 + 0.000006


def test_a_sell_whose_fee_came_from_the_coin_counts_it_up_to_the_step() -> None:
    held = held_quantity(_trade("sell", 0.01, 0.0000012), "BTC", STEP)
    assert held == (0.01001, Decimal("0.0000088"))  # the account holds more than counted


def test_a_trade_of_about_one_step_is_counted_exactly_not_as_nothing() -> None:
    assert held_quantity(_trade("buy", STEP, 0.00000001), "BTC", STEP).quantity == 0.00000999


@pytest.mark.parametrize(
    ("trade", "base"),
    [
        (_trade("buy", 0.01, 5.0, "USDT"), "BTC"),  # fee in the quote
        (_trade("buy", 0.01, 0.0007, "BNB"), "BTC"),  # paid with BNB
        ({"side": "buy", "amount": 0.01, "price": 50_000.0, "fee": None}, "BTC"),
        (_trade("buy", 0.01, 0.00001), ""),  # no base asset known
    ],
)
def test_a_fee_not_in_the_coin_leaves_the_amount(trade: dict[str, Any], base: str) -> None:
    assert held_quantity(trade, base, STEP) == (0.01, Decimal(0))


def test_a_fill_books_the_cash_the_trade_cost() -> None:
    terms = fill_terms(_trade("buy", 0.01234, 0.00001234), SPOT)
    assert terms.quantity == 0.01232
    assert terms.fee == 1.0  # (0.01234 - 0.01232) × 50,000, exactly
    assert terms.converted


def test_off_spot_a_fill_is_the_trades_amount_and_fee() -> None:
    terms = fill_terms(_trade("buy", 0.01, 0.00001), LINEAR)
    assert (terms.quantity, terms.converted) == (0.01, True)
    assert terms.fee == pytest.approx(0.5)
    quote_fee = fill_terms(_trade("buy", 0.01, 0.25, "USDT"), SPOT)
    assert (quote_fee.quantity, quote_fee.fee) == (0.01, 0.25)


def test_dust_is_carried_within_an_order_in_the_venues_order_never_across_orders() -> None:
    def part(trade_id: str, order: str, ts: int, amount: float) -> dict[str, Any]:
        return {
            **_trade("buy", amount, amount / 1000),
            "id": trade_id,
            "order": order,
            "timestamp": ts,
        }

    trades = [
        part("3", "B", 1_000, 0.006),  # another order: starts with no dust
        part("2", "A", 2_000, 0.006),
        part("1", "A", 1_000, 0.004),
    ]
    terms = terms_by_trade(trades, SPOT)
    assert terms["1"].quantity == 0.00399  # A's first part: 0.000006 left over
    assert terms["2"].quantity == 0.006  # ... counted in A's next part
    assert terms["3"].quantity == 0.00599  # B's own: nothing carried from A


@given(
    parts=st.lists(st.integers(min_value=1, max_value=200_000), min_size=1, max_size=8),
    rate_bps=st.integers(min_value=1, max_value=100),
    price=st.integers(min_value=1, max_value=200_000),
)
def test_an_orders_fills_never_count_more_than_the_account_holds(
    parts: list[int], rate_bps: int, price: int
) -> None:
    """Over any order filled in parts: each fill's count is on the step (or, for a part of
    about one step, exact), their sum is at most what the account holds and under one step
    below it, and each fill's quantity and fee make its cost."""
    step = Decimal("0.00001")
    dust = Decimal(0)
    counted = Decimal(0)
    holds = Decimal(0)
    for units in parts:
        gross = units * step
        fee = (gross * rate_bps / 10_000).quantize(Decimal("1e-8"))
        trade = {
            "side": "buy",
            "amount": float(gross),
            "price": float(price),
            "fee": {"cost": float(fee), "currency": "BTC"},
        }
        terms = fill_terms(trade, SPOT, dust)
        dust = terms.dust
        quantity = Decimal(repr(terms.quantity))
        assert quantity > 0
        counted += quantity
        holds += gross - fee
        assert float(quantity * price) + terms.fee == pytest.approx(float(gross * price), rel=1e-12)
    assert counted <= holds
    assert holds - counted < step
    assert counted + dust == holds
