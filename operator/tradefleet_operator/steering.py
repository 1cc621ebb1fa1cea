"""Bringing a runtime to what its spec asks, and acting on a risk-lock reset request.

:func:`steer` runs the calls :func:`~.control.plan_control` plans (control token), posts one
Event per decision and says what to record in ``.status`` (``control``, ``riskLockReset``).
Change handlers call it without knowing the runtime's state; the status timer calls it with the
state it just read, which re-enforces a halt or a pause that did not get through.

Control moves only forward by generation (issue 19, item 8): ``status.control`` records the
spec generation it came from; a view older than that steers nothing, only a change handler
resumes (the timer never does), and a change handler re-reads the TradingBot before a
``Resume`` and sends it only while that generation is still the newest; otherwise the handler
is retried with the newer view (:func:`resume_gate`), never just skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from tradefleet_operator.bot_api import LiveSpec
from tradefleet_operator.context import OperatorContext, event
from tradefleet_operator.control import (
    Call,
    Control,
    desired_control,
    parse_reset_request,
    plan_control,
)
from tradefleet_operator.k8s_api import KubeError, api_path
from tradefleet_operator.names import API_VERSION, PLURAL, api_token_secret_name
from tradefleet_operator.runtime_client import RuntimeCallError
from tradefleet_operator.settings import RESET_RISK_LOCK_ANNOTATION, runtime_address
from tradefleet_operator.snapshot import RuntimeSnapshot
from tradefleet_operator.status_model import BotStatus, ControlStatus, RiskLockReset

_EVENTS = {
    Control.HALTED: ("Halted", "emergency stop: {reason}{flatten}"),
    Control.PAUSED: ("Paused", "paused (spec.paused is true)"),
    Control.RUNNING: ("Resumed", "resumed"),
}


@dataclass(frozen=True, slots=True)
class Steered:
    """What :func:`steer` did: status fields to record and the runtime's last answer."""

    control: ControlStatus | None = None
    reset: RiskLockReset | None = None
    snapshot: RuntimeSnapshot | None = None
    #: A change handler's call did not get through: the handler must be retried (the timer
    #: never resumes, so a failed Resume is retried only there).
    pending: bool = False

    def apply(self, status: BotStatus) -> BotStatus:
        update: dict[str, Any] = {}
        if self.control is not None:
            update["control"] = self.control
        if self.reset is not None:
            update["risk_lock_reset"] = self.reset
        return status.model_copy(update=update) if update else status


async def steer(
    ctx: OperatorContext,
    body: Mapping[str, Any],
    live: LiveSpec,
    status: BotStatus,
    *,
    observed: Control | None = None,
    known: bool = False,
    resets: bool = True,
    stop_removed: bool = False,
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
) -> Steered:
    """Bring the runtime to the spec (pause, halt, resume) and run a requested risk-lock reset.

    A runtime that does not answer changes nothing: the status timer tries again. Events are
    posted for each decision; "unreachable" only from change handlers (``known`` is false), so
    that the timer does not repeat it every tick. ``resets`` false leaves a requested risk-lock
    reset for later (the timer while a change is at work steers only towards safety, and a
    reset lets a locked bot trade again). ``stop_removed``: this change removed the spec's
    ``emergencyStop`` (a change handler's): planned as a halt the operator applied, so its
    Resume is sent even when no record of that halt landed.
    """
    meta = body["metadata"]
    namespace, name = meta.get("namespace", "default"), meta["name"]
    generation = meta.get("generation")
    desired = desired_control(live)
    recorded = status.control
    uid = str(meta.get("uid") or "")
    # A halt or pause the status timer applied while a change was at work, whose record may
    # not have landed: planned from as if recorded (else removing the stop resumes nothing).
    by_timer = None if known else ctx.timer_controls.get(uid)
    if by_timer is not None and not _older(by_timer.generation, recorded):
        recorded = by_timer
    else:
        by_timer = None
    if not known and _older(generation, recorded):
        return Steered()  # a view older than the spec that decided the last control
    applied = recorded.applied if recorded else None
    # Recorded for this very generation: this change's Resume went already (a retry of its
    # pass, which kopf gives the same diff, must not send it again over a control given since).
    done_here = recorded is not None and recorded.generation == generation
    if stop_removed and not known and not done_here and live.emergency_stop is None:
        # The halt's record may be missing (the status timer's, refused or lost with an
        # operator restart): the Resume goes all the same, aimed at the spec's halt alone.
        applied = Control.HALTED
    flattened = bool(recorded and recorded.flattened)
    calls = plan_control(live, applied, observed, known=known, flattened=flattened)
    if any(call.method == "Resume" for call in calls):
        gate = resume_gate(generation, await _stored_generation(ctx, namespace, name))
        if gate is not ResumeGate.SEND:
            # Nothing is sent and nothing recorded: RETRY makes kopf call the handler again
            # with its newest view (see :func:`resume_gate`), GONE leaves it to the finalizer.
            return Steered(pending=gate is ResumeGate.RETRY)
    annotation = (meta.get("annotations") or {}).get(RESET_RISK_LOCK_ANNOTATION, "")
    reset_done = status.risk_lock_reset.request if status.risk_lock_reset else None
    wants_reset = resets and bool(annotation) and annotation != reset_done
    control: ControlStatus | None = None
    reset: RiskLockReset | None = None
    if not calls and applied != desired and (not known or observed is desired):
        control = ControlStatus(applied=desired, generation=generation)
    if by_timer is not None and not calls:
        # Taken in by this change handler, with nothing to send: recorded now, and no longer
        # the timer's to remember (with calls: once they went through, below).
        control = control or by_timer
        ctx.timer_controls.pop(uid, None)
    if not calls and not wants_reset:
        return Steered(control)

    address = runtime_address(meta, ctx.settings)
    snapshot: RuntimeSnapshot | None = None
    try:
        tokens = await ctx.bot_tokens(namespace, name)
        if tokens is None:
            raise RuntimeCallError(
                "NoToken", f"no Secret {api_token_secret_name(name)}", unreachable=True
            )
        for call in calls:
            snapshot = await ctx.runtime.invoke(address, tokens.control, call)
        if calls:
            control = ControlStatus(applied=desired, generation=generation)
            if desired is Control.HALTED:
                # The last call of a halt is the EmergencyStop: did it flatten? (Set only
                # here: an unset field stays out of the status, as it always was.)
                control = control.model_copy(update={"flattened": calls[-1].flatten})
            reason, template = _EVENTS[desired]
            flatten = " (flattening every position)" if calls[-1].flatten else ""
            message = template.format(reason=calls[-1].reason, flatten=flatten)
            if any(call.halt_only for call in calls):
                message = f"emergency stop lifted, the pause kept; {message}"
            if calls[-1].pause_only:
                message = "pause lifted (spec.paused is false)"
                if snapshot is not None and snapshot.halted:
                    # Not the operator's halt (a person's, or a Degraded start): it stays.
                    message += f"; the runtime stays halted: {snapshot.halt_reason}"
            elif snapshot is not None and _halt_kept(calls, snapshot):
                # The runtime keeps each halt's holder: the spec's stop is lifted, a halt a
                # person gave it directly (after a fleet stop, say) or a Degraded stop holds.
                kept = "the runtime stays halted by a halt the spec did not give: "
                kept += snapshot.halt_reason
                lifted = desired is Control.RUNNING
                message = f"emergency stop lifted; {kept}" if lifted else f"{message}; {kept}"
                reason = "StillHalted" if lifted else reason
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
                reset = RiskLockReset(request=annotation, result="malformed")
            else:
                try:
                    snapshot = await ctx.runtime.reset_risk_lock(address, tokens.control, *parsed)
                except RuntimeCallError as error:
                    if error.unreachable:
                        raise
                    event(body, warning=True, reason="RiskLockResetRefused", message=str(error))
                    reset = RiskLockReset(request=annotation, result=str(error))
                else:
                    event(
                        body,
                        reason="RiskLockReset",
                        message=f"risk lock of {parsed[0]} reset: {parsed[1]}",
                    )
                    reset = RiskLockReset(request=annotation, result="done")
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
        # A failed resume or halt is retried by the change handler (soon, with its view); a
        # pause is also re-enforced by the timer, so it needs no retry of its own.
        retry = not known and any(call.method in ("Resume", "EmergencyStop") for call in calls)
        return Steered(control, reset, snapshot, pending=retry)
    if by_timer is not None:
        ctx.timer_controls.pop(uid, None)  # the calls planned from it went through
    return Steered(control, reset, snapshot)


