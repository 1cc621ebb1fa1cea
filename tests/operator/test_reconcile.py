"""The reconcile handler in-process, against a fake Kubernetes API (no kopf operator running).

Shows by counting what the e2e tests cannot: one spec parse per reconcile pass, and no status
write when nothing changed.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import kopf
import pytest
import yaml

from tests.operator.timer_writes import timer_status, written_status
from tradefleet_operator import bot_api, handlers, objects
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.k8s_api import KubeApi, KubeError, object_path
from tradefleet_operator.names import Phase
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import OperatorSettings
from tradefleet_operator.snapshot import RuntimeSnapshot
from tradefleet_operator.tokens import tokens_from_secret
from tradefleet_runtime.spec import BotManifest

ROOT = Path(__file__).resolve().parents[2]


class FakeKube:
    """Objects in a dict by API path; merge patches; 409 on a second create."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []

    async def get(self, path: str) -> dict[str, Any] | None:
        found = self.objects.get(path)
        return copy.deepcopy(found) if found is not None else None

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        path = object_path(obj)
        if path in self.objects:
            raise KubeError(409, "AlreadyExists", path)
        self.writes.append(("POST", path))
        self.objects[path] = copy.deepcopy(dict(obj))
        return copy.deepcopy(self.objects[path])

    async def patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        self.writes.append(("PATCH", path))
        _merge(self.objects[path], patch)
        return copy.deepcopy(self.objects[path])


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every spec parse the operator does (through ``TradingBot.parse``'s loader)."""
    calls: list[str] = []
    real = bot_api.parse_manifest

    def counting(document: Any, source: str = "") -> BotManifest:
        calls.append(source)
        return real(document, source)

    monkeypatch.setattr(bot_api, "parse_manifest", counting)
    # kopf posts Events only inside a running operator; here they are dropped.
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)
    yield calls


def _body(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((ROOT / "examples/bots/eurusd-paper.yaml").read_text())
    body["metadata"].update(
        {
            "namespace": "trading",
            "uid": "0b0e6f5e-1111-2222-3333-444455556666",
            "generation": 1,
            "annotations": {"tradefleet.io/runtime-address": "127.0.0.1:1"},
        }
    )
    body["spec"].update(spec)
    return body


def _reconcile(
    kube: FakeKube, body: dict[str, Any], reason: str, diff: Any = (), *, retried: bool = False
) -> dict[str, Any]:
    """One reconcile pass; returns the status patch it asked kopf to send (``retried``: the
    pass may end asking kopf to retry a control call the runtime did not take)."""
    ctx = OperatorContext(
        settings=OperatorSettings(),
        kube=cast(KubeApi, kube),
        runtime=RuntimeClients(timeout=0.2),
    )
    patch = kopf.Patch()
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
    except kopf.TemporaryError:
        if not retried:
            raise
    return written_status(patch, body)


def test_one_parse_per_reconcile_and_no_write_when_nothing_changed(parses: list[str]) -> None:
    kube = FakeKube()
    body = _body()
    written = _reconcile(kube, body, "create")
    assert len(parses) == 1
    assert written["phase"] == "Pending" and written["configHash"]
    assert len(kube.writes) == 5  # ConfigMap, Secret, PVC, Service, Deployment

    body["status"] = written
    parses.clear()
    kube.writes.clear()
    assert _reconcile(kube, body, "resume") == {}  # nothing changed: no status write
    assert len(parses) == 1
    assert kube.writes == []  # and no object write


def _bot_yaml(kube: FakeKube) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(
        kube.objects["/api/v1/namespaces/trading/configmaps/eurusd-paper-config"]["data"][
            "bot.yaml"
        ]
    )
    return found


def test_a_live_only_change_parses_once_and_writes_only_the_configmap(
    parses: list[str],
) -> None:
    """Pause and emergency stop go to the runtime over gRPC and roll no pod; of the objects only
    the ConfigMap follows them (a pod that restarts reads its bot.yaml)."""
    kube = FakeKube()
    body = _body()
    body["status"] = _reconcile(kube, body, "create")
    deployment = copy.deepcopy(
        kube.objects["/apis/apps/v1/namespaces/trading/deployments/eurusd-paper"]
    )
    for generation, change in enumerate(
        [
            {"paused": True},
            {"paused": False},
            {"emergencyStop": {"reason": "news"}},
        ],
        start=2,
    ):
        parses.clear()
        kube.writes.clear()
        body["spec"].update(change)
        body["metadata"]["generation"] = generation
        (field, value) = next(iter(change.items()))
        diff = [("change", ("spec", field), None, value)]
        # The runtime (127.0.0.1:1) does not answer: a Resume or a halt asks for a retry.
        written = _reconcile(kube, body, "update", diff, retried=True)
        assert len(parses) == 1
        path = "/api/v1/namespaces/trading/configmaps/eurusd-paper-config"
        assert kube.writes == [("PATCH", path)]
        assert written["observedGeneration"] == generation
        spec = _bot_yaml(kube)["spec"]
        # bot.yaml leaves a field at its default out (unpaused, not halted, flatten false).
        assert spec.get("paused", False) is body["spec"]["paused"]
        assert spec.get("emergencyStop") == body["spec"].get("emergencyStop")
        body["status"] = {**body["status"], **written}
    # the pod was never rolled
    assert kube.objects["/apis/apps/v1/namespaces/trading/deployments/eurusd-paper"] == deployment


def test_a_label_change_reaches_the_pod_and_the_configmap(parses: list[str]) -> None:
    """The team label names the pod's TRADEFLEET_TEAM: a label change is not live-only."""
    kube = FakeKube()
    body = _body()
    body["metadata"]["labels"] = {"tradefleet.io/team": "a"}
    body["status"] = _reconcile(kube, body, "create")
    body["metadata"]["labels"] = {"tradefleet.io/team": "b"}
    body["metadata"]["generation"] = 2
    diff = [("change", ("metadata", "labels", "tradefleet.io/team"), "a", "b")]
    _reconcile(kube, body, "update", diff)
    deployment = kube.objects["/apis/apps/v1/namespaces/trading/deployments/eurusd-paper"]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["value"] for e in env if e["name"] == "TRADEFLEET_TEAM"] == ["b"]
    assert _bot_yaml(kube)["metadata"]["labels"] == {"tradefleet.io/team": "b"}


