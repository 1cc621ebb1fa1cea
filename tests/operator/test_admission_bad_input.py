"""Admission bodies of the wrong shape: refused by field, never an AttributeError (the
admission webhook would answer the API server with a 500 and the create would fail closed
without saying why)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tradefleet_operator import admission
from tradefleet_runtime.errors import FieldError
from tradefleet_runtime.plugins.registry import PluginRegistry

EXAMPLE = Path(__file__).parents[2] / "examples" / "bots" / "eurusd-paper.yaml"


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return admission.default_registry()


def example() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return document


@pytest.mark.parametrize("body", [[1, 2], None, "TradingBot", 5])
def test_a_body_that_is_no_object_is_refused_by_field(body: Any, registry: PluginRegistry) -> None:
    errors = admission.validate_trading_bot(body, registry)
    assert errors == [FieldError("(manifest)", "must be an object (a TradingBot)")]
    message = admission.admission_message(errors, body)
    assert "(manifest): must be an object" in message


@pytest.mark.parametrize("metadata", [[1], "bot", 5])
def test_metadata_that_is_no_object_is_refused_by_field(
    metadata: Any, registry: PluginRegistry
) -> None:
    body = {**example(), "metadata": metadata}
    errors = admission.validate_trading_bot(body, registry)
    assert [e.field for e in errors] == ["metadata"]
    assert "TradingBot refused" in admission.admission_message(errors, body)


def test_name_problems_names_metadata_that_is_no_object() -> None:
    assert admission.name_problems([1]) == [FieldError("metadata", "must be an object")]  # type: ignore[arg-type]
    known = [FieldError("metadata", "Input should be a valid dictionary")]
    assert admission.name_problems([1], known) == []  # type: ignore[arg-type]


def test_the_example_is_still_admitted(registry: PluginRegistry) -> None:
    assert admission.validate_trading_bot(example(), registry) == []
