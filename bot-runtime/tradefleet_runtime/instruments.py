"""An order against its instrument's rules: prices on the tick, quantities on the lot step, and
the venue's minimums checked before anything leaves the bot. Pure functions.

Rounding never makes an order worse for the bot than it asked: a quantity rounds down (an order
never grows), a limit price rounds toward the passive side (a buy never pays more, a sell never
takes less), a stop's trigger rounds away from the market (it never fires earlier than asked).
A venue refuses an off-tick price outright, so an unrounded order would be rejected there, after
the risk chain had approved it; rounding here keeps the journaled order the one the venue sees.
"""

from __future__ import annotations

import decimal
import functools
import math
from typing import Protocol, runtime_checkable

from tradefleet_runtime.model import Instrument, OrderType, ReasonCode, Side

# Prices and quantities are multiples of a step in decimal, but steps such as 0.1 are not exact
# in binary: a price that is "on" the tick may sit a few ulps off it (0.3 / 0.1 is
# 2.9999999999999996). Only that much is snapped to the grid: a relative 1e-14 is about 45 ulps
# (1e-9 snapped 313.18999968 lots up to 313.19, and a 0.27-tick difference on a 274,429.58
# price with a 0.00001 tick to the tick). So "never grows" holds to within 1e-14 of the value.
_EPSILON = 1e-14


def _on_grid(value: float, step: float, up: bool) -> float:
    units = value / step
    nearest = round(units)
    if abs(units - nearest) <= _EPSILON * max(1.0, abs(units)):
        units = nearest
    else:
        units = math.ceil(units) if up else math.floor(units)
    # To the step's own decimals: 0.1 × 3 is 0.3, not 0.30000000000000004 (a buy limit one ulp
    # above the price it asked for, on 5560.0 with a 0.00001 tick).
    return round(units * step, _decimals(step))


@functools.cache
def _decimals(step: float) -> int:
    """How many decimals ``step`` is written with (0.25: 2, 1e-05: 5, 5.0: 0)."""
    exponent = decimal.Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def round_quantity(quantity: float, lot_step: float) -> float:
    """``quantity`` rounded down to ``lot_step`` (0: any quantity)."""
    if lot_step <= 0.0 or quantity <= 0.0:
        return quantity
    return _on_grid(quantity, lot_step, up=False)


def round_price(price: float, tick_size: float, side: Side, order_type: OrderType) -> float:
    """``price`` on the tick, rounded the way that is never worse for the bot (module doc)."""
    if tick_size <= 0.0 or price <= 0.0:
        return price
    buy = side is Side.BUY
    # A limit buy rounds down, a limit sell up; a buy stop triggers above the market (round
    # up), a sell stop below it (round down).
    up = (not buy) if order_type is OrderType.LIMIT else buy
    return _on_grid(price, tick_size, up=up)


def limit_problem(
    instrument: Instrument,
    quantity: float,
    price: float | None,
    reduce_only_exempt: bool = False,
) -> tuple[ReasonCode, str] | None:
    """Why the venue would refuse ``quantity`` at ``price`` (already rounded), naming the limit;
    None when the order is within every limit. ``price`` is the limit/stop price, or the last
    mark for a market order (None: notional not checked). ``reduce_only_exempt``: the order is
    reduce-only (a close, a bracket's child) at a venue that takes those below its minimum
    notional (``ReduceOnlyMinimums``): only its quantity is checked. The one rule the engine's
    checks, its book of bracket children and a broker's own placing share, so that they never
    disagree on which orders the venue takes."""
    if reduce_only_exempt:
        price = None
    if quantity <= 0.0:
        return ReasonCode.INVALID_QUANTITY, f"quantity {quantity:.10g} rounds to nothing"
    if instrument.min_quantity and quantity < instrument.min_quantity * (1.0 - _EPSILON):
        return (
            ReasonCode.BELOW_MIN_QUANTITY,
            f"quantity {quantity:.10g} is below {instrument.symbol}'s minimum quantity "
            f"{instrument.min_quantity:.10g}",
        )
    if quantity > instrument.max_quantity * (1.0 + _EPSILON):
        return (
            ReasonCode.INVALID_QUANTITY,
            f"quantity {quantity:.10g} is above {instrument.symbol}'s maximum quantity "
            f"{instrument.max_quantity:.10g}",
        )
    if instrument.min_notional and price is not None and price > 0.0:
        # Quantities are units of the base asset everywhere in the runtime (a venue that
        # counts in lots or contracts converts at its broker): the notional is quantity × price.
        notional = quantity * price
        if notional < instrument.min_notional * (1.0 - _EPSILON):
            return (
                ReasonCode.BELOW_MIN_NOTIONAL,
                f"notional {notional:.10g} ({quantity:.10g} × {price:.10g}) is below "
                f"{instrument.symbol}'s minimum notional {instrument.min_notional:.10g}",
            )
    return None


