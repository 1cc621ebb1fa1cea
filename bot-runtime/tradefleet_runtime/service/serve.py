"""``tradefleet serve MANIFEST``: one bot as a long-lived service.

gRPC (control API, health, reflection) on one port; HTTP (``/metrics``, ``/healthz``,
``/readyz``, ``/webhook/signal``) on another. SIGTERM or SIGINT: stop new entries, apply the
spec's stop policy, flush the journal, name every open position, exit 0 within the grace period.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.errors import JournalError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.logs import configure_logging
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.service.api import Phase
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.service.http_server import HttpLimits, HttpServer, build_app
from tradefleet_runtime.service.metric_labels import MetricLabelError, bot_labels
from tradefleet_runtime.service.metrics import RuntimeMetrics
from tradefleet_runtime.service.webhook_routes import signal_symbols
from tradefleet_runtime.session import STOP_CANCEL_WAIT_S, assemble
from tradefleet_runtime.spec import Mode, load_manifest
from tradefleet_runtime.trade_log import TradeLogListener, log_phase

if TYPE_CHECKING:
    from tradefleet_runtime.service.grpc_server import GrpcEndpoint

log = logging.getLogger("tradefleet.serve")


def _write_failure(path: Path, reason: str) -> None:
    try:
        path.write_text(reason[:4000] + "\n")  # Kubernetes keeps 4 KiB of it
    except OSError as error:
        log.error("could not write the failure reason to %s: %s", path, error)


STUCK_REASON = "the engine did not stop within the grace period"


def _end_stuck_run(controller: BotController, journal: Journal) -> None:
    """The engine thread did not stop in time: the process exits without it, and the run is
    journaled as stopped anyway (never left ``running``, with no end, for the report and the
    next start to find). The engine thread may still be inside a write on the journal's
    connection, so the journal is not closed under it: the run's end goes through a connection
    of its own (``Journal.end_run_elsewhere``); the process's exit releases the rest."""
    engine = controller.engine
    try:
        journal.end_run_elsewhere(engine.now if engine is not None else 0, "stopped", STUCK_REASON)
    except JournalError as error:
        log.error("could not journal the run's end: %s", error)


def strategy_params_schema(controller: BotController) -> Callable[[], Mapping[str, Any] | None]:
    """The JSON Schema of the bot's strategy params, made once on first use, for UpdateParams'
    checks in front of the params model."""

    @functools.cache
    def schema() -> Mapping[str, Any] | None:
        name = controller.bot.manifest.spec.strategy.name
        model = controller.registry.get(PluginKind.STRATEGY, name).spec.params
        return model.model_json_schema()

    return schema


_HTTP_LIMIT_OPTIONS = {
    "header_timeout_s": "--http-header-timeout",
    "body_timeout_s": "--http-body-timeout",
    "max_connections": "--http-max-connections",
}


class LoggedController(BotController):
    """The bot controller, with every order, fill, trade close, risk decision and state change
    also logged as one line (in front of the metrics listener)."""

    def _prepare(self, engine: Engine) -> None:
        super()._prepare(engine)
        currency = self.bot.manifest.spec.capital.currency
        TradeLogListener(self.bot.name, currency).attach(engine)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "0.0.0.0", int(port)


def _listen(controller: BotController, http: HttpServer, args: argparse.Namespace) -> GrpcEndpoint:
    """Load the TLS files and bind the gRPC and HTTP ports, before the bot's run starts: a port
    in use or a bad file then fails the start with nothing journaled, rather than after a
    ``run_started`` with the run left 'running'. Raises ``OSError`` or ``TlsError``, each one
    line naming the address or the file."""
    from tradefleet_runtime.service.auth import TlsFiles, TokenAuth
    from tradefleet_runtime.service.grpc_server import build_grpc_server

    endpoint = build_grpc_server(
        controller,
        address=args.grpc,
        auth=TokenAuth(args.auth_dir) if args.auth_dir is not None else None,
        tls=TlsFiles.from_directory(args.tls_dir) if args.tls_dir is not None else None,
        known_symbols=signal_symbols(controller),
        params_schema=strategy_params_schema(controller),
    )
    try:
        http.start()
    except OSError as error:
        endpoint.stop(grace=0)
        # asyncio's message repeats the address as a tuple; the system's reason is enough.
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        raise OSError(f"cannot listen on {args.http} (HTTP): {reason}") from None
    return endpoint