def _halt_kept(calls: list[Call], snapshot: RuntimeSnapshot) -> bool:
    """Whether a Resume that lifts the spec's halt (full, or ``halt_only``) left the runtime
    halted: its answer (the last call's, or the Pause after a ``halt_only`` one) says so."""
    lifts = any(call.method == "Resume" and not call.pause_only for call in calls)
    return lifts and snapshot.halted


def _older(generation: Any, recorded: ControlStatus | None) -> bool:
    """True when ``generation`` is older than the one the recorded control came from."""
    if recorded is None or recorded.generation is None or not isinstance(generation, int):
        return False
    return generation < recorded.generation


class ResumeGate(Enum):
    """What a change handler does with a planned ``Resume`` (:func:`resume_gate`)."""

    SEND = "send"  # the view is the newest spec: resume
    RETRY = "retry"  # send nothing now; the handler runs again with a newer view
    GONE = "gone"  # the TradingBot is deleted: the finalizer stops the runtime


class Unknown(Enum):
    """What a re-read of the TradingBot found instead of a generation."""

    UNREADABLE = "unreadable"  # an API error
    DELETED = "deleted"


#: The stored TradingBot's ``metadata.generation`` as a re-read found it (or why not).
Stored = int | None | Unknown


def resume_gate(view: Any, stored: Stored) -> ResumeGate:
    """Whether a change handler whose view of the spec is generation ``view`` may resume.

    A Resume undoes a halt, so it goes out only from the newest spec (``view`` is what is
    stored): a newer one may set a stop again (a fleet stop patches the spec right after
    halting the runtime directly), and resuming from this view would undo it.

    A view that is not the newest must not just drop its Resume either: it must be retried.
    kopf records the handled spec (its diff base) when the handler succeeds and calls the
    handler again only for a spec that differs from it. After "stop removed" (this view),
    "stop set", "stop removed" the newest spec equals this view: a handler that succeeded
    without resuming was never called again, and the bot stayed halted under a spec without a
    stop (7 quick toggles of ``spec.emergencyStop``). Failing instead (RETRY) keeps the old
    diff base, so kopf calls the handler again with the newest spec, which decides.
    """
    if stored is Unknown.UNREADABLE:
        return ResumeGate.RETRY  # cannot tell: retry rather than resume blind
    if stored is Unknown.DELETED:
        return ResumeGate.GONE
    return ResumeGate.SEND if stored == view else ResumeGate.RETRY


async def _stored_generation(ctx: OperatorContext, namespace: str, name: str) -> Stored:
    """The stored TradingBot's ``metadata.generation`` now."""
    try:
        fresh = await ctx.kube.get(api_path(API_VERSION, PLURAL, namespace, name))
    except KubeError:
        return Unknown.UNREADABLE
    if fresh is None:
        return Unknown.DELETED
    generation = fresh.get("metadata", {}).get("generation")
    return generation if isinstance(generation, int) else None
