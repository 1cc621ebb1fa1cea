"""``instruments.bracket_problem``: an entry whose stop-loss or take-profit the venue would refuse
once it fills, sized on what the position will hold and valued at the child's own price.

``held_after_fee`` is what a buy leaves held when the venue keeps its fee in the coin bought,
as the ccxt broker counts it (``held_quantity``); ``below_minimum_advice`` what a person does
about a close no order of the bot can send.
"""

from __future__ import annotations

import pytest

from tradefleet_runtime.instruments import (
    below_minimum_advice,
    bracket_problem,
    held_after_fee,
    limit_problem,
)
from tradefleet_runtime.model import Instrument, ReasonCode, Side

BTC = Instrument(
    "BTCUSDT", tick_size=0.01, lot_step=0.00001, min_notional=5.0, quote_currency="USDT"
)
BINANCE_TAKER = 0.001


@pytest.mark.parametrize(
    ("quantity", "rate", "held"),
    [
        (0.00011, BINANCE_TAKER, 0.0001),  # 0.00010989, down to the step
        (0.00012, BINANCE_TAKER, 0.00011),  # 0.00011988
        (0.01, BINANCE_TAKER, 0.00999),
        (0.00011, 0.0, 0.00011),  # a fee paid in another currency
    ],
)
def test_a_buy_holds_what_the_fee_in_the_coin_leaves_on_the_step(
    quantity: float, rate: float, held: float
) -> None:
    assert held_after_fee(quantity, Side.BUY, rate, BTC.lot_step) == pytest.approx(held, abs=1e-12)


def test_a_sell_is_left_whole() -> None:
    """A sell's fee is paid in what it receives (the quote): the position it opens is whole."""
    assert held_after_fee(0.00011, Side.SELL, BINANCE_TAKER, BTC.lot_step) == 0.00011


def test_the_fee_in_the_coin_can_put_a_stop_under_the_minimum() -> None:
    """The walkthrough's entry: 0.00011 × 48,000 = 5.28 passes, but 0.0001 is held."""
    assert bracket_problem(BTC, Side.BUY, 0.00011, 48_000.0, None) is None
    problem = bracket_problem(BTC, Side.BUY, 0.00011, 48_000.0, None, BINANCE_TAKER)
    assert problem == (
        ReasonCode.BELOW_MIN_NOTIONAL,
        "its stop-loss at 48000 could not be placed once the entry fills: the position would "
        "hold 0.0001 (0.00011 less the venue's 0.1% fee taken in the coin bought, down to the "
        "lot step 1e-05), and notional 4.8 (0.0001 × 48000) is below BTCUSDT's minimum "
        "notional 5",
    )


def test_a_stop_below_the_entry_is_valued_at_its_own_price() -> None:
    """The entry itself is at the minimum (0.0001 × 50,000 = 5); its stop at 48,500 is not."""
    assert limit_problem(BTC, 0.0001, 50_000.0) is None
    problem = bracket_problem(BTC, Side.BUY, 0.0001, 48_500.0, 52_000.0)
    assert problem is not None
    assert problem[0] is ReasonCode.BELOW_MIN_NOTIONAL
    assert problem[1].startswith("its stop-loss at 48500 could not be placed")
    assert "notional 4.85 (0.0001 × 48500)" in problem[1]


def test_a_shorts_take_profit_below_the_entry_is_checked_too() -> None:
    problem = bracket_problem(BTC, Side.SELL, 0.0001, 51_000.0, 49_000.0)
    assert problem is not None
    assert problem[1].startswith("its take-profit at 49000 could not be placed")
    assert bracket_problem(BTC, Side.SELL, 0.0001, 51_000.0, None) is None


def test_a_bracket_that_passes_after_the_fee() -> None:
    assert bracket_problem(BTC, Side.BUY, 0.00012, 46_000.0, 52_000.0, BINANCE_TAKER) is None


def test_a_minimum_quantity_counts_what_is_held() -> None:
    lots = Instrument("EURUSD", lot_step=1_000.0, min_quantity=1_000.0)
    assert bracket_problem(lots, Side.BUY, 1_000.0, 1.05, 1.2) is None
    problem = bracket_problem(lots, Side.BUY, 1_000.0, 1.05, 1.2, 0.001)
    assert problem is not None
    assert problem[0] is ReasonCode.INVALID_QUANTITY  # 999 rounds down to nothing
    coins = Instrument("ETHUSDT", lot_step=0.0001, min_quantity=0.01)
    problem = bracket_problem(coins, Side.BUY, 0.01, 1_900.0, None, BINANCE_TAKER)
    assert problem is not None
    assert problem[0] is ReasonCode.BELOW_MIN_QUANTITY
    assert "quantity 0.0099 is below ETHUSDT's minimum quantity 0.01" in problem[1]


def test_no_child_or_no_minimum_is_no_problem() -> None:
    assert bracket_problem(BTC, Side.BUY, 0.0001, None, None, BINANCE_TAKER) is None
    free = Instrument("TEST")
    assert bracket_problem(free, Side.BUY, 0.0001, 1.0, 2.0, BINANCE_TAKER) is None


def test_the_advice_for_a_close_below_the_minimum() -> None:
    assert below_minimum_advice(BTC, ReasonCode.BELOW_MIN_NOTIONAL) == (
        "below the venue's minimum notional 5 USDT: close at the venue by hand or add to the "
        "position"
    )
    coins = Instrument("ETHUSDT", min_quantity=0.01)
    assert below_minimum_advice(coins, ReasonCode.BELOW_MIN_QUANTITY) == (
        "below the venue's minimum quantity 0.01 ETHUSDT: close at the venue by hand or add to "
        "the position"
    )
    assert below_minimum_advice(BTC, ReasonCode.VENUE_REJECTED) is None
