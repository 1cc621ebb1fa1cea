"""Fees at the edges of the held rule and of the fee's sign.

- A spot buy that closes a short (Binance takes its fee from the coin bought) counts its
  whole amount, the fee valued at the fill price: the bot ends flat, not a rest below the lot
  step that reads as a short no order can close. A buy that crosses to a long takes the fee
  from the part that opens the long.
- A maker rebate (a negative fee: Bybit VIP) is no cost: booked as 0 and said in the log
  (``Fill.fee`` cannot be negative), never as a fee of its size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import tests.venues.bybit.state as bybit_state
from tests.brokers.harness import VenueHarness, base_balance, harness_for
from tradefleet_plugins.brokers.ccxt_orders import (
    FillRules,
    fee_in,
    fill_terms,
    rebate_in,
    terms_by_trade,
)
from tradefleet_runtime.sdk import Fill, OrderStatus, OrderType, Side

PRICE = 50_000.0  # the fakes' start price
SPOT = FillRules(frozenset({"USDT"}), "BTC", 0.00001, spot=True, quote="USDT")
LINEAR = FillRules(frozenset({"USDT"}), "BTC", 0.001, spot=False, quote="USDT")


def _trade(
    side: str,
    amount: float,
    fee: float,
    currency: str = "BTC",
    price: float = PRICE,
    trade_id: str = "t1",
    order: str = "o1",
    ts: int = 1,
) -> dict[str, Any]:
    return {
        "id": trade_id,
        "order": order,
        "side": side,
        "amount": amount,
        "price": price,
        "timestamp": ts,
        "fee": {"cost": fee, "currency": currency},
    }


# -- spot: a buy that closes a short -------------------------------------------------------


def test_a_buy_closing_a_short_counts_its_whole_amount_and_values_the_coin_fee() -> None:
    terms = fill_terms(_trade("buy", 0.01, 0.00001), SPOT, position=-0.01)
    assert terms.quantity == 0.01
    assert terms.fee == pytest.approx(0.00001 * PRICE, abs=1e-9)


def test_a_buy_opening_a_long_still_counts_what_the_account_holds() -> None:
    terms = fill_terms(_trade("buy", 0.01, 0.00001), SPOT, position=0.0)
    assert terms.quantity == 0.00999
    assert terms.fee == pytest.approx(0.5, abs=1e-9)


def test_a_reduce_only_buy_closes_even_when_the_broker_saw_no_short() -> None:
    # After a restart the broker has not seen the short; the engine marks an order that only
    # reduces its position reduce-only.
    terms = fill_terms(_trade("buy", 0.01, 0.00001), SPOT, position=0.0, closing=True)
    assert terms.quantity == 0.01
    assert terms.fee == pytest.approx(0.5, abs=1e-9)


def test_a_buy_crossing_to_a_long_takes_the_fee_from_the_long() -> None:
    terms = fill_terms(_trade("buy", 0.01, 0.00001), SPOT, position=-0.005)
    # 0.005 closes the short; the long is 0.005 less the fee: what the account gained.
    assert terms.quantity == 0.00999
    assert terms.fee == pytest.approx(0.5, abs=1e-9)


def test_a_crossing_buy_whose_long_part_the_fee_eats_ends_flat() -> None:
    # The long part (one step) is less than the fee (1.001 steps): the bot ends flat, the fee
    # beyond the long part valued, never a rest off the step.
    terms = fill_terms(_trade("buy", 0.01001, 0.00001001), SPOT, position=-0.01)
    assert terms.quantity == 0.01
    assert terms.fee == pytest.approx(0.00001001 * PRICE, abs=1e-9)


def test_a_short_summed_with_float_noise_is_read_on_the_lot_step() -> None:
    noisy = -(0.7 - 0.4)  # -0.29999999999999993: a short of 0.3 summed in floats
    terms = fill_terms(_trade("buy", 0.3, 0.0003), SPOT, position=noisy)
    assert terms.quantity == 0.3


def test_a_sell_closing_a_long_with_its_fee_in_the_coin_ends_flat() -> None:
    terms = fill_terms(_trade("sell", 0.01, 0.00001), SPOT, position=0.01)
    assert terms.quantity == 0.01
    assert terms.fee == pytest.approx(0.5, abs=1e-9)


def test_a_sell_leaving_a_long_counts_its_fee_as_sold_but_not_past_flat() -> None:
    kept = fill_terms(_trade("sell", 0.005, 0.00001), SPOT, position=0.01)
    assert kept.quantity == 0.00501  # the fee out of the coin: the long left is what is held
    flat = fill_terms(_trade("sell", 0.00999, 0.00001), SPOT, position=0.01)
    assert flat.quantity == 0.01


def test_trades_read_back_count_a_short_round_trip_as_the_poller_does() -> None:
    trades = [
        _trade("sell", 0.01, 0.5, "USDT", trade_id="t1", order="o1", ts=1),
        _trade("buy", 0.01, 0.00001, trade_id="t2", order="o2", ts=2),
    ]
    terms = terms_by_trade(trades, SPOT)
    assert terms["t2"].quantity == 0.01
    # A bracket child (reduce-only) closes what it buys with no short among the trades read.
    alone = terms_by_trade(trades[1:], SPOT, closing={"o2"})
    assert alone["t2"].quantity == 0.01


# -- a negative fee: a rebate --------------------------------------------------------------


def test_a_rebate_is_no_cost_and_is_said() -> None:
    trade = _trade("buy", 0.01, -0.12475, "USDT", price=49_900.0)
    assert fee_in(trade, LINEAR.account_currencies, "BTC") == (0.0, True)
    assert rebate_in(trade, LINEAR.account_currencies, "BTC") == pytest.approx(0.12475)
    terms = fill_terms(trade, LINEAR)
    assert (terms.quantity, terms.fee) == (0.01, 0.0)
    assert terms.rebate == pytest.approx(0.12475)


def test_a_rebate_in_the_coin_takes_nothing_from_what_is_held() -> None:
    # Bybit spot pays a sell's maker rebate in the base coin (and a buy's in the quote).
    terms = fill_terms(_trade("buy", 0.01, -0.0000025), SPOT)
    assert terms.quantity == 0.01
    assert terms.fee == 0.0
    assert terms.rebate == pytest.approx(0.0000025 * PRICE)


# -- against the fakes ---------------------------------------------------------------------


@pytest.fixture
def spot(tmp_path: Path) -> Iterator[VenueHarness]:
    # The fake's account holds 1 BTC: a spot short sells coin it holds.
    with harness_for("binance-spot", tmp_path, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        yield harness


def _fills(harness: VenueHarness, client_order_id: str) -> list[Fill]:
    return [
        e for e in harness.events if isinstance(e, Fill) and e.client_order_id == client_order_id
    ]


def _usdt(harness: VenueHarness) -> Decimal:
    with harness.fake.state.lock:
        account = harness.fake.state.accounts[harness.fake.api_key]
        free: Decimal = account.spot_free.get("USDT", Decimal(0))
        locked: Decimal = account.spot_locked.get("USDT", Decimal(0))
        return free + locked


def _value(harness: VenueHarness) -> float:
    """The account's USDT and BTC at the fakes' start price."""
    return float(_usdt(harness) + sum(base_balance(harness)) * Decimal(repr(PRICE)))


def _booked(fills: list[Fill]) -> float:
    """The cash the fills booked (buys pay, sells receive, fees cost) plus the position they
    leave at the start price: the bot's equity change."""
    cash = sum((-f.quantity if f.side is Side.BUY else f.quantity) * f.price - f.fee for f in fills)
    held = sum(f.quantity if f.side is Side.BUY else -f.quantity for f in fills)
    return cash + held * PRICE


