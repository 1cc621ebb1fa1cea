"""A ConfigMap written ahead of its Deployment, which never took the change, is put back to the
config the pod template was rolled out with, and rolls no pod that never left that config; a
ConfigMap behind its pod template (a write that landed late, a hand edit) rolls the pod once,
and the Warning says what is known.

- The spec put back to the running config while the ConfigMap is ahead (the first Deployment
  write answered 500, not stored), with a report of the running config taken after the write
  ahead: the ConfigMap is put back, the pod template is untouched, no ``ConfigMapBehind``
  Warning; when the runtime reports it runs the config held (its pod restarted meanwhile), the
  pod rolls once, and the Warning says so. (Without such a report it rolls once too:
  ``test_reconcile_runtime_report.py``.)
- A pass that fails before it sends its Deployment write (here the Service read answers 503)
  leaves no write of unknown outcome: the ConfigMap is put back at once, said on the bot
  (``NotApplied``) and counted failed; only an earlier Deployment 5xx, remembered, is waited for.
- A hand edit found by a pass is rewritten and rolled once; the Warning names no 5xx.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, NamedTuple

import yaml

from tests.operator.test_reconcile_refused_followups import (  # noqa: F401 (fixture)
    WebhookDown,
    _failed,
    _no_kopf_events,
)
from tests.operator.test_reconcile_refused_whole import (  # noqa: F401 (fixture)
    CONFIG,
    DEPLOYMENT,
    ApiServer,
    _context,
    _edit,
    _pass,
    _reconciled,
    _running_bot,
    events,
)
from tradefleet_operator import objects
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.k8s_api import KubeError
from tradefleet_operator.settings import (
    CONFIG_HASH_ANNOTATION,
    CONFIG_REPAIRED_ANNOTATION,
    ROLLED_OUT_CONFIG_ANNOTATION,
    ROLLED_OUT_HASH_ANNOTATION,
)
from tradefleet_operator.status_mapping import precise_now
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.spec.checks import config_hash as runtime_config_hash

FAST_5 = {"strategy": {"name": "ema-cross", "params": {"fast": 5}}}
SERVICE = "/api/v1/namespaces/trading/services/eurusd-paper"


def _template(kube: ApiServer) -> dict[str, Any]:
    found: dict[str, Any] = copy.deepcopy(kube.objects[DEPLOYMENT]["spec"]["template"])
    return found


def _warnings(posted: list[tuple[str, str, bool]]) -> list[tuple[str, str]]:
    return [(reason, message) for reason, message, warning in posted if warning]


class _Reverted(NamedTuple):
    ctx: OperatorContext
    body: dict[str, Any]
    template: dict[str, Any]  # the pod template before the edit
    config: dict[str, Any]  # the ConfigMap's data before the edit
    diff: list[Any]  # kopf's diff of the spec put back (not reconciled yet)


def _ahead_then_reverted(kube: WebhookDown, posted: list[tuple[str, str, bool]]) -> _Reverted:
    """A running bot edited to fast: 5 whose first Deployment write answered 500 (not stored),
    leaving the ConfigMap ahead; then its spec put back to the original."""
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    running = _template(kube)
    original = copy.deepcopy(body["spec"]["strategy"])
    config_before = copy.deepcopy(kube.objects[CONFIG]["data"])

    _, retry = _pass(ctx, body, "update", _edit(body, **FAST_5))
    assert retry is not None  # unknown outcome: retried as it is, the ConfigMap left ahead
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]
    assert _template(kube) == running  # the pod never left its config
    posted.clear()
    return _Reverted(ctx, body, running, config_before, _edit(body, strategy=original))


def test_reverting_to_the_running_config_while_the_configmap_is_ahead_does_not_roll(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    kube = WebhookDown(down=1)
    ctx, body, running, config_before, revert = _ahead_then_reverted(kube, events)
    # The runtime, asked after the write ahead, reports the config its template names.
    running_hash = running["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    body["status"].update(runtimeConfigHash=running_hash, runtimeReportedAt=precise_now())

    written, retry = _pass(ctx, body, "update", revert)

    assert retry is None
    assert _reconciled(written)["reason"] == "UpToDate"
    assert kube.objects[CONFIG]["data"] == config_before
    annotations = _template(kube)["metadata"]["annotations"]
    assert CONFIG_REPAIRED_ANNOTATION not in annotations, "live pod rolled for nothing"
    assert _template(kube) == running
    assert "ConfigMapBehind" not in [reason for reason, _, _ in events]
    # The copy kept for the write ahead is of no use now, and is dropped.
    kept = kube.objects[CONFIG]["metadata"].get("annotations") or {}
    assert ROLLED_OUT_HASH_ANNOTATION not in kept and ROLLED_OUT_CONFIG_ANNOTATION not in kept


def test_reverting_rolls_a_pod_whose_runtime_reports_the_config_held(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """The pod restarted while the ConfigMap was ahead (an eviction): its runtime runs fast: 5
    under the old template, so putting the ConfigMap back is not enough."""
    kube = WebhookDown(down=1)
    ctx, body, running, config_before, revert = _ahead_then_reverted(kube, events)
    held = kube.objects[CONFIG]["data"]["bot.yaml"]
    reported = runtime_config_hash(parse_manifest(yaml.safe_load(held), "bot.yaml"))
    body["status"]["runtimeConfigHash"] = reported
    hash_before = running["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]

    _, retry = _pass(ctx, body, "update", revert)

    assert retry is None
    assert kube.objects[CONFIG]["data"] == config_before
    annotations = _template(kube)["metadata"]["annotations"]
    assert CONFIG_REPAIRED_ANNOTATION in annotations  # rolled once
    assert annotations[CONFIG_HASH_ANNOTATION] == hash_before
    warned = _warnings(events)
    assert [reason for reason, _ in warned] == ["ConfigMapBehind"]
    message = warned[0][1]
    assert reported in message and hash_before in message
    assert "its runtime reports" in message and "5xx" not in message


def test_a_pause_in_the_held_config_is_still_recognised_in_the_runtimes_report() -> None:
    """The runtime hashes the manifest it read whole (a pause included); the operator's hash
    leaves the pause out: either is the held config's."""
    kube = WebhookDown(down=1)
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    _pass(ctx, body, "update", _edit(body, paused=True, **FAST_5))
    held = kube.objects[CONFIG]["data"]["bot.yaml"]
    assert yaml.safe_load(held)["spec"]["paused"] is True
    whole = runtime_config_hash(parse_manifest(yaml.safe_load(held), "bot.yaml"))
    assert whole != objects.file_config_hash(held)

    assert objects.reports_config(held, whole)
    assert objects.reports_config(held, objects.file_config_hash(held))
    assert not objects.reports_config(held, None)
    assert not objects.reports_config(held, body["status"]["configHash"])


