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

A bot already halted for its own reason (a person's ``spec.emergencyStop``) keeps that stop; its
spec stop then names both (``"<own reason>; fleet stop: <reason>"``: its owner, who sees only
the spec, must not take it for their stop alone). So does a bot whose runtime is already halted
for a reason no spec or fleet stop gave (a person's ``tradefleet stop ADDRESS``): that halt is
recorded as the bot's own stop. The direct call's answer says it (the runtime keeps the first
reason); without an answer (``--no-direct``, a call refused or unreachable) the bot's status
does (``status.halted``/``haltReason``, the runtime's report as the operator last wrote it;
:func:`status_halt`). The fleet's own reasons are never taken for a person's, however they were
written: the record keeps every reason the fleet wrote or sent while it held the bot (a reason
cut to the CRD's limit, the spec naming several fleet stops, a fleet stop resumed since), and
each is compared (:func:`foreign_halt`). Each stopped bot gets the annotation
``tradefleet.io/fleet-stop`` (:data:`FLEET_STOP_ANNOTATION`, :class:`FleetMark`): every fleet
stop holding it, each with its selector and reason, the bot's own stop, the stop the fleet last
wrote and the reasons it wrote before. It lives in the object, so it survives the command and
an operator restart.

``tradefleet fleet resume --selector tradefleet.io/team=a`` lifts only the fleet stops made with
that selector (a halt is undone only by a newer, explicit resume): the spec keeps naming every
other stop that holds the bot, gets its own stop back alone (its own reason) once no fleet stop
holds it, or loses its stop, and the operator resumes it on that spec change (only a spec change
resumes, never its status timer). Never a Degraded bot's: a runtime older than this release
clears the Degraded stop with the operator's Resume (one that keeps each halt's holder lifts the
spec's halt alone), and a person resumes that (``tradefleet resume ADDRESS``). The operator's
Resume never lifts a halt a person gave the runtime directly after the fleet stop: the bot stays
halted, and a fleet resume whose bot's status names such a halt next to the fleet's reports it
left halted. A stop that is not the
fleet's (never recorded, or changed since) stays, and so does one recorded by the record's first
format (one stop, no selector); the report names each bot left halted with the stops that hold it.

Speed is the point: the command imports only the standard library, PyYAML (kubeconfig) and
the gRPC stubs (imported while the TradingBots are being listed), never kopf, aiohttp or the
spec model (:mod:`.kube_light`); ``--timings`` prints when the first ``EmergencyStop`` left,
counted from the interpreter's start.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
    "FleetStop",
    "ResumeStep",
    "StopStep",
    "add_fleet_commands",
    "canonical_selector",
    "foreign_halt",
    "main",
    "read_mark",
    "resume_fleet",
    "resume_step",
    "run_fleet_command",
    "spec_stop",
    "status_halt",
    "status_halt_reason",
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
#: The record's format: every fleet stop holding the bot, each with its selector. A record
#: without ``version`` is the first format (one stop, no selector; :func:`read_mark`), another
#: version is unreadable (its stop stays).
MARK_VERSION = 2
#: Tries of one bot's patch when the bot changed since it was read (409 Conflict).
PATCH_ATTEMPTS = 5
#: ``spec.emergencyStop.reason``'s ``maxLength`` (the CRD's, ``EmergencyStopSpec``'s).
MAX_REASON_CHARS = 500
#: ``status.phase`` of a bot halted because the venue and the journal disagree (``names``).
DEGRADED = "Degraded"
#: ``status.control.applied`` once the operator halted the runtime for a spec stop (``names``).
APPLIED_HALTED = "Halted"
#: How many earlier reasons a record keeps (:attr:`FleetMark.earlier`): the first ones, as the
#: runtime keeps the first reason it was halted with. A bound, so that the annotation stays far
#: below the API server's size limit (a refused patch would leave the bot without the stop).
MAX_EARLIER = 32
#: Where the halt recorded as a bot's own stop was seen (the report says it).
SEEN_DIRECT = "the direct call's answer"
SEEN_STATUS = "its status.haltReason"

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
    #: Stop: the halt the runtime was found in (a person's ``tradefleet stop``), recorded as
    #: the bot's own stop ("" when none was found), and where it was seen (``SEEN_*``).
    runtime_halt: str = ""
    runtime_halt_seen: str = ""
    #: Stop: why that halt could not be recorded (the fleet stop itself is in the spec).
    runtime_halt_error: str = ""
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


def canonical_selector(selector: str) -> str:
    """``selector`` written one way (terms and set values sorted, no spaces), so that a fleet
    resume finds the stop made with the same selector however it is spelled; ValueError if
    bad."""
    terms = []
    for key, op, values in parse_selector(selector):
        if op == "exists":
            terms.append(key)
        elif op == "!exists":
            terms.append(f"!{key}")
        elif op in ("in", "notin"):
            terms.append(f"{key} {op} ({','.join(sorted(set(values)))})")
        else:
            terms.append(f"{key}{op}{values[0]}")
    return ",".join(sorted(set(terms)))


@dataclass(frozen=True)
class FleetStop:
    """One fleet stop holding a bot: the selector it was made with (canonical; None when a
    fleet command from before selectors were recorded made it: no fleet resume lifts it), its
    reason ("" when not recorded) and whether it flattens."""

    selector: str | None
    reason: str
    flatten: bool

    def data(self) -> dict[str, Any]:
        return {"selector": self.selector, "reason": self.reason, "flatten": self.flatten}

    def described(self) -> str:
        reason = self.reason or "its reason not recorded"
        if self.selector is None:
            return (
                "a fleet stop recorded without its selector (by an older tradefleet), which no "
                f"fleet resume lifts: {reason}"
            )
        return f"the fleet stop of {self.selector}: {reason}"


@dataclass(frozen=True)
class FleetMark:
    """The value of :data:`FLEET_STOP_ANNOTATION`: ``written``, what the fleet last wrote into
    ``spec.emergencyStop``; ``own``, the bot's own stop (found in the spec by the first fleet
    stop, or the halt a person gave its runtime directly), given back once no fleet stop holds
    it (None: none); ``stops``, every fleet stop holding the bot; ``earlier``, the reasons the
    fleet wrote into the spec or sent to the runtime while it held the bot that ``written`` and
    ``stops`` no longer show (on one line; the key is left out while there is none): the runtime
    keeps the first reason it was halted with, which may be any of them."""

    written: Stop
    own: Stop | None
    stops: tuple[FleetStop, ...]
    earlier: tuple[str, ...] = ()

    def text(self) -> str:
        data: dict[str, Any] = {
            "version": MARK_VERSION,
            "written": self.written,
            "own": self.own,
            "stops": [stop.data() for stop in self.stops],
        }
        if self.earlier:
            data["earlier"] = list(self.earlier)
        return json.dumps(data, sort_keys=True)


def _has_mark(bot: Mapping[str, Any]) -> bool:
    annotations = (bot.get("metadata") or {}).get("annotations") or {}
    return isinstance(annotations, Mapping) and FLEET_STOP_ANNOTATION in annotations


def read_mark(bot: Mapping[str, Any]) -> FleetMark | None:
    """The bot's fleet-stop record; None when it has none or one this command cannot read (an
    edited annotation, a newer format: the stop it would vouch for then counts as not the
    fleet's, and stays). The first format (``{"stop", "own"}``, one stop and no selector) is
    read as a fleet stop without its selector, which no fleet resume lifts."""
    annotations = (bot.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(FLEET_STOP_ANNOTATION) if isinstance(annotations, Mapping) else None
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if "version" not in data:
        return _read_first_mark(data)
    if data.get("version") != MARK_VERSION or not isinstance(data.get("stops"), list):
        return None
    written, own = _stop(data.get("written")), _stop(data.get("own"))
    if written is None or not written["reason"] or (data.get("own") is not None and own is None):
        return None
    stops = []
    for item in data["stops"]:
        if not isinstance(item, Mapping):
            return None
        selector, reason = item.get("selector"), item.get("reason")
        if not (selector is None or isinstance(selector, str)) or not isinstance(reason, str):
            return None
        stops.append(FleetStop(selector, reason, bool(item.get("flatten"))))
    earlier = data.get("earlier", [])
    if not isinstance(earlier, list) or not all(isinstance(text, str) for text in earlier):
        return None
    return FleetMark(written, own, tuple(stops), tuple(earlier)) if stops else None


def _read_first_mark(data: Mapping[str, Any]) -> FleetMark | None:
    """The record's first format: the stop written and the own stop; the fleet's reason is the
    written one when there was no own stop (else it was not recorded)."""
    stop, own = _stop(data.get("stop")), _stop(data.get("own"))
    if stop is None or not stop["reason"] or (data.get("own") is not None and own is None):
        return None
    reason = stop["reason"] if own is None else ""
    flatten = stop["flatten"] and not (own is not None and own["flatten"])
    return FleetMark(stop, own, (FleetStop(None, reason, flatten),))


def _one_line(text: str) -> str:
    """``text`` as the runtime journals a reason (``check_reason``): unprintable characters
    are spaces, runs of space one."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _bounded(text: str) -> str:
    """A ``spec.emergencyStop.reason`` within its ``maxLength``: the API server refuses a
    longer one, and a refused patch would leave the bot without the stop."""
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def spec_stop(own: Stop | None, stops: Sequence[FleetStop]) -> Stop:
    """The ``spec.emergencyStop`` that says every stop holding a bot: the own stop's reason
    first, then each fleet stop's (``"<own>; fleet stop: <reason>"``), so its owner, who sees
    only the spec, never takes it for their stop alone. A lone fleet stop is its reason. It
    flattens when any of them does."""
    parts = [own["reason"]] if own is not None else []
    named = [stop.reason or "its reason not recorded" for stop in stops]
    if own is None and len(stops) == 1:
        parts = named
    else:
        parts += [f"fleet stop: {reason}" for reason in named]
    flatten = bool(own and own["flatten"]) or any(stop.flatten for stop in stops)
    return {"reason": _bounded("; ".join(parts)), "flatten": flatten}


def status_halt_reason(answer: Any) -> str:
    """The ``halt_reason`` of a ``StatusSnapshot`` in wire format (a direct call's answer, not
    decoded: protobuf is not imported) when its ``halted`` (field 12) is set; "" when it is
    not, or the answer cannot be read."""
    if not isinstance(answer, bytes):
        return ""
    halted, reason, at = False, "", 0
    try:
        while at < len(answer):
            key, at = _read_varint(answer, at)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, at = _read_varint(answer, at)
                halted = bool(value) if number == 12 else halted
            elif wire == 2:
                size, at = _read_varint(answer, at)
                if at + size > len(answer):
                    return ""
                reason = answer[at : at + size].decode() if number == 13 else reason
                at += size
            elif wire in (1, 5):
                at += 8 if wire == 1 else 4
            else:
                return ""
    except (ValueError, UnicodeDecodeError):
        return ""
    return reason if halted and at == len(answer) else ""


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value, shift, at = value | (byte & 0x7F) << shift, shift + 7, at + 1
        if not byte & 0x80:
            return value, at
    raise ValueError("truncated varint")


#: How the runtime's ``halt_reason`` names each further holder's halt after the first (a
#: person's given after a fleet stop's; ``trading_state``): "<first>; emergency stop by WHO:
#: REASON", or, restored after a restart, "...; restored after restart (emergency stop by ...)".
_FURTHER_HALT = re.compile(r"; (?=emergency stop by |restored after restart \(emergency stop by )")


#: Who the runtime names as the giver of the spec's halts (``trading_state.SPEC_ACTORS``): the
#: operator's (``runtime_client.ACTOR``) and the fleet's own direct call (:data:`ACTOR`).
_SPEC_GIVERS = ("tradefleet-operator (", "tradefleet-fleet (")


def _halted_for(halt_reason: str) -> str:
    """The reason given for a halt, from the runtime's ``halt_reason``: after a restart it
    reads ``restored after restart (emergency stop by WHO: REASON)``; the spec's halt given
    while a person's held the runtime already reads ``emergency stop by WHO: REASON`` (WHO the
    operator or the fleet; a person's keeps its whole text, never taken for the fleet's). The
    journal's notes after REASON go: the flatten owed, and "(already halted)" of a halt given
    to a runtime halted already, which a runtime of this release restores without it."""
    text = _one_line(halt_reason)
    prefix, suffix = "restored after restart (emergency stop by ", ")"
    if text.startswith(prefix) and text.endswith(suffix):
        inner = text[len(prefix) : -len(suffix)].partition(": ")[2]
        for note in (" (to flatten once the venue answers)", " (already halted)"):
            inner = inner.removesuffix(note)
        return inner
    joined = "emergency stop by "
    if text.startswith(joined) and text[len(joined) :].startswith(_SPEC_GIVERS):
        return text[len(joined) :].partition("): ")[2] or text
    return text


def _foreign_parts(halt_reason: str, reason: str, bot: Mapping[str, Any]) -> str:
    """Of a runtime's ``halt_reason`` naming several holders' halts (:data:`_FURTHER_HALT`),
    the ones no stop of the spec or the fleet gave (:func:`foreign_halt`), as it names them;
    "" when there is none."""
    parts = _FURTHER_HALT.split(halt_reason)
    return "; ".join(part for part in parts if foreign_halt(part, reason, bot))


def _fleet_forms(mark: FleetMark) -> set[str]:
    """Every reason the fleet may have made the runtime hold while ``mark`` holds the bot: what
    it wrote last and earlier (:attr:`FleetMark.earlier`, cut and combined forms included), each
    fleet stop's own reason (the direct call's), and, for a record written before ``earlier``
    was kept, the spec stops its stops made as each was added (``stops[:k]``) or alone."""
    forms = {mark.written["reason"], *mark.earlier, *(stop.reason for stop in mark.stops)}
    for count in range(1, len(mark.stops) + 1):
        forms.add(spec_stop(mark.own, mark.stops[:count])["reason"])
    forms.update(spec_stop(mark.own, [stop])["reason"] for stop in mark.stops)
    return forms


def foreign_halt(halt_reason: str, reason: str, bot: Mapping[str, Any]) -> bool:
    """True when the runtime's ``halt_reason`` (a direct call's answer, or the bot's status:
    the runtime keeps the first reason) is no stop the spec or a fleet stop gave: a halt a
    person gave the runtime directly (``tradefleet stop ADDRESS``), a Degraded start's. The
    fleet's reasons are recognised in every form it wrote while its record holds the bot
    (:func:`_fleet_forms`). Unknown is foreign: kept."""
    if not halt_reason:
        return False
    known = {reason}
    current = _stop((bot.get("spec") or {}).get("emergencyStop"))
    if current is not None:
        known.add(current["reason"])
    mark = read_mark(bot)
    if mark is not None:
        known.update(_fleet_forms(mark))
        if mark.own is not None:
            known.add(mark.own["reason"])
    given = _halted_for(halt_reason)
    return given not in {_one_line(text) for text in known if text}


def status_halt(bot: Mapping[str, Any]) -> str:
    """The halt ``bot``'s status shows (``status.haltReason`` while ``status.halted``: what
    the operator last read from its runtime, ``status_mapping``); "" when it shows none, or
    when it may be the operator's halt for a spec stop removed since: the spec has no stop
    while ``status.control.applied`` still says the operator halted the runtime (its resume
    is not written yet). That halt is the removed stop's (a fleet stop's just resumed, whose
    record is gone), or one it covered, which the removal lifts all the same (the operator's
    full Resume)."""
    status = bot.get("status")
    if not isinstance(status, Mapping) or status.get("halted") is not True:
        return ""
    reason = status.get("haltReason")
    if not isinstance(reason, str) or not reason.strip():
        return ""
    control = status.get("control")
    applied = control.get("applied") if isinstance(control, Mapping) else None
    if applied == APPLIED_HALTED and _stop((bot.get("spec") or {}).get("emergencyStop")) is None:
        return ""
    return reason


def _earlier(mark: FleetMark | None, written: Stop, stops: Sequence[FleetStop]) -> tuple[str, ...]:
    """:attr:`FleetMark.earlier` of the record replacing ``mark`` (also one whose stop changed
    since: the runtime may still hold what it said): every reason ``mark`` knew of that
    ``written`` and ``stops`` no longer show, the first :data:`MAX_EARLIER`."""
    if mark is None:
        return ()
    shown = {_one_line(written["reason"]), *(_one_line(stop.reason) for stop in stops)}
    kept: list[str] = []
    for text in (*mark.earlier, mark.written["reason"], *(stop.reason for stop in mark.stops)):
        line = _one_line(text)
        if line and line not in shown and line not in kept:
            kept.append(line)
    return tuple(kept[:MAX_EARLIER])


@dataclass(frozen=True)
class StopStep:
    """What the fleet's stop does to one bot (:func:`stop_patch`)."""

    patch: dict[str, Any]
    own: str = ""  # the reason of the bot's own stop, kept ("" when none)
    adopted: str = ""  # the runtime's halt, recorded as the own stop
    seen_in: str = ""  # where that halt was seen: SEEN_DIRECT or SEEN_STATUS


