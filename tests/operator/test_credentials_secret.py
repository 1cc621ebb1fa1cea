"""A credentials Secret that does not exist (review W17), in-process: the reconcile handler and
the status timer against a fake Kubernetes API, the messages, and the metadata-only read.

The end-to-end run through the real operator is ``e2e/test_credentials_secret.py``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import aiohttp.web
import kopf
import pytest
import yaml

from tests.operator.test_reconcile import FakeKube, FakeRuntimeClients
from tests.operator.timer_writes import timer_status, written_status
from tradefleet_operator import handlers, objects
from tradefleet_operator.bot_api import TradingBot
from tradefleet_operator.children import CredentialsSecretMissing
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.control import Call
from tradefleet_operator.k8s_api import PARTIAL_METADATA, KubeApi, KubeError
from tradefleet_operator.names import Phase
from tradefleet_operator.runtime_client import RuntimeCallError, RuntimeClients
from tradefleet_operator.settings import OperatorSettings
from tradefleet_operator.snapshot import RuntimeSnapshot
from tradefleet_operator.status_mapping import (
    CREDENTIALS_FOUND,
    condition_of,
    credentials_event,
    credentials_status,
)
from tradefleet_operator.status_model import BotStatus

ROOT = Path(__file__).resolve().parents[2]
NS = "trading"
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NS}/deployments/eurusd-paper"
NOW = "2025-01-02T03:04:05Z"


def secret_path(name: str) -> str:
    return f"/api/v1/namespaces/{NS}/secrets/{name}"


class Kube(FakeKube):
    """The fake API, plus the metadata-only existence check and (empty) pod lists."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    async def exists(self, path: str) -> bool:
        self.asked.append(path)
        return path in self.objects

    async def list(self, *_: Any) -> list[dict[str, Any]]:
        return []

    def add_secret(self, name: str) -> None:
        self.objects[secret_path(name)] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NS},
            "data": {"apiKey": "c2VjcmV0"},
        }


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The Events the handlers post (kopf posts them only inside a running operator)."""
    posted: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "event", lambda _body, **kw: posted.append(kw))
    yield posted


def body_with(secret: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((ROOT / "examples/bots/eurusd-paper.yaml").read_text())
    body["metadata"].update(
        {
            "namespace": NS,
            "uid": "0b0e6f5e-1111-2222-3333-444455556666",
            "generation": 1,
            "annotations": {"tradefleet.io/runtime-address": "127.0.0.1:1"},
        }
    )
    body["spec"]["broker"]["credentialsSecret"] = {"name": secret}
    return body


def ctx_of(kube: Kube, runtime: Any = None) -> OperatorContext:
    return OperatorContext(
        settings=OperatorSettings(),
        kube=cast(KubeApi, kube),
        runtime=cast(RuntimeClients, runtime or RuntimeClients(timeout=0.2)),
    )


def reconcile(kube: Kube, body: dict[str, Any], reason: str) -> tuple[dict[str, Any], bool]:
    """One reconcile pass: the status patch it asked for, and whether it asked for a retry."""
    patch = kopf.Patch()
    retried = False
    try:
        asyncio.run(
            handlers.reconcile(
                body=cast(kopf.Body, body),
                meta=cast(kopf.Meta, body["metadata"]),
                status=cast(kopf.Status, body.get("status") or {}),
                patch=patch,
                memo=kopf.Memo(tradefleet=ctx_of(kube)),
                logger=cast(kopf.Logger, logging.getLogger("test")),
                reason=reason,
            )
        )
    except kopf.TemporaryError:
        retried = True
    return written_status(patch, body), retried


def poll(kube: Kube, body: dict[str, Any]) -> dict[str, Any]:
    patch = kopf.Patch()
    asyncio.run(
        handlers.poll_status(
            body=cast(kopf.Body, body),
            status=cast(kopf.Status, body.get("status") or {}),
            meta=cast(kopf.Meta, body["metadata"]),
            patch=patch,
            memo=kopf.Memo(tradefleet=ctx_of(kube, FakeRuntimeClients())),
            logger=cast(kopf.Logger, logging.getLogger("test")),
        )
    )
    return timer_status(patch, body)


def mounted(kube: Kube) -> str | None:
    return objects.mounted_credentials(kube.objects.get(DEPLOYMENT))


def reconciled(status: dict[str, Any]) -> dict[str, Any]:
    (found,) = [c for c in status["conditions"] if c["type"] == "Reconciled"]
    return dict(found)


# --- the reconcile handler ----------------------------------------------------------------------


def test_a_running_bot_is_not_rolled_onto_a_secret_that_does_not_exist(
    events: list[dict[str, Any]],
) -> None:
    kube = Kube()
    kube.add_secret("keys")
    body = body_with("keys")
    body["status"], _ = reconcile(kube, body, "create")
    assert mounted(kube) == "keys"
    deployment = copy.deepcopy(kube.objects[DEPLOYMENT])
    config_map = copy.deepcopy(
        kube.objects[f"/api/v1/namespaces/{NS}/configmaps/eurusd-paper-config"]
    )

    body["spec"]["broker"]["credentialsSecret"] = {"name": "keys-v2"}
    body["metadata"]["generation"] = 2
    kube.writes.clear()
    events.clear()
    written, retried = reconcile(kube, body, "update")
    assert retried  # looked at again: making the Secret rolls the bot
    assert kube.writes == []  # nothing of the spec: the Deployment and ConfigMap as they were
    assert kube.objects[DEPLOYMENT] == deployment
    assert kube.objects[f"/api/v1/namespaces/{NS}/configmaps/eurusd-paper-config"] == config_map
    assert secret_path("keys-v2") in kube.asked
    condition = reconciled({**body["status"], **written})
    assert (condition["status"], condition["reason"]) == ("False", "CredentialsSecretMissing")
    assert condition["message"].startswith(
        "spec.broker.credentialsSecret: Secret 'keys-v2' does not exist in namespace 'trading'"
    )
    assert "credentials from Secret 'keys'" in condition["message"]
    assert written["observedGeneration"] == 2 and "configHash" not in written
    warned = [e for e in events if e["type"] == "Warning"]
    assert [e["reason"] for e in warned] == ["CredentialsSecretMissing"]

    # The retry, the Secret still missing: no second Warning, no status write.
    body["status"] = {**body["status"], **written}
    events.clear()
    again, retried = reconcile(kube, body, "update")
    assert retried and again == {} and events == []

    # Made: the retry rolls the bot onto it, with no other edit.
    kube.add_secret("keys-v2")
    written, retried = reconcile(kube, body, "update")
    assert not retried
    assert mounted(kube) == "keys-v2"
    assert reconciled({**body["status"], **written})["status"] == "True"


def test_a_first_pass_makes_every_object_but_the_deployment(events: list[dict[str, Any]]) -> None:
    kube = Kube()
    body = body_with("keys")
    written, retried = reconcile(kube, body, "create")
    assert retried
    kinds = {path.split("/")[-2] for _, path in kube.writes}
    assert kinds == {"configmaps", "secrets", "persistentvolumeclaims", "services"}
    assert DEPLOYMENT not in kube.objects
    # Nothing failed: Pending, waiting for the Secret, and saying so.
    assert written["phase"] == "Pending"
    condition = reconciled(written)
    assert condition["reason"] == "CredentialsSecretMissing"
    assert "its Deployment is not" in condition["message"]

    body["status"] = written
    kube.add_secret("keys")
    written, retried = reconcile(kube, body, "create")
    assert not retried and mounted(kube) == "keys"
    assert reconciled({**body["status"], **written})["status"] == "True"


def test_a_bot_without_credentials_asks_for_no_secret(events: list[dict[str, Any]]) -> None:
    kube = Kube()
    body = body_with("keys")
    del body["spec"]["broker"]["credentialsSecret"]
    _, retried = reconcile(kube, body, "create")
    assert not retried and kube.asked == [] and DEPLOYMENT in kube.objects


# --- the status timer ---------------------------------------------------------------------------


def test_the_status_timer_says_once_that_the_mounted_secret_is_gone(
    events: list[dict[str, Any]],
) -> None:
    kube = Kube()
    kube.add_secret("keys")
    body = body_with("keys")
    body["status"], _ = reconcile(kube, body, "create")
    events.clear()
    written = poll(kube, body)
    body["status"] = {**body["status"], **written}
    found = condition_of(BotStatus.read(body["status"]), CREDENTIALS_FOUND)
    assert found is not None and found.status == "True"

    del kube.objects[secret_path("keys")]
    kube.writes.clear()
    written = poll(kube, body)
    body["status"] = {**body["status"], **written}
    gone = condition_of(BotStatus.read(body["status"]), CREDENTIALS_FOUND)
    assert gone is not None and (gone.status, gone.reason) == ("False", "CredentialsSecretMissing")
    assert "Secret 'keys'" in gone.message and "will not start" in gone.message
    assert [(e["type"], e["reason"]) for e in events] == [("Warning", "CredentialsSecretMissing")]
    assert kube.writes == []  # the running pod is left alone

    events.clear()
    assert poll(kube, body).get("conditions") is None  # the next tick: nothing new
    assert events == []

    kube.add_secret("keys")
    poll(kube, body)
    assert [(e["type"], e["reason"]) for e in events] == [("Normal", "CredentialsSecretFound")]


def test_the_timer_checks_the_mounted_secret_while_a_change_is_held_back(
    events: list[dict[str, Any]],
) -> None:
    """Held back (Reconciled=False), the pod mounts the old Secret: that one is checked, and a
    restart of the pod would start, so nothing says it would not."""
    kube = Kube()
    kube.add_secret("keys")
    body = body_with("keys")
    body["status"], _ = reconcile(kube, body, "create")
    body["spec"]["broker"]["credentialsSecret"] = {"name": "keys-v2"}
    body["metadata"]["generation"] = 2
    written, _ = reconcile(kube, body, "update")
    body["status"] = {**body["status"], **written}
    kube.asked.clear()
    written = poll(kube, body)
    found = condition_of(BotStatus.read({**body["status"], **written}), CREDENTIALS_FOUND)
    assert found is not None and found.status == "True" and "'keys'" in found.message
    assert kube.asked == [secret_path("keys")]


# --- a person's live controls while a change is held back (review R30c) --------------------------


class Runtime:
    """A runtime that takes (or, ``down``, does not take) each control call; records them."""

    def __init__(self, *, down: bool = False) -> None:
        self.calls: list[str] = []
        self.down = down

    def saturated(self) -> bool:
        return False

    async def invoke(self, address: str, token: str, call: Call) -> RuntimeSnapshot:
        self.calls.append(call.method)
        if self.down:
            raise RuntimeCallError("UNAVAILABLE", "no answer", unreachable=True)
        halted = call.method == "EmergencyStop"
        return RuntimeSnapshot(phase=Phase.HALTED if halted else Phase.RUNNING, halted=halted)


def held_pass(
    kube: Kube, body: dict[str, Any], runtime: Runtime, retry: int
) -> tuple[dict[str, Any], float | None]:
    """One reconcile pass, kopf's ``retry``-th try of the change: the status patch it asked
    for and the delay of the retry it asked for (None: none)."""
    patch = kopf.Patch()
    delay: float | None = None
    try:
        asyncio.run(
            handlers.reconcile(
                body=cast(kopf.Body, body),
                meta=cast(kopf.Meta, body["metadata"]),
                status=cast(kopf.Status, body.get("status") or {}),
                patch=patch,
                memo=kopf.Memo(tradefleet=ctx_of(kube, runtime)),
                logger=cast(kopf.Logger, logging.getLogger("test")),
                reason="update",
                retry=retry,
            )
        )
    except kopf.TemporaryError as error:
        delay = error.delay
    return written_status(patch, body), delay


def test_a_held_running_bot_is_steered_at_every_pass_and_looked_at_again_within_2_s(
    events: list[dict[str, Any]],
) -> None:
    """kopf runs no newer edit while a held pass waits out its delay: the delay is how late a
    person's emergency stop reaches the runtime. It was min(30, 2 * (retry + 1))."""
    kube = Kube()
    kube.add_secret("keys")
    body = body_with("keys")
    body["status"], _ = reconcile(kube, body, "create")
    body["spec"]["broker"]["credentialsSecret"] = {"name": "keys-v2"}
    body["metadata"]["generation"] = 2
    runtime = Runtime()
    for retry in (0, 4, 40):  # however long the hold has lasted
        written, delay = held_pass(kube, body, runtime, retry)
        assert delay is not None and delay <= 2, (retry, delay)
        body["status"] = {**body["status"], **written}
    assert runtime.calls == []  # nothing changed in the live fields: no call
    assert len([e for e in events if e["type"] == "Warning"]) == 1  # once, not per look

    # A person's stop edited during the hold: the held pass sends it before it raises.
    body["spec"]["emergencyStop"] = {"reason": "fills look wrong"}
    body["metadata"]["generation"] = 3
    written, delay = held_pass(kube, body, runtime, 41)
    assert runtime.calls == ["EmergencyStop"]
    assert delay is not None and delay <= 2
    assert written["control"]["applied"] == "Halted"
    assert reconciled({**body["status"], **written})["reason"] == "CredentialsSecretMissing"
    assert mounted(kube) == "keys"  # never rolled onto the missing Secret
    # A pod that restarts meanwhile starts halted: its ConfigMap took the live fields.
    config = kube.objects[f"/api/v1/namespaces/{NS}/configmaps/eurusd-paper-config"]
    assert "fills look wrong" in config["data"]["bot.yaml"]


