"""Label selectors (``team=a,tier in (x,y),!canary``): parsed and matched (pure, stdlib only).

Kept apart from :mod:`.k8s_api` so that the fleet command can use them without aiohttp.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["parse_selector", "selector_matches"]

_SET_TERM = re.compile(
    r"^\s*(!?)([\w./-]+)\s*(?:(in|notin)\s*\(([^)]*)\)|(==|=|!=)\s*([\w./-]*))?\s*$"
)


def _split_selector(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return terms


def parse_selector(selector: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """``"team=a,tier in (x,y),!canary"`` → ``[(key, op, values), ...]``; ValueError if bad."""
    parsed: list[tuple[str, str, tuple[str, ...]]] = []
    for term in _split_selector(selector):
        match = _SET_TERM.match(term)
        if not match:
            raise ValueError(f"bad label selector term: {term.strip()!r}")
        negated, key, set_op, set_values, op, value = match.groups()
        if negated:
            if set_op or op:
                raise ValueError(f"bad label selector term: {term.strip()!r}")
            parsed.append((key, "!exists", ()))
        elif set_op:
            values = tuple(v.strip() for v in set_values.split(",") if v.strip())
            parsed.append((key, set_op, values))
        elif op:
            parsed.append((key, "!=" if op == "!=" else "=", (value,)))
        else:
            parsed.append((key, "exists", ()))
    return parsed


def selector_matches(selector: str, obj: Mapping[str, Any]) -> bool:
    labels: Mapping[str, str] = obj.get("metadata", {}).get("labels") or {}
    for key, op, values in parse_selector(selector):
        present = key in labels
        if (
            (op == "exists" and not present)
            or (op == "!exists" and present)
            or (op in ("=", "in") and labels.get(key) not in values)
            or (op in ("!=", "notin") and present and labels[key] in values)
        ):
            return False
    return True
