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
    instrument: Instrument, quantity: float, price: float | None
) -> tuple[ReasonCode, str] | None:
    """Why the venue would refuse ``quantity`` at ``price`` (already rounded), naming the limit;
    None when the order is within every limit. ``price`` is the limit/stop price, or the last
    mark for a market order (None: notional not checked)."""
    if quantity <= 0.0:
        return ReasonCode.INVALID_QUANTITY, f"quantity {quantity:g} rounds to nothing"
    if instrument.min_quantity and quantity < instrument.min_quantity * (1.0 - _EPSILON):
        return (
            ReasonCode.BELOW_MIN_QUANTITY,
            f"quantity {quantity:g} is below {instrument.symbol}'s minimum quantity "
            f"{instrument.min_quantity:g}",
        )
    if quantity > instrument.max_quantity * (1.0 + _EPSILON):
        return (
            ReasonCode.INVALID_QUANTITY,
            f"quantity {quantity:g} is above {instrument.symbol}'s maximum quantity "
            f"{instrument.max_quantity:g}",
        )
    if instrument.min_notional and price is not None and price > 0.0:
        # Quantities are units of the base asset everywhere in the runtime (a venue that
        # counts in lots or contracts converts at its broker): the notional is quantity × price.
        notional = quantity * price
        if notional < instrument.min_notional * (1.0 - _EPSILON):
            return (
                ReasonCode.BELOW_MIN_NOTIONAL,
                f"notional {notional:g} ({quantity:g} × {price:g}) is below "
                f"{instrument.symbol}'s minimum notional {instrument.min_notional:g}",
            )
    return None


__all__ = ["limit_problem", "round_price", "round_quantity"]
