"""A TradingBot's ``.status`` from what its runtime reports (pure: no grpc, no kopf, no clock).

- :func:`status_from_snapshot`: a :class:`~.snapshot.RuntimeSnapshot` → the runtime-reported
  status fields;
- :func:`set_condition`: standard conditions (``lastTransitionTime`` moves only on a flip);
- :func:`advance`: the phase state machine;
- :func:`reachable_status` / :func:`unreachable_status`: the whole new status after a read;
- :func:`unheard_conditions`: the conditions that report the runtime's own view, made Unknown
  while nobody can see it;
- :func:`credentials_status` / :func:`credentials_event`: whether the credentials Secret the
  bot's pod mounts exists (the condition ``CredentialsSecretFound``, and the Event of a flip);
- ``status_model.status_changes``: the smallest merge patch (empty: no write).

Every function returns a :class:`~.status_model.BotStatus`, so each key the operator writes is
a field of the model the CRD's status schema is generated from.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

from tradefleet_operator.names import Phase
from tradefleet_operator.snapshot import RuntimeSnapshot
from tradefleet_operator.status_model import BotStatus, Condition, RiskLock, status_changes

__all__ = [
    "CREDENTIALS_FOUND",
    "RUNTIME_VIEW",
    "TRANSITIONS",
    "advance",
    "bar_time",
    "condition_of",
    "credentials_event",
    "credentials_status",
    "failed_status",
    "now_iso",
    "precise_now",
    "reachable_status",
    "reported_at",
    "runtime_failure",
    "set_condition",
    "status_changes",
    "status_from_snapshot",
    "unheard_conditions",
    "unreachable_status",
]

#: Which phase may follow which. A stopped or failed bot comes back through Pending (its pod
#: restarts) or straight to Running when the runtime answers again.
TRANSITIONS: Mapping[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset(Phase),
    Phase.RUNNING: frozenset(Phase),
    Phase.PAUSED: frozenset(Phase),
    Phase.HALTED: frozenset(Phase),
    Phase.DEGRADED: frozenset(Phase),
    Phase.STOPPED: frozenset({Phase.PENDING, Phase.RUNNING, Phase.FAILED}),
    Phase.FAILED: frozenset({Phase.PENDING, Phase.RUNNING}),
}


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
    conditions: Sequence[Condition] | None,
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
) -> list[Condition]:
    """``conditions`` with ``type_`` set (standard fields); ``lastTransitionTime`` changes only
    when the condition's status does. Other conditions keep their order."""
    value = "Unknown" if status is None else ("True" if status else "False")
    result: list[Condition] = []
    found = False
    for existing in conditions or ():
        if existing.type != type_:
            result.append(existing)
            continue
        found = True
        same = existing.status == value
        when = (existing.last_transition_time or now) if same else now
        result.append(_condition(type_, value, reason, message, when, generation))
    if not found:
        result.append(_condition(type_, value, reason, message, now, generation))
    return result


def _condition(
    type_: str, status: str, reason: str, message: str, when: str, generation: int | None
) -> Condition:
    return Condition.model_validate(
        {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": when,
            "observedGeneration": generation,
        }
    )


def condition_of(status: BotStatus, type_: str) -> Condition | None:
    for cond in status.conditions or ():
        if cond.type == type_:
            return cond
    return None


# --- snapshot → status --------------------------------------------------------------------------


