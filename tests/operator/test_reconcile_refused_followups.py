"""A change the operator cannot apply leaves the bot running on its old config, and what a pod
that restarts reads (``bot.yaml``), what the TradingBot says and what the metrics count follow
that, whatever the reason the change was not applied.

- The ConfigMap keeps no copy of the config its Deployment runs (a hand edit; releases before
  the copy was kept leave exactly that): a refused change is ``HalfApplied``, and the spec's
  pause or halt still goes into the ``bot.yaml`` it holds.
- A Deployment write the API server keeps answering 5xx (a validating webhook down with
  ``failurePolicy: Fail``): the first may be a lost answer (retried as it is); once a retry
  reads the Deployment still on the old config, the earlier write did not land, and the
  ConfigMap is put back, said on the bot (``NotApplied``) and counted failed. Only the
  Deployment's own 5xx counts (not another object's, nor a ConfigMap found ahead). A write that
  lands after the put-back rolls a pod onto the old config: the next pass rewrites the
  ConfigMap, rolls the pod again (a repair stamp on its template) and says so (Warning).
- While a change is retried so, the status timer still reads the bot (its runtime may fail) and
  steers it.
- A spec the model refuses (``InvalidSpec``): its pause and halt reach ``bot.yaml``, a bot
  made before keeps its runtime's phase, and each new error gets a Warning, retried or not.
- The failed-reconciles series exists at 0 from the operator's start.
- Quantities kube-apiserver stores (spaces around them; hugepages rounded up to whole pages) are
  no reason to refuse a change, while admission still refuses them.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import kopf
import pytest
import yaml
from prometheus_client import REGISTRY

from tests.operator.test_reconcile import FakeKube, _body
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
from tests.operator.timer_writes import timer_status, written_status
from tradefleet_operator import handlers, objects
from tradefleet_operator.bot_api import TradingBot
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.k8s_api import KubeApi, KubeError
from tradefleet_operator.names import Phase
from tradefleet_operator.quantity import kubernetes_refusals, spec_quantity_errors
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import (
    CONFIG_HASH_ANNOTATION,
    CONFIG_REPAIRED_ANNOTATION,
    ROLLED_OUT_CONFIG_ANNOTATION,
    OperatorSettings,
)
from tradefleet_operator.snapshot import RuntimeSnapshot

ROOT = Path(__file__).resolve().parents[2]
FAST_5 = {"strategy": {"name": "ema-cross", "params": {"fast": 5}}}
HALT = {"reason": "venue outage: stop now", "flatten": True}
BAD_TIMEFRAME = {"market": {"symbols": ["EURUSD"], "timeframe": "7x"}}
CRASHED_POD = {
    "metadata": {"name": "eurusd-paper-7d9f"},
    "status": {
        "containerStatuses": [
            {
                "name": "runtime",
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {
                    "terminated": {
                        "exitCode": 1,
                        "finishedAt": "2026-12-06T13:00:00Z",
                        "message": "journal: database disk image is malformed",
                    }
                },
            }
        ]
    },
}


@pytest.fixture(autouse=True)
def _no_kopf_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)


def _bot_yaml_spec(kube: ApiServer) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(kube.objects[CONFIG]["data"]["bot.yaml"])["spec"]
    return spec


def _failed() -> float:
    value = REGISTRY.get_sample_value("tradefleet_operator_reconciles_total", {"outcome": "failed"})
    return value or 0.0


def _keeps_no_copy(kube: ApiServer) -> None:
    """The ConfigMap holds a config never rolled out (fast: 9), and no copy of the running one."""
    other = TradingBot.parse(_body(strategy={"name": "ema-cross", "params": {"fast": 9}}))
    kube.objects[CONFIG]["data"] = objects.configmap(other, OperatorSettings())["data"]
    kube.objects[CONFIG]["metadata"].pop("annotations", None)


# --- no copy of the running config: the live fields still reach bot.yaml ----------------------


def test_a_halt_given_while_the_spec_is_refused_reaches_bot_yaml_without_a_kept_copy() -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    _keeps_no_copy(kube)
    written, _ = _pass(
        ctx, body, "update", _edit(body, runtime={"resources": {"requests": {"memory": "lots"}}})
    )
    body["status"] = {**body["status"], **written}

    written, retry = _pass(ctx, body, "update", _edit(body, emergencyStop=HALT))

    reconciled = _reconciled(written)
    assert reconciled["reason"] == "HalfApplied"
    assert "its bot.yaml took the spec's pause and emergency stop" in reconciled["message"]
    assert retry is not None
    assert _bot_yaml_spec(kube).get("emergencyStop") == HALT
    # Only the live fields were written: the config stays the one it held.
    assert _bot_yaml_spec(kube)["strategy"]["params"]["fast"] == 9


def test_a_pause_given_in_the_refused_edit_itself_reaches_bot_yaml_without_a_kept_copy() -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    _keeps_no_copy(kube)

    written, _ = _pass(
        ctx, body, "update", _edit(body, runtime={"journal": {"size": "0"}}, paused=True)
    )

    assert _reconciled(written)["reason"] == "HalfApplied"
    assert _bot_yaml_spec(kube).get("paused") is True


def test_a_bot_yaml_that_is_no_manifest_is_left_and_said() -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    kube.objects[CONFIG]["data"]["bot.yaml"] = "edited: [by hand"
    kube.objects[CONFIG]["metadata"].pop("annotations", None)

    lots = {"resources": {"requests": {"memory": "lots"}}}

    written, _ = _pass(ctx, body, "update", _edit(body, emergencyStop=HALT, runtime=lots))

    assert kube.objects[CONFIG]["data"]["bot.yaml"] == "edited: [by hand"
    reconciled = _reconciled(written)
    assert reconciled["reason"] == "HalfApplied"
    assert "or without them" in reconciled["message"]


def test_the_live_fields_are_written_as_bot_config_writes_them() -> None:
    for spec in ({}, {"paused": True}, {"emergencyStop": {"reason": "r"}}, {"emergencyStop": HALT}):
        bot = TradingBot.parse(_body(**copy.deepcopy(spec)))
        written = objects.bot_config(bot)["spec"]
        assert objects.live_document(bot.live) == {
            key: written[key] for key in ("paused", "emergencyStop") if key in written
        }


# --- a Deployment write answered 5xx again and again ---------------------------------------


class WebhookDown(ApiServer):
    """Deployment writes answered 500 and not stored (a failing admission webhook), ``down``
    times (all of them by default)."""

    def __init__(self, down: int = 10**6) -> None:
        super().__init__()
        self.down = down

    async def patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        if path == DEPLOYMENT and self.down > 0:
            self.down -= 1
            raise KubeError(
                500, "InternalError", 'Internal error occurred: failed calling webhook "policy"'
            )
        return await super().patch(path, patch)


def _retried_passes(kube: WebhookDown, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A running bot edited to fast: 5, then ``n`` passes (the first and kopf's retries);
    returns the TradingBot's status as it then stands, and the last pass's status patch."""
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    deployment = copy.deepcopy(kube.objects[DEPLOYMENT])
    before = copy.deepcopy(kube.objects[CONFIG]["data"])
    diff = _edit(body, **FAST_5)
    written: dict[str, Any] = {}
    for _ in range(n):
        written, retry = _pass(ctx, body, "update", diff)
        assert retry is not None  # retried, as a 5xx should be
        body["status"] = {**body["status"], **written}
    assert kube.objects[DEPLOYMENT] == deployment  # the pod runs the old config
    if n > 1:  # a retry saw the earlier write had not landed: put back
        assert kube.objects[CONFIG]["data"] == before
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations[CONFIG_HASH_ANNOTATION] == body["status"]["configHash"]
    status: dict[str, Any] = body["status"]
    return status, written


