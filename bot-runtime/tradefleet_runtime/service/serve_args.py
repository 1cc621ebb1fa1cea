"""``tradefleet serve``'s arguments, kept apart from the service so that building the CLI's
parser loads none of it (no grpc, aiohttp or prometheus_client for ``tradefleet backtest``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tradefleet_runtime.service import limits


def add_serve_command(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run one bot as a service (gRPC + HTTP)")
    serve.add_argument("manifest", type=Path)
    serve.add_argument("--grpc", default="0.0.0.0:50051", help="gRPC listen address")
    serve.add_argument("--http", default="0.0.0.0:8080", help="HTTP listen address")
    serve.add_argument("--auth-dir", type=Path, help="folder with control.token / read.token")
    serve.add_argument(
        "--insecure-no-auth", action="store_true", help="serve gRPC without tokens (development)"
    )
    serve.add_argument("--tls-dir", type=Path, help="folder with tls.crt, tls.key (and ca.crt)")
    serve.add_argument("--webhook-keys", type=Path, help="folder of HMAC keys: enables the webhook")
    serve.add_argument("--webhook-allow", action="append", default=[], help="allowed source CIDR")
    serve.add_argument("--webhook-rate", type=int, default=60, help="signals per minute per key")
    serve.add_argument(
        "--http-header-timeout",
        type=float,
        default=limits.HTTP_HEADER_TIMEOUT_S,
        help="seconds for a request's headers to arrive, else the connection is closed",
    )
    serve.add_argument(
        "--http-body-timeout",
        type=float,
        default=limits.HTTP_BODY_TIMEOUT_S,
        help="seconds for a request's body to arrive after its headers, else it is closed",
    )
    serve.add_argument(
        "--http-max-connections",
        type=int,
        default=limits.HTTP_MAX_CONNECTIONS,
        help="open HTTP connections at once; more are answered 503",
    )
    serve.add_argument(
        "--speed", type=float, default=1.0, help="replay speed of a csv feed (0: no waiting)"
    )
    serve.add_argument("--journal", type=Path, help="journal file (default journals/NAME.sqlite)")
    serve.add_argument("--grace", type=float, default=25.0, help="seconds to stop after SIGTERM")
    serve.add_argument("--log-format", choices=["json", "text"], default="json")
    serve.add_argument(
        "--failure-file",
        type=Path,
        default=os.environ.get("TRADEFLEET_FAILURE_FILE") or None,
        help="write why the bot failed here before exiting 1 (a container's termination "
        "message file; default $TRADEFLEET_FAILURE_FILE)",
    )