# --- a pass that never sent its Deployment write ------------------------------------------


class ServiceReadFails(WebhookDown):
    """The bot's Service read answered 503 while ``service_reads_failing`` lasts; Deployment
    writes answered 500 (not stored) ``down`` times."""

    def __init__(self, down: int = 0) -> None:
        super().__init__(down=down)
        self.service_reads_failing = 0

    async def get(self, path: str) -> dict[str, Any] | None:
        if path == SERVICE and self.service_reads_failing > 0:
            self.service_reads_failing -= 1
            raise KubeError(503, "ServiceUnavailable", "etcd leader changed")
        return await super().get(path)


def test_a_configmap_ahead_of_a_deployment_never_written_is_put_back(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    kube = ServiceReadFails()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    template = _template(kube)
    running = template["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    kube.service_reads_failing = 10**6  # the Service read keeps answering 503
    diff = _edit(body, **FAST_5)
    failed_before = _failed()
    events.clear()

    for _ in range(5):  # the first pass and kopf's retries
        written, retry = _pass(ctx, body, "update", diff)
        assert retry is not None
        body["status"] = {**body["status"], **written}

    assert _template(kube) == template  # never written
    held = objects.file_config_hash(kube.objects[CONFIG]["data"]["bot.yaml"])
    # A pod restarting now must start on what its template was rolled out with.
    assert held == running, "ConfigMap left on a config no pod template was rolled out with"
    reconciled = _reconciled(body["status"])
    assert (reconciled["status"], reconciled["reason"]) == ("False", "NotApplied")
    assert "etcd leader changed" in reconciled["message"]
    assert "ConfigMap eurusd-paper-config was put back" in reconciled["message"]
    assert [reason for reason, _ in _warnings(events)] == ["NotApplied"]  # once, not per retry
    assert _failed() == failed_before + 5


def test_a_pass_failing_before_its_deployment_write_waits_for_an_earlier_one_pending(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """An earlier pass's Deployment write answered 500 (it may still land): a retry that fails
    before writing the Deployment again keeps the ConfigMap ahead, retried as it is."""
    kube = ServiceReadFails(down=1)
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    diff = _edit(body, **FAST_5)
    _, retry = _pass(ctx, body, "update", diff)  # the Deployment write: 500, remembered
    assert retry is not None
    kube.service_reads_failing = 1
    failed_before = _failed()
    events.clear()

    written, retry = _pass(ctx, body, "update", diff)

    assert retry is not None
    assert "fast: 5" in kube.objects[CONFIG]["data"]["bot.yaml"]
    assert "NotApplied" not in [c["reason"] for c in written.get("conditions", [])]
    assert "NotApplied" not in [reason for reason, _ in _warnings(events)]
    assert _failed() == failed_before

    written, retry = _pass(ctx, body, "update", diff)  # the API server answers again

    assert retry is None
    assert _reconciled(written)["reason"] == "UpToDate"
    assert _template(kube)["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] == (
        objects.file_config_hash(kube.objects[CONFIG]["data"]["bot.yaml"])
    )


# --- a ConfigMap behind its pod template: rolled once, said as known -----------------------


def _hand_edit(kube: ApiServer, fast: int) -> str:
    """The ConfigMap's bot.yaml edited by hand to another strategy param; its config hash."""
    config_map: Mapping[str, Any] = kube.objects[CONFIG]
    document = yaml.safe_load(config_map["data"]["bot.yaml"])
    document["spec"]["strategy"]["params"]["fast"] = fast
    text = yaml.safe_dump(document)
    kube.objects[CONFIG]["data"]["bot.yaml"] = text
    found = objects.file_config_hash(text)
    assert found is not None
    return found


def test_a_hand_edited_configmap_is_rewritten_rolled_once_and_said_without_a_cause_claimed(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    running = _template(kube)["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    config_before = copy.deepcopy(kube.objects[CONFIG]["data"])
    edited = _hand_edit(kube, 7)
    events.clear()

    _, retry = _pass(ctx, body, "resume")

    assert retry is None
    assert kube.objects[CONFIG]["data"] == config_before
    assert CONFIG_REPAIRED_ANNOTATION in _template(kube)["metadata"]["annotations"]
    warned = _warnings(events)
    assert [reason for reason, _ in warned] == ["ConfigMapBehind"]
    message = warned[0][1]
    assert edited in message and running in message
    assert "hand edit" in message and "5xx" not in message


def test_a_hand_edit_after_a_revert_is_still_rolled(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """The revert drops the copy kept for the write ahead, so a later hand edit does not look
    written ahead (put back without a roll)."""
    kube = WebhookDown(down=1)
    ctx, body, _, _, revert = _ahead_then_reverted(kube, events)
    body["status"] = {**body["status"], **_pass(ctx, body, "update", revert)[0]}
    _hand_edit(kube, 7)
    events.clear()

    _, retry = _pass(ctx, body, "resume")

    assert retry is None
    assert CONFIG_REPAIRED_ANNOTATION in _template(kube)["metadata"]["annotations"]
    assert [reason for reason, _ in _warnings(events)] == ["ConfigMapBehind"]
