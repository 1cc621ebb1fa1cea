"""Reading a manifest from YAML, with one clear error per wrong field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tradefleet_runtime.errors import FieldError, SpecError, join_path
from tradefleet_runtime.spec.model import BotManifest

_FIELD_LINE = re.compile(r"^(spec[\w.\[\]]*|metadata[\w.\[\]]*): (.+)$")


def validation_errors(error: ValidationError) -> list[FieldError]:
    """Turn a pydantic error into field errors with dotted wire-format paths."""
    fields: list[FieldError] = []
    for item in error.errors(include_url=False):
        path = join_path(part for part in item["loc"] if not _is_union_tag(part))
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check its spelling and the apiVersion)"
        elif item["type"] == "missing":
            message = "required field is missing"
        lines = message.splitlines()
        if lines and all(_FIELD_LINE.match(line) for line in lines):
            # Cross-field checks name their own fields: one error per line.
            for line in lines:
                match = _FIELD_LINE.match(line)
                assert match is not None
                fields.append(FieldError(match.group(1), match.group(2)))
        else:
            fields.append(FieldError(path or "(manifest)", message))
    return fields


def _is_union_tag(part: str | int) -> bool:
    # pydantic puts the union member's type name in the location ("str", "function-after[...]").
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def parse_manifest(document: Any, source: str = "") -> BotManifest:
    """Validate one parsed YAML/JSON document as a TradingBot, or raise ``SpecError``."""
    if not isinstance(document, dict):
        raise SpecError(
            [FieldError("(manifest)", "expected a mapping (a TradingBot object)")], source
        )
    try:
        return BotManifest.model_validate(document)
    except ValidationError as error:
        raise SpecError(validation_errors(error), source) from None


def load_manifest(path: str | Path) -> BotManifest:
    """Load a TradingBot manifest file (one YAML document)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError(
            [FieldError("(file)", f"cannot read: {error.strerror}")], str(file)
        ) from None
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise SpecError([FieldError("(yaml)", f"{where}{problem}")], str(file)) from None
    if len(documents) != 1:
        raise SpecError(
            [FieldError("(file)", f"expected exactly one YAML document, found {len(documents)}")],
            str(file),
        )
    return parse_manifest(documents[0], str(file))