def test_a_first_5xx_may_be_a_lost_answer_and_is_only_retried() -> None:
    kube = WebhookDown()
    before = _failed()

    status, _ = _retried_passes(kube, 1)

    # Whether the Deployment took the change is not known yet: the ConfigMap keeps it.
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]
    assert _reconciled(status)["status"] == "True"  # of the generation before, as it was
    assert _failed() == before


def test_a_configmap_left_on_a_config_never_rolled_out_is_put_back_and_said_on_the_bot() -> None:
    status, _ = _retried_passes(WebhookDown(), 3)

    reconciled = _reconciled(status)
    assert (reconciled["status"], reconciled["reason"]) == ("False", "NotApplied")
    assert reconciled["observedGeneration"] == 2
    assert "failed calling webhook" in reconciled["message"]
    assert "ConfigMap eurusd-paper-config was put back" in reconciled["message"]


def test_a_configmap_left_on_a_config_never_rolled_out_counts_as_failed() -> None:
    before = _failed()

    _retried_passes(WebhookDown(), 3)

    assert _failed() == before + 2  # the retries that saw the write had not landed


def test_a_write_that_lands_at_the_retry_is_not_put_back() -> None:
    """The retry's write is stored, its answer lost: the Deployment read back runs the new
    config, so the ConfigMap keeps it (the pod rolls to it)."""
    kube = WebhookDown(down=1)
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    kube.lose_answer[DEPLOYMENT] = 1
    diff = _edit(body, **FAST_5)
    _pass(ctx, body, "update", diff)  # not stored
    before = _failed()

    written, retry = _pass(ctx, body, "update", diff)  # stored, answer lost

    assert retry is not None
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]
    template = kube.objects[DEPLOYMENT]["spec"]["template"]["metadata"]["annotations"]
    assert template[CONFIG_HASH_ANNOTATION] != body["status"]["configHash"]
    assert "NotApplied" not in [c["reason"] for c in written.get("conditions", [])]
    assert _failed() == before


