"""Hook specifications: how a distribution tells tradefleet which plugins it provides.

A plugin distribution declares an entry point in the group ``tradefleet`` naming a module; that
module holds ``@hookimpl`` functions below, each returning plugin descriptors
(:class:`~tradefleet_runtime.plugins.registry.PluginSpec`)::

    # pyproject.toml of a third-party distribution
    [project.entry-points.tradefleet]
    my_strategies = "my_package.tradefleet_hooks"

    # my_package/tradefleet_hooks.py
    from tradefleet_runtime.sdk import PluginSpec, hookimpl

    @hookimpl
    def tradefleet_strategies():
        return [PluginSpec(kind="strategy", name="my-strategy", version="1.0.0",
                           factory="my_package.strategy:MyStrategy", params=MyParams)]

These hooks run once, when plugins are listed or a bot starts; never per bar. A descriptor's
``factory`` may be a ``"module:attribute"`` string so that listing plugins does not import
their dependencies (a ccxt broker must not load ccxt until a bot chooses it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tradefleet_runtime.plugins.registry import PluginSpec

PROJECT = "tradefleet"
ENTRY_POINT_GROUP = "tradefleet"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def tradefleet_strategies() -> Sequence[PluginSpec]:
    """Return the strategy plugins this module provides.

    Called once at discovery. Each descriptor's factory builds a
    :class:`~tradefleet_runtime.sdk.Strategy` from validated params. Results of all
    modules are concatenated; a name given twice is reported as a conflict.
    """
    raise NotImplementedError


@hookspec
def tradefleet_risk_plugins() -> Sequence[PluginSpec]:
    """Return the risk plugins (sizers, limits, circuit breakers) this module provides.

    Each factory builds a :class:`~tradefleet_runtime.sdk.RiskPlugin`. Risk plugins may
    only shrink or veto an order; the engine enforces it and journals every decision.
    """
    raise NotImplementedError


@hookspec
def tradefleet_brokers() -> Sequence[PluginSpec]:
    """Return the broker plugins this module provides.

    Each factory builds a :class:`~tradefleet_runtime.sdk.Broker`. Set the descriptor's
    ``modes`` to the bot modes the broker can serve (the paper broker: backtest and paper).
    """
    raise NotImplementedError


@hookspec
def tradefleet_data_feeds() -> Sequence[PluginSpec]:
    """Return the data feed plugins this module provides.

    Each factory builds a :class:`~tradefleet_runtime.sdk.DataFeed` replaying or
    streaming closed OHLCV bars.
    """
    raise NotImplementedError
