"""Params of the ``quality-guard`` risk plugin."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from tradefleet_runtime.sdk import PluginParams


class QualityGuardParams(PluginParams):
    window: int = Field(
        default=50,
        ge=5,
        le=10_000,
        description="Slippage samples (fills) and closed trades the figures are taken over.",
    )
    min_samples: int = Field(
        default=20,
        ge=2,
        le=10_000,
        description="Samples a measure needs before the guard acts on it (at most `window`).",
    )
    slippage_limit_bps: float = Field(
        default=20.0,
        gt=0,
        le=10_000,
        description="Upper specification limit of slippage, in basis points: a fill's price "
        "against the price its order was decided at (its limit or trigger price, else the "
        "mark), worse for the bot counted positive. Cpk = (limit - mean) / (3 sigma).",
    )
    shrink_below_cpk: float = Field(
        default=1.33,
        gt=-10,
        le=10,
        description="Below this slippage Cpk new entries are cut by `shrink_factor`.",
    )
    stop_below_cpk: float = Field(
        default=1.0,
        gt=-10,
        le=10,
        description="Below this slippage Cpk (lower than `shrink_below_cpk`) no new entries "
        "are taken: a lock only a person resets (ResetRiskLock); the samples then start afresh.",
    )
    shrink_factor: float = Field(
        default=0.5, gt=0, lt=1, description="Multiplier of new entry sizes while shrinking."
    )
    win_rate_floor: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Optional: below this share of winning trades (over the last `window` "
        "closed trades, once there are `min_samples`) new entries are cut by `shrink_factor`.",
    )

    @field_validator("min_samples")
    @classmethod
    def _within_window(cls, value: int, info: ValidationInfo) -> int:
        window = info.data.get("window")
        if window is not None and value > window:
            raise ValueError(f"min_samples ({value}) must be at most window ({window})")
        return value

    @field_validator("stop_below_cpk")
    @classmethod
    def _below_shrink(cls, value: float, info: ValidationInfo) -> float:
        shrink = info.data.get("shrink_below_cpk")
        if shrink is not None and not value < shrink:
            raise ValueError(
                f"stop_below_cpk ({value:.10g}) must be below shrink_below_cpk ({shrink:.10g})"
            )
        return value
