"""The control commands of the ``tradefleet`` CLI (``status``, ``pause``, ``stop`` ...): their
options only; the gRPC client loads when one runs, so building the CLI loads no grpc."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tradefleet_runtime.service.control_args import TOKEN_ENV
from tradefleet_runtime.service.event_kinds import EventKind

_PATH = click.Path(path_type=Path, dir_okay=False)


def _run(name: str, options: dict[str, Any]) -> int:
    # Loaded only when used: grpc is no business of a backtest.
    from tradefleet_runtime.service.cli_control import run_control_command

    if isinstance(options.get("kind"), tuple):
        options["kind"] = list(options["kind"])
    return run_control_command(argparse.Namespace(control_command=name, **options))


def _command(
    name: str, help: str, control: bool = False
) -> Callable[[Callable[..., Any]], click.Command]:
    """A control command: the bot's address, output and connection options (and, for a command
    that changes the bot, ``--reason`` and ``--actor``)."""

    def decorate(function: Callable[..., Any]) -> click.Command:
        params: list[click.Parameter] = [
            click.Argument(["address"]),
            click.Option(["--json"], is_flag=True, help="Print JSON instead of tables."),
            click.Option(
                ["--token-file"],
                type=_PATH,
                help=f"File holding the bearer token (default: ${TOKEN_ENV}).",
            ),
            click.Option(
                ["--timeout"], type=float, default=10.0, show_default=True, help="Seconds per call."
            ),
            click.Option(["--tls"], is_flag=True, help="Connect with TLS (system CA roots)."),
            click.Option(["--tls-ca"], type=_PATH, help="CA certificate to verify the bot with."),
            click.Option(["--tls-cert"], type=_PATH, help="Client certificate (mutual TLS)."),
            click.Option(["--tls-key"], type=_PATH, help="Client key (mutual TLS)."),
            click.Option(["--tls-server-name"], help="Name the bot's certificate must carry."),
        ]
        if control:
            params += [
                click.Option(["--reason"], required=True, help="Why; journaled with your name."),
                click.Option(
                    ["--actor"], help="Who asks, for the audit trail (default: user@host)."
                ),
            ]
        extra = getattr(function, "__click_params__", [])
        return click.Command(
            name,
            callback=function,
            params=[*params[:1], *reversed(extra), *params[1:]],
            help=help + "\n\nADDRESS is the bot's gRPC address, host:port.",
            short_help=help,
        )

    return decorate


def control_commands() -> list[click.Command]:
    """The control commands, each talking to one running bot over gRPC.

    Exit codes: 0 done; 1 the bot refused or could not be reached (the gRPC status code is
    printed); 2 bad usage.
    """

    @_command("status", "A running bot's status.")
    def status(**options: Any) -> int:
        return _run("status", options)

    @_command("positions", "A running bot's open positions.")
    def positions(**options: Any) -> int:
        return _run("positions", options)

    @_command("orders", "A running bot's working orders.")
    @click.option("--all", "all", is_flag=True, help="Closed orders too.")
    def orders(**options: Any) -> int:
        return _run("orders", options)

    @_command("trades", "A running bot's closed trades.")
    @click.option(
        "--page-size",
        type=int,
        default=100,
        show_default=True,
        help="Trades per page: 1..1000 (0: the bot's default).",
    )
    @click.option("--page-token", default="", help="next_page_token of a previous page.")
    @click.option("--all", "all", is_flag=True, help="Every page.")
    def trades(**options: Any) -> int:
        if options["all"] and options["page_token"]:
            raise click.UsageError("--all and --page-token exclude each other")
        return _run("trades", options)

    kinds = [k.value for k in EventKind if k is not EventKind.DROPPED]

    @_command("events", "Follow a running bot's events.")
    @click.option(
        "--kind", multiple=True, type=click.Choice(kinds), help="Only this kind (repeatable)."
    )
    @click.option("--count", type=int, help="Stop after this many events (at least 1).")
    @click.option("--duration", type=float, help="Stop after this many seconds.")
    @click.option(
        "--recent",
        type=click.IntRange(0, 1000),
        default=0,
        show_default=True,
        help="First show up to this many of the bot's latest events (it keeps 1000).",
    )
    def events(**options: Any) -> int:
        return _run("events", options)

    @_command("pause", "Stop opening positions (exits still work).", control=True)
    def pause(**options: Any) -> int:
        return _run("pause", options)

    @_command("resume", "Clear a pause or an emergency stop.", control=True)
    def resume(**options: Any) -> int:
        return _run("resume", options)

    @_command("stop", "Emergency stop: halt, cancel entries, optionally flatten.", control=True)
    @click.option("--flatten", is_flag=True, help="Also close every position.")
    def stop(**options: Any) -> int:
        return _run("stop", options)

    @_command("reset-risk", "Clear a risk plugin's lock.", control=True)
    @click.argument("plugin")
    def reset_risk(**options: Any) -> int:
        return _run("reset-risk", options)

    return [status, positions, orders, trades, events, pause, resume, stop, reset_risk]
