"""Params of the ``probation`` risk plugin."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tradefleet_runtime.sdk import PluginParams


class ProbationParams(PluginParams):
    window_trades: int = Field(
        default=20, ge=1, le=100_000, description="Closed trades the rolling P&L sums."
    )
    half_at: float = Field(
        default=0.05, gt=0, lt=1, description="Rolling loss (fraction of equity) that halves sizes."
    )
    quarter_at: float = Field(
        default=0.10, gt=0, lt=1, description="Rolling loss that quarters sizes."
    )
    hibernate_at: float = Field(
        default=0.15,
        gt=0,
        lt=1,
        description="Rolling loss beyond which no new entries are taken: a lock only a "
        "person resets (ResetRiskLock); the window then starts afresh, after a restart too.",
    )
    scope: Literal["bot", "symbol"] = Field(
        default="bot",
        description="What the window sums and hibernation stops: bot (every trade of the bot; "
        "beyond hibernate_at the bot takes no new entries) or symbol (each symbol's own last "
        "window_trades trades: its multiplier and its hibernation hold that symbol's entries "
        "only, the others keep trading; the lock names the symbols it holds, and a person's "
        "reset clears every symbol's).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ProbationParams:
        if not self.half_at < self.quarter_at < self.hibernate_at:
            raise ValueError("levels must grow: half_at < quarter_at < hibernate_at")
        return self
