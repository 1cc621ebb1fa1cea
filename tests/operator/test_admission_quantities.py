"""``spec.runtime.resources`` and ``spec.runtime.journal.size`` at admission and in the CRD: a
value Kubernetes would refuse in the bot's Deployment or journal claim, or that cannot be meant,
is refused at ``kubectl apply`` naming the TradingBot's own field.

Before, the CRD took any string and admission did not look: ``memory: lots`` was admitted, the
API server then refused the operator's Deployment (``ReconcileFailed`` about
``spec.template.spec.containers[0].resources...``), and on a running bot the ConfigMap was
rewritten while the Deployment was not.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradefleet_operator import crd
from tradefleet_operator.admission import (
    admission_response,
    default_registry,
    runtime_quantities,
    validate_trading_bot,
)
from tradefleet_operator.quantity import QUANTITY_PATTERN, parse_quantity

ROOT = Path(__file__).resolve().parents[2]


def _paper_bot() -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(
        (ROOT / "manifests/examples/eurusd-paper.yaml").read_text()
    )
    body["metadata"]["namespace"] = "trading"
    assert validate_trading_bot(body, default_registry()) == []
    return body


def _with_runtime(**runtime: Any) -> dict[str, Any]:
    body = copy.deepcopy(_paper_bot())
    body["spec"].setdefault("runtime", {}).update(runtime)
    return body


@pytest.mark.parametrize(
    ("runtime", "field"),
    [
        ({"resources": {"limits": {"memory": "lots"}}}, "spec.runtime.resources.limits.memory"),
        ({"resources": {"requests": {"cpu": "half"}}}, "spec.runtime.resources.requests.cpu"),
        ({"journal": {"size": "ten gigs"}}, "spec.runtime.journal.size"),
    ],
)
def test_a_quantity_kubernetes_refuses_is_refused_at_apply_naming_the_field(
    runtime: dict[str, Any], field: str
) -> None:
    errors = validate_trading_bot(_with_runtime(**runtime), default_registry())
    assert [error.field for error in errors] == [field], errors


def test_the_refusal_says_what_a_quantity_looks_like() -> None:
    body = _with_runtime(resources={"limits": {"memory": "lots"}})
    errors = validate_trading_bot(body, default_registry())
    assert [str(error) for error in errors] == [
        "spec.runtime.resources.limits.memory: 'lots' is not a Kubernetes quantity "
        "(e.g. 512Mi, 1Gi, 500m)"
    ]
    causes = admission_response(errors, "u", body)["response"]["status"]["details"]["causes"]
    assert [cause["field"] for cause in causes] == ["spec.runtime.resources.limits.memory"]


def test_a_request_above_its_limit_is_refused_naming_both() -> None:
    body = _with_runtime(resources={"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}})
    (error,) = validate_trading_bot(body, default_registry())
    assert error.field == "spec.runtime.resources.requests.memory"
    assert "spec.runtime.resources.limits.memory ('512Mi')" in error.message
    assert "'1Gi'" in error.message
    # Equal, or compared across suffixes: fine.
    for requests, limits in (({"cpu": "500m"}, {"cpu": "0.5"}), ({"cpu": 1}, {"cpu": "1000m"})):
        body = _with_runtime(resources={"requests": requests, "limits": limits})
        assert validate_trading_bot(body, default_registry()) == []


@pytest.mark.parametrize(
    ("resources", "field", "words"),
    [
        ({"limits": {"memory": "-1Gi"}}, "limits.memory", "negative"),
        ({"limits": {"memory": "500m"}}, "limits.memory", "write 500Mi for mebibytes"),
        ({"requests": {"memroy": "1Gi"}}, "requests.memroy", "not a resource a container"),
        ({"requets": {"cpu": "1"}}, "requets", "not limits or requests"),
        ({"limits": {"hugepages-lots": "1Gi"}}, "limits.hugepages-lots", "not a resource"),
    ],
)
def test_values_that_cannot_be_meant_are_refused(
    resources: dict[str, Any], field: str, words: str
) -> None:
    (error,) = validate_trading_bot(_with_runtime(resources=resources), default_registry())
    assert error.field == f"spec.runtime.resources.{field}"
    assert words in error.message


def test_resources_kubernetes_takes_are_admitted() -> None:
    resources = {
        "requests": {"cpu": "250m", "memory": "128Mi", "ephemeral-storage": "1G"},
        "limits": {"cpu": 2, "memory": "1.5Gi", "hugepages-2Mi": "4Mi", "example.com/gpu": 1},
    }
    body = _with_runtime(resources=resources, journal={"size": "20Gi"})
    assert validate_trading_bot(body, default_registry()) == []


@pytest.mark.parametrize(("size", "words"), [("0", "no space"), ("0.3Ki", "307.2 bytes")])
def test_a_journal_claim_of_no_space_or_part_of_a_byte_is_refused(size: str, words: str) -> None:
    errors = validate_trading_bot(_with_runtime(journal={"size": size}), default_registry())
    assert [error.field for error in errors] == ["spec.runtime.journal.size"]
    assert words in errors[0].message
    # 512 bytes exactly: admitted.
    assert validate_trading_bot(_with_runtime(journal={"size": "0.5Ki"}), default_registry()) == []


def test_an_update_is_refused_only_for_a_problem_it_brings() -> None:
    # A bot admitted with a bad value (before this check, or with the webhook off) can still be
    # paused or halted, and kopf can still patch its metadata.
    old = _with_runtime(resources={"limits": {"memory": "lots"}})
    halted = copy.deepcopy(old)
    halted["spec"]["emergencyStop"] = {"reason": "fleet stop"}
    assert validate_trading_bot(halted, default_registry(), old) == []
    assert runtime_quantities(halted["spec"], old) == []
    # Another bad value is a new problem.
    worse = copy.deepcopy(old)
    worse["spec"]["runtime"]["resources"]["limits"]["memory"] = "more"
    assert [e.field for e in validate_trading_bot(worse, default_registry(), old)] == [
        "spec.runtime.resources.limits.memory"
    ]
    # A create (no old object) is refused.
    assert [e.field for e in validate_trading_bot(old, default_registry())] == [
        "spec.runtime.resources.limits.memory"
    ]


def test_a_spec_the_model_refuses_still_has_its_quantities_named() -> None:
    body = _with_runtime(journal={"size": "ten gigs"})
    body["spec"]["market"]["timeframe"] = "7x"
    fields = {error.field for error in validate_trading_bot(body, default_registry())}
    assert {"spec.market.timeframe", "spec.runtime.journal.size"} <= fields


# --- the grammar ---------------------------------------------------------------------------------

VALID = {
    "1Gi": Decimal(2**30),
    "512Mi": Decimal(512 * 2**20),
    "500m": Decimal("0.5"),
    "2": Decimal(2),
    "+1": Decimal(1),
    "-1": Decimal(-1),
    "1.": Decimal(1),
    ".5": Decimal("0.5"),
    "1.5Gi": Decimal(3 * 2**29),
    "1e3": Decimal(1000),
    "1E3": Decimal(1000),
    "1e-3": Decimal("0.001"),
    "1E": Decimal(10**18),
    "100n": Decimal("1e-7"),
    "3u": Decimal("3e-6"),
    "2k": Decimal(2000),
    "1Ei": Decimal(2**60),
}
INVALID = ["lots", "", " 1", "1 ", "1Gi\n", "1K", "1ki", "1gi", "1e", "1e1.5", "1.5.5", "Gi",
           "0x10", "1_000", "1e99999999999", "١"]  # fmt: skip


@pytest.mark.parametrize(("text", "value"), VALID.items())
def test_quantities_kubernetes_parses(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value
    assert re.fullmatch(QUANTITY_PATTERN, text)


@pytest.mark.parametrize("text", INVALID)
def test_strings_kubernetes_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        parse_quantity(text)


def test_the_crd_carries_the_same_grammar() -> None:
    spec = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    runtime = spec["spec"]["properties"]["runtime"]["properties"]
    value = runtime["resources"]["additionalProperties"]["additionalProperties"]
    assert value == {"x-kubernetes-int-or-string": True, "pattern": QUANTITY_PATTERN}
    assert runtime["journal"]["properties"]["size"]["pattern"] == QUANTITY_PATTERN
    assert re.fullmatch(QUANTITY_PATTERN, runtime["journal"]["properties"]["size"]["default"])
    # As RE2 reads it: anchored, no construct Python reads otherwise.
    assert QUANTITY_PATTERN.startswith("^") and QUANTITY_PATTERN.endswith("$")
    assert "(?P" not in QUANTITY_PATTERN and "\\d" not in QUANTITY_PATTERN


# Extended resources and hugepages: Kubernetes does not overcommit them (apimachinery's
# ``IsOvercommitAllowed``) and counts an extended resource in whole units
# (``IsIntegerResourceName``). Before, a fraction, a request other than its limit and a
# request without a limit were admitted, and the API server then refused the bot's Deployment.
GPU = "example.com/gpu"
RESOURCES = "spec.runtime.resources"


def _quantity_errors(resources: dict[str, Any]) -> dict[str, str]:
    errors = validate_trading_bot(_with_runtime(resources=resources), default_registry())
    return {error.field: error.message for error in errors}


def test_a_fraction_of_an_extended_resource_is_refused() -> None:
    errors = _quantity_errors({"requests": {GPU: "500m"}, "limits": {GPU: "0.5"}})
    assert set(errors) == {f"{RESOURCES}.requests.{GPU}", f"{RESOURCES}.limits.{GPU}"}
    assert "'0.5' is not a whole number" in errors[f"{RESOURCES}.limits.{GPU}"]
    assert "whole units" in errors[f"{RESOURCES}.limits.{GPU}"]


@pytest.mark.parametrize(
    ("name", "asked", "limit"),
    [(GPU, "1", "2"), (GPU, 2, "1"), ("hugepages-2Mi", "2Mi", "4Mi")],
)
def test_a_request_other_than_its_limit_is_refused_where_kubernetes_does_not_overcommit(
    name: str, asked: str | int, limit: str
) -> None:
    # cpu beside them: Kubernetes refuses hugepages alone ("HugePages require cpu or memory").
    errors = _quantity_errors({"requests": {name: asked}, "limits": {name: limit, "cpu": "1"}})
    message = errors.pop(f"{RESOURCES}.requests.{name}")
    assert errors == {}
    assert f"is not {RESOURCES}.limits.{name} ({limit!r})" in message
    assert "request to equal its limit" in message


@pytest.mark.parametrize("name", [GPU, "hugepages-1Gi"])
def test_a_request_without_a_limit_is_refused_where_kubernetes_does_not_overcommit(
    name: str,
) -> None:
    errors = _quantity_errors({"requests": {"cpu": "1", name: "1Gi" if "huge" in name else 1}})
    message = errors.pop(f"{RESOURCES}.requests.{name}")
    assert errors == {}
    assert f"no {RESOURCES}.limits.{name}" in message
    assert "requires a limit" in message


def test_a_limit_that_is_wrong_is_not_called_missing() -> None:
    errors = _quantity_errors({"requests": {GPU: 1}, "limits": {GPU: "-1"}})
    assert list(errors) == [f"{RESOURCES}.limits.{GPU}"]
    assert "negative" in errors[f"{RESOURCES}.limits.{GPU}"]


def test_what_kubernetes_takes_of_them_is_admitted() -> None:
    resources = {
        # Equal in other spellings; a limit alone (the request is set to it); cpu and memory
        # and a kubernetes.io name still overcommit, and the latter may be a fraction.
        "requests": {GPU: "1", "hugepages-2Mi": "4Mi", "cpu": "100m", "memory": "64Mi"},
        "limits": {GPU: "1000m", "hugepages-2Mi": "4096Ki", "other.com/fpga": 2, "cpu": 1},
    }
    assert _quantity_errors(resources) == {}
    native = "example.kubernetes.io/thing"
    assert _quantity_errors({"requests": {native: "500m"}, "limits": {native: "2"}}) == {}
