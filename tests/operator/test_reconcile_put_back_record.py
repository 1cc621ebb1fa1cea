"""A runtime report rolls a pod only for a config the operator itself held ahead and put back.

- Each put-back of a config written ahead of the Deployment is recorded on the ConfigMap
  (``tradefleet.io/put-back-configs``); a runtime report taken after the pod template was
  written that names one of them rolls the pod once (``RuntimeConfigDiffers``).
- A hash nothing recorded rolls nothing: a person's gRPC ``UpdateParams`` (the runtime hashes
  the params in force), a pod started paused and resumed since, an image hashing otherwise.
- The record never mutes the check: a report of the template's own config taken after a
  put-back clears it, a new template config drops it, and a later put-back rolls again.
- A pod template written after a put-back (a roll) clears it too once the template's config
  is reported, even when that report's time did not move; a config held ahead and overwritten
  by a newer change's write ahead is recorded as well.
- While a change is not applied the report time moves once after the pass, not at every tick;
  a record too long or nested too deep to read is taken as none.
"""

from __future__ import annotations

import copy
import json
import logging
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


# --- the record cleared by a roll, an overwritten hold recorded, one report time per pass ---


def _with_fast(text: str, fast: int) -> str:
    """The manifest a runtime holds after ``UpdateParams(fast=...)`` (the runtime's hash covers
    the params in force, as a manifest listing them: controller._hash_with_params)."""
    manifest = yaml.safe_load(text)
    manifest["spec"]["strategy"]["params"] = {
        **(manifest["spec"]["strategy"].get("params") or {}),
        "fast": fast,
    }
    return yaml.safe_dump(manifest)


