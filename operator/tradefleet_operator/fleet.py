"""Fleet-wide commands: ``tradefleet fleet stop`` and ``tradefleet fleet resume``.

``tradefleet fleet stop --selector team=a --reason "..." [--flatten]`` sets ``spec.emergencyStop``
on every matching ``TradingBot`` in one go (all patches in flight at once), then also calls every
runtime it can reach directly, all at once; the operator enforces the spec for the rest (and
for good), so a whole fleet halts in about a second.
``tradefleet fleet resume --selector team=a`` removes it again.

The lead wires the commands into the ``tradefleet`` CLI with :func:`add_fleet_commands` and
:func:`run_fleet_command`. Nothing here imports kopf at module level: the CLI stays light, and
kopf (the ``operator`` extra) is only needed to read the kubeconfig when a command runs.

It talks to the Kubernetes API through :mod:`.k8s_api` and to the runtimes through
:mod:`.runtime_client` (control token from each bot's api-token Secret).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tradefleet_operator.bot_api import runtime_address
from tradefleet_operator.control import Call
from tradefleet_operator.k8s_api import KubeApi, KubeError, api_path, parse_selector
from tradefleet_operator.names import API_VERSION, PLURAL, api_token_secret_name
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import OperatorSettings
from tradefleet_operator.tokens import tokens_from_secret

# --- the fleet command --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FleetResult:
    namespace: str
    name: str
    error: str = ""
    halted_directly: bool = False
    bot: Mapping[str, Any] | None = None


async def set_emergency_stop(
    api: KubeApi,
    *,
    selector: str,
    namespace: str | None,
    stop: Mapping[str, Any] | None,
) -> list[FleetResult]:
    """Set (``stop`` given) or clear (``None``) ``spec.emergencyStop`` on every matching bot,
    all patches at once. One result per bot; a bot that could not be patched names its error."""
    bots = await api.list(API_VERSION, PLURAL, namespace, selector)
    patch = {"spec": {"emergencyStop": dict(stop) if stop is not None else None}}

    async def one(bot: Mapping[str, Any]) -> FleetResult:
        meta = bot["metadata"]
        path = api_path(API_VERSION, PLURAL, meta.get("namespace"), meta["name"])
        try:
            await api.patch(path, patch)
        except KubeError as error:
            return FleetResult(meta.get("namespace", ""), meta["name"], str(error))
        return FleetResult(meta.get("namespace", ""), meta["name"], bot=bot)

    return list(await asyncio.gather(*(one(bot) for bot in bots)))


async def halt_directly(
    api: KubeApi, results: Sequence[FleetResult], reason: str, flatten: bool, timeout: float = 2.0
) -> list[FleetResult]:
    """Also send ``EmergencyStop`` to every patched bot's runtime at once, best effort.

    The spec patch is what makes a halt stick (the operator enforces it); this only makes it
    land sooner, without waiting for the operator to work through a whole fleet's events. A
    runtime this process cannot reach (outside the cluster, no right to read the token Secret)
    is simply left to the operator.
    """
    settings = OperatorSettings()
    clients = RuntimeClients(timeout=timeout)
    call = Call("EmergencyStop", reason, flatten)

    async def one(result: FleetResult) -> FleetResult:
        if result.error or result.bot is None:
            return result
        try:
            secret = await api.get(
                api_path("v1", "secrets", result.namespace, api_token_secret_name(result.name))
            )
            tokens = tokens_from_secret(secret)
            if tokens is None:
                return result
            address = runtime_address(result.bot["metadata"], settings)
            await asyncio.wait_for(clients.invoke(address, tokens.control, call), timeout)
        except Exception:  # unreachable, forbidden, slow: the operator will do it
            return result
        return FleetResult(result.namespace, result.name, halted_directly=True, bot=result.bot)

    try:
        return list(await asyncio.gather(*(one(result) for result in results)))
    finally:
        await clients.close()


def add_fleet_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``fleet stop`` and ``fleet resume`` to the ``tradefleet`` CLI's subparsers."""
    fleet: argparse.ArgumentParser = subparsers.add_parser(
        "fleet", help="act on many TradingBots at once (by label)"
    )
    commands = fleet.add_subparsers(dest="fleet_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--selector", "-l", required=True, help="label selector, e.g. team=a,tier!=canary"
        )
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--namespace", "-n", help="only this namespace (default: current)")
        scope.add_argument("--all-namespaces", "-A", action="store_true", help="every namespace")
        parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")

    stop = commands.add_parser("stop", help="emergency-stop every matching bot")
    common(stop)
    stop.add_argument("--reason", required=True, help="why; journaled by every bot")
    stop.add_argument("--flatten", action="store_true", help="also close every position")
    stop.add_argument(
        "--no-direct",
        action="store_true",
        help="only patch the specs; do not also call the runtimes (the operator will)",
    )
    resume = commands.add_parser("resume", help="clear the emergency stop of every matching bot")
    common(resume)
    return fleet


def _namespace(args: argparse.Namespace, api: KubeApi) -> str | None:
    if args.all_namespaces:
        return None
    return str(args.namespace or api.info.default_namespace or "default")


async def _run(args: argparse.Namespace) -> int:
    parse_selector(args.selector)  # refuse a bad selector before touching anything
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    api = KubeApi.from_environment()
    try:
        namespace = _namespace(args, api)
        if args.fleet_command == "stop":
            stop: dict[str, Any] | None = {"reason": args.reason, "flatten": bool(args.flatten)}
        else:
            stop = None
        results = await set_emergency_stop(
            api, selector=args.selector, namespace=namespace, stop=stop
        )
        if stop is not None and not args.no_direct:
            results = await halt_directly(api, results, args.reason, bool(args.flatten))
    finally:
        await api.close()
    verb = "stopped" if args.fleet_command == "stop" else "resumed"
    failed = [result for result in results if result.error]
    for result in results:
        line = f"{result.namespace}/{result.name}: "
        how = " (halted directly)" if result.halted_directly else ""
        print(line + (f"FAILED {result.error}" if result.error else verb + how))
    print(f"{len(results) - len(failed)} of {len(results)} bots {verb}")
    return 1 if failed or not results else 0


def run_fleet_command(args: argparse.Namespace) -> int:
    """Run a parsed ``fleet`` command; 0 when every matching bot was patched (and some did)."""
    try:
        return asyncio.run(_run(args))
    except ValueError as error:
        print(f"tradefleet fleet: {error}", file=sys.stderr)
        return 2
    except KubeError as error:
        print(f"tradefleet fleet: {error}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tradefleet_operator.fleet stop ...`` (for use before the CLI wiring)."""
    parser = argparse.ArgumentParser(prog="tradefleet")
    add_fleet_commands(parser.add_subparsers(dest="command", required=True))
    return run_fleet_command(parser.parse_args(["fleet", *(argv or sys.argv[1:])]))


if __name__ == "__main__":
    raise SystemExit(main())
