"""Params of the ``kelly`` sizer."""

from __future__ import annotations

from pydantic import Field

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
        description="Cap on the notional an order opens, as a multiple of equity: the orders it "
        "sizes, and an order that came sized (a strategy's quantity, a signal's volume), cut to "
        "it on the lot step (an exit never is). When the cap, not the risk, sets the size, "
        "the decision's reason says so; the default of 1 cuts most FX, gold and index "
        "orders: set what the account allows.",
    )
    scale_by_confidence: bool = Field(
        default=True, description="Multiply the size by the intent's confidence (0..1)."
    )
