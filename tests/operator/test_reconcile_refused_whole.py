"""A reconcile whose objects the API server would refuse writes none of them (issue H3).

Without admission (the webhook off, or failing open for a paper bot while the operator is down)
a TradingBot with ``spec.runtime.resources.requests.memory: lots`` reached the operator, which
rewrote the ConfigMap (``bot.yaml``) and then had the bot's Deployment refused: the running pod
kept the old spec while the ConfigMap held the new one, and the next restart of the pod started
on a config that was never rolled out. Here the fake API server refuses what kube-apiserver
refuses (its own small rules, not the operator's) and the tests check that such a pass leaves
every object as it was, says which field is wrong, and keeps the bot what it is.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, cast

import kopf
import pytest

from tests.operator.test_reconcile import FakeKube, _body, _merge
from tests.operator.timer_writes import written_status
from tradefleet_operator import children, handlers
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.k8s_api import KubeApi, KubeError, object_path
from tradefleet_operator.quantity import kubernetes_refusals
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import OperatorSettings

CONFIG = "/api/v1/namespaces/trading/configmaps/eurusd-paper-config"
DEPLOYMENT = "/apis/apps/v1/namespaces/trading/deployments/eurusd-paper"
CLAIM = "/api/v1/namespaces/trading/persistentvolumeclaims/eurusd-paper-journal"

# kube-apiserver's quantity grammar, written out here apart from the operator's own.
_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
_SCALE = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"])},
    **{
        s: Decimal(10) ** e
        for s, e in zip("numkMGTPE", [-9, -6, -3, 3, 6, 9, 12, 15, 18], strict=True)
    },
}


def _amount(value: Any) -> Decimal | None:
    found = _QUANTITY.match(str(value))
    if found is None:
        return None
    suffix = found.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(found.group(1)).scaleb(int(suffix[1:]))
    return Decimal(found.group(1)) * _SCALE.get(suffix, Decimal(1))


def _invalid(what: str, field: str, value: Any, why: str) -> KubeError:
    return KubeError(422, "Invalid", f'{what} is invalid: {field}: Invalid value: "{value}": {why}')


class ApiServer(FakeKube):
    """``FakeKube`` that refuses (422) what kube-apiserver refuses in a bot's Deployment and
    journal claim, and takes injected failures: a write refused as an admission policy would,
    a write stored whose answer is lost (500)."""

    def __init__(self) -> None:
        super().__init__()
        #: path → how many writes to it are refused (an admission policy, a quota).
        self.refuse: dict[str, int] = {}
        #: path → how many writes to it are stored but answered 500.
        self.lose_answer: dict[str, int] = {}

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        path = object_path(obj)
        self._check(path, obj, None)
        created = await super().create(obj)
        self._answer(path)
        return created

    async def patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        merged = copy.deepcopy(self.objects[path])
        _merge(merged, patch)
        self._check(path, merged, self.objects[path])
        patched = await super().patch(path, patch)
        self._answer(path)
        return patched

    def _answer(self, path: str) -> None:
        if self.lose_answer.get(path, 0) > 0:
            self.lose_answer[path] -= 1
            raise KubeError(500, "InternalError", "stored, but the answer was lost")

    def _check(self, path: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
        if self.refuse.get(path, 0) > 0:
            self.refuse[path] -= 1
            raise KubeError(422, "Invalid", f"{path}: refused by an admission policy")
        if obj["kind"] == "Deployment":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                _check_resources(container.get("resources") or {})
        if obj["kind"] == "PersistentVolumeClaim":
            size = obj["spec"]["resources"]["requests"]["storage"]
            field = "spec.resources.requests[storage]"
            amount = _amount(size)
            if amount is None or amount <= 0:
                raise _invalid("PersistentVolumeClaim", field, size, "must be greater than zero")
            if old is not None:
                before = _amount(old["spec"]["resources"]["requests"]["storage"])
                if before is not None and amount < before:
                    raise _invalid(
                        "PersistentVolumeClaim", field, size, "can not be less than previous value"
                    )


def _check_resources(resources: Mapping[str, Any]) -> None:
    field = "spec.template.spec.containers[0].resources"
    for section in ("limits", "requests"):
        for name, value in (resources.get(section) or {}).items():
            amount = _amount(value)
            if amount is None:
                raise _invalid("Deployment", f"{field}.{section}[{name}]", value, "not a quantity")
            if amount < 0:
                raise _invalid("Deployment", f"{field}.{section}[{name}]", value, "negative")
    limits = resources.get("limits") or {}
    for name, value in (resources.get("requests") or {}).items():
        request = _amount(value)
        limit = _amount(limits[name]) if name in limits else None
        extended = "/" in name and "kubernetes.io/" not in name
        if extended and request != limit:
            raise _invalid("Deployment", f"{field}.requests[{name}]", value, "must equal limit")
        if request is not None and limit is not None and request > limit:
            raise _invalid("Deployment", f"{field}.requests[{name}]", value, "above its limit")


@pytest.fixture(autouse=True)
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, bool]]]:
    """The Events the handler posts: (reason, message, warning)."""
    posted: list[tuple[str, str, bool]] = []

    def record(body: Any, *, reason: str, message: str, warning: bool = False) -> None:
        posted.append((reason, message, warning))

    monkeypatch.setattr(handlers, "event", record)
    monkeypatch.setattr(children, "event", record)
    yield posted


def _context(kube: FakeKube) -> OperatorContext:
    return OperatorContext(
        settings=OperatorSettings(), kube=cast(KubeApi, kube), runtime=RuntimeClients(timeout=0.2)
    )


def _pass(
    ctx: OperatorContext, body: dict[str, Any], reason: str, diff: Any = ()
) -> tuple[dict[str, Any], kopf.TemporaryError | None]:
    """One reconcile pass with ``ctx`` (kept between passes, as the operator keeps its memo):
    the status patch it asked for, and the retry it asked kopf for, if any."""
    patch = kopf.Patch()
    retry: kopf.TemporaryError | None = None
    try:
        asyncio.run(
            handlers.reconcile(
                body=cast(kopf.Body, body),
                meta=cast(kopf.Meta, body["metadata"]),
                status=cast(kopf.Status, body.get("status") or {}),
                patch=patch,
                memo=kopf.Memo(tradefleet=ctx),
                logger=cast(kopf.Logger, logging.getLogger("test")),
                reason=reason,
                diff=diff,
            )
        )
    except kopf.TemporaryError as error:
        retry = error
    return written_status(patch, body), retry


def _running_bot(kube: ApiServer, ctx: OperatorContext) -> dict[str, Any]:
    """eurusd-paper, reconciled once and reported Running by its runtime."""
    body = _body()
    written, retry = _pass(ctx, body, "create")
    assert retry is None and written["conditions"][0]["status"] == "True"
    body["status"] = {**written, "phase": "Running"}
    return body


def _edit(body: dict[str, Any], **spec: Any) -> list[Any]:
    """The spec edited as ``kubectl apply`` would: the next generation; returns kopf's diff."""
    body["spec"].update(copy.deepcopy(spec))
    body["metadata"]["generation"] += 1
    return [("change", ("spec", key), None, value) for key, value in spec.items()]