def test_the_held_retry_delay() -> None:
    delay = handlers.credentials_retry_delay
    short = handlers.CREDENTIALS_HOLD_RETRY_S
    assert short <= 2
    # A running bot: every look is short, however long the hold.
    assert [delay(r, deployed=True, steering_left=False) for r in (0, 3, 100)] == [short] * 3
    # No pod of its own yet: backs off to CREDENTIALS_RETRY_S.
    assert [delay(r, deployed=False, steering_left=False) for r in (0, 1, 14, 100)] == [
        2,
        4,
        30,
        30,
    ]
    # A runtime that did not take a control call: backs off as an un-held pass retries it
    # (each failed call posts a Warning).
    assert [delay(r, deployed=True, steering_left=True) for r in (0, 5, 100)] == [1, 6, 30]


def test_a_held_bot_whose_runtime_does_not_answer_backs_off(
    events: list[dict[str, Any]],
) -> None:
    kube = Kube()
    kube.add_secret("keys")
    body = body_with("keys")
    body["status"], _ = reconcile(kube, body, "create")
    body["spec"]["broker"]["credentialsSecret"] = {"name": "keys-v2"}
    body["spec"]["emergencyStop"] = {"reason": "fills look wrong"}
    body["metadata"]["generation"] = 2
    runtime = Runtime(down=True)
    _, delay = held_pass(kube, body, runtime, 20)
    assert runtime.calls == ["EmergencyStop"]  # tried at once, on the first held pass
    assert delay == 21


