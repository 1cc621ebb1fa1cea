"""Params of the ``kelly`` sizer."""

from __future__ import annotations

from pydantic import Field

from tradefleet_plugins.risk.sizers_params import MAX_LEVERAGE_DESCRIPTION
from tradefleet_runtime.sdk import PluginParams


class KellyParams(PluginParams):
    fraction: float = Field(
        default=0.25, gt=0, le=1, description="Share of the full Kelly fraction to risk."
    )
    min_trades: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="Closed trades needed before Kelly sizes; fewer: `fallback_risk`.",
    )
    lookback_trades: int = Field(
        default=200, ge=0, le=100_000, description="Most recent closed trades used (0: all)."
    )
    max_risk: float = Field(
        default=0.02,
        gt=0,
        le=1,
        description="Cap on the fraction of equity lost if the stop is hit.",
    )
    fallback_risk: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Fraction of equity risked while there are too few trades (0: veto).",
    )
    default_stop_pct: float = Field(
        default=0.02,
        gt=0,
        lt=1,
        description="Stop distance assumed (fraction of price) for orders without a stop.",
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
