"""Which config the runtime pod reads is proven only by its runtime's report, taken late enough.

- A spec put back to the running config while the ConfigMap is ahead of its Deployment (the
  first Deployment write answered 500, not stored): the status timer is idle while that change
  is at work, so no report taken after the write ahead says what the pod runs. The pod rolls
  once, and the ``ConfigMapBehind`` Warning says that it cannot be told whether a restart read
  the held config. A report of the template's config taken before the write ahead proves
  nothing either.
- A ConfigMap put back already (the change ``NotApplied``) while the runtime reports, freshly,
  the config it held: the pod rolls once at the next pass that keeps the template's config,
  with a ``RuntimeConfigDiffers`` Warning naming both hashes; the roll's stamp is made once and
  sent again while the Deployment write fails (more in test_reconcile_put_back_record.py).
- A report asked before the pod template was written (the old pod, still stopping) rolls
  nothing; nor does a hash no put-back recorded (an older image hashing otherwise), nor a pause
  in the manifest the pod started with.
- ``status.runtimeReportedAt``: moved when the reported hash changes and, while a change is
  not applied, once after the pass that said so, else kept (no status write per tick); an odd
  stored value proves nothing and crashes nothing.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any, NamedTuple, cast

import pytest
import yaml

from tests.operator.test_reconcile_refused_followups import WebhookDown, _tick
from tests.operator.test_reconcile_refused_whole import (  # noqa: F401 (autouse fixture)
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
from tradefleet_operator import objects, steering
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.names import Phase
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import CONFIG_HASH_ANNOTATION, CONFIG_REPAIRED_ANNOTATION
from tradefleet_operator.snapshot import RuntimeSnapshot
from tradefleet_operator.status_mapping import (
    precise_now,
    reachable_status,
    reported_at,
    set_condition,
)
from tradefleet_operator.status_model import BotStatus, status_changes
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.spec.checks import config_hash as runtime_config_hash

FAST_5 = {"strategy": {"name": "ema-cross", "params": {"fast": 5}}}


class RestartedRuntime:
    """The bot's runtime, started on some bot.yaml: it reports that config's hash."""

    def __init__(self, config_hash: str) -> None:
        self.config_hash = config_hash
        self.reads = 0

    def saturated(self) -> bool:
        return False

    async def get_status(self, address: str, read_token: str) -> RuntimeSnapshot:
        self.reads += 1
        return RuntimeSnapshot(phase=Phase.RUNNING, config_hash=self.config_hash)


class PausedRuntime(RestartedRuntime):
    """A runtime that takes the operator's pause."""

    def __init__(self) -> None:
        super().__init__("")

    async def invoke(self, address: str, token: str, call: object) -> RuntimeSnapshot:
        return RuntimeSnapshot(phase=Phase.PAUSED, paused=True, config_hash=self.config_hash)


def _runner_hash(text: str) -> str:
    """The hash a runtime started on ``text`` reports (of the manifest it read, whole)."""
    return runtime_config_hash(parse_manifest(yaml.safe_load(text), "bot.yaml"))


def _template_annotations(kube: ApiServer) -> dict[str, str]:
    found: dict[str, str] = kube.objects[DEPLOYMENT]["spec"]["template"]["metadata"]["annotations"]
    return dict(found)


def _warnings(posted: list[tuple[str, str, bool]]) -> list[tuple[str, str]]:
    return [(reason, message) for reason, message, warning in posted if warning]


def _later(moment: str, seconds: float) -> str:
    parsed = objects.parse_time(moment)
    assert parsed is not None
    shifted = parsed + datetime.timedelta(seconds=seconds)
    return shifted.isoformat().replace("+00:00", "Z")


# --- a revert while the ConfigMap is ahead: no proof, one roll -------------------------------


