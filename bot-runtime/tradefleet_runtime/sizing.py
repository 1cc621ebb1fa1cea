"""Position-sizing arithmetic shared by a sizer and the vectorised sweep path.

The ``fixed-fractional`` risk plugin sizes each entry with :func:`fixed_fractional_quantity`,
and the optimiser's vectorised path (``optimize/vector.py``) sizes the same entries with the
same function, so the two agree to the last bit by construction, not by a copied formula.
"""

from __future__ import annotations


def fixed_fractional_quantity(
    equity: float,
    price: float,
    stop_distance: float,
    risk_per_trade: float,
    max_leverage: float,
) -> float:
    """Quantity that loses ``risk_per_trade × equity`` at the stop, capped by leverage
    (0 when equity, price or the stop distance leaves nothing to trade)."""
    if equity <= 0 or price <= 0 or stop_distance <= 0:
        return 0.0
    by_risk = equity * risk_per_trade / stop_distance
    by_leverage = equity * max_leverage / price
    return min(by_risk, by_leverage)


__all__ = ["fixed_fractional_quantity"]
