"""Registers ACME's strategies with tradefleet (entry-point group ``tradefleet``)."""

from __future__ import annotations

from pydantic import Field

from tradefleet_runtime.sdk import CONTRACT_VERSION, PluginKind, PluginParams, PluginSpec, hookimpl


class MeanReversionParams(PluginParams):
    lookback: int = Field(default=24, ge=2, le=1000, description="Bars in the mean.")
    band_pct: float = Field(default=0.5, gt=0, le=20, description="Entry distance from the mean.")


@hookimpl
def tradefleet_strategies() -> list[PluginSpec]:
    return [
        PluginSpec(
            kind=PluginKind.STRATEGY,
            name="acme-mean-reversion",
            version="1.0.0",
            factory="acme_strategies.mean_reversion:MeanReversion",
            params=MeanReversionParams,
            summary="Buys a stretch below the mean, sells it back at the mean.",
            contract=CONTRACT_VERSION,
        )
    ]