def test_after_an_operator_restart_the_next_deployment_5xx_is_retried_before_a_put_back() -> None:
    """The operator remembers nothing across a restart, and a ConfigMap found holding the
    change's config says only that the ConfigMap was written, not that the Deployment was: the
    new process's first Deployment 5xx is retried as it is, its second puts the ConfigMap back."""
    kube = WebhookDown()
    body = _running_bot(kube, _context(kube))
    before = copy.deepcopy(kube.objects[CONFIG]["data"])
    diff = _edit(body, **FAST_5)
    _pass(_context(kube), body, "update", diff)
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]
    assert ROLLED_OUT_CONFIG_ANNOTATION in kube.objects[CONFIG]["metadata"]["annotations"]
    ctx = _context(kube)  # a new operator process

    written, retry = _pass(ctx, body, "update", diff)

    assert retry is not None
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]
    assert "NotApplied" not in [c["reason"] for c in written.get("conditions", [])]

    written, retry = _pass(ctx, body, "update", diff)

    assert retry is not None
    assert _reconciled(written)["reason"] == "NotApplied"
    assert kube.objects[CONFIG]["data"] == before


# --- the status timer while a change is retried --------------------------------------------


class WithPods(ApiServer):
    """The bot's pod: its runtime container crash-looping."""

    async def list(self, *_: Any) -> list[dict[str, Any]]:
        return [CRASHED_POD]


def _tick(ctx: OperatorContext, body: dict[str, Any]) -> dict[str, Any]:
    patch = kopf.Patch()
    asyncio.run(
        handlers.poll_status(
            body=cast(kopf.Body, body),
            status=cast(kopf.Status, body["status"]),
            meta=cast(kopf.Meta, body["metadata"]),
            patch=patch,
            memo=kopf.Memo(tradefleet=ctx),
            logger=cast(kopf.Logger, logging.getLogger("test")),
        )
    )
    return timer_status(patch, body)


def test_the_timer_reports_a_failed_runtime_of_a_reconciled_bot() -> None:
    """The control: a bot whose last pass ended is marked Failed at the next tick."""
    kube = WithPods()
    body = _running_bot(kube, _context(kube))
    assert _tick(_context(kube), body).get("phase") == "Failed"


