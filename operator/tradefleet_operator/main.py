"""``tradefleet-operator``: run the kopf operator for ``TradingBot`` objects.

::

    tradefleet-operator --all-namespaces                  # or: -n team-a -n team-b
    tradefleet-operator -A --metrics-port 9090 --liveness http://$POD_IP:8080/healthz

Listeners bind to ``$POD_IP`` when set (the chart sets it from the downward API), else to
127.0.0.1 — never to every interface by default: ``--bind-address`` changes all three (liveness
host when ``--liveness`` is not given, metrics, admission webhook).

Namespaces: with ``-n`` (one or more plain names) the operator serves exactly those and turns
kopf's namespace scanning off, so it never lists namespaces at cluster scope (which the chart's
namespaced Roles do not grant: kopf stalled ~54 s at every start retrying it).

Peering keeps one operator active when several replicas run: each replica takes a random
priority unless ``--priority`` is given, so exactly one (the highest) serves and the others wait
(kopf freezes every replica when two share the highest priority). Logs are JSON lines.
Metrics (prometheus_client): ``tradefleet_operator_reconciles_total{outcome}``,
``tradefleet_operator_reconcile_seconds``, ``tradefleet_operator_bots{phase}``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from tradefleet_operator.settings import TEAM_LABEL, OperatorSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradefleet-operator", description="The tradefleet operator (TradingBot objects)."
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", default=[], help="serve this namespace (repeatable)"
    )
    scope.add_argument(
        "--all-namespaces", "-A", action="store_true", help="serve every namespace (default)"
    )
    parser.add_argument(
        "--bind-address",
        default=os.environ.get("POD_IP") or "127.0.0.1",
        help="address the listeners bind to (default: $POD_IP, else 127.0.0.1)",
    )
    parser.add_argument(
        "--liveness",
        default=None,
        help="liveness endpoint URL ('' to disable; default http://<bind-address>:8080/healthz)",
    )
    parser.add_argument("--metrics-port", type=int, default=9090, help="0 disables metrics")
    parser.add_argument("--peering", default="tradefleet", help="peering object's name")
    parser.add_argument(
        "--standalone", action="store_true", help="no peering (only one operator may run)"
    )
    parser.add_argument("--priority", type=int, help="peering priority (default: random)")
    parser.add_argument(
        "--peering-lifetime",
        type=int,
        default=60,
        help="seconds a replica's peering record lasts: a standby takes over this long after "
        "the active replica died",
    )
    parser.add_argument(
        "--status-interval",
        type=float,
        default=float(os.environ.get("TRADEFLEET_STATUS_INTERVAL", "10")),
        help="seconds between two status reads of each bot",
    )
    parser.add_argument("--stop-timeout", type=float, default=20.0, help="deletion: wait for stop")
    parser.add_argument("--rpc-timeout", type=float, default=3.0, help="gRPC call deadline")
    parser.add_argument("--runtime-image", help="default image of the runtime pods")
    parser.add_argument(
        "--journal-access-mode",
        default="ReadWriteOncePod",
        choices=["ReadWriteOncePod", "ReadWriteOnce"],
        help="access mode of new journal claims (ReadWriteOncePod needs a CSI driver)",
    )
    parser.add_argument(
        "--team-label",
        default=os.environ.get("TRADEFLEET_TEAM_LABEL", TEAM_LABEL),
        help="bot label whose value the runtime exports as its metrics' team ('' for none; "
        "default: $TRADEFLEET_TEAM_LABEL, else tradefleet.io/team)",
    )
    parser.add_argument("--admission-port", type=int, help="serve the validating webhook here")
    parser.add_argument("--admission-cert", help="webhook TLS certificate (PEM)")
    parser.add_argument("--admission-key", help="webhook TLS private key (PEM)")
    parser.add_argument("--admission-host", help="the webhook's Service DNS name")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logs")
    parser.add_argument("--quiet", "-q", action="store_true", help="warnings and errors only")
    parser.add_argument(
        "--log-format", choices=["json", "plain"], default="json", help="log line format"
    )
    return parser


def options_from(args: argparse.Namespace) -> dict[str, Any]:
    """What the startup handler reads from kopf's ``memo["options"]``."""
    overrides: dict[str, Any] = {
        "journal_access_mode": args.journal_access_mode,
        "team_label": args.team_label,
    }
    if args.runtime_image:
        overrides["runtime_image"] = args.runtime_image
    settings = OperatorSettings(**overrides)
    options: dict[str, Any] = {
        "settings": settings,
        "stop_timeout": args.stop_timeout,
        "rpc_timeout": args.rpc_timeout,
        # Plain namespace names: no namespace scanning (no cluster-scope list of namespaces).
        "namespaced": bool(args.namespace),
        "peering_lifetime": args.peering_lifetime,
    }
    if args.admission_port:
        options["admission"] = {
            "address": args.bind_address,
            "port": args.admission_port,
            "certfile": args.admission_cert,
            "pkeyfile": args.admission_key,
            "host": args.admission_host,
            "extra_hosts": [args.bind_address],
        }
    return options


def liveness_url(args: argparse.Namespace) -> str | None:
    if args.liveness is None:
        host = args.bind_address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:8080/healthz"
    return str(args.liveness) or None


def port_collision(args: argparse.Namespace) -> str | None:
    """Two of the operator's listeners (liveness, metrics, admission webhook) on one port of
    one address, named by their options; None when each has its own. Checked before anything
    starts: otherwise the second to bind fails with "address already in use" mid-start."""
    listeners: list[tuple[str, str, int]] = []  # (option, host, port)
    live = liveness_url(args)
    if live:
        parsed = urlsplit(live)
        try:
            port = parsed.port
        except ValueError:
            port = None
        if port is not None:
            listeners.append((f"--liveness ({live})", parsed.hostname or "", port))
    if args.metrics_port:
        listeners.append(
            (f"--metrics-port {args.metrics_port}", args.bind_address, args.metrics_port)
        )
    if args.admission_port:
        listeners.append(
            (f"--admission-port {args.admission_port}", args.bind_address, args.admission_port)
        )
    anywhere = {"", "0.0.0.0", "::"}
    for index, (name, host, port) in enumerate(listeners):
        for other, other_host, other_port in listeners[:index]:
            same_host = host == other_host or host in anywhere or other_host in anywhere
            if port == other_port and same_host:
                return (
                    f"{other} and {name} use the same port {port}: each listener needs its own port"
                )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    collision = port_collision(args)
    if collision is not None:
        print(f"tradefleet-operator: {collision}", file=sys.stderr)
        return 2
    # The timer's interval is read when the handlers are imported.
    os.environ["TRADEFLEET_STATUS_INTERVAL"] = str(args.status_interval)

    import logging

    import kopf

    from tradefleet_operator import handlers  # registers the handlers

    if args.admission_port:
        handlers.register_admission()

    kopf.configure(
        verbose=args.verbose,
        quiet=args.quiet,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.bind_address)
    priority = args.priority if args.priority is not None else random.randint(1, 2**31 - 1)
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=liveness_url(args),
        standalone=args.standalone,
        peering_name=None if args.standalone else args.peering,
        priority=None if args.standalone else priority,
        memo=kopf.Memo(options=options_from(args)),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