def bar_time(ts: int) -> str | None:
    if ts <= 0:
        return None
    moment = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def status_from_snapshot(status: BotStatus, snapshot: RuntimeSnapshot) -> BotStatus:
    """``status`` with the runtime-reported fields replaced (money rounded to cents' cents)."""
    return status.model_copy(
        update={
            "equity": round(snapshot.equity, 4),
            "balance": round(snapshot.balance, 4),
            "currency": snapshot.currency,
            "pnl_today": round(snapshot.pnl_today, 4),
            "pnl_total": round(snapshot.pnl_total, 4),
            "drawdown_pct": round(snapshot.drawdown_pct, 4),
            "open_positions": snapshot.open_positions,
            "open_orders": snapshot.open_orders,
            "last_bar_time": bar_time(snapshot.last_bar_ts),
            "halted": snapshot.halted,
            "halt_reason": snapshot.halt_reason,
            "paused": snapshot.paused,
            "pause_reason": snapshot.pause_reason,
            "risk_locks": [
                RiskLock(plugin=risk.name, reason=risk.reason) for risk in snapshot.risk_locks
            ],
            "risk_tier": snapshot.risk_tier,
            "runtime_config_hash": snapshot.config_hash,
        }
    )


def reachable_status(
    status: BotStatus,
    snapshot: RuntimeSnapshot,
    generation: int | None,
    now: str,
    asked_at: str | None = None,
) -> BotStatus:
    """The whole new status after a runtime's answer (compare with ``status_changes``);
    ``asked_at``: when the runtime was asked (``now`` when not given), kept as
    ``runtimeReportedAt`` (:func:`reported_at`)."""
    phase = advance(status.phase, snapshot.phase)
    ready = phase in (Phase.RUNNING, Phase.PAUSED, Phase.HALTED)
    reason = "Runtime" + phase.value if phase is not Phase.PENDING else "RuntimeStarting"
    # What a starting runtime waits for (a venue down at start): on both conditions it explains.
    waiting = f": {snapshot.starting_reason}" if snapshot.starting_reason else ""
    conditions = set_condition(
        status.conditions,
        "Ready",
        ready,
        reason,
        f"the runtime reports {phase.value}{waiting}",
        generation,
        now,
    )
    connected = snapshot.broker_connected
    conditions = set_condition(
        conditions,
        "BrokerConnected",
        connected,
        "Connected" if connected else "Disconnected",
        "the broker connection is up" if connected else f"no broker connection{waiting}",
        generation,
        now,
    )
    locks = snapshot.risk_locks
    conditions = set_condition(
        conditions,
        "RiskLocked",
        bool(locks),
        "RiskLockSet" if locks else "NoRiskLock",
        "; ".join(f"{risk.name}: {risk.reason}" for risk in locks) or "no risk plugin is locked",
        generation,
        now,
    )
    if snapshot.phase is not Phase.PENDING:
        # A starting runtime has not read its journal's debts yet: its empty list would clear
        # the condition of a position still left to a person.
        conditions = _close_stuck(conditions, snapshot, generation, now)
        conditions = _close_retrying(conditions, snapshot, generation, now)
    else:
        conditions = _awaiting_start(conditions, generation, now)
    when = reported_at(status, snapshot, generation, asked_at or now)
    return status_from_snapshot(status, snapshot).model_copy(
        update={"phase": phase, "conditions": conditions, "runtime_reported_at": when}
    )


def reported_at(
    status: BotStatus, snapshot: RuntimeSnapshot, generation: int | None, asked_at: str
) -> str:
    """``runtimeReportedAt`` after an answer asked for at ``asked_at`` (the time before the
    call: a report is never claimed later than it may have been made). A changed config hash
    is a new report. While a change of a bot applied before is not applied (its generation
    not observed yet) a pod may restart on a ConfigMap written ahead, and a pass putting the
    spec back needs a report taken after that write to leave the pod unrolled
    (``objects.config_roll``): the time then moves once more after the pass that said so (the
    ``Reconciled`` condition's transition, :func:`_taken_before_the_pass`), not at every
    answer, so a fleet whose changes are all not applied (a webhook down) costs no status
    write per tick. A stale time only ever proves less: at worst the pod rolls once."""
    kept = status.runtime_reported_at
    kept_at = _a_time(kept) if kept is not None else None
    if kept is None or kept_at is None or status.runtime_config_hash != snapshot.config_hash:
        return asked_at
    pending = status.observed_generation is not None and status.observed_generation != generation
    if pending and _taken_before_the_pass(kept_at, status):
        return asked_at
    return kept