def test_an_invalid_spec_is_parsed_once_and_fails_the_bot(parses: list[str]) -> None:
    body = _body(market={"symbols": ["EURUSD"], "timeframe": "7 fortnights"})
    written = _reconcile(FakeKube(), body, "create")
    assert len(parses) == 1
    assert written["phase"] == "Failed"
    reconciled = next(c for c in written["conditions"] if c["type"] == "Reconciled")
    assert reconciled["reason"] == "InvalidSpec"


def _timeless(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` without the time its pod template was written (each pass's own)."""
    found = copy.deepcopy(dict(obj))
    (found.get("metadata", {}).get("annotations") or {}).pop(
        objects.TEMPLATE_WRITTEN_AT_ANNOTATION, None
    )
    return found


def test_a_pass_queued_behind_others_holds_no_parsed_spec_and_writes_the_same(
    parses: list[str],
) -> None:
    """A fleet applied at once queues nearly every bot for an object pass: a queued pass drops
    its parse while it waits and parses again once a slot is its own, with the same result."""
    alone, queued = FakeKube(), FakeKube()
    expected = _reconcile(alone, _body(), "create")
    parses.clear()

    async def behind_a_full_house() -> dict[str, Any]:
        ctx = OperatorContext(
            settings=OperatorSettings(),
            kube=cast(KubeApi, queued),
            runtime=RuntimeClients(timeout=0.2),
            object_passes=asyncio.Semaphore(1),
        )
        await ctx.object_passes.acquire()  # another bot's pass holds the only slot
        patch = kopf.Patch()
        body = _body()
        task = asyncio.create_task(
            handlers.reconcile(
                body=cast(kopf.Body, body),
                meta=cast(kopf.Meta, body["metadata"]),
                status=cast(kopf.Status, {}),
                patch=patch,
                memo=kopf.Memo(tradefleet=ctx),
                logger=cast(kopf.Logger, logging.getLogger("test")),
                reason="create",
            )
        )
        await asyncio.sleep(0.05)
        assert not task.done() and queued.writes == []  # waiting for the slot
        ctx.object_passes.release()
        await task
        return written_status(patch, body)

    written = asyncio.run(behind_a_full_house())
    assert len(parses) == 2  # once to steer, once more when the slot came
    assert sorted(queued.writes) == sorted(alone.writes)
    for path, obj in alone.objects.items():
        if not path.endswith("-api-token"):  # fresh tokens each time
            assert _timeless(queued.objects[path]) == _timeless(obj), path
    assert written["configHash"] == expected["configHash"]
    assert written["phase"] == expected["phase"]


def test_a_pass_whose_steering_may_queue_drops_its_parse_first(
    parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every gRPC slot taken (a fleet stop steers every bot at once): the pass holds no parsed
    spec while it steers; a live-only change needs none after, an object pass parses again."""
    alone = FakeKube()
    expected = _reconcile(alone, _body(), "create")
    parses.clear()
    monkeypatch.setattr(RuntimeClients, "saturated", lambda self: True)
    kube = FakeKube()
    body = _body()
    written = _reconcile(kube, body, "create")
    assert len(parses) == 2  # once to steer, once for the object pass
    assert sorted(kube.writes) == sorted(alone.writes)
    assert written["configHash"] == expected["configHash"]

    body["status"] = written
    parses.clear()
    kube.writes.clear()
    body["spec"]["paused"] = True
    body["metadata"]["generation"] = 2
    written = _reconcile(kube, body, "update", [("change", ("spec", "paused"), False, True)])
    # live only: no second parse, and of the objects only the ConfigMap (rendered before)
    assert len(parses) == 1
    assert kube.writes == [("PATCH", "/api/v1/namespaces/trading/configmaps/eurusd-paper-config")]
    assert written["observedGeneration"] == 2


class FakeRuntimeClients:
    """Answers every read with the same snapshot; records which token each call used."""

    def saturated(self) -> bool:
        return False

    def __init__(self) -> None:
        self.reads: list[str] = []

    async def get_status(self, address: str, read_token: str) -> RuntimeSnapshot:
        self.reads.append(read_token)
        return RuntimeSnapshot(phase=Phase.RUNNING, equity=10.0, currency="USD")


def _poll(kube: FakeKube, runtime: FakeRuntimeClients, body: dict[str, Any]) -> dict[str, Any]:
    ctx = OperatorContext(
        settings=OperatorSettings(), kube=cast(KubeApi, kube), runtime=cast(RuntimeClients, runtime)
    )
    patch = kopf.Patch()
    asyncio.run(
        handlers.poll_status(
            body=cast(kopf.Body, body),
            status=cast(kopf.Status, body.get("status") or {}),
            meta=cast(kopf.Meta, body["metadata"]),
            patch=patch,
            memo=kopf.Memo(tradefleet=ctx),
            logger=cast(kopf.Logger, logging.getLogger("test")),
        )
    )
    return timer_status(patch, body)


def test_the_timer_reads_with_the_read_token_and_writes_only_changes(parses: list[str]) -> None:
    kube, runtime = FakeKube(), FakeRuntimeClients()
    body = _body()
    body["status"] = _reconcile(kube, body, "create")
    secret = kube.objects["/api/v1/namespaces/trading/secrets/eurusd-paper-api-token"]
    tokens = tokens_from_secret(secret)
    assert tokens is not None

    parses.clear()
    first = _poll(kube, runtime, body)
    assert first["phase"] == "Running" and first["equity"] == 10.0
    assert runtime.reads == [tokens.read]
    assert len(parses) == 1  # one parse per tick too
    body["status"].update(first)
    assert _poll(kube, runtime, body) == {}  # the same answer: no write


# --- issue 19, item 8: an emergency stop briefly undone by a stale view --------------------------


class HaltingRuntime:
    """A runtime halted by a fleet stop's direct call just before the timer reads it."""

    def saturated(self) -> bool:
        return False

    def __init__(self) -> None:
        self.halted = False
        self.calls: list[str] = []

    async def get_status(self, address: str, read_token: str) -> RuntimeSnapshot:
        self.halted = True  # the CLI's direct EmergencyStop lands between the tick's two reads
        return RuntimeSnapshot(phase=Phase.HALTED, halted=True, halt_reason="desk closed")

    async def invoke(self, address: str, control_token: str, call: Any) -> RuntimeSnapshot:
        self.calls.append(call.method)
        if call.method == "Resume":
            self.halted = False
        elif call.method == "EmergencyStop":
            self.halted = True
        phase = Phase.HALTED if self.halted else Phase.RUNNING
        return RuntimeSnapshot(phase=phase, halted=self.halted)


@pytest.mark.parametrize(
    "control",
    [
        None,  # status.control pruned by the API server (the measured case)
        {"applied": "Halted", "generation": 1},  # an older halt, resumed since
        {"applied": "Running", "generation": 2},
    ],
)
def test_emergency_stop_briefly_undone_by_a_timer_tick_holding_the_previous_spec(
    parses: list[str], control: dict[str, Any] | None
) -> None:
    """The race from the real cluster: a fleet stop patches the spec (generation 3) and halts
    the runtime directly while a timer tick still carries generation 2 ("run"). The tick must
    not resume the bot; only a handler of a newer generation may."""
    kube, runtime = FakeKube(), HaltingRuntime()
    body = _body()
    body["status"] = _reconcile(kube, body, "create")
    body["metadata"]["generation"] = 2
    body["status"]["observedGeneration"] = 2
    if control is None:
        body["status"].pop("control", None)
    else:
        body["status"]["control"] = control
    ctx = OperatorContext(
        settings=OperatorSettings(), kube=cast(KubeApi, kube), runtime=cast(RuntimeClients, runtime)
    )
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
    assert runtime.calls == [] and runtime.halted, "a timer tick resumed a halted bot"
    written = timer_status(patch, body)
    assert written.get("phase") == "Halted"
    assert written.get("control", control) == control  # the tick records no control change


def test_a_resume_from_a_superseded_generation_is_not_sent(parses: list[str]) -> None:
    """A change handler holding generation 2 ("run", after a halt at 1) must not resume when
    the stored bot is already at generation 3 (a fleet stop's patch): that handler decides."""
    kube, runtime = FakeKube(), HaltingRuntime()
    body = _body()
    body["status"] = _reconcile(kube, body, "create")
    body["status"]["control"] = {"applied": "Halted", "generation": 1}
    body["metadata"]["generation"] = 2
    stored = copy.deepcopy(body)
    stored["metadata"]["generation"] = 3
    stored["spec"]["emergencyStop"] = {"reason": "desk closed"}
    kube.objects["/apis/tradefleet.io/v1alpha1/namespaces/trading/tradingbots/eurusd-paper"] = (
        stored
    )
    ctx = OperatorContext(
        settings=OperatorSettings(), kube=cast(KubeApi, kube), runtime=cast(RuntimeClients, runtime)
    )
    patch = kopf.Patch()
    diff = [("change", ("spec", "emergencyStop"), {"reason": "r"}, None)]

    def update() -> None:
        asyncio.run(
            handlers.reconcile(
                body=cast(kopf.Body, body),
                meta=cast(kopf.Meta, body["metadata"]),
                status=cast(kopf.Status, body["status"]),
                patch=patch,
                memo=kopf.Memo(tradefleet=ctx),
                logger=cast(kopf.Logger, logging.getLogger("test")),
                reason="update",
                diff=diff,
            )
        )

    # Retried, not skipped as done: kopf would otherwise keep this view as handled and never
    # call a handler for a newest spec equal to it (a stop set and removed again).
    with pytest.raises(kopf.TemporaryError):
        update()
    assert runtime.calls == []
    # ... and when generation 2 is still the newest, the handler resumes and records it.
    stored["metadata"]["generation"] = 2
    stored["spec"].pop("emergencyStop")
    patch = kopf.Patch()
    update()
    assert runtime.calls == ["Resume"]
    assert written_status(patch, body)["control"] == {"applied": "Running", "generation": 2}


def test_a_halted_view_older_than_the_recorded_control_steers_nothing(parses: list[str]) -> None:
    kube, runtime = FakeKube(), HaltingRuntime()
    body = _body()
    body["status"] = _reconcile(kube, body, "create")
    body["spec"]["emergencyStop"] = {"reason": "old"}
    body["status"]["control"] = {"applied": "Running", "generation": 5}
    body["metadata"]["generation"] = 4
    ctx = OperatorContext(
        settings=OperatorSettings(), kube=cast(KubeApi, kube), runtime=cast(RuntimeClients, runtime)
    )
    patch = kopf.Patch()
    asyncio.run(
        handlers.reconcile(
            body=cast(kopf.Body, body),
            meta=cast(kopf.Meta, body["metadata"]),
            status=cast(kopf.Status, body["status"]),
            patch=patch,
            memo=kopf.Memo(tradefleet=ctx),
            logger=cast(kopf.Logger, logging.getLogger("test")),
            reason="update",
            diff=[("change", ("spec", "paused"), None, False)],
        )
    )
    assert runtime.calls == []


def test_an_object_of_a_child_name_that_is_not_the_bot_s_is_left_alone(
    parses: list[str],
) -> None:
    """A Service of the bot's name made by someone else: not adopted nor patched, no pod made,
    the status says which object, and the pass is looked at again later."""
    kube = FakeKube()
    service_path = "/api/v1/namespaces/trading/services/eurusd-paper"
    foreign = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "eurusd-paper", "namespace": "trading", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"}},
    }
    kube.objects[service_path] = copy.deepcopy(foreign)
    written = _reconcile(kube, _body(), "create", retried=True)
    assert kube.objects[service_path] == foreign
    assert "/apis/apps/v1/namespaces/trading/deployments/eurusd-paper" not in kube.objects
    reconciled = next(c for c in written["conditions"] if c["type"] == "Reconciled")
    assert (reconciled["status"], reconciled["reason"]) == ("False", "NameTaken")
    assert reconciled["message"].startswith(
        "Service eurusd-paper exists and is not this bot's; rename the bot or delete it"
    )
    # labelled as the bot's child (made for it beforehand): adopted
    kube.objects[service_path]["metadata"]["labels"] = {
        "tradefleet.io/bot": "eurusd-paper",
        "app.kubernetes.io/managed-by": "tradefleet-operator",
    }
    written = _reconcile(kube, _body(), "create")
    assert kube.objects[service_path]["spec"]["selector"]["tradefleet.io/bot"] == "eurusd-paper"
    assert kube.objects[service_path]["metadata"]["ownerReferences"][0]["kind"] == "TradingBot"
    assert "/apis/apps/v1/namespaces/trading/deployments/eurusd-paper" in kube.objects
