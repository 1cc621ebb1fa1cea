"""Params of ``indicator-confluence``."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from tradefleet_plugins.params_rules import above_field
from tradefleet_runtime.sdk import PluginParams


class ConfluenceParams(PluginParams):
    threshold: int = Field(
        default=3, ge=1, le=5, description="Votes (of 5) a direction needs before an entry."
    )
    rsi_period: int = Field(default=14, ge=2, le=1_000, description="RSI period (Wilder).")
    macd_fast: int = Field(default=12, ge=2, le=1_000, description="MACD fast EMA period.")
    macd_slow: int = Field(default=26, ge=3, le=1_000, description="MACD slow EMA period.")
    macd_signal: int = Field(default=9, ge=1, le=1_000, description="MACD signal EMA period.")
    ema_period: int = Field(default=50, ge=2, le=10_000, description="Trend EMA period.")
    bollinger_period: int = Field(default=20, ge=2, le=1_000, description="Bollinger period.")
    bollinger_k: float = Field(default=2.0, gt=0, le=10, description="Bollinger band width (σ).")
    rsi_oversold: float = Field(
        default=30, ge=0, le=50, description="RSI at or below this votes long (rebound)."
    )
    rsi_overbought: float = Field(
        default=70, ge=50, le=100, description="RSI at or above this votes short."
    )
    stop_loss_pct: float = Field(
        default=0.02, gt=0, lt=1, description="Stop-loss distance from the entry bar's close."
    )
    take_profit_pct: float = Field(
        default=0.05, gt=0, le=10, description="Take-profit distance from the entry bar's close."
    )
    early_exit_fraction: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Close early once the loss reaches this fraction of the stop distance "
        "(0.8: at −1.6% with a 2% stop); none: only the stop.",
    )
    allow_short: bool = Field(default=True, description="Enter shorts on short votes too.")

    # Checked here, not where the indicators are built, so that a manifest with them crossed
    # is refused naming the param before the bot starts (MACD would raise at its start).
    @field_validator("macd_slow")
    @classmethod
    def _slower_than_fast(cls, slow: int, info: ValidationInfo) -> int:
        return above_field(slow, info, "macd_fast")

    # Both 50 (each one's bound allows it): an RSI of 50 would vote long and short at once.
    @field_validator("rsi_overbought")
    @classmethod
    def _above_oversold(cls, overbought: float, info: ValidationInfo) -> float:
        return above_field(overbought, info, "rsi_oversold")