def _taken_before_the_pass(kept_at: datetime.datetime, status: BotStatus) -> bool:
    """The stored report may predate the pass whose ``Reconciled`` condition the status holds
    (written after its ConfigMap write ahead); no readable condition: nothing says it does not.
    The condition's time is cut to the second: a report in the same second, taken before the
    pass, is kept (it then proves less than a later one would, so at worst the pod rolls once),
    since a slack would cost a write at every tick of that second."""
    reconciled = condition_of(status, "Reconciled")
    moved = _a_time(reconciled.last_transition_time or "") if reconciled is not None else None
    return moved is None or kept_at < moved


def _a_time(value: str) -> datetime.datetime | None:
    """``value`` as a time with its zone; None when it is not one (one edited into something
    else is replaced)."""
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def precise_now() -> str:
    """The time now to the microsecond (RFC 3339, UTC): what a report's time is compared with
    (a ConfigMap's write ahead, a pod template's write) must not be cut to the second."""
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def _close_stuck(
    conditions: list[Condition], snapshot: RuntimeSnapshot, generation: int | None, now: str
) -> list[Condition]:
    """``CloseStuck``: positions the bot's own flatten could not close and will not retry."""
    stuck = snapshot.closes_stuck
    held = "; ".join(
        f"{close.position:.10g} {close.symbol} (refused: {close.code or 'no reason code'})"
        for close in stuck
    )
    return set_condition(
        conditions,
        "CloseStuck",
        bool(stuck),
        "CloseRefused" if stuck else "NoCloseStuck",
        f"{held}: a person must close it (tradefleet stop ADDRESS --flatten, or at the venue)"
        if stuck
        else "no close is stuck",
        generation,
        now,
    )


def _close_retrying(
    conditions: list[Condition], snapshot: RuntimeSnapshot, generation: int | None, now: str
) -> list[Condition]:
    """``CloseRetrying``: positions whose flatten close the venue keeps refusing though the
    bot keeps sending it (a later try may pass)."""
    failing = snapshot.closes_retrying
    held = "; ".join(
        f"{close.position:.10g} {close.symbol} (refused {close.refusals} times in a row, last: "
        f"{close.code or 'no reason code'})"
        for close in failing
    )
    return set_condition(
        conditions,
        "CloseRetrying",
        bool(failing),
        "CloseRefusedRepeatedly" if failing else "NoCloseRetrying",
        f"{held}: sent again at each bar; a person may close it (tradefleet stop ADDRESS "
        "--flatten, or at the venue)"
        if failing
        else "no close is being refused",
        generation,
        now,
    )


# --- a runtime nobody hears ---------------------------------------------------------------------

#: The conditions that say what the runtime reports of itself (its ``GetStatus``): they hold only
#: while it answers. ``Ready`` is the operator's own verdict; ``Reconciled`` and ``AccountShared``
#: come from the cluster, which the operator still sees.
RUNTIME_VIEW: tuple[str, ...] = ("BrokerConnected", "RiskLocked", "CloseStuck", "CloseRetrying")

#: The reason of a runtime-view condition while the runtime does not answer (or has failed).
UNHEARD = "RuntimeUnreachable"
#: ... and once the runtime answers again but is still starting (it has not said yet).
STARTING = "RuntimeStarting"

# Joins what the operator knows now to what the runtime said when last heard, in the message.
_LAST_HEARD = "; when last heard: "
# The part of a condition's message kept as "when last heard" (CloseStuck lists positions).
_KEPT_CHARS = 1000


def _last_heard(condition: Condition) -> str:
    """What ``condition`` said when the runtime was last heard: its own words, or the part kept
    when it was already made Unknown (never nested)."""
    if condition.status == "Unknown" and condition.reason in (UNHEARD, STARTING):
        _, sep, said = condition.message.partition(_LAST_HEARD)
        if sep:
            return said
    said = f"{condition.status} ({condition.reason}): {condition.message}"
    return said[:_KEPT_CHARS]