def test_a_pod_restarted_on_the_configmap_ahead_is_rolled_back_at_a_revert(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    kube = WebhookDown(down=1)  # the first Deployment write: 500, not stored
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    template_hash = _template_annotations(kube)[CONFIG_HASH_ANNOTATION]
    original = copy.deepcopy(body["spec"]["strategy"])

    written, retry = _pass(ctx, body, "update", _edit(body, **FAST_5))
    assert retry is not None  # retried as it is: the ConfigMap is left ahead
    body["status"] = {**body["status"], **written}
    held = kube.objects[CONFIG]["data"]["bot.yaml"]
    assert "fast: 5" in held

    # The pod is evicted now and its new runtime starts on bot.yaml: fast: 5.
    runtime = RestartedRuntime(_runner_hash(held))
    ctx.runtime = cast(RuntimeClients, runtime)
    for _ in range(3):  # status ticks before the person reverts: idle, the change is at work
        body["status"] = {**body["status"], **_tick(ctx, body)}
    assert runtime.reads == 0
    events.clear()

    written, retry = _pass(ctx, body, "update", _edit(body, strategy=original))

    assert retry is None
    assert _reconciled(written)["reason"] == "UpToDate"
    annotations = _template_annotations(kube)
    assert annotations[CONFIG_HASH_ANNOTATION] == template_hash
    assert CONFIG_REPAIRED_ANNOTATION in annotations, "pod left on the config held"
    assert "fast: 5" not in kube.objects[CONFIG]["data"]["bot.yaml"]
    warned = _warnings(events)
    assert [reason for reason, _ in warned] == ["ConfigMapBehind"]
    message = warned[0][1]
    assert objects.file_config_hash(held) in message and template_hash in message
    assert "cannot be told whether a restart meanwhile read" in message


def test_a_report_of_the_running_config_taken_before_the_write_ahead_proves_nothing(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    kube = WebhookDown(down=1)
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    template_hash = _template_annotations(kube)[CONFIG_HASH_ANNOTATION]
    original = copy.deepcopy(body["spec"]["strategy"])
    # The runtime reported the running config, before the change was written.
    body["status"].update(runtimeConfigHash=template_hash, runtimeReportedAt=precise_now())

    _pass(ctx, body, "update", _edit(body, **FAST_5))
    events.clear()
    _, retry = _pass(ctx, body, "update", _edit(body, strategy=original))

    assert retry is None
    assert CONFIG_REPAIRED_ANNOTATION in _template_annotations(kube)
    assert [reason for reason, _ in _warnings(events)] == ["ConfigMapBehind"]


# --- a report of a config the template does not name ----------------------------------------


def test_a_pod_reported_on_a_config_never_rolled_out_is_rolled_at_a_revert(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """A webhook down: every retry writes the ConfigMap ahead, then its Deployment write fails
    and the ConfigMap is put back. A pod that restarts inside such a window starts on fast: 5,
    and its runtime says so: the timer reads it (the change is NotApplied, of this generation)
    into status.runtimeConfigHash. The revert finds the ConfigMap put back already: the pod is
    rolled once all the same, as soon as the Deployment takes a write."""
    kube = WebhookDown()  # every Deployment write: 500, not stored
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    template_hash = _template_annotations(kube)[CONFIG_HASH_ANNOTATION]
    original = copy.deepcopy(body["spec"]["strategy"])
    diff = _edit(body, **FAST_5)
    held = ""
    for _ in range(2):  # the first 5xx (remembered), then NotLanded: put back
        written, retry = _pass(ctx, body, "update", diff)
        assert retry is not None
        body["status"] = {**body["status"], **written}
        held = held or kube.objects[CONFIG]["data"]["bot.yaml"]
    assert _reconciled(body["status"])["reason"] == "NotApplied"
    assert "fast: 5" in held and "fast: 5" not in kube.objects[CONFIG]["data"]["bot.yaml"]

    running_held = _runner_hash(held)
    ctx.runtime = cast(RuntimeClients, RestartedRuntime(running_held))
    body["status"] = {**body["status"], **_tick(ctx, body)}
    assert body["status"]["runtimeConfigHash"] == running_held  # the operator knows
    assert "runtimeReportedAt" in body["status"]
    revert = _edit(body, strategy=original)
    events.clear()

    # The webhook is still down: the roll cannot be written yet, and is retried.
    _, retry = _pass(ctx, body, "update", revert)
    assert retry is not None
    stamp = objects.repair_stamp(kube.objects[CONFIG])
    assert stamp is not None
    _, retry = _pass(ctx, body, "update", revert)
    assert retry is not None
    assert objects.repair_stamp(kube.objects[CONFIG]) == stamp, "one stamp per cause"

    kube.down = 0  # the webhook answers again
    written, retry = _pass(ctx, body, "update", revert)

    assert retry is None
    assert _reconciled(written)["reason"] == "UpToDate"
    annotations = _template_annotations(kube)
    assert annotations[CONFIG_HASH_ANNOTATION] == template_hash
    assert annotations[CONFIG_REPAIRED_ANNOTATION] == stamp
    rolled = [m for r, m in _warnings(events) if r == "RuntimeConfigDiffers"]
    assert len(rolled) == 1
    assert running_held in rolled[0] and template_hash in rolled[0]


class _Applied(NamedTuple):
    ctx: OperatorContext
    body: dict[str, Any]
    old_hash: str  # the pod template's config before the change
    new_hash: str  # after it
    asked_before: str  # a time before the template was written
    written_at: str  # when the pass wrote the template (the Deployment's annotation)


def _applied(kube: ApiServer) -> _Applied:
    """A running bot whose change to fast: 5 was applied (its pod template rolled)."""
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    old_hash = _template_annotations(kube)[CONFIG_HASH_ANNOTATION]
    asked_before = precise_now()
    written, retry = _pass(ctx, body, "update", _edit(body, **FAST_5))
    assert retry is None
    body["status"] = {**body["status"], **written}
    new_hash = _template_annotations(kube)[CONFIG_HASH_ANNOTATION]
    assert new_hash != old_hash
    return _Applied(ctx, body, old_hash, new_hash, asked_before, _template_written_at(kube))


def _template_written_at(kube: ApiServer) -> str:
    found: str = kube.objects[DEPLOYMENT]["metadata"]["annotations"][
        objects.TEMPLATE_WRITTEN_AT_ANNOTATION
    ]
    return found


def test_a_report_asked_before_the_template_was_written_rolls_nothing(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """The old pod (the config before), still answering while it stops."""
    kube = ApiServer()
    bot = _applied(kube)
    bot.body["status"].update(runtimeConfigHash=bot.old_hash, runtimeReportedAt=bot.asked_before)
    events.clear()

    _, retry = _pass(bot.ctx, bot.body, "resume")

    assert retry is None
    assert CONFIG_REPAIRED_ANNOTATION not in _template_annotations(kube)
    assert _warnings(events) == []


def test_a_runtime_reporting_a_hash_no_put_back_recorded_is_not_rolled(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """An older runtime image hashes configs otherwise (or a person's UpdateParams changed the
    params in force): its hash, fresh after the template was written, names no config the
    operator held ahead. No roll, at any pass."""
    kube = ApiServer()
    bot = _applied(kube)
    foreign = "0123456789abcdef"
    events.clear()

    for seconds in (0.001, 1, 2):
        later = _later(bot.written_at, seconds)
        bot.body["status"].update(runtimeConfigHash=foreign, runtimeReportedAt=later)
        _, retry = _pass(bot.ctx, bot.body, "resume")
        assert retry is None

    assert CONFIG_REPAIRED_ANNOTATION not in _template_annotations(kube)
    assert _warnings(events) == []


def test_a_pause_in_the_manifest_the_pod_started_with_is_no_difference(
    events: list[tuple[str, str, bool]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runtime hashes the manifest it read whole: a pod started paused reports the
    config's hash with the pause, which the operator's hash leaves out."""
    kube = ApiServer()
    bot = _applied(kube)
    bot.ctx.runtime = cast(RuntimeClients, PausedRuntime())
    monkeypatch.setattr(steering, "event", lambda *_, **__: None)  # "paused" (not a warning)
    written, retry = _pass(bot.ctx, bot.body, "update", _edit(bot.body, paused=True))
    assert retry is None
    bot.body["status"] = {**bot.body["status"], **written}
    paused_text = kube.objects[CONFIG]["data"]["bot.yaml"]
    assert yaml.safe_load(paused_text)["spec"]["paused"] is True
    started_paused = _runner_hash(paused_text)
    assert started_paused != bot.new_hash
    bot.body["status"].update(
        runtimeConfigHash=started_paused, runtimeReportedAt=_later(bot.written_at, 0.001)
    )
    events.clear()

    _, retry = _pass(bot.ctx, bot.body, "resume")

    assert retry is None
    assert CONFIG_REPAIRED_ANNOTATION not in _template_annotations(kube)
    assert _warnings(events) == []


# --- status.runtimeReportedAt ----------------------------------------------------------------

T0, T1 = "2026-01-05T10:00:00.000001Z", "2026-01-05T10:00:10.000001Z"


def test_the_report_time_moves_with_the_hash_and_while_a_change_is_not_applied() -> None:
    seen = BotStatus(observed_generation=2, runtime_config_hash="aaaa", runtime_reported_at=T0)
    same = RuntimeSnapshot(phase=Phase.RUNNING, config_hash="aaaa")
    other = RuntimeSnapshot(phase=Phase.RUNNING, config_hash="bbbb")

    assert reported_at(seen, same, 2, T1) == T0  # nothing new: no status write per tick
    assert reported_at(seen, other, 2, T1) == T1
    assert reported_at(seen, same, 3, T1) == T1  # generation 3 not applied yet
    assert reported_at(BotStatus(), same, None, T1) == T1
    edited = seen.model_copy(update={"runtime_reported_at": "yesterday"})
    assert reported_at(edited, same, 2, T1) == T1  # an odd stored time is replaced
    stored = reachable_status(seen, same, 2, "2026-01-05T10:00:10Z", T1).wire()
    again = reachable_status(BotStatus.read(stored), same, 2, "2026-01-05T10:00:20Z", T1)
    assert status_changes(stored, again) == {}
    assert stored["runtimeReportedAt"] == T0


def test_the_report_time_moves_once_after_the_pass_that_left_a_change_not_applied() -> None:
    same = RuntimeSnapshot(phase=Phase.RUNNING, config_hash="aaaa")
    not_applied = set_condition(
        None, "Reconciled", False, "NotApplied", "x", 3, "2026-01-05T10:00:05Z"
    )
    before = BotStatus(
        observed_generation=2,
        runtime_config_hash="aaaa",
        runtime_reported_at=T0,  # taken before the pass (10:00:05)
        conditions=not_applied,
    )
    assert reported_at(before, same, 3, T1) == T1  # after it: the proof a revert needs
    after = before.model_copy(update={"runtime_reported_at": T1})
    later = "2026-01-05T10:00:20.000001Z"
    assert reported_at(after, same, 3, later) == T1  # then kept: no status write per tick
    in_the_second = after.model_copy(update={"runtime_reported_at": "2026-01-05T10:00:05.5Z"})
    assert reported_at(in_the_second, same, 3, later) == "2026-01-05T10:00:05.5Z"


def test_an_odd_stored_report_proves_nothing_and_crashes_nothing(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    assert objects.RuntimeReport.from_status({"runtimeReportedAt": 5}).at is None
    assert objects.RuntimeReport.from_status({"runtimeReportedAt": "yesterday"}).at is None
    assert (
        objects.RuntimeReport.from_status({"runtimeReportedAt": "2026-01-05T10:00:00"}).at is None
    )
    assert objects.RuntimeReport.from_status("odd") == objects.RuntimeReport()
    assert objects.RuntimeReport.from_status({"runtimeConfigHash": 7}).config_hash is None

    kube = WebhookDown(down=1)
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    template_hash = _template_annotations(kube)[CONFIG_HASH_ANNOTATION]
    original = copy.deepcopy(body["spec"]["strategy"])
    _pass(ctx, body, "update", _edit(body, **FAST_5))
    body["status"].update(runtimeConfigHash=template_hash, runtimeReportedAt=["not", "a", "time"])
    events.clear()

    written, retry = _pass(ctx, body, "update", _edit(body, strategy=original))

    assert retry is None  # no crash; and no proof: rolled once
    body["status"] = {**body["status"], **written}
    assert CONFIG_REPAIRED_ANNOTATION in _template_annotations(kube)
    body["status"]["runtimeReportedAt"] = {"odd": True}
    ctx.runtime = cast(RuntimeClients, RestartedRuntime(template_hash))
    ticked = _tick(ctx, body)  # the timer reads the runtime and dates its report afresh
    assert objects.parse_time(ticked.get("runtimeReportedAt")) is not None
