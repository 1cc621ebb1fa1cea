"""Params of the ``exits`` risk plugin (each exit off at 0)."""

from __future__ import annotations

from pydantic import Field

from tradefleet_runtime.sdk import PluginParams


class ExitsParams(PluginParams):
    early_exit_fraction: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Close a position once its loss reaches this share of the distance from "
        "its entry to its protective stop (0.8: at -1.6% with a -2% stop); 0: off.",
    )
    trailing_pct: float = Field(
        default=0,
        ge=0,
        lt=1,
        description="Trailing exit this fraction behind the best price since entry; 0: off.",
    )
    trailing_atr_multiple: float = Field(
        default=0, ge=0, le=100, description="Trailing exit this many ATRs behind; 0: off."
    )
    trailing_native: bool = Field(
        default=False,
        description="Trail the position's stop-loss order at the venue instead of exiting "
        "virtually: at each closed bar its stop-loss is moved (only up for a long, down for "
        "a short) to the trailing distance behind the best price since entry, so a move "
        "between bars fills at the trailed stop. A position without a stop-loss order, or "
        "whose bar closed beyond the trail, is still closed by the virtual trailing exit. "
        "Needs trailing_pct or trailing_atr_multiple.",
    )
    atr_period: int = Field(default=14, ge=1, le=1000, description="ATR period (Wilder).")
    break_even_r: float = Field(
        default=0,
        ge=0,
        le=100,
        description="After a profit of this many times the initial risk (entry to stop), "
        "close the position if it comes back to its entry; 0: off.",
    )
