"""The kopf handlers of ``tradingbots.tradefleet.io/v1alpha1`` (handlers only).

Each handler parses the TradingBot once (:meth:`TradingBot.parse`) and hands the typed bot to
the modules that do the work: :mod:`.steering` (the runtime's pause / halt / resume),
:mod:`.children` (create-or-adopt-and-patch the objects :mod:`.objects` describes) and
:mod:`.status_mapping` (the new ``.status``, written only when it changed).

- create / update / resume → :func:`reconcile`: steer the runtime first (a fleet stop must not
  wait for object writes), then bring every child object to the spec. A pod template naming a
  credentials Secret that does not exist is neither rolled out nor made
  (``Reconciled=False, reason=CredentialsSecretMissing``, a Warning naming the field and the
  Secret); the pass is retried, so creating the Secret rolls the bot with no other edit.
- the timer :func:`poll_status`, every ``TRADEFLEET_STATUS_INTERVAL`` seconds (10): reads
  ``GetStatus`` with the bot's read token, re-tries steering if an earlier attempt did not get
  through, and patches the status only when something changed. A runtime it cannot reach sets
  ``Ready=False, reason=RuntimeUnreachable``; it never raises. It also asks whether the
  credentials Secret the bot's pod mounts still exists (its metadata only): the condition
  ``CredentialsSecretFound``, and a Warning when it is gone.
- delete → :func:`finalize`: ask the runtime to stop (``EmergencyStop``, flattening as
  ``spec.onStop.flattenPositions`` says), wait a bounded time, then let kopf drop the finalizer
  (owner references cascade the deletion). An unreachable runtime does not block deletion.
- :func:`validate`: the admission webhook (``admission.validate_trading_bot``), registered by
  :func:`register_admission` when the operator serves the webhook.
- the index :func:`bot_accounts`: every bot's venue account and symbols by namespace, which
  :func:`validate` refuses a shared symbol with and :func:`poll_status` sets the
  ``AccountShared`` condition from (``account_sharing``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import kopf

from tradefleet_operator import admission, objects, webhook_tls
from tradefleet_operator.account_sharing import (
    BotAccount,
    account_of,
    credentials_in_use,
    sharing_condition,
)
from tradefleet_operator.bot_api import LiveSpec, TradingBot
from tradefleet_operator.children import (
    CredentialsSecretMissing,
    HalfApplied,
    NameTaken,
    NotLanded,
    SpecRefused,
    mounted_credentials_of,
    reconcile_config,
    reconcile_objects,
    settle_unparsed,
)
from tradefleet_operator.context import OperatorContext, context, event
from tradefleet_operator.control import Control, desired_control, observed_control
from tradefleet_operator.k8s_api import KubeApi, KubeError, api_path
from tradefleet_operator.metrics import (
    RECONCILE_SECONDS,
    RECONCILES,
    STATUS_WRITES_REFUSED,
    ReconcileOutcome,
    forget_phase,
    record_phase,
)
from tradefleet_operator.names import (
    GROUP,
    LIVE_FIELDS,
    PLURAL,
    VERSION,
    Phase,
    api_token_secret_name,
)
from tradefleet_operator.runtime_client import RuntimeCallError, RuntimeClients
from tradefleet_operator.settings import BOT_LABEL, OperatorSettings, runtime_address
from tradefleet_operator.snapshot import RuntimeSnapshot
from tradefleet_operator.status_mapping import (
    advance,
    condition_of,
    credentials_event,
    credentials_status,
    failed_status,
    now_iso,
    precise_now,
    reachable_status,
    runtime_failure,
    set_condition,
    unreachable_status,
)
from tradefleet_operator.status_model import BotStatus, guarded_status_write, handler_status_write
from tradefleet_operator.steering import Steered, steer
from tradefleet_operator.tracing import end_reconcile_span, start_reconcile_span
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.spec import BotSpec
from tradefleet_runtime.spec.model import StopPolicy

__all__ = [
    "bot_accounts",
    "finalize",
    "poll_status",
    "reconcile",
    "register_admission",
    "startup",
    "validate",
]

FINALIZER = "tradefleet.io/finalizer"

#: How often a bot whose child names are taken by other objects is looked at again (seconds).
NAME_TAKEN_RETRY_S = 60

#: The longest wait between two looks at a bot held back for a missing credentials Secret
#: that has no pod of its own yet, or whose runtime did not take a control call (seconds; the
#: first come sooner): creating the Secret makes (or rolls) the bot within it.
CREDENTIALS_RETRY_S = 30

#: The wait between two looks at a running bot whose rollout is held back for a missing
#: credentials Secret (seconds): a pause, resume or emergency stop edited meanwhile reaches its
#: runtime within it (see :func:`credentials_retry_delay`).
CREDENTIALS_HOLD_RETRY_S = 2

#: How often each bot's status is read from its runtime (seconds; read when kopf registers
#: the timer, i.e. at import).
STATUS_INTERVAL = float(os.environ.get("TRADEFLEET_STATUS_INTERVAL", "10"))


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    """kopf's settings for this operator (also used by tests and the bench)."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="tradefleet.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="tradefleet.io", key="last-handled-configuration"
    )
    # Only our own decisions become Kubernetes Events (kopf.info/warn), not every log line.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    settings.queueing.idle_timeout = 5.0


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    """The pod's service account in a cluster, else the kubeconfig (no client library needed)."""
    return kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure_kopf(settings)
    options = memo.get("options") or {}
    if options.get("peering_lifetime"):
        settings.peering.lifetime = int(options["peering_lifetime"])
    if options.get("namespaced"):
        # Serving named namespaces: kopf must not list namespaces at cluster scope (the chart's
        # namespaced Roles do not allow it; kopf retried for ~54 s at every start).
        settings.scanning.disabled = True
    admission = options.get("admission")
    if admission:
        certfile, pkeyfile, cadata = admission.get("certfile"), admission.get("pkeyfile"), None
        if not certfile:
            # No certificate given (cert-manager): a CA of our own, new at every start.
            host = admission.get("host") or "localhost"
            hosts = [host, host.split(".")[0], *(admission.get("extra_hosts") or [])]
            tls = webhook_tls.self_signed(list(dict.fromkeys(hosts)))
            memo["webhook_tls"] = tls
            certfile, pkeyfile, cadata = str(tls.certfile), str(tls.keyfile), tls.ca_pem
        settings.admission.server = kopf.WebhookServer(
            addr=admission.get("address") or "127.0.0.1",
            port=int(admission["port"]),
            host=admission.get("host"),
            certfile=certfile,
            pkeyfile=pkeyfile,
            cadata=cadata,
        )
        settings.admission.managed = "tradefleet.io"
    memo["tradefleet"] = OperatorContext(
        settings=options.get("settings") or OperatorSettings(),
        kube=KubeApi.from_environment(connections=int(options.get("connections", 64))),
        runtime=RuntimeClients(timeout=float(options.get("rpc_timeout", 3.0))),
        stop_timeout=float(options.get("stop_timeout", 20.0)),
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    ctx = memo.get("tradefleet")
    if isinstance(ctx, OperatorContext):
        await ctx.runtime.close()
        await ctx.kube.close()


# --- reconcile ----------------------------------------------------------------------------------

#: The live fields as diff paths (wire names): a change to nothing else needs no object pass.
_LIVE_PATHS = frozenset(("spec", BotSpec.model_fields[name].alias or name) for name in LIVE_FIELDS)


def live_only_change(reason: str, diff: Any) -> bool:
    """True for an update that changed nothing but live fields (and annotations).

    A change of the labels is not: they reach the pod (its team variable, from the label
    ``--team-label`` names) and ``bot.yaml``, so they need the object pass."""
    if reason != "update" or not diff:
        return False
    for item in diff:
        path = tuple(item[1])
        if path[:1] == ("metadata",):
            if path[:2] != ("metadata", "annotations"):
                return False  # labels (or the whole metadata): the objects depend on them
            continue
        if path[:2] not in _LIVE_PATHS and path not in {("spec",)}:
            return False
        if path == ("spec",):
            return False
    return True


def stop_removed(reason: str, diff: Any) -> bool:
    """True for an update that removed the spec's ``emergencyStop``: a person's explicit
    resume of the spec's halt, whatever ``status.control`` recorded (the status timer's halt
    while a change was at work may have no record: refused, or lost with an operator restart).
    The Resume it sends lifts only the spec's halt: one a person gave directly stays."""
    if reason != "update":
        return False
    for item in diff or ():
        path, old, new = tuple(item[1]), item[2], item[3]
        if path == ("spec",):  # the whole spec in one item: its stop, before and after
            path = ("spec", "emergencyStop")
            old = old.get("emergencyStop") if isinstance(old, Mapping) else None
            new = new.get("emergencyStop") if isinstance(new, Mapping) else None
        if path == ("spec", "emergencyStop") and old is not None and new is None:
            return True
    return False


def _write(
    patch: kopf.Patch, current: Mapping[str, Any], new: BotStatus, meta: Mapping[str, Any]
) -> None:
    """The timer's write: only the status keys that changed (none: no write at all), each only
    where the object still holds what the timer read (:func:`guarded_status_write`: the change
    handler may have written since)."""
    write = guarded_status_write(current, new)
    if write is not None:
        patch.fns.append(lambda raw: write(cast("dict[str, Any]", raw)))
    _record_phase(meta, str(new.phase or Phase.PENDING))


#: Status timer writes refused in a row before a Warning is logged (then every this many more).
REFUSED_WRITES_WARN = 3


def _count_refused_write(
    ctx: OperatorContext, meta: Mapping[str, Any], *, refused: bool, logger: kopf.Logger
) -> None:
    """Count a status write the API server refused at the last tick; log a Warning when
    :data:`REFUSED_WRITES_WARN` ticks in a row were refused (a status that stops being written
    must not go unseen)."""
    key = (str(meta.get("namespace") or "default"), str(meta.get("name", "")))
    if not refused:
        ctx.refused_status_writes.pop(key, None)
        return
    STATUS_WRITES_REFUSED.inc()
    streak = ctx.refused_status_writes.get(key, 0) + 1
    ctx.refused_status_writes[key] = streak
    if streak % REFUSED_WRITES_WARN == 0:
        logger.warning(
            f"the status timer's write was refused {streak} ticks in a row (the API server "
            "answered 422: the bot changed at every tick, or its status does not validate "
            "against the CRD's schema): .status may be stale; kopf's debug log has the answer"
        )


def _record_phase(meta: Mapping[str, Any], phase: str) -> None:
    namespace = str(meta.get("namespace") or "default")
    record_phase(str(meta.get("uid")), phase, namespace, str(meta.get("name", "")))


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def reconcile(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    reason: str = "",
    diff: Any = (),
    retry: int = 0,
    **_: Any,
) -> None:
    """Bring the runtime and every child object to the spec; write only what changed.

    A control call that did not get through is retried by kopf (the status written so far is
    kept): the timer re-enforces halts and pauses but never resumes, so a resume is retried
    only here, with this handler's newest view of the spec.
    """
    steering_left = await _reconcile(body, meta, status, patch, memo, logger, reason, diff, retry)
    if steering_left:
        raise kopf.TemporaryError(
            "the runtime did not take the spec's control change yet", delay=min(30, 1 + retry)
        )


async def _reconcile(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    reason: str,
    diff: Any,
    retry: int = 0,
) -> bool:
    """One reconcile pass; True when a control call must be retried."""
    steering_left = False
    started = time.perf_counter()
    ctx = context(memo)
    current: dict[str, Any] = dict(status)
    new = old = BotStatus.read(current)
    generation = meta.get("generation")
    outcome: ReconcileOutcome = "ok"
    span = start_reconcile_span(str(meta.get("name")), str(meta.get("namespace")), generation)
    try:
        bot: TradingBot | None = None
        try:
            bot = TradingBot.parse(body)  # the one parse of this pass
        except Exception as error:  # an invalid spec (admission would have refused it)
            problem = str(error)[:1000]
        valid, config_hash = bot is not None, ""
        config_map: dict[str, Any] | None = None  # a live-only change writes only this
        if bot is not None:
            # kubectl prints a list column as a JSON array: the joined string is in .status.
            new = new.model_copy(update={"symbols": ",".join(bot.spec.market.symbols)})
            config_hash = objects.config_hash(bot)
            if live_only_change(reason, diff) and old.config_hash == config_hash:
                # Rendered now: the parsed spec may be dropped while steering waits.
                config_map = objects.configmap(bot, ctx.settings)
        # The runtime first: a halt waits for nothing but the parse (not for object writes).
        live = bot.live if bot is not None else LiveSpec.salvage(body.get("spec") or {})
        if ctx.runtime.saturated():
            # Steering may queue for a gRPC slot (a fleet stop steers every bot at once): hold
            # no parsed spec meanwhile; an object pass parses it again (issue 19, memory).
            bot = None
        if live is not None:
            asked = precise_now()  # before the calls: a report is never dated after it
            removed = stop_removed(reason, diff)
            steered = await steer(ctx, body, live, new, stop_removed=removed, logger=logger)
            steering_left = steered.pending
            new = steered.apply(new)
            if steered.snapshot is not None:
                new = reachable_status(new, steered.snapshot, generation, now_iso(), asked)

        if not valid:
            outcome = "invalid"
            if _newly_invalid(old, problem):
                event(body, warning=True, reason="InvalidSpec", message=problem)
            said, unsettled = await _settle_invalid(ctx, body, live)
            new = new.model_copy(
                update={
                    # A bot made before runs on as it was rolled out: its phase stays the
                    # runtime's (a halted bot is not Failed); a bot never made is Failed.
                    "phase": _phase_not_reconciled(old, new),
                    "observed_generation": generation,
                    "conditions": set_condition(
                        new.conditions, "Reconciled", False, "InvalidSpec",
                        f"{problem[:700]}; {said}" if said else problem, generation, now_iso(),
                    ),
                }
            )  # fmt: skip
            if unsettled is not None:
                raise kopf.TemporaryError(unsettled, delay=min(30, 2 * (retry + 1)))
            return steering_left

        try:
            if config_map is not None:
                # Only live fields changed (pause, emergency stop): steered over gRPC above, and
                # the pod is not rolled (the config hash leaves them out). Only the ConfigMap is
                # brought to the spec: its bot.yaml carries them, and a pod that restarts (an
                # eviction, an OOM kill) must start paused or halted as the spec says now.
                # Nothing else is read or written: a fleet-wide stop stays fast.
                outcomes = await reconcile_config(ctx, body, config_map)
            else:
                fresh = not old.config_hash  # never reconciled: create without reading
                if ctx.object_passes.locked():
                    # Queued behind other bots' passes (a fleet applied at once queues nearly
                    # every bot here): hold only the body kopf keeps anyway, not the parsed
                    # spec, and parse it again once a slot is ours (issue 19, memory at scale).
                    bot = None
                async with ctx.object_passes:  # bounded: the memory peak of a fleet at once
                    parsed = bot or TradingBot.parse(body)
                    outcomes = await reconcile_objects(ctx, body, parsed, config_hash, fresh=fresh)
        except KubeError as error:
            if error.temporary:
                # Transient (a conflict, an earlier bot's children not collected yet, the API
                # server busy): retried with backoff, never a permanent Failed.
                outcome = "retry"
                if isinstance(error, HalfApplied | NotLanded):
                    # Retried, but counted failed and said on the bot: the change is known not
                    # to be applied, and TradefleetReconcileFailures must fire while it lasts
                    # (a HalfApplied pod, if it restarts, may start on a config never rolled
                    # out).
                    outcome = "failed"
                    new = _not_applied(body, old, new, error, generation)
                elif retry == 0:
                    event(body, warning=True, reason="ReconcileRetrying", message=str(error)[:500])
                raise kopf.TemporaryError(str(error), delay=min(30, 2 * (retry + 1))) from error
            outcome = "failed"
            taken = isinstance(error, NameTaken)
            waiting = isinstance(error, CredentialsSecretMissing)
            if isinstance(error, CredentialsSecretMissing):
                # Once per Secret, not per retry (a running bot is looked at every 2 s): kopf
                # keeps the retry count across edits, and an edit may name another missing
                # Secret.
                if _newly_missing(old, error):
                    event(body, warning=True, reason=error.reason, message=str(error)[:1000])
            elif not taken or retry == 0:
                kind = (
                    error.reason
                    if isinstance(error, NameTaken | SpecRefused)
                    else "ReconcileFailed"
                )
                event(body, warning=True, reason=kind, message=str(error)[:1000])
            new = new.model_copy(
                update={
                    "phase": (
                        _phase_waiting(old, new) if waiting else _phase_not_reconciled(old, new)
                    ),
                    "observed_generation": generation,
                    "conditions": set_condition(
                        new.conditions, "Reconciled", False, error.reason or "ApiError",
                        str(error)[:1000], generation, now_iso(),
                    ),
                }
            )  # fmt: skip
            if taken:
                # Looked at again now and then: once a person renames or deletes the other
                # object, the bot is made without another change to it.
                raise kopf.TemporaryError(str(error), delay=NAME_TAKEN_RETRY_S) from error
            if isinstance(error, CredentialsSecretMissing):
                # The pod trades on the Secret it mounts until it is rolled: admission and the
                # account-sharing index read it here (they read TradingBots, not Deployments).
                new = new.model_copy(update={"credentials_secret_in_use": held_secret(error)})
                # Looked at again: once the Secret exists, the bot is rolled onto it with no
                # other edit. This pass steered the runtime above (before its object pass);
                # the delay bounds how late the next edit's steering comes.
                deployed = not error.made
                delay = credentials_retry_delay(
                    retry, deployed=deployed, steering_left=steering_left
                )
                raise kopf.TemporaryError(str(error), delay=delay) from error
            return steering_left
        made = outcomes.get("created", []) + outcomes.get("adopted", [])
        if outcomes.get("created"):
            event(body, reason="Created", message="created " + ", ".join(made))
        elif outcomes.get("adopted"):
            event(body, reason="Adopted", message="adopted " + ", ".join(made))
        if outcomes.get("patched"):
            event(body, reason="Updated", message="updated " + ", ".join(outcomes["patched"]))
        new = new.model_copy(
            update={
                "phase": _phase_reconciled(old, new),
                "observed_generation": generation,
                "config_hash": config_hash,
                "credentials_secret_in_use": None,  # the pod template is the spec's now
                "conditions": set_condition(
                    new.conditions, "Reconciled", True, "UpToDate",
                    "every object matches the spec", generation, now_iso(),
                ),
            }
        )  # fmt: skip
    finally:
        RECONCILES.labels(outcome).inc()
        RECONCILE_SECONDS.observe(time.perf_counter() - started)
        end_reconcile_span(span, outcome)
        # One write of the keys it changed, its conditions by type onto the freshest list (a
        # merge patch of the whole list would put back the timer's newer ones), so a reader
        # never sees its phase without its conditions (``handler_status_write``).
        write = handler_status_write(current, new)
        if write is not None:
            patch.fns.append(lambda raw: write(cast("dict[str, Any]", raw)))
        if new.phase:
            _record_phase(meta, str(new.phase))
    return steering_left


def _phase_not_reconciled(old: BotStatus, new: BotStatus) -> Phase:
    """The phase of a bot whose spec could not be applied. A bot made before runs on as it was
    rolled out (a refused pass writes nothing, or puts the ConfigMap back): its phase stays the
    runtime's. A bot never made runs nothing, and will not until a person acts: Failed."""
    if old.config_hash:
        return Phase(new.phase) if new.phase else Phase.PENDING
    return advance(old.phase, Phase.FAILED)


def _phase_waiting(old: BotStatus, new: BotStatus) -> Phase:
    """The phase of a bot held back for a missing credentials Secret. A bot made before runs on
    as it was rolled out: the runtime's phase. A bot never made is Pending, not Failed: nothing
    failed, no person must undo anything but make the Secret, and it starts by itself then
    (its ``Reconciled`` condition and a Warning say what it waits for)."""
    if old.config_hash:
        return Phase(new.phase) if new.phase else Phase.PENDING
    return advance(old.phase, Phase.PENDING)


def credentials_retry_delay(retry: int, *, deployed: bool, steering_left: bool) -> float:
    """Seconds until the reconcile handler looks again at a bot held back for a missing
    credentials Secret (``retry``: kopf's count of earlier tries of this change).

    kopf runs no handler still waiting out its retry delay, not even for a newer edit
    (``execute_handlers_once`` takes only awakened handlers; the object's worker sleeps until
    the delay ends, then touches the object), and the status timer only enforces a halt or a
    pause of a bot whose newest generation no pass has ended (:func:`_change_at_work`,
    :func:`_steer_while_at_work`), every ``TRADEFLEET_STATUS_INTERVAL`` (10 s), and never
    resumes. So a person's resume edited while a held pass waits is steered only when that
    wait ends, and a stop may wait a status interval. A bot with a Deployment (its pod runs on
    as it was rolled out) is therefore looked at every :data:`CREDENTIALS_HOLD_RETRY_S`: the
    simplest bound that is provably prompt. A look costs a few reads (the
    api-token Secret, the Deployment, the ConfigMap; the credentials Secret's metadata only)
    and kopf's two progress patches: its steering calls the runtime only for a control that
    changed, and a look that finds nothing new writes no object and no status, and posts no
    Event (:func:`_newly_missing`).

    A bot without a Deployment (no pod of its own to steer) waits longer, as does a runtime
    that did not take a control call (each failed call posts a Warning; a pod that restarts
    starts paused or halted anyway, from the ConfigMap the held pass settles with the live
    fields): a backoff up to :data:`CREDENTIALS_RETRY_S`, as an un-held pass would retry."""
    if deployed and not steering_left:
        return CREDENTIALS_HOLD_RETRY_S
    if steering_left:
        return min(CREDENTIALS_RETRY_S, 1 + retry)
    return min(CREDENTIALS_RETRY_S, 2 * (retry + 1))


def held_secret(error: CredentialsSecretMissing) -> str | None:
    """``status.credentialsSecretInUse`` of a held bot: the Secret its running pod mounts when
    that is not the one the spec names (None: no pod of its own, or the same Secret)."""
    return error.mounted if error.mounted != error.secret else None


def _newly_missing(old: BotStatus, error: CredentialsSecretMissing) -> bool:
    """The bot's ``Reconciled`` condition does not say yet that this Secret is missing."""
    was = condition_of(old, "Reconciled")
    return was is None or was.reason != error.reason or not was.message.startswith(error.head)


def _phase_reconciled(old: BotStatus, new: BotStatus) -> Phase:
    """The phase once the spec is applied: the runtime's; but a bot made now for the first time
    that was Failed (its spec refused, an object the API server refused) waits for its pod."""
    if not old.config_hash and new.phase == Phase.FAILED:
        return Phase.PENDING
    return Phase(new.phase) if new.phase else Phase.PENDING


def _not_applied(
    body: kopf.Body, old: BotStatus, new: BotStatus, error: KubeError, generation: int | None
) -> BotStatus:
    """``new`` saying that the change is not applied and is retried (:class:`HalfApplied`: the
    ConfigMap holds a config the pod was not rolled out with; :class:`NotLanded`: the API server
    keeps failing its writes); a Warning the first time, not at every retry."""
    was = condition_of(old, "Reconciled")
    if was is None or was.reason != error.reason:
        event(body, warning=True, reason=error.reason, message=str(error)[:1000])
    conditions = set_condition(
        new.conditions, "Reconciled", False, error.reason, str(error)[:1000], generation, now_iso()
    )
    # Not observed yet: the handler is retried. The status timer still reads and steers the
    # bot, which runs on its old config meanwhile (_change_at_work).
    return new.model_copy(update={"conditions": conditions})


def _newly_invalid(old: BotStatus, problem: str) -> bool:
    """The spec's error (``problem``) is not the one the bot's condition says already: a Warning
    per error, not per pass. Not per retry count either: kopf keeps a handler's retries across
    edits made meanwhile (an invalid spec is retried while its pause cannot be written), and an
    edit may bring another error."""
    was = condition_of(old, "Reconciled")
    if was is None or was.reason != "InvalidSpec":
        return True
    # The condition says the error, then (after "; ") what became of the pause and halt.
    return was.message != problem and not was.message.startswith(f"{problem[:700]}; ")


async def _settle_invalid(
    ctx: OperatorContext, body: kopf.Body, live: LiveSpec | None
) -> tuple[str, str | None]:
    """For a spec the model refuses: the live fields salvaged from it into the ``bot.yaml`` a
    restarted pod reads (:func:`.children.settle_unparsed`). Returns what to add to the
    condition and, when the ConfigMap could not be written, why (the pass is then retried)."""
    if live is None:
        return "", None  # its pause and halt are invalid too: nothing to write
    try:
        return await settle_unparsed(ctx, body["metadata"], live), None
    except KubeError as error:
        said = (
            "the spec's pause and emergency stop could not be written into the bot's ConfigMap "
            f"({str(error)[:200]}): a restart of the pod may start without them; retrying"
        )
        return said, said


# --- venue accounts shared between bots ---------------------------------------------------------

#: Where the index keeps a bot's account between that bot's events (kopf's memo of the object):
#: every write to the bot (its status, kopf's annotations) is an event too, and a spec parse
#: costs ~0.4 ms, while the spec, and so the account, changes only with the generation (one
#: bot's create and first status writes: 2 parses in 10 events, measured on the emulator).
_ACCOUNT_MEMO = "tradefleet.account"


@kopf.index(GROUP, VERSION, PLURAL)
def bot_accounts(body: kopf.Body, memo: kopf.Memo, **_: Any) -> dict[str, BotAccount]:
    """Each TradingBot's venue account and symbols, by namespace: what admission and the status
    timer compare a bot with (kopf keeps it from the watch it runs anyway: no request of its
    own, no RBAC verb more). A bot being deleted, or whose spec the model refuses, is left out
    (an empty answer removes it: kopf would keep the last one for None)."""
    meta = body.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return {}
    # A status write changes no generation, but a held roll's Secret in use changes the account.
    seen = (meta.get("uid"), meta.get("generation"), credentials_in_use(body))
    cached = memo.get(_ACCOUNT_MEMO)
    if isinstance(cached, tuple) and cached[0] == seen and seen[1] is not None:
        account: BotAccount | None = cached[1]
    else:
        account = account_of(body)
        memo[_ACCOUNT_MEMO] = (seen, account)
    if account is None:
        return {}
    return {_namespace(body): account}


def _namespace(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("namespace") or "default")


def _namespace_bots(
    index: kopf.Index[str, BotAccount] | None, body: Mapping[str, Any]
) -> list[BotAccount]:
    """The indexed bots of ``body``'s namespace (none without the index: a handler called
    outside kopf)."""
    if index is None:
        return []
    return list(index.get(_namespace(body), ()))


def _account_shared(
    body: kopf.Body,
    old: BotStatus,
    new: BotStatus,
    generation: int | None,
    index: kopf.Index[str, BotAccount] | None,
) -> BotStatus:
    """``new`` with the condition ``AccountShared``, and a Warning when the bot starts sharing a
    symbol on its account (or shares other ones): once, not at every tick. The bot is not
    stopped: what to stop, or move to a sub-account, is a person's choice."""
    bots = _namespace_bots(index, body)
    name = (body.get("metadata") or {}).get("name")
    bot = next((b for b in bots if b.name == name), None)
    if bot is None:
        return new  # not indexed: being deleted, a refused spec, or no index
    shared, reason, message = sharing_condition(bot, bots)
    was = condition_of(old, "AccountShared")
    if shared and (was is None or was.status != "True" or was.message != message):
        event(body, warning=True, reason="AccountShared", message=message[:1000])
    conditions = set_condition(
        new.conditions, "AccountShared", shared, reason, message, generation, now_iso()
    )
    return new.model_copy(update={"conditions": conditions})


# --- the status timer ---------------------------------------------------------------------------


def first_tick(uid: str, **_: Any) -> float:
    """Spread the first status reads over one interval (a fleet applied at once must not tick
    in step), and wait at least a second for the first reconcile to land."""
    spread = (zlib.crc32(uid.encode()) % 1000) / 1000
    return 1.0 + spread * STATUS_INTERVAL


def _change_at_work(old: BotStatus, generation: int | None) -> bool:
    """The change handler has not ended a pass of ``generation`` yet: it writes the status.

    A pass that ended with the change not applied and retried (``HalfApplied``,
    ``NotApplied``: its condition is of this generation, ``observedGeneration`` is not) leaves
    the bot running on its old config, maybe for long (a ConfigMap that keeps no copy of the
    running config stays HalfApplied until the spec is fixed): the timer still reads it, marks
    it Failed when its runtime fails, and re-enforces its pause or halt. While a change is at
    work, the timer writes no status but the control it applies (:func:`_steer_while_at_work`)."""
    if old.observed_generation == generation:
        return False
    reconciled = condition_of(old, "Reconciled")
    return reconciled is None or reconciled.observed_generation != generation


def _live_spec(body: Mapping[str, Any]) -> LiveSpec | None:
    """The spec's live fields (one parse), salvaged from a spec the model refuses."""
    try:
        return TradingBot.parse(body).live
    except Exception:
        return LiveSpec.salvage(body.get("spec") or {})


def _safety_asked(live: LiveSpec) -> bool:
    """Whether the timer steers a made bot whose change is at work: its spec asks for a halt
    or a pause. A spec that asks to run needs no call from the timer, which never resumes."""
    return desired_control(live) is not Control.RUNNING


async def _steer_while_at_work(
    ctx: OperatorContext, body: kopf.Body, old: BotStatus, logger: kopf.Logger
) -> Steered | None:
    """Enforce the halt or pause the bot's newest spec asks for while a change is at work.

    kopf runs no newer edit of a bot while an earlier pass waits out its retry delay (a
    ``HalfApplied`` or transient API error up to 30 s, a runtime that did not take a call, a
    taken name 60 s): a person's emergency stop edited meanwhile would reach the runtime only
    then. The timer reads the runtime (read token) and steers it as a tick does (control
    token, :func:`.steering.steer` with the state it read: a halt or a pause, never a resume,
    a flatten only as the spec's halt asks; no risk-lock reset, which lets a bot trade again).
    What steering records (``status.control``) is all it writes: every other key is the change
    handler's. None: nothing to steer, or the runtime could not be read (the next tick tries
    again; the change handler says what it finds)."""
    if not (old.config_hash or old.runtime_reported_at):
        # Never made (no config rolled out, no runtime that answered): no runtime to call,
        # and no parse per tick.
        return None
    meta = body["metadata"]
    generation = meta.get("generation")
    live = _live_spec(body)
    if live is None or not _safety_asked(live):
        return None
    namespace, name = meta.get("namespace", "default"), meta["name"]
    try:
        tokens = await ctx.bot_tokens(namespace, name)
        if tokens is None:
            return None
        snapshot = await ctx.runtime.get_status(runtime_address(meta, ctx.settings), tokens.read)
        if body["metadata"].get("generation") != generation:
            # kopf's body is a live view (read it anew, not the metadata held above): a newer
            # edit arrived during the read and may lift the halt. steer() records the generation
            # it reads beside the spec it steers by.
            live = _live_spec(body)
            if live is None or not _safety_asked(live):
                return None
        steered = await steer(
            ctx,
            body,
            live,
            old,
            observed=observed_control(snapshot),
            known=True,
            resets=False,
            logger=logger,
        )
        if steered.control is not None:
            # Remembered until a change handler's steering takes it in: the record written
            # below may be refused or overwritten (see ``OperatorContext.timer_controls``).
            ctx.timer_controls[str(meta.get("uid") or "")] = steered.control
        return steered
    except Exception as error:  # never crash the timer; the change handler reports the bot
        if isinstance(error, RuntimeCallError) and error.code == "UNAUTHENTICATED":
            ctx.forget(namespace, name)
        logger.debug(f"status timer, change at work: the runtime was not steered: {error}")
        return None


@kopf.timer(GROUP, VERSION, PLURAL, interval=STATUS_INTERVAL, initial_delay=first_tick)
async def poll_status(
    body: kopf.Body,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    bot_accounts: kopf.Index[str, BotAccount] | None = None,
    **_: Any,
) -> None:
    """Read the runtime's status (read token) into the TradingBot; steer it (control token)
    if an earlier attempt failed; say whether it shares a symbol on its venue account. While a
    change is at work, only enforce a halt or a pause its newest spec asks for
    (:func:`_steer_while_at_work`)."""
    ctx = context(memo)
    # A write left from a tick whose patch the API server refused (kopf keeps it for the next):
    # dropped, as this tick decides again from what it reads now; counted, and said once it
    # lasts (kopf logs any refusal at debug only, a status the schema refuses among them).
    _count_refused_write(ctx, meta, refused=bool(patch.fns), logger=logger)
    patch.fns.clear()
    current: dict[str, Any] = dict(status)
    generation = meta.get("generation")
    old = BotStatus.read(current)
    if _change_at_work(old, generation):
        # The change handler is at work on this generation and writes the status; but a halt or
        # a pause its newest spec asks for is enforced meanwhile (never a resume).
        steered = await _steer_while_at_work(ctx, body, old, logger)
        if steered is not None:
            _write(patch, current, steered.apply(old), meta)
        return
    address = runtime_address(meta, ctx.settings)
    namespace, name = meta.get("namespace", "default"), meta["name"]
    credentials = await _credentials_seen(ctx, body, old, generation)
    try:
        tokens = await ctx.bot_tokens(namespace, name)
        if tokens is None:
            raise RuntimeCallError(
                "NoToken", f"no Secret {api_token_secret_name(name)}", unreachable=True
            )
        asked = precise_now()  # before the call: a report is never dated after it was made
        snapshot = await ctx.runtime.get_status(address, tokens.read)
    except Exception as error:  # never crash the timer
        if isinstance(error, RuntimeCallError) and error.code == "UNAUTHENTICATED":
            ctx.forget(namespace, name)
        # The message names the code only: a detail that varies would cost a write per tick.
        code = error.code if isinstance(error, RuntimeCallError) else type(error).__name__
        new = unreachable_status(old, f"{address}: {code}", generation, now_iso())
        failure = await _runtime_failure(ctx, namespace, name)
        was = condition_of(old, "Ready")
        if failure is not None:
            new = failed_status(old, failure, generation, now_iso())
            if was is None or was.reason != "RuntimeFailed":
                event(body, warning=True, reason="RuntimeFailed", message=failure[:500])
        elif was is None or was.reason != "RuntimeUnreachable":
            event(
                body,
                warning=True,
                reason="RuntimeUnreachable",
                message=f"cannot reach the runtime at {address}: {error}"[:500],
            )
    else:
        live = _live_spec(body)
        steered = Steered()
        # kopf's body is a live view for timers: a newer spec may have arrived while the
        # runtime was read. Its change handler decides; the timer steers only from the
        # generation it checked above, whose handler is done.
        if live is not None and meta.get("generation") == generation:
            steered = await steer(
                ctx, body, live, old, observed=observed_control(snapshot), known=True, logger=logger
            )
        after = steered.snapshot or snapshot
        new = steered.apply(reachable_status(old, after, generation, now_iso(), asked))
    new = _account_shared(body, old, new, generation, bot_accounts)
    if credentials is not None:
        secret, found = credentials
        new = credentials_status(new, secret, found, namespace, generation, now_iso())
        said = credentials_event(old, new)
        if said is not None:
            reason, message, warning = said
            event(body, warning=warning, reason=reason, message=message[:1000])
    _write(patch, current, new, meta)


def _credentials_named(body: Mapping[str, Any]) -> str | None:
    """``spec.broker.credentialsSecret.name`` as the body holds it (no parse per tick)."""
    broker = (body.get("spec") or {}).get("broker")
    ref = broker.get("credentialsSecret") if isinstance(broker, Mapping) else None
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) and name else None


