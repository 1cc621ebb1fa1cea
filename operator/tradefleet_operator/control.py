"""The gRPC calls that bring a runtime to what its spec asks (pure).

The spec's live fields (``paused``, ``emergencyStop``; :class:`~.bot_api.LiveSpec`) say what the
runtime should be doing; :func:`plan_control` turns that, what the operator last applied and
(in the status timer) what the runtime reports, into Pause / Resume / EmergencyStop calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradefleet_operator.bot_api import LiveSpec
from tradefleet_operator.names import Control, Phase
from tradefleet_operator.snapshot import RuntimeSnapshot

__all__ = [
    "Call",
    "Control",
    "desired_control",
    "observed_control",
    "parse_reset_request",
    "plan_control",
]


@dataclass(frozen=True, slots=True)
class Call:
    method: str  # Pause, Resume, EmergencyStop
    reason: str
    flatten: bool = False
    #: A Resume that undoes a pause only: a halt (a person's, a risk plugin's, a Degraded
    #: reconciliation stop) stays. Only the removal of the spec's own emergency stop sends the
    #: full Resume.
    pause_only: bool = False
    #: A Resume that lifts the halt only: the pause stays, so the runtime takes no entry between
    #: the halt's end and the pause. Sent when the spec's emergency stop goes while the spec
    #: still pauses.
    halt_only: bool = False


def desired_control(live: LiveSpec) -> Control:
    if live.emergency_stop is not None:
        return Control.HALTED
    if live.paused:
        return Control.PAUSED
    return Control.RUNNING


def observed_control(snapshot: RuntimeSnapshot) -> Control | None:
    """The runtime's state as a Control; None while it cannot be steered (starting/stopped)."""
    if snapshot.halted or snapshot.phase in (Phase.HALTED, Phase.DEGRADED):
        return Control.HALTED
    if snapshot.paused or snapshot.phase is Phase.PAUSED:
        return Control.PAUSED
    if snapshot.phase is Phase.RUNNING:
        return Control.RUNNING
    return None


def plan_control(
    live: LiveSpec,
    applied: str | None,
    observed: Control | None,
    *,
    known: bool,
    flattened: bool = False,
) -> list[Call]:
    """The calls that bring the runtime to the spec.

    ``applied`` is what the operator last brought about (``status.control.applied``);
    ``known`` says whether ``observed`` (the runtime's state) was just read; ``flattened``
    whether the halt applied included a flatten (``status.control.flattened``): a spec that
    adds ``flatten`` to a halt already applied gets the halt sent again, with it.

    Without it (a change handler, i.e. a spec generation newer than the last one acted on) the
    plan follows the spec's change alone: this is the only path that ever sends ``Resume``.
    What a Resume may undo is what the operator applied: a pause it applied (``applied`` is
    Paused, the spec's ``paused`` back to false) is undone with ``pause_only`` — a halt the
    runtime holds from elsewhere (a person's ``tradefleet stop``, a Degraded start) stays; only
    the removal of the spec's ``emergencyStop`` (``applied`` is Halted) sends the full Resume,
    or, while the spec still pauses, ``Pause`` then a Resume with ``halt_only`` (the runtime
    lifts the halt and keeps the pause): a full Resume clears the pause too, and the bot would
    take entries until a Pause after it got through. The Pause goes first because the runtime
    may not be paused yet (``paused`` set in the same change); one more Pause follows for a
    runtime older than ``halt_only``, which ignores the field and clears the pause with the halt.

    With it (the status timer, whose view of the spec may be a generation old) control only
    moves towards safety: a halt the spec asks for is enforced, and a pause on a running
    runtime, even after the runtime restarted; but the timer never resumes anything. A halt
    or pause the runtime reports while the timer's spec says "run" may come from a newer spec
    the timer has not seen (a fleet stop's direct call), from a risk plugin or from a person:
    undoing it is for a spec change, never for a timer tick (issue 19, item 8).
    """
    desired = desired_control(live)
    stop = live.emergency_stop
    halt = Call("EmergencyStop", stop.reason if stop else "", stop.flatten if stop else False)
    pause = Call("Pause", "spec.paused is true")
    resume = Call("Resume", f"spec asks for {desired.value.lower()}")
    unpause = Call("Resume", "spec.paused is false", pause_only=True)
    lift = Call("Resume", "spec.emergencyStop removed, spec.paused is true", halt_only=True)
    if not known:
        if applied == desired.value or (applied is None and desired is Control.RUNNING):
            flatten_asked = stop is not None and stop.flatten
            return [halt] if desired is Control.HALTED and flatten_asked and not flattened else []
        if desired is Control.HALTED:
            return [halt]
        if desired is Control.PAUSED:
            return [pause, lift, pause] if applied == Control.HALTED.value else [pause]
        return [resume] if applied == Control.HALTED.value else [unpause]
    if observed is None:  # starting, stopping, stopped or failed: nothing to steer yet
        return []
    if desired is Control.HALTED:
        return [] if observed is Control.HALTED else [halt]
    if desired is Control.PAUSED and observed is Control.RUNNING:
        return [pause]
    return []


def parse_reset_request(value: str) -> tuple[str, str] | None:
    """``"<plugin>: <reason>"`` → ``(plugin, reason)``; None when it does not say both."""
    plugin, sep, reason = value.partition(":")
    if not sep or not plugin.strip() or not reason.strip():
        return None
    return plugin.strip(), reason.strip()
