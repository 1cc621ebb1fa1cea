"""``tradefleet serve``'s options, kept apart from the service so that building the CLI loads
none of it (no grpc, aiohttp or prometheus_client for ``tradefleet backtest``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import click

from tradefleet_runtime.service import limits
from tradefleet_runtime.spec.model import cidr

_DIR = click.Path(path_type=Path, file_okay=False)


def _cidrs(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    """Each --webhook-allow a network, by the spec's own rule (``spec.runtime.webhookAllow``):
    a usage error naming it, not a traceback at start."""
    try:
        return [cidr(value) for value in values]
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command(
    "serve",
    short_help="Run one bot as a service (gRPC + HTTP).",
)
@click.argument("manifest", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--grpc", default="0.0.0.0:50051", show_default=True, help="gRPC listen address.")
@click.option("--http", default="0.0.0.0:8080", show_default=True, help="HTTP listen address.")
@click.option(
    "--auth-dir",
    type=_DIR,
    help="Folder with control.token and read.token (make one with: tradefleet auth init DIR).",
)
@click.option(
    "--insecure-no-auth", is_flag=True, help="Serve gRPC without tokens (development only)."
)
@click.option("--tls-dir", type=_DIR, help="Folder with tls.crt, tls.key (and ca.crt).")
@click.option("--webhook-keys", type=_DIR, help="Folder of HMAC keys: enables the webhook.")
@click.option(
    "--webhook-allow",
    multiple=True,
    callback=_cidrs,
    help="Allowed source CIDR of webhook calls (repeatable).",
)
@click.option(
    "--webhook-trust-forwarded-for",
    is_flag=True,
    help="Judge --webhook-allow by X-Forwarded-For's first hop (behind a proxy that sets it).",
)
@click.option(
    "--webhook-rate", type=int, default=60, show_default=True, help="Signals per minute per key."
)
@click.option(
    "--http-header-timeout",
    type=float,
    default=limits.HTTP_HEADER_TIMEOUT_S,
    show_default=True,
    help="Seconds for a request's headers to arrive, else the connection is closed.",
)
@click.option(
    "--http-body-timeout",
    type=float,
    default=limits.HTTP_BODY_TIMEOUT_S,
    show_default=True,
    help="Seconds for a request's body to arrive after its headers, else it is closed.",
)
@click.option(
    "--http-max-connections",
    type=int,
    default=limits.HTTP_MAX_CONNECTIONS,
    show_default=True,
    help="Open HTTP connections at once; more are answered 503.",
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Replay speed of a csv feed (0: no waiting).",
)
@click.option(
    "--journal",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Journal file (default: journals/NAME.sqlite).",
)
@click.option(
    "--grace", type=float, default=25.0, show_default=True, help="Seconds to stop after SIGTERM."
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    help="Same as tradefleet --log-format (kept for existing pod specs).",
)
@click.option(
    "--team",
    default=lambda: os.environ.get("TRADEFLEET_TEAM") or None,
    help="The bot's team, exported as the team label of tradefleet_bot_info (at most 63 "
    "letters, digits, '-', '_', '.'; default: $TRADEFLEET_TEAM, else 'unassigned'; the "
    "operator sets it from the bot's team label).",
)
@click.option(
    "--failure-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=lambda: os.environ.get("TRADEFLEET_FAILURE_FILE") or None,
    help="Write why the bot failed here before exiting 1 (a container's termination message "
    "file; default: $TRADEFLEET_FAILURE_FILE).",
)
def serve_command(**options: Any) -> int:
    """Run one bot as a long-lived service.

    gRPC (control API, health, reflection) on one port; HTTP (/metrics, /healthz, /readyz,
    /webhook/signal) on another. Every order, fill, trade close, risk veto and phase change is
    logged as one line. SIGTERM or SIGINT: stop new entries, apply the bot's stop policy, flush
    the journal, name every open position, exit 0 within the grace period; a failed bot exits 1.
    """
    from tradefleet_runtime.service.serve import run_serve

    return run_serve(argparse.Namespace(**options))