async def _credentials_seen(
    ctx: OperatorContext, body: kopf.Body, old: BotStatus, generation: int | None
) -> tuple[str | None, bool] | None:
    """The credentials Secret the bot's pod template mounts (None: none, or no Deployment) and
    whether it exists, asked for its metadata only (never its data); None when that could not
    be read now (the condition then stays as it was).

    While this generation's spec is rolled out (``Reconciled=True``), that is the spec's Secret;
    else (a change held back or refused: the pod runs an older template, maybe on another
    Secret) the Deployment is read for it: a Secret only the spec names is the change
    handler's to say."""
    meta = body["metadata"]
    namespace, name = str(meta.get("namespace") or "default"), str(meta["name"])
    reconciled = condition_of(old, "Reconciled")
    try:
        if (
            reconciled is not None
            and reconciled.status == "True"
            and reconciled.observed_generation == generation
        ):
            secret = _credentials_named(body)
        else:
            uid = str(meta.get("uid") or "")
            secret = await mounted_credentials_of(ctx, namespace, name, uid)
        if secret is None:
            return None, True
        return secret, await ctx.kube.exists(api_path("v1", "secrets", namespace, secret))
    except Exception:  # never crash the timer: the condition stays as it was
        return None


async def _runtime_failure(ctx: OperatorContext, namespace: str, name: str) -> str | None:
    """Why the bot's runtime container failed (exit code ≠ 0: its termination message), read
    from its pods; None when none failed or the pods cannot be read."""
    try:
        pods = await ctx.kube.list("v1", "pods", namespace, f"{BOT_LABEL}={name}")
    except Exception:  # never crash the timer: unreadable pods report nothing
        return None
    return runtime_failure(pods)


