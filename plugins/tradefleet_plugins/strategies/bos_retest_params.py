"""Params of ``bos-retest``."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from tradefleet_plugins.params_rules import bot_symbol_keys
from tradefleet_runtime.sdk import PluginParams, format_timeframe, parse_timeframe


class BosRetestParams(PluginParams):
    higher_timeframe: str = Field(
        default="5m",
        description="Timeframe whose close beyond the last swing is the break of structure "
        "(a multiple of the bot's timeframe).",
    )
    swing_left: int = Field(
        default=2, ge=1, le=50, description="Bars left of a swing point (higher timeframe)."
    )
    swing_right: int = Field(
        default=2, ge=1, le=50, description="Bars right of a swing point, i.e. its confirmation."
    )
    retest_pips: float = Field(
        default=0.8, ge=0, le=1_000, description="How near the broken level a retest must reach."
    )
    pip_size: float = Field(default=0.0001, gt=0, description="Price of one pip (default symbol).")
    pip_sizes: dict[str, float] = Field(
        default_factory=dict,
        description="Pip size per symbol, e.g. {USDJPY: 0.01}; others use pip_size.",
    )
    stop_buffer_pips: float = Field(
        default=0.5, ge=0, le=1_000, description="Stop this far beyond the retest swing."
    )
    risk_multiple: float = Field(
        default=2.0, gt=0, le=100, description="Take-profit at this many times the risk."
    )
    expiry_bars: int = Field(
        default=30, ge=1, le=100_000, description="Base bars a break waits for its retest."
    )

    @field_validator("higher_timeframe")
    @classmethod
    def _a_timeframe(cls, value: str, info: ValidationInfo) -> str:
        seconds = parse_timeframe(value)  # raises ValueError with the reason
        # The engine builds the higher series from the bot's bars, so it refuses one that is
        # not a whole number of them, but only when the bot starts: refuse it here, by field,
        # when the manifest's timeframe is known (see ``PluginRegistry.check``).
        base = (info.context or {}).get("base_timeframe_s")
        if isinstance(base, int) and base > 0 and seconds % base:
            raise ValueError(
                f"{value} is not a multiple of the bot's timeframe "
                f"(spec.market.timeframe: {format_timeframe(base)})"
            )
        return value

    @field_validator("pip_sizes")
    @classmethod
    def _positive(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        for symbol, size in value.items():
            if not size > 0:
                raise ValueError(f"pip size of {symbol} must be positive, not {size}")
        # A symbol the bot does not trade (a typo) would leave the real one at `pip_size`.
        return bot_symbol_keys(value, info)