def test_the_timer_reports_a_failed_runtime_of_a_half_applied_bot() -> None:
    kube = WithPods()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    _keeps_no_copy(kube)
    kube.refuse[DEPLOYMENT] = 1000  # a policy refuses the Deployment: retried until a person acts
    written, retry = _pass(ctx, body, "update", _edit(body, **FAST_5))
    assert retry is not None and _reconciled(written)["reason"] == "HalfApplied"
    body["status"] = {**body["status"], **written}
    assert body["status"]["observedGeneration"] == 1  # the handler is retried

    ticked = _tick(ctx, body)  # the runtime crash-loops meanwhile

    assert ticked.get("phase") == "Failed"


def test_the_timer_waits_for_a_change_handler_still_at_work() -> None:
    """The control: a generation no pass has ended yet is the handler's to write."""
    kube = WithPods()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    _edit(body, **FAST_5)  # generation 2, not handled yet

    assert _tick(ctx, body) == {}


# --- a spec the model refuses --------------------------------------------------------------


class HaltedRuntime:
    """A runtime that answers every read: halted, as its spec asks."""

    def saturated(self) -> bool:
        return False

    async def get_status(self, address: str, read_token: str) -> RuntimeSnapshot:
        return RuntimeSnapshot(phase=Phase.HALTED, equity=10.0, currency="USD", halted=True)


def test_a_pause_given_with_an_invalid_spec_reaches_bot_yaml() -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    before = _bot_yaml_spec(kube)

    written, _ = _pass(ctx, body, "update", _edit(body, paused=True, **BAD_TIMEFRAME))

    assert _reconciled(written)["reason"] == "InvalidSpec"
    assert _bot_yaml_spec(kube) == {**before, "paused": True}  # the config as rolled out


def test_a_pause_given_after_an_invalid_spec_reaches_bot_yaml() -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    written, _ = _pass(ctx, body, "update", _edit(body, **BAD_TIMEFRAME))
    body["status"] = {**body["status"], **written}
    assert "paused" not in _bot_yaml_spec(kube)

    _pass(ctx, body, "update", _edit(body, paused=True))

    assert _bot_yaml_spec(kube).get("paused") is True


def test_an_invalid_spec_whose_pause_cannot_be_written_is_retried() -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    kube.refuse[CONFIG] = 1

    written, retry = _pass(ctx, body, "update", _edit(body, paused=True, **BAD_TIMEFRAME))

    assert retry is not None
    assert "could not be written into the bot's ConfigMap" in _reconciled(written)["message"]
    _pass(ctx, body, "update", [])  # kopf's retry
    assert _bot_yaml_spec(kube).get("paused") is True


def test_a_halted_bot_whose_spec_turns_invalid_keeps_its_runtimes_phase() -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    # Halted as its spec says (a fleet stop), and running.
    body["spec"]["emergencyStop"] = {"reason": "desk closed"}
    body["status"].update(phase="Halted", control={"applied": "Halted", "generation": 1})
    written, _ = _pass(ctx, body, "update", _edit(body, **BAD_TIMEFRAME))
    body["status"] = {**body["status"], **written}
    assert body["status"]["phase"] == "Halted"  # the pod runs on as it was rolled out

    timer_ctx = OperatorContext(
        settings=OperatorSettings(),
        kube=cast(KubeApi, kube),
        runtime=cast(RuntimeClients, HaltedRuntime()),
    )
    ticked = _tick(timer_ctx, body)

    assert ticked.get("phase", body["status"]["phase"]) == "Halted"


# --- the failed-reconciles series ----------------------------------------------------------

PROBE = """
from prometheus_client import REGISTRY
import tradefleet_operator.handlers  # noqa: F401  (the operator's metrics, as served)
for outcome in ("ok", "retry", "failed", "invalid"):
    print(REGISTRY.get_sample_value("tradefleet_operator_reconciles_total", {"outcome": outcome}))
"""


