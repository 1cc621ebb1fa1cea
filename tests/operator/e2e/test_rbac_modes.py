"""The chart's RBAC and the operator's namespace settings agree in every mode the chart offers.

Issue 19, item 1: in the default mode (the release namespace only) kopf listed namespaces at
cluster scope, which the chart's Roles do not grant: 18 permission errors and a 54 s stall at
every start. Here the emulator enforces exactly the rendered Roles and ClusterRoles (a request
they do not grant is answered 403, as a real API server does), and the real operator runs with
the arguments the chart's Deployment gives it — single namespace, listed namespaces,
cluster-wide — through a bot's whole life. Any 403 fails the test.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.operator.e2e.conftest import NS, Cluster, Operator, bot_manifest
from tradefleet_operator.main import build_parser

ROOT = Path(__file__).resolve().parents[3]
HELM = ROOT / ".cache" / "bin" / "helm"

MODES: dict[str, list[str]] = {
    "single-namespace": [],
    "listed-namespaces": ["--set", "operator.watch.namespaces={trading,desk-b}"],
    "cluster-wide": ["--set", "operator.watch.allNamespaces=true"],
}


def render(values: list[str]) -> list[dict[str, Any]]:
    if not HELM.exists():
        pytest.fail(f"{HELM} is missing: run `make helm` (make test does)")
    rendered = subprocess.run(
        [str(HELM), "template", "tradefleet", str(ROOT / "charts" / "tradefleet"), "-n", NS,
         *values],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def grants(documents: list[dict[str, Any]]) -> set[tuple[str | None, str, str, str]]:
    """(namespace or None, apiGroup, resource, verb) of every rendered Role and ClusterRole."""
    found: set[tuple[str | None, str, str, str]] = set()
    for doc in documents:
        if doc.get("kind") not in {"Role", "ClusterRole"}:
            continue
        namespace = doc["metadata"].get("namespace") if doc["kind"] == "Role" else None
        for rule in doc.get("rules") or []:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    found.update((namespace, group, resource, verb) for verb in rule["verbs"])
    return found


def operator_namespaces(documents: list[dict[str, Any]]) -> list[str] | None:
    """What the chart's Deployment tells the operator to serve (None: every namespace)."""
    deployment = next(doc for doc in documents if doc.get("kind") == "Deployment")
    args = build_parser().parse_args(
        deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    return None if args.all_namespaces else list(args.namespace)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_rbac_permission_errors_and_namespace_listing_in_every_chart_mode(
    cluster: Cluster, mode: str
) -> None:
    documents = render(MODES[mode])
    served = operator_namespaces(documents)
    assert served != [] and (served is None) == (mode == "cluster-wide"), served
    emulator = cluster.emulator
    assert emulator is not None
    cluster.call(lambda: setattr(emulator, "grants", grants(documents)))
    operator = Operator(namespaces=served).start()
    try:
        for namespace in served or [NS, "desk-b"]:
            cluster.apply_bot(bot_manifest("rbac", namespace=namespace))
        for namespace in served or [NS, "desk-b"]:
            cluster.wait(
                lambda ns=namespace: cluster.get("apps/v1", "deployments", "rbac", ns),
                message=f"{mode}: the bot in {namespace} reconciled",
            )
            cluster.patch_bot("rbac", {"spec": {"paused": True}}, namespace=namespace)
            cluster.wait(
                lambda ns=namespace: (
                    ((cluster.bot("rbac", ns) or {}).get("status") or {}).get("observedGeneration")
                    == 2
                ),
                message=f"{mode}: the spec change in {namespace} handled",
            )
            cluster.delete_bot("rbac", namespace=namespace)
            cluster.wait(
                lambda ns=namespace: cluster.bot("rbac", ns) is None,
                message=f"{mode}: the finalizer let the bot in {namespace} go",
            )
    finally:
        operator.stop()
    refused = cluster.call(lambda: list(emulator.forbidden))
    assert refused == [], f"{mode}: the rendered RBAC refused {refused}"
    if served:
        listed = [path for method, path in cluster.requests() if path == "/api/v1/namespaces"]
        assert listed == [], "kopf listed namespaces at cluster scope"


def test_the_enforcing_counterpart_fails_when_the_chart_loses_a_rule(cluster: Cluster) -> None:
    """The check above has teeth: the same life with one rule removed from the rendered Role
    (creating ConfigMaps) is refused, and the bot is never reconciled."""
    documents = render([])
    missing = (NS, "", "configmaps", "create")
    emulator = cluster.emulator
    assert emulator is not None
    cluster.call(lambda: setattr(emulator, "grants", grants(documents) - {missing}))
    operator = Operator(namespaces=operator_namespaces(documents)).start()
    try:
        cluster.apply_bot(bot_manifest("rbac"))
        refused = cluster.wait(
            lambda: cluster.call(lambda: list(emulator.forbidden)), message="a 403"
        )
    finally:
        operator.stop()
    assert any(why == "/configmaps:create" for _, _, why in refused), refused
    assert cluster.get("v1", "configmaps", "rbac-config") is None
