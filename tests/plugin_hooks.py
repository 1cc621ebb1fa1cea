"""Registering a test's own plugins: a strategy and a venue broker, as hook modules."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from tradefleet_runtime.capabilities import Capability
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import NoParams, PluginKind, PluginSpec, hookimpl


def venue_plugins(
    strategy: tuple[str, Callable[[Any], Any]],
    broker: tuple[str, Callable[[Any], Any]],
    modes: frozenset[str] = frozenset({"paper", "backtest"}),
) -> SimpleNamespace:
    """Hooks for a param-less strategy and a param-less ``venue-execution`` broker."""
    (strategy_name, strategy_factory), (broker_name, broker_factory) = strategy, broker
    return SimpleNamespace(
        tradefleet_strategies=hookimpl(
            lambda: [
                PluginSpec(
                    kind=PluginKind.STRATEGY,
                    name=strategy_name,
                    version="1.0.0",
                    factory=strategy_factory,
                    params=NoParams,
                )
            ]
        ),
        tradefleet_brokers=hookimpl(
            lambda: [
                PluginSpec(
                    kind=PluginKind.BROKER,
                    name=broker_name,
                    version="1.0.0",
                    factory=broker_factory,
                    params=NoParams,
                    modes=modes,
                    capabilities=frozenset({Capability.VENUE_EXECUTION}),
                )
            ]
        ),
    )


def registry_with(hooks: SimpleNamespace) -> PluginRegistry:
    """The installed plugins plus the hooks' own."""
    registry = PluginRegistry.discover()
    registry.plugins.update(PluginRegistry.from_modules(hooks).plugins)
    return registry