# --- delete -------------------------------------------------------------------------------------


async def _stop_runtime(
    ctx: OperatorContext, body: kopf.Body
) -> tuple[str, RuntimeSnapshot | None, bool]:
    """EmergencyStop, then wait (bounded) until the runtime is flat when flattening.

    Returns what went wrong ("" when nothing), the runtime's last answer and whether it was
    asked to flatten."""
    meta = body["metadata"]
    namespace, name = meta.get("namespace", "default"), meta["name"]
    try:
        on_stop = TradingBot.parse(body).spec.on_stop
    except Exception:  # a spec the model refuses still gets stopped, with the default policy
        on_stop = StopPolicy()
    flatten = on_stop.flatten_positions
    address = runtime_address(meta, ctx.settings)
    deadline = time.monotonic() + ctx.stop_timeout
    tokens = await ctx.bot_tokens(namespace, name)
    if tokens is None:
        return "no api-token Secret", None, flatten
    snapshot: RuntimeSnapshot | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timed out", snapshot, flatten
        try:
            snapshot = await ctx.runtime.emergency_stop(
                address, tokens.control, "TradingBot deleted", flatten, min(remaining, 5.0)
            )
        except RuntimeCallError as error:
            if not error.unreachable or deadline - time.monotonic() < 1:
                return str(error), snapshot, flatten
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            continue
        if snapshot.halted and (not flatten or snapshot.open_positions == 0):
            return "", snapshot, flatten
        await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


