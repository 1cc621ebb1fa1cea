"""Params of the ``circuit-breaker`` risk plugin."""

from __future__ import annotations

from pydantic import Field, model_validator

from tradefleet_runtime.sdk import PluginParams


class CircuitBreakerParams(PluginParams):
    warn_drawdown: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Tier 1 at this loss from the day's start or the day's equity peak "
        "(0.05 = 5%): a warning, and new sizes cut by `warn_size_cut`.",
    )
    reduce_drawdown: float = Field(
        default=0.10,
        gt=0,
        lt=1,
        description="Tier 2: no new entries, resting entries cancelled and open exposure cut "
        "by `reduce_fraction` (the riskiest positions first).",
    )
    lock_drawdown: float = Field(
        default=0.15,
        gt=0,
        lt=1,
        description="Tier 3: flatten everything and lock until a person resets (ResetRiskLock).",
    )
    warn_size_cut: float = Field(
        default=0.25, ge=0, lt=1, description="Share cut from new order sizes in tier 1."
    )
    reduce_fraction: float = Field(
        default=0.5, gt=0, le=1, description="Share of the gross open exposure closed in tier 2."
    )
    weekly_loss: float = Field(
        default=0.10,
        gt=0,
        lt=1,
        description="Loss from the week's start that stops new entries (tier 2) for as long "
        "as it lasts.",
    )
    max_drawdown: float = Field(
        default=0.20,
        gt=0,
        lt=1,
        description="Drawdown from the all-time equity peak that flattens and locks (tier 3).",
    )
    cooldown_minutes: float = Field(
        default=60,
        ge=0,
        le=10_080,
        description="A lock cannot be reset before this long (bot time) after it was taken.",
    )
    timezone: str = Field(
        default="UTC", description="Timezone of the trading day (IANA name, e.g. Europe/Prague)."
    )
    day_start_minute: int = Field(
        default=0,
        ge=0,
        lt=1440,
        description="The trading day starts this many minutes after local midnight.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> CircuitBreakerParams:
        if not self.warn_drawdown < self.reduce_drawdown < self.lock_drawdown:
            raise ValueError("tiers must grow: warn_drawdown < reduce_drawdown < lock_drawdown")
        from tradefleet_plugins.risk.rules import zone

        try:
            zone(self.timezone)
        except Exception as error:
            raise ValueError(f"unknown timezone {self.timezone!r}") from error
        return self