def unheard_conditions(
    conditions: Sequence[Condition] | None, generation: int | None, now: str
) -> list[Condition]:
    """``conditions`` with each :data:`RUNTIME_VIEW` condition Unknown, reason ``UNHEARD``: a pod
    that is gone (evicted, OOM-killed, its node down) has no broker connection anyone can see,
    and a condition must not claim one. The message says since when there has been no answer and
    keeps what the condition said then (a stuck close a person must still handle).

    One already made Unknown stays as it is (its time and message are the first read without an
    answer), so later reads write nothing. Conditions never reported are not added."""
    result: list[Condition] = []
    for condition in conditions or ():
        if condition.type not in RUNTIME_VIEW:
            result.append(condition)
        elif condition.status == "Unknown" and condition.reason == UNHEARD:
            result.append(condition.model_copy(update={"observed_generation": generation}))
        else:
            message = f"no answer from the runtime since {now}{_LAST_HEARD}"
            message += _last_heard(condition)
            when = condition.last_transition_time if condition.status == "Unknown" else None
            result.append(
                _condition(condition.type, "Unknown", UNHEARD, message, when or now, generation)
            )
    return result


def _awaiting_start(
    conditions: list[Condition], generation: int | None, now: str
) -> list[Condition]:
    """Runtime-view conditions made Unknown while the runtime was not heard, once it answers again
    but is starting: those it sets only after its start (``CloseStuck``, ``CloseRetrying``) say
    so, instead of an outage that is over."""
    result: list[Condition] = []
    for condition in conditions:
        if condition.status == "Unknown" and condition.reason == UNHEARD:
            message = f"the runtime answers again and is starting{_LAST_HEARD}"
            message += _last_heard(condition)
            result.extend(
                set_condition([condition], condition.type, None, STARTING, message, generation, now)
            )
        else:
            result.append(condition)
    return result


def unreachable_status(
    status: BotStatus, error: str, generation: int | None, now: str
) -> BotStatus:
    """The new status when the runtime did not answer: the phase stays (Pending if none), as
    ``TradefleetBotTargetsMissing`` counts a bot Running, Paused or Halted whose pod is gone;
    ``Ready`` turns False and the runtime-view conditions Unknown (:func:`unheard_conditions`)."""
    conditions = set_condition(
        unheard_conditions(status.conditions, generation, now),
        "Ready",
        False,
        "RuntimeUnreachable",
        f"the runtime did not answer: {error}"[:500],
        generation,
        now,
    )
    return status.model_copy(
        update={"phase": status.phase or Phase.PENDING, "conditions": conditions}
    )


# --- a runtime that failed ----------------------------------------------------------------------

RUNTIME_CONTAINER = "runtime"


def runtime_failure(pods: Sequence[Mapping[str, object]]) -> str | None:
    """The termination message of a bot's runtime container that exited with a code other than
    0 (the runtime writes its failure reason to the termination log and exits 1), else None.

    Reads ``state.terminated`` (the container has not restarted yet) or, while it restarts in
    a crash loop (``state.waiting``), ``lastState.terminated``; the newest pod wins. A runtime
    container that runs now (``state.running``) has not failed, whatever an earlier run of it
    left in ``lastState`` (an OOM kill days ago): then None, also beside an older pod that
    failed (an evicted pod kept for its record)."""
    found: tuple[str, str] | None = None
    for pod in pods:
        status = pod.get("status")
        if not isinstance(status, Mapping):
            continue
        for container in status.get("containerStatuses") or ():
            if not isinstance(container, Mapping) or container.get("name") != RUNTIME_CONTAINER:
                continue
            state = container.get("state")
            if isinstance(state, Mapping) and state.get("running") is not None:
                return None  # running now: not failed (unreachable, maybe; not Failed)
            for key in ("state", "lastState"):
                terminated = (container.get(key) or {}).get("terminated")
                if isinstance(terminated, Mapping) and terminated.get("exitCode") not in (0, None):
                    when = str(terminated.get("finishedAt") or "")
                    message = str(terminated.get("message") or "").strip() or (
                        f"the runtime exited with code {terminated.get('exitCode')}"
                        f" ({terminated.get('reason') or 'Error'})"
                    )
                    if found is None or when > found[0]:
                        found = (when, message[-1000:])
                    break
    return found[1] if found else None


