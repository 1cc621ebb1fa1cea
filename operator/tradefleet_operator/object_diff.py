"""Comparing a desired object with what the API server has (pure).

:func:`needs_update` gives the JSON merge patch (RFC 7386, ``application/merge-patch+json``)
that brings an object read from the API server to the desired one, or None, so that an
unchanged bot costs no write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tradefleet_operator.bot_api import plain

#: Top-level fields of an object that the operator does not own.
_NOT_OWNED = frozenset({"apiVersion", "kind", "metadata", "status"})


def needs_update(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON merge patch bringing ``actual`` to ``desired``, or None when nothing differs.

    Owned: the labels and annotations ``desired`` sets (others' keys are left alone) and every
    other top-level field of ``desired`` (``spec``, ``data``, ``type``, …). Fields the API server
    adds (defaults, ``status``, ``managedFields``, ``resourceVersion``…) are not differences:
    ``desired`` must be contained in ``actual``. Lists compare element by element with equal
    lengths (so a removed volume is a difference) and are replaced whole in the patch.
    Resource quantities compare by value (``0.5`` equals ``500m``).
    """
    patch: dict[str, Any] = {}
    metadata_patch: dict[str, Any] = {}
    actual_meta = actual.get("metadata") or {}
    for key in ("labels", "annotations"):
        wanted = (desired.get("metadata") or {}).get(key) or {}
        have = actual_meta.get(key) or {}
        changed = {k: v for k, v in wanted.items() if have.get(k) != v}
        if changed:
            metadata_patch[key] = changed
    if metadata_patch:
        patch["metadata"] = metadata_patch
    for key, value in desired.items():
        if key in _NOT_OWNED:
            continue
        diff = _diff(value, actual.get(key), (key,))
        if diff is not _SAME:
            patch[key] = diff
    return patch or None


class _Same:
    pass


_SAME: Any = _Same()


def _diff(desired: Any, actual: Any, path: tuple[str, ...]) -> Any:
    """``_SAME`` if ``desired`` is contained in ``actual``; otherwise the merge-patch value."""
    if isinstance(desired, Mapping):
        if not isinstance(actual, Mapping):
            return plain(desired)
        out: dict[str, Any] = {}
        for key, value in desired.items():
            sub = _diff(value, actual.get(key), (*path, str(key)))
            if sub is not _SAME:
                out[key] = sub
        return out if out else _SAME
    if isinstance(desired, list):
        if (
            isinstance(actual, list)
            and len(actual) == len(desired)
            and all(
                _diff(d, a, (*path, "[]")) is _SAME for d, a in zip(desired, actual, strict=True)
            )
        ):
            return _SAME
        return plain(desired)
    if _scalar_equal(desired, actual, path):
        return _SAME
    return desired


def _scalar_equal(desired: Any, actual: Any, path: tuple[str, ...]) -> bool:
    if desired == actual and type(desired) is type(actual):
        return True
    if isinstance(desired, bool) or isinstance(actual, bool):
        return False
    if isinstance(desired, int | float) and isinstance(actual, int | float):
        return float(desired) == float(actual)
    if ("resources" in path or "storage" in path) and desired is not None and actual is not None:
        left, right = parse_quantity(desired), parse_quantity(actual)
        return left is not None and left == right
    return False


_QUANTITY = re.compile(
    r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
_SUFFIX = {
    None: Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource quantity (``500m``, ``1Gi``, ``0.5``, ``1e3``) as a number."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        return None
    return number * _SUFFIX[match.group(2)]