def _reconciled(written: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in written["conditions"] if c["type"] == "Reconciled")
    return found


BAD = [
    pytest.param(
        {"resources": {"requests": {"memory": "lots"}}},
        "spec.runtime.resources.requests.memory: 'lots' is not a Kubernetes quantity",
        id="not-a-quantity",
    ),
    pytest.param(
        {"journal": {"size": "ten gigs"}},
        "spec.runtime.journal.size: 'ten gigs' is not a Kubernetes quantity",
        id="journal-size",
    ),
    pytest.param(
        # Passes the CRD's quantity pattern: only the pair is wrong.
        {"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}},
        "spec.runtime.resources.requests.memory: '2Gi' is above "
        "spec.runtime.resources.limits.memory ('1Gi')",
        id="request-above-limit",
    ),
    pytest.param(
        {"resources": {"requests": {"example.com/gpu": 1}, "limits": {"example.com/gpu": 2}}},
        "spec.runtime.resources.requests.example.com/gpu: '1' is not "
        "spec.runtime.resources.limits.example.com/gpu ('2')",
        id="extended-request-not-its-limit",
    ),
]


@pytest.mark.parametrize(("runtime", "said"), BAD)
def test_a_spec_the_api_server_refuses_writes_no_object_and_says_which_field(
    runtime: dict[str, Any], said: str, events: list[tuple[str, str, bool]]
) -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    before = copy.deepcopy(kube.objects)
    kube.writes.clear()
    events.clear()

    written, retry = _pass(ctx, body, "update", _edit(body, runtime=runtime))

    assert kube.writes == []  # not the ConfigMap, not the claim, not the Service
    assert kube.objects == before
    reconciled = _reconciled(written)
    assert (reconciled["status"], reconciled["reason"]) == ("False", "SpecRefused")
    assert said in reconciled["message"]
    assert reconciled["observedGeneration"] == 2
    # The bot is still what runs: its phase is the runtime's, the applied config hash stays.
    assert written.get("phase", "Running") == "Running"
    assert "configHash" not in written
    assert retry is None  # the spec must change: retrying changes nothing
    refused = [(m, w) for r, m, w in events if r == "SpecRefused"]
    assert len(refused) == 1 and refused[0][1] is True and said in refused[0][0]


def test_fixing_a_refused_spec_applies_it_whole(events: list[tuple[str, str, bool]]) -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    first_hash = body["status"]["configHash"]
    written, _ = _pass(
        ctx, body, "update", _edit(body, runtime={"resources": {"requests": {"memory": "lots"}}})
    )
    body["status"] = {**body["status"], **written}

    fixed = {"resources": {"requests": {"memory": "192Mi"}, "limits": {"memory": "384Mi"}}}
    written, retry = _pass(ctx, body, "update", _edit(body, runtime=fixed))

    assert retry is None
    assert _reconciled(written)["status"] == "True"
    assert written["configHash"] != first_hash
    deployment = kube.objects[DEPLOYMENT]
    assert (
        deployment["spec"]["template"]["metadata"]["annotations"]["tradefleet.io/config-hash"]
        == written["configHash"]
    )
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["resources"] == fixed["resources"]
    )
    assert "memory: 192Mi" in kube.objects[CONFIG]["data"]["bot.yaml"]


