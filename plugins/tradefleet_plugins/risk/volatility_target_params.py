"""Params of the ``volatility-target`` sizer."""

from __future__ import annotations

from pydantic import Field

from tradefleet_runtime.sdk import PluginParams


class VolatilityTargetParams(PluginParams):
    risk_per_trade: float = Field(
        default=0.01,
        gt=0,
        le=0.2,
        description="Fraction of equity lost over `atr_multiple` ATRs against the order.",
    )
    atr_period: int = Field(default=14, ge=1, le=1000, description="ATR period (Wilder).")
    atr_multiple: float = Field(
        default=2.0, gt=0, le=100, description="ATRs of adverse move the risk is measured over."
    )
    max_leverage: float = Field(
        default=1.0,
        gt=0,
        le=1000,
        description="Cap on the notional an order opens, as a multiple of equity: the orders it "
        "sizes, and an order that came sized (a strategy's quantity, a signal's volume), cut to "
        "it on the lot step (an exit never is). When the cap, not the risk, sets the size, "
        "the decision's reason says so; the default of 1 cuts most FX, gold and index "
        "orders: set what the account allows.",
    )
    scale_by_confidence: bool = Field(
        default=True, description="Multiply the size by the intent's confidence (0..1)."
    )