def stop_patch(
    bot: Mapping[str, Any],
    reason: str,
    flatten: bool,
    selector: str = "",
    *,
    runtime_halt: str = "",
) -> StopStep:
    """The merge patch that adds the fleet stop made with ``selector`` to ``bot``'s record and
    says it in its spec (:func:`spec_stop`).

    A stop in the spec that the fleet did not write (a person's, for this bot) becomes the
    bot's own stop, kept in the record and named first in the spec. A stop the record says the
    fleet wrote is the fleet's: the record's own stop and fleet stops stay, and a fleet stop
    made again with the same selector takes the new reason (a flatten in force is never taken
    back: a stop only shrinks what the bot may do). ``runtime_halt`` is the halt the direct
    call found the runtime in; without one (no answer), the halt the bot's status shows
    (:func:`status_halt`). A halt the spec and the fleet did not give (:func:`foreign_halt`)
    is recorded as the bot's own stop when it has none, so no fleet resume lifts it. A direct
    answer that names the fleet's halt is newer than the status: the status is then not read."""
    current = _stop((bot.get("spec") or {}).get("emergencyStop"))
    mark = read_mark(bot)
    own: Stop | None
    stops: list[FleetStop]
    if mark is not None and current == mark.written:
        own, stops = mark.own, list(mark.stops)
    else:
        own, stops = current, []
    adopted, seen_in = "", ""
    halt, seen = (runtime_halt, SEEN_DIRECT) if runtime_halt else (status_halt(bot), SEEN_STATUS)
    foreign = _foreign_parts(halt, reason, bot) if halt else ""
    if own is None and foreign:
        adopted, seen_in = _one_line(foreign), seen
        own = {"reason": _bounded(adopted), "flatten": False}
    key = canonical_selector(selector)
    same = [stop for stop in stops if stop.selector == key]
    made = FleetStop(key, reason, flatten or any(stop.flatten for stop in same))
    stops = [made if stop.selector == key else stop for stop in stops] if same else [*stops, made]
    written = spec_stop(own, stops)
    record = FleetMark(written, own, tuple(stops), _earlier(mark, written, stops))
    patch = {
        "metadata": {"annotations": {FLEET_STOP_ANNOTATION: record.text()}},
        "spec": {"emergencyStop": written},
    }
    return StopStep(patch, own["reason"] if own is not None else "", adopted, seen_in)