@pytest.mark.parametrize(
    "resources",
    [
        # Kubernetes only warns of a fractional byte ("500m" of memory) and runs the pod: the
        # operator's own rule (whole bytes, admission) must not stop such a bot's changes.
        {"requests": {"memory": "500m"}, "limits": {"memory": "1Gi"}},
        # Kubernetes counts an extended resource in thousandths rounded up: 0.9999 is whole.
        {"requests": {"example.com/gpu": "0.9999"}, "limits": {"example.com/gpu": "0.9999"}},
    ],
)
def test_a_value_kubernetes_takes_is_applied(resources: dict[str, Any]) -> None:
    assert kubernetes_refusals(resources, "1Gi") == []
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    written, _ = _pass(ctx, body, "update", _edit(body, runtime={"resources": resources}))
    assert _reconciled(written)["status"] == "True"
    assert (
        kube.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["resources"]
        == resources
    )


def test_a_new_bot_the_api_server_would_refuse_is_not_made() -> None:
    """Nothing runs and nothing will until the spec changes: no object, phase Failed."""
    kube = ApiServer()
    body = _body(runtime={"resources": {"requests": {"memory": "lots"}}})

    written, retry = _pass(_context(kube), body, "create")

    assert kube.objects == {} and kube.writes == []
    assert retry is None
    assert written["phase"] == "Failed"
    assert _reconciled(written)["reason"] == "SpecRefused"
    # Fixed: made whole, and waiting for its pod (no longer Failed).
    body["status"] = written
    written, retry = _pass(_context(kube), body, "update", _edit(body, runtime={}))
    assert retry is None and _reconciled(written)["status"] == "True"
    assert written["phase"] == "Pending"
    assert {DEPLOYMENT, CONFIG, CLAIM} <= set(kube.objects)


