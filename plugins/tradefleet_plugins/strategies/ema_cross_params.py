"""Params of ``ema-cross``."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from tradefleet_plugins.params_rules import above_field
from tradefleet_runtime.sdk import PluginParams


class EmaCrossParams(PluginParams):
    fast: int = Field(default=10, ge=1, le=10_000, description="Period of the fast EMA (bars).")
    slow: int = Field(default=30, ge=2, le=10_000, description="Period of the slow EMA (bars).")
    allow_short: bool = Field(
        default=True, description="Go short when the fast EMA crosses below; else go flat."
    )
    stop_loss_pct: float | None = Field(
        default=None, gt=0, lt=1, description="Stop-loss distance from the entry bar's close."
    )
    take_profit_pct: float | None = Field(
        default=None, gt=0, description="Take-profit distance from the entry bar's close."
    )

    @field_validator("slow")
    @classmethod
    def _slower_than_fast(cls, slow: int, info: ValidationInfo) -> int:
        return above_field(slow, info, "fast")
