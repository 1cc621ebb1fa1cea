"""The Helm chart: lint, schema, every rendering valid Kubernetes, and consistent with the operator.

Rendered objects go through ``kubernetes-validate --strict`` (on stdin, for the oldest and the
newest Kubernetes the chart supports). Its schema set has only built-in kinds, so the documents
of ``monitoring.coreos.com`` (PodMonitor, ServiceMonitor, PrometheusRule) and ``kopf.dev``
(KopfPeering, ClusterKopfPeering) are checked separately: the Prometheus Operator's kinds
against the minimal schemas below (the fields the chart sets, nothing else allowed), the peering
objects against the peering CRD the chart renders.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.packaging.packaging_tools import (
    CHART,
    KUBE_VERSIONS,
    KUBERNETES_VALIDATE,
    ROOT,
    documents,
    helm,
    render,
    run,
    set_args,
)
from tradefleet_operator import main as operator_main
from tradefleet_operator import objects
from tradefleet_operator.bot_api import TradingBot
from tradefleet_operator.k8s_api import PLURALS
from tradefleet_operator.settings import APP_NAME, OperatorSettings
from tradefleet_operator.tokens import ApiTokens

#: Every optional part on, serving two namespaces (Roles, KopfPeerings and policies in each).
ALL_ON_NAMESPACED = {
    "operator.replicas": "2",
    "operator.peering.enabled": "true",
    "operator.watch.namespaces": "{team-a,team-b}",
    "operator.admission.enabled": "true",
    "operator.admission.certSecret": "tradefleet-webhook-tls",
    "operator.image.digest": "sha256:" + "a" * 64,
    "operator.imagePullSecrets": "{regcred}",
    "operator.extraArgs": "{--verbose}",
    "operator.serviceAccount.annotations.example\\.com/role": "operator",
    "operator.nodeSelector.kubernetes\\.io/os": "linux",
    "operator.podAnnotations.example\\.com/team": "trading",
    "networkPolicy.grpcFromNamespaces": "{tools}",
    "monitoring.podMonitor.enabled": "true",
    "monitoring.serviceMonitor.enabled": "true",
    "monitoring.prometheusRule.enabled": "true",
    "monitoring.dashboards.enabled": "true",
    "monitoring.dashboards.annotations.grafana_folder": "tradefleet",
    "monitoring.labels.release": "kube-prometheus-stack",
    "commonLabels.team": "trading",
}
#: The same, cluster-wide (ClusterRole, ClusterKopfPeering, PodMonitor on any namespace).
ALL_ON_CLUSTERWIDE = {
    **{k: v for k, v in ALL_ON_NAMESPACED.items() if k != "operator.watch.namespaces"},
    "operator.watch.allNamespaces": "true",
    "networkPolicy.botNamespaces": "{team-a,team-b}",
}
#: Everything optional off, the operator's metrics too, bring-your-own ServiceAccount and RBAC.
MINIMAL = {
    "rbac.create": "false",
    "operator.serviceAccount.create": "false",
    "operator.serviceAccount.name": "my-operator",
    "operator.metrics.port": "0",
    "operator.admission.enabled": "false",
    "networkPolicy.enabled": "false",
}
VARIANTS = {
    "defaults": {},
    "minimal": MINIMAL,
    "all-on-namespaced": ALL_ON_NAMESPACED,
    "all-on-clusterwide": ALL_ON_CLUSTERWIDE,
}

# --- minimal schemas of the kinds kubernetes-validate does not know ------------------------------

_STR = {"type": "string"}
_MAP = {"type": "object", "additionalProperties": _STR}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 63},
        "namespace": _STR,
        "labels": _MAP,
        "annotations": _MAP,
    },
    "additionalProperties": False,
}
_SELECTOR = {
    "type": "object",
    "properties": {"matchLabels": _MAP},
    "required": ["matchLabels"],
    "additionalProperties": False,
}
_NS_SELECTOR = {
    "type": "object",
    "properties": {
        "any": {"type": "boolean"},
        "matchNames": {"type": "array", "items": _STR, "minItems": 1},
    },
    "additionalProperties": False,
    "minProperties": 1,
}
_RELABELINGS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "action": {"enum": ["replace", "keep", "drop", "labeldrop", "labelkeep"]},
            "targetLabel": _STR,
            "replacement": _STR,
            "sourceLabels": {"type": "array", "items": _STR},
            "regex": _STR,
        },
        "additionalProperties": False,
    },
}
_ENDPOINT = {
    "type": "object",
    "required": ["port", "path"],
    "properties": {
        "port": _STR,
        "path": {"type": "string", "pattern": "^/"},
        "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
        "honorLabels": {"type": "boolean"},
        "relabelings": _RELABELINGS,
    },
    "additionalProperties": False,
}


def _kind(kind: str, spec: dict[str, Any], api_version: str = "monitoring.coreos.com/v1") -> Any:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
        "additionalProperties": False,
    }


MONITORING_SCHEMAS = {
    "PodMonitor": _kind(
        "PodMonitor",
        {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": _NS_SELECTOR,
                "podMetricsEndpoints": {"type": "array", "items": _ENDPOINT, "minItems": 1},
            },
            "additionalProperties": False,
        },
    ),
    "ServiceMonitor": _kind(
        "ServiceMonitor",
        {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": _NS_SELECTOR,
                "endpoints": {"type": "array", "items": _ENDPOINT, "minItems": 1},
            },
            "additionalProperties": False,
        },
    ),
    "PrometheusRule": _kind(
        "PrometheusRule",
        {
            "type": "object",
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "properties": {
                            "name": _STR,
                            "interval": _STR,
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                    "properties": {
                                        "alert": _STR,
                                        "record": _STR,
                                        "expr": {"type": ["string", "integer"]},
                                        "for": _STR,
                                        "keep_firing_for": _STR,
                                        "labels": _MAP,
                                        "annotations": _MAP,
                                    },
                                    "additionalProperties": False,
                                },
                            },
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    ),
}
PEERING_KINDS = {"KopfPeering", "ClusterKopfPeering"}
_NOT_IN_SCHEMA_SET = re.compile(
    r"Couldn't find schema for kind (\w+) with api version (\S+) for kubernetes version"
)


def kubernetes_validate(text: str) -> set[tuple[str, str]]:
    """Run the CLI on ``text`` (stdin) for each supported version; return the kinds it skipped."""
    skipped: set[tuple[str, str]] = set()
    for version in KUBE_VERSIONS:
        result = run([*KUBERNETES_VALIDATE, "--strict", "-k", version, "-"], stdin=text)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "ERROR" not in output, output
        skipped |= set(_NOT_IN_SCHEMA_SET.findall(output))
    return skipped


def validate_custom_kinds(docs: list[dict[str, Any]]) -> None:
    crds = {
        doc["spec"]["names"]["kind"]: doc
        for doc in docs
        if doc["kind"] == "CustomResourceDefinition"
    }
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            jsonschema.validate(doc, MONITORING_SCHEMAS[doc["kind"]])
        elif doc["kind"] in PEERING_KINDS:
            crd = crds[doc["kind"]]
            (version,) = crd["spec"]["versions"]
            assert doc["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
            schema = version["schema"]["openAPIV3Schema"]
            body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
            jsonschema.validate(body, schema)
            jsonschema.validate(doc["metadata"], _METADATA)
            assert ("namespace" in doc["metadata"]) == (crd["spec"]["scope"] == "Namespaced")


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def operator_deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = by_kind(docs, "Deployment")
    return deployment


# --- lint -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm_lint_strict(variant: str) -> None:
    result = helm("lint", "--strict", CHART, *set_args(VARIANTS[variant]))
    assert result.returncode == 0, result.stdout + result.stderr


# --- every rendering is valid Kubernetes ----------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendering_is_valid_kubernetes(variant: str) -> None:
    text = render(VARIANTS[variant])
    docs = documents(text)
    skipped = kubernetes_validate(text)
    allowed = {(kind, "monitoring.coreos.com/v1") for kind in MONITORING_SCHEMAS}
    allowed |= {(kind, "kopf.dev/v1") for kind in PEERING_KINDS}
    assert skipped <= allowed, f"kinds nobody validated: {skipped - allowed}"
    # Every document skipped by the CLI is validated here instead.
    validate_custom_kinds(docs)
    for doc in docs:
        assert doc["metadata"]["name"], doc
        if doc["kind"] not in {
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "ClusterKopfPeering",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        }:
            assert doc["metadata"].get("namespace"), f"{doc['kind']} without a namespace"
    names = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), "two objects with one name"


def test_all_on_renders_every_optional_part() -> None:
    kinds = {doc["kind"] for doc in documents(render(ALL_ON_NAMESPACED))}
    assert {
        "PodMonitor",
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
        "KopfPeering",
        "CustomResourceDefinition",
    } <= kinds
    if list((CHART / "files" / "dashboards").glob("*.json")):
        assert "ConfigMap" in kinds


def test_crd_comes_from_crds_folder_only() -> None:
    """The TradingBot CRD is in crds/ (installed by Helm, never templated twice)."""
    assert (CHART / "crds" / "tradingbots.tradefleet.io.yaml").is_file()
    for variant in VARIANTS.values():
        for doc in by_kind(documents(render(variant)), "CustomResourceDefinition"):
            assert doc["spec"]["group"] == "kopf.dev"


# --- values.schema.json -------------------------------------------------------------------------

WRONG_VALUES = [
    {"operator.replicas": "two"},
    {"operator.replicas": "-1"},
    {"operator.logFormat": "xml"},
    {"operator.image.pullPolicy": "Sometimes"},
    {"operator.watch.allNamespaces": "maybe"},
    {"operator.watch.namespaces": "{Team_A}"},
    {"operator.liveness.port": "80000"},
    {"operator.admission.port": "0"},
    {"monitoring.podMonitor.interval": "soon"},
    {"networkPolicy.enabled": "yes"},
    {"unknownKey": "1"},
]


@pytest.mark.parametrize(
    "values", WRONG_VALUES, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items())
)
def test_schema_refuses_a_wrong_value(values: dict[str, str]) -> None:
    for command in ("template", "lint"):
        result = helm(
            command, *(["tradefleet"] if command == "template" else []), CHART, *set_args(values)
        )
        assert result.returncode != 0, f"helm {command} accepted {values}"
        assert "schema" in (result.stdout + result.stderr).lower(), result.stdout + result.stderr


# Rules across settings answer with a sentence naming the setting they need (a JSON Schema
# if/then would answer 'Must validate "then" as "if" was valid').
NEEDS = [
    ({"operator.replicas": "2"}, "operator.peering.enabled: true"),
    # the operator's listeners share the pod's network: one port each
    ({"operator.liveness.port": "9090"}, "operator.liveness.port and operator.metrics.port"),
    ({"operator.admission.port": "8080"}, "operator.liveness.port and operator.admission.port"),
    ({"operator.metrics.port": "9443"}, "operator.metrics.port and operator.admission.port"),
]
# (Admission no longer needs a certSecret: the operator makes and rotates its own CA unless the
# chart is told to use cert-manager's.)


@pytest.mark.parametrize("values,needed", NEEDS, ids=lambda v: str(v))
def test_a_missing_setting_is_named(values: dict[str, str], needed: str) -> None:
    for command in (["template", "tradefleet"], ["lint", "--strict"]):
        result = helm(*command, CHART, *set_args(values))
        # helm lint reports a template's fail as [INFO] and exits 0; install and template fail.
        assert command[0] == "lint" or result.returncode != 0, f"helm {command} accepted {values}"
        output = result.stdout + result.stderr
        assert needed in output, output
        assert 'Must validate "then"' not in output


def test_default_values_match_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


def test_every_value_is_commented() -> None:
    """Each leaf key of values.yaml has a comment just above it, or follows a commented leaf
    sibling (a group such as podAnnotations/podLabels). Section keys need none."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    key = re.compile(r"^(\s*)([A-Za-z][\w.-]*):(.*)$")

    def is_section(index: int, indent: int) -> bool:
        for following in lines[index + 1 :]:
            stripped = following.strip()
            if not stripped or stripped.startswith("#"):
                continue
            deeper = len(following) - len(following.lstrip()) > indent
            return deeper and not stripped.startswith("-")
        return False

    undocumented = []
    documented_leaf: dict[int, bool] = {}
    for index, line in enumerate(lines):
        match = key.match(line)
        if not match or is_section(index, len(match.group(1))):
            continue
        indent = len(match.group(1))
        previous = lines[index - 1] if index else ""
        sibling = key.match(previous)
        ok = previous.strip().startswith("#") or (
            sibling is not None
            and len(sibling.group(1)) == indent
            and documented_leaf.get(index - 1, False)
        )
        documented_leaf[index] = ok
        if not ok:
            undocumented.append(line.strip())
    assert not undocumented, undocumented


