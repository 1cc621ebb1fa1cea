"""The chart's ValidatingAdmissionPolicy that keeps ``tradefleet.io/mode`` equal to ``spec.mode``.

Its CEL and its match rules are evaluated against bots in
``tests/operator/test_admission_fail_closed.py`` (on ``manifests/tradefleet.yaml``); here: the
chart renders it, bound, whenever it serves the admission webhooks, and only then.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.packaging.packaging_tools import documents, render

POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")


def _policy_documents(values: dict[str, str]) -> dict[str, dict[str, Any]]:
    docs = documents(render(values))
    found = [doc for doc in docs if doc["kind"] in POLICY_KINDS]
    assert len(found) == len({doc["kind"] for doc in found}), "one policy and one binding"
    return {doc["kind"]: doc for doc in found}


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"operator.watch.namespaces": "{team-a,team-b}"},
        {"operator.watch.allNamespaces": "true"},
        {"fullnameOverride": "fx"},
    ],
    ids=["defaults", "namespaced", "clusterwide", "fullname"],
)
def test_the_policy_is_bound_with_deny_whenever_admission_is_on(values: dict[str, str]) -> None:
    found = _policy_documents(values)
    policy, binding = (found[kind] for kind in POLICY_KINDS)
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    assert policy["spec"]["failurePolicy"] == "Fail"
    # Cluster-scoped, and for every namespace: kopf's webhooks have no namespaceSelector either.
    for doc in (policy, binding):
        assert "namespace" not in doc["metadata"]
    assert "namespaceSelector" not in policy["spec"]["matchConstraints"]
    if "fullnameOverride" in values:
        assert policy["metadata"]["name"] == "fx-mode-label"


def test_no_policy_without_the_admission_webhooks() -> None:
    """Without the webhooks nothing sets or reads the label: the policy would only get in the
    way."""
    assert _policy_documents({"operator.admission.enabled": "false"}) == {}