def test_update_params_to_a_value_once_held_ahead_rolls_nothing_after_the_revert_roll(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """A revert while the ConfigMap is ahead rolls the pod once and records the held config.
    The rolled pod reports the hash the status held already (runtimeReportedAt stays, before
    the roll): the template written after the put-back clears the record all the same, so a
    later UpdateParams to the once-held value is left running at an operator restart."""
    kube = WebhookDown(down=1)
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    template_hash = _template(kube)[CONFIG_HASH_ANNOTATION]
    text = kube.objects[CONFIG]["data"]["bot.yaml"]
    runtime = ReportingRuntime(template_hash)
    ctx.runtime = cast(RuntimeClients, runtime)
    body["status"] = {**body["status"], **_tick(ctx, body)}  # reports the template's config
    original = copy.deepcopy(body["spec"]["strategy"])

    only_fast = copy.deepcopy(original)  # kubectl edit of fast alone
    only_fast["params"]["fast"] = 5
    _, retry = _pass(ctx, body, "update", _edit(body, strategy=only_fast))
    assert retry is not None  # ConfigMap ahead
    held = kube.objects[CONFIG]["data"]["bot.yaml"]
    written, retry = _pass(ctx, body, "update", _edit(body, strategy=original))
    assert retry is None and _reconciled(written)["reason"] == "UpToDate"
    body["status"] = {**body["status"], **written}
    stamp = _template(kube)[CONFIG_REPAIRED_ANNOTATION]  # the one (designed) roll
    # The rolled pod runs the template's config and says so, at every tick.
    for _ in range(2):
        body["status"] = {**body["status"], **_tick(ctx, body)}
        _, retry = _pass(ctx, body, "resume")
        assert retry is None
    assert _template(kube)[CONFIG_REPAIRED_ANNOTATION] == stamp

    # The person applies fast=5 live instead (UpdateParams over gRPC).
    runtime.config_hash = _runner_hash(_with_fast(text, 5))
    assert runtime.config_hash == _runner_hash(held)  # the same config, as the runtime hashes
    body["status"] = {**body["status"], **_tick(ctx, body)}
    events.clear()

    _, retry = _pass(ctx, body, "resume")  # the operator restarts

    assert retry is None
    assert _warned(events) == [], "live pod rolled: the person's UpdateParams undone"
    assert _template(kube)[CONFIG_REPAIRED_ANNOTATION] == stamp


def test_a_config_held_ahead_then_overwritten_by_a_newer_edit_is_recorded_and_rolled(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """The webhook is down: fast: 5 is written ahead and the pod restarts on it. Before a retry
    puts it back the person edits to fast: 6, written ahead over it, then put back
    (NotApplied). Both held configs are recorded, so the revert rolls the pod off fast: 5."""
    kube = WebhookDown()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    template_hash = _template(kube)[CONFIG_HASH_ANNOTATION]
    original = copy.deepcopy(body["spec"]["strategy"])

    _, retry = _pass(ctx, body, "update", _edit(body, **FAST_5))
    assert retry is not None  # the first 5xx: retried as it is, ConfigMap ahead
    held = kube.objects[CONFIG]["data"]["bot.yaml"]
    assert "fast: 5" in held
    runtime = ReportingRuntime(_runner_hash(held))  # the pod restarted on it
    ctx.runtime = cast(RuntimeClients, runtime)

    diff = _edit(body, **FAST_6)  # the person tries another value meanwhile
    for _ in range(2):  # first 5xx of this config (remembered), then NotLanded: put back
        written, retry = _pass(ctx, body, "update", diff)
        assert retry is not None
        body["status"] = {**body["status"], **written}
    assert _reconciled(body["status"])["reason"] == "NotApplied"
    assert objects.file_config_hash(kube.objects[CONFIG]["data"]["bot.yaml"]) == template_hash
    body["status"] = {**body["status"], **_tick(ctx, body)}
    assert body["status"]["runtimeConfigHash"] == _runner_hash(held)

    kube.down = 0
    events.clear()
    written, retry = _pass(ctx, body, "update", _edit(body, strategy=original))  # revert

    assert retry is None and _reconciled(written)["reason"] == "UpToDate"
    assert _template(kube)[CONFIG_HASH_ANNOTATION] == template_hash
    assert CONFIG_REPAIRED_ANNOTATION in _template(kube), "pod left on fast: 5, nothing said"
    rolled = [m for r, m in _warned(events) if r == "RuntimeConfigDiffers"]
    assert len(rolled) == 1 and objects.file_config_hash(held) in rolled[0]


def test_a_not_applied_bot_costs_no_status_write_per_tick(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """A change NotApplied (a webhook down: every bot of the fleet at once) leaves the bot
    running on its old config while the timer reads it: the report time moves once after the
    pass, then stays while the runtime reports the same hash."""
    kube = WebhookDown()
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    ctx.runtime = cast(RuntimeClients, ReportingRuntime(_template(kube)[CONFIG_HASH_ANNOTATION]))
    diff = _edit(body, **FAST_5)
    for _ in range(2):
        written, retry = _pass(ctx, body, "update", diff)
        assert retry is not None
        body["status"] = {**body["status"], **written}
    assert _reconciled(body["status"])["reason"] == "NotApplied"
    first = _tick(ctx, body)
    assert "runtimeReportedAt" in first  # once after the pass: later than its write ahead
    body["status"] = {**body["status"], **first}

    writes = []
    for _ in range(3):
        written = _tick(ctx, body)
        body["status"] = {**body["status"], **written}
        writes.append(written)

    assert writes == [{}, {}, {}], "a status write per tick"


def test_a_deeply_nested_put_back_annotation_crashes_no_pass(
    events: list[tuple[str, str, bool]],  # noqa: F811
) -> None:
    """A hand-edited record nested deeper than json.loads recurses (under the 256 KiB limit)
    is taken as no record, and the pass's ConfigMap write replaces it."""
    kube = WebhookDown(down=0)
    ctx = _context(kube)
    body = _running_bot(kube, ctx)
    annotations = kube.objects[CONFIG]["metadata"].setdefault("annotations", {})
    annotations[objects.PUT_BACK_ANNOTATION] = "[" * 100_000

    _, retry = _pass(ctx, body, "resume")

    assert retry is None
    assert objects.PUT_BACK_ANNOTATION not in kube.objects[CONFIG]["metadata"]["annotations"]


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


def test_an_overlong_or_too_deep_record_names_nothing_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deep = "[" * 5_000  # shorter than the cap: json.loads raises RecursionError
    long = json.dumps([{"template": "t", "config": "c", "reports": [], "at": "x" * 20_000}])
    for value in (deep, long):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="tradefleet_operator.objects"):
            assert objects.put_back_record(_config_map(_bot_yaml(5), value), "t") == ()
        assert [
            r.getMessage() for r in caplog.records if objects.PUT_BACK_ANNOTATION in r.getMessage()
        ]
        assert all(value[:40] not in r.getMessage() for r in caplog.records)
