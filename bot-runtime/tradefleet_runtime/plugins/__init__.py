"""Plugin discovery and registration (pluggy), and plugin descriptors."""

from tradefleet_runtime.plugins.hookspecs import hookimpl, hookspec
from tradefleet_runtime.plugins.registry import (
    PluginKind,
    PluginRegistry,
    PluginSpec,
    RegisteredPlugin,
)

__all__ = [
    "PluginKind",
    "PluginRegistry",
    "PluginSpec",
    "RegisteredPlugin",
    "hookimpl",
    "hookspec",
]
