"""The kopf handlers of ``tradingbots.tradefleet.io/v1alpha1`` (handlers only).

What each object looks like is :mod:`tradefleet_operator.objects` (pure functions); what the
runtime reports and how it is steered is :mod:`tradefleet_operator.status`. Here:

- create / update / resume → :func:`reconcile`: steer the runtime first (pause, halt, resume,
  risk-lock reset: a fleet stop must not wait for object writes), then create-or-adopt-and-patch
  every desired object. A create that meets ``409 AlreadyExists`` (a retry of a half-done pass,
  or an object someone made first) adopts and patches the existing object. The api-token
  Secret's tokens are generated once; an existing Secret is read, never rotated. Nothing is
  written when nothing differs (``objects.needs_update``), the status included.
- delete → :func:`finalize`: ask the runtime to stop (``EmergencyStop``, flattening as
  ``spec.onStop.flattenPositions`` says), wait a bounded time, then let kopf drop the finalizer
  (owner references cascade the deletion). An unreachable runtime does not block deletion.
- :func:`validate`: the admission webhook (``admission.validate_trading_bot``), registered by
  :func:`register_admission` when the operator serves the webhook.
- the status timer lives in :mod:`tradefleet_operator.status` and is registered by importing it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf

from tradefleet_operator import admission, objects
from tradefleet_operator.fleet import KubeApi, KubeError, object_path
from tradefleet_operator.settings import CONFIG_HASH_ANNOTATION, OperatorSettings
from tradefleet_operator.status import (
    GROUP,
    PLURAL,
    VERSION,
    OperatorContext,
    Phase,
    RuntimeCallError,
    RuntimeClients,
    advance,
    context,
    control_token,
    event,
    forget_phase,
    now_iso,
    poll_status,
    reachable_status,
    record_phase,
    runtime_address_of,
    set_condition,
    status_changes,
    steer,
)
from tradefleet_operator.tracing import end_reconcile_span, start_reconcile_span
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

__all__ = ["finalize", "poll_status", "reconcile", "register_admission", "startup", "validate"]

FINALIZER = "tradefleet.io/finalizer"

try:  # prometheus_client is a dependency of the runtime; metrics are optional here
    from prometheus_client import Counter, Histogram

    RECONCILES = Counter(
        "tradefleet_operator_reconciles", "Reconcile passes by outcome", ["outcome"]
    )
    RECONCILE_SECONDS = Histogram(
        "tradefleet_operator_reconcile_seconds",
        "Duration of one reconcile pass",
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )
except ValueError:  # registered twice (module reloaded in tests)
    from prometheus_client import REGISTRY

    RECONCILES = REGISTRY._names_to_collectors["tradefleet_operator_reconciles"]  # type: ignore[assignment]
    RECONCILE_SECONDS = REGISTRY._names_to_collectors["tradefleet_operator_reconcile_seconds"]  # type: ignore[assignment]


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
    admission = options.get("admission")
    if admission:
        settings.admission.server = kopf.WebhookServer(
            addr="0.0.0.0",
            port=int(admission["port"]),
            host=admission.get("host"),
            certfile=admission.get("certfile"),
            pkeyfile=admission.get("pkeyfile"),
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


def _owner_reference_missing(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    wanted = {ref.get("uid") for ref in desired.get("metadata", {}).get("ownerReferences", [])}
    have = {ref.get("uid") for ref in actual.get("metadata", {}).get("ownerReferences") or []}
    return not wanted <= have


def _patch_for(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any] | None:
    """What to send so that ``actual`` becomes ``desired`` (owner references included)."""
    patch = objects.needs_update(desired, actual) or {}
    if _owner_reference_missing(desired, actual):
        refs = list(actual.get("metadata", {}).get("ownerReferences") or [])
        known = {ref.get("uid") for ref in refs}
        refs += [
            ref for ref in desired["metadata"]["ownerReferences"] if ref.get("uid") not in known
        ]
        patch.setdefault("metadata", {})["ownerReferences"] = refs
    return patch or None


def _label(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


async def apply_object(
    kube: KubeApi,
    desired: Mapping[str, Any],
    actual: Mapping[str, Any] | None = None,
    *,
    create_first: bool = False,
) -> tuple[str, Mapping[str, Any] | None]:
    """Create, or adopt and patch, one object. Returns what happened ("created", "adopted",
    "patched", "unchanged") and the object as it was before (None if created).

    ``create_first`` skips the read when the object is expected not to exist (a bot never
    reconciled before): one request instead of two, and a 409 still ends in adopt-and-patch.
    """
    path = object_path(desired)
    if actual is None and not create_first:
        actual = await kube.get(path)
    if actual is None:
        try:
            await kube.create(desired)
            return "created", None
        except KubeError as error:
            if error.status != 409:
                raise
        # AlreadyExists: made by an earlier, half-done pass (or by someone else): adopt it.
        actual = await kube.get(path)
        if actual is None:
            raise KubeError(409, "Conflict", f"{_label(desired)} exists and vanished; retrying")
    patch = _patch_for(desired, actual)
    if patch is None:
        return "unchanged", actual
    await kube.patch(path, patch)
    adopted = _owner_reference_missing(desired, actual)
    return ("adopted" if adopted else "patched"), actual


def _pod_hash(deployment: Mapping[str, Any] | None) -> str | None:
    if deployment is None:
        return None
    template = deployment.get("spec", {}).get("template", {})
    annotations = template.get("metadata", {}).get("annotations") or {}
    value = annotations.get(CONFIG_HASH_ANNOTATION)
    return str(value) if value is not None else None


async def reconcile_objects(
    ctx: OperatorContext, body: kopf.Body, config_hash: str, *, fresh: bool = False
) -> dict[str, list[str]]:
    """Make every desired object exist as desired; returns object labels by outcome.

    ``fresh``: the bot was never reconciled, so its objects are created without reading them
    first (a 409 still adopts). The api-token Secret goes first: its tokens are the existing
    Secret's when there is one, never new ones.
    """
    meta = body["metadata"]
    namespace, name = meta.get("namespace", "default"), meta["name"]
    secret_path = f"/api/v1/namespaces/{namespace}/secrets/{objects.api_token_secret_name(name)}"
    outcomes: dict[str, list[str]] = {}
    before: dict[str, Mapping[str, Any] | None] = {}

    def desired_with(tokens: objects.ApiTokens) -> list[dict[str, Any]]:
        found = objects.desired_objects(body, ctx.settings, config_hash, tokens)
        kopf.adopt(found, owner=body)
        return found

    def record(obj: Mapping[str, Any], outcome: str, previous: Mapping[str, Any] | None) -> None:
        outcomes.setdefault(outcome, []).append(_label(obj))
        before[_label(obj)] = previous

    secret = None if fresh else await ctx.kube.get(secret_path)
    tokens = objects.tokens_from_secret(secret) or objects.ApiTokens.generate()
    desired = desired_with(tokens)
    token_secret = next(obj for obj in desired if obj["kind"] == "Secret")
    if secret is None:
        try:
            await ctx.kube.create(token_secret)
            record(token_secret, "created", None)
        except KubeError as error:
            if error.status != 409:
                raise
            secret = await ctx.kube.get(secret_path)
            if secret is None:
                raise KubeError(
                    409, "Conflict", "the api-token Secret vanished; retrying"
                ) from error
            existing = objects.tokens_from_secret(secret)
            if existing is not None:  # never rotate: the runtime may already use these
                tokens = existing
                desired = desired_with(tokens)
                token_secret = next(obj for obj in desired if obj["kind"] == "Secret")
    if secret is not None:
        outcome, previous = await apply_object(ctx.kube, token_secret, secret)
        record(token_secret, outcome, previous)
    ctx.tokens[(namespace, name)] = tokens.control

    async def one(obj: Mapping[str, Any]) -> None:
        outcome, previous = await apply_object(ctx.kube, obj, create_first=fresh)
        record(obj, outcome, previous)

    rest = [obj for obj in desired if obj["kind"] not in ("Secret", "Deployment")]
    await asyncio.gather(*(one(obj) for obj in rest))
    for obj in desired:
        if obj["kind"] == "Deployment":
            await one(obj)
            old = _pod_hash(before.get(_label(obj)))
            if old is not None and old != config_hash:
                event(
                    body,
                    reason="ConfigChanged",
                    message=f"config hash {old} → {config_hash}: rolling out the runtime pod",
                )
    return outcomes


# Spec fields applied to the running bot over gRPC; no child object depends on them.
LIVE_FIELDS = frozenset({("spec", "paused"), ("spec", "emergencyStop")})


def live_only_change(reason: str, diff: Any) -> bool:
    """True for an update that changed nothing but live fields (and metadata)."""
    if reason != "update" or not diff:
        return False
    for item in diff:
        path = tuple(item[1])
        if path[:1] == ("metadata",):
            continue
        if path[:2] not in LIVE_FIELDS and path not in {("spec",)}:
            return False
        if path == ("spec",):
            return False
    return True


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
    **_: Any,
) -> None:
    """Bring the runtime and every child object to the spec; write only what changed."""
    started = time.perf_counter()
    ctx = context(memo)
    current: dict[str, Any] = dict(status)
    new: dict[str, Any] = dict(current)
    generation = meta.get("generation")
    outcome = "ok"
    span = start_reconcile_span(str(meta.get("name")), str(meta.get("namespace")), generation)
    try:
        # The runtime first: a halt must wait for nothing (not even the spec's hash).
        steered, snapshot = await steer(ctx, body, current, logger=logger)
        new.update(steered)
        if snapshot is not None:
            new = reachable_status(new, snapshot, generation, now_iso())

        try:
            config_hash = objects.config_hash(body)
        except Exception as error:  # an invalid spec (admission would have refused it)
            outcome = "invalid"
            event(body, warning=True, reason="InvalidSpec", message=str(error)[:1000])
            new["phase"] = advance(current.get("phase"), Phase.FAILED).value
            new["observedGeneration"] = generation
            new["conditions"] = set_condition(
                new.get("conditions"), "Reconciled", False, "InvalidSpec", str(error)[:1000],
                generation, now_iso(),
            )  # fmt: skip
            return

        if live_only_change(reason, diff) and current.get("configHash") == config_hash:
            # Only live fields changed (pause, emergency stop): steered over gRPC above, and no
            # object depends on them. Skipping the object pass keeps a fleet-wide stop fast.
            new["observedGeneration"] = generation
            return
        try:
            fresh = not current.get("configHash")  # never reconciled: create without reading
            outcomes = await reconcile_objects(ctx, body, config_hash, fresh=fresh)
        except KubeError as error:
            if error.temporary:
                outcome = "retry"
                raise kopf.TemporaryError(str(error), delay=2) from error
            outcome = "failed"
            event(body, warning=True, reason="ReconcileFailed", message=str(error)[:1000])
            new["phase"] = advance(current.get("phase"), Phase.FAILED).value
            new["observedGeneration"] = generation
            new["conditions"] = set_condition(
                new.get("conditions"), "Reconciled", False, error.reason or "ApiError",
                str(error)[:1000], generation, now_iso(),
            )  # fmt: skip
            return
        made = outcomes.get("created", []) + outcomes.get("adopted", [])
        if outcomes.get("created"):
            event(body, reason="Created", message="created " + ", ".join(made))
        elif outcomes.get("adopted"):
            event(body, reason="Adopted", message="adopted " + ", ".join(made))
        if outcomes.get("patched"):
            event(body, reason="Updated", message="updated " + ", ".join(outcomes["patched"]))
        if not new.get("phase"):
            new["phase"] = Phase.PENDING.value
        new["observedGeneration"] = generation
        new["configHash"] = config_hash
        new["conditions"] = set_condition(
            new.get("conditions"), "Reconciled", True, "UpToDate",
            "every object matches the spec", generation, now_iso(),
        )  # fmt: skip
    finally:
        RECONCILES.labels(outcome).inc()
        RECONCILE_SECONDS.observe(time.perf_counter() - started)
        end_reconcile_span(span, outcome)
        changes = status_changes(current, new)
        if changes:
            patch.status.update(changes)
        if new.get("phase"):
            record_phase(str(meta.get("uid")), str(new["phase"]))


# --- delete -------------------------------------------------------------------------------------


async def _stop_runtime(ctx: OperatorContext, body: kopf.Body, logger: kopf.Logger) -> str:
    """EmergencyStop, then wait (bounded) until the runtime is flat when flattening."""
    meta = body["metadata"]
    namespace, name = meta.get("namespace", "default"), meta["name"]
    flatten = bool((body.get("spec", {}).get("onStop") or {}).get("flattenPositions", False))
    address = runtime_address_of(body, ctx.settings)
    deadline = time.monotonic() + ctx.stop_timeout
    token = await control_token(ctx, namespace, name)
    if token is None:
        return "no api-token Secret"
    request = pb.EmergencyStopRequest(
        reason="TradingBot deleted", flatten=flatten, actor="tradefleet-operator"
    )
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timed out"
        try:
            snapshot = await ctx.runtime.call(
                address, token, "EmergencyStop", request, timeout=min(remaining, 5.0)
            )
        except RuntimeCallError as error:
            if not error.unreachable or deadline - time.monotonic() < 1:
                return str(error)
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            continue
        if snapshot.halted and (not flatten or snapshot.open_positions == 0):
            return ""
        await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def finalize(
    body: kopf.Body, meta: kopf.Meta, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    """Stop the runtime (bounded), then let the objects go with the TradingBot."""
    ctx = context(memo)
    problem = await _stop_runtime(ctx, body, logger)
    if problem:
        event(
            body,
            warning=True,
            reason="RuntimeUnreachable",
            message=f"could not stop the runtime cleanly ({problem}); deleting anyway",
        )
    else:
        event(body, reason="Stopped", message="runtime stopped; deleting its objects")
    ctx.forget(meta.get("namespace", "default"), meta["name"])
    await ctx.runtime.drop(_address_or_empty(body, ctx.settings))
    forget_phase(str(meta.get("uid")))


def _address_or_empty(body: kopf.Body, settings: OperatorSettings) -> str:
    try:
        return objects.runtime_address(body, settings)
    except Exception:
        return ""


# --- admission ----------------------------------------------------------------------------------


def validate(body: kopf.Body, **_: Any) -> None:
    """Refuse a TradingBot the runtime would refuse, naming every offending field (HTTP 422)."""
    admission.admit(body, admission.default_registry())


def register_admission(registry: kopf.OperatorRegistry | None = None) -> None:
    """Register :func:`validate` as a ``@kopf.on.validate`` handler.

    Only when the webhook is served (``main`` with ``--admission-port``): kopf stops the whole
    operator when admission handlers exist but no admission server is configured.
    """
    kopf.on.validate(
        GROUP,
        VERSION,
        PLURAL,
        id="validate-tradingbot",
        operations=["CREATE", "UPDATE"],
        registry=registry,
    )(validate)
