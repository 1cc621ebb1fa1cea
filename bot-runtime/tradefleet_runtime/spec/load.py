"""Reading a manifest from YAML, with one clear error per wrong field.

A manifest is read by people's tools, by CI and by the operator, so no input may crash the
loader, hang it or slip through: every refusal is a ``SpecError`` naming the field (or, for a
document that cannot be parsed at all, its line and column).

Manifest limits
---------------

=========================  ===============  ====================================================
limit                      value            why
=========================  ===============  ====================================================
file size                  256 KiB          a manifest is about 2 KiB; read bounded, so a
                                            device (``/dev/zero``) cannot hang the loader
nesting depth              32 levels        ``MAX_DEPTH``: deep nesting overflowed the stack
values in the document     20,000           ``MAX_VALUES``, aliases counted once per use (an
                                            alias bomb expands to billions)
characters in a number     40               ``MAX_NUMBER_CHARS``: Python refuses int() of
                                            4,300 digits; no real value needs 40
integers                   64-bit           what Kubernetes and SQLite store
floats                     finite           JSON has no inf/nan (``.inf`` capital is refused)
``spec.market.timeframe``  at most 366 days ``timeframes.MAX_TIMEFRAME_S``
=========================  ===============  ====================================================

And: a key may appear once per mapping (YAML parsers, kubectl included, silently keep the
last); keys are strings; only JSON values (no ``!!binary``, ``!!set``); dates stay strings (as
kubectl sends them); ``true``/``false`` are never read as numbers (``spec.values``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tradefleet_runtime.errors import FieldError, SpecError, join_path
from tradefleet_runtime.spec.model import BotManifest
from tradefleet_runtime.spec.values import MAX_DEPTH, MAX_VALUES, document_problems

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_NUMBER_CHARS = 40

_FIELD_LINE = re.compile(r"^(spec[\w.\[\]]*|metadata[\w.\[\]]*): (.+)$")
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


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
    # Bounded JSON values first (the operator hands over JSON, the loader YAML): the models
    # below and the config hash may then walk the document without a depth or size surprise.
    problems = document_problems(document)
    if problems:
        raise SpecError(problems, source)
    try:
        return BotManifest.model_validate(document)
    except ValidationError as error:
        raise SpecError(validation_errors(error), source) from None


# -- YAML ------------------------------------------------------------------------------------


class _NodeError(Exception):
    """A problem found while composing or checking YAML nodes, with its field path."""

    def __init__(self, error: FieldError) -> None:
        super().__init__(str(error))
        self.error = error


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


class _ManifestLoader(yaml.SafeLoader):
    """``SafeLoader`` that bounds nesting while composing and keeps dates as strings."""

    # Dates stay strings, as kubectl sends them (JSON has no dates): a `start: 2020-01-01`
    # param is then the string its field wants, and `2020-13-45` no longer crashes.
    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML's own per-class table)
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str | int] = []

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        # The composer recurses once per level: refuse depth before Python's stack runs out.
        if parent is None:
            part: str | int | None = None
        elif isinstance(index, int):
            part = index
        elif isinstance(index, ScalarNode):
            part = str(index.value)
        else:
            part = "(key)" if index is None else "(complex key)"
        if part is not None:
            self._path.append(part)
        try:
            if len(self._path) > MAX_DEPTH and not self.check_event(yaml.ScalarEvent):
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _NodeError(
                    FieldError(
                        join_path(self._path),
                        f"line {event.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels",
                    )
                )
            node: Node | None = super().compose_node(parent, index)
            assert node is not None  # the composer returns None only at a stream's end
            return node
        finally:
            if part is not None:
                self._path.pop()


def _check_nodes(root: Node, loader: _ManifestLoader) -> None:
    """Refuse duplicate keys, overlong numbers and unreadable scalars, naming field and line.

    Iterative, and each node once (an alias reuses a node; a recursive alias is a cycle).
    """
    seen: set[int] = set()
    stack: list[tuple[Node, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            if node.tag in (_INT_TAG, _FLOAT_TAG) and len(node.value) > MAX_NUMBER_CHARS:
                raise _NodeError(
                    FieldError(
                        join_path(path) or "(manifest)",
                        f"line {_line(node)}: a number of {len(node.value):,} characters "
                        f"(at most {MAX_NUMBER_CHARS})",
                    )
                )
            if node.tag != _STR_TAG:
                try:
                    # Built here (the constructor keeps it for the document) so that an
                    # explicit tag that does not fit (`!!int abc`) is named by its field.
                    loader.construct_object(node)
                except (
                    yaml.YAMLError,
                    ValueError,
                    TypeError,
                    OverflowError,
                    # PyYAML's own constructors: `!!timestamp abc` (no regex match) and
                    # `!!bool maybe` (no such word) fail with these, not a YAMLError.
                    AttributeError,
                    KeyError,
                ) as error:
                    if isinstance(error, (AttributeError, KeyError)):
                        problem = f"{str(node.value)[:40]!r} is not one"
                    else:
                        problem = getattr(error, "problem", None) or str(error)
                    raise _NodeError(
                        FieldError(
                            join_path(path) or "(manifest)",
                            f"line {_line(node)}: cannot read {node.tag.rsplit(':', 1)[-1]} "
                            f"value: {problem}",
                        )
                    ) from None
        elif isinstance(node, SequenceNode):
            stack.extend((item, (*path, index)) for index, item in enumerate(node.value))
        elif isinstance(node, MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    if key.tag == _MERGE_TAG:
                        stack.append((value, path))
                        continue
                    name = str(key.value)
                    first = first_line.get((key.tag, name))
                    if first is not None:
                        raise _NodeError(
                            FieldError(
                                join_path([*path, name]),
                                f"line {_line(key)}: duplicate key (first at line {first}); "
                                "a key may appear once in a mapping",
                            )
                        )
                    first_line[(key.tag, name)] = _line(key)
                    stack.append((value, (*path, name)))
                else:
                    stack.append((key, (*path, "(complex key)")))
                    stack.append((value, (*path, "(complex key)")))


def _read_bounded(file: Path) -> str:
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        raise SpecError(
            [FieldError("(file)", f"cannot read: {error.strerror or error}")], str(file)
        ) from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SpecError(
            [
                FieldError(
                    "(file)",
                    f"larger than {MAX_DOCUMENT_BYTES // 1024} KiB: not a manifest "
                    "(a manifest is a few KiB)",
                )
            ],
            str(file),
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(
            [FieldError("(file)", f"not UTF-8 text (byte {error.start + 1})")], str(file)
        ) from None


def parse_yaml(text: str, source: str = "") -> list[Any]:
    """The non-empty documents of a YAML text, checked and bounded, or ``SpecError``."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise SpecError(
            [FieldError("(file)", f"larger than {MAX_DOCUMENT_BYTES // 1024} KiB")], source
        )
    loader = _ManifestLoader(text)
    documents: list[Any] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            _check_nodes(node, loader)
            document = loader.construct_document(node)
            if document is not None:
                documents.append(document)
    except _NodeError as error:
        raise SpecError([error.error], source) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise SpecError([FieldError("(yaml)", f"{where}{problem}")], source) from None
    except (ValueError, TypeError, OverflowError, AttributeError, KeyError) as error:
        # A value whose explicit tag does not fit it (`!!int abc`, `!!timestamp abc`).
        raise SpecError([FieldError("(yaml)", f"cannot read a value: {error}")], source) from None
    finally:
        loader.dispose()
    return documents


def load_manifest(path: str | Path) -> BotManifest:
    """Load a TradingBot manifest file (one YAML document)."""
    file = Path(path)
    documents = parse_yaml(_read_bounded(file), str(file))
    if len(documents) != 1:
        raise SpecError(
            [FieldError("(file)", f"expected exactly one YAML document, found {len(documents)}")],
            str(file),
        )
    return parse_manifest(documents[0], str(file))


__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_NUMBER_CHARS",
    "MAX_VALUES",
    "load_manifest",
    "parse_manifest",
    "parse_yaml",
    "validation_errors",
]
