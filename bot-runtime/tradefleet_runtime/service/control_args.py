"""The control commands' arguments (``tradefleet status|pause|stop ...``), kept apart from the
gRPC client so that building the CLI's parser loads no grpc: ``tradefleet backtest`` must not."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tradefleet_runtime.service.api import EventKind

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


def _add(subparsers: Any, name: str, help: str, control: bool = False) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help)
    parser.set_defaults(control_command=name)
    parser.add_argument("address", help="the bot's gRPC address, host:port")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--token-file", type=Path, help=f"file holding the bearer token (default ${TOKEN_ENV})"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    parser.add_argument("--tls", action="store_true", help="connect with TLS (system CA roots)")
    parser.add_argument("--tls-ca", type=Path, help="CA certificate to verify the bot with")
    parser.add_argument("--tls-cert", type=Path, help="client certificate (mutual TLS)")
    parser.add_argument("--tls-key", type=Path, help="client key (mutual TLS)")
    parser.add_argument("--tls-server-name", help="name the bot's certificate must carry")
    if control:
        parser.add_argument("--reason", required=True, help="why; journaled with your name")
        parser.add_argument("--actor", help="who asks, for the audit trail (default user@host)")
    return parser


def add_control_commands(subparsers: Any) -> None:
    """Add the control commands to the ``tradefleet`` parser's subparsers.

    Each sets ``args.control_command`` to its name; hand such ``args`` to
    :func:`run_control_command`.
    """
    _add(subparsers, "status", "a running bot's status")
    _add(subparsers, "positions", "a running bot's open positions")
    orders = _add(subparsers, "orders", "a running bot's working orders")
    orders.add_argument("--all", action="store_true", help="closed orders too")
    trades = _add(subparsers, "trades", "a running bot's closed trades")
    trades.add_argument("--page-size", type=int, default=100)
    pages = trades.add_mutually_exclusive_group()
    pages.add_argument("--page-token", default="", help="next_page_token of a previous page")
    pages.add_argument("--all", action="store_true", help="every page")
    events = _add(subparsers, "events", "follow a running bot's events")
    events.add_argument(
        "--kind",
        action="append",
        default=[],
        choices=[k.value for k in EventKind if k is not EventKind.DROPPED],
        help="only this kind (repeatable)",
    )
    events.add_argument("--count", type=int, help="stop after this many events")
    events.add_argument("--duration", type=float, help="stop after this many seconds")
    _add(subparsers, "pause", "stop opening positions (exits still work)", control=True)
    _add(subparsers, "resume", "clear a pause or an emergency stop", control=True)
    stop = _add(
        subparsers, "stop", "emergency stop: halt, cancel entries, optionally flatten", control=True
    )
    stop.add_argument("--flatten", action="store_true", help="also close every position")
    reset = _add(subparsers, "reset-risk", "clear a risk plugin's lock", control=True)
    reset.add_argument("plugin", help="the risk plugin's name (see `tradefleet status`)")