@runtime_checkable
class CoinFees(Protocol):
    """A broker whose venue may keep a buy's fee in the coin bought (the ccxt broker on
    Binance spot): the engine asks it the rate before a bracket entry leaves
    (``bracket_problem``). Any other broker's fees leave what a buy holds whole."""

    def coin_fee_rate(self, symbol: str) -> float:
        """The share of a buy of ``symbol`` the venue may keep in the coin bought (0: none)."""
        ...


@runtime_checkable
class ReduceOnlyMinimums(Protocol):
    """A broker whose venue lets a reduce-only order below the minimum notional through (the
    ccxt broker on Binance USDⓈ-M — "-4164 Order's notional must be no smaller than … (unless
    you choose reduce only)" — and Bybit linear, whose closing orders are exempt from the
    minimum order value; the minimum quantity still holds there). The engine asks it before a
    reduce-only order, or a bracket entry whose children are sent reduce-only, is checked
    against the notional (``limit_problem``, ``bracket_problem``). Any other broker's minimum
    notional holds for every order."""

    def reduce_only_below_min_notional(self, symbol: str) -> bool:
        """Whether the venue takes a reduce-only order of ``symbol`` below its minimum
        notional."""
        ...


def below_minimum_advice(instrument: Instrument, code: ReasonCode) -> str | None:
    """What a person does about a close refused as below ``instrument``'s minimum (``code``):
    no order of the bot can close such a position — an emergency flatten's close is refused
    the same way — so it is closed at the venue by hand (its "convert small balances" on
    spot), or added to until the whole is over the minimum. None for any other refusal."""
    if code is ReasonCode.BELOW_MIN_NOTIONAL:
        currency = f" {instrument.quote_currency}" if instrument.quote_currency else ""
        limit = f"minimum notional {instrument.min_notional:.10g}{currency}"
    elif code is ReasonCode.BELOW_MIN_QUANTITY:
        limit = f"minimum quantity {instrument.min_quantity:.10g} {instrument.symbol}"
    else:
        return None
    return f"below the venue's {limit}: close at the venue by hand or add to the position"


def held_after_fee(quantity: float, side: Side, coin_fee_rate: float, lot_step: float) -> float:
    """What a position holds once an order of ``quantity`` fills, when the venue keeps
    ``coin_fee_rate`` of a buy as its fee in the coin bought (Binance spot, unless BNB pays
    it): the rest, down to ``lot_step`` — as a broker counts it (the ccxt broker's
    ``held_quantity``), so that it never sells more than the account holds. A sell's fee (and
    any fee where ``coin_fee_rate`` is 0) leaves the quantity whole."""
    if side is not Side.BUY or coin_fee_rate <= 0.0:
        return quantity
    return round_quantity(quantity * (1.0 - coin_fee_rate), lot_step)


def bracket_problem(
    instrument: Instrument,
    side: Side,
    quantity: float,
    stop_loss: float | None,
    take_profit: float | None,
    coin_fee_rate: float = 0.0,
    reduce_only_exempt: bool = False,
) -> tuple[ReasonCode, str] | None:
    """Why the stop-loss or take-profit of an entry of ``quantity`` on ``side`` could not be
    placed at the venue once the entry fills, naming the limit and the numbers; None when both
    could. A child closes what the position holds (``held_after_fee``), and its notional is at
    its own price: a long's stop below the entry is worth less than the entry, so an entry just
    over the minimum notional gets a stop under it. The venue would refuse that child after
    the entry filled, leaving the position without it; refused here, the entry never leaves.
    ``stop_loss`` and ``take_profit`` are on the tick already (None or 0: none).
    ``reduce_only_exempt``: the children, sent reduce-only, are below no minimum notional at
    this venue (``ReduceOnlyMinimums``); their quantity is still checked. An exit (a
    reduce-only order) is never asked: its children close nothing, and an exit is never
    refused."""
    held = held_after_fee(quantity, side, coin_fee_rate, instrument.lot_step)
    for role, price in (("stop-loss", stop_loss), ("take-profit", take_profit)):
        if not price:
            continue
        problem = limit_problem(instrument, held, price, reduce_only_exempt)
        if problem is None:
            continue
        kept = ""
        if held != quantity:
            kept = (
                f"the position would hold {held:.10g} ({quantity:.10g} less the venue's "
                f"{coin_fee_rate * 100:.10g}% fee taken in the coin bought, down to the lot step "
                f"{instrument.lot_step:.10g}), and "
            )
        return (
            problem[0],
            f"its {role} at {price:.10g} could not be placed once the entry fills: "
            f"{kept}{problem[1]}",
        )
    return None


__all__ = [
    "CoinFees",
    "ReduceOnlyMinimums",
    "below_minimum_advice",
    "bracket_problem",
    "held_after_fee",
    "limit_problem",
    "round_price",
    "round_quantity",
]
