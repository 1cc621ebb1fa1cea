"""Refusals kube-apiserver makes in a container's resources (``ValidateResourceRequirements``,
``validateContainerResourceName``), told by the operator before a write and by admission, both
naming the TradingBot's field:

- a hugepages value that is not a whole number of pages ("3Mi is not positive integer multiple
  of hugepages-2Mi"), or a page size that is not a positive whole number of bytes;
- hugepages with neither cpu nor memory in the limits or requests ("HugePages require cpu or
  memory");
- a resource name with a domain that is not a qualified name, or not an extended resource's
  ("doesn't follow extended resource name standard").

Without them such a spec reached the objects: the ConfigMap was written, and the Deployment was
refused naming ``spec.template.spec.containers[0].resources...``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tradefleet_operator.quantity import kubernetes_refusals, spec_quantity_errors

RESOURCES = "spec.runtime.resources"

REFUSED = [
    pytest.param(
        {"limits": {"hugepages-2Mi": "3Mi", "memory": "1Gi"}},
        f"{RESOURCES}.limits.hugepages-2Mi",
        "'3Mi' is not a whole number of 2Mi pages",
        id="hugepages-not-whole-pages",
    ),
    pytest.param(
        {"limits": {"hugepages-0": "0", "memory": "1Gi"}},
        f"{RESOURCES}.limits.hugepages-0",
        "'hugepages-0' is not a resource a container can ask for",
        id="hugepages-page-of-no-size",
    ),
    pytest.param(
        {"limits": {"hugepages-2Mi": "4Mi"}},
        RESOURCES,
        "hugepages without cpu or memory",
        id="hugepages-without-cpu-or-memory",
    ),
    pytest.param(
        {"limits": {"example.com/GPU_x!": "1"}, "requests": {"example.com/GPU_x!": "1"}},
        f"{RESOURCES}.limits.example.com/GPU_x!",
        "is not a resource name Kubernetes takes",
        id="extended-name-not-qualified",
    ),
    pytest.param(
        {"limits": {"Example.com/gpu": "1"}},
        f"{RESOURCES}.limits.Example.com/gpu",
        "a lowercase domain",
        id="extended-domain-not-lowercase",
    ),
    pytest.param(
        {"limits": {"requests.example.com/gpu": "1"}},
        f"{RESOURCES}.limits.requests.example.com/gpu",
        "not under requests.",
        id="extended-name-under-requests",
    ),
    pytest.param(
        {"limits": {"example.com/" + "g" * 64: "1"}},
        f"{RESOURCES}.limits.example.com/" + "g" * 64,
        "at most 63",
        id="extended-name-too-long",
    ),
]


@pytest.mark.parametrize(("resources", "field", "said"), REFUSED)
def test_the_pre_write_check_names_what_kube_apiserver_refuses(
    resources: dict[str, Any], field: str, said: str
) -> None:
    found = {error.field: error.message for error in kubernetes_refusals(resources, None)}
    assert field in found, found
    assert said in found[field]


@pytest.mark.parametrize(("resources", "field", "said"), REFUSED)
def test_admission_names_what_kube_apiserver_refuses(
    resources: dict[str, Any], field: str, said: str
) -> None:
    errors = spec_quantity_errors({"runtime": {"resources": resources}})
    found = {error.field: error.message for error in errors}
    assert field in found, found
    assert said in found[field]


@pytest.mark.parametrize(
    "resources",
    [
        {"limits": {"hugepages-2Mi": "4Mi", "memory": "1Gi"}},
        {"limits": {"hugepages-2Mi": "4096Ki"}, "requests": {"cpu": "100m"}},
        {"limits": {"hugepages-1Gi": "0", "cpu": "1"}},  # no pages: a whole number (0)
        {"limits": {"example.com/gpu.v2-a_b": 1}},
        {"limits": {"a.kubernetes.io/thing": "1"}},
    ],
)
def test_what_kube_apiserver_takes_of_them_is_not_refused(resources: dict[str, Any]) -> None:
    assert kubernetes_refusals(resources, None) == []
    assert spec_quantity_errors({"runtime": {"resources": resources}}) == []