@dataclass(frozen=True, slots=True)
class HeldPosition:
    """A position the runtime still holds (from ``ListPositions``)."""

    symbol: str
    quantity: float  # signed: positive long, negative short


@dataclass(frozen=True, slots=True)
class WorkingOrder:
    """An order still working at the venue (from ``ListOrders``)."""

    symbol: str
    side: str
    order_type: str
    quantity: float  # what is left to fill
    price: float | None = None


@dataclass(frozen=True, slots=True)
class LeftOpen:
    """What a deleted bot leaves behind; a list is None when it could not be read."""

    positions: tuple[HeldPosition, ...] | None
    orders: tuple[WorkingOrder, ...] | None
    position_count: int = 0  # the runtime's (or the status's) count, when not listed
    order_count: int = 0


#: Event messages are cut by kopf at 1024 characters; the list stops short of that (the
#: operator's log line carries it whole).
_EVENT_LIST_CHARS = 700


def _plain(text: str, limit: int = 40) -> str:
    """A runtime-reported name made safe to print: printable, one line, bounded."""
    cleaned = "".join(c if c.isprintable() and not c.isspace() else "?" for c in text)
    return cleaned[:limit] or "?"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def left_open_report(left: LeftOpen, *, mode: str, why: str) -> tuple[str, str] | None:
    """The (Event message, log line) naming what a deleted bot leaves open; None: nothing.

    Only what identifies a position or an order goes in (symbol, side, type, quantity, price)
    and the spec's mode: nothing else from the spec, the Secrets or a runtime's error text, so
    no credential can reach the Event or the log line through it.
    """
    items: list[str] = []
    positions = orders = 0
    if left.positions is not None:
        positions = len(left.positions)
        for held in left.positions:
            side = "long" if held.quantity > 0 else "short"
            items.append(f"position {_plain(held.symbol)} {side} {abs(held.quantity):.10g}")
    elif left.position_count > 0:
        positions = left.position_count
        items.append(f"{_count(positions, 'position')} not listed (the runtime did not answer)")
    if left.orders is not None:
        orders = len(left.orders)
        for order in left.orders:
            price = f" @ {order.price:.10g}" if order.price is not None else ""
            items.append(
                f"order {_plain(order.symbol)} {_plain(order.side, 8)} "
                f"{_plain(order.order_type, 16)} {order.quantity:.10g}{price}"
            )
    elif left.order_count > 0:
        orders = left.order_count
        items.append(f"{_count(orders, 'working order')} not listed (the runtime did not answer)")
    if not items:
        return None
    where = (
        "at the venue: close or cancel them there"
        if mode == "live"
        else f"in its {_plain(mode or 'unknown', 16)} runtime (no venue holds them)"
    )
    head = (
        f"deleted with {_count(positions, 'position')} and {_count(orders, 'working order')} "
        f"left open {where} ({why}); the journal goes with the bot, so this is their record: "
    )
    shown: list[str] = []
    for item in items:
        if sum(len(x) + 2 for x in shown) + len(item) > _EVENT_LIST_CHARS:
            break
        shown.append(item)
    more = len(items) - len(shown)
    tail = f"; and {more} more (the operator's log lists them all)" if more else ""
    return head + "; ".join(shown) + tail, head + "; ".join(items)


