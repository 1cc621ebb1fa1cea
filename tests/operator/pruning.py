"""What a real API server does to a write under a structural schema: unknown fields dropped."""

from __future__ import annotations

from typing import Any


def prune(value: Any, schema: dict[str, Any]) -> Any:
    """What a real API server keeps of ``value`` under a structural schema: unknown fields
    are dropped silently (no error), at every depth."""
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        return {key: prune(sub, props[key]) for key, sub in value.items() if key in props}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"]) for item in value]
    return value
