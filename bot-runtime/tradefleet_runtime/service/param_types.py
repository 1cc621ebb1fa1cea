"""An UpdateParams value must already have its param's JSON type (pure).

A params model validates in pydantic's lax mode, for manifests' sake (``spec/values.py``), and
lax mode converts: ``"12"`` becomes ``12`` for an integer, ``"0.02"`` a stop-loss of 0.02,
``"false"`` or ``0`` a boolean. A client sending a string for a number has a bug, and
converting it silently hides the bug until a value it did not mean moves money. So, after the
lax validation (which keeps every range and cross-param check, and its messages), each value
of the call is held against its param's type, and one of another JSON type is refused, naming
it: ``expected an integer, got the string '12'``.

Not pydantic's strict mode: ``PluginParams``' before-validator (no booleans as numbers) hands
every field on as a Python value, and strict mode then refuses a JSON list for a tuple param
(``levels: [0.5, 0.618]``); strict Python also wants a date, not its ISO string. This walks
the param's annotation and judges only the JSON types (number, integer, boolean, string, list,
object, null); anything else (an enum's value, a date's string, a Decimal, ``Any``) is left to
the params model.

What stays accepted, and why:

- an integer for a float param: JSON has one number type, and ``1`` is ``1.0``;
- a whole float for an integer param (``12.0`` for ``fast``): JSON Schema, which the params
  schema is (``tradefleet plugins show``), counts a number without a fraction as an integer; a
  ``params_struct`` cannot tell ``12.0`` from ``12`` at all (Struct numbers are doubles), so
  refusing it in ``params_json`` alone would make two forms of one call disagree; and the value
  is exactly 12, so nothing is hidden. ``12.5`` stays refused (by the lax validation), and so
  is a whole float from 2**53 on, where a double no longer holds every integer;
- a field whose plugin converts it on purpose (a ``mode="before"``, ``"wrap"`` or ``"plain"``
  validator of its own, or a model ``mode="before"`` validator): the plugin says what it takes.
"""

from __future__ import annotations

import collections.abc
import enum
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic.functional_validators import BeforeValidator, PlainValidator, WrapValidator

from tradefleet_runtime.contracts import PluginParams

# Enough of a wrong string to recognise it, not enough to flood the refusal (500 characters).
_SHOWN_CHARS = 40
# A double holds every integer below this exactly (as the Struct conversion assumes too).
_EXACT_INTEGERS = 2**53
_LISTS = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Set)
_MAPS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
_CONVERTING_MODES = ("before", "wrap", "plain")
_CONVERTERS = (BeforeValidator, WrapValidator, PlainValidator)

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class TypeMismatch:
    """A value of the call whose JSON type is not its param's: where, inside the call's
    params (``("pip_sizes", "USDJPY")``), and what was wanted and given."""

    path: Path
    message: str


@dataclass(frozen=True, slots=True)
class _Miss:
    path: Path
    wanted: tuple[str, ...]  # what the param takes there, each as a JSON type ("an integer")
    given: object


def type_mismatch(model: type[BaseModel], call: Mapping[str, object]) -> TypeMismatch | None:
    """The first value of ``call`` (the params an UpdateParams names) whose JSON type is not
    the one its param of ``model`` takes, or None. Keys that are no param are left to the
    model (it refuses them)."""
    miss = _in_model(model, call, ())
    if miss is None:
        return None
    return TypeMismatch(miss.path, f"expected {' or '.join(miss.wanted)}, got {_shown(miss.given)}")


def _in_model(model: type[BaseModel], value: Mapping[Any, object], path: Path) -> _Miss | None:
    if _converts_input(model):
        return None
    fields = _fields_by_key(model)
    for key, item in value.items():
        field = fields.get(key)
        if field is None or _converts_field(model, field[0], field[1]):
            continue
        miss = _judge(field[1].annotation, item, (*path, key))
        if miss is not None:
            return miss
    return None


def _judge(annotation: Any, value: object, path: Path) -> _Miss | None:
    """Why ``value`` (at ``path``) is not of ``annotation``'s JSON type, or None. A union
    takes what any member takes; refused by all, the deepest refusal (a list's item) is the
    answer, else each member's type is said."""
    members = _members(annotation)
    if members is None:
        return None
    misses: list[_Miss] = []
    for member in members:
        miss = _judge_member(member, value, path)
        if miss is None:
            return None
        misses.append(miss)
    deeper = [miss for miss in misses if len(miss.path) > len(path)]
    if deeper:
        return max(deeper, key=lambda miss: len(miss.path))
    wanted = tuple(dict.fromkeys(name for miss in misses for name in miss.wanted))
    return _Miss(path, wanted, value)