# --- the pure parts -----------------------------------------------------------------------------


def test_mounted_credentials_reads_the_pod_templates_volume() -> None:
    bot = TradingBot.parse(body_with("keys"))
    deployment = objects.deployment(bot, OperatorSettings(), "h")
    assert objects.credentials_secret_name(bot) == "keys"
    assert objects.mounted_credentials(deployment) == "keys"
    assert objects.mounted_credentials(None) is None
    assert objects.mounted_credentials({"spec": {"template": {"spec": {"volumes": []}}}}) is None


def test_the_credentials_condition_and_its_events() -> None:
    empty = BotStatus()
    there = credentials_status(empty, "keys", True, NS, 1, NOW)
    assert credentials_event(empty, there) is None  # found: nothing to say
    gone = credentials_status(there, "keys", False, NS, 1, NOW)
    said = credentials_event(there, gone)
    assert said is not None and said[0] == "CredentialsSecretMissing" and said[2] is True
    assert "spec.broker.credentialsSecret: Secret 'keys'" in said[1]
    assert credentials_event(gone, credentials_status(gone, "keys", False, NS, 1, NOW)) is None
    other = credentials_status(gone, "other", False, NS, 1, NOW)
    assert credentials_event(gone, other) is not None  # another Secret missing: said again
    back = credentials_status(gone, "keys", True, NS, 1, NOW)
    found = condition_of(back, CREDENTIALS_FOUND)
    assert found is not None and found.status == "True"
    assert credentials_event(gone, back) == ("CredentialsSecretFound", found.message, False)
    assert condition_of(credentials_status(back, None, True, NS, 1, NOW), CREDENTIALS_FOUND) is None
    assert credentials_status(empty, None, True, NS, 1, NOW) is empty


