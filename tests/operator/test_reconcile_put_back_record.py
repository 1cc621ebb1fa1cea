"""A runtime report rolls a pod only for a config the operator itself held ahead and put back.

- Each put-back of a config written ahead of the Deployment is recorded on the ConfigMap
  (``tradefleet.io/put-back-configs``); a runtime report taken after the pod template was
  written that names one of them rolls the pod once (``RuntimeConfigDiffers``).
- A hash nothing recorded rolls nothing: a person's gRPC ``UpdateParams`` (the runtime hashes
  the params in force), a pod started paused and resumed since, an image hashing otherwise.
- The record never mutes the check: a report of the template's own config taken after a
  put-back clears it, a new template config drops it, and a later put-back rolls again.
"""

from __future__ import annotations

import copy
import json
from typing import Any, cast

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
from tradefleet_operator.k8s_api import api_path
from tradefleet_operator.names import API_VERSION, PLURAL, Phase
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import CONFIG_HASH_ANNOTATION, CONFIG_REPAIRED_ANNOTATION
from tradefleet_operator.snapshot import RuntimeSnapshot
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.spec.checks import config_hash as runtime_config_hash

FAST_5 = {"strategy": {"name": "ema-cross", "params": {"fast": 5}}}
FAST_6 = {"strategy": {"name": "ema-cross", "params": {"fast": 6}}}


class ReportingRuntime:
    """The bot's runtime: reports the hash of the config it has in force; takes pause and
    resume (its hash stays the one it started with)."""

    def __init__(self, config_hash: str) -> None:
        self.config_hash = config_hash
        self.paused = False

    def saturated(self) -> bool:
        return False

    def _snapshot(self) -> RuntimeSnapshot:
        phase = Phase.PAUSED if self.paused else Phase.RUNNING
        return RuntimeSnapshot(phase=phase, paused=self.paused, config_hash=self.config_hash)

    async def get_status(self, address: str, read_token: str) -> RuntimeSnapshot:
        return self._snapshot()

    async def invoke(self, address: str, token: str, call: Any) -> RuntimeSnapshot:
        if call.method == "Pause":
            self.paused = True
        elif call.method == "Resume":
            self.paused = False
        return self._snapshot()


def _runner_hash(text: str) -> str:
    """The hash a runtime holding the manifest ``text`` reports (of the manifest, whole)."""
    return runtime_config_hash(parse_manifest(yaml.safe_load(text), "bot.yaml"))


def _with_params_changed(text: str) -> str:
    """The manifest a runtime holds after ``UpdateParams(fast=7)``."""
    manifest = yaml.safe_load(text)
    params = dict(manifest["spec"]["strategy"].get("params") or {})
    params["fast"] = 7
    manifest["spec"]["strategy"]["params"] = params
    return yaml.safe_dump(manifest)


def _template(kube: ApiServer) -> dict[str, str]:
    found: dict[str, str] = kube.objects[DEPLOYMENT]["spec"]["template"]["metadata"]["annotations"]
    return dict(found)


def _record(kube: ApiServer) -> list[dict[str, Any]]:
    annotations = kube.objects[CONFIG]["metadata"].get("annotations") or {}
    value = annotations.get(objects.PUT_BACK_ANNOTATION)
    return list(json.loads(value)) if value else []


def _warned(posted: list[tuple[str, str, bool]]) -> list[tuple[str, str]]:
    return [(reason, message) for reason, message, warning in posted if warning]


def _store(kube: ApiServer, body: dict[str, Any], written: dict[str, Any]) -> None:
    """The status patch applied, and the TradingBot as the API server holds it."""
    body["status"] = {**body["status"], **written}
    kube.objects[api_path(API_VERSION, PLURAL, "trading", body["metadata"]["name"])] = (
        copy.deepcopy(body)
    )