def test_the_reconciles_series_exist_at_zero_before_the_first_pass() -> None:
    """A fresh operator process (as after a restart or upgrade) exposes each outcome at 0, so
    that its first failure is an increase Prometheus' ``increase()`` can see."""
    found = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert found.stdout.split() == ["0.0"] * 4


# --- quantities kube-apiserver stores ------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        pytest.param(
            {"requests": {"memory": "512Mi "}, "limits": {"memory": "1Gi"}},
            "spec.runtime.resources.requests.memory",
            id="space",
        ),
        pytest.param(
            {"limits": {"hugepages-2Mi": "2097151.5", "memory": "1Gi"}},
            "spec.runtime.resources.limits.hugepages-2Mi",
            id="hugepages-rounded",
        ),
    ],
)
def test_a_value_kube_apiserver_stores_is_no_refusal_but_admission_names_it(
    resources: dict[str, Any], field: str
) -> None:
    assert kubernetes_refusals(resources, None) == []
    assert [
        error.field for error in spec_quantity_errors({"runtime": {"resources": resources}})
    ] == [field]


@pytest.mark.parametrize(
    "resources",
    [
        pytest.param({"limits": {"memory": "512Mi\t"}}, id="tab"),  # escaped in JSON: untrimmed
        pytest.param({"limits": {"memory": " lots "}}, id="no-quantity-inside"),
        pytest.param({"limits": {"hugepages-2Mi": "1.5", "memory": "1Gi"}}, id="hugepages-2-bytes"),
        pytest.param({"limits": {"hugepages-2Mi": "3Mi", "memory": "1Gi"}}, id="hugepages-1.5"),
    ],
)
def test_a_value_kube_apiserver_refuses_is_still_a_refusal(resources: dict[str, Any]) -> None:
    assert kubernetes_refusals(resources, None) != []


# --- only the Deployment's own 5xx is evidence that its write did not land -------------------

SERVICE = "/api/v1/namespaces/trading/services/eurusd-paper"


class ServiceReadFails(WebhookDown):
    """Deployment writes answered 500 and not stored; and the first read of the bot's Service
    answered 503, so that a pass fails after it wrote the ConfigMap, before the Deployment."""

    def __init__(self) -> None:
        super().__init__()
        self.service_reads_failing = 0

    async def get(self, path: str) -> dict[str, Any] | None:
        if path == SERVICE and self.service_reads_failing > 0:
            self.service_reads_failing -= 1
            raise KubeError(503, "ServiceUnavailable", "etcd leader changed")
        return await super().get(path)


def test_another_objects_5xx_is_no_evidence_that_a_deployment_write_did_not_land(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    kube = ServiceReadFails()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    before = copy.deepcopy(kube.objects[CONFIG]["data"])
    diff = _edit(body, **FAST_5)
    kube.service_reads_failing = 1
    _, retry = _pass(ctx, body, "update", diff)  # the ConfigMap written, no Deployment write
    assert retry is not None
    # No Deployment write of unknown outcome: the ConfigMap is put back at once.
    assert kube.objects[CONFIG]["data"] == before
    events.clear()

    written, retry = _pass(ctx, body, "update", diff)  # the first Deployment write: 500

    # Its outcome is not known (a lost answer may be a write made): retried as it is.
    assert retry is not None
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]
    assert "NotApplied" not in [c["reason"] for c in written.get("conditions", [])]
    assert "NotApplied" not in [reason for reason, _, _ in events]

    written, retry = _pass(ctx, body, "update", diff)  # the Deployment's second 500

    assert retry is not None
    assert _reconciled(written)["reason"] == "NotApplied"
    assert kube.objects[CONFIG]["data"] == before


# --- a Deployment write that lands after the ConfigMap was put back ------------------------


