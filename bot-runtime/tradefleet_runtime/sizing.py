"""Position-sizing arithmetic shared by the sizers and the vectorised sweep path.

The ``fixed-fractional`` risk plugin sizes each entry with :func:`fixed_fractional_quantity`,
and the optimiser's vectorised path (``optimize/vector.py``) sizes the same entries with the
same function, so the two agree to the last bit by construction, not by a copied formula.
Every sizer's ``max_leverage`` cut is :func:`leverage_cap_quantity`.
"""

from __future__ import annotations

# What the cap gives up when the fill has costs: a trillionth of the quantity. The broker
# checks the fill's margin plus its fee against the equity with its own float operations;
# a quantity that fits exactly in real numbers went over by the last bit in about a quarter
# of the cases (randomised over equities, prices, costs and leverages), and was refused whole.
_ROUNDING_ROOM = 1e-12


def closing_room(
    closing: float, price: float, taker_fee: float = 0.0, slippage: float = 0.0
) -> float:
    """What the fills closing ``closing`` of a position at ``price`` take from the equity the
    sizer read (marked at ``price``): the fill moved ``slippage`` against the bot, and the
    ``taker_fee`` on it at the worse side's price, ``c·p·(s + (1+s)·fee)``. A reversal closes
    before (or with) what it opens, so these costs leave that much less equity for its margin.
    0 when nothing closes or the fills cost nothing."""
    if not (closing > 0.0 and (taker_fee or slippage)):
        return 0.0
    return closing * price * (slippage + (1.0 + slippage) * taker_fee)


def leverage_cap_quantity(
    equity: float,
    price: float,
    max_leverage: float,
    taker_fee: float = 0.0,
    slippage: float = 0.0,
    closing: float = 0.0,
    closing_slippage: float | None = None,
    closing_price: float | None = None,
    closing_loss: float = 0.0,
) -> float:
    """The most an order at ``price`` may open under ``max_leverage``: its fill, at ``price``
    moved ``slippage`` (a fraction) against the bot, taken at ``max_leverage`` as margin, plus
    the ``taker_fee`` (a fraction of the fill's notional) paid out of equity, fits ``equity``:
    ``q·p·(1+s)·(1/max_leverage + fee) <= equity``. At a venue whose leverage is
    ``max_leverage`` that is its margin check, so an entry the cap sizes is not refused for the
    costs of its own fill (it still is when the market gaps past ``slippage`` before it fills).

    ``closing``: how much of a position the same fills close first (a reversal: the order's own
    closing part, or an exit such as ``ctx.close`` working ahead of it), whose costs
    (:func:`closing_room`, at ``closing_slippage``, default ``slippage``, and at
    ``closing_price``, default ``price``) come out of ``equity`` before the margin check of
    what opens: without them the entry of a reversal sized at the cap came a few units of
    currency over the equity the close left and was refused, the bot ending flat instead of
    reversed. An exit working ahead of the entry (``ctx.close``: a market order) fills at the
    mark, not at the entry's price: a short closed at market behind a buy limit resting 20%
    under it cost 25% more than priced at the limit, and the entry was refused again. The
    sizers pass the worse (higher) of the mark and the entry's price.

    ``closing_loss``: what the closing part loses at its own fill, certain before what opens
    does (a buy stop above the mark closing a short books the move from the mark to the
    trigger), out of ``equity`` too: the cap holds at the fill, not at the mark. 0 (the
    default, and every call that passes nothing) leaves the arithmetic as it was.

    Without costs: ``equity × max_leverage / price``, bit for bit as before costs were counted.
    0 when there is no equity or price (NaN included: a blank account bounds to nothing)."""
    if closing:
        close_slippage = slippage if closing_slippage is None else closing_slippage
        close_price = price if closing_price is None else closing_price
        equity = equity - closing_room(closing, close_price, taker_fee, close_slippage)
    if closing_loss > 0.0:
        equity = equity - closing_loss
    if not (equity > 0 and price > 0):
        return 0.0
    if not taker_fee and not slippage:
        return equity * max_leverage / price
    fill = price * (1.0 + slippage)
    per_unit = fill * (1.0 + taker_fee * max_leverage)
    return equity * max_leverage / per_unit * (1.0 - _ROUNDING_ROOM)


def fixed_fractional_quantity(
    equity: float,
    price: float,
    stop_distance: float,
    risk_per_trade: float,
    max_leverage: float,
    taker_fee: float = 0.0,
    slippage: float = 0.0,
    closing: float = 0.0,
    closing_slippage: float | None = None,
    closing_price: float | None = None,
) -> float:
    """Quantity that loses ``risk_per_trade × equity`` at the stop, capped by leverage with
    room for the fill's costs and those of what the same fills close first (``closing`` at
    ``closing_price``, see :func:`leverage_cap_quantity`); 0 when equity, price or the stop
    distance leaves nothing to trade. The risk stays a share of ``equity``: the closing costs
    only bound the margin."""
    if equity <= 0 or price <= 0 or stop_distance <= 0:
        return 0.0
    by_risk = equity * risk_per_trade / stop_distance
    by_leverage = leverage_cap_quantity(
        equity, price, max_leverage, taker_fee, slippage, closing, closing_slippage, closing_price
    )
    return min(by_risk, by_leverage)


__all__ = ["closing_room", "fixed_fractional_quantity", "leverage_cap_quantity"]