# --- consistency with the operator ----------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_operator_arguments_parse(variant: str) -> None:
    """The Deployment's args are accepted by tradefleet-operator's own parser."""
    docs = documents(render(VARIANTS[variant]))
    deployment = operator_deployment(docs)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = operator_main.build_parser().parse_args(container["args"])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    # The probes hit kopf's liveness endpoint on the port the operator is told to serve it on.
    # ... bound to the pod's IP, never to every interface (issue 19, item 5).
    assert args.bind_address == "$(POD_IP)"
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in (
        container["env"]
    )
    liveness = re.fullmatch(r"http://\$\(POD_IP\):(\d+)(/\S*)", args.liveness)
    assert liveness, args.liveness
    assert int(liveness.group(1)) == ports["liveness"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": liveness.group(2), "port": "liveness"}
    assert args.metrics_port == ports.get("metrics", 0)
    assert args.team_label == "tradefleet.io/team"  # the runtime's team comes from this label
    values = VARIANTS[variant]
    if values.get("operator.watch.allNamespaces") == "true":
        assert args.all_namespaces and not args.namespace
    else:
        served = ["team-a", "team-b"] if "operator.watch.namespaces" in values else None
        assert args.namespace == (served or ["tradefleet-system"])
    peering = values.get("operator.peering.enabled") == "true"
    assert args.standalone is not peering
    assert deployment["spec"]["strategy"]["type"] == ("RollingUpdate" if peering else "Recreate")
    if values.get("operator.admission.enabled") == "true":
        assert args.admission_port == ports["webhook"]
    # kopf's peering identity is the pod name.
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_default_runtime_image_is_the_operators_default() -> None:
    container = operator_deployment(documents(render()))["spec"]["template"]["spec"]["containers"][
        0
    ]
    args = operator_main.build_parser().parse_args(container["args"])
    assert args.runtime_image == OperatorSettings().runtime_image
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert args.runtime_image.endswith(":" + chart["appVersion"])
    assert container["image"].endswith(":" + chart["appVersion"])


def test_operator_pod_is_locked_down() -> None:
    pod = operator_deployment(documents(render()))["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}


# --- RBAC -----------------------------------------------------------------------------------------

#: (apiGroup, resource) → verbs: what the operator's code does, nothing more.
BOT_RULES = {
    ("tradefleet.io", "tradingbots"): {"get", "list", "watch", "patch"},
    ("tradefleet.io", "tradingbots/status"): {"get", "patch"},
    ("tradefleet.io", "tradingbots/finalizers"): {"update"},
    ("", "configmaps"): {"get", "create", "patch"},
    ("", "secrets"): {"get", "create", "patch"},
    ("", "services"): {"get", "create", "patch"},
    ("", "persistentvolumeclaims"): {"get", "create", "patch"},
    ("apps", "deployments"): {"get", "create", "patch"},
    ("", "events"): {"create"},
    ("", "pods"): {"list", "watch"},  # a failed runtime container's termination message
}


def grants(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    result: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                result.setdefault((group, resource), set()).update(rule["verbs"])
    return result


def _kinds_of_objects_the_operator_makes() -> set[tuple[str, str]]:
    body = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "probe", "namespace": "team-a"},
        "spec": {
            "mode": "paper",
            "strategy": {"name": "ema-cross"},
            "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
            "broker": {"name": "paper"},
            "data": {"name": "csv", "params": {"path": "/data/x.csv"}},
        },
    }
    bot = TradingBot.parse(body)
    made = objects.desired_objects(bot, OperatorSettings(), "hash", ApiTokens("a", "b"))

    return {(obj["apiVersion"].rpartition("/")[0], PLURALS[obj["kind"]]) for obj in made}


def test_rbac_covers_every_object_the_operator_makes() -> None:
    for kind, resource in _kinds_of_objects_the_operator_makes():
        assert {"get", "create", "patch"} <= BOT_RULES[(kind, resource)]


def test_rbac_is_namespaced_by_default() -> None:
    docs = documents(render())
    (role,) = by_kind(docs, "Role")
    assert role["metadata"]["namespace"] == "tradefleet-system"
    assert grants(role) == BOT_RULES
    (binding,) = by_kind(docs, "RoleBinding")
    (account,) = by_kind(docs, "ServiceAccount")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": "tradefleet-system",
        }
    ]
    # The only cluster-wide grants: reading CRDs (kopf notices new ones) and registering the
    # admission webhooks (on by default, issue 19).
    (cluster_role,) = by_kind(docs, "ClusterRole")
    assert grants(cluster_role) == {
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): {"create", "patch"},
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): {"create", "patch"},
    }