class TimesOutThenCommits(ApiServer):
    """Deployment writes time out (504). The first never commits; the second commits just
    after the operator read the Deployment back (right as it puts the ConfigMap back). The
    pod rolled then starts on whatever ``bot.yaml`` the ConfigMap holds at that moment.
    ``down``: Deployment writes answered 503 and not stored after those two."""

    def __init__(self) -> None:
        super().__init__()
        self.deployment_writes = 0
        self.in_flight: Mapping[str, Any] | None = None
        self.pod_started_on: str | None = None
        self.down = 0

    async def patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        if path == DEPLOYMENT and self.deployment_writes < 2:
            self.deployment_writes += 1
            if self.deployment_writes == 2:
                self.in_flight = copy.deepcopy(dict(patch))
            raise KubeError(504, "Timeout", "the request may still be processing")
        if path == DEPLOYMENT and self.down > 0:
            self.down -= 1
            raise KubeError(503, "ServiceUnavailable", "the API server is shutting down")
        patched = await super().patch(path, patch)
        if path == CONFIG and self.in_flight is not None:
            await FakeKube.patch(self, DEPLOYMENT, self.in_flight)  # the timed-out write lands
            self.in_flight = None
            self.pod_started_on = self.objects[CONFIG]["data"]["bot.yaml"]
        return patched


def _landed_on_the_put_back_config(
    kube: TimesOutThenCommits, ctx: OperatorContext
) -> tuple[dict[str, Any], list[Any], str]:
    """A running bot edited to fast: 5 whose second Deployment write lands after the put-back:
    its body, kopf's diff and the config hash it ran before."""
    body = _running_bot(kube, ctx)
    old_hash = body["status"]["configHash"]
    diff = _edit(body, **FAST_5)
    for _ in range(2):  # the first 504 (retried as it is), then the retry's 504 (NotApplied)
        written, retry = _pass(ctx, body, "update", diff)
        assert retry is not None
        body["status"] = {**body["status"], **written}
    assert _reconciled(body["status"])["reason"] == "NotApplied"
    template = kube.objects[DEPLOYMENT]["spec"]["template"]["metadata"]["annotations"]
    assert template[CONFIG_HASH_ANNOTATION] != old_hash  # the timed-out write landed ...
    assert kube.pod_started_on is not None
    assert objects.file_config_hash(kube.pod_started_on) == old_hash  # ... onto the old config
    assert yaml.safe_load(kube.pod_started_on)["spec"]["strategy"]["params"]["fast"] != 5
    return body, diff, old_hash


def _template(kube: ApiServer) -> dict[str, Any]:
    found: dict[str, Any] = copy.deepcopy(kube.objects[DEPLOYMENT]["spec"]["template"])
    return found