def _start_failed(args: argparse.Namespace, message: str) -> int:
    """The bot could not start serving: one line, the failure file, exit 1."""
    print(f"error: {message}", file=sys.stderr)
    if args.failure_file is not None:
        _write_failure(args.failure_file, message)
    return 1


def run_serve(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest)
    configure_logging(args.log_format, bot=manifest.metadata.name)
    if manifest.spec.mode is Mode.LIVE:
        # A live bot needs a live broker plugin; the registry's mode check refuses the rest.
        log.info("serving a live bot")
    if args.auth_dir is None and not args.insecure_no_auth:
        print(
            "refused: --auth-dir is required (or --insecure-no-auth for development)",
            file=sys.stderr,
        )
        return 2
    try:
        http_limits = HttpLimits(
            header_timeout_s=args.http_header_timeout,
            body_timeout_s=args.http_body_timeout,
            max_connections=args.http_max_connections,
        )
    except ValueError as error:
        message = str(error)
        for name, option in _HTTP_LIMIT_OPTIONS.items():  # name the option the user gave
            message = message.replace(name, option)
        print(f"refused: {message}", file=sys.stderr)
        return 2
    try:
        labels = bot_labels(manifest, args.team)
    except MetricLabelError as error:
        print(f"refused: {error}", file=sys.stderr)
        if args.failure_file is not None:
            _write_failure(args.failure_file, str(error))
        return 2
    registry = PluginRegistry.discover()
    bot = assemble(manifest, registry, args.manifest.parent, str(args.manifest))
    journal_path = args.journal or Path("journals") / f"{bot.name}.sqlite"
    try:
        journal = Journal(journal_path, durable=True)
    except JournalError as error:  # held by another runtime, unwritable: said, and exit 1
        return _start_failed(args, str(error))
    metrics = RuntimeMetrics(labels)
    # The stop policy's wait for the venue's answers takes at most 60% of the grace period:
    # the rest is for the run's end (journal, last equity) before the grace runs out.
    stop_wait_s = max(1.0, min(STOP_CANCEL_WAIT_S, 0.6 * args.grace))
    controller = LoggedController(
        bot, journal, registry, speed=args.speed, metrics=metrics, stop_wait_s=stop_wait_s
    )

    add_routes = None
    if args.webhook_keys is not None:
        from tradefleet_runtime.service.webhook_routes import webhook_routes

        add_routes = webhook_routes(
            controller,
            args.webhook_keys,
            args.webhook_allow,
            args.webhook_rate,
            trust_forwarded_for=args.webhook_trust_forwarded_for,
        )
    http_host, http_port = _split(args.http)
    http = HttpServer(build_app(controller, add_routes), http_host, http_port, http_limits)
    from tradefleet_runtime.service.auth import TlsError

    try:
        endpoint = _listen(controller, http, args)
    except (OSError, TlsError) as error:
        journal.close()
        return _start_failed(args, str(error))
    endpoint.server.start()

    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.warning("%s: stopping after the current bar", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)

    controller.start()
    endpoint.set_serving(True)
    listening = {"event": "listening", "bot": bot.name, "grpc": endpoint.port, "http": http.port}
    print(json.dumps(listening), flush=True)
    phase = controller.phase
    log_phase(bot.name, phase.value)
    while not stop.is_set() and controller.alive:
        stop.wait(0.2)
        if controller.phase is not phase:
            phase = controller.phase
            log_phase(bot.name, phase.value, controller.failure)
    started = time.monotonic()
    endpoint.set_serving(False)
    controller.stop()
    finished = controller.wait(max(1.0, args.grace - 2.0))
    if finished:
        journal.close()
    else:
        _end_stuck_run(controller, journal)
    endpoint.stop(grace=1.0)
    http.stop()
    if controller.phase is not phase:
        log_phase(bot.name, controller.phase.value, controller.failure)
    elapsed = time.monotonic() - started
    print(
        json.dumps({"event": "stopped", "bot": bot.name, "seconds": round(elapsed, 3)}), flush=True
    )
    if not finished:
        log.error("%s", STUCK_REASON)
        return 1
    if controller.phase is Phase.FAILED:
        # Kubernetes must see a failed bot as failed (a restart, an alert), never as done; the
        # reason goes to the termination message, where the pod's status shows it.
        log.error("bot %s failed: %s", bot.name, controller.failure)
        if args.failure_file is not None:
            _write_failure(args.failure_file, controller.failure)
        return 1
    return 0
