"""Making a bot's child objects exist as desired: create, or adopt and patch (I/O).

A create that meets ``409 AlreadyExists`` (a retry of a half-done pass, or an object made for
the bot beforehand) adopts and patches the existing object — but only one that is the bot's
already: owned by this TradingBot, or carrying its labels (``tradefleet.io/bot=<name>`` and
``app.kubernetes.io/managed-by=tradefleet-operator``; a deleted predecessor's children carry
them). Anything else of that name (a team's ``Service web`` when a bot is called ``web``) is
left untouched, and :class:`NameTaken` names it; the bot's Deployment (its pod) is then neither
created nor changed, so no half of the bot runs. Nor is it rolled (or made) onto a credentials
Secret that does not exist (:class:`CredentialsSecretMissing`, asked for the Secret's metadata
only): its pod could never start. The api-token Secret's tokens are generated
once; an existing Secret is read, never rotated. Nothing is written when nothing differs
(``object_diff.needs_update``).

A pass writes a bot's new spec whole or not at all. What kube-apiserver would refuse in the
objects (``quantity.kubernetes_refusals``: ``memory: lots``, a request above its limit) is found
before anything is written (:class:`SpecRefused`). A refusal no check foresaw (an admission
policy, a quota, a claim that may not shrink) can still come after the ConfigMap was rewritten,
and the running pod would then restart on a config never rolled out: the ConfigMap is put back
to the config the Deployment's pod template was rolled out with (:func:`_settle_config`), which
the ConfigMap itself keeps beside a newer one (``objects.keep_rolled_out``: it survives a lost
answer and an operator restart). A write answered without saying whether it was made (a 5xx)
is retried as it is, until a retry reads the Deployment still on the old config and its own
Deployment write fails so again: that earlier write did not land, and the change is put back
as refused (:class:`NotLanded`). A pass that fails before it sends its Deployment write (another
object's 5xx) leaves no write of unknown outcome, and is put back so at once, unless an earlier
Deployment write of the change is still of unknown outcome. The retry's own write may still
land after the put-back (a timeout "still processing"): the pod then starts on the put-back
config under the new config hash, and the next pass, finding the ConfigMap behind its
Deployment, rewrites it and rolls the pod again (``objects.config_roll``), with a
``ConfigMapBehind`` Warning; a ConfigMap only written ahead of a Deployment that never took
the change (the spec put back meanwhile) is put back to the spec's config without a roll only
when a runtime report taken after the write ahead proves the pod runs the template's config,
else rolled once. Every put-back of a config written ahead is recorded on the ConfigMap
(``objects.PUT_BACK_ANNOTATION``), and a pod whose runtime reports, after its template was
written, one of those configs is rolled once (``RuntimeConfigDiffers``); no other hash rolls a
pod (a person's ``UpdateParams``, a pause at the pod's start, an image hashing otherwise).
Either way the ConfigMap's ``bot.yaml`` takes the spec's live fields (pause, emergency stop),
also where no copy of the rolled-out config is kept (:class:`HalfApplied`) and for a spec the
model refuses (:func:`settle_unparsed`): a pod that restarts reads its halt there before any
gRPC call reaches it. Not "ConfigMap last": the Deployment would then roll a new pod that may
start on the old ConfigMap before it is written, labelled with the new config's hash, the same
half in reverse; and a ConfigMap per config (the pod template naming it) would change every
bot's pod template, rolling every pod once at the upgrade.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from tradefleet_operator import objects
from tradefleet_operator.bot_api import LiveSpec, TradingBot, plain
from tradefleet_operator.context import OperatorContext, event
from tradefleet_operator.k8s_api import KubeApi, KubeError, api_path, object_path
from tradefleet_operator.names import api_token_secret_name, config_map_name
from tradefleet_operator.object_diff import needs_update
from tradefleet_operator.quantity import kubernetes_refusals
from tradefleet_operator.settings import (
    BOT_LABEL,
    CONFIG_FILE,
    CONFIG_HASH_ANNOTATION,
    MANAGED_BY,
)
from tradefleet_operator.tokens import ApiTokens, tokens_from_secret
from tradefleet_runtime.errors import FieldError

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"


class NameTaken(KubeError):
    """Objects of a bot's child names exist and are not the bot's: left untouched."""

    def __init__(self, taken: list[str], bot: str) -> None:
        named = " and ".join(label.replace("/", " ", 1) for label in taken)
        one = len(taken) == 1
        message = (
            f"{named} {'exists and is' if one else 'exist and are'} not this bot's; rename the "
            f"bot or delete {'it' if one else 'them'} (or, if made for this bot, label "
            f"{'it' if one else 'them'} {BOT_LABEL}={bot}, {MANAGED_BY_LABEL}={MANAGED_BY})"
        )
        super().__init__(409, "NameTaken", message)
        self.taken = list(taken)

    def __str__(self) -> str:
        return self.message

    @property
    def temporary(self) -> bool:
        return False  # a person must act: retrying changes nothing until then


class SpecRefused(KubeError):
    """The API server would refuse objects made from the spec: none was written."""

    def __init__(self, errors: list[FieldError]) -> None:
        named = "; ".join(str(error) for error in errors)
        message = (
            "the API server would refuse the bot's objects made from this spec, so none of it "
            "was applied (the bot runs on as it was rolled out; its ConfigMap takes only the "
            f"spec's pause and emergency stop): {named}"
        )
        super().__init__(422, "SpecRefused", message)
        self.errors = list(errors)

    def __str__(self) -> str:
        return self.message

    @property
    def temporary(self) -> bool:
        return False  # the spec must change: retrying changes nothing


class HalfApplied(KubeError):
    """A change was refused, and the ConfigMap could not be brought to the config the running
    pod was rolled out with and the spec's live fields: a restart of the pod may start on a
    config never rolled out, or without the spec's pause or halt. ``live``: the spec's live
    fields did reach its ``bot.yaml`` (only the config could not be put back)."""

    def __init__(self, config_map: str, why: str, cause: KubeError, *, live: bool = False) -> None:
        if live:
            said = (
                f"could not be put back to the config the running pod was rolled out with "
                f"({why}): a restart of the pod may start on another config (its bot.yaml took "
                "the spec's pause and emergency stop)"
            )
        else:
            said = (
                "could not be put back to the config the running pod was rolled out with, with "
                f"the spec's pause and emergency stop ({why}): a restart of the pod may start "
                "on another config, or without them"
            )
        super().__init__(
            cause.status, "HalfApplied", f"{cause.message}; and {config_map} {said}; retrying"
        )

    def __str__(self) -> str:
        return self.message

    @property
    def temporary(self) -> bool:
        return True  # put back (or the spec applied) at the next pass


class NotLanded(KubeError):
    """A Deployment write of a change answered without saying whether it was made (a 5xx: a
    validating webhook down with ``failurePolicy: Fail``; no answer), after an earlier pass's
    Deployment write of the same change failed so, and the Deployment read at this pass still
    runs another config: that earlier write did not land. Or (``sent`` False) a pass that
    failed so before it sent its Deployment write, with no earlier one of unknown outcome: no
    write of the change can land. Handled as a refusal (the ConfigMap is put back,
    :func:`_settle_config`), and retried: the API server may take it next time. Only the
    Deployment's own failures make an earlier write's outcome unknown."""

    def __init__(
        self, cause: KubeError, deployment: str, running: str, *, sent: bool = True
    ) -> None:
        if sent:
            said = (
                f"again: Deployment {deployment} still runs config {running}, so an earlier "
                "write of this change did not land either"
            )
        else:
            said = (
                f"before Deployment {deployment} was written: it runs config {running}, and no "
                "write of this change to it is pending"
            )
        message = f"{cause.message} ({said})"
        super().__init__(cause.status, "NotApplied", message)
        self.cause = cause

    def __str__(self) -> str:
        return self.message

    @property
    def temporary(self) -> bool:
        return True  # a webhook back up, the API server less busy: the next pass applies it


class CredentialsSecretMissing(KubeError):
    """The Secret ``spec.broker.credentialsSecret`` names does not exist in the bot's namespace
    (learnt from its metadata alone, never its data): a pod rolled onto it could never start
    (the kubelet cannot mount it), and the ``Recreate`` rollout stops the running pod first.

    Raised only when the pass would change the pod: a bot whose Deployment runs another config
    gets nothing of the spec (as for :class:`SpecRefused`: its pod runs on as it was rolled
    out); one whose pod runs this config gets its other objects, not a pod template write that
    would replace the pod (``same_config``); one whose pod template is the spec's already is no
    hold at all (the status timer's ``CredentialsSecretFound`` says the Secret is gone).
    ``mounted`` names the Secret its pod template mounts. A bot without a Deployment (``made``:
    its first pass) gets its other objects, not the Deployment. Retried by the handler: creating
    the Secret rolls the bot, with no other edit."""

    def __init__(
        self,
        secret: str,
        namespace: str,
        *,
        made: bool,
        mounted: str | None = None,
        same_config: bool = False,
    ) -> None:
        self.secret = secret
        #: No Deployment of the bot's yet: no pod of its own runs (the handler's retry delay).
        self.made = made
        #: The Secret the bot's running pod mounts (its Deployment's pod template), if any: the
        #: account it still trades on while held (``status.credentialsSecretInUse``).
        self.mounted = None if made else mounted
        self.head = missing_secret_head(secret, namespace)
        fix = (
            f"create the Secret {secret!r} (the bot is then rolled onto it, with no other "
            "edit), or set spec.broker.credentialsSecret to a Secret that exists"
        )
        if made:
            said = (
                "the bot's other objects are made, its Deployment is not (its pod could not "
                "mount the Secret and would never start): it is made once the Secret exists; "
            )
        elif same_config:
            said = (
                "the bot's Deployment is left as it is (its pod runs this spec's config, but "
                "writing it would replace the pod by one that could not mount the Secret); the "
                "bot's next pod (after a restart, a drain, an eviction) will not start either; "
                "its other objects are at the spec: "
            )
        elif mounted == secret:
            said = (
                "the bot's Deployment is left as it is (not rolled: a new pod could not mount "
                "the Secret); a pod running now keeps the files it mounted, but the bot's next "
                "pod (after a restart, a drain, an eviction) will not start; nothing of this "
                "spec is applied until the Secret exists: "
            )
        else:
            runs = f" (credentials from Secret {mounted!r})" if mounted else ""
            said = (
                "the bot's Deployment is left as it is (not rolled: the Recreate rollout would "
                "stop the running pod for one that could not mount the Secret); its pod runs "
                f"on as it was rolled out{runs}, and nothing of this spec is applied until the "
                "Secret exists: "
            )
        super().__init__(404, "CredentialsSecretMissing", f"{self.head}: {said}{fix}")

    def __str__(self) -> str:
        return self.message

    @property
    def temporary(self) -> bool:
        return False  # a person must make the Secret; the handler looks again meanwhile


def missing_secret_head(secret: str, namespace: str) -> str:
    """The start of every message about a missing credentials Secret: the field and the
    Secret's name (never anything of its data)."""
    return (
        f"spec.broker.credentialsSecret: Secret {secret!r} does not exist in namespace "
        f"{namespace!r}"
    )


async def missing_credentials(ctx: OperatorContext, bot: TradingBot) -> str | None:
    """The name of the credentials Secret the bot's pod template would mount when it does not
    exist in the bot's namespace; None when it exists or none is named. Asked for the Secret's
    metadata only (:meth:`KubeApi.exists`): its data never reaches the operator."""
    secret = objects.credentials_secret_name(bot)
    if secret is None:
        return None
    found = await ctx.kube.exists(api_path("v1", "secrets", bot.namespace, secret))
    return None if found else secret


async def mounted_credentials_of(
    ctx: OperatorContext, namespace: str, name: str, uid: str
) -> str | None:
    """The credentials Secret the bot's Deployment's pod template mounts: the one its pod was
    rolled out with. None when there is no Deployment of the bot's, or it mounts none."""
    deployment = await ctx.kube.get(api_path("apps/v1", "deployments", namespace, name))
    if deployment is None or not _is_bots_child(deployment, uid, name):
        return None
    return objects.mounted_credentials(deployment)


@dataclass
class _PassSeen:
    """What an object pass read before it wrote, and how far it got: the Deployment's config
    hash (None: no Deployment of the bot's), and whether the Deployment write was sent (an
    error from then on is that write's)."""

    running: str | None = None
    deployment_sent: bool = False


@dataclass(frozen=True)
class _Settled:
    """What :func:`_put_back` found and did."""

    running: str  # the config hash of the Deployment's pod template
    landed: bool  # the Deployment runs the change's config
    kept: bool  # the config the pod was rolled out with was found (in bot.yaml or beside it)
    put_back: bool  # bot.yaml held another config than the pod's, and now holds the pod's
    live: bool  # bot.yaml carries the spec's live fields


def is_the_bots(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    """``actual`` (an object of the name ``desired`` has) belongs to the bot: owned by this
    TradingBot, or labelled as its child by this operator."""
    ours = {ref.get("uid") for ref in desired.get("metadata", {}).get("ownerReferences", [])}
    meta = actual.get("metadata", {})
    if any(ref.get("uid") in ours for ref in meta.get("ownerReferences") or []):
        return True
    have = meta.get("labels") or {}
    want = desired.get("metadata", {}).get("labels") or {}
    return bool(want.get(BOT_LABEL)) and all(
        have.get(key) == want.get(key) for key in (BOT_LABEL, MANAGED_BY_LABEL)
    )


def _owner_reference_missing(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    wanted = {ref.get("uid") for ref in desired.get("metadata", {}).get("ownerReferences", [])}
    have = {ref.get("uid") for ref in actual.get("metadata", {}).get("ownerReferences") or []}
    return not wanted <= have


def _patch_for(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any] | None:
    """What to send so that ``actual`` becomes ``desired`` (owner references included).

    An object controlled by an earlier TradingBot of the same name (deleted, and its children
    not yet collected: delete then an immediate re-apply) is adopted: that stale controller
    reference is replaced, never added to (the API server refuses two controllers with 422).
    An object still being deleted, or controlled by anything else, is waited for
    (:class:`KubeError` 409, retried with backoff), never failed for good.
    """
    patch = needs_update(desired, actual) or {}
    if _owner_reference_missing(desired, actual):
        ours = desired["metadata"]["ownerReferences"]
        if actual.get("metadata", {}).get("deletionTimestamp"):
            raise KubeError(
                409, "Conflict", f"{_label(desired)} of an earlier bot is being deleted; waiting"
            )
        refs = []
        for ref in actual.get("metadata", {}).get("ownerReferences") or []:
            if not ref.get("controller"):
                refs.append(ref)
            elif _earlier_self(ref, ours):
                continue  # the deleted predecessor's reference: replaced by ours
            else:
                raise KubeError(
                    409,
                    "Conflict",
                    f"{_label(desired)} is controlled by {ref.get('kind')}/{ref.get('name')}; "
                    "waiting for it to let go",
                )
        known = {ref.get("uid") for ref in refs}
        refs += [ref for ref in ours if ref.get("uid") not in known]
        patch.setdefault("metadata", {})["ownerReferences"] = refs
    return patch or None


def _earlier_self(ref: Mapping[str, Any], ours: list[Mapping[str, Any]]) -> bool:
    """``ref`` names a TradingBot of the same name as ours, with another uid."""
    return any(
        ref.get("kind") == mine.get("kind")
        and ref.get("name") == mine.get("name")
        and str(ref.get("apiVersion", "")).split("/")[0]
        == str(mine.get("apiVersion", "")).split("/")[0]
        and ref.get("uid") != mine.get("uid")
        for mine in ours
    )


def _mutable_part(desired: Mapping[str, Any]) -> Mapping[str, Any]:
    """What may be patched on an existing object: a claim's spec is immutable but for its
    storage request (an existing claim keeps its access mode and class)."""
    if desired.get("kind") != "PersistentVolumeClaim":
        return desired
    spec = desired.get("spec") or {}
    return {**desired, "spec": {"resources": spec.get("resources") or {}}}


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
    "patched", "unchanged") and the object as it was before (None if created). Raises
    :class:`NameTaken` for an existing object that is not the bot's (:func:`is_the_bots`),
    without touching it.

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
    if not is_the_bots(desired, actual):
        bot = str(desired.get("metadata", {}).get("labels", {}).get(BOT_LABEL, ""))
        raise NameTaken([_label(desired)], bot)
    patch = _patch_for(_mutable_part(desired), actual)
    if patch is None:
        return "unchanged", actual
    if "resourceVersion" in actual.get("metadata", {}) and "ownerReferences" in patch.get(
        "metadata", {}
    ):
        # Optimistic concurrency when owners change: the collector may be deleting it now.
        patch["metadata"]["resourceVersion"] = actual["metadata"]["resourceVersion"]
    await kube.patch(path, patch)
    adopted = _owner_reference_missing(desired, actual)
    return ("adopted" if adopted else "patched"), actual


async def reconcile_config(
    ctx: OperatorContext, body: kopf.Body, config_map: dict[str, Any]
) -> dict[str, list[str]]:
    """Bring only the ConfigMap (``bot.yaml``, :func:`.objects.configmap`) to the spec: after a
    change of the live fields, which the runtime takes over gRPC, so that a restarted pod
    starts as the spec says."""
    desired = copy.deepcopy(config_map)
    kopf.adopt(desired, owner=body)
    outcome, _ = await apply_object(ctx.kube, desired)
    return {outcome: [_label(desired)]}


def _pod_hash(deployment: Mapping[str, Any] | None) -> str | None:
    if deployment is None:
        return None
    template = deployment.get("spec", {}).get("template", {})
    annotations = template.get("metadata", {}).get("annotations") or {}
    value = annotations.get(CONFIG_HASH_ANNOTATION)
    return str(value) if value is not None else None


def spec_refusals(bot: TradingBot) -> list[FieldError]:
    """What the API server would refuse in the bot's objects, named by the TradingBot's fields
    (the journal's size only when a claim is made)."""
    runtime = bot.spec.runtime
    size = None if runtime.journal.ephemeral else runtime.journal.size
    return kubernetes_refusals(plain(runtime.resources), size)


async def reconcile_objects(
    ctx: OperatorContext,
    body: kopf.Body,
    bot: TradingBot,
    config_hash: str,
    *,
    fresh: bool = False,
) -> dict[str, list[str]]:
    """Make every desired object exist as desired; returns object labels by outcome.

    Nothing of the spec is written when the API server would refuse one of them
    (:class:`SpecRefused`); that, or a write refused anyway, leaves the ConfigMap as the running
    pod was rolled out with, but for the spec's live fields (:func:`_settle_config`). ``fresh``:
    the bot was never reconciled, so its objects are created without reading them first (a 409
    still adopts).
    """
    seen = _PassSeen()
    try:
        refusals = spec_refusals(bot)
        if refusals:
            raise SpecRefused(refusals)
        outcomes = await _write_objects(ctx, body, bot, config_hash, seen, fresh=fresh)
    except KubeError as error:
        known = _seen_not_landed(ctx, bot, config_hash, seen, error)
        raise await _settle_config(ctx, bot, config_hash, known) from None
    ctx.unlanded.pop((bot.namespace, bot.name), None)
    return outcomes


def _seen_not_landed(
    ctx: OperatorContext, bot: TradingBot, config_hash: str, seen: _PassSeen, error: KubeError
) -> KubeError:
    """``error`` (a 5xx, no answer: not known to be refused) of a pass that read the
    Deployment on another config, as :class:`NotLanded` when no write of this config to the
    Deployment can still land: this pass's own Deployment write failed so after an earlier
    pass's did too (remembered: that earlier write did not land); or this pass failed before it
    sent its Deployment write, and no earlier one is remembered failing so (nothing of unknown
    outcome: the ConfigMap must not wait on a config no pod was rolled out with). Else
    ``error``, retried as it is: a first Deployment write of unknown outcome is remembered (one
    lost answer may have been a write made), and a remembered one is waited for."""
    if _refused(error) or seen.running is None or seen.running == config_hash:
        return error
    key = (bot.namespace, bot.name)
    pending = ctx.unlanded.get(key) == config_hash  # an earlier Deployment write's 5xx
    if not seen.deployment_sent:
        return error if pending else NotLanded(error, bot.name, seen.running, sent=False)
    if pending:
        return NotLanded(error, bot.name, seen.running)
    ctx.unlanded[key] = config_hash
    return error


async def _write_objects(
    ctx: OperatorContext,
    body: kopf.Body,
    bot: TradingBot,
    config_hash: str,
    seen: _PassSeen,
    *,
    fresh: bool,
) -> dict[str, list[str]]:
    """The writes of :func:`reconcile_objects` (``seen``: what they read before writing). The
    api-token Secret goes first: its tokens are the existing Secret's when there is one, never
    new ones. The Deployment goes last, once every other object took the spec."""
    namespace, name = bot.namespace, bot.name
    secret_path = api_path("v1", "secrets", namespace, api_token_secret_name(name))
    outcomes: dict[str, list[str]] = {}
    before: dict[str, Mapping[str, Any] | None] = {}

    def desired_with(tokens: ApiTokens) -> list[dict[str, Any]]:
        found = objects.desired_objects(bot, ctx.settings, config_hash, tokens)
        kopf.adopt(found, owner=body)
        return found

    def record(obj: Mapping[str, Any], outcome: str, previous: Mapping[str, Any] | None) -> None:
        outcomes.setdefault(outcome, []).append(_label(obj))
        before[_label(obj)] = previous

    taken: list[str] = []  # child names held by objects that are not the bot's

    secret = None if fresh else await ctx.kube.get(secret_path)
    tokens = tokens_from_secret(secret) or ApiTokens.generate()
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
            if is_the_bots(token_secret, secret):
                existing = tokens_from_secret(secret)
                if existing is not None:  # never rotate: the runtime may already use these
                    tokens = existing
                    desired = desired_with(tokens)
                    token_secret = next(obj for obj in desired if obj["kind"] == "Secret")
    if secret is not None:
        try:
            outcome, previous = await apply_object(ctx.kube, token_secret, secret)
        except NameTaken as error:
            taken += error.taken
        else:
            record(token_secret, outcome, previous)
            ctx.tokens[(namespace, name)] = tokens
    else:
        ctx.tokens[(namespace, name)] = tokens

    deployment = next(obj for obj in desired if obj["kind"] == "Deployment")
    # Read first (and written last): its pod template's config hash says which config the pod
    # was rolled out with, which the ConfigMap keeps when this change rewrites it.
    running_deployment = None if fresh else await ctx.kube.get(object_path(deployment))
    running = seen.running = _running_hash(running_deployment, bot.uid, name)
    # The Deployment is rolled (Recreate: the running pod is stopped first) or made only onto a
    # credentials Secret that exists: a pod that cannot mount it never starts, and a bot holding
    # positions would be replaced by no bot. A bot with a Deployment of its own gets nothing of
    # the spec (its ConfigMap is settled as after a refusal); a bot without one gets the rest.
    # Held only when the roll would change the pod: a pass finding the pod on this very config
    # (an operator restart, a resume, a retry after the mounted Secret was deleted) goes on, and
    # writes the Deployment only if its pod template is unchanged (checked before that write).
    missing = await missing_credentials(ctx, bot)
    mounted = objects.mounted_credentials(running_deployment)
    if missing is not None and running is not None and running != config_hash:
        raise CredentialsSecretMissing(missing, namespace, made=False, mounted=mounted)

    async def one(
        obj: Mapping[str, Any], actual: Mapping[str, Any] | None = None, *, read: bool = False
    ) -> None:
        """Write ``obj``; ``read``: ``actual`` is what the API server has (None: nothing)."""
        create = fresh or (read and actual is None)
        try:
            outcome, previous = await apply_object(ctx.kube, obj, actual, create_first=create)
        except NameTaken as error:
            taken.extend(error.taken)
        else:
            record(obj, outcome, previous)

    roll: objects.ConfigRoll | None = None  # why the pod rolls once (objects.config_roll)
    # What the runtime last reported running, and when it was asked (the status's).
    report = objects.RuntimeReport.from_status(body.get("status"))
    stamp: str | None = None  # the ConfigMap's repair stamp, which the pod template carries

    async def config_map(obj: Mapping[str, Any]) -> None:
        nonlocal roll, stamp
        if fresh:
            return await one(obj)
        actual = await ctx.kube.get(object_path(obj))
        text = (obj.get("data") or {}).get(CONFIG_FILE)
        roll = objects.config_roll(actual, running_deployment, running, config_hash, report, text)
        # An earlier repair's stamp: kept by the pod, or not taken by it yet (a roll whose
        # Deployment write failed), which this pass sends again rather than a new one.
        stamp = objects.repair_stamp(actual)
        pending = stamp is not None and stamp != objects.repair_stamp(running_deployment)
        if roll is not None and not pending:
            stamp = _repair_time()
            obj = objects.with_repair_stamp(obj, stamp)
        now = _repair_time()
        obj = objects.keep_rolled_out(obj, actual, running, config_hash, now=now)
        obj = objects.with_put_back_record(
            obj, actual, running, config_hash, report, now=now, deployment=running_deployment
        )
        await one(obj, actual, read=True)

    rest = [obj for obj in desired if obj["kind"] not in ("Secret", "Deployment")]
    # Every write ends before a failure is acted on: a ConfigMap patch still in flight must not
    # land after the ConfigMap was put back.
    results = await asyncio.gather(
        *(config_map(obj) if obj["kind"] == "ConfigMap" else one(obj) for obj in rest),
        return_exceptions=True,
    )
    failed = next((r for r in results if isinstance(r, BaseException)), None)
    if failed is not None:
        raise failed
    if taken:
        # The objects that are the bot's are at the spec (owned by it: they go with it); its
        # Deployment waits until every name is its own, so no pod runs on half a bot. (Read,
        # never written, so that the message names it too when its name is taken as well.)
        for obj in desired:
            if obj["kind"] == "Deployment":
                found = await ctx.kube.get(object_path(obj))
                if found is not None and not is_the_bots(obj, found):
                    taken.append(_label(obj))
        raise NameTaken(taken, name)
    if missing is not None and running is None:
        # A first pass (or the bot's Deployment deleted): its other objects are made, not a
        # Deployment whose pod would wait on the missing Secret (ContainerCreating, FailedMount)
        # while the TradingBot says nothing of it. Made once the Secret exists (the handler
        # retries), its pod starts at once.
        raise CredentialsSecretMissing(missing, namespace, made=True)
    if stamp is not None:
        deployment = objects.with_repair_stamp(deployment, stamp)
    deployment = objects.with_template_written(deployment, running_deployment, _repair_time())
    if missing is not None and rolls_pod(deployment, running_deployment):
        # The spec's config is the pod's, but its template would still change (a repair roll,
        # an operator setting): the Recreate rollout would stop the pod for one that cannot
        # start. Every other object is at the spec; the Deployment is left as it is.
        raise CredentialsSecretMissing(
            missing, namespace, made=False, mounted=mounted, same_config=True
        )
    seen.deployment_sent = True
    await one(deployment, running_deployment, read=not fresh)
    previous = before.get(_label(deployment))  # None: made now, or not the bot's (not written)
    if stamp is not None and previous is not None and stamp != objects.repair_stamp(previous):
        # Its pod template took a new stamp: the pod rolls again, onto the rewritten ConfigMap.
        reason, message = _rolled_again(bot, running, roll, stamp)
        event(body, warning=True, reason=reason, message=message)
    old = _pod_hash(previous)
    if old is not None and old != config_hash:
        event(
            body,
            reason="ConfigChanged",
            message=f"config hash {old} → {config_hash}: rolling out the runtime pod",
        )
    if taken:  # the Deployment's own name is taken
        raise NameTaken(taken, name)
    return outcomes


def rolls_pod(desired: Mapping[str, Any], actual: Mapping[str, Any] | None) -> bool:
    """Writing the Deployment ``desired`` over ``actual`` changes its pod template, so its
    pod is replaced (None: no Deployment, a pod is made)."""
    if actual is None:
        return True
    patch = needs_update(desired, actual) or {}
    return "template" in (patch.get("spec") or {})


def _refused(error: KubeError) -> bool:
    """The API server answered that it did not make the write (any 4xx). A 5xx or no answer
    may come from a write that was made (or is still being made): not known."""
    return 400 <= error.status < 500


def _repair_time() -> str:
    """A repair stamp: the time, to the microsecond, so two repairs never share one (an equal
    stamp would not roll the pod)."""
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def _rolled_again(
    bot: TradingBot, running: str | None, roll: objects.ConfigRoll | None, stamp: str
) -> tuple[str, str]:
    """The Warning (reason, message) of a pod rolled again onto the config its pod template
    names: what is known, not a cause that cannot be told apart."""
    deployment, config_map = f"Deployment {bot.name}", f"ConfigMap {config_map_name(bot.name)}"
    if roll is None:  # found by an earlier pass, whose roll did not get through
        return "ConfigMapBehind", (
            f"{config_map} was found holding another config than {deployment}'s pod template "
            f"(config {running}) at {stamp}, and was rewritten: its pod may run that other "
            "config; rolled again"
        )
    if roll.cause is objects.RollCause.REPORTED:
        return "RuntimeConfigDiffers", (
            f"the runtime of {deployment} reports running config {roll.reported}, not its pod "
            f"template's config {running}: that is config {roll.held}, which {config_map} held "
            f"ahead of a Deployment write that did not land and was put back since, so its pod "
            f"restarted while it was held; rolled once onto {config_map}'s config {running}"
        )
    if roll.cause is objects.RollCause.AHEAD_REPORTED:
        why = (
            f"a change written ahead of {deployment}, which never took it; its runtime "
            "reports running that config: its pod restarted meanwhile"
        )
    elif roll.cause is objects.RollCause.AHEAD_UNPROVEN:
        since = f" at {roll.written_ahead_at}" if roll.written_ahead_at else ""
        why = (
            f"a change written ahead of {deployment}{since}, which never took it; no runtime "
            f"report taken since says which config its pod runs, and it cannot be told "
            f"whether a restart meanwhile read config {roll.held}"
        )
    else:
        why = "a write that landed late, or a hand edit"
    return "ConfigMapBehind", (
        f"{config_map} held config {roll.held}, which {deployment}'s pod template (config "
        f"{running}) was not rolled out with ({why}): rewritten to the spec's config {running} "
        "and the pod rolled once"
    )


def _is_bots_child(obj: Mapping[str, Any], uid: str, name: str) -> bool:
    mine = {
        "metadata": {
            "ownerReferences": [{"uid": uid}],
            "labels": {BOT_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY},
        }
    }
    return is_the_bots(mine, obj)


def _running_hash(deployment: Mapping[str, Any] | None, uid: str, name: str) -> str | None:
    """The config hash of the bot's Deployment's pod template: the config its pod was rolled
    out with; None when there is no such Deployment of the bot's (no pod reads the ConfigMap)."""
    if deployment is None or not _is_bots_child(deployment, uid, name):
        return None
    return _pod_hash(deployment)


async def _settle_config(
    ctx: OperatorContext, bot: TradingBot, config_hash: str, error: KubeError
) -> KubeError:
    """After the API server refused (or would refuse) a pass, or a write is known not to have
    landed (:class:`NotLanded`): the ConfigMap's ``bot.yaml`` is the config the Deployment's pod
    template was rolled out with, with the spec's live fields; returns the error to raise
    (saying so when a config was put back), or :class:`HalfApplied` when that could not be made
    sure of (the spec's live fields are then still written into whatever ``bot.yaml`` holds).

    Read from the Deployment and the ConfigMap, never remembered: a Deployment write whose
    answer was lost may have rolled the pod, and the operator may have restarted since the
    change was written. Nothing is done after a first write of unknown outcome (a 5xx: the
    retry settles it, writing the Deployment, finding it written, or seeing it did not land)."""
    if not (_refused(error) or isinstance(error, NotLanded)):
        return error  # may have been applied
    label = f"ConfigMap {config_map_name(bot.name)}"
    desired = (config_hash, objects.configmap(bot, ctx.settings)["data"][CONFIG_FILE])
    try:
        settled = await _put_back(ctx, bot.namespace, bot.name, bot.uid, bot.live, desired)
    except KubeError as failed:
        return HalfApplied(label, str(failed)[:200], error)
    cause = error.cause if isinstance(error, NotLanded) else error
    if settled is None:
        return cause  # no pod reads the ConfigMap; or none (a pod cannot start): remade
    if not settled.kept:
        why = f"the config of hash {settled.running} is kept neither in it nor beside it"
        return HalfApplied(label, why, error, live=settled.live)
    # The Deployment took this config: its write landed after all, and is retried as unknown.
    said = cause if settled.landed else error
    if not settled.put_back:
        return said  # it held that config: at most the live fields were written
    note = (
        f"{label} was put back to the config the running pod was rolled out with: nothing of "
        "this change is applied"
    )
    return _with_note(said, note)


async def settle_unparsed(ctx: OperatorContext, meta: Mapping[str, Any], live: LiveSpec) -> str:
    """For a TradingBot whose spec the model refuses (nothing of it can be written): its
    ConfigMap's ``bot.yaml`` back to the config the running pod was rolled out with, with the
    live fields salvaged from the spec (``live``), so that a pod that restarts starts paused or
    halted as the spec says, as for a refused change. Returns what to add to the bot's
    condition ("" when nothing is to be said); raises :class:`KubeError` when the ConfigMap
    could not be read or written."""
    namespace, name = str(meta.get("namespace") or "default"), str(meta["name"])
    settled = await _put_back(ctx, namespace, name, str(meta.get("uid") or ""), live, None)
    label = f"ConfigMap {config_map_name(name)}"
    if settled is None:
        return ""  # never made: no pod reads a ConfigMap of the bot's
    if not settled.kept:
        took = " (its bot.yaml took the spec's pause and emergency stop)" if settled.live else ""
        return (
            f"{label} keeps no copy of the config the running pod was rolled out with (hash "
            f"{settled.running}): a restart of the pod may start on another config{took}"
        )
    if settled.put_back:
        return f"{label} was put back to the config the running pod was rolled out with"
    return ""


async def _put_back(
    ctx: OperatorContext,
    namespace: str,
    name: str,
    uid: str,
    live: LiveSpec,
    desired: tuple[str, str] | None,
) -> _Settled | None:
    """The bot's ConfigMap's ``bot.yaml`` made the config its Deployment's pod template was
    rolled out with (``desired``, (hash, text), when the Deployment runs that already; else the
    copy the ConfigMap keeps) with the spec's ``live`` fields; where no copy is kept, the live
    fields alone go into the ``bot.yaml`` it holds, so a halt given meanwhile is never lost to a
    restart. None when there is no Deployment or ConfigMap of the bot's (nothing to settle)."""
    deployment = await ctx.kube.get(api_path("apps/v1", "deployments", namespace, name))
    running = _running_hash(deployment, uid, name)
    if running is None:
        return None
    path = api_path("v1", "configmaps", namespace, config_map_name(name))
    actual = await ctx.kube.get(path)
    if actual is None or not _is_bots_child(actual, uid, name):
        return None
    text = (actual.get("data") or {}).get(CONFIG_FILE)
    current = text if isinstance(text, str) else None
    landed = desired is not None and desired[0] == running
    kept = (
        desired[1] if desired is not None and landed else objects.rolled_out_config(actual, running)
    )
    base = kept if kept is not None else current
    wanted = None if base is None else objects.with_live_fields(base, live)
    put_back = (
        kept is not None
        and wanted != current
        and (current is None or objects.file_config_hash(current) != running)
    )
    if wanted is not None and wanted != current:
        patch: dict[str, Any] = {"data": {CONFIG_FILE: wanted}}
        if put_back and current is not None:
            # In the same write: a pod that restarted while it was held may run it, which only
            # its runtime's report can tell later (objects.config_roll).
            patch["metadata"] = {"annotations": _put_back_annotation(actual, running, current)}
        await ctx.kube.patch(path, patch)
    return _Settled(running, landed, kept is not None, put_back, wanted is not None)


def _put_back_annotation(
    config_map: Mapping[str, Any], running: str, held_text: str
) -> dict[str, str | None]:
    """The ConfigMap's put-back record with ``held_text`` (put back now) added."""
    record = objects.put_back_record(config_map, running)
    record = objects.recorded_put_back(record, running, held_text, _repair_time())
    return {objects.PUT_BACK_ANNOTATION: objects.put_back_value(record)}


def _with_note(error: KubeError, note: str) -> KubeError:
    """``error`` with ``note`` after its message (a NameTaken or SpecRefused keeps its kind)."""
    if type(error) is KubeError:
        return KubeError(error.status, error.reason, f"{error.message}; {note}")
    error.message = f"{error.message}; {note}"
    return error