def test_a_spot_short_closed_by_a_buy_leaves_the_bot_flat(spot: VenueHarness) -> None:
    before = _value(spot)
    since = spot.now() - 5
    spot.answer(spot.broker.submit(spot.order("sh1", Side.SELL, quantity=0.01)))
    assert spot.wait_final("sh1").status is OrderStatus.FILLED
    spot.answer(spot.broker.submit(spot.order("sh2", Side.BUY, quantity=0.01)))
    assert spot.wait_final("sh2").status is OrderStatus.FILLED
    spot.collect()
    fills = _fills(spot, "sh1") + _fills(spot, "sh2")
    assert sum(f.quantity for f in _fills(spot, "sh2")) == 0.01
    assert spot.broker.positions() == {}
    # The buy's fee came out of the coin: the account holds 0.00001 BTC less than before.
    assert sum(base_balance(spot)) == Decimal("0.99999")
    # The bot's equity moved by what the account's did (both fees).
    assert _booked(fills) == pytest.approx(_value(spot) - before, abs=1e-6)
    # A restart reads the same trades back the same way.
    reported = [f for f in spot.broker.fill_reports(since) if f.client_order_id == "sh2"]
    assert [(f.quantity, f.fee) for f in reported] == [
        (f.quantity, f.fee) for f in _fills(spot, "sh2")
    ]


