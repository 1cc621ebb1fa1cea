"""Pure helpers the sizers share: confidence scaling, the leverage cap, the instrument's step."""

from __future__ import annotations

from tradefleet_runtime.sdk import Instrument, OrderIntent, RiskDecision


def scaled(quantity: float, intent: OrderIntent, by_confidence: bool) -> float:
    """``quantity`` scaled by the intent's confidence (clamped to 0..1) when it carries one."""
    if not by_confidence or intent.confidence is None:
        return quantity
    return quantity * min(max(intent.confidence, 0.0), 1.0)


def leverage_capped(by_risk: float, by_leverage: float, max_leverage: float) -> str:
    """What a sizer's reason adds when ``max_leverage`` and not the risk set the size: the cap
    and the share of the asked risk left (an empty text otherwise). Without it a decision read
    "risk 1.00% of 10000.00" while a 1x cap had cut an FX order to a fifth of that risk, and a
    trader took the journal's word for the risk each trade ran."""
    if by_leverage >= by_risk or by_risk <= 0.0:
        return ""
    return (
        f", capped by max_leverage {max_leverage:g} (notional at most {max_leverage:g}x "
        f"equity) to {by_leverage / by_risk:.0%} of that risk"
    )


def to_step(quantity: float, instrument: Instrument) -> float:
    """Round down to the instrument's lot step (never up: a sizer must not over-size)."""
    step = instrument.lot_step
    if step <= 0.0:
        return quantity
    return round(int(quantity / step + 1e-9) * step, 12)


def sized(quantity: float, instrument: Instrument, reason: str) -> RiskDecision:
    """The sizer's answer: the quantity on the instrument's step, or a veto below its minimum."""
    rounded = to_step(quantity, instrument)
    if rounded <= 0.0 or rounded < instrument.min_quantity:
        return RiskDecision.veto(
            f"size {quantity:g} rounds to {rounded:g}, below the minimum "
            f"{instrument.min_quantity:g} of {instrument.symbol}",
            "below_minimum",
        )
    return RiskDecision.approve(rounded, reason)
