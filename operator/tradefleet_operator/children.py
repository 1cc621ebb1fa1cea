"""Making a bot's child objects exist as desired: create, or adopt and patch (I/O).

A create that meets ``409 AlreadyExists`` (a retry of a half-done pass, or an object someone
made first) adopts and patches the existing object. The api-token Secret's tokens are generated
once; an existing Secret is read, never rotated. Nothing is written when nothing differs
(``object_diff.needs_update``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kopf

from tradefleet_operator import objects
from tradefleet_operator.bot_api import TradingBot
from tradefleet_operator.context import OperatorContext, event
from tradefleet_operator.k8s_api import KubeApi, KubeError, api_path, object_path
from tradefleet_operator.names import api_token_secret_name
from tradefleet_operator.object_diff import needs_update
from tradefleet_operator.settings import CONFIG_HASH_ANNOTATION
from tradefleet_operator.tokens import ApiTokens, tokens_from_secret


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


def _pod_hash(deployment: Mapping[str, Any] | None) -> str | None:
    if deployment is None:
        return None
    template = deployment.get("spec", {}).get("template", {})
    annotations = template.get("metadata", {}).get("annotations") or {}
    value = annotations.get(CONFIG_HASH_ANNOTATION)
    return str(value) if value is not None else None


async def reconcile_objects(
    ctx: OperatorContext,
    body: kopf.Body,
    bot: TradingBot,
    config_hash: str,
    *,
    fresh: bool = False,
) -> dict[str, list[str]]:
    """Make every desired object exist as desired; returns object labels by outcome.

    ``fresh``: the bot was never reconciled, so its objects are created without reading them
    first (a 409 still adopts). The api-token Secret goes first: its tokens are the existing
    Secret's when there is one, never new ones.
    """
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
            existing = tokens_from_secret(secret)
            if existing is not None:  # never rotate: the runtime may already use these
                tokens = existing
                desired = desired_with(tokens)
                token_secret = next(obj for obj in desired if obj["kind"] == "Secret")
    if secret is not None:
        outcome, previous = await apply_object(ctx.kube, token_secret, secret)
        record(token_secret, outcome, previous)
    ctx.tokens[(namespace, name)] = tokens

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
