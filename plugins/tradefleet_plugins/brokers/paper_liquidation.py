"""Where the paper broker's account is liquidated: the price of one symbol at which the
account's equity falls to its maintenance margin, and whether (and at what price) a bar reaches
it. Pure: numbers in, numbers out.

The account is one cross-margin wallet, as the paper broker keeps it: ``cash`` (the proceeds
and costs of every fill, fees and funding) plus each held quantity times its mark is the
equity; the maintenance margin is ``rate`` times the gross notional (Σ |quantity| × mark).
A venue liquidates when the equity is at or below it. With the other symbols at their marks,
the equity and the margin are linear in this symbol's price ``p``:

    equity(p) = rest + q·p          rest = cash + Σ others' q·mark
    margin(p) = rate·(|q|·p + gross_others)

so they meet at one price. A long is liquidated at or below it, a short at or above it.

Venues state the same rule in their own words: Binance's and Bybit's maintenance margin rate
(0.4–0.5 % of a BTC or ETH perpetual's notional in its first tier), and MetaTrader 5's stop-out
level (a margin level of 50 % at 1:100 leverage is an equity of 0.5 × notional / 100, a rate of
0.005).
"""

from __future__ import annotations

import math

__all__ = ["liquidation_fill_price", "liquidation_price"]


def liquidation_price(
    quantity: float, rest: float, gross_others: float, rate: float
) -> float | None:
    """The price of the symbol held ``quantity`` (signed) at which the account's equity meets
    its maintenance margin; None when no price does (a long backed by the account whatever its
    price, a flat symbol, no maintenance margin). ``rest``: cash plus the other symbols' signed
    value at their marks; ``gross_others``: their gross notional.

    A long's price may come out at or below zero: no price liquidates it. A short's at or below
    zero: the account is below its margin at any price, and the first bar liquidates it (the
    price returned is then 0.0)."""
    if not quantity or rate <= 0.0:
        return None
    if quantity > 0.0:
        price = (rate * gross_others - rest) / (quantity * (1.0 - rate))
        return price if price > 0.0 and math.isfinite(price) else None
    price = (rest - rate * gross_others) / (-quantity * (1.0 + rate))
    if not math.isfinite(price):
        return None
    return max(price, 0.0)


def liquidation_fill_price(
    quantity: float, price: float, open_: float, high: float, low: float
) -> float | None:
    """The price a bar liquidates a position of ``quantity`` (signed) at, its liquidation
    price being ``price``: the bar's open when it opened beyond it (a gap: the first price the
    venue had), else that price when the bar reaches it; None when the bar stays clear."""
    if quantity > 0.0:
        if open_ <= price:
            return open_
        return price if low <= price else None
    if open_ >= price:
        return open_
    return price if high >= price else None
