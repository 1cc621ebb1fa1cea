"""Create, update, resync, adopt and delete: the real operator against the emulator.

The bots here point at a runtime address nobody listens on (``127.0.0.1:1``): the runtime is
unreachable, which the operator must report as a condition without failing anything else.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from tests.operator.e2e.conftest import NS, Cluster, Operator, bot_manifest
from tradefleet_operator.settings import BOT_LABEL, MANAGED_BY


def for_bot(name: str) -> dict[str, str]:
    """The labels that hand an object made beforehand to the bot ``name``."""
    return {BOT_LABEL: name, "app.kubernetes.io/managed-by": MANAGED_BY}


CHILDREN = [
    ("v1", "configmaps", "{}-config"),
    ("v1", "secrets", "{}-api-token"),
    ("v1", "persistentvolumeclaims", "{}-journal"),
    ("v1", "services", "{}"),
    ("apps/v1", "deployments", "{}"),
]


def _condition(bot: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for cond in ((bot or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            found: dict[str, Any] = cond
            return found
    return None


def _pod_hash(deployment: dict[str, Any]) -> str:
    return str(
        deployment["spec"]["template"]["metadata"]["annotations"]["tradefleet.io/config-hash"]
    )


def _settled(cluster: Cluster, name: str) -> dict[str, Any]:
    """The bot once reconciled and its runtime reported unreachable."""

    def check() -> dict[str, Any] | None:
        bot = cluster.bot(name)
        reconciled, ready = _condition(bot, "Reconciled"), _condition(bot, "Ready")
        if reconciled and reconciled["status"] == "True" and ready:
            return bot
        return None

    settled: dict[str, Any] = cluster.wait(check, message=f"{name} settled")
    return settled


def test_create_makes_owned_objects_and_reports_an_unreachable_runtime(
    cluster: Cluster, operator: Operator
) -> None:
    uid = cluster.apply_bot(bot_manifest("alpha"))["metadata"]["uid"]
    for api_version, plural, pattern in CHILDREN:
        name = pattern.format("alpha")
        obj = cluster.wait(lambda: cluster.get(api_version, plural, name), message=name)  # noqa: B023
        refs = obj["metadata"]["ownerReferences"]
        assert [(r["kind"], r["name"], r["uid"], r.get("controller")) for r in refs] == [
            ("TradingBot", "alpha", uid, True)
        ], name
        assert obj["metadata"]["labels"]["tradefleet.io/bot"] == "alpha"
    assert cluster.get("v1", "services", "alpha")["spec"]["clusterIP"] == "None"
    tokens = cluster.get("v1", "secrets", "alpha-api-token")["data"]
    assert len(base64.b64decode(tokens["control.token"])) >= 32

    bot = _settled(cluster, "alpha")
    status = bot["status"]
    assert _pod_hash(cluster.get("apps/v1", "deployments", "alpha")) == status["configHash"]
    assert status["phase"] == "Pending"
    assert status["observedGeneration"] == 1
    ready = _condition(bot, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "RuntimeUnreachable")
    assert ready["observedGeneration"] == 1 and ready["lastTransitionTime"]
    reasons = [event["reason"] for event in cluster.events("alpha")]
    assert "Created" in reasons and "RuntimeUnreachable" in reasons

    # The operator is still serving: a second bot is reconciled too.
    cluster.apply_bot(bot_manifest("beta"))
    _settled(cluster, "beta")


def test_new_strategy_params_roll_out_and_live_fields_do_not(
    cluster: Cluster, operator: Operator
) -> None:
    cluster.apply_bot(bot_manifest("alpha", fast=3))
    first = _settled(cluster, "alpha")["status"]["configHash"]
    deployment = "/apis/apps/v1/namespaces/trading/deployments/alpha"

    # paused/emergencyStop are applied over gRPC: no new hash, no write to the Deployment.
    writes_before = len(cluster.writes())
    cluster.patch_bot("alpha", {"spec": {"paused": True}})
    cluster.wait(
        lambda: (cluster.bot("alpha") or {}).get("status", {}).get("observedGeneration") == 2
    )
    assert ("PATCH", deployment) not in cluster.writes()[writes_before:]
    assert _pod_hash(cluster.get("apps/v1", "deployments", "alpha")) == first

    cluster.patch_bot("alpha", {"spec": {"strategy": {"params": {"fast": 4}}}})

    def rolled() -> str | None:
        found = _pod_hash(cluster.get("apps/v1", "deployments", "alpha"))
        return found if found != first else None

    second = cluster.wait(rolled, message="a new config hash on the pod template")
    assert "fast: 4" in cluster.get("v1", "configmaps", "alpha-config")["data"]["bot.yaml"]
    bot = cluster.wait(
        lambda: (b := cluster.bot("alpha")) and b["status"].get("configHash") == second and b
    )
    assert bot["status"]["observedGeneration"] == 3
    changed = [e for e in cluster.events("alpha") if e["reason"] == "ConfigChanged"]
    assert len(changed) == 1 and second in changed[0]["message"]


def test_an_unchanged_bot_costs_no_writes_on_timer_ticks_or_resync(cluster: Cluster) -> None:
    operator = Operator().start()
    try:
        cluster.apply_bot(bot_manifest("alpha"))
        _settled(cluster, "alpha")
        time.sleep(1.5)  # let the last status write land
        before = len(cluster.writes())
        time.sleep(2.5)  # two or three status timer ticks
        assert cluster.writes()[before:] == []
    finally:
        operator.stop()

    # A restarted operator re-discovers the bot (resume) and re-syncs it: reads, no writes.
    reads_before = len(cluster.requests())
    writes_before = len(cluster.writes())
    operator = Operator().start()
    try:
        config = "/api/v1/namespaces/trading/configmaps/alpha-config"
        cluster.wait(
            lambda: ("GET", config) in cluster.requests()[reads_before:],
            message="the resumed operator reads the bot's objects",
        )
        time.sleep(2.5)
        assert cluster.writes()[writes_before:] == []
    finally:
        operator.stop()


def test_a_half_done_create_and_an_existing_token_secret_are_adopted(
    cluster: Cluster, operator: Operator
) -> None:
    # The first Deployment create is stored but answers 500 (a half-done pass): the retry's
    # create meets 409 AlreadyExists and must adopt and patch the Deployment, not fail.
    assert cluster.emulator is not None
    cluster.emulator.half_done_creates["deployments"] = 1
    mine = {"control.token": "my-control-token", "read.token": "my-read-token"}
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            # made for the bot: labelled as its child (an unlabelled one is not adopted)
            "metadata": {"name": "alpha-api-token", "namespace": NS, "labels": for_bot("alpha")},
            "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in mine.items()},
        }
    )
    uid = cluster.apply_bot(bot_manifest("alpha"))["metadata"]["uid"]
    bot = _settled(cluster, "alpha")
    deployment = cluster.get("apps/v1", "deployments", "alpha")
    assert [r["uid"] for r in deployment["metadata"]["ownerReferences"]] == [uid]
    assert _pod_hash(deployment) == bot["status"]["configHash"]
    secret = cluster.get("v1", "secrets", "alpha-api-token")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == mine
    assert [r["uid"] for r in secret["metadata"]["ownerReferences"]] == [uid]
    posts = [w for w in cluster.writes() if w[0] == "POST" and w[1].endswith("/deployments")]
    assert len(posts) == 2  # the lost answer, then the retry that met 409


def test_delete_runs_the_finalizer_and_an_unreachable_runtime_does_not_block_it(
    cluster: Cluster, operator: Operator
) -> None:
    cluster.apply_bot(bot_manifest("alpha"))
    bot = _settled(cluster, "alpha")
    assert "tradefleet.io/finalizer" in bot["metadata"]["finalizers"]
    started = time.monotonic()
    cluster.delete_bot("alpha")
    cluster.wait(lambda: cluster.bot("alpha") is None, timeout=15, message="bot deleted")
    assert time.monotonic() - started < 10  # bounded by the stop timeout (3 s here)
    for api_version, plural, pattern in CHILDREN:  # cascaded by owner reference
        assert cluster.get(api_version, plural, pattern.format("alpha")) is None
    warnings = [e for e in cluster.events("alpha") if e["reason"] == "RuntimeUnreachable"]
    assert any("deleting anyway" in e["message"] for e in warnings)


def test_an_invalid_spec_fails_the_bot_without_stopping_the_operator(
    cluster: Cluster, operator: Operator
) -> None:
    broken = bot_manifest("broken")
    broken["spec"]["market"]["timeframe"] = "7 fortnights"  # what the CRD schema lets through
    cluster.apply_bot(broken)
    bot = cluster.wait(
        lambda: (b := cluster.bot("broken")) and b.get("status", {}).get("phase") == "Failed" and b
    )
    reconciled = _condition(bot, "Reconciled")
    assert reconciled is not None
    assert (reconciled["status"], reconciled["reason"]) == ("False", "InvalidSpec")
    assert "InvalidSpec" in [e["reason"] for e in cluster.events("broken")]
    assert cluster.get("apps/v1", "deployments", "broken") is None
    cluster.apply_bot(bot_manifest("fine"))
    _settled(cluster, "fine")


def test_delete_then_immediate_reapply_is_not_stuck_failed(
    cluster: Cluster, operator: Operator
) -> None:
    """Issue 19, item 3: the old children were not collected yet, a second controller owner
    reference made the server answer 422, and the bot stayed Failed for good. Now the old
    children are adopted (the dead predecessor's reference replaced) or waited for."""
    assert cluster.emulator is not None
    emulator = cluster.emulator
    cluster.apply_bot(bot_manifest("phoenix"))
    first = cluster.wait(
        lambda: (c := _condition(cluster.bot("phoenix"), "Reconciled")) and c["status"] == "True"
    )
    assert first
    old_uid = (cluster.bot("phoenix") or {})["metadata"]["uid"]
    cluster.call(lambda: setattr(emulator, "gc_delay", 5.0))  # a slow garbage collector
    cluster.delete_bot("phoenix")
    cluster.wait(lambda: cluster.bot("phoenix") is None, message="the finalizer let it go")
    assert cluster.get("apps/v1", "deployments", "phoenix")  # old children still there
    cluster.apply_bot(bot_manifest("phoenix"))  # kubectl apply at once
    bot = cluster.wait(
        lambda: (
            (b := cluster.bot("phoenix"))
            and b["metadata"]["uid"] != old_uid
            and (c := _condition(b, "Reconciled"))
            and c["status"] == "True"
            and b
        ),
        timeout=20,
        message="the re-applied bot reconciled",
    )
    assert bot["status"]["phase"] != "Failed"
    time.sleep(6)  # past the slow collector: nothing of the new bot was collected
    for api_version, plural, pattern in CHILDREN:
        child = cluster.get(api_version, plural, pattern.format("phoenix"))
        assert child is not None, plural
        refs = child["metadata"]["ownerReferences"]
        assert [ref["uid"] for ref in refs if ref.get("controller")] == [bot["metadata"]["uid"]]


def test_objects_of_the_bot_s_names_that_are_not_its_own_are_left_alone(
    cluster: Cluster, operator: Operator
) -> None:
    """A team's Service and Deployment ``web``, made with kubectl, and a TradingBot that
    happens to be called ``web``: the operator touches neither, says so, runs no pod, and
    deleting the bot leaves them be."""
    app = {"app": "web"}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NS, "labels": app},
        "spec": {"selector": app, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS, "labels": app},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": app},
            "template": {
                "metadata": {"labels": app},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    cluster.request("POST", f"/api/v1/namespaces/{NS}/services", service)
    cluster.request("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", deployment)
    before = (cluster.get("v1", "services", "web"), cluster.get("apps/v1", "deployments", "web"))

    cluster.apply_bot(bot_manifest("web"))
    bot = cluster.wait(
        lambda: (
            (b := cluster.bot("web"))
            and (c := _condition(b, "Reconciled"))
            and c["reason"] == "NameTaken"
            and b
        ),
        message="Reconciled=False NameTaken",
    )
    reconciled = _condition(bot, "Reconciled")
    assert reconciled is not None and reconciled["status"] == "False"
    assert reconciled["message"].startswith(
        "Service web and Deployment web exist and are not this bot's; rename the bot or delete"
    )
    warnings = [e for e in cluster.events("web") if e["reason"] == "NameTaken"]
    assert warnings and "Service web" in warnings[0]["message"]
    time.sleep(1)
    after = (cluster.get("v1", "services", "web"), cluster.get("apps/v1", "deployments", "web"))
    assert after == before  # untouched: selector, replicas, image, no owner reference

    cluster.delete_bot("web")
    cluster.wait(lambda: cluster.bot("web") is None, message="bot deleted")
    time.sleep(1)
    assert cluster.get("v1", "services", "web") == before[0]
    assert cluster.get("apps/v1", "deployments", "web") == before[1]
    # the bot's own objects went with it
    assert cluster.get("v1", "configmaps", "web-config") is None


def test_a_team_label_change_reaches_the_pod_and_the_configmap(
    cluster: Cluster, operator: Operator
) -> None:
    def team_env() -> list[str]:
        deployment = cluster.get("apps/v1", "deployments", "alpha")
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        return [e["value"] for e in env if e["name"] == "TRADEFLEET_TEAM"]

    cluster.apply_bot(bot_manifest("alpha", labels={"tradefleet.io/team": "a"}))
    _settled(cluster, "alpha")
    assert team_env() == ["a"]
    cluster.patch_bot("alpha", {"metadata": {"labels": {"tradefleet.io/team": "b"}}})
    cluster.wait(lambda: team_env() == ["b"], message="TRADEFLEET_TEAM=b")
    text = cluster.get("v1", "configmaps", "alpha-config")["data"]["bot.yaml"]
    assert "tradefleet.io/team: b" in text