@dataclass(frozen=True)
class ResumeStep:
    """What the fleet's resume does to one bot (:func:`resume_step`)."""

    patch: dict[str, Any] | None  # None: nothing to write
    resumed: bool = False  # the fleet's stop goes and no other stop holds the bot
    left_halted: str = ""  # why the bot stays halted
    note: str = ""  # why there is nothing to lift


def _degraded(bot: Mapping[str, Any]) -> str | None:
    """Why the bot is Degraded (its ``Reconciled`` condition's reason, or ""); None when its
    status does not say it is."""
    status = bot.get("status") or {}
    if not isinstance(status, Mapping) or status.get("phase") != DEGRADED:
        return None
    for condition in status.get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == "Reconciled":
            return str(condition.get("message") or condition.get("reason") or "")
    return ""


def resume_step(bot: Mapping[str, Any], selector: str = "") -> ResumeStep:
    """Lift the fleet stops made with ``selector`` from ``bot``, and only those (a halt is
    undone only by a newer, explicit resume): the spec keeps saying every other stop that holds
    the bot — the other fleet stops, its own stop (given back alone, with its own reason, once
    no fleet stop holds it) — or, when none is left, loses its stop, and the operator resumes
    the bot. Never a Degraded one: a person resumes that, once the account is reviewed.

    A stop the fleet did not write stays: one in a bot it never marked (or whose record it
    cannot read), or one changed since the fleet wrote it (a person's, newer than the fleet's);
    the record then goes (the stop in force is no longer the fleet's)."""
    current = _stop((bot.get("spec") or {}).get("emergencyStop"))
    mark = read_mark(bot)
    unmark: dict[str, Any] = {"metadata": {"annotations": {FLEET_STOP_ANNOTATION: None}}}
    if mark is None:
        if current is None:
            held = _halted_without_stop(bot)
            if held:
                return ResumeStep(None, left_halted=held)
            return ResumeStep(None, note="not halted")
        unread = " (its tradefleet.io/fleet-stop record is unreadable)" if _has_mark(bot) else ""
        why = f"its stop is not a fleet stop's{unread}: {current['reason']}"
        return ResumeStep(None, left_halted=why)
    if current is None:
        held = _halted_without_stop(bot)
        if held:
            return ResumeStep(unmark, left_halted=held)
        return ResumeStep(unmark, note="not halted: its stop was removed since the fleet stop")
    if current != mark.written:
        why = f"its stop changed since the fleet stop: {current['reason']}"
        return ResumeStep(unmark, left_halted=why)
    key = canonical_selector(selector)
    left = [stop for stop in mark.stops if stop.selector != key]
    if len(left) == len(mark.stops):
        held = _held(mark.own, left)
        return ResumeStep(None, left_halted=f"no fleet stop of {key} holds it; {held}")
    if left:
        written = spec_stop(mark.own, left)
        text = FleetMark(written, mark.own, tuple(left), _earlier(mark, written, left)).text()
        patch = {"metadata": {"annotations": {FLEET_STOP_ANNOTATION: text}}}
        step = {**patch, "spec": {"emergencyStop": written}}
        return ResumeStep(step, left_halted=_held(mark.own, left))
    if mark.own is not None:
        patch = {**unmark, "spec": {"emergencyStop": mark.own}}
        return ResumeStep(patch, left_halted=_held(mark.own, left))
    degraded = _degraded(bot)
    if degraded is not None:
        # The operator's Resume would clear the Degraded stop (the runtime then trades on an
        # account nobody checked): the fleet stop stays until the bot is no longer Degraded.
        address = runtime_address(bot.get("metadata") or {})
        why = f"Degraded: {degraded}" if degraded else "Degraded"
        return ResumeStep(
            None,
            left_halted=(
                f"{why}; a fleet resume never resumes a degraded bot: a person does, once the "
                f"account is reviewed (tradefleet resume {address}, see "
                "docs/operations.md#tradefleetbotdegraded); the fleet stop stays in its spec "
                "until a fleet resume finds it no longer Degraded"
            ),
        )
    lifted = {**unmark, "spec": {"emergencyStop": None}}
    held = _halted_besides_fleet(bot)
    if held:
        # The fleet's stop goes all the same (the operator's resume lifts only the fleet's
        # halt in the runtime, which keeps each halt's holder); the bot stays halted.
        return ResumeStep(lifted, left_halted=held)
    return ResumeStep(lifted, resumed=True)


