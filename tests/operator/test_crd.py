"""The TradingBot CRD: valid, structural, complete, documented and committed up to date."""

from __future__ import annotations

import copy
import types
import typing
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from tests.operator import validate_strict
from tradefleet_operator import crd
from tradefleet_runtime.spec import BotSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "bots").glob("*.yaml"))
BAD = Path(__file__).with_name("bad_manifests")


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    return crd.build_crd()


def _version(built: dict[str, Any]) -> dict[str, Any]:
    versions = built["spec"]["versions"]
    assert len(versions) == 1
    return versions[0]  # type: ignore[no-any-return]


def _root(built: dict[str, Any]) -> dict[str, Any]:
    return _version(built)["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_committed_crd_passes_kubernetes_validate_strict(tmp_path: Path) -> None:
    # kubernetes-validate checks the CRD object against apiextensions.k8s.io/v1 offline
    # (not the structural rules or CEL: those are checked below).
    validate_strict([crd.build_crd()], tmp_path)


def test_committed_files_are_up_to_date() -> None:
    assert crd.stale_files(ROOT) == [], "run `python -m tradefleet_operator.crd`"
    texts = {(ROOT / path).read_text(encoding="utf-8") for path in crd.OUTPUTS}
    assert texts == {crd.render()}
    assert yaml.safe_load(crd.render()) == crd.build_crd()


def test_main_check_reports_a_stale_copy(tmp_path: Path) -> None:
    assert crd.main(["--root", str(tmp_path), "--check"]) == 1
    assert crd.main(["--root", str(tmp_path)]) == 0
    assert crd.main(["--root", str(tmp_path), "--check"]) == 0
    stale = tmp_path / crd.OUTPUTS[1]
    stale.write_text(stale.read_text() + "# edited\n")
    assert crd.main(["--root", str(tmp_path), "--check"]) == 1


def test_names_scope_and_version(built: dict[str, Any]) -> None:
    assert built["apiVersion"] == "apiextensions.k8s.io/v1"
    assert built["metadata"]["name"] == "tradingbots.tradefleet.io"
    spec = built["spec"]
    assert spec["group"] == "tradefleet.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "TradingBot"
    assert spec["names"]["shortNames"] == ["tb"]
    assert spec["names"]["categories"] == ["tradefleet"]
    version = _version(built)
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert columns == [
        "Mode", "Strategy", "Symbols", "Phase", "Equity", "PnL", "Drawdown", "Tier", "Locks",
        "Age",
    ]  # fmt: skip
    # kubectl prints a list as a JSON array: the column reads the joined string in .status.
    symbols = next(c for c in version["additionalPrinterColumns"] if c["name"] == "Symbols")
    assert symbols["jsonPath"] == ".status.symbols"


def test_schema_is_structural(built: dict[str, Any]) -> None:
    root = _root(built)
    assert crd.structural_problems(root) == []
    text = yaml.safe_dump(root)
    for keyword in ("$ref", "anyOf", "allOf", "oneOf", "title:", "$defs", "uniqueItems"):
        assert keyword not in text
    for path, node in crd.walk_schemas(root):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        if node.get("type") == "object" and path not in ("", ".metadata"):
            assert (
                "properties" in node
                or "additionalProperties" in node
                or node.get("x-kubernetes-preserve-unknown-fields")
            ), path


def test_preserve_unknown_fields_only_on_plugin_params(built: dict[str, Any]) -> None:
    free = sorted(
        path
        for path, node in crd.walk_schemas(_root(built))
        if node.get("x-kubernetes-preserve-unknown-fields")
    )
    assert free == [
        ".spec.broker.params",
        ".spec.data.params",
        ".spec.risk[].params",
        # Pod-spec pass-through: Kubernetes validates these when it takes the Deployment.
        ".spec.runtime.affinity",
        ".spec.runtime.tolerations[]",
        ".spec.strategy.params",
    ]
    for path in free:
        assert not path.startswith(".status")


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model inside ``X``, ``X | None`` or ``list[X]``; and whether it is a list."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _model_of(args[0]) if len(args) == 1 else (None, False)
    if origin is list:
        inner, _ = _model_of(typing.get_args(annotation)[0])
        return inner, True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def _check_fields(model: type[BaseModel], node: dict[str, Any], path: str, seen: list[str]) -> None:
    for name, field in model.model_fields.items():
        alias = field.alias or name
        where = f"{path}.{alias}"
        assert alias in node["properties"], f"{where} missing from the CRD"
        sub = node["properties"][alias]
        assert sub.get("description"), f"{where} has no description"
        assert sub["description"] == field.description, where
        seen.append(where)
        inner, is_list = _model_of(field.annotation)
        if inner is not None:
            _check_fields(inner, sub["items"] if is_list else sub, where, seen)
    assert set(node["properties"]) == {f.alias or n for n, f in model.model_fields.items()}


def test_every_spec_field_is_in_the_schema_with_its_description(built: dict[str, Any]) -> None:
    seen: list[str] = []
    _check_fields(BotSpec, _root(built)["properties"]["spec"], "spec", seen)
    assert len(seen) > 40
    assert "spec.runtime.journal.storageClassName" in seen
    assert "spec.quality.winRate.min" in seen


def test_model_constraints_carry_over(built: dict[str, Any]) -> None:
    spec = _root(built)["properties"]["spec"]
    props = spec["properties"]
    assert props["mode"]["enum"] == ["backtest", "paper", "live"]
    assert props["mode"]["default"] == "paper"
    assert props["capital"]["properties"]["initial"]["minimum"] == 0
    assert props["capital"]["properties"]["initial"]["exclusiveMinimum"] is True
    assert props["quality"]["properties"]["window"]["maximum"] == 10_000
    assert props["market"]["properties"]["symbols"]["minItems"] == 1
    assert props["market"]["properties"]["symbols"]["maxItems"] == 200
    assert props["market"]["properties"]["symbols"]["x-kubernetes-list-type"] == "set"
    assert props["risk"]["maxItems"] == 32
    assert props["data"]["nullable"] is True
    assert "default" not in props["data"]  # a null default is no default
    assert props["runtime"]["properties"]["resources"]["additionalProperties"] == {
        "type": "object",
        "additionalProperties": {  # "500m" or 1
            "x-kubernetes-int-or-string": True,
            "pattern": crd.QUANTITY_PATTERN,
        },
    }
    assert set(spec["required"]) == {"strategy", "market"}


def test_cel_rules(built: dict[str, Any]) -> None:
    root = _root(built)
    (live,) = root["x-kubernetes-validations"]
    # CRD rules may read metadata.name only at the schema root.
    assert "self.metadata.name" in live["rule"]
    assert "self.spec.liveConfirmation" in live["rule"]
    assert live["fieldPath"] == ".spec.liveConfirmation"
    rules = {
        rule["fieldPath"]: rule for rule in root["properties"]["spec"]["x-kubernetes-validations"]
    }
    assert "self.mode != 'live'" in rules[".broker.credentialsSecret"]["rule"]
    assert "has(self.broker.credentialsSecret)" in rules[".broker.credentialsSecret"]["rule"]
    assert "self.mode != 'backtest' || has(self.data)" in rules[".data"]["rule"]
    for _, node in crd.walk_schemas(root):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"] and rule["reason"].startswith("FieldValue")
            assert "metadata" not in rule["rule"] or node is root


def test_status_schema(built: dict[str, Any]) -> None:
    status = _root(built)["properties"]["status"]
    props = status["properties"]
    assert props["phase"]["enum"] == [
        "Pending", "Running", "Paused", "Halted", "Degraded", "Stopped", "Failed",
    ]  # fmt: skip
    expected = {
        "phase", "conditions", "observedGeneration", "equity", "balance", "currency",
        "pnlToday", "pnlTotal", "drawdownPct", "openPositions", "openOrders", "lastBarTime",
        "halted", "haltReason", "paused", "pauseReason", "riskLocks", "riskTier", "configHash",
        "runtimeConfigHash", "runtimeReportedAt", "control", "riskLockReset", "symbols",
        "credentialsSecretInUse",
    }  # fmt: skip
    assert set(props) == expected
    condition = props["conditions"]["items"]["properties"]
    assert set(condition) == {
        "type", "status", "reason", "message", "lastTransitionTime", "observedGeneration",
    }  # fmt: skip
    assert props["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert set(props["riskLocks"]["items"]["properties"]) == {"plugin", "reason"}
    for path, node in crd.walk_schemas(status):
        assert node.get("description") or path.endswith("[]"), path


# --- the schema applied to manifests (an approximation of the API server's validation) ---------


def _as_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI v3 (structural) → JSON Schema draft 4, as the API server would apply it."""
    out = {k: copy.deepcopy(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    out.pop("default", None)
    if out.pop("nullable", False):
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if "properties" in node:
        out["properties"] = {k: _as_json_schema(v) for k, v in node["properties"].items()}
        out["additionalProperties"] = False  # kubectl's default field validation is Strict
    if isinstance(node.get("items"), dict):
        out["items"] = _as_json_schema(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _as_json_schema(node["additionalProperties"])
    return out


@pytest.fixture(scope="module")
def validator(built: dict[str, Any]) -> jsonschema.Draft4Validator:
    root = copy.deepcopy(_root(built))
    root["properties"]["metadata"] = {"type": "object"}
    schema = _as_json_schema(root)
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft4Validator(schema)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_match_the_schema(path: Path, validator: jsonschema.Draft4Validator) -> None:
    errors = [error.message for error in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize(
    "name", ["bad-timeframe", "duplicate-symbols", "unknown-field", "bad-mode"]
)
def test_schema_refuses_malformed_bots_before_admission(
    name: str, validator: jsonschema.Draft4Validator
) -> None:
    document = yaml.safe_load((BAD / f"{name}.yaml").read_text())
    assert list(validator.iter_errors(document)), f"{name} passed the CRD schema"


# --- the CEL rules, evaluated on manifests -------------------------------------------------------
# The rules use a small subset of CEL (has(), field selection, ==, !=, !, &&, ||, string
# literals); this translates that subset to Python, with CEL's rule that a null field is absent.

_ABSENT = object()


def _select(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict) or value.get(part) is None:
            return _ABSENT
        value = value[part]
    return value


def _cel(rule: str, self: dict[str, Any]) -> bool:
    import re

    allowed = re.sub(r"has\(self(\.[A-Za-z.]+)\)|self(\.[A-Za-z.]+)|'[^']*'|[!=&|() ]", "", rule)
    assert allowed == "", f"rule uses more CEL than the test understands: {allowed!r}"
    expression = re.sub(r"has\(self\.([A-Za-z.]+)\)", r"(_select(self, '\1') is not _ABSENT)", rule)
    expression = re.sub(r"(?<![('])self\.([A-Za-z.]+)", r"_select(self, '\1')", expression)
    expression = expression.replace("&&", " and ").replace("||", " or ")
    expression = re.sub(r"!(?!=)", " not ", expression)
    return bool(eval(expression, {"_select": _select, "_ABSENT": _ABSENT, "self": self}))


def _cel_failures(built: dict[str, Any], document: dict[str, Any]) -> list[str]:
    root = _root(built)
    failures = [
        rule["fieldPath"]
        for rule in root["x-kubernetes-validations"]
        if not _cel(rule["rule"], document)
    ]
    failures += [
        ".spec" + rule["fieldPath"]
        for rule in root["properties"]["spec"]["x-kubernetes-validations"]
        if not _cel(rule["rule"], document["spec"])
    ]
    return failures


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_cel_rules_admit_the_examples(path: Path, built: dict[str, Any]) -> None:
    assert _cel_failures(built, yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("live-without-confirmation", ".spec.liveConfirmation"),
        ("live-without-credentials", ".spec.broker.credentialsSecret"),
        ("backtest-without-data", ".spec.data"),
    ],
)
def test_cel_rules_refuse_unsafe_bots(name: str, field: str, built: dict[str, Any]) -> None:
    document = yaml.safe_load((BAD / f"{name}.yaml").read_text())
    assert _cel_failures(built, document) == [field]


def test_cel_treats_null_as_absent(built: dict[str, Any]) -> None:
    document = yaml.safe_load((BAD / "live-without-credentials.yaml").read_text())
    document["spec"]["broker"]["credentialsSecret"] = None
    assert _cel_failures(built, document) == [".spec.broker.credentialsSecret"]
    document["spec"]["broker"]["credentialsSecret"] = {"name": "keys"}
    assert _cel_failures(built, document) == []
    document["spec"]["liveConfirmation"] = None
    assert _cel_failures(built, document) == [".spec.liveConfirmation"]