@pytest.mark.parametrize(
    ("resources", "journal", "refused"),
    [
        ({"requests": {"memory": "lots"}}, None, ["requests.memory"]),
        ({"limits": {"cpu": "-1"}}, None, ["limits.cpu"]),
        ({"requests": {"memroy": "1Gi"}}, None, ["requests.memroy"]),
        ({"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}, None, ["requests.memory"]),
        ({"requests": {"example.com/gpu": 1}}, None, ["requests.example.com/gpu"]),
        ({"limits": {"example.com/gpu": "1.0001"}}, None, ["limits.example.com/gpu"]),
        ({"limits": {"hugepages-2Mi": "1.5", "memory": "1Gi"}}, None, ["limits.hugepages-2Mi"]),
        ({"claims": {"gpu": "a"}}, None, ["claims"]),
        ({}, "0", ["journal"]),
        ({}, "-1Gi", ["journal"]),
        # Taken by Kubernetes, at most with a warning: admission's own rules only.
        ({"requests": {"memory": "500m"}, "limits": {"memory": "1Gi"}}, None, []),
        ({"requets": {"cpu": "1"}}, None, []),  # an unknown field: dropped
        ({"limits": {"example.com/gpu": "0.9999"}}, None, []),
        ({}, "0.3Ki", []),
    ],
)
def test_what_kubernetes_refuses_is_told_from_what_admission_refuses(
    resources: dict[str, Any], journal: str | None, refused: list[str]
) -> None:
    fields = [e.field for e in kubernetes_refusals(resources, journal)]
    assert fields == [
        "spec.runtime.journal.size" if name == "journal" else f"spec.runtime.resources.{name}"
        for name in refused
    ]


def test_a_journal_size_of_an_ephemeral_journal_is_no_refusal() -> None:
    """No claim is made for an ephemeral journal: its size reaches no object."""
    assert kubernetes_refusals({}, None) == []
    assert [str(e) for e in kubernetes_refusals({}, "ten gigs")] == [
        "spec.runtime.journal.size: 'ten gigs' is not a Kubernetes quantity (e.g. 512Mi, 1Gi, 500m)"
    ]


def test_a_deployment_refused_for_a_reason_no_check_foresaw_puts_the_configmap_back(
    events: list[tuple[str, str, bool]],
) -> None:
    """An admission policy (or a quota) refuses the new Deployment: the ConfigMap written just
    before goes back to the config the running pod was rolled out with."""
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    before = copy.deepcopy(kube.objects)
    kube.refuse[DEPLOYMENT] = 1

    written, retry = _pass(
        ctx, body, "update", _edit(body, strategy={"name": "ema-cross", "params": {"fast": 5}})
    )

    assert kube.objects[CONFIG]["data"] == before[CONFIG]["data"]
    assert kube.objects[DEPLOYMENT] == before[DEPLOYMENT]
    reconciled = _reconciled(written)
    assert (reconciled["status"], reconciled["reason"]) == ("False", "Invalid")
    assert "refused by an admission policy" in reconciled["message"]
    assert "ConfigMap eurusd-paper-config was put back" in reconciled["message"]
    assert written.get("phase", "Running") == "Running"  # the pod runs on, as it was
    assert retry is None
    # The next pass, the policy gone, applies the spec whole.
    body["status"] = {**body["status"], **written}
    written, retry = _pass(ctx, body, "resume")
    assert retry is None and _reconciled(written)["status"] == "True"
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]


def test_a_claim_refused_leaves_the_configmap_as_it_was() -> None:
    """The journal may not shrink (kube-apiserver refuses it): nothing of the edit stays."""
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    written, _ = _pass(ctx, body, "update", _edit(body, runtime={"journal": {"size": "2Gi"}}))
    assert _reconciled(written)["status"] == "True"
    body["status"] = {**body["status"], **written}
    before = copy.deepcopy(kube.objects)

    written, retry = _pass(ctx, body, "update", _edit(body, runtime={"journal": {"size": "1Gi"}}))

    assert retry is None
    assert kube.objects[CONFIG]["data"] == before[CONFIG]["data"]
    assert kube.objects[DEPLOYMENT] == before[DEPLOYMENT]
    assert kube.objects[CLAIM]["spec"] == before[CLAIM]["spec"]
    assert "can not be less than previous value" in _reconciled(written)["message"]


def test_a_deployment_stored_whose_answer_was_lost_keeps_the_new_configmap() -> None:
    """A 500 may come from a write that landed: the Deployment is read back, and as it runs the
    new config, the ConfigMap keeps it (putting it back would start the new pod on the old one)."""
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    kube.lose_answer[DEPLOYMENT] = 1

    _, retry = _pass(
        ctx, body, "update", _edit(body, strategy={"name": "ema-cross", "params": {"fast": 5}})
    )

    assert retry is not None  # retried: the outcome was not known
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]
    template = kube.objects[DEPLOYMENT]["spec"]["template"]["metadata"]["annotations"]
    assert template["tradefleet.io/config-hash"] != body["status"]["configHash"]


def test_a_failed_put_back_is_retried_with_the_config_from_before() -> None:
    """The Deployment is refused and the ConfigMap cannot be put back at once (the API server
    busy): the pass is retried, and the retry puts back the config from before the edit, not
    the one the first pass wrote."""
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    original = copy.deepcopy(kube.objects[CONFIG]["data"])
    kube.refuse[DEPLOYMENT] = 2
    real_patch = kube.patch
    failures = {"left": 1}

    async def busy_on_put_back(path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        if path == CONFIG and kube.writes.count(("PATCH", CONFIG)) == 1 and failures["left"]:
            failures["left"] -= 1
            raise KubeError(503, "ServiceUnavailable", "busy")
        return await real_patch(path, patch)

    kube.patch = busy_on_put_back  # type: ignore[method-assign]
    diff = _edit(body, strategy={"name": "ema-cross", "params": {"fast": 5}})
    written, retry = _pass(ctx, body, "update", diff)
    assert retry is not None
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]  # half applied, for now
    assert "HalfApplied" in [c["reason"] for c in written["conditions"]]

    written, retry = _pass(ctx, body, "update", diff)  # kopf's retry

    assert kube.objects[CONFIG]["data"] == original
    assert retry is None
    assert "ConfigMap eurusd-paper-config was put back" in _reconciled(written)["message"]
