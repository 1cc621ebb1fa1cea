"""The search space of ``tradefleet optimize``: one range or set of values per strategy param.

A space file is a YAML mapping from a param of the bot's strategy to exactly one of::

    fast: {int: [5, 50]}                       # 5..50 inclusive
    slow: {int: [20, 200, 10]}                 # 20, 30, ..., 200
    stop_loss_pct: {float: [0.001, 0.05], log: true}
    take_profit_pct: {float: [0.01, 0.1, 0.01]}
    allow_short: {choice: [true, false]}

Bounds are inclusive; a step must divide the range exactly (so the grid is what was written);
``log: true`` needs a positive low and no step. Every refusal is a ``SpecError`` whose field is
``space.PARAM`` (or ``space.PARAM.int`` …), the way manifest errors name theirs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradefleet_runtime.errors import FieldError, SpecError
from tradefleet_runtime.spec.load import parse_yaml

KINDS = ("int", "float", "choice")
MAX_GRID = 1_000_000  # a grid larger than this is a mistake, not a search

Value = int | float | bool | str | None


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1
    log: bool = False

    def values(self) -> list[Value]:
        return list(range(self.low, self.high + 1, self.step))


def _decimals(number: float) -> int:
    """The decimals ``number`` is written with (its shortest repr: 0.07 → 2, 1.2e-07 → 8): a
    point low + k * step has no more than the low and the step, and a float sum's noise is
    below them."""
    text = repr(float(number)).lower()
    mantissa, _, exponent = text.partition("e")
    written = len(mantissa.partition(".")[2].rstrip("0"))
    return max(0, written - int(exponent or 0))


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    step: float | None = None
    log: bool = False

    def values(self) -> list[Value]:
        if self.step is None:
            raise ValueError("a float range without a step has no grid")
        count = round((self.high - self.low) / self.step)
        return [self.on_step(self.low + i * self.step) for i in range(count + 1)]

    def on_step(self, value: float) -> float:
        """``value``, a point ``low + k * step``, rounded to the step's decimals: the sum is
        0.30000000000000004 for 0.1 + 2 * 0.1, and a sampler's point 1.9000000000000001. A
        range without a step keeps every digit."""
        if self.step is None:
            return value
        # As fine as the step and the low are written: a low of 1.2e-7 with a step of 0.5
        # keeps 1.00000012, not 1.0000001.
        return round(value, max(_decimals(self.step), _decimals(self.low)))


@dataclass(frozen=True)
class Choice:
    options: tuple[Value, ...]

    def values(self) -> list[Value]:
        return list(self.options)


Dimension = IntRange | FloatRange | Choice


@dataclass(frozen=True)
class Space:
    """Params to search, in the order the file lists them."""

    dimensions: dict[str, Dimension]

    def grid_size(self) -> int | None:
        """Number of points of the full grid, or None when a float range has no step."""
        size = 1
        for dimension in self.dimensions.values():
            if isinstance(dimension, FloatRange) and dimension.step is None:
                return None
            size *= len(dimension.values())
        return size

    def grid(self) -> dict[str, list[Value]]:
        """Each param's grid values; a ``SpecError`` naming a float range without a step."""
        problems = [
            FieldError(f"space.{name}.float", "the grid sampler needs a step: [low, high, step]")
            for name, dimension in self.dimensions.items()
            if isinstance(dimension, FloatRange) and dimension.step is None
        ]
        if problems:
            raise SpecError(problems, "search space")
        return {name: dimension.values() for name, dimension in self.dimensions.items()}

    def on_steps(self, params: Mapping[str, Value]) -> dict[str, Value]:
        """``params`` with each stepped float as its range writes it (``FloatRange.on_step``):
        what a trial runs with and a search names, whatever noise a sampler's sum left."""
        return {
            name: dimension.on_step(value)
            if isinstance(dimension := self.dimensions.get(name), FloatRange)
            and isinstance(value, float)
            else value
            for name, value in params.items()
        }

    def points(self) -> Iterator[dict[str, Value]]:
        """Every point of the grid, in file order (the last param varies fastest)."""
        grid = self.grid()
        names = list(grid)
        for combination in itertools.product(*grid.values()):
            yield dict(zip(names, combination, strict=True))

    def as_json(self) -> dict[str, Any]:
        """The space as written (normalised), to store with a study and compare on resume."""
        out: dict[str, Any] = {}
        for name, dimension in self.dimensions.items():
            if isinstance(dimension, Choice):
                out[name] = {"choice": list(dimension.options)}
                continue
            kind = "int" if isinstance(dimension, IntRange) else "float"
            bounds: list[Any] = [dimension.low, dimension.high]
            if dimension.step is not None and not (kind == "int" and dimension.step == 1):
                bounds.append(dimension.step)
            out[name] = {kind: bounds, **({"log": True} if dimension.log else {})}
        return out