def _halted_besides_fleet(bot: Mapping[str, Any]) -> str:
    """Why ``bot`` stays halted once the fleet's stop, the last in its spec, goes: its status
    shows its runtime halted by more than one holder, one of them not the fleet (a person's
    ``tradefleet stop ADDRESS`` after the fleet stop: the runtime keeps each holder's halt,
    names them all in its ``halt_reason`` and keeps that one through the operator's resume,
    which lifts only the spec's); "" when it shows none. One halt alone is not read here: a
    foreign one was recorded as the bot's own stop by the fleet stop, and a status a fleet
    stop ago (not read again since) must not be taken for a halt kept."""
    halt = status_halt(bot)
    if len(_FURTHER_HALT.split(halt)) < 2 or not _foreign_parts(halt, "", bot):
        return ""
    return _halted_without_stop(bot, also=True)


def _halted_without_stop(bot: Mapping[str, Any], *, also: bool = False) -> str:
    """Why ``bot`` stays halted though its spec has no stop, when its status shows its runtime
    halted (:func:`status_halt`); "" when it does not. A bot deleted and applied again during a
    fleet stop comes back without its spec stop and its record, and its runtime restores the
    halt from its journal; a halt given to the runtime directly is the same. The fleet resume
    lifts only the stops it recorded: saying "not halted" here would tell a person a bot trades
    that does not. ``also``: the fleet's stop is being lifted, and the runtime is halted by
    another halt besides (:func:`_halted_besides_fleet`)."""
    halt = status_halt(bot)
    if not halt:
        return ""
    address = runtime_address(bot.get("metadata") or {})
    if also:
        return (
            f"its runtime is halted ({_one_line(halt)}, per {SEEN_STATUS}) by a halt given to "
            "the runtime directly besides the fleet stop, which a fleet resume does not lift: "
            "the fleet stop is lifted from its spec, that halt stays; a person resumes it "
            f"(tradefleet resume {address})"
        )
    return (
        f"its runtime is halted ({_one_line(halt)}, per {SEEN_STATUS}) while its spec has no "
        "stop: a halt restored from its journal (the bot applied again) or given to the "
        "runtime directly, which a fleet resume does not lift; a person resumes it "
        f"(tradefleet resume {address})"
    )