def test_a_pod_started_on_a_put_back_config_is_rolled_again_and_said(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    kube = TimesOutThenCommits()
    ctx = _context(kube)
    body, diff, old_hash = _landed_on_the_put_back_config(kube, ctx)
    landed = _template(kube)
    new_hash = landed["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    events.clear()

    written, retry = _pass(ctx, body, "update", diff)  # kopf's next retry
    body["status"] = {**body["status"], **written}

    assert retry is None
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]
    rolled = _template(kube)
    stamp = rolled["metadata"]["annotations"][CONFIG_REPAIRED_ANNOTATION]
    assert rolled != landed  # a new pod template: the pod rolls again, onto fast: 5
    assert rolled["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] == new_hash
    assert kube.objects[CONFIG]["metadata"]["annotations"][CONFIG_REPAIRED_ANNOTATION] == stamp
    warned = [(reason, message) for reason, message, warning in events if warning]
    assert [reason for reason, _ in warned] == ["ConfigMapBehind"]
    assert old_hash in warned[0][1] and new_hash in warned[0][1]
    assert _reconciled(body["status"])["reason"] == "UpToDate"

    events.clear()
    _pass(ctx, body, "update", diff)  # nothing is wrong any more: no roll

    assert _template(kube) == rolled
    assert [reason for reason, _, warning in events if warning] == []


def test_a_roll_again_whose_write_failed_is_made_at_the_next_pass(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    kube = TimesOutThenCommits()
    ctx = _context(kube)
    body, diff, _ = _landed_on_the_put_back_config(kube, ctx)
    landed = _template(kube)
    kube.down = 1
    events.clear()

    _, retry = _pass(ctx, body, "update", diff)  # the ConfigMap rewritten; the roll answered 503

    assert retry is not None
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]
    assert _template(kube) == landed
    # The ConfigMap no longer looks behind: what is left to do is kept on it.
    stamp = kube.objects[CONFIG]["metadata"]["annotations"][CONFIG_REPAIRED_ANNOTATION]

    _, retry = _pass(ctx, body, "update", diff)

    assert retry is None
    assert _template(kube)["metadata"]["annotations"][CONFIG_REPAIRED_ANNOTATION] == stamp
    assert [reason for reason, _, warning in events if warning].count("ConfigMapBehind") == 1


def test_a_change_applied_in_one_pass_rolls_once_and_carries_no_repair_stamp() -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    diff = _edit(body, **FAST_5)

    for _ in range(2):  # the change, then a pass that finds everything as the spec says
        written, retry = _pass(ctx, body, "update", diff)
        assert retry is None
        body["status"] = {**body["status"], **written}

    assert CONFIG_REPAIRED_ANNOTATION not in _template(kube)["metadata"]["annotations"]
    assert CONFIG_REPAIRED_ANNOTATION not in (
        kube.objects[CONFIG]["metadata"].get("annotations") or {}
    )


# --- the InvalidSpec Warning follows the error, not kopf's retry count ------------------------

BAD_MODE = {"mode": "yolo"}


def _retried_pass(
    ctx: OperatorContext, body: dict[str, Any], diff: Any, retry: int
) -> tuple[dict[str, Any], kopf.TemporaryError | None]:
    """kopf's retry of the update handler (``retry`` as kopf counts it), on the newest body."""
    patch = kopf.Patch()
    error: kopf.TemporaryError | None = None
    try:
        asyncio.run(
            handlers.reconcile(
                body=cast(kopf.Body, body),
                meta=cast(kopf.Meta, body["metadata"]),
                status=cast(kopf.Status, body.get("status") or {}),
                patch=patch,
                memo=kopf.Memo(tradefleet=ctx),
                logger=cast(kopf.Logger, logging.getLogger("test")),
                reason="update",
                diff=diff,
                retry=retry,
            )
        )
    except kopf.TemporaryError as raised:
        error = raised
    return written_status(patch, body), error


def _invalid_and_retried(kube: ApiServer, ctx: OperatorContext) -> dict[str, Any]:
    """A running bot edited into an invalid spec with a pause the ConfigMap cannot take yet:
    the pass is retried (kopf keeps its retry count across edits made meanwhile)."""
    body = _running_bot(kube, ctx)
    kube.refuse[CONFIG] = 10
    written, retry = _pass(ctx, body, "update", _edit(body, paused=True, **BAD_TIMEFRAME))
    assert retry is not None
    body["status"] = {**body["status"], **written}
    return body


def test_a_changed_invalid_spec_during_retries_gets_its_own_warning(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _invalid_and_retried(kube, ctx)
    assert [r for r, _, w in events if w].count("InvalidSpec") == 1
    events.clear()

    # Edited while retried: the timeframe fixed, the mode broken (kopf: retry 1, same cycle).
    body["spec"]["market"]["timeframe"] = "1h"
    diff = _edit(body, **BAD_MODE)
    written, _ = _retried_pass(ctx, body, diff, retry=1)

    condition = _reconciled(written)
    assert condition["reason"] == "InvalidSpec" and "mode" in condition["message"]
    warned = [(reason, message) for reason, message, warning in events if warning]
    assert [r for r, m in warned if r == "InvalidSpec" and "mode" in m] == ["InvalidSpec"]


def test_the_same_invalid_spec_retried_is_warned_of_once(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _invalid_and_retried(kube, ctx)

    for retry in (1, 2):
        written, _ = _retried_pass(ctx, body, [], retry=retry)
        body["status"] = {**body["status"], **written}

    assert [r for r, _, w in events if w].count("InvalidSpec") == 1
