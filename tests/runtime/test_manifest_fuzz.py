"""Fuzzing the manifest loader: whatever the input, a clean result or a ``SpecError``.

Starts from the example manifests and mutates them (values replaced by random JSON/YAML values,
keys deleted and added, deep nesting, huge numbers, odd strings, odd YAML lines), then loads the
text as the CLI does. Anything but success or a ``SpecError`` naming its fields fails, and so
does an example that takes longer than a few seconds (a hang).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import load_manifest, parse_manifest
from tradefleet_runtime.spec.checks import config_hash, validate_plugins

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "bots").glob("*.yaml")) + sorted(
    (ROOT / "manifests" / "examples").glob("*.yaml")
)
BASES = [yaml.safe_load(path.read_text()) for path in EXAMPLES]
REGISTRY = PluginRegistry.discover()
# A loader that never ends (/dev/zero, a FIFO) fails its example instead of hanging the suite.
# The slowest example takes about 0.4 s alone; on 2 cores shared with the e2e suites' serve
# processes one took over 5 s, and the shrink of that "failure" ran into the test's timeout.
SECONDS_PER_EXAMPLE = 20.0
TRADEFLEET = str(Path(sys.executable).parent / "tradefleet")

# A placeholder replaced by a run of digits after the document is written out: no YAML or JSON
# writer would write a 5,000-digit number, but a person can.
BIG = "BIGNUMBER"


@contextmanager
def _within(seconds: float) -> Iterator[None]:
    """Fail the example (instead of hanging the suite) when it runs longer than ``seconds``."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"the loader still runs after {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- values and mutations --------------------------------------------------------------------

ODD_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\t\n",
        "-",
        "~",
        "null",
        "true",
        "yes",
        "on",
        ".inf",
        ".nan",
        "1e999",
        "0x1F",
        "0o17",
        "1_000",
        "190:20:30",
        "2017-13-45",
        "2017-03-01",
        "99999999999999999999d",
        "1h",
        "0h",
        "M0",
        "/dev/zero",
        "/",
        "../../../../etc/passwd",
        "*alias",
        "&anchor",
        "!!python/object:os.system",
        "<<",
        "{a: 1}",
        "[1, 2",
        "é€😀",
        "\ud800",
        "a" * 5000,
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(),
    st.text(max_size=20),
    ODD_STRINGS,
    st.just(BIG),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(document: Any) -> list[tuple[Any, ...]]:
    """Paths into ``document`` (the root included), down to 40 levels (iterative)."""
    found: list[tuple[Any, ...]] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        found.append(path)
        if len(path) >= 40:
            continue
        if isinstance(value, dict):
            stack.extend((item, (*path, key)) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
    return found


def _nested(depth: int, leaf: Any, as_dict: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value} if as_dict else [value]
    return value


@st.composite
def mutations(draw: st.DrawFn, document: Any, big: Any = BIG) -> Any:
    """Apply one to four random edits to a copy of ``document``."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["replace", "delete", "add", "nest", "big", "odd"]))
        if not path:
            if kind == "replace":
                document = draw(VALUES)
            continue
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if kind == "delete":
            del parent[last]
        elif kind == "add" and isinstance(parent[last], dict):
            parent[last][draw(st.text(max_size=12) | ODD_STRINGS)] = draw(VALUES)
        elif kind == "nest":
            depth = draw(st.sampled_from([1, 5, 31, 33, 200, 600]))
            parent[last] = _nested(depth, parent[last], draw(st.booleans()))
        elif kind == "big":
            parent[last] = big
        elif kind == "odd":
            parent[last] = draw(ODD_STRINGS)
        else:
            parent[last] = draw(VALUES)
    return document


ODD_LINES = st.sampled_from(
    [
        "  mode: live",
        "spec: {}",
        "kind: TradingBot",
        "x: !!int abc",
        "x: !!binary aGk=",
        "x: !!set {a, b}",
        "x: !!timestamp 2017-13-45",
        "x: !!timestamp abc",
        "x: !!bool maybe",
        "x: !!python/name:os.system",
        "x: &a [*a]",
        "<<: *nope",
        "? [a, b]\n: 1",
        "\tmode: paper",
        "---",
        "%YAML 1.1\n---",
        "- 1",
        "'unterminated",
        "x: " + "[" * 3000 + "]" * 3000,
        "x: " + "9" * 5000,
        "x: 1.0e+99999",
    ]
)


def _write(document: Any) -> str:
    try:
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    except (RecursionError, yaml.YAMLError):
        text = json.dumps(document)  # JSON is YAML too, and its writer handles deep nesting
    return text.replace(BIG, "9" * 5000)


def _check(text: str, file: Path) -> None:
    """Load ``text`` as the CLI does; only success or a ``SpecError`` naming fields."""
    try:
        file.write_text(text, encoding="utf-8", errors="surrogatepass")
    except UnicodeEncodeError:
        return
    try:
        with _within(SECONDS_PER_EXAMPLE):
            manifest = load_manifest(file)
            problems = validate_plugins(manifest, REGISTRY)
            if problems:
                raise SpecError(problems, str(file))
            config_hash(manifest)
            assemble(manifest, REGISTRY, file.parent, str(file))
    except SpecError as error:
        assert error.errors
        assert all(e.field and e.message for e in error.errors), error


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_manifests_load_or_are_refused_by_field(
    data: st.DataObject, tmp_path: Path
) -> None:
    base = data.draw(st.sampled_from(BASES))
    document = data.draw(mutations(base))
    text = _write(document)
    if data.draw(st.booleans()):
        lines = text.splitlines()
        at = data.draw(st.integers(0, len(lines)))
        lines.insert(at, data.draw(ODD_LINES))
        text = "\n".join(lines) + "\n"
    _check(text, tmp_path / "bot.yaml")


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.data())
def test_mutated_documents_parse_or_are_refused_by_field(data: st.DataObject) -> None:
    # The operator's path: a parsed JSON object, no YAML (so huge ints and inf are real ones).
    # 10**5000 - 1 is built by arithmetic: int() of its 5,000 digits is refused.
    document = data.draw(mutations(data.draw(st.sampled_from(BASES)), big=10**5000 - 1))
    try:
        with _within(SECONDS_PER_EXAMPLE):
            manifest = parse_manifest(document)
            validate_plugins(manifest, REGISTRY)
            config_hash(manifest)
    except SpecError as error:
        assert error.errors and all(e.field and e.message for e in error.errors), error


# -- the CLI on the worst inputs -------------------------------------------------------------

_BASE_TEXT = (ROOT / "examples" / "bots" / "eurusd-ema-cross.yaml").read_text()
WORST = {
    "deep-nesting": _BASE_TEXT.replace(
        "allow_short: true", "allow_short: true, x: " + "[" * 5000 + "]" * 5000
    ),
    "huge-integer": _BASE_TEXT.replace("initial: 100000", "initial: " + "9" * 5000),
    "huge-timeframe": _BASE_TEXT.replace("timeframe: 1h", "timeframe: 99999999999999999999d"),
    "dev-zero-data": _BASE_TEXT.replace("../../data/EURUSD_H1_2017.csv", "/dev/zero"),
    "duplicate-key": _BASE_TEXT.replace("mode: backtest", "mode: backtest\n  mode: live"),
    "dev-zero-manifest": "",
}
EXPECTED_FIELD = {
    "deep-nesting": "spec.strategy.params.x",
    "huge-integer": "spec.capital.initial",
    "huge-timeframe": "spec.market.timeframe",
    "dev-zero-data": "spec.data.params.path",
    "duplicate-key": "spec.mode",
    "dev-zero-manifest": "larger than 256 KiB",
}


@pytest.mark.parametrize("case", sorted(WORST))
def test_cli_refuses_the_worst_inputs_with_exit_2_and_no_traceback(
    case: str, tmp_path: Path
) -> None:
    if case == "dev-zero-manifest":
        manifest = "/dev/zero"
    else:
        manifest = str(tmp_path / "bot.yaml")
        Path(manifest).write_text(WORST[case])
    result = subprocess.run(
        [TRADEFLEET, "backtest", manifest, "--journal", str(tmp_path / "j.sqlite")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert EXPECTED_FIELD[case] in result.stderr