async def _left_open(
    ctx: OperatorContext, body: kopf.Body, snapshot: RuntimeSnapshot | None
) -> LeftOpen:
    """What the stopped runtime still holds: listed with the read token when it answers, else
    the counts of its last answer, else the counts the status last recorded."""
    if snapshot is None:
        recorded = BotStatus.read(dict(body.get("status") or {}))
        return LeftOpen(None, None, recorded.open_positions or 0, recorded.open_orders or 0)
    left = LeftOpen(None, None, snapshot.open_positions, snapshot.open_orders)
    if snapshot.open_positions == 0 and snapshot.open_orders == 0:
        return left
    meta = body["metadata"]
    try:
        tokens = await ctx.bot_tokens(meta.get("namespace", "default"), meta["name"])
        if tokens is None:
            return left
        # The generated stub is typed for sync channels; on an aio channel each call is awaitable.
        stub: Any = pb_grpc.RuntimeServiceStub(
            ctx.runtime.channel(runtime_address(meta, ctx.settings))  # type: ignore[arg-type]
        )
        auth = (("authorization", f"Bearer {tokens.read}"),)
        timeout = ctx.runtime.timeout
        held: pb.ListPositionsResponse = await stub.ListPositions(
            pb.ListPositionsRequest(), metadata=auth, timeout=timeout
        )
        working: pb.ListOrdersResponse = await stub.ListOrders(
            pb.ListOrdersRequest(include_closed=False), metadata=auth, timeout=timeout
        )
    except Exception:  # never block deletion: the counts are reported instead
        return left
    return LeftOpen(
        positions=tuple(HeldPosition(p.symbol, p.quantity) for p in held.positions),
        orders=tuple(
            WorkingOrder(
                o.symbol, o.side, o.order_type, max(0.0, o.quantity - o.filled),
                o.price if o.HasField("price") else None,
            )
            for o in working.orders
        ),
    )  # fmt: skip


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def finalize(
    body: kopf.Body, meta: kopf.Meta, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    """Stop the runtime (bounded), report what it leaves open, then let the objects go."""
    ctx = context(memo)
    problem, snapshot, flatten = await _stop_runtime(ctx, body)
    if problem:
        event(
            body,
            warning=True,
            reason="RuntimeUnreachable",
            message=f"could not stop the runtime cleanly ({problem}); deleting anyway",
        )
    else:
        event(body, reason="Stopped", message="runtime stopped; deleting its objects")
    # Positions and orders a deletion leaves behind: nothing else records them once the
    # journal's volume goes with the bot (issue: positions orphaned without a trace).
    if problem:
        why = "the runtime could not be stopped cleanly"
    elif flatten:
        why = "the flatten did not finish"
    else:
        why = "spec.onStop.flattenPositions is false"
    report = left_open_report(
        await _left_open(ctx, body, snapshot),
        mode=str((body.get("spec") or {}).get("mode") or ""),
        why=why,
    )
    if report is not None:
        message, line = report
        event(body, warning=True, reason="PositionsLeftOpen", message=message)
        logger.warning(f"deleted: {line}")
    ctx.forget(meta.get("namespace", "default"), meta["name"])
    ctx.timer_controls.pop(str(meta.get("uid") or ""), None)
    await ctx.runtime.drop(_address_or_empty(meta, ctx.settings))
    forget_phase(str(meta.get("uid")))


def _address_or_empty(meta: Mapping[str, Any], settings: OperatorSettings) -> str:
    try:
        return runtime_address(meta, settings)
    except Exception:
        return ""


# --- admission ----------------------------------------------------------------------------------


def validate(
    body: kopf.Body,
    old: kopf.Body | None = None,
    bot_accounts: kopf.Index[str, BotAccount] | None = None,
    **_: Any,
) -> None:
    """Refuse a TradingBot the runtime would refuse, or that would trade a symbol another bot
    trades on the same venue account, naming every offending field (HTTP 422)."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    mode = str((body.get("spec") or {}).get("mode") or "")
    said = labels.get(MODE_LABEL)
    if said is not None and said != mode:
        raise kopf.AdmissionError(
            f"metadata.labels.{MODE_LABEL}: says {said!r} but spec.mode is {mode!r}; the label "
            "is set from spec.mode (it decides whether admission fails open)",
            code=admission.INVALID,
        )
    others = _namespace_bots(bot_accounts, body)
    admission.admit(body, admission.default_registry(), old, others)


def label_mode(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Mutating webhook: ``tradefleet.io/mode`` = ``spec.mode``, so that the validating webhook
    for live bots (and unlabelled ones) fails closed and the others' fail open."""
    mode = (body.get("spec") or {}).get("mode")
    labels = (body.get("metadata") or {}).get("labels") or {}
    if isinstance(mode, str) and mode and labels.get(MODE_LABEL) != mode:
        patch.metadata.labels[MODE_LABEL] = mode


#: Set by the mutating webhook from ``spec.mode``.
MODE_LABEL = "tradefleet.io/mode"
#: Which bots' admission fails open when the webhook cannot answer: paper and backtest bots
#: (an operator outage must not stop research); live bots, and bots not labelled yet, fail
#: closed (nothing reaches real money unchecked). The chart's admission policy keeps the label
#: equal to ``spec.mode`` when the mutating webhook cannot run (see :func:`register_admission`).
FAIL_OPEN_MODES = ("paper", "backtest")


def register_admission(registry: kopf.OperatorRegistry | None = None) -> None:
    """Register the admission handlers (only when ``main`` serves the webhook: kopf stops the
    whole operator when admission handlers exist but no admission server is configured).

    kopf registers them in one Validating- and one MutatingWebhookConfiguration: the mutating
    ``label-mode`` (fails open: a missing label fails closed below) and one validating webhook
    per label value, so that the API server's ``failurePolicy`` is ``Fail`` for live and
    unlabelled bots and ``Ignore`` for paper and backtest bots.

    The label, not ``spec.mode``, selects the webhook (an objectSelector sees labels only, and
    kopf has no matchConditions), and while the operator is down nothing here runs: a live bot
    still labelled ``paper`` would meet only ``validate-paper``. The chart's
    ValidatingAdmissionPolicy (``templates/admission-policy.yaml``) refuses, inside the API
    server, a label that disagrees with ``spec.mode``, so every live spec meets ``validate-live``
    or ``validate-unlabelled`` (``tests/operator/test_admission_fail_closed.py``).
    """
    operations: list[Literal["CREATE", "UPDATE"]] = ["CREATE", "UPDATE"]
    kopf.on.mutate(
        GROUP, VERSION, PLURAL, id="label-mode", operations=operations,
        ignore_failures=True, registry=registry,
    )(label_mode)  # fmt: skip
    kopf.on.validate(
        GROUP, VERSION, PLURAL, id="validate-live", operations=operations,
        labels={MODE_LABEL: "live"}, registry=registry,
    )(validate)  # fmt: skip
    kopf.on.validate(
        GROUP, VERSION, PLURAL, id="validate-unlabelled", operations=operations,
        labels={MODE_LABEL: kopf.ABSENT}, registry=registry,
    )(validate)  # fmt: skip
    for mode in FAIL_OPEN_MODES:
        kopf.on.validate(
            GROUP, VERSION, PLURAL, id=f"validate-{mode}", operations=operations,
            labels={MODE_LABEL: mode}, ignore_failures=True, registry=registry,
        )(validate)  # fmt: skip


@kopf.on.probe(id="webhookCertificate")
def webhook_certificate(memo: kopf.Memo, **_: Any) -> str:
    """Liveness: a self-made webhook certificate past its rotation age fails the probe, so
    the kubelet restarts the operator, which makes a new one (see ``webhook_tls``)."""
    tls = memo.get("webhook_tls")
    if isinstance(tls, webhook_tls.WebhookTls):
        if tls.needs_rotation():
            raise RuntimeError("the webhook certificate is due for rotation: restart")
        return tls.not_after.isoformat()
    return "none"