def _members(annotation: Any) -> list[Any] | None:
    """The types of a union (or of one type); None when a member converts on purpose
    (``Annotated[int, BeforeValidator(...)]``): then the value is not judged at all."""
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *metadata = get_args(annotation)
        if any(isinstance(item, _CONVERTERS) for item in metadata):
            return None
        return _members(inner)
    if origin is Union or origin is types.UnionType:
        members: list[Any] = []
        for arg in get_args(annotation):
            inner = _members(arg)
            if inner is None:
                return None
            members.extend(inner)
        return members
    return [annotation]


def _judge_member(member: Any, value: object, path: Path) -> _Miss | None:
    origin = get_origin(member)
    if origin in _LISTS or member in _LISTS:
        return _judge_list(member, value, path)
    if origin in _MAPS or member in _MAPS:
        if not isinstance(value, Mapping):
            return _Miss(path, ("an object",), value)
        args = get_args(member)
        item_type = args[1] if len(args) == 2 else Any
        for key, item in value.items():
            miss = _judge(item_type, item, (*path, key))
            if miss is not None:
                return miss
        return None
    if isinstance(member, type) and issubclass(member, BaseModel):
        if not isinstance(value, Mapping):
            return _Miss(path, ("an object",), value)
        return _in_model(member, value, path)
    return _judge_scalar(member, value, path)


def _judge_list(member: Any, value: object, path: Path) -> _Miss | None:
    if not isinstance(value, list | tuple):
        return _Miss(path, ("a list",), value)
    args = get_args(member)
    positional = get_origin(member) is tuple and not (len(args) == 2 and args[1] is ...)
    for index, item in enumerate(value):
        if positional:
            if index >= len(args):
                return None  # too many items: the model says so
            item_type = args[index]
        else:
            item_type = args[0] if args else Any
        miss = _judge(item_type, item, (*path, index))
        if miss is not None:
            return miss
    return None


def _judge_scalar(member: Any, value: object, path: Path) -> _Miss | None:
    """A JSON scalar's type; any other type (an enum, a Literal, a date, a Decimal, ``Any``)
    is the params model's to judge."""
    if member is type(None) or member is None:
        return None if value is None else _Miss(path, ("null",), value)
    if not isinstance(member, type) or issubclass(member, enum.Enum):
        return None  # a Literal, a TypeVar, Any, an enum: the model checks the value itself
    if member is bool:
        fits = isinstance(value, bool)
        return None if fits else _Miss(path, ("a boolean (true or false)",), value)
    if issubclass(member, int):
        fits = (isinstance(value, int) and not isinstance(value, bool)) or _whole(value)
        return None if fits else _Miss(path, ("an integer",), value)
    if issubclass(member, float):
        fits = isinstance(value, int | float) and not isinstance(value, bool)
        return None if fits else _Miss(path, ("a number",), value)
    if issubclass(member, str):
        return None if isinstance(value, str) else _Miss(path, ("a string",), value)
    return None


def _whole(value: object) -> bool:
    """A float an integer param takes: whole, and an integer a double holds exactly."""
    return isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_INTEGERS


# -- fields a plugin converts on purpose -----------------------------------------------------


def _fields_by_key(model: type[BaseModel]) -> dict[str, tuple[str, FieldInfo]]:
    """Each field by the keys a document may give it under: its name and its alias."""
    keys: dict[str, tuple[str, FieldInfo]] = {}
    for name, field in model.model_fields.items():
        keys[name] = (name, field)
        for alias in (field.alias, field.validation_alias):
            if isinstance(alias, str):
                keys[alias] = (name, field)
    return keys


def _sdk_checks() -> set[object]:
    """The functions of the validators every ``PluginParams`` has: they check, never convert."""
    validators = PluginParams.__pydantic_decorators__.field_validators.values()
    return {getattr(item.func, "__func__", item.func) for item in validators}


def _converts_field(model: type[BaseModel], name: str, field: FieldInfo) -> bool:
    if any(isinstance(item, _CONVERTERS) for item in field.metadata):
        return True
    sdk = _sdk_checks()
    for item in model.__pydantic_decorators__.field_validators.values():
        if getattr(item.func, "__func__", item.func) in sdk:
            continue
        if item.info.mode in _CONVERTING_MODES and (
            name in item.info.fields or "*" in item.info.fields
        ):
            return True
    return False


def _converts_input(model: type[BaseModel]) -> bool:
    validators = model.__pydantic_decorators__.model_validators.values()
    return any(item.info.mode in _CONVERTING_MODES for item in validators)


def _shown(value: object) -> str:
    """``value`` as the refusal names it: its JSON type, and a scalar's value."""
    if isinstance(value, str):
        cut = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"
        return f"the string {cut!r}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    return "a list"