def _held(own: Stop | None, stops: Sequence[FleetStop]) -> str:
    """The stops that still hold a bot, said."""
    if own is not None and not stops:
        return f"halted before the fleet stop: {own['reason']}"
    holders = [stop.described() for stop in stops]
    if own is not None:
        holders.append(f"its own stop from before the fleet stop: {own['reason']}")
    return "still held by " + "; and by ".join(holders)


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
            answered_first, found = False, ""
            if call is not None:
                try:
                    found = status_halt_reason(call.result(timeout=settle))
                    answered_first = True
                    result.halted_after_s = time.monotonic() - started
                except sender.grpc.FutureTimeoutError:  # type: ignore[union-attr]
                    pass
                except Exception as error:
                    result.direct_error, call = _error(error), None
            try:
                _mark_stop(kube, bot, result, reason, bool(flatten), selector, found)
            except LightKubeError as error:
                result.error = str(error)
            if answered_first:
                result.path = DIRECT
            elif call is not None:
                try:
                    found = status_halt_reason(call.result())
                    result.path = EITHER
                    result.halted_after_s = time.monotonic() - started
                except Exception as error:
                    result.direct_error, result.path = _error(error), OPERATOR
                else:
                    if not result.error and foreign_halt(found, reason, bot):
                        # Answered after the patch: the halt it found goes into the record
                        # now, onto the bot read again (the patch changed it).
                        try:
                            fresh = kube.get(bots_path(result.namespace, result.name))
                            if fresh is not None:
                                _mark_stop(
                                    kube, fresh, result, reason, bool(flatten), selector, found
                                )
                        except LightKubeError as error:
                            result.runtime_halt = _one_line(found)
                            result.runtime_halt_seen = SEEN_DIRECT
                            result.runtime_halt_error = str(error)
            else:
                result.path = OPERATOR
            return result

        try:
            return list(pool.map(one, bots))
        finally:
            if sender is not None:
                sender.close()


