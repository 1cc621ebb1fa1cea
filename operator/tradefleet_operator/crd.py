"""The ``TradingBot`` CustomResourceDefinition, generated from the runtime's spec model.

``python -m tradefleet_operator.crd`` writes the CRD to the Helm chart and to ``manifests/``;
``--check`` exits 1 when either committed file differs from what the model generates.

The pydantic JSON Schema is converted into a *structural* OpenAPI v3 schema (what
``apiextensions.k8s.io/v1`` demands): every ``$ref`` inlined, ``anyOf: [X, null]`` turned into
``X`` with ``nullable: true``, ``title`` dropped, ``exclusiveMinimum: n`` rewritten into the
OpenAPI 3.0 form, and plugin ``params`` (free-form maps) kept with
``x-kubernetes-preserve-unknown-fields`` (each plugin validates its params in admission).
Anything the converter does not know how to express raises, so that a change to the model
cannot silently produce a schema the API server would refuse.

CEL rules (``x-kubernetes-validations``) repeat the model's cross-field checks: on ``spec``,
live mode needs ``broker.credentialsSecret`` and backtest needs ``data``; on the object root
(the only place a CRD rule may read ``metadata.name``), live mode needs ``spec.liveConfirmation``
equal to the name. CEL treats a null field as absent, so an explicit ``null`` is refused too.

What the schema cannot say is left to the admission webhook (``admission.py``): plugin names
and params (and whether the broker serves the mode), a timeframe's meaning (only its shape is
checked here), and whether the broker knows a symbol.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from tradefleet_operator.names import (
    API_VERSION,
    CRD_NAME,
    GROUP,
    KIND,
    PLURAL,
    SINGULAR,
    VERSION,
)
from tradefleet_operator.quantity import QUANTITY_PATTERN
from tradefleet_operator.status_model import BotStatus
from tradefleet_runtime.spec.model import SECRET_NAME_RE, SYMBOL_RE, BotSpec
from tradefleet_runtime.timeframes import TIMEFRAME_PATTERN

SHORT_NAMES = ["tb"]
CATEGORIES = ["tradefleet"]

#: Where ``main()`` writes the CRD, relative to the repository root (both files identical).
OUTPUTS = (
    Path(f"charts/tradefleet/crds/{CRD_NAME}.yaml"),
    Path(f"manifests/crds/{CRD_NAME}.yaml"),
)

HEADER = (
    "# Generated from tradefleet_runtime.spec.model and tradefleet_operator.status_model\n"
    "# by `python -m tradefleet_operator.crd`.\n"
    "# Do not edit: change the model and regenerate (`--check` fails on a stale copy).\n"
)

# JSON Schema keywords the converter passes through unchanged (all valid in a structural schema).
_PASSTHROUGH = frozenset(
    {
        "type",
        "description",
        "enum",
        "format",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
        "required",
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
    }
)

# Constraints the model checks in validators (so they are not in its JSON Schema) repeated
# here, so that ``kubectl apply`` refuses them before admission. Paths are property names
# from the spec root; "[]" is a list's items, "{}" a map's values.
_EXTRA: dict[tuple[str, ...], dict[str, Any]] = {
    ("market", "symbols"): {"x-kubernetes-list-type": "set"},
    ("market", "symbols", "[]"): {"pattern": SYMBOL_RE.pattern, "maxLength": 64},
    ("market", "timeframe"): {"pattern": TIMEFRAME_PATTERN, "maxLength": 16},
    ("broker", "credentialsSecret", "name"): {"pattern": SECRET_NAME_RE.pattern, "maxLength": 253},
    ("liveConfirmation",): {"maxLength": 63},
    # Kubernetes quantities, as the bot's Deployment and journal claim will need them (a string
    # only: an integer value skips the pattern). Admission checks the rest (``quantity.py``).
    ("runtime", "resources", "{}", "{}"): {"pattern": QUANTITY_PATTERN},
    ("runtime", "journal", "size"): {"pattern": QUANTITY_PATTERN},
}

#: CEL rules on ``spec`` (``self`` is the spec).
SPEC_RULES: list[dict[str, str]] = [
    {
        "rule": "!has(self.mode) || self.mode != 'live' || "
        "(has(self.broker) && has(self.broker.credentialsSecret))",
        "message": "live mode refused: spec.broker.credentialsSecret is required",
        "fieldPath": ".broker.credentialsSecret",
        "reason": "FieldValueRequired",
    },
    {
        "rule": "!has(self.mode) || self.mode != 'backtest' || has(self.data)",
        "message": "mode backtest needs a data feed (spec.data)",
        "fieldPath": ".data",
        "reason": "FieldValueRequired",
    },
]

#: CEL rules on the object root: the only place where a CRD rule may read ``metadata.name``.
ROOT_RULES: list[dict[str, str]] = [
    {
        "rule": "!has(self.spec.mode) || self.spec.mode != 'live' || "
        "(has(self.spec.liveConfirmation) && self.spec.liveConfirmation == self.metadata.name)",
        "message": "live mode refused: spec.liveConfirmation must equal metadata.name, "
        "typed to confirm that this bot trades real money",
        "fieldPath": ".spec.liveConfirmation",
        "reason": "FieldValueInvalid",
    },
]


class SchemaConversionError(ValueError):
    """The model's JSON Schema uses something a structural CRD schema cannot express."""