def _is_number(value: object) -> bool:
    # YAML's true/false are bools, which Python counts as ints: not a bound.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _dimension(name: str, raw: object) -> tuple[Dimension | None, list[FieldError]]:
    where = f"space.{name}"
    if not isinstance(raw, dict):
        example = "{int: [5, 50]}, {float: [0.001, 0.05]} or {choice: [a, b]}"
        return None, [FieldError(where, f"expected a mapping such as {example}")]
    kinds = [key for key in raw if key in KINDS]
    unknown = [key for key in raw if key not in (*KINDS, "log")]
    errors = [
        FieldError(f"{where}.{key}", f"unknown key (use one of {', '.join(KINDS)}, log)")
        for key in unknown
    ]
    if len(kinds) != 1:
        if kinds or not errors:  # a misspelt kind alone is named once, by its key
            found = ", ".join(kinds) or "none"
            errors.append(
                FieldError(where, f"give exactly one of int, float, choice (found {found})")
            )
        return None, errors
    kind = kinds[0]
    log = raw.get("log", False)
    if not isinstance(log, bool):
        errors.append(FieldError(f"{where}.log", "must be true or false"))
    if errors:
        return None, errors
    value = raw[kind]
    field = f"{where}.{kind}"
    if kind == "choice":
        if log:
            return None, [FieldError(f"{where}.log", "a choice has no scale")]
        if not isinstance(value, list) or not value:
            return None, [FieldError(field, "expected a non-empty list of values")]
        if not all(item is None or isinstance(item, bool | int | float | str) for item in value):
            return None, [FieldError(field, "values must be numbers, strings, booleans or null")]
        if len({repr(item) for item in value}) != len(value):
            return None, [FieldError(field, "a value is listed twice")]
        return Choice(tuple(value)), []
    if not isinstance(value, list) or len(value) not in (2, 3):
        return None, [FieldError(field, "expected [low, high] or [low, high, step]")]
    if not all(_is_number(item) for item in value):
        return None, [FieldError(field, "low, high and step must be numbers")]
    if not all(math.isfinite(item) for item in value):
        return None, [FieldError(field, "low, high and step must be finite")]
    low, high = value[0], value[1]
    step = value[2] if len(value) == 3 else None
    if kind == "int" and not all(isinstance(item, int) for item in value):
        return None, [FieldError(field, "an int range takes whole numbers (use float for others)")]
    if low > high:
        return None, [FieldError(field, f"low {low} is above high {high}")]
    if step is not None:
        if step <= 0:
            return None, [FieldError(field, f"step {step} must be positive")]
        if log and not (kind == "int" and step == 1):
            return None, [FieldError(f"{where}.log", "a log scale takes no step")]
        count = (high - low) / step
        if abs(count - round(count)) > 1e-9:
            return None, [FieldError(field, f"step {step} does not divide the range {low}..{high}")]
    if log and low <= 0:
        return None, [FieldError(f"{where}.log", f"a log scale needs low > 0 (low is {low})")]
    if kind == "int":
        return IntRange(int(low), int(high), int(step or 1), log), []
    return FloatRange(float(low), float(high), None if step is None else float(step), log), []


def parse_space(document: object, source: str = "search space") -> Space:
    """Validate a parsed space document, or raise ``SpecError`` naming every wrong field."""
    if not isinstance(document, dict) or not document:
        raise SpecError([FieldError("space", "expected a mapping of param: range")], source)
    dimensions: dict[str, Dimension] = {}
    errors: list[FieldError] = []
    for name, raw in document.items():
        if not isinstance(name, str) or not name:
            errors.append(FieldError(f"space.{name}", "a param name must be a string"))
            continue
        dimension, problems = _dimension(name, raw)
        errors.extend(problems)
        if dimension is not None:
            dimensions[name] = dimension
    if errors:
        raise SpecError(errors, source)
    space = Space(dimensions)
    size = space.grid_size()
    if size is not None and size > MAX_GRID:
        raise SpecError(
            [FieldError("space", f"the grid has {size:,} points (at most {MAX_GRID:,})")], source
        )
    return space


def load_space(path: Path) -> Space:
    """Read and validate a space file (YAML, one document)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError([FieldError("(file)", f"cannot read: {error}")], str(path)) from None
    documents = parse_yaml(text, str(path))
    if len(documents) != 1:
        raise SpecError(
            [FieldError("(file)", f"expected one YAML document, found {len(documents)}")],
            str(path),
        )
    return parse_space(documents[0], str(path))


def check_names(space: Space, schema: Mapping[str, Any], strategy: str) -> list[FieldError]:
    """Each searched param must be one the strategy takes (its params' JSON Schema), and an
    integer one searched by an ``int`` range or choices: a ``float`` range draws values the
    params model refuses one trial at a time, writing a study the corrected space then cannot
    continue."""
    properties = schema.get("properties", {})
    known = list(properties)
    errors: list[FieldError] = []
    for name, dimension in space.dimensions.items():
        if name not in known:
            errors.append(
                FieldError(
                    f"space.{name}",
                    f"strategy {strategy!r} has no param {name!r} (its params: {', '.join(known)})",
                )
            )
        elif isinstance(dimension, FloatRange) and _integer_only(properties[name]):
            errors.append(
                FieldError(
                    f"space.{name}",
                    f"strategy {strategy!r}'s param {name!r} is an integer: search it with an "
                    f"int range ({{int: [{math.ceil(dimension.low)}, "
                    f"{math.floor(dimension.high)}]}})",
                )
            )
    return errors


def _integer_only(field: Mapping[str, Any]) -> bool:
    """Whether a param's JSON Schema takes integers only (``type: integer``, or only integer
    and null in its ``anyOf``)."""
    options = field.get("anyOf", [field])
    types = {option.get("type") for option in options if isinstance(option, Mapping)}
    return "integer" in types and types <= {"integer", "null"}