def _mark_stop(
    kube: LightKube,
    bot: Mapping[str, Any],
    result: FleetResult,
    reason: str,
    flatten: bool,
    selector: str,
    found: str,
) -> None:
    """Write the fleet stop onto ``bot`` (:func:`stop_patch`, with the halt ``found`` by the
    direct call); what it kept into ``result``. Raises :class:`LightKubeError`."""

    def decide(seen: Mapping[str, Any]) -> tuple[dict[str, Any] | None, StopStep]:
        step = stop_patch(seen, reason, flatten, selector, runtime_halt=found)
        return step.patch, step

    step = _patch_unchanged(kube, bot, decide)
    result.own_stop = step.own
    if step.adopted:
        result.runtime_halt, result.runtime_halt_seen = step.adopted, step.seen_in


def resume_fleet(kube: LightKube, *, selector: str, namespace: str | None) -> list[FleetResult]:
    """Lift the fleet stops made with ``selector`` from every matching bot
    (:func:`resume_step`); the operator resumes each one whose spec is left without a stop. One
    result per bot, saying which stay halted and by what."""
    bots = [
        bot for bot in kube.list(bots_path(namespace), selector) if selector_matches(selector, bot)
    ]

    def one(bot: Mapping[str, Any]) -> FleetResult:
        meta = bot["metadata"]
        result = FleetResult(str(meta.get("namespace") or ""), str(meta["name"]), bot=bot)

        def decide(seen: Mapping[str, Any]) -> tuple[dict[str, Any] | None, ResumeStep]:
            step = resume_step(seen, selector)
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
        "resume", help="lift the fleet stops made with this selector from every matching bot"
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
        halt = f"{result.runtime_halt}, per {result.runtime_halt_seen or SEEN_DIRECT}"
        if result.runtime_halt_error:
            how += (
                f"; its runtime was already halted ({halt}), NOT recorded as its own stop "
                f"({result.runtime_halt_error}): a fleet resume would lift it"
            )
        elif result.runtime_halt:
            how += (
                f"; its runtime was already halted ({halt}): kept as its own stop, which the "
                "fleet resume leaves"
            )
        elif result.own_stop:
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
