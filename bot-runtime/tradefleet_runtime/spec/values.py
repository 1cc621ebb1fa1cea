"""What a value in a manifest (or in plugin params) may be.

Two checks, shared by the spec's models and every plugin's params:

- :func:`document_problems` walks a whole parsed document before any model sees it: only JSON
  values (what Kubernetes stores), string keys, finite floats, 64-bit integers, at most
  ``MAX_DEPTH`` levels and ``MAX_VALUES`` values. Kubernetes would refuse or mangle anything
  else, and an unbounded document makes every later step (validation, hashing, journaling)
  slow or recursive.
- :data:`no_bools_as_numbers` is a pydantic validator for every field of a model: pydantic's
  lax mode reads ``true`` as ``1`` where a number is wanted, which turns a typo (``fast: true``)
  into a running bot. Strict mode would refuse it too, but also ``"backtest"`` for an enum and
  other conversions YAML manifests need, so only this one conversion is refused.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import ValidationInfo, field_validator

from tradefleet_runtime.errors import FieldError, join_path

# Deep enough for any plugin's params (the built-in ones nest at most six levels from the
# document's root), shallow enough that nothing downstream recurses far.
MAX_DEPTH = 32
# Every value counts, YAML aliases once per use: 200 symbols and 32 risk plugins fit many times.
MAX_VALUES = 20_000
# Kubernetes keeps integers as int64.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_JSON_SCALARS = (str, int, float, type(None))


def document_problems(
    document: object, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES
) -> list[FieldError]:
    """Why ``document`` is not a bounded JSON value, one error per field (empty when it is).

    Iterative, so that neither depth nor a cycle (a recursive YAML alias) can overflow the
    stack; the walk stops at the first depth or size problem.
    """
    problems: list[FieldError] = []
    stack: list[tuple[object, tuple[str | int, ...]]] = [(document, ())]
    count = 0
    while stack:
        value, path = stack.pop()
        count += 1
        where = join_path(path) or "(manifest)"
        if count > max_values:
            problems.append(
                FieldError(
                    where,
                    f"the document holds more than {max_values:,} values "
                    "(a YAML alias counts once per use)",
                )
            )
            break
        if len(path) > max_depth:
            problems.append(FieldError(where, f"nested deeper than {max_depth} levels"))
            break
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    problems.append(
                        FieldError(
                            join_path([*path, str(key)]),
                            f"key {key!r} is not a string: quote it (keys are strings in "
                            "Kubernetes objects)",
                        )
                    )
                    continue
                stack.append((item, (*path, key)))
        elif isinstance(value, list | tuple):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
        elif isinstance(value, bool):
            pass
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append(FieldError(where, f"must be a finite number, not {value}"))
        elif isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                problems.append(FieldError(where, "integer out of range (at most 64 bits)"))
        elif not isinstance(value, _JSON_SCALARS):
            problems.append(
                FieldError(
                    where,
                    f"a {type(value).__name__} is not a JSON value "
                    "(write a string, number, boolean, null, list or mapping)",
                )
            )
    return problems


# -- booleans are not numbers ---------------------------------------------------------------


def _members(annotation: Any) -> list[Any]:
    """The types of a union (or of one type), with ``Annotated`` metadata stripped."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [member for arg in get_args(annotation) for member in _members(arg)]
    return [annotation]


def _is_number_type(member: Any) -> bool:
    return isinstance(member, type) and issubclass(member, int | float) and member is not bool


Where = tuple[str | int, ...]


def bool_in_number_place(annotation: Any, value: Any) -> tuple[Where, bool] | None:
    """Where in ``value`` a boolean stands for a number of ``annotation`` (and which), or None.

    Follows the annotation only (lists, tuples, dicts; nested models check themselves), so
    the recursion is as deep as the annotation, whatever the value.
    """
    members = _members(annotation)
    if isinstance(value, bool):
        if any(member is Any or member is object or member is bool for member in members):
            return None
        return ((), value) if any(_is_number_type(member) for member in members) else None
    if isinstance(value, Mapping):
        for member in members:
            if get_origin(member) in (dict, Mapping):
                args = get_args(member)
                item_type = args[1] if len(args) == 2 else Any
                for key, item in value.items():
                    inner = bool_in_number_place(item_type, item)
                    if inner is not None:
                        return (str(key), *inner[0]), inner[1]
                return None
        return None
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for member in members:
            origin = get_origin(member)
            if origin in (list, tuple, set, frozenset, Sequence):
                args = get_args(member)
                for index, item in enumerate(value):
                    if origin is tuple and args and not (len(args) == 2 and args[1] is ...):
                        if index >= len(args):
                            return None
                        item_type = args[index]
                    else:
                        item_type = args[0] if args else Any
                    inner = bool_in_number_place(item_type, item)
                    if inner is not None:
                        return (index, *inner[0]), inner[1]
                return None
    return None


def _no_bools_as_numbers(cls: Any, value: Any, info: ValidationInfo) -> Any:
    field_name = info.field_name
    if field_name is None:
        return value
    field = cls.model_fields.get(field_name)
    if field is None:
        return value
    found = bool_in_number_place(field.annotation, value)
    if found is not None:
        where, flag = found
        inside = f" (at {join_path(where)})" if where else ""
        raise ValueError(f"{str(flag).lower()} is not a number{inside}: write a number")
    return value


# Put into a model's class body (``_numbers = no_bools_as_numbers``) to check all its fields;
# subclasses inherit it.
no_bools_as_numbers: Any = field_validator("*", mode="before")(_no_bools_as_numbers)