def model_schema(model: type[BaseModel], root: str, extra: Any = None) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a pydantic model (``root`` names it in errors)."""
    source = model.model_json_schema(by_alias=True)
    defs = source.pop("$defs", {})
    return _convert(source, defs, (), _Context(root, extra or {}))


def spec_schema() -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``spec``, from ``BotSpec``."""
    schema = model_schema(BotSpec, "spec", _EXTRA)
    schema["x-kubernetes-validations"] = copy.deepcopy(SPEC_RULES)
    return schema


def status_schema() -> dict[str, Any]:
    """The schema of ``status`` (written by the operator through the status subresource), from
    ``BotStatus``: every field the operator writes, so the API server prunes none of them."""
    return model_schema(BotStatus, "status")


@dataclass(frozen=True)
class _Context:
    """Where a conversion is: the root's name (for errors) and the extra keys by path."""

    root: str
    extra: dict[tuple[str, ...], dict[str, Any]]


def _resolve(
    node: dict[str, Any], defs: dict[str, Any], path: tuple[str, ...], ctx: _Context
) -> dict[str, Any]:
    """Inline ``$ref``/``allOf``/``anyOf [X, null]``; the referring field's keys win."""
    node = dict(node)
    if "$ref" in node:
        ref = node.pop("$ref")
        name = ref.rsplit("/", 1)[-1]
        if not ref.startswith("#/$defs/") or name not in defs:
            raise SchemaConversionError(f"{_where(ctx.root, path)}: cannot resolve {ref!r}")
        return _resolve({**defs[name], **node}, defs, path, ctx)
    if "allOf" in node:
        parts = node.pop("allOf")
        if len(parts) != 1:
            raise SchemaConversionError(
                f"{_where(ctx.root, path)}: allOf with {len(parts)} members"
            )
        return _resolve({**parts[0], **node}, defs, path, ctx)
    if "anyOf" in node:
        options = node.pop("anyOf")
        if sorted(o.get("type", "") for o in options) == ["integer", "string"]:
            # A Kubernetes quantity or port: `1` and `"500m"` are both fine.
            node.pop("type", None)
            return {**node, "x-kubernetes-int-or-string": True}
        others = [option for option in options if option.get("type") != "null"]
        if len(others) != 1 or len(options) != 2:
            raise SchemaConversionError(
                f"{_where(ctx.root, path)}: anyOf is only supported as [X, null], got {options!r}"
            )
        resolved = _resolve({**others[0], **node}, defs, path, ctx)
        resolved["nullable"] = True
        return resolved
    return node


def _convert(
    node: dict[str, Any], defs: dict[str, Any], path: tuple[str, ...], ctx: _Context
) -> dict[str, Any]:
    node = _resolve(node, defs, path, ctx)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key in _PASSTHROUGH:
            out[key] = copy.deepcopy(value)
        elif key == "nullable":
            out["nullable"] = bool(value)
        elif key == "default":
            if value is not None:  # a null default is the same as no default
                out["default"] = copy.deepcopy(value)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            if isinstance(value, bool):
                out[key] = value
            else:  # JSON Schema 2020 number → OpenAPI 3.0 bound + boolean
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                out[bound] = value
                out[key] = True
        elif key == "properties":
            out["properties"] = {
                name: _convert(sub, defs, (*path, name), ctx) for name, sub in value.items()
            }
        elif key == "items":
            out["items"] = _convert(value, defs, (*path, "[]"), ctx)
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif value is False:
                # Structural schemas forbid additionalProperties next to properties; unknown
                # fields are refused by field validation (kubectl's default) and pruned.
                continue
            else:
                out["additionalProperties"] = _convert(value, defs, (*path, "{}"), ctx)
        else:
            raise SchemaConversionError(f"{_where(ctx.root, path)}: unsupported keyword {key!r}")
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        raise SchemaConversionError(f"{_where(ctx.root, path)}: no type")
    if "x-kubernetes-preserve-unknown-fields" in out and "properties" in out:
        raise SchemaConversionError(f"{_where(ctx.root, path)}: free-form object with properties")
    out.update(copy.deepcopy(ctx.extra.get(path, {})))
    return {key: out[key] for key in sorted(out, key=_key_order)}


