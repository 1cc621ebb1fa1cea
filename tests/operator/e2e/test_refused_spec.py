"""A spec the API server refuses, with no admission webhook: the real operator writes none of the
bot's objects, says which field is wrong, and applies the spec whole once it is fixed.

Before, the operator rewrote the ConfigMap and the emulated API server (like kube-apiserver)
then refused the Deployment: the pod kept the old spec while its ConfigMap held the new one.
"""

from __future__ import annotations

from typing import Any

from tests.operator.e2e.conftest import Cluster, Operator, bot_manifest
from tests.operator.e2e.test_lifecycle import _condition, _pod_hash, _settled


def _objects(cluster: Cluster, name: str) -> tuple[Any, Any, Any]:
    return (
        cluster.get("v1", "configmaps", f"{name}-config")["data"],
        cluster.get("apps/v1", "deployments", name)["spec"],
        cluster.get("v1", "persistentvolumeclaims", f"{name}-journal")["spec"],
    )


def _reconciled(cluster: Cluster, name: str, reason: str, generation: int) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = _condition(cluster.bot(name), "Reconciled")
        if found and found["reason"] == reason and found["observedGeneration"] == generation:
            return found
        return None

    condition: dict[str, Any] = cluster.wait(check, message=f"Reconciled {reason} @{generation}")
    return condition


def test_a_refused_spec_is_applied_whole_or_not_at_all(
    cluster: Cluster, operator: Operator
) -> None:
    assert cluster.emulator is not None
    emulator = cluster.emulator
    cluster.apply_bot(bot_manifest("alpha"))
    first = _settled(cluster, "alpha")
    before = _objects(cluster, "alpha")

    # A value the CRD's pattern would refuse, on a CRD older than the pattern (none here).
    cluster.patch_bot(
        "alpha", {"spec": {"runtime": {"resources": {"requests": {"memory": "lots"}}}}}
    )
    refused = _reconciled(cluster, "alpha", "SpecRefused", 2)
    assert refused["status"] == "False"
    assert (
        "spec.runtime.resources.requests.memory: 'lots' is not a Kubernetes quantity"
        in refused["message"]
    )
    assert _objects(cluster, "alpha") == before
    events = [e for e in cluster.events("alpha") if e["reason"] == "SpecRefused"]
    assert events and events[0]["type"] == "Warning"
    assert (cluster.bot("alpha") or {})["status"].get("phase") != "Failed"

    # A refusal no check foresees (an admission policy): the ConfigMap is put back.
    cluster.call(lambda: emulator.refused_writes.update(deployments=1))
    fast = {"strategy": {"name": "ema-cross", "params": {"fast": 4, "slow": 12}}}
    cluster.patch_bot("alpha", {"spec": {"runtime": None, **fast}})
    put_back = _reconciled(cluster, "alpha", "Invalid", 3)
    assert "injected: refused by an admission policy" in put_back["message"]
    assert "ConfigMap alpha-config was put back" in put_back["message"]
    assert _objects(cluster, "alpha") == before

    # Fixed: applied whole, the pod rolled to the new config.
    resources = {"requests": {"memory": "192Mi"}, "limits": {"memory": "384Mi"}}
    cluster.patch_bot("alpha", {"spec": {"runtime": {"resources": resources}}})
    applied = _reconciled(cluster, "alpha", "UpToDate", 4)
    assert applied["status"] == "True"
    deployment = cluster.get("apps/v1", "deployments", "alpha")
    assert _pod_hash(deployment) != first["status"]["configHash"]
    assert _pod_hash(deployment) == (cluster.bot("alpha") or {})["status"]["configHash"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"] == resources
    text = cluster.get("v1", "configmaps", "alpha-config")["data"]["bot.yaml"]
    assert "memory: 192Mi" in text and "fast: 4" in text