def test_rbac_per_served_namespace_with_peering() -> None:
    docs = documents(render(ALL_ON_NAMESPACED))
    roles = by_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert grants(role) == {
            **BOT_RULES,
            ("kopf.dev", "kopfpeerings"): {"get", "list", "watch", "patch"},
        }
    assert sorted(b["metadata"]["namespace"] for b in by_kind(docs, "RoleBinding")) == [
        "team-a",
        "team-b",
    ]
    (framework,) = by_kind(docs, "ClusterRole")
    assert grants(framework) == {
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): {"create", "patch"},
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): {"create", "patch"},
    }
    peerings = by_kind(docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    for peering in peerings:
        assert peering["metadata"]["name"] == "tradefleet"
        assert "post-install" in peering["metadata"]["annotations"]["helm.sh/hook"]


def test_rbac_cluster_wide() -> None:
    docs = documents(render(ALL_ON_CLUSTERWIDE))
    assert not by_kind(docs, "Role") and not by_kind(docs, "RoleBinding")
    roles = {r["metadata"]["name"]: grants(r) for r in by_kind(docs, "ClusterRole")}
    operator_role = roles.pop("tradefleet-operator")
    assert operator_role == {
        **BOT_RULES,
        ("kopf.dev", "clusterkopfpeerings"): {"get", "list", "watch", "patch"},
    }
    (peering,) = by_kind(docs, "ClusterKopfPeering")
    assert "namespace" not in peering["metadata"]
    (crd,) = by_kind(docs, "CustomResourceDefinition")
    assert crd["metadata"]["name"] == "clusterkopfpeerings.kopf.dev"


def test_minimal_renders_only_the_operator() -> None:
    docs = documents(render(MINIMAL))
    assert sorted(doc["kind"] for doc in docs) == ["Deployment"]
    pod = operator_deployment(docs)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "my-operator"


def test_no_wildcards_and_no_delete_anywhere() -> None:
    for variant in VARIANTS.values():
        for doc in documents(render(variant)):
            if doc["kind"] in ("Role", "ClusterRole"):
                for rule in doc["rules"]:
                    assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
                    assert not {"delete", "deletecollection", "escalate", "bind"} & set(
                        rule["verbs"]
                    )


def test_several_replicas_need_peering() -> None:
    result = helm(
        "template", "tradefleet", CHART, "--set", "operator.replicas=3", "--skip-schema-validation"
    )
    assert result.returncode != 0
    assert "peering" in result.stderr


# --- monitoring and network policies --------------------------------------------------------------


def _runtime_pod() -> dict[str, Any]:
    body = {
        "metadata": {"name": "probe", "namespace": "team-a"},
        "spec": {
            "mode": "paper",
            "strategy": {"name": "ema-cross"},
            "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
        },
    }
    deployment = objects.deployment(TradingBot.parse(body), OperatorSettings(), "hash")
    return deployment["spec"]["template"]  # type: ignore[no-any-return]


def test_pod_monitor_selects_the_runtime_pods() -> None:
    docs = documents(render(ALL_ON_NAMESPACED))
    (monitor,) = by_kind(docs, "PodMonitor")
    pod = _runtime_pod()
    labels = pod["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert labels["app.kubernetes.io/name"] == APP_NAME
    ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    # files/alerts.yaml matches jobs ending in tradefleet-bots / tradefleet-operator.
    assert {"action": "replace", "targetLabel": "job", "replacement": "tradefleet-bots"} in (
        endpoint["relabelings"]
    )
    (service_monitor,) = by_kind(docs, "ServiceMonitor")
    assert service_monitor["spec"]["endpoints"][0]["relabelings"][0]["replacement"] == (
        "tradefleet-operator"
    )
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    cluster = documents(render(ALL_ON_CLUSTERWIDE))
    assert by_kind(cluster, "PodMonitor")[0]["spec"]["namespaceSelector"] == {"any": True}


def test_service_monitor_selects_the_operator_service() -> None:
    docs = documents(render(ALL_ON_NAMESPACED))
    (monitor,) = by_kind(docs, "ServiceMonitor")
    (service,) = by_kind(docs, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    deployment = operator_deployment(docs)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_prometheus_rule_is_the_alerts_file() -> None:
    (rule,) = by_kind(documents(render(ALL_ON_NAMESPACED)), "PrometheusRule")
    alerts = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]


def test_dashboards_are_configmaps_for_the_grafana_sidecar() -> None:
    files = sorted((CHART / "files" / "dashboards").glob("*.json"))
    maps = by_kind(documents(render(ALL_ON_NAMESPACED)), "ConfigMap")
    assert len(maps) == len(files)
    by_key = {key: cm for cm in maps for key in cm["data"]}
    for path in files:
        configmap = by_key[path.name]
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["metadata"]["annotations"]["grafana_folder"] == "tradefleet"
        assert json.loads(configmap["data"][path.name]) == json.loads(path.read_text())
        assert len(configmap["data"][path.name].encode()) < 1_000_000  # a ConfigMap's limit
    assert not by_kind(documents(render()), "ConfigMap")


def test_network_policy_lets_only_the_operator_call_grpc() -> None:
    docs = documents(render(ALL_ON_NAMESPACED))
    policies = by_kind(docs, "NetworkPolicy")
    assert sorted(p["metadata"]["namespace"] for p in policies) == ["team-a", "team-b"]
    pod = _runtime_pod()
    ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    operator_pod_labels = operator_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    for policy in policies:
        spec = policy["spec"]
        assert spec["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        grpc_rule, http_rule = spec["ingress"]
        assert [p["port"] for p in grpc_rule["ports"]] == ["grpc"]
        assert [p["port"] for p in http_rule["ports"]] == ["http"]
        assert {"grpc", "http"} <= ports
        operator_peer, tools_peer = grpc_rule["from"]
        assert operator_peer["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "tradefleet-system"
        }
        assert operator_peer["podSelector"]["matchLabels"].items() <= operator_pod_labels.items()
        assert tools_peer == {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tools"}}
        }
        assert http_rule["from"] == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ]


def render_notes(tmp_path: Path, values: dict[str, str] | None = None) -> str:
    """NOTES.txt as ``helm install`` prints it (which needs a cluster): a copy of the chart
    renders it through ``tpl`` into a ConfigMap-shaped document."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "files" / "NOTES.txt").write_text((chart / "templates" / "NOTES.txt").read_text())
    (chart / "templates" / "zz-notes.yaml").write_text(
        'notes: {{ tpl (.Files.Get "files/NOTES.txt") . | toJson }}\n'
    )
    result = helm(
        "template", "tradefleet", chart, "--namespace", "tradefleet-system",
        "--show-only", "templates/zz-notes.yaml", *set_args(values or {}),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return str(yaml.safe_load(result.stdout)["notes"])


def test_notes_name_the_next_step(tmp_path: Path) -> None:
    notes = render_notes(tmp_path)
    assert "kubectl get tb" in notes
    assert "kubectl -n tradefleet-system apply -f manifests/examples/eurusd-paper.yaml" in notes
    assert (ROOT / "manifests" / "examples" / "eurusd-paper.yaml").is_file()
    assert "rollout status deployment/tradefleet-operator" in notes


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["version"] == "0.1.0"
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert version and chart["appVersion"] == version.group(1)


def test_a_missing_tool_fails_naming_its_make_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.packaging import packaging_tools

    monkeypatch.setattr(packaging_tools, "BIN", tmp_path)
    monkeypatch.setattr(packaging_tools, "ROOT", tmp_path.parent)
    for name, target in (("helm", "make helm"), ("hadolint", "make hadolint")):
        with pytest.raises(pytest.fail.Exception, match=target):
            packaging_tools.tool(name)


# --- disruption -----------------------------------------------------------------------------------


def test_peered_operators_get_a_disruption_budget() -> None:
    docs = documents(render(ALL_ON_NAMESPACED))
    (budget,) = by_kind(docs, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    pod_labels = operator_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert not by_kind(documents(render({})), "PodDisruptionBudget")  # one standalone replica
    off = {**ALL_ON_NAMESPACED, "operator.podDisruptionBudget.enabled": "false"}
    assert not by_kind(documents(render(off)), "PodDisruptionBudget")
