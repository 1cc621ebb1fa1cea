"""The chart's RBAC is the least the operator needs: every request the real operator makes in a
bot's whole life is granted, and every grant is used (or its reason for existing is written down
here, for what the emulator cannot show)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.operator.e2e.conftest import Cluster, Operator, bot_manifest

ROOT = Path(__file__).resolve().parents[3]
HELM = ROOT / ".cache" / "bin" / "helm"

# Grants no request in the emulator exercises, each with the reason it is still needed.
NEEDED_BEYOND_THE_EMULATOR = {
    ("tradefleet.io", "tradingbots/finalizers", "update"): "a real API server's "
    "OwnerReferencesPermissionEnforcement: setting blockOwnerDeletion on a child needs it",
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"): "kopf scans CRDs at startup "
    "(scanning is disabled in tests, as kmock cannot list namespaces)",
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"): "kopf watches CRDs appear",
    ("tradefleet.io", "tradingbots/status", "get"): "reading status through the subresource",
    ("", "secrets", "patch"): "restoring the API-token Secret's labels when they drift",
    ("", "services", "patch"): "restoring the Service when it drifts (ports, selector)",
    ("", "persistentvolumeclaims", "patch"): "restoring the claim's labels when they drift",
    # The admission webhooks (on by default) are registered by the operator process that
    # serves them: test_admission_https.py runs that process and reads what it registered.
    **{
        ("admissionregistration.k8s.io", f"{kind}webhookconfigurations", verb): "kopf "
        "registers the admission webhooks (test_admission_https.py)"
        for kind in ("validating", "mutating")
        for verb in ("create", "patch")
    },
}
# What the test itself sends (it plays kubectl): not the operator's.
DRIVER_ONLY = {
    ("tradefleet.io", "tradingbots", "create"),
    ("tradefleet.io", "tradingbots", "delete"),
}

_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/[^/]+)?/(?P<resource>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$"
)
_VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


def permission(method: str, path: str) -> set[tuple[str, str, str]]:
    """The RBAC (group, resource, verb) a request needs; empty for discovery."""
    match = _PATH.match(path)
    if match is None:
        return set()
    group = "" if match["core"] else match["group"]
    resource = match["resource"] + (f"/{match['sub']}" if match["sub"] else "")
    if method == "GET":
        verbs = {"get"} if match["name"] else {"list", "watch"}
    else:
        verbs = {_VERBS[method]}
    return {(group, resource, verb) for verb in verbs}


def granted() -> set[tuple[str, str, str]]:
    if not HELM.exists():
        pytest.fail(f"{HELM} is missing: run `make helm` (make test does)")
    rendered = subprocess.run(
        [str(HELM), "template", "t", str(ROOT / "charts" / "tradefleet")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rules: set[tuple[str, str, str]] = set()
    for document in yaml.safe_load_all(rendered):
        if document and document.get("kind") in {"Role", "ClusterRole"}:
            for rule in document["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        rules.update((group, resource, verb) for verb in rule["verbs"])
    return rules


def test_discovery_paths_need_no_permission() -> None:
    assert permission("GET", "/apis") == set()
    assert permission("GET", "/apis/tradefleet.io/v1alpha1") == set()
    assert permission(
        "PATCH", "/apis/tradefleet.io/v1alpha1/namespaces/t/tradingbots/a/status"
    ) == {("tradefleet.io", "tradingbots/status", "patch")}
    assert permission("GET", "/api/v1/secrets") == {
        ("", "secrets", "list"),
        ("", "secrets", "watch"),
    }


def test_the_chart_grants_exactly_what_a_bots_life_needs(
    cluster: Cluster, operator: Operator
) -> None:
    cluster.apply_bot(bot_manifest("rbac"))
    cluster.wait(lambda: cluster.get("apps/v1", "deployments", "rbac"), message="deployment")
    cluster.patch_bot("rbac", {"spec": {"strategy": {"params": {"fast": 4}}}})
    cluster.patch_bot("rbac", {"spec": {"paused": True}})
    cluster.patch_bot("rbac", {"spec": {"emergencyStop": {"reason": "drill"}}})
    cluster.wait(
        lambda: (cluster.bot("rbac") or {}).get("status", {}).get("observedGeneration") == 4,
        message="all spec changes handled",
    )
    # The status timer meets the unreachable runtime and reads its pods (a failed container?).
    cluster.wait(
        lambda: any(
            c["type"] == "Ready" and c["reason"] == "RuntimeUnreachable"
            for c in ((cluster.bot("rbac") or {}).get("status") or {}).get("conditions") or []
        ),
        message="the timer read the pods",
    )
    cluster.delete_bot("rbac")
    cluster.wait(lambda: cluster.bot("rbac") is None, message="the finalizer let the bot go")

    used: set[tuple[str, str, str]] = set()
    for method, path in cluster.requests():
        used |= permission(method, path)
    used -= DRIVER_ONLY
    grants = granted()
    missing = used - grants
    assert not missing, f"the operator needed permissions the chart does not grant: {missing}"
    unused = grants - used - set(NEEDED_BEYOND_THE_EMULATOR)
    assert not unused, f"the chart grants what the operator never used: {unused}"
    stale = set(NEEDED_BEYOND_THE_EMULATOR) & used
    # A reason above for a grant the run did use is no longer needed as an excuse.
    assert not stale, f"used after all, remove from NEEDED_BEYOND_THE_EMULATOR: {stale}"
    assert not (grants & DRIVER_ONLY), "the operator must not create or delete TradingBots"
