"""The TradingBot manifest: one typed model shared by the runtime and the operator."""

from tradefleet_runtime.spec.load import load_manifest, parse_manifest
from tradefleet_runtime.spec.model import (
    API_VERSION,
    KIND,
    BotManifest,
    BotSpec,
    CapitalSpec,
    MarketSpec,
    Mode,
    PluginRef,
    SecretRef,
)

__all__ = [
    "API_VERSION",
    "KIND",
    "BotManifest",
    "BotSpec",
    "CapitalSpec",
    "MarketSpec",
    "Mode",
    "PluginRef",
    "SecretRef",
    "load_manifest",
    "parse_manifest",
]
