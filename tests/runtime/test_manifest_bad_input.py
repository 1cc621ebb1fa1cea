"""An unknown top-level manifest field was let through while ``spec.tyop`` was refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tradefleet_runtime.errors import FieldError, SpecError
from tradefleet_runtime.spec import parse_manifest

EXAMPLE = Path(__file__).parents[2] / "examples" / "bots" / "eurusd-ema-cross.yaml"


def example() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return document


def refusals(document: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(SpecError) as refused:
        parse_manifest(document)
    return list(refused.value.errors)


@pytest.mark.parametrize("key", ["extra", "sepc", "Spec", "apiversion"])
def test_an_unknown_top_level_field_is_refused_naming_it(key: str) -> None:
    errors = refusals({**example(), key: 1})
    assert [e.field for e in errors] == [key]
    assert "unknown field" in errors[0].message


def test_a_status_as_kubectl_get_writes_it_is_no_configuration() -> None:
    plain = parse_manifest(example())
    with_status = parse_manifest({**example(), "status": {"phase": "Running", "x": [1]}})
    assert with_status == plain
