"""What a refused change puts back into the ConfigMap is the config the running Deployment was
rolled out with, read from the cluster, not remembered by the operator.

The ConfigMap is written before the Deployment; when the API server refuses the rest, the
ConfigMap goes back to the config of the Deployment's pod template (its config hash), which the
ConfigMap keeps beside a newer ``bot.yaml`` in the same write. So a Deployment write whose answer
was lost (the pod rolled) is not undone by a later put-back, an operator restart between a
failed put-back and its retry still puts it back, and a put-back that keeps failing counts as a
failed reconcile (``TradefleetReconcileFailures``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from prometheus_client import REGISTRY

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
from tradefleet_operator.k8s_api import KubeError
from tradefleet_operator.settings import (
    CONFIG_HASH_ANNOTATION,
    ROLLED_OUT_CONFIG_ANNOTATION,
    ROLLED_OUT_HASH_ANNOTATION,
    OperatorSettings,
)

ROOT = Path(__file__).resolve().parents[2]
FAST_5 = {"strategy": {"name": "ema-cross", "params": {"fast": 5}}}


@pytest.fixture(autouse=True)
def _no_kopf_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)


def _template_hash(kube: ApiServer) -> str:
    annotations = kube.objects[DEPLOYMENT]["spec"]["template"]["metadata"]["annotations"]
    return str(annotations[CONFIG_HASH_ANNOTATION])


def _failed() -> float:
    value = REGISTRY.get_sample_value("tradefleet_operator_reconciles_total", {"outcome": "failed"})
    return value or 0.0


def test_a_refused_edit_after_a_lost_answer_puts_back_the_config_the_pod_runs() -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)

    # Edit 2: the Deployment patch lands (the pod rolls to fast: 5) but its answer is lost.
    kube.lose_answer[DEPLOYMENT] = 1
    _, retry = _pass(ctx, body, "update", _edit(body, **FAST_5))
    assert retry is not None
    rolled_out = copy.deepcopy(kube.objects[CONFIG]["data"])
    assert "fast: 5" in rolled_out["bot.yaml"]
    running_hash = _template_hash(kube)

    # Edit 3, before kopf's retry: refused by an admission policy (or a quota).
    kube.refuse[DEPLOYMENT] = 1
    written, _ = _pass(
        ctx, body, "update", _edit(body, strategy={"name": "ema-cross", "params": {"fast": 7}})
    )

    assert _template_hash(kube) == running_hash  # the pod and its Deployment are at edit 2
    assert kube.objects[CONFIG]["data"] == rolled_out  # not the config from before edit 2
    reconciled = _reconciled(written)
    assert reconciled["status"] == "False"
    assert "ConfigMap eurusd-paper-config was put back" in reconciled["message"]


def test_a_half_applied_change_is_put_back_after_an_operator_restart() -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    original = copy.deepcopy(kube.objects[CONFIG]["data"])
    kube.refuse[DEPLOYMENT] = 2  # a policy that still holds at the retry
    real_patch = kube.patch
    busy = {"left": 1}

    async def busy_on_put_back(path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        if path == CONFIG and kube.writes.count(("PATCH", CONFIG)) == 1 and busy["left"]:
            busy["left"] -= 1
            raise KubeError(503, "ServiceUnavailable", "busy")
        return await real_patch(path, patch)

    kube.patch = busy_on_put_back  # type: ignore[method-assign]
    diff = _edit(body, **FAST_5)
    written, retry = _pass(ctx, body, "update", diff)
    assert retry is not None and _reconciled(written)["reason"] == "HalfApplied"
    assert kube.objects[CONFIG]["data"] != original  # half applied, for now
    body["status"] = {**body["status"], **written}

    restarted = _context(kube)  # a new operator process: nothing of the first one's memory
    written, retry = _pass(restarted, body, "update", diff)  # kopf's retry, resumed

    assert kube.objects[CONFIG]["data"] == original
    assert retry is None
    assert "ConfigMap eurusd-paper-config was put back" in _reconciled(written)["message"]


def test_the_config_the_deployment_runs_is_kept_in_the_same_write_as_the_new_one() -> None:
    """Whatever happens after the ConfigMap's write (the operator killed before the Deployment
    is written), the ConfigMap holds what to put back."""
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    running_text = kube.objects[CONFIG]["data"]["bot.yaml"]
    running_hash = _template_hash(kube)
    writes: list[Mapping[str, Any]] = []
    real_patch = kube.patch

    async def recording(path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        if path == CONFIG:
            writes.append(copy.deepcopy(dict(patch)))
        return await real_patch(path, patch)

    kube.patch = recording  # type: ignore[method-assign]
    kube.refuse[DEPLOYMENT] = 1

    _pass(ctx, body, "update", _edit(body, **FAST_5))

    first = writes[0]
    assert "fast: 5" in first["data"]["bot.yaml"]
    annotations = dict(first["metadata"]["annotations"])
    assert objects.parse_time(annotations.pop(objects.WRITTEN_AHEAD_AT_ANNOTATION)) is not None
    assert annotations == {
        ROLLED_OUT_HASH_ANNOTATION: running_hash,
        ROLLED_OUT_CONFIG_ANNOTATION: running_text,
    }


def test_a_half_applied_pass_counts_as_a_failed_reconcile() -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    kube.refuse[DEPLOYMENT] = 1
    real_patch = kube.patch

    async def refused_put_back(path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        if path == CONFIG and kube.writes.count(("PATCH", CONFIG)) >= 1:
            raise KubeError(403, "Forbidden", "configmaps: frozen by a policy")
        return await real_patch(path, patch)

    kube.patch = refused_put_back  # type: ignore[method-assign]
    before = _failed()

    written, retry = _pass(ctx, body, "update", _edit(body, **FAST_5))

    assert _reconciled(written)["reason"] == "HalfApplied"
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]  # half applied
    assert retry is not None  # still retried
    assert _failed() == before + 1


def test_a_config_kept_nowhere_is_said_half_applied() -> None:
    """The ConfigMap holds another config than its Deployment's and no copy of it (edited by
    hand, or written by an operator release that kept none): a refusal cannot put it back, and
    says so instead of calling the change refused whole."""
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    other = TradingBot.parse(_body(strategy={"name": "ema-cross", "params": {"fast": 9}}))
    kube.objects[CONFIG]["data"] = objects.configmap(other, OperatorSettings())["data"]
    kube.refuse[DEPLOYMENT] = 1

    written, retry = _pass(ctx, body, "update", _edit(body, **FAST_5))

    reconciled = _reconciled(written)
    assert reconciled["reason"] == "HalfApplied"
    assert f"the config of hash {_template_hash(kube)} is kept neither" in reconciled["message"]
    assert retry is not None


@pytest.mark.parametrize("example", sorted((ROOT / "examples/bots").glob("*.yaml")), ids=str)
def test_a_bot_yaml_has_the_config_hash_of_the_bot_it_was_rendered_from(example: Path) -> None:
    """What tells the ConfigMap's config from its Deployment's: the hash read back from the
    rendered ``bot.yaml`` is the one the pod template is labelled with."""
    body = yaml.safe_load(example.read_text())
    body["metadata"].setdefault("namespace", "default")
    for spec in ({}, {"paused": True, "emergencyStop": {"reason": "x", "flatten": True}}):
        bot = TradingBot.parse({**body, "spec": {**body["spec"], **spec}})
        text = objects.configmap(bot, OperatorSettings())["data"]["bot.yaml"]
        assert objects.file_config_hash(text) == objects.config_hash(bot)
    assert objects.file_config_hash("spec: [") is None
