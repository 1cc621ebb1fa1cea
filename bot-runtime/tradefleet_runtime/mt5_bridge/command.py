"""``tradefleet mt5-bridge``: serve one MetaTrader 5 terminal over gRPC until stopped."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from tradefleet_runtime.api.conventions import CONTROL_TOKEN_FILE

log = logging.getLogger("tradefleet.mt5_bridge")

DEFAULT_LISTEN = "0.0.0.0:50061"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tradefleet mt5-bridge",
        description="Serve one MetaTrader 5 terminal's MetaTrader5 functions over gRPC, for "
        "bots whose mt5 broker names this bridge (params.bridge_address).",
    )
    p.add_argument(
        "--listen", default=DEFAULT_LISTEN, help=f"host:port to serve on ({DEFAULT_LISTEN})."
    )
    p.add_argument(
        "--auth-dir",
        type=Path,
        help=f"Folder holding the bearer token as {CONTROL_TOKEN_FILE} (a mounted Secret); "
        "re-read when it changes.",
    )
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="Serve without a token (development on loopback only).",
    )
    p.add_argument("--tls-dir", type=Path, help="Folder with tls.crt, tls.key (and ca.crt).")
    p.add_argument(
        "--terminal",
        default="MetaTrader5",
        help="The module with the terminal's functions: MetaTrader5 (Windows, or Python under "
        "Wine), or module:attr (an object or a factory of one).",
    )
    return p


def load_terminal(spec: str) -> Any:
    """``module`` or ``module:attr`` (a class or factory is called with no arguments)."""
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    if not attr:
        return module
    found = getattr(module, attr)
    if isinstance(found, type) or (callable(found) and not hasattr(found, "order_send")):
        return found()
    return found


def main(argv: Sequence[str] | None = None) -> int:
    # logging: as every tradefleet command (tradefleet --log-level/--log-format mt5-bridge ...)
    args = parser().parse_args(argv)
    if args.auth_dir is None and not args.insecure_no_auth:
        print(
            "refused: --auth-dir is required (or --insecure-no-auth for development)",
            file=sys.stderr,
        )
        return 2
    try:
        terminal = load_terminal(args.terminal)
    except (ImportError, AttributeError) as error:
        hint = " (the MetaTrader5 package installs only on Windows or under Wine)"
        print(f"refused: --terminal {args.terminal!r}: {error}{hint}", file=sys.stderr)
        return 2

    from tradefleet_runtime.mt5_bridge.server import build_bridge_server
    from tradefleet_runtime.service.auth import TlsFiles, TokenAuth

    endpoint = build_bridge_server(
        terminal,
        address=args.listen,
        auth=TokenAuth(args.auth_dir) if args.auth_dir is not None else None,
        tls=TlsFiles.from_directory(args.tls_dir) if args.tls_dir is not None else None,
    )
    if args.auth_dir is None:
        log.warning("mt5 bridge on %s without authentication", args.listen)
    host = args.listen.rsplit(":", 1)[0]
    endpoint.start()
    # tests and scripts read the port (--listen host:0 picks one)
    print(f"mt5-bridge listening on {host}:{endpoint.port}", flush=True)
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    done.wait()
    log.info("mt5 bridge stopping")
    endpoint.stop(grace=5.0)
    shutdown = getattr(terminal, "shutdown", None)
    if callable(shutdown):
        shutdown()
    return 0


__all__ = ["load_terminal", "main", "parser"]