def _put_back(ctx: OperatorContext, kube: WebhookDown, body: dict[str, Any], spec: Any) -> str:
    """A change whose Deployment writes fail: written ahead, then put back (NotApplied).
    Returns the bot.yaml the ConfigMap held meanwhile."""
    kube.down = 10**6
    diff = _edit(body, **spec)
    held = ""
    for _ in range(2):  # the first 5xx (remembered), then NotLanded: put back
        written, retry = _pass(ctx, body, "update", diff)
        assert retry is not None
        body["status"] = {**body["status"], **written}
        held = held or kube.objects[CONFIG]["data"]["bot.yaml"]
    assert _reconciled(body["status"])["reason"] == "NotApplied"
    assert objects.file_config_hash(held) != _template(kube)[CONFIG_HASH_ANNOTATION]
    kube.down = 0
    return held


# --- a hash nothing recorded rolls nothing ---------------------------------------------------


def test_an_operator_restart_does_not_roll_a_bot_whose_params_a_person_changed(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    text = kube.objects[CONFIG]["data"]["bot.yaml"]
    updated = _runner_hash(_with_params_changed(text))
    assert updated != _runner_hash(text)
    # UpdateParams(fast=7) over gRPC; the timer reads the runtime's new hash, dated afresh.
    ctx.runtime = cast(RuntimeClients, ReportingRuntime(updated))
    body["status"] = {**body["status"], **_tick(ctx, body)}
    assert body["status"]["runtimeConfigHash"] == updated
    events.clear()

    _, retry = _pass(ctx, body, "resume")  # the operator restarts (or is upgraded)

    assert retry is None
    assert CONFIG_REPAIRED_ANNOTATION not in _template(kube)
    assert _warned(events) == []


def test_a_bot_edited_while_paused_then_resumed_is_not_rolled_at_an_operator_restart(
    events: list[tuple[str, str, bool]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(steering, "event", lambda *_, **__: None)  # "paused", "resumed"
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    runtime = ReportingRuntime(_template(kube)[CONFIG_HASH_ANNOTATION])
    ctx.runtime = cast(RuntimeClients, runtime)
    _store(kube, body, {})
    written, retry = _pass(ctx, body, "update", _edit(body, paused=True))  # pause first
    assert retry is None and runtime.paused
    _store(kube, body, written)
    written, retry = _pass(ctx, body, "update", _edit(body, **FAST_5))  # the edit: a roll
    assert retry is None
    _store(kube, body, written)
    started_on = kube.objects[CONFIG]["data"]["bot.yaml"]  # the new pod: paused, fast: 5
    assert yaml.safe_load(started_on)["spec"]["paused"] is True
    runtime.config_hash = _runner_hash(started_on)
    _store(kube, body, _tick(ctx, body))
    resume = _edit(body, paused=False)  # the person resumes: steered, no roll
    _store(kube, body, {})
    written, retry = _pass(ctx, body, "update", resume)
    assert retry is None and not runtime.paused
    _store(kube, body, written)
    _store(kube, body, _tick(ctx, body))
    stamp_before = _template(kube).get(CONFIG_REPAIRED_ANNOTATION)
    events.clear()

    _, retry = _pass(ctx, body, "resume")  # the operator restarts

    assert retry is None
    assert _template(kube).get(CONFIG_REPAIRED_ANNOTATION) == stamp_before
    assert _warned(events) == []


def test_a_runtime_reporting_a_hash_nothing_recorded_is_not_rolled(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """An older runtime image hashes configs otherwise: its hash is fresh after a roll."""
    kube = ApiServer()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    written, retry = _pass(ctx, body, "update", _edit(body, **FAST_5))
    assert retry is None
    body["status"] = {**body["status"], **written}
    ctx.runtime = cast(RuntimeClients, ReportingRuntime("0123456789abcdef"))
    body["status"] = {**body["status"], **_tick(ctx, body)}
    events.clear()

    for _ in range(2):
        _, retry = _pass(ctx, body, "resume")
        assert retry is None

    assert CONFIG_REPAIRED_ANNOTATION not in _template(kube)
    assert _warned(events) == []


# --- a config put back: rolled once, every time, never in a loop -----------------------------


def test_a_pod_on_a_put_back_config_is_rolled_again_after_an_earlier_roll(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """A roll for a report does not mute the check: after it, the new pod reports the
    template's config (the record is cleared), and a later put-back config a pod restarts on
    is rolled once again."""
    kube = WebhookDown(down=0)
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    template_hash = _template(kube)[CONFIG_HASH_ANNOTATION]
    original = copy.deepcopy(body["spec"]["strategy"])
    runtime = ReportingRuntime(template_hash)
    ctx.runtime = cast(RuntimeClients, runtime)

    stamps: list[str] = []
    for change in (FAST_5, FAST_6):
        held = _put_back(ctx, kube, body, change)
        assert [entry["config"] for entry in _record(kube)] == [objects.file_config_hash(held)]
        runtime.config_hash = _runner_hash(held)  # the pod restarted inside that window
        body["status"] = {**body["status"], **_tick(ctx, body)}
        events.clear()

        written, retry = _pass(ctx, body, "update", _edit(body, strategy=original))  # revert

        assert retry is None and _reconciled(written)["reason"] == "UpToDate"
        body["status"] = {**body["status"], **written}
        stamp = _template(kube)[CONFIG_REPAIRED_ANNOTATION]
        assert stamp not in stamps, "not rolled"
        stamps.append(stamp)
        rolled = [m for r, m in _warned(events) if r == "RuntimeConfigDiffers"]
        assert len(rolled) == 1 and runtime.config_hash in rolled[0] and template_hash in rolled[0]

        _, retry = _pass(ctx, body, "resume")  # the old report, before the roll: nothing
        assert retry is None and _template(kube)[CONFIG_REPAIRED_ANNOTATION] == stamp
        runtime.config_hash = template_hash  # the rolled pod runs the template's config
        body["status"] = {**body["status"], **_tick(ctx, body)}
        _, retry = _pass(ctx, body, "resume")
        assert retry is None and _record(kube) == [], "record not cleared"
        assert _template(kube)[CONFIG_REPAIRED_ANNOTATION] == stamp
        assert len([r for r, _ in _warned(events) if r == "RuntimeConfigDiffers"]) == 1


def test_a_report_taken_before_the_put_back_does_not_clear_it(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """The template's config reported before the put-back says nothing of a restart inside
    the window; the report after it, of the held config, still rolls."""
    kube = WebhookDown(down=0)
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    template_hash = _template(kube)[CONFIG_HASH_ANNOTATION]
    original = copy.deepcopy(body["spec"]["strategy"])
    runtime = ReportingRuntime(template_hash)
    ctx.runtime = cast(RuntimeClients, runtime)
    body["status"] = {**body["status"], **_tick(ctx, body)}  # the template's, before
    held = _put_back(ctx, kube, body, FAST_5)
    written, retry = _pass(ctx, body, "update", _edit(body, strategy=original))  # revert
    assert retry is None
    body["status"] = {**body["status"], **written}
    assert len(_record(kube)) == 1, "cleared by a report taken before the put-back"
    assert CONFIG_REPAIRED_ANNOTATION not in _template(kube)
    runtime.config_hash = _runner_hash(held)  # the pod restarted inside the window
    body["status"] = {**body["status"], **_tick(ctx, body)}
    events.clear()

    _, retry = _pass(ctx, body, "resume")

    assert retry is None
    assert CONFIG_REPAIRED_ANNOTATION in _template(kube)
    assert [r for r, _ in _warned(events)] == ["RuntimeConfigDiffers"]


def test_a_pod_started_paused_on_a_put_back_config_is_rolled(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """The runtime hashes the manifest it read whole: with the pause it started with."""
    kube = WebhookDown(down=0)
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    original = copy.deepcopy(body["spec"]["strategy"])
    held = _put_back(ctx, kube, body, FAST_5)
    paused = yaml.safe_load(held)
    paused["spec"]["paused"] = True
    ctx.runtime = cast(RuntimeClients, ReportingRuntime(_runner_hash(yaml.safe_dump(paused))))
    body["status"] = {**body["status"], **_tick(ctx, body)}
    events.clear()

    _, retry = _pass(ctx, body, "update", _edit(body, strategy=original))

    assert retry is None
    assert [r for r, _ in _warned(events)] == ["RuntimeConfigDiffers"]


def test_a_new_template_config_drops_the_record(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    kube = WebhookDown(down=0)
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    held = _put_back(ctx, kube, body, FAST_5)
    assert _record(kube) != []
    written, retry = _pass(ctx, body, "update", _edit(body, **FAST_6))  # lands: a new template
    assert retry is None
    body["status"] = {**body["status"], **written}
    assert _record(kube) != [], "dropped before the Deployment took the change"
    ctx.runtime = cast(RuntimeClients, ReportingRuntime(_runner_hash(held)))
    body["status"] = {**body["status"], **_tick(ctx, body)}
    events.clear()

    _, retry = _pass(ctx, body, "resume")

    assert retry is None
    assert _record(kube) == []
    assert CONFIG_REPAIRED_ANNOTATION not in _template(kube)
    assert _warned(events) == []


# --- the record itself (pure) ----------------------------------------------------------------


def _config_map(text: str, record: str | None = None) -> dict[str, Any]:
    annotations = {objects.PUT_BACK_ANNOTATION: record} if record is not None else {}
    return {"metadata": {"annotations": annotations}, "data": {"bot.yaml": text}}


def _bot_yaml(fast: int, **live: Any) -> str:
    kube = ApiServer()
    body = _running_bot(kube, _context(kube))
    manifest = yaml.safe_load(kube.objects[CONFIG]["data"]["bot.yaml"])
    manifest["spec"]["strategy"]["params"] = {"fast": fast}
    manifest["spec"].update(live)
    assert body is not None
    return yaml.safe_dump(manifest)


def test_the_record_keeps_one_entry_per_config_newest_first_and_a_few_at_most() -> None:
    texts = [_bot_yaml(fast) for fast in (3, 4, 5, 6)]
    record: tuple[objects.PutBack, ...] = ()
    for i, text in enumerate([*texts, texts[1]]):
        record = objects.recorded_put_back(record, "tmpl", text, f"2026-01-05T10:00:0{i}Z")
    configs = [objects.file_config_hash(t) for t in texts]
    assert [e.config for e in record] == [configs[1], configs[3], configs[2]]
    assert len(record) == objects.PUT_BACK_LIMIT
    assert record[0].at == "2026-01-05T10:00:04Z"  # the retry's time, not the first's
    value = objects.put_back_value(record)
    assert value is not None
    assert objects.put_back_record(_config_map(texts[0], value), "tmpl") == record
    assert objects.put_back_record(_config_map(texts[0], value), "other") == ()
    assert objects.recorded_put_back(record, configs[0] or "", texts[0], "t") == record
    assert objects.put_back_value(()) is None


def test_the_reported_hashes_cover_a_pause_and_a_halt_at_the_pod_start() -> None:
    halt = {"reason": "desk closed", "flatten": False}
    text = _bot_yaml(5, emergencyStop=halt)
    hashes = objects.reported_hashes(text)
    for live in ({}, {"paused": True}, {"emergencyStop": halt}):
        variant = yaml.safe_load(_bot_yaml(5))
        variant["spec"].update(live)
        assert _runner_hash(yaml.safe_dump(variant)) in hashes
    assert objects.file_config_hash(text) in hashes
    assert objects.reported_hashes("not: [a, manifest") == ()


@pytest.mark.parametrize(
    "value", ["", "nonsense", "{}", "[1, null]", '[{"template": "t", "config": 5}]']
)
def test_an_odd_record_names_nothing(value: str) -> None:
    assert objects.put_back_record(_config_map(_bot_yaml(5), value), "t") == ()
