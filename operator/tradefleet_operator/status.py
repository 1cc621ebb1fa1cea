"""A TradingBot's status from its runtime, and steering the runtime to what the spec asks.

Three layers, top to bottom:

- pure functions: a runtime ``StatusSnapshot`` → the CR's status fields
  (:func:`status_from_snapshot`), standard conditions (:func:`set_condition`), the phase state
  machine (:func:`advance`), the gRPC calls that bring the runtime to the spec
  (:func:`plan_control`) and the smallest status patch (:func:`status_changes`);
- I/O: :class:`RuntimeClients` (one grpc.aio channel per runtime address, control token from
  the bot's ``<name>-api-token`` Secret) and :func:`steer`;
- the kopf timer :func:`poll_status`, every ``TRADEFLEET_STATUS_INTERVAL`` seconds (10), which
  reads ``GetStatus``, re-tries steering the runtime if an earlier attempt did not get through,
  and patches the status only when something changed. A runtime it cannot reach sets
  ``Ready=False, reason=RuntimeUnreachable``; it never raises.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

import grpc
import grpc.aio
import kopf
from prometheus_client import Gauge

from tradefleet_operator import objects
from tradefleet_operator.fleet import KubeApi, api_path
from tradefleet_operator.settings import OperatorSettings
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc

GROUP, VERSION, PLURAL = "tradefleet.io", "v1alpha1", "tradingbots"
RESET_RISK_LOCK_ANNOTATION = "tradefleet.io/reset-risk-lock"
ACTOR = "tradefleet-operator"

#: How often each bot's status is read from its runtime (seconds).
STATUS_INTERVAL = float(os.environ.get("TRADEFLEET_STATUS_INTERVAL", "10"))


def token_secret_name(bot: str) -> str:
    return objects.api_token_secret_name(bot)


# --- the phase state machine --------------------------------------------------------------------


class Phase(StrEnum):
    PENDING = "Pending"  # objects made; the runtime has not answered yet (or is starting)
    RUNNING = "Running"
    PAUSED = "Paused"
    HALTED = "Halted"
    STOPPED = "Stopped"
    FAILED = "Failed"


#: Which phase may follow which. A stopped or failed bot comes back through Pending (its pod
#: restarts) or straight to Running when the runtime answers again.
TRANSITIONS: Mapping[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset(Phase),
    Phase.RUNNING: frozenset(Phase),
    Phase.PAUSED: frozenset(Phase),
    Phase.HALTED: frozenset(Phase),
    Phase.STOPPED: frozenset({Phase.PENDING, Phase.RUNNING, Phase.FAILED}),
    Phase.FAILED: frozenset({Phase.PENDING, Phase.RUNNING}),
}

RUNTIME_PHASES: Mapping[int, Phase] = {
    pb.PHASE_STARTING: Phase.PENDING,
    pb.PHASE_RUNNING: Phase.RUNNING,
    pb.PHASE_PAUSED: Phase.PAUSED,
    pb.PHASE_HALTED: Phase.HALTED,
    pb.PHASE_STOPPING: Phase.STOPPED,
    pb.PHASE_STOPPED: Phase.STOPPED,
    pb.PHASE_FAILED: Phase.FAILED,
}


BOTS_BY_PHASE = Gauge("tradefleet_operator_bots", "TradingBots by phase", ["phase"])
_PHASES: dict[str, str] = {}


def record_phase(uid: str, phase: str) -> None:
    """Count ``uid`` under ``phase`` in the bots-by-phase gauge."""
    old = _PHASES.get(uid)
    if old == phase:
        return
    if old is not None:
        BOTS_BY_PHASE.labels(old).dec()
    BOTS_BY_PHASE.labels(phase).inc()
    _PHASES[uid] = phase


def forget_phase(uid: str) -> None:
    old = _PHASES.pop(uid, None)
    if old is not None:
        BOTS_BY_PHASE.labels(old).dec()


def advance(current: str | None, target: Phase) -> Phase:
    """The phase after ``current`` when the evidence says ``target``.

    An unknown or missing phase is Pending. A transition the table does not allow keeps the
    current phase (e.g. a stale "halted" answer from a runtime that is already stopped)."""
    try:
        phase = Phase(current) if current else Phase.PENDING
    except ValueError:
        phase = Phase.PENDING
    return target if target in TRANSITIONS[phase] or target == phase else phase


# --- conditions ---------------------------------------------------------------------------------


def now_iso() -> str:
    return (
        datetime.datetime.now(datetime.UTC)
        .replace(microsecond=0)
        .isoformat()
        .replace("+00:00", "Z")
    )


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """``conditions`` with ``type_`` set (standard fields); ``lastTransitionTime`` changes only
    when the condition's status does. Other conditions keep their order."""
    value = "Unknown" if status is None else ("True" if status else "False")
    result: list[dict[str, Any]] = []
    found = False
    for existing in conditions or ():
        if existing.get("type") != type_:
            result.append(dict(existing))
            continue
        found = True
        same = existing.get("status") == value
        result.append(
            {
                "type": type_,
                "status": value,
                "reason": reason,
                "message": message,
                "lastTransitionTime": existing.get("lastTransitionTime", now) if same else now,
                "observedGeneration": generation,
            }
        )
    if not found:
        result.append(
            {
                "type": type_,
                "status": value,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now,
                "observedGeneration": generation,
            }
        )
    return result