def test_the_missing_secret_message_names_the_field_and_the_secret_only() -> None:
    made = CredentialsSecretMissing("keys", NS, made=True)
    same = CredentialsSecretMissing("keys", NS, made=False, mounted="keys")
    other = CredentialsSecretMissing("keys-v2", NS, made=False, mounted="keys")
    for error in (made, same, other):
        assert str(error).startswith("spec.broker.credentialsSecret: Secret ")
        assert error.reason == "CredentialsSecretMissing" and not error.temporary
    assert "will not start" in str(same)
    assert "credentials from Secret 'keys'" in str(other)


# --- the metadata-only read ---------------------------------------------------------------------


def test_exists_asks_for_the_metadata_only_and_keeps_nothing() -> None:
    async def run() -> tuple[list[str], list[Any]]:
        accepts: list[str] = []

        async def handle(request: aiohttp.web.Request) -> aiohttp.web.Response:
            accepts.append(request.headers.get("Accept", ""))
            name = request.match_info["name"]
            if name == "forbidden":
                return aiohttp.web.json_response(
                    {"kind": "Status", "reason": "Forbidden", "message": "no"}, status=403
                )
            if name != "keys":
                return aiohttp.web.json_response({"kind": "Status", "code": 404}, status=404)
            meta = {"kind": "PartialObjectMetadata", "metadata": {"name": name}}
            return aiohttp.web.json_response(meta)

        app = aiohttp.web.Application()
        app.router.add_get("/api/v1/namespaces/trading/secrets/{name}", handle)
        runner = aiohttp.web.AppRunner(app)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        kube = KubeApi(kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}"))
        answers: list[Any] = []
        try:
            answers.append(await kube.exists(secret_path("keys")))
            answers.append(await kube.exists(secret_path("missing")))
            try:
                await kube.exists(secret_path("forbidden"))
            except KubeError as error:
                answers.append(error.status)
        finally:
            await kube.close()
            await runner.cleanup()
        return accepts, answers

    accepts, answers = asyncio.run(run())
    assert answers == [True, False, 403]
    assert accepts == [PARTIAL_METADATA] * 3  # never the whole Secret, no fallback type
