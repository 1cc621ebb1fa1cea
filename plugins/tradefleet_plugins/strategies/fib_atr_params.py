"""Params of ``fib-atr``."""

from __future__ import annotations

from pydantic import Field, field_validator

from tradefleet_runtime.sdk import PluginParams


class FibAtrParams(PluginParams):
    levels: tuple[float, ...] = Field(
        default=(0.382, 0.5, 0.618),
        min_length=1,
        description="Retracement ratios of the last swing that are entries.",
    )
    swing_left: int = Field(default=3, ge=1, le=50, description="Bars left of a swing point.")
    swing_right: int = Field(
        default=3, ge=1, le=50, description="Bars right of a swing point (its confirmation)."
    )
    trend_period: int = Field(
        default=100, ge=2, le=10_000, description="EMA period deciding the trend's direction."
    )
    atr_period: int = Field(default=14, ge=1, le=1_000, description="ATR period (Wilder).")
    stop_atr: float = Field(default=1.5, gt=0, le=100, description="Stop-loss in ATRs.")
    target_atr: float = Field(default=3.0, gt=0, le=100, description="Take-profit in ATRs.")
    allow_short: bool = Field(
        default=True,
        description="Sell a pullback in a downtrend too; false for a spot account, which cannot "
        "sell what it does not hold (its backtest would book shorts the live bot cannot make).",
    )

    @field_validator("levels")
    @classmethod
    def _ratios(cls, levels: tuple[float, ...]) -> tuple[float, ...]:
        for ratio in levels:
            if not 0 < ratio < 1:
                raise ValueError(f"a retracement ratio is between 0 and 1, not {ratio}")
        return tuple(sorted(levels))
