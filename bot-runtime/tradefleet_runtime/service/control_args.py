"""The control commands' names and token variable, kept apart from the gRPC client so that
building the CLI loads no grpc: ``tradefleet backtest`` must not (the commands themselves are in
``tradefleet_runtime.cli_control_commands``)."""

from __future__ import annotations

#: The environment variable a control command reads its bearer token from.
TOKEN_ENV = "TRADEFLEET_TOKEN"

CONTROL_COMMANDS = (
    "status",
    "positions",
    "orders",
    "trades",
    "events",
    "pause",
    "resume",
    "stop",
    "reset-risk",
)