def failed_status(status: BotStatus, reason: str, generation: int | None, now: str) -> BotStatus:
    """The status of a bot whose runtime failed: phase Failed, Ready=False with the reason; the
    runtime-view conditions Unknown, as for a runtime that does not answer."""
    conditions = set_condition(
        unheard_conditions(status.conditions, generation, now),
        "Ready",
        False,
        "RuntimeFailed",
        reason[:1000],
        generation,
        now,
    )
    return status.model_copy(
        update={"phase": advance(status.phase, Phase.FAILED), "conditions": conditions}
    )


# --- the credentials Secret the pod mounts --------------------------------------------------------

#: The condition saying whether the credentials Secret the bot's pod template mounts exists.
CREDENTIALS_FOUND = "CredentialsSecretFound"
#: Its reason (and the Warning's) while that Secret does not exist.
CREDENTIALS_MISSING = "CredentialsSecretMissing"


def credentials_status(
    status: BotStatus,
    secret: str | None,
    found: bool,
    namespace: str,
    generation: int | None,
    now: str,
) -> BotStatus:
    """``status`` with :data:`CREDENTIALS_FOUND` for ``secret``, the Secret the bot's pod
    template mounts as ``spec.broker.credentialsSecret`` (``found``: it exists). False names it
    and says what its absence costs: nothing to a pod running now (the kubelet keeps the files
    it mounted), but no new pod can start. ``secret`` None (the pod mounts none, or the bot has
    no Deployment): the condition is removed. Only names: nothing of a Secret's data is known
    here."""
    if secret is None:
        if condition_of(status, CREDENTIALS_FOUND) is None:
            return status
        kept = [cond for cond in status.conditions or () if cond.type != CREDENTIALS_FOUND]
        return status.model_copy(update={"conditions": kept})
    if found:
        reason = "SecretExists"
        message = (
            f"Secret {secret!r}, which the bot's pod mounts as spec.broker.credentialsSecret, "
            f"exists in namespace {namespace!r} (its metadata is read, never its data)"
        )
    else:
        reason = CREDENTIALS_MISSING
        message = (
            f"spec.broker.credentialsSecret: Secret {secret!r}, which the bot's pod mounts, "
            f"does not exist in namespace {namespace!r}: a pod running now keeps the files it "
            "mounted, but the bot's next pod (after a restart, a drain, an eviction, an OOM "
            "kill) will not start, as the kubelet cannot mount the Secret; create the Secret "
            "again, or set spec.broker.credentialsSecret to a Secret that exists"
        )
    conditions = set_condition(
        status.conditions, CREDENTIALS_FOUND, found, reason, message, generation, now
    )
    return status.model_copy(update={"conditions": conditions})


def credentials_event(old: BotStatus, new: BotStatus) -> tuple[str, str, bool] | None:
    """The Event (reason, message, warning) of a change of :data:`CREDENTIALS_FOUND` from ``old``
    to ``new``: a Warning when the Secret is found missing (or another one is), a Normal event
    when it is found again; None otherwise (once per change, not per tick)."""
    was, now = condition_of(old, CREDENTIALS_FOUND), condition_of(new, CREDENTIALS_FOUND)
    if now is None:
        return None
    if now.status == "False":
        if was is None or was.status != "False" or was.message != now.message:
            return CREDENTIALS_MISSING, now.message, True
        return None
    if was is not None and was.status == "False":
        return "CredentialsSecretFound", now.message, False
    return None
