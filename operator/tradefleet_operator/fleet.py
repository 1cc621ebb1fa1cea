"""Fleet-wide commands: ``tradefleet fleet stop`` and ``tradefleet fleet resume``.

``tradefleet fleet stop --selector tradefleet.io/team=a --reason "..." [--flatten]`` halts every
matching ``TradingBot``, each bot on its own thread, all at once:

1. read the bot's ``<name>-api-token`` Secret and send ``EmergencyStop`` straight to its
   runtime (control token);
2. merge-patch ``spec.emergencyStop`` (what makes the halt stick: the operator enforces the spec,
   also for a runtime this command cannot reach, and after a restart) — sent once the direct
   call has answered, or after ``settle`` seconds (0.2) if it has not, so a slow runtime never
   holds the spec back.

Because the spec changes only after the direct call answered, the operator cannot have halted
the bot first: the report says, per bot, which path halted it — ``halted directly``, ``halted
(direct answer came after the spec patch: either path may have been first)`` or ``spec
patched: the operator halts it`` with the reason the direct call failed.

A bot already halted for its own reason (a person's ``spec.emergencyStop``) keeps that stop,
reason and all; the fleet stop only adds its flatten when asked. Each stopped bot gets the
annotation ``tradefleet.io/fleet-stop`` (:data:`FLEET_STOP_ANNOTATION`): the stop the fleet
wrote and the bot's own stop it found. It lives in the object, so it survives the command, an
operator restart and a second fleet stop (which keeps the first one's record of the own stop).

``tradefleet fleet resume --selector tradefleet.io/team=a`` lifts only what a fleet stop set (a
halt is undone only by a newer, explicit resume): a bot whose stop is still the one its mark
says the fleet wrote gets back the stop it had before (none: ``spec.emergencyStop`` removed, and
the operator resumes it on that spec change; only a spec change resumes, never its status
timer). A bot halted for its own reason stays halted, and so does one whose stop is not the
fleet's (never marked, or changed since); the report names each with the reason of the stop
that holds it.

Speed is the point: the command imports only the standard library, PyYAML (kubeconfig) and
the gRPC stubs (imported while the TradingBots are being listed), never kopf, aiohttp or the
spec model (:mod:`.kube_light`); ``--timings`` prints when the first ``EmergencyStop`` left,
counted from the interpreter's start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tradefleet_operator.kube_light import Credentials, LightKube, LightKubeError, Unsupported
from tradefleet_operator.label_selectors import parse_selector, selector_matches
from tradefleet_operator.settings import runtime_address
from tradefleet_operator.tokens import tokens_from_secret

__all__ = [
    "FLEET_STOP_ANNOTATION",
    "FleetMark",
    "FleetResult",
    "ResumeStep",
    "add_fleet_commands",
    "main",
    "read_mark",
    "resume_fleet",
    "resume_step",
    "run_fleet_command",
    "stop_fleet",
    "stop_patch",
]

#: The TradingBot API (``names.API_VERSION`` / ``names.PLURAL``; ``names`` imports the spec
#: model, which costs 0.4 s: a test keeps these equal).
API_VERSION = "tradefleet.io/v1alpha1"
PLURAL = "tradingbots"
#: Who the runtime journals as the caller.
ACTOR = "tradefleet-fleet"

DIRECT = "direct"  # the direct call answered before the spec was patched
EITHER = "direct-or-operator"  # the direct call answered after the patch
OPERATOR = "operator"  # only the spec was patched (the direct call failed or was not made)
_PATHS = {
    DIRECT: "halted directly",
    EITHER: "halted (the direct call answered after the spec patch: either path may be first)",
    OPERATOR: "spec patched: the operator halts it",
}


#: What a fleet stop put on a bot (:class:`FleetMark`, JSON): in the object, not in the
#: command's memory, so the fleet's resume finds it after an operator restart too.
FLEET_STOP_ANNOTATION = "tradefleet.io/fleet-stop"
#: Tries of one bot's patch when the bot changed since it was read (409 Conflict).
PATCH_ATTEMPTS = 5

#: A ``spec.emergencyStop``: ``{"reason": str, "flatten": bool}``.
Stop = dict[str, Any]
_T = TypeVar("_T")


def bots_path(namespace: str | None, name: str | None = None) -> str:
    path = f"/apis/{API_VERSION}" + (f"/namespaces/{namespace}" if namespace else "")
    return path + f"/{PLURAL}" + (f"/{name}" if name else "")


@dataclass
class FleetResult:
    namespace: str
    name: str
    error: str = ""  # the spec patch failed (the bot may still run!)
    path: str = ""  # DIRECT, EITHER or OPERATOR (stop only)
    direct_error: str = ""
    #: Seconds from the command's start until the direct call answered (halted).
    halted_after_s: float | None = None
    bot: Mapping[str, Any] | None = field(default=None, repr=False)
    #: Stop: the reason of the bot's own stop, kept in its spec ("" when it had none).
    own_stop: str = ""
    #: Resume: the fleet's stop was lifted and nothing else holds the bot.
    resumed: bool = False
    #: Resume: why the bot stays halted ("" when it does not).
    left_halted: str = ""
    #: Resume: why there was nothing to lift (the bot was not halted).
    note: str = ""

    @property
    def halted_directly(self) -> bool:
        return self.path == DIRECT


def _since_process_start() -> float:
    """Seconds since this interpreter started (Linux /proc; else since this module loaded)."""
    try:
        with open("/proc/self/stat") as stat:
            start_ticks = int(stat.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime") as uptime:
            up = float(uptime.read().split()[0])
        return up - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _LOADED


_LOADED = time.monotonic()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def emergency_stop_request(reason: str, flatten: bool, actor: str) -> bytes:
    """``EmergencyStopRequest`` in protobuf wire format (fields 1 reason, 2 flatten, 3 actor),
    written by hand: importing protobuf and the generated modules would cost 50-70 ms before
    the first halt. A test checks it against the generated class."""
    out = bytearray()
    for number, text in ((1, reason), (3, actor)):
        if text:
            data = text.encode()
            out += _varint(number << 3 | 2) + _varint(len(data)) + data
        if number == 1 and flatten:
            out += _varint(2 << 3) + b"\x01"
    return bytes(out)


#: The method's full name (``proto/tradefleet/v1/runtime.proto``; a test checks it).
EMERGENCY_STOP_METHOD = "/tradefleet.v1.RuntimeService/EmergencyStop"


class _Direct:
    """Sends ``EmergencyStop`` over one gRPC channel per runtime (sync: no event loop). Only
    ``grpc`` is imported; the request is encoded by hand and the answer is not decoded (an
    answer at all means the runtime applied the halt: control calls wait for the engine)."""

    def __init__(self, reason: str, flatten: bool, timeout: float) -> None:
        import grpc

        self.grpc = grpc
        self._request = emergency_stop_request(reason, flatten, ACTOR)
        self.timeout = timeout
        self._channels: list[Any] = []
        self.first_sent: float | None = None
        self.ready_at = _since_process_start()
        self.listed_at: float | None = None

    def send(self, address: str, token: str) -> Any:
        channel = self.grpc.insecure_channel(address)
        self._channels.append(channel)
        call: Any = channel.unary_unary(EMERGENCY_STOP_METHOD)  # bytes in, bytes out
        future = call.future(
            self._request, metadata=(("authorization", f"Bearer {token}"),), timeout=self.timeout
        )
        if self.first_sent is None:
            self.first_sent = _since_process_start()
        return future

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


def _stop(value: Any) -> Stop | None:
    """``value`` (a ``spec.emergencyStop``) as a :data:`Stop`; None for none. ``flatten`` made
    explicit: the API server defaults it, and stops are compared."""
    if not isinstance(value, Mapping):
        return None
    return {"reason": str(value.get("reason") or ""), "flatten": bool(value.get("flatten"))}


@dataclass(frozen=True)
class FleetMark:
    """The value of :data:`FLEET_STOP_ANNOTATION`: ``stop``, what the fleet stop wrote into
    ``spec.emergencyStop``; ``own``, the bot's own stop it found there (None: none)."""

    stop: Stop
    own: Stop | None

    def text(self) -> str:
        return json.dumps({"stop": self.stop, "own": self.own}, sort_keys=True)