_FIRST = ("type", "description", "nullable", "default", "enum", "required", "properties")


def _key_order(key: str) -> tuple[int, str]:
    """type and description first (as ``kubectl explain`` reads), then the rest by name."""
    return (_FIRST.index(key), "") if key in _FIRST else (len(_FIRST), key)


def _where(root: str, path: Sequence[str]) -> str:
    return ".".join((root, *path)).replace(".[]", "[]")


def object_schema() -> dict[str, Any]:
    """The whole ``openAPIV3Schema``: apiVersion, kind, metadata, spec and status."""
    spec = spec_schema()
    spec["description"] = (BotSpec.__doc__ or "").strip() or "The desired state of one trading bot."
    return {
        "type": "object",
        "description": "A trading bot: the operator runs one runtime pod per TradingBot.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": API_VERSION},
            "kind": {"type": "string", "description": KIND},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status_schema(),
        },
        "x-kubernetes-validations": copy.deepcopy(ROOT_RULES),
    }


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
    {"name": "Strategy", "type": "string", "jsonPath": ".spec.strategy.name"},
    {"name": "Symbols", "type": "string", "jsonPath": ".status.symbols"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Equity", "type": "number", "jsonPath": ".status.equity"},
    {"name": "PnL", "type": "number", "jsonPath": ".status.pnlTotal"},
    {"name": "Drawdown", "type": "number", "jsonPath": ".status.drawdownPct"},
    {"name": "Tier", "type": "integer", "jsonPath": ".status.riskTier"},
    {"name": "Locks", "type": "string", "jsonPath": ".status.riskLocks[*].plugin"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a dict (``apiextensions.k8s.io/v1``)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/part-of": "tradefleet"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": copy.deepcopy(PRINTER_COLUMNS),
                    "schema": {"openAPIV3Schema": object_schema()},
                }
            ],
        },
    }


def render() -> str:
    """The CRD as the YAML text committed in the chart and in ``manifests/``."""
    body = yaml.safe_dump(build_crd(), sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body


def walk_schemas(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, sub-schema) of a converted schema, the root included."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk_schemas(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk_schemas(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk_schemas(schema["additionalProperties"], f"{path}{{}}")


def structural_problems(schema: dict[str, Any]) -> list[str]:
    """What would make the API server refuse ``schema`` as non-structural (empty: none)."""
    problems: list[str] = []
    for path, node in walk_schemas(schema):
        where = path or "(root)"
        for keyword in ("$ref", "anyOf", "oneOf", "allOf", "not", "title", "uniqueItems", "$defs"):
            if keyword in node:
                problems.append(f"{where}: {keyword} is not allowed")
        if "type" not in node and not node.get("x-kubernetes-int-or-string"):
            problems.append(f"{where}: no type")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{where}: properties and additionalProperties together")
        if node.get("type") == "array" and "items" not in node:
            problems.append(f"{where}: array without items")
        if "default" in node and node["default"] is None:
            problems.append(f"{where}: null default")
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            if bound in node and not isinstance(node[bound], bool):
                problems.append(f"{where}: {bound} must be a boolean in OpenAPI v3.0")
    return problems


def _repo_root() -> Path:
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def stale_files(root: Path) -> list[Path]:
    """Which of the committed CRD files differ from what the model generates."""
    text = render()
    stale = []
    for relative in OUTPUTS:
        path = root / relative
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tradefleet_operator.crd",
        description="Write the TradingBot CRD (chart and manifests) from the spec model.",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    parser.add_argument("--root", type=Path, default=None, help="repository root")
    args = parser.parse_args(argv)
    root: Path = args.root or _repo_root()
    if args.check:
        stale = stale_files(root)
        for path in stale:
            print(f"stale: {path} (run `python -m tradefleet_operator.crd`)", file=sys.stderr)
        return 1 if stale else 0
    text = render()
    for relative in OUTPUTS:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