def condition_of(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == type_:
            found: Mapping[str, Any] = cond
            return found
    return None


# --- snapshot → status --------------------------------------------------------------------------


def bar_time(ts: int) -> str | None:
    if ts <= 0:
        return None
    moment = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def status_from_snapshot(snapshot: pb.StatusSnapshot) -> dict[str, Any]:
    """The runtime-reported fields of a TradingBot's status (money rounded to cents' cents)."""
    return {
        "equity": round(snapshot.equity, 4),
        "balance": round(snapshot.balance, 4),
        "currency": snapshot.currency,
        "pnlToday": round(snapshot.pnl_today, 4),
        "pnlTotal": round(snapshot.pnl_total, 4),
        "drawdownPct": round(snapshot.drawdown_pct, 4),
        "openPositions": snapshot.open_positions,
        "openOrders": snapshot.open_orders,
        "lastBarTime": bar_time(snapshot.last_bar_ts),
        "halted": snapshot.halted,
        "haltReason": snapshot.halt_reason,
        "paused": snapshot.paused,
        "pauseReason": snapshot.pause_reason,
        "riskLocks": [
            {"plugin": risk.name, "reason": risk.reason} for risk in snapshot.risk if risk.locked
        ],
        "runtimeConfigHash": snapshot.config_hash,
    }


def reachable_status(
    status: Mapping[str, Any],
    snapshot: pb.StatusSnapshot,
    generation: int | None,
    now: str,
) -> dict[str, Any]:
    """The whole new status after a ``GetStatus`` answer (compare with :func:`status_changes`)."""
    new: dict[str, Any] = dict(status)
    new.update(status_from_snapshot(snapshot))
    phase = advance(status.get("phase"), RUNTIME_PHASES.get(snapshot.phase, Phase.PENDING))
    new["phase"] = phase.value
    conditions = status.get("conditions")
    ready = phase in (Phase.RUNNING, Phase.PAUSED, Phase.HALTED)
    reason = "Runtime" + phase.value if phase is not Phase.PENDING else "RuntimeStarting"
    conditions = set_condition(
        conditions, "Ready", ready, reason, f"the runtime reports {phase.value}", generation, now
    )
    conditions = set_condition(
        conditions,
        "BrokerConnected",
        snapshot.broker_connected,
        "Connected" if snapshot.broker_connected else "Disconnected",
        "the broker connection is up" if snapshot.broker_connected else "no broker connection",
        generation,
        now,
    )
    locks = [risk for risk in snapshot.risk if risk.locked]
    conditions = set_condition(
        conditions,
        "RiskLocked",
        bool(locks),
        "RiskLockSet" if locks else "NoRiskLock",
        "; ".join(f"{risk.name}: {risk.reason}" for risk in locks) or "no risk plugin is locked",
        generation,
        now,
    )
    new["conditions"] = conditions
    return new


def unreachable_status(
    status: Mapping[str, Any], error: str, generation: int | None, now: str
) -> dict[str, Any]:
    """The new status when the runtime did not answer: the phase stays (Pending if none)."""
    new: dict[str, Any] = dict(status)
    new["phase"] = advance(status.get("phase"), Phase(status.get("phase") or "Pending")).value
    new["conditions"] = set_condition(
        status.get("conditions"),
        "Ready",
        False,
        "RuntimeUnreachable",
        f"the runtime did not answer: {error}"[:500],
        generation,
        now,
    )
    return new


def status_changes(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level status keys whose value differs (the merge patch to send; may be empty)."""
    return {key: value for key, value in new.items() if current.get(key) != value}


# --- steering the runtime -----------------------------------------------------------------------


class Control(StrEnum):
    """What the spec asks of the runtime."""

    RUNNING = "Running"
    PAUSED = "Paused"
    HALTED = "Halted"


@dataclass(frozen=True, slots=True)
class Call:
    method: str  # Pause, Resume, EmergencyStop
    reason: str
    flatten: bool = False


def desired_control(spec: Mapping[str, Any]) -> Control:
    if spec.get("emergencyStop"):
        return Control.HALTED
    if spec.get("paused"):
        return Control.PAUSED
    return Control.RUNNING


def observed_control(snapshot: pb.StatusSnapshot) -> Control | None:
    """The runtime's state as a Control; None while it cannot be steered (starting/stopped)."""
    if snapshot.halted or snapshot.phase == pb.PHASE_HALTED:
        return Control.HALTED
    if snapshot.paused or snapshot.phase == pb.PHASE_PAUSED:
        return Control.PAUSED
    if snapshot.phase == pb.PHASE_RUNNING:
        return Control.RUNNING
    return None


def plan_control(
    spec: Mapping[str, Any], applied: str | None, observed: Control | None, *, known: bool
) -> list[Call]:
    """The calls that bring the runtime to the spec.

    ``applied`` is what the operator last brought about (``status.control.applied``);
    ``known`` says whether ``observed`` (the runtime's state) was just read. Without it (in a
    change handler) the plan follows the spec's change alone. With it (the timer) a halt or a
    pause the spec asks for is enforced even after the runtime restarted; but a pause or halt
    that someone made by hand while the spec says "run" is left alone, unless the spec's own
    change to "run" has not reached the runtime yet.
    """
    desired = desired_control(spec)
    stop = spec.get("emergencyStop") or {}
    halt = Call("EmergencyStop", str(stop.get("reason", "")), bool(stop.get("flatten", False)))
    pause = Call("Pause", "spec.paused is true")
    resume = Call("Resume", f"spec asks for {desired.value.lower()}")
    if not known:
        if applied == desired.value or (applied is None and desired is Control.RUNNING):
            return []
        if desired is Control.HALTED:
            return [halt]
        if desired is Control.PAUSED:
            return [resume, pause] if applied == Control.HALTED.value else [pause]
        return [resume]
    if observed is None:  # starting, stopping, stopped or failed: nothing to steer yet
        return []
    if desired is Control.HALTED:
        return [] if observed is Control.HALTED else [halt]
    if desired is Control.PAUSED:
        if observed is Control.PAUSED:
            return []
        if observed is Control.RUNNING:
            return [pause]
        return [resume, pause] if applied != Control.PAUSED.value else []
    if observed is Control.RUNNING or applied == Control.RUNNING.value:
        return []
    return [resume]


def parse_reset_request(value: str) -> tuple[str, str] | None:
    """``"<plugin>: <reason>"`` → ``(plugin, reason)``; None when it does not say both."""
    plugin, sep, reason = value.partition(":")
    if not sep or not plugin.strip() or not reason.strip():
        return None
    return plugin.strip(), reason.strip()


# --- I/O: the runtime's gRPC API ----------------------------------------------------------------


class RuntimeCallError(Exception):
    """A call to a runtime failed; ``unreachable`` when it did not answer at all."""

    def __init__(self, code: str, message: str, *, unreachable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.unreachable = unreachable


_UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class RuntimeClients:
    """One grpc.aio channel per runtime address, shared by every call to that runtime."""

    def __init__(self, timeout: float = 3.0) -> None:
        self.timeout = timeout
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.calls = 0

    def channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = grpc.aio.insecure_channel(
                address, options=[("grpc.initial_reconnect_backoff_ms", 200)]
            )
            self._channels[address] = channel
        return channel

    async def drop(self, address: str) -> None:
        channel = self._channels.pop(address, None)
        if channel is not None:
            await channel.close()

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(channel.close() for channel in channels), return_exceptions=True)

    async def call(
        self, address: str, token: str, method: str, request: Any, timeout: float | None = None
    ) -> pb.StatusSnapshot:
        # The generated stub is typed for sync channels; on an aio channel each call is awaitable.
        stub: Any = pb_grpc.RuntimeServiceStub(self.channel(address))  # type: ignore[arg-type]
        self.calls += 1
        try:
            snapshot: pb.StatusSnapshot = await getattr(stub, method)(
                request,
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=timeout or self.timeout,
            )
        except grpc.aio.AioRpcError as error:
            code = error.code()
            raise RuntimeCallError(
                code.name, error.details() or "", unreachable=code in _UNREACHABLE
            ) from error
        return snapshot

    async def get_status(self, address: str, token: str) -> pb.StatusSnapshot:
        return await self.call(address, token, "GetStatus", pb.GetStatusRequest())

    async def invoke(self, address: str, token: str, call: Call) -> pb.StatusSnapshot:
        request: Any
        if call.method == "Pause":
            request = pb.PauseRequest(reason=call.reason, actor=ACTOR)
        elif call.method == "Resume":
            request = pb.ResumeRequest(reason=call.reason, actor=ACTOR)
        elif call.method == "EmergencyStop":
            request = pb.EmergencyStopRequest(reason=call.reason, flatten=call.flatten, actor=ACTOR)
        else:
            raise ValueError(f"unknown control call {call.method}")
        # A control call may queue behind a fleet's worth of others: a longer deadline than a
        # status read, rather than a halt retried a whole timer interval later.
        return await self.call(address, token, call.method, request, max(self.timeout, 10.0))

    async def reset_risk_lock(
        self, address: str, token: str, plugin: str, reason: str
    ) -> pb.StatusSnapshot:
        request = pb.ResetRiskLockRequest(plugin=plugin, reason=reason, actor=ACTOR)
        return await self.call(address, token, "ResetRiskLock", request)


@dataclass
class OperatorContext:
    """What every handler of one operator run shares (kept in kopf's ``memo``)."""

    settings: OperatorSettings
    kube: KubeApi
    runtime: RuntimeClients
    stop_timeout: float = 20.0
    #: Control tokens by (namespace, bot name), filled from the bots' token Secrets.
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def forget(self, namespace: str, name: str) -> None:
        self.tokens.pop((namespace, name), None)


def context(memo: Any) -> OperatorContext:
    ctx = memo.get("tradefleet")
    if not isinstance(ctx, OperatorContext):
        raise kopf.TemporaryError("the operator is still starting up", delay=1)
    return ctx


def runtime_address_of(body: Mapping[str, Any], settings: OperatorSettings) -> str:
    """The annotation's address if set, else the bot's headless Service and gRPC port."""
    return objects.runtime_address(body, settings)


async def control_token(ctx: OperatorContext, namespace: str, name: str) -> str | None:
    cached = ctx.tokens.get((namespace, name))
    if cached:
        return cached
    secret = await ctx.kube.get(api_path("v1", "secrets", namespace, token_secret_name(name)))
    tokens = objects.tokens_from_secret(secret)
    if tokens is None:
        return None
    ctx.tokens[(namespace, name)] = tokens.control
    return tokens.control


def event(body: Mapping[str, Any], *, reason: str, message: str, warning: bool = False) -> None:
    """A Kubernetes Event on the TradingBot (kopf posts it in the background)."""
    # kopf.event, not kopf.info: the operator posts its log lines only from WARNING up (one
    # "handler succeeded" Event per bot and pass would be noise), but every decision here.
    kind = "Warning" if warning else "Normal"
    kopf.event(cast(kopf.Body, body), type=kind, reason=reason, message=message)


_EVENTS = {
    Control.HALTED: ("Halted", "emergency stop: {reason}{flatten}"),
    Control.PAUSED: ("Paused", "paused (spec.paused is true)"),
    Control.RUNNING: ("Resumed", "resumed"),
}


async def steer(
    ctx: OperatorContext,
    body: Mapping[str, Any],
    status: Mapping[str, Any],
    *,
    observed: Control | None = None,
    known: bool = False,
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
) -> tuple[dict[str, Any], pb.StatusSnapshot | None]:
    """Bring the runtime to the spec (pause, halt, resume) and run a requested risk-lock reset.

    Returns the status keys to change (``control``, ``riskLockReset``) and the runtime's last
    answer. A runtime that does not answer changes nothing: the status timer tries again.
    Events are posted for each decision; "unreachable" only from change handlers (``known`` is
    false), so that the timer does not repeat it every tick.
    """
    meta = body["metadata"]
    spec = body.get("spec") or {}
    namespace, name = meta.get("namespace", "default"), meta["name"]
    desired = desired_control(spec)
    applied = (status.get("control") or {}).get("applied")
    calls = plan_control(spec, applied, observed, known=known)
    annotation = (meta.get("annotations") or {}).get(RESET_RISK_LOCK_ANNOTATION, "")
    reset_done = (status.get("riskLockReset") or {}).get("request")
    wants_reset = bool(annotation) and annotation != reset_done
    changes: dict[str, Any] = {}
    if not calls and applied != desired.value and not (known and observed is None):
        changes["control"] = {"applied": desired.value}
    if not calls and not wants_reset:
        return changes, None

    address = runtime_address_of(body, ctx.settings)
    snapshot: pb.StatusSnapshot | None = None
    try:
        token = await control_token(ctx, namespace, name)
        if token is None:
            raise RuntimeCallError(
                "NoToken", f"no Secret {token_secret_name(name)}", unreachable=True
            )
        for call in calls:
            snapshot = await ctx.runtime.invoke(address, token, call)
        if calls:
            changes["control"] = {"applied": desired.value}
            reason, template = _EVENTS[desired]
            flatten = " (flattening every position)" if calls[-1].flatten else ""
            message = template.format(reason=calls[-1].reason, flatten=flatten)
            event(body, reason=reason, message=message)
        if wants_reset:
            parsed = parse_reset_request(annotation)
            if parsed is None:
                event(
                    body,
                    warning=True,
                    reason="RiskLockResetRefused",
                    message=f"{RESET_RISK_LOCK_ANNOTATION} must read '<plugin>: <reason>'",
                )
                changes["riskLockReset"] = {"request": annotation, "result": "malformed"}
            else:
                try:
                    snapshot = await ctx.runtime.reset_risk_lock(address, token, *parsed)
                except RuntimeCallError as error:
                    if error.unreachable:
                        raise
                    event(body, warning=True, reason="RiskLockResetRefused", message=str(error))
                    changes["riskLockReset"] = {"request": annotation, "result": str(error)}
                else:
                    event(
                        body,
                        reason="RiskLockReset",
                        message=f"risk lock of {parsed[0]} reset: {parsed[1]}",
                    )
                    changes["riskLockReset"] = {"request": annotation, "result": "done"}
    except RuntimeCallError as error:
        if error.code == "UNAUTHENTICATED":
            ctx.forget(namespace, name)  # a replaced Secret: read it again next time
        if not known:
            event(
                body,
                warning=True,
                reason="RuntimeUnreachable" if error.unreachable else "RuntimeRefused",
                message=f"{desired.value.lower()} not applied yet ({error}); retrying",
            )
        if logger is not None:
            logger.info(f"runtime at {address}: {error}")
        return changes, snapshot
    return changes, snapshot


# --- the status timer ---------------------------------------------------------------------------


def first_tick(uid: str, **_: Any) -> float:
    """Spread the first status reads over one interval (a fleet applied at once must not tick
    in step), and wait at least a second for the first reconcile to land."""
    spread = (zlib.crc32(uid.encode()) % 1000) / 1000
    return 1.0 + spread * STATUS_INTERVAL


@kopf.timer(GROUP, VERSION, PLURAL, interval=STATUS_INTERVAL, initial_delay=first_tick)
async def poll_status(
    body: kopf.Body,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Read the runtime's status into the TradingBot; steer it if an earlier attempt failed."""
    ctx = context(memo)
    current: Mapping[str, Any] = dict(status)
    generation = meta.get("generation")
    if current.get("observedGeneration") != generation:
        return  # the change handler is still at work on this generation; it writes the status
    address = runtime_address_of(body, ctx.settings)
    namespace, name = meta.get("namespace", "default"), meta["name"]
    try:
        token = await control_token(ctx, namespace, name)
        if token is None:
            raise RuntimeCallError(
                "NoToken", f"no Secret {token_secret_name(name)}", unreachable=True
            )
        snapshot = await ctx.runtime.get_status(address, token)
    except (RuntimeCallError, Exception) as error:  # never crash the timer
        if isinstance(error, RuntimeCallError) and error.code == "UNAUTHENTICATED":
            ctx.forget(namespace, name)
        # The message names the code only: a detail that varies would cost a write per tick.
        code = error.code if isinstance(error, RuntimeCallError) else type(error).__name__
        new = unreachable_status(current, f"{address}: {code}", generation, now_iso())
        was = condition_of(current, "Ready") or {}
        if was.get("reason") != "RuntimeUnreachable":
            event(
                body,
                warning=True,
                reason="RuntimeUnreachable",
                message=f"cannot reach the runtime at {address}: {error}"[:500],
            )
        changes = status_changes(current, new)
    else:
        steered, after = await steer(
            ctx, body, current, observed=observed_control(snapshot), known=True, logger=logger
        )
        new = reachable_status(current, after or snapshot, generation, now_iso())
        new.update(steered)
        changes = status_changes(current, new)
    if changes:
        patch.status.update(changes)
    record_phase(str(meta.get("uid")), str(new.get("phase") or Phase.PENDING.value))