def read_mark(bot: Mapping[str, Any]) -> FleetMark | None:
    """The bot's fleet-stop mark; None when it has none or one this command did not write (an
    edited annotation: the stop it would vouch for then counts as not the fleet's, and stays)."""
    annotations = (bot.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(FLEET_STOP_ANNOTATION) if isinstance(annotations, Mapping) else None
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    stop, own = _stop(data.get("stop")), _stop(data.get("own"))
    if stop is None or not stop["reason"] or (data.get("own") is not None and own is None):
        return None
    return FleetMark(stop, own)


def stop_patch(bot: Mapping[str, Any], reason: str, flatten: bool) -> tuple[dict[str, Any], str]:
    """The merge patch that puts the fleet's stop on ``bot``, and the reason of the bot's own
    stop it keeps ("" when none).

    A stop in the spec that the fleet did not write (a person's, for this bot) stays, reason
    and all: the fleet only adds its flatten. A stop the bot's mark says the fleet wrote is the
    fleet's again: the own stop the first fleet stop found stays the one to give back. A flatten
    in force is never taken back (a stop only shrinks what the bot may do)."""
    current = _stop((bot.get("spec") or {}).get("emergencyStop"))
    mark = read_mark(bot)
    own = mark.own if mark is not None and current == mark.stop else current
    written = {
        "reason": own["reason"] if own is not None else reason,
        "flatten": flatten or bool(current and current["flatten"]),
    }
    patch = {
        "metadata": {"annotations": {FLEET_STOP_ANNOTATION: FleetMark(written, own).text()}},
        "spec": {"emergencyStop": written},
    }
    return patch, own["reason"] if own is not None else ""


@dataclass(frozen=True)
class ResumeStep:
    """What the fleet's resume does to one bot (:func:`resume_step`)."""

    patch: dict[str, Any] | None  # None: nothing to write
    resumed: bool = False  # the fleet's stop goes and no other stop holds the bot
    left_halted: str = ""  # why the bot stays halted
    note: str = ""  # why there is nothing to lift


def resume_step(bot: Mapping[str, Any]) -> ResumeStep:
    """Lift the stop a fleet stop put on ``bot``, and only that (a halt is undone only by a
    newer, explicit resume): its spec gets back the stop it had before the fleet's (the bot
    then stays halted, by it), or none. A stop the fleet did not write stays: one in a bot it
    never marked, or one changed since the fleet wrote it (a person's, newer than the fleet's);
    the mark then goes (the stop in force is no longer the fleet's)."""
    current = _stop((bot.get("spec") or {}).get("emergencyStop"))
    mark = read_mark(bot)
    unmark: dict[str, Any] = {"metadata": {"annotations": {FLEET_STOP_ANNOTATION: None}}}
    if mark is None:
        if current is None:
            return ResumeStep(None, note="not halted")
        return ResumeStep(None, left_halted=f"its stop is not a fleet stop's: {current['reason']}")
    if current is None:
        return ResumeStep(unmark, note="not halted: its stop was removed since the fleet stop")
    if current != mark.stop:
        why = f"its stop changed since the fleet stop: {current['reason']}"
        return ResumeStep(unmark, left_halted=why)
    patch = {**unmark, "spec": {"emergencyStop": mark.own}}
    if mark.own is None:
        return ResumeStep(patch, resumed=True)
    return ResumeStep(patch, left_halted=f"halted before the fleet stop: {mark.own['reason']}")


def _patch_unchanged(
    kube: LightKube,
    bot: Mapping[str, Any],
    decide: Callable[[Mapping[str, Any]], tuple[dict[str, Any] | None, _T]],
) -> _T:
    """Write what ``decide`` makes of ``bot`` only onto the bot as it was read: the patch
    carries its ``resourceVersion`` (the API server answers 409 when the bot changed since),
    and on a conflict the bot is read again and decided again. A stop a person set or changed
    meanwhile is so never taken for none, nor overwritten."""
    meta = bot["metadata"]
    path = bots_path(str(meta.get("namespace") or ""), str(meta["name"]))
    attempt = 1
    while True:
        patch, decided = decide(bot)
        if patch is None:
            return decided
        version = (bot.get("metadata") or {}).get("resourceVersion")
        if version:
            metadata = {**patch.get("metadata", {}), "resourceVersion": version}
            patch = {**patch, "metadata": metadata}
        try:
            kube.merge_patch(path, patch)
            return decided
        except LightKubeError as error:
            if error.status != 409 or attempt >= PATCH_ATTEMPTS:
                raise
        attempt += 1
        fresh = kube.get(path)
        if fresh is None:
            raise LightKubeError(404, "NotFound", f"TradingBot {meta['name']} is gone")
        bot = fresh


def _error(error: BaseException) -> str:
    code = getattr(error, "code", None)
    if callable(code):
        details = getattr(error, "details", lambda: "")()
        return f"{code().name}: {details}"[:200]
    return f"{type(error).__name__}: {error}"[:200]


def stop_fleet(
    kube: LightKube,
    *,
    selector: str,
    namespace: str | None,
    reason: str,
    flatten: bool = False,
    direct: bool = True,
    timeout: float = 2.0,
    settle: float = 0.2,
    started: float | None = None,
    on_direct: Callable[[_Direct], None] | None = None,
) -> list[FleetResult]:
    """Halt every matching bot (direct call first, then the spec patch); one result per bot."""
    started = time.monotonic() if started is None else started
    with ThreadPoolExecutor(max_workers=64, thread_name_prefix="fleet") as pool:
        listing: Future[list[dict[str, Any]]] = pool.submit(
            kube.list, bots_path(namespace), selector
        )
        sender = _Direct(reason, flatten, timeout) if direct else None  # imports while listing
        if sender is not None and on_direct is not None:
            on_direct(sender)
        bots = [bot for bot in listing.result() if selector_matches(selector, bot)]
        if sender is not None:
            sender.listed_at = _since_process_start()

        def one(bot: Mapping[str, Any]) -> FleetResult:
            meta = bot["metadata"]
            result = FleetResult(str(meta.get("namespace") or ""), str(meta["name"]), bot=bot)
            call = None
            if sender is not None:
                try:
                    secret = kube.get(
                        f"/api/v1/namespaces/{result.namespace}/secrets/{result.name}-api-token"
                    )
                    tokens = tokens_from_secret(secret)
                    if tokens is None:
                        result.direct_error = "no api-token Secret"
                    else:
                        call = sender.send(runtime_address(meta), tokens.control)
                except Exception as error:  # forbidden, unreachable: the spec still goes
                    result.direct_error = _error(error)
            answered_first = False
            if call is not None:
                try:
                    call.result(timeout=settle)
                    answered_first = True
                    result.halted_after_s = time.monotonic() - started
                except sender.grpc.FutureTimeoutError:  # type: ignore[union-attr]
                    pass
                except Exception as error:
                    result.direct_error, call = _error(error), None
            try:
                result.own_stop = _patch_unchanged(
                    kube, bot, lambda seen: stop_patch(seen, reason, bool(flatten))
                )
            except LightKubeError as error:
                result.error = str(error)
            if answered_first:
                result.path = DIRECT
            elif call is not None:
                try:
                    call.result()
                    result.path = EITHER
                    result.halted_after_s = time.monotonic() - started
                except Exception as error:
                    result.direct_error, result.path = _error(error), OPERATOR
            else:
                result.path = OPERATOR
            return result

        try:
            return list(pool.map(one, bots))
        finally:
            if sender is not None:
                sender.close()


def resume_fleet(kube: LightKube, *, selector: str, namespace: str | None) -> list[FleetResult]:
    """Lift the fleet's stop of every matching bot (:func:`resume_step`); the operator resumes
    each one whose spec is left without a stop. One result per bot, saying which stay halted."""
    bots = [
        bot for bot in kube.list(bots_path(namespace), selector) if selector_matches(selector, bot)
    ]

    def one(bot: Mapping[str, Any]) -> FleetResult:
        meta = bot["metadata"]
        result = FleetResult(str(meta.get("namespace") or ""), str(meta["name"]), bot=bot)

        def decide(seen: Mapping[str, Any]) -> tuple[dict[str, Any] | None, ResumeStep]:
            step = resume_step(seen)
            return step.patch, step

        try:
            step = _patch_unchanged(kube, bot, decide)
        except LightKubeError as error:
            result.error = str(error)
        else:
            result.resumed, result.left_halted, result.note = (
                step.resumed,
                step.left_halted,
                step.note,
            )
        return result

    with ThreadPoolExecutor(max_workers=64, thread_name_prefix="fleet") as pool:
        return list(pool.map(one, bots))


def add_fleet_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``fleet stop`` and ``fleet resume`` to the ``tradefleet`` CLI's subparsers."""
    fleet: argparse.ArgumentParser = subparsers.add_parser(
        "fleet", help="act on many TradingBots at once (by label)"
    )
    commands = fleet.add_subparsers(dest="fleet_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--selector",
            "-l",
            required=True,
            help="label selector, e.g. tradefleet.io/team=a,tier!=canary",
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
    stop.add_argument(
        "--timings", action="store_true", help="print when the first EmergencyStop was sent"
    )
    resume = commands.add_parser(
        "resume", help="lift the emergency stop a fleet stop set on every matching bot"
    )
    common(resume)
    return fleet


def _credentials(args: argparse.Namespace) -> Credentials:
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    try:
        return Credentials.from_environment()
    except Unsupported:
        return _credentials_via_kopf()


def _credentials_via_kopf() -> Credentials:
    """kopf's login (which can use an installed kubernetes client for exec plugins)."""
    import kopf

    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise LightKubeError(0, "NoCredentials", "no service account and no kubeconfig found")
    return Credentials(
        server=info.server,
        namespace=info.default_namespace or "default",
        token=info.token,
        ca_file=os.fsdecode(info.ca_path) if info.ca_path else None,
        ca_data=info.ca_data.decode() if isinstance(info.ca_data, bytes) else info.ca_data,
        username=info.username,
        password=info.password,
        insecure=bool(info.insecure),
    )


def _run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    parse_selector(args.selector)  # refuse a bad selector before touching anything
    kube = LightKube(_credentials(args))
    namespace = None if args.all_namespaces else str(args.namespace or kube.default_namespace)
    sender: list[_Direct] = []
    try:
        if args.fleet_command == "stop":
            results = stop_fleet(
                kube,
                selector=args.selector,
                namespace=namespace,
                reason=args.reason,
                flatten=bool(args.flatten),
                direct=not args.no_direct,
                started=started,
                on_direct=sender.append,
            )
        else:
            results = resume_fleet(kube, selector=args.selector, namespace=namespace)
    finally:
        kube.close()
    failed = [result for result in results if result.error]
    for result in results:
        print(f"{result.namespace}/{result.name}: {_report_line(args.fleet_command, result)}")
    if args.fleet_command == "stop":
        print(f"{len(results) - len(failed)} of {len(results)} bots stopped")
    else:
        resumed = sum(result.resumed for result in results)
        kept = sum(bool(result.left_halted) for result in results)
        left = f"; {kept} left halted (see above)" if kept else ""
        print(f"{resumed} of {len(results)} bots resumed{left}")
    if args.fleet_command == "stop" and getattr(args, "timings", False):
        first = sender[0].first_sent if sender else None
        sent = f"{first * 1000:.0f} ms" if first is not None else "never"
        print(f"first EmergencyStop sent {sent} after the interpreter started", file=sys.stderr)
        if sender:
            ready, listed = sender[0].ready_at, sender[0].listed_at or 0.0
            print(
                f"gRPC stubs ready at {ready * 1000:.0f} ms, bots listed at {listed * 1000:.0f} ms",
                file=sys.stderr,
            )
    return 1 if failed or not results else 0


def _report_line(command: str, result: FleetResult) -> str:
    """What the command says of one bot."""
    if command == "stop":
        how = _PATHS[result.path]
        if result.error:
            how = f"FAILED to patch the spec ({result.error}); {how}"
        if result.halted_after_s is not None:
            how += f" {result.halted_after_s * 1000:.0f} ms after the start"
        if result.direct_error:
            how += f" (direct call: {result.direct_error})"
        if result.own_stop:
            how += f"; its own stop stays in the spec: {result.own_stop}"
        return how
    if result.error:
        return f"FAILED to patch the spec ({result.error}): its stop is unchanged"
    if result.resumed:
        return "the fleet's spec.emergencyStop removed: the operator resumes it"
    if result.left_halted:
        return f"left halted ({result.left_halted})"
    return f"{result.note}: nothing to resume"


def run_fleet_command(args: argparse.Namespace) -> int:
    """Run a parsed ``fleet`` command; 0 when every matching bot was patched (and some did)."""
    try:
        return _run(args)
    except ValueError as error:
        print(f"tradefleet fleet: {error}", file=sys.stderr)
        return 2
    except (LightKubeError, Unsupported, OSError) as error:
        print(f"tradefleet fleet: {error}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``tradefleet fleet ...`` (the CLI's ``tradefleet.cli`` entry point), or
    ``python -m tradefleet_operator.fleet stop ...``."""
    parser = argparse.ArgumentParser(prog="tradefleet")
    add_fleet_commands(parser.add_subparsers(dest="command", required=True))
    return run_fleet_command(parser.parse_args(["fleet", *(argv or sys.argv[1:])]))


if __name__ == "__main__":
    raise SystemExit(main())
