"""A pause or halt set on a bot whose spec change is refused reaches the pod's ``bot.yaml``.

While a change is refused (``SpecRefused``, or a write refused and the ConfigMap put back) the
status keeps the last applied ``configHash`` and the spec holds the refused change, so a later
edit of ``spec.emergencyStop`` or ``spec.paused`` is a full object pass. That pass writes no
object of the refused change, but the ConfigMap's ``bot.yaml`` (the config the running pod was
rolled out with) takes the spec's live fields: a pod that restarts (an eviction, an OOM kill)
reads them there before any gRPC call reaches it, and a pause is not journaled.
"""

from __future__ import annotations

from typing import Any

import kopf
import pytest
import yaml

from tests.operator.test_reconcile import _body
from tests.operator.test_reconcile_refused_whole import (
    CONFIG,
    DEPLOYMENT,
    ApiServer,
    _context,
    _edit,
    _pass,
    _reconciled,
    _running_bot,
    events,  # noqa: F401  (autouse: Events recorded, not posted)
)
from tradefleet_operator import objects
from tradefleet_operator.bot_api import TradingBot
from tradefleet_operator.settings import OperatorSettings

HALT = {"reason": "venue outage: stop now"}


@pytest.fixture(autouse=True)
def _no_kopf_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steering posts Events too (the runtime at 127.0.0.1:1 does not answer): dropped here."""
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)


def _bot_yaml_spec(kube: ApiServer) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(kube.objects[CONFIG]["data"]["bot.yaml"])["spec"]
    return spec


def _refused_memory(kube: ApiServer) -> tuple[Any, dict[str, Any]]:
    """A running bot whose change to ``memory: lots`` was refused (nothing written)."""
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    written, _ = _pass(
        ctx, body, "update", _edit(body, runtime={"resources": {"requests": {"memory": "lots"}}})
    )
    assert _reconciled(written)["reason"] == "SpecRefused"
    body["status"] = {**body["status"], **written}
    return ctx, body


def test_a_halt_set_after_a_spec_refused_reaches_bot_yaml() -> None:
    kube = ApiServer()
    ctx, body = _refused_memory(kube)
    assert _bot_yaml_spec(kube).get("emergencyStop") is None
    deployment = kube.objects[DEPLOYMENT]
    kube.writes.clear()

    # A person halts the bot (kubectl patch ... emergencyStop): only a live field changed.
    written, _ = _pass(ctx, body, "update", _edit(body, emergencyStop=HALT))

    assert _bot_yaml_spec(kube).get("emergencyStop") == HALT
    assert "memory" not in kube.objects[CONFIG]["data"]["bot.yaml"]  # nothing of the refusal
    assert kube.writes == [("PATCH", CONFIG)]  # the ConfigMap only
    assert kube.objects[DEPLOYMENT] == deployment  # no pod rolled
    reconciled = _reconciled(written)
    assert (reconciled["status"], reconciled["reason"]) == ("False", "SpecRefused")
    assert "put back" not in reconciled["message"]  # it held the running pod's config


def test_a_pause_set_after_a_spec_refused_reaches_bot_yaml() -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    written, _ = _pass(ctx, body, "update", _edit(body, runtime={"journal": {"size": "ten gigs"}}))
    body["status"] = {**body["status"], **written}

    _pass(ctx, body, "update", _edit(body, paused=True))

    assert _bot_yaml_spec(kube).get("paused") is True


def test_a_halt_lifted_after_a_spec_refused_leaves_bot_yaml() -> None:
    """The spec's live fields both ways: a halt removed from the spec is removed from bot.yaml
    (else a restarted pod would start halted again, against the spec)."""
    kube = ApiServer()
    ctx, body = _refused_memory(kube)
    written, _ = _pass(ctx, body, "update", _edit(body, emergencyStop=HALT))
    body["status"] = {**body["status"], **written}
    assert _bot_yaml_spec(kube).get("emergencyStop") == HALT

    _pass(ctx, body, "update", _edit(body, emergencyStop=None))

    assert "emergencyStop" not in _bot_yaml_spec(kube)


def test_a_put_back_keeps_a_halt_set_in_the_same_edit() -> None:
    """The Deployment is refused (a quota, a policy) in the pass that also carries the halt:
    the ConfigMap goes back to the config from before, with the halt."""
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    kube.refuse[DEPLOYMENT] = 1

    written, _ = _pass(
        ctx,
        body,
        "update",
        _edit(body, strategy={"name": "ema-cross", "params": {"fast": 5}}, emergencyStop=HALT),
    )

    assert "fast: 5" not in kube.objects[CONFIG]["data"]["bot.yaml"]  # nothing of it applied
    assert _bot_yaml_spec(kube).get("emergencyStop") == HALT
    assert "ConfigMap eurusd-paper-config was put back" in _reconciled(written)["message"]


def test_only_the_live_fields_of_a_bot_yaml_are_changed() -> None:
    """``with_live_fields``: the spec's pause and halt into an older config, the rest as it
    was written; the same text when they are so already."""
    settings = OperatorSettings()
    older = TradingBot.parse(_body(strategy={"name": "ema-cross", "params": {"fast": 3}}))
    text = objects.configmap(older, settings)["data"]["bot.yaml"]
    halted = TradingBot.parse(_body(paused=True, emergencyStop=HALT))

    changed = objects.with_live_fields(text, halted)

    assert changed is not None
    spec = yaml.safe_load(changed)["spec"]
    assert spec["paused"] is True and spec["emergencyStop"] == HALT
    assert spec["strategy"] == yaml.safe_load(text)["spec"]["strategy"]  # fast: 3 kept
    assert objects.with_live_fields(text, older) == text
    back = objects.with_live_fields(changed, older)
    assert back is not None and yaml.safe_load(back) == yaml.safe_load(text)
    assert objects.with_live_fields("not: [a manifest", halted) is None
