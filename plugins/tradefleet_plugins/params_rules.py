"""Checks a plugin's params model makes between two of its fields (pure)."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationInfo

Number = TypeVar("Number", int, float)


def above_field(value: Number, info: ValidationInfo, other: str) -> Number:
    """``value``, which must be greater than the field ``other`` validated before it (a
    refused ``other`` is not there: its own error says why)."""
    bound = info.data.get(other)
    if bound is not None and value <= bound:
        raise ValueError(f"must be greater than {other} ({bound:g})")
    return value
