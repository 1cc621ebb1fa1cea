"""Params of the ``volatility-target`` sizer."""

from __future__ import annotations

from pydantic import Field

from tradefleet_plugins.risk.sizers_params import MAX_LEVERAGE_DESCRIPTION
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
        description=MAX_LEVERAGE_DESCRIPTION,
    )
    scale_by_confidence: bool = Field(
        default=True, description="Multiply the size by the intent's confidence (0..1)."
    )