def test_a_spot_buy_crossing_a_short_to_a_long_counts_what_the_account_gained(
    spot: VenueHarness,
) -> None:
    before = _value(spot)
    spot.answer(spot.broker.submit(spot.order("x1", Side.SELL, quantity=0.005)))
    assert spot.wait_final("x1").status is OrderStatus.FILLED
    spot.answer(spot.broker.submit(spot.order("x2", Side.BUY, quantity=0.01)))
    assert spot.wait_final("x2").status is OrderStatus.FILLED
    spot.collect()
    position = spot.broker.positions()[spot.symbol]
    # Net, the account gained 0.005 - 0.00001 BTC: the long, to the satoshi.
    assert position.quantity == pytest.approx(0.00499, abs=1e-12)
    assert sum(base_balance(spot)) - 1 == Decimal("0.00499")
    fills = _fills(spot, "x1") + _fills(spot, "x2")
    assert _booked(fills) == pytest.approx(_value(spot) - before, abs=1e-6)


def test_a_reduce_only_sell_of_a_carried_long_leaves_no_short_for_the_next_buy(
    spot: VenueHarness,
) -> None:
    """After a restart the broker has counted nothing: a reduce-only sell closing the long
    the journal carried must not read as a short, or the next plain buy "closes" it and counts
    its coin fee as held (a later sell would ask for coin the account lacks)."""
    spot.answer(spot.broker.submit(spot.order("c1", Side.SELL, quantity=0.01, reduce_only=True)))
    assert spot.wait_final("c1").status is OrderStatus.FILLED
    spot.answer(spot.broker.submit(spot.order("c2", Side.BUY, quantity=0.01)))
    assert spot.wait_final("c2").status is OrderStatus.FILLED
    spot.collect()
    # An opening buy: what the account gained of the coin, its fee taken off (the held rule).
    assert sum(f.quantity for f in _fills(spot, "c2")) == pytest.approx(0.00999, abs=1e-12)


def test_a_bybit_maker_rebate_is_booked_as_no_fee_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(bybit_state, "MAKER_FEE", Decimal("-0.00025"))  # VIP maker rebate
    with harness_for("bybit", tmp_path) as bybit:
        assert isinstance(bybit, VenueHarness)
        with caplog.at_level(logging.WARNING):
            bybit.answer(
                bybit.broker.submit(
                    bybit.order("rb1", quantity=0.01, order_type=OrderType.LIMIT, price=49_900.0)
                )
            )
            bybit.trade_through(49_800.0)
            assert bybit.wait_final("rb1").status is OrderStatus.FILLED
            bybit.collect()
        (fill,) = _fills(bybit, "rb1")
        assert fill.fee == 0.0
        said = [r.getMessage() for r in caplog.records if "rebate" in r.getMessage()]
        assert len(said) == 1
        assert fill.fill_id in said[0] and "0.12475" in said[0]
