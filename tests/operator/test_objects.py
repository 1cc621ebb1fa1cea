"""A TradingBot's objects: shapes, validity, hashing, secrecy and no-op updates."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.operator import validate_strict
from tradefleet_operator import objects
from tradefleet_operator.bot_api import TradingBot
from tradefleet_operator.object_diff import needs_update, parse_quantity
from tradefleet_operator.settings import OperatorSettings
from tradefleet_operator.tokens import ApiTokens, tokens_from_secret
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.spec.checks import config_hash as runtime_config_hash
from tradefleet_runtime.spec.model import JournalStorage, RuntimeSpec

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = OperatorSettings(runtime_image="registry.example/tradefleet/runtime:1.2.3")
TOKENS = ApiTokens(control="control-token-value-123", read="read-token-value-456")
LABELS = {
    "app.kubernetes.io/name": "tradefleet-bot",
    "app.kubernetes.io/instance": "eurusd-paper",
    "app.kubernetes.io/managed-by": "tradefleet-operator",
    "tradefleet.io/bot": "eurusd-paper",
}


CRD_FILE = (
    Path(__file__).resolve().parents[2] / "charts/tradefleet/crds/tradingbots.tradefleet.io.yaml"
)


def example_bot(**spec_changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((ROOT / "examples/bots/eurusd-paper.yaml").read_text())
    body["metadata"].update(
        {"namespace": "trading", "uid": "0b0e6f5e-1111-2222-3333-444455556666", "generation": 3}
    )
    body["spec"].update(spec_changes)
    return body


def bot(body: dict[str, Any]) -> TradingBot:
    """The TradingBot as the handlers hand it to the builders: parsed once."""
    return TradingBot.parse(body)


def live_bot() -> dict[str, Any]:
    body = example_bot(
        mode="live",
        liveConfirmation="eurusd-paper",
        runtime={
            "webhook": True,
            "replaySpeed": 0,
            "resources": {"requests": {"cpu": "0.5", "memory": "256Mi"}},
            "journal": {"size": "5Gi", "storageClassName": "fast-ssd"},
        },
    )
    body["spec"]["broker"]["credentialsSecret"] = {"name": "broker-keys"}
    return body


def by_kind(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["kind"]: item for item in items}


@pytest.fixture
def rendered() -> dict[str, dict[str, Any]]:
    body = example_bot()
    return by_kind(
        objects.desired_objects(bot(body), SETTINGS, objects.config_hash(bot(body)), TOKENS)
    )


def test_all_objects_pass_kubernetes_validate_strict(tmp_path: Path) -> None:
    items = []
    for body in (example_bot(), live_bot(), example_bot(runtime={"journal": {"ephemeral": True}})):
        items += objects.desired_objects(
            bot(body), SETTINGS, objects.config_hash(bot(body)), TOKENS
        )
    assert {item["kind"] for item in items} == {
        "ConfigMap", "Secret", "PersistentVolumeClaim", "Service", "Deployment",
    }  # fmt: skip
    validate_strict(items, tmp_path)


def test_common_metadata_and_no_owner_references(rendered: dict[str, dict[str, Any]]) -> None:
    assert list(rendered) == [
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
        "Service",
        "Deployment",
    ]
    for item in rendered.values():
        meta = item["metadata"]
        assert meta["namespace"] == "trading"
        assert LABELS.items() <= meta["labels"].items()
        assert meta["labels"]["app.kubernetes.io/part-of"] == "tradefleet"
        assert "ownerReferences" not in meta
    names = {kind: item["metadata"]["name"] for kind, item in rendered.items()}
    assert names == {
        "ConfigMap": "eurusd-paper-config",
        "Secret": "eurusd-paper-api-token",
        "PersistentVolumeClaim": "eurusd-paper-journal",
        "Service": "eurusd-paper",
        "Deployment": "eurusd-paper",
    }


def test_configmap_holds_the_runtime_manifest(rendered: dict[str, dict[str, Any]]) -> None:
    text = rendered["ConfigMap"]["data"]["bot.yaml"]
    document = yaml.safe_load(text)
    manifest = parse_manifest(document)  # the runtime loads it as it is
    assert manifest.metadata.name == "eurusd-paper"
    assert manifest.metadata.namespace == "trading"
    assert document["spec"]["strategy"]["params"]["fast"] == 12
    # Defaults are left to the runtime (an older one refuses fields it does not know).
    assert "capital" not in document["spec"]  # the example's capital is the default one
    assert manifest.spec.capital.initial == 100000
    assert "status" not in document
    assert "uid" not in document["metadata"]


def test_bot_config_is_stable() -> None:
    body = example_bot()
    shuffled = json.loads(json.dumps(body))
    shuffled["spec"] = dict(reversed(list(shuffled["spec"].items())))
    assert objects.render_config(objects.bot_config(bot(body))) == objects.render_config(
        objects.bot_config(bot(shuffled))
    )
    explicit = example_bot(paused=False, capital={"currency": "USD", "initial": 100000.0})
    assert objects.config_hash(bot(explicit)) == objects.config_hash(bot(body))


def test_config_hash_follows_what_the_pod_runs() -> None:
    base = objects.config_hash(bot(example_bot()))
    assert len(base) == 16
    changed = example_bot(strategy={"name": "ema-cross", "params": {"fast": 13, "slow": 48}})
    assert objects.config_hash(bot(changed)) != base
    assert objects.config_hash(bot(example_bot(market={"symbols": ["GBPUSD"]}))) != base
    # Applied live over gRPC: no pod restart.
    assert objects.config_hash(bot(example_bot(paused=True))) == base
    halted = example_bot(emergencyStop={"reason": "news", "flatten": True})
    assert objects.config_hash(bot(halted)) == base
    with_status = example_bot()
    with_status["status"] = {"phase": "Running", "equity": 1.0}
    assert objects.config_hash(bot(with_status)) == base
    # The runtime's own hash of the same manifest, when neither paused nor halted.
    assert runtime_config_hash(parse_manifest(example_bot())) == base
    assert objects.config_hash(bot(objects.bot_config(bot(example_bot())))) == base


def test_api_token_secret_and_tokens_round_trip(rendered: dict[str, dict[str, Any]]) -> None:
    secret = rendered["Secret"]
    assert secret["type"] == "Opaque"
    assert set(secret["data"]) == {"control.token", "read.token"}
    assert base64.b64decode(secret["data"]["control.token"]).decode() == TOKENS.control
    assert tokens_from_secret(secret) == TOKENS
    assert tokens_from_secret(None) is None
    assert tokens_from_secret({"data": {"control.token": "!!"}}) is None
    generated = ApiTokens.generate()
    assert generated.control != generated.read and len(generated.control) >= 40
    assert generated.control not in repr(generated)


def test_no_secret_value_outside_the_secret() -> None:
    body = live_bot()
    items = objects.desired_objects(bot(body), SETTINGS, objects.config_hash(bot(body)), TOKENS)
    for item in items:
        text = json.dumps(item)
        encoded = [base64.b64encode(t.encode()).decode() for t in (TOKENS.control, TOKENS.read)]
        if item["kind"] == "Secret":
            assert all(value in text for value in encoded)
            continue
        for value in (TOKENS.control, TOKENS.read, *encoded):
            assert value not in text, item["kind"]


def test_deployment_shape(rendered: dict[str, dict[str, Any]]) -> None:
    deployment = rendered["Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["selector"] == {"matchLabels": {"tradefleet.io/bot": "eurusd-paper"}}
    template = spec["template"]
    assert LABELS.items() <= template["metadata"]["labels"].items()
    assert template["metadata"]["annotations"] == {
        "tradefleet.io/config-hash": objects.config_hash(bot(example_bot()))
    }
    pod = template["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["fsGroup"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/tradefleet/runtime:1.2.3"
    # A failing runtime writes its reason to the termination log (and exits 1); with no reason
    # written the log's tail stands in. The operator reports it as the Failed reason.
    assert {"name": "TRADEFLEET_FAILURE_FILE", "value": "/dev/termination-log"} in container["env"]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["ports"] == [
        {"name": "grpc", "containerPort": 50051, "protocol": "TCP"},
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "128Mi"},
        "limits": {"memory": "256Mi"},
    }
    assert container["command"] == [
        "tradefleet", "serve", "/etc/tradefleet/bot.yaml",
        "--grpc", "0.0.0.0:50051", "--http", "0.0.0.0:8080",
        "--auth-dir", "/var/run/tradefleet/auth",
        "--journal", "/var/lib/tradefleet/journal.sqlite",
        "--speed", "1",
    ]  # fmt: skip
    env = {item["name"]: item for item in container["env"]}
    assert env["TRADEFLEET_BOT"]["value"] == "eurusd-paper"
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {
        "config": "/etc/tradefleet",
        "auth": "/var/run/tradefleet/auth",
        "journal": "/var/lib/tradefleet",
        "tmp": "/tmp",
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "eurusd-paper-config"
    assert volumes["auth"]["secret"]["secretName"] == "eurusd-paper-api-token"
    assert volumes["journal"]["persistentVolumeClaim"] == {"claimName": "eurusd-paper-journal"}
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}


def test_deployment_of_a_live_bot_with_webhook() -> None:
    body = live_bot()
    deployment = objects.deployment(bot(body), SETTINGS, "abc")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert volumes["credentials"]["secret"]["secretName"] == "broker-keys"
    assert mounts["credentials"] == "/var/run/tradefleet/credentials"
    assert volumes["webhook-keys"]["secret"]["secretName"] == "eurusd-paper-webhook-keys"
    assert mounts["webhook-keys"] == "/var/run/tradefleet/webhook"
    assert container["command"][-4:] == [
        "--speed", "0", "--webhook-keys", "/var/run/tradefleet/webhook",
    ]  # fmt: skip
    assert container["resources"] == {"requests": {"cpu": "0.5", "memory": "256Mi"}}


def test_the_webhooks_source_allow_list_reaches_the_runtime() -> None:
    body = live_bot()
    body["spec"]["runtime"]["webhookAllow"] = ["203.0.113.0/24", "2001:db8::/32"]
    body["spec"]["runtime"]["webhookTrustForwardedFor"] = True
    (container,) = objects.deployment(bot(body), SETTINGS, "abc")["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["command"][-7:] == [
        "--webhook-keys", "/var/run/tradefleet/webhook",
        "--webhook-allow", "203.0.113.0/24",
        "--webhook-allow", "2001:db8::/32",
        "--webhook-trust-forwarded-for",
    ]  # fmt: skip


def test_ephemeral_journal_has_no_claim() -> None:
    body = example_bot(runtime={"journal": {"ephemeral": True}})
    assert objects.journal_pvc(bot(body)) is None
    kinds = [item["kind"] for item in objects.desired_objects(bot(body), SETTINGS, "h", TOKENS)]
    assert "PersistentVolumeClaim" not in kinds
    volumes = objects.deployment(bot(body), SETTINGS, "h")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "journal", "emptyDir": {}} in volumes


def test_journal_pvc() -> None:
    pvc = objects.journal_pvc(bot(live_bot()), SETTINGS)
    assert pvc is not None
    assert pvc["spec"] == {
        # one pod only: a second runtime of the bot cannot mount the journal (fencing)
        "accessModes": ["ReadWriteOncePod"],
        "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "fast-ssd",
    }
    default = objects.journal_pvc(bot(example_bot()))
    assert default is not None
    assert default["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in default["spec"]


def test_headless_service(rendered: dict[str, dict[str, Any]]) -> None:
    spec = rendered["Service"]["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["publishNotReadyAddresses"] is True
    assert spec["selector"] == {"tradefleet.io/bot": "eurusd-paper"}
    ports = {port["name"]: port for port in spec["ports"]}
    assert ports["grpc"]["port"] == 50051 and ports["grpc"]["appProtocol"] == "grpc"
    assert ports["http"]["port"] == 8080


def test_runtime_address() -> None:
    body = example_bot()
    assert bot(body).runtime_address(SETTINGS) == "eurusd-paper.trading.svc:50051"
    body["metadata"]["annotations"] = {"tradefleet.io/runtime-address": "127.0.0.1:15051"}
    assert bot(body).runtime_address(SETTINGS) == "127.0.0.1:15051"


def test_settings_are_frozen_and_checked() -> None:
    with pytest.raises(AttributeError):
        SETTINGS.grpc_port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        SETTINGS.labels["x"] = "y"  # type: ignore[index]
    with pytest.raises(ValueError):
        OperatorSettings(grpc_port=8080, http_port=8080)


# --- needs_update against objects shaped like the API server's answers ----------------------


def api_shaped(obj: dict[str, Any]) -> dict[str, Any]:
    """What a GET returns after the object was created: defaults, status, server metadata."""
    actual = copy.deepcopy(obj)
    meta = actual["metadata"]
    meta.update(
        {
            "uid": "5d1c9a2e-0000-4000-8000-000000000001",
            "resourceVersion": "48213",
            "creationTimestamp": "2026-11-23T06:00:00Z",
            "generation": 1,
            "ownerReferences": [{"apiVersion": "tradefleet.io/v1alpha1", "kind": "TradingBot"}],
            "managedFields": [{"manager": "kopf", "operation": "Update", "fieldsV1": {}}],
        }
    )
    meta["labels"]["added-by-someone-else"] = "yes"
    meta.setdefault("annotations", {})["kubectl.kubernetes.io/last-applied"] = "{}"
    kind = actual["kind"]
    if kind == "Deployment":
        meta["annotations"]["deployment.kubernetes.io/revision"] = "1"
        spec = actual["spec"]
        spec.update({"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600})
        pod = spec["template"]["spec"]
        pod.update(
            {
                "restartPolicy": "Always",
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
            }
        )
        for volume in pod["volumes"]:
            if "configMap" in volume:
                volume["configMap"]["defaultMode"] = 420
        container = pod["containers"][0]
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        for variable in container["env"]:
            if "valueFrom" in variable:
                variable["valueFrom"]["fieldRef"]["apiVersion"] = "v1"
        for probe in ("livenessProbe", "readinessProbe"):
            container[probe]["httpGet"]["scheme"] = "HTTP"
            container[probe]["successThreshold"] = 1
        requests = container["resources"].get("requests", {})
        if requests.get("cpu") == "0.5":
            requests["cpu"] = "500m"  # the API server canonicalises quantities
        actual["status"] = {"replicas": 1, "readyReplicas": 1, "observedGeneration": 1}
    elif kind == "Service":
        actual["spec"].update(
            {
                "clusterIPs": ["None"],
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
            }
        )
        actual["status"] = {"loadBalancer": {}}
    elif kind == "PersistentVolumeClaim":
        actual["spec"].setdefault("storageClassName", "standard")
        actual["spec"].update({"volumeMode": "Filesystem", "volumeName": "pvc-1234"})
        actual["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    return actual


@pytest.mark.parametrize("make", [example_bot, live_bot], ids=["paper", "live"])
def test_needs_update_is_none_for_an_unchanged_bot(make: Any) -> None:
    body = make()
    for desired in objects.desired_objects(
        bot(body), SETTINGS, objects.config_hash(bot(body)), TOKENS
    ):
        assert needs_update(desired, api_shaped(desired)) is None, desired["kind"]


def test_needs_update_patches_what_changed() -> None:
    body = example_bot()
    old = api_shaped(objects.deployment(bot(body), SETTINGS, objects.config_hash(bot(body))))
    changed = example_bot(strategy={"name": "ema-cross", "params": {"fast": 13, "slow": 48}})
    new_hash = objects.config_hash(bot(changed))
    patch = needs_update(objects.deployment(bot(changed), SETTINGS, new_hash), old)
    assert patch == {
        "spec": {"template": {"metadata": {"annotations": {"tradefleet.io/config-hash": new_hash}}}}
    }
    # A paused bot: the ConfigMap changes, the Deployment does not.
    paused = example_bot(paused=True)
    assert (
        needs_update(
            objects.deployment(bot(paused), SETTINGS, objects.config_hash(bot(paused))), old
        )
        is None
    )
    config_patch = needs_update(
        objects.configmap(bot(paused), SETTINGS), api_shaped(objects.configmap(bot(body), SETTINGS))
    )
    assert config_patch is not None and "paused: true" in config_patch["data"]["bot.yaml"]


def test_needs_update_replaces_changed_lists_and_restores_labels() -> None:
    body = live_bot()
    desired = objects.deployment(bot(body), SETTINGS, "h")
    without_webhook = copy.deepcopy(body)
    without_webhook["spec"]["runtime"]["webhook"] = False
    actual = api_shaped(objects.deployment(bot(without_webhook), SETTINGS, "h"))
    patch = needs_update(desired, actual)
    assert patch is not None
    pod = patch["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == [
        v["name"] for v in desired["spec"]["template"]["spec"]["volumes"]
    ]
    assert pod["containers"] == desired["spec"]["template"]["spec"]["containers"]

    actual = api_shaped(desired)
    del actual["metadata"]["labels"]["tradefleet.io/bot"]
    assert needs_update(desired, actual) == {
        "metadata": {"labels": {"tradefleet.io/bot": "eurusd-paper"}}
    }


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [("500m", "0.5", True), ("1Gi", "1024Mi", True), ("1", "1000m", True), ("1G", "1Gi", False)],
)
def test_quantities_compare_by_value(left: str, right: str, equal: bool) -> None:
    assert (parse_quantity(left) == parse_quantity(right)) is equal


def test_defaults_are_the_spec_models() -> None:
    """No copied defaults: a bot that leaves ``spec.runtime`` out gets the model's."""
    body = example_bot()
    body["spec"].pop("runtime", None)
    parsed = bot(body)
    defaults = RuntimeSpec()
    (container,) = objects.deployment(parsed, SETTINGS, "h")["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["resources"] == defaults.resources
    assert container["command"][-2:] == ["--speed", format(defaults.replay_speed, "g")]
    pvc = objects.journal_pvc(parsed)
    assert pvc is not None
    assert pvc["spec"]["resources"]["requests"]["storage"] == JournalStorage().size


def test_pod_placement_and_pull_settings_pass_through() -> None:
    runtime = {
        "imagePullSecrets": [{"name": "regcred"}],
        "nodeSelector": {"pool": "trading"},
        "tolerations": [{"key": "trading", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                    ]
                }
            }
        },
        "priorityClassName": "trading-high",
        "serviceAccountName": "bot-sa",
        "podLabels": {"team": "fx", "app.kubernetes.io/name": "not-ours"},
        "podAnnotations": {"example.com/owner": "desk-1"},
    }
    body = {
        "metadata": {"name": "placed", "namespace": "team-a"},
        "spec": {
            "mode": "paper",
            "strategy": {"name": "ema-cross"},
            "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
            "runtime": runtime,
        },
    }
    crd = yaml.safe_load((CRD_FILE).read_text())
    crd_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec_schema = crd_schema["properties"]["spec"]
    for field in runtime:
        assert field in spec_schema["properties"]["runtime"]["properties"], field
    # The CRD accepts every new field (OpenAPI 3.0 bounds are draft 4's).
    jsonschema.Draft4Validator(spec_schema).validate(body["spec"])
    settings = OperatorSettings()
    made = objects.deployment(TradingBot.parse(body), settings, "hash")
    template = made["spec"]["template"]
    pod = template["spec"]
    for field in ("imagePullSecrets", "nodeSelector", "tolerations", "affinity"):
        assert pod[field] == runtime[field]
    assert pod["priorityClassName"] == "trading-high"
    assert pod["serviceAccountName"] == "bot-sa"
    assert pod["automountServiceAccountToken"] is False
    assert template["metadata"]["labels"]["team"] == "fx"
    assert made["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert template["metadata"]["annotations"]["example.com/owner"] == "desk-1"
    assert template["metadata"]["annotations"][objects.CONFIG_HASH_ANNOTATION] == "hash"


def _runtime_env(body: dict[str, Any], settings: OperatorSettings = SETTINGS) -> dict[str, str]:
    deployment = objects.deployment(bot(body), settings, objects.config_hash(bot(body)))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_the_team_label_reaches_the_runtime_as_tradefleet_team() -> None:
    """Issue 18, item 5: the bot's team label becomes its metrics' team (TRADEFLEET_TEAM)."""
    body = example_bot()
    assert "TRADEFLEET_TEAM" not in _runtime_env(body)  # no label: the pod template is unchanged
    body["metadata"]["labels"] = {"tradefleet.io/team": "desk-fx", "desk": "rates"}
    assert _runtime_env(body)["TRADEFLEET_TEAM"] == "desk-fx"
    other_key = OperatorSettings(runtime_image=SETTINGS.runtime_image, team_label="desk")
    assert _runtime_env(body, other_key)["TRADEFLEET_TEAM"] == "rates"
    off = OperatorSettings(runtime_image=SETTINGS.runtime_image, team_label="")
    assert "TRADEFLEET_TEAM" not in _runtime_env(body, off)
