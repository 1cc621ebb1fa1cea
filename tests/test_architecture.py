"""The dependency rules of ARCHITECTURE.md, enforced.

`.importlinter` holds the contracts import-linter can say (run by `make lint` and here); this
file adds the rest — plugins import only the SDK, no import cycles (lazy imports included), and
what a backtest loads — and shows that a planted violation fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PACKAGES = ("tradefleet_runtime", "tradefleet_plugins", "tradefleet_operator")
SOURCES = {
    "tradefleet_runtime": ROOT / "bot-runtime",
    "tradefleet_plugins": ROOT / "plugins",
    "tradefleet_operator": ROOT / "operator",
}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # Lazy (function-level) imports are in the graph too; TYPE_CHECKING-only ones are not.
    return grimp.build_graph(
        *PACKAGES, include_external_packages=True, exclude_type_checking_imports=True
    )


def _lint_imports(pythonpath: str | None = None) -> subprocess.CompletedProcess[str]:
    env = None
    if pythonpath is not None:
        import os

        env = {**os.environ, "PYTHONPATH": pythonpath}
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache", str(ROOT / ".importlinter")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def test_import_contracts_hold() -> None:
    done = _lint_imports()
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_planted_violation_breaks_the_contracts(tmp_path: Path) -> None:
    """A copy of the packages where a pure risk rule opens a database: lint-imports fails."""
    for package, parent in SOURCES.items():
        shutil.copytree(parent / package, tmp_path / package)
    rule = tmp_path / "tradefleet_runtime" / "engine" / "risk_chain.py"
    rule.write_text(rule.read_text() + "\nimport sqlite3  # planted\n")
    done = _lint_imports(str(tmp_path))
    assert done.returncode != 0
    assert "pure decision modules import no I/O" in done.stdout
    assert "tradefleet_runtime.engine.risk_chain -> sqlite3" in done.stdout


def test_plugins_import_only_the_sdk(graph: grimp.ImportGraph) -> None:
    sdk = "tradefleet_runtime.sdk"
    offending = sorted(
        (importer, imported)
        for importer in graph.find_descendants("tradefleet_plugins") | {"tradefleet_plugins"}
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.startswith("tradefleet_runtime")
        and imported != sdk
        and not imported.startswith(sdk + ".")
    )
    assert offending == []


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components (Tarjan) of our modules with more than one member."""
    ours = sorted(m for m in graph.modules if m.split(".")[0] in PACKAGES)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(module: str) -> None:
        nonlocal counter
        index[module] = low[module] = counter
        counter += 1
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.split(".")[0] not in PACKAGES:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in ours:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles_lazy_imports_included(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    planted = grimp.ImportGraph()
    for name in ("tradefleet_runtime.a", "tradefleet_runtime.b", "tradefleet_runtime.c"):
        planted.add_module(name)
    planted.add_import(importer="tradefleet_runtime.a", imported="tradefleet_runtime.b")
    planted.add_import(importer="tradefleet_runtime.b", imported="tradefleet_runtime.a")
    planted.add_import(importer="tradefleet_runtime.c", imported="tradefleet_runtime.a")
    assert _cycles(planted) == [["tradefleet_runtime.a", "tradefleet_runtime.b"]]


HEAVY = ("grpc", "aiohttp", "prometheus_client", "kopf", "opentelemetry.sdk", "ccxt")


@pytest.mark.parametrize(
    "argv",
    [
        ["plugins", "list", "--json"],
        ["backtest", "examples/bots/eurusd-ema-cross.yaml", "--json", "--journal", "{tmp}"],
    ],
    ids=["plugins-list", "backtest"],
)
def test_backtest_and_plugins_list_load_no_service(argv: list[str], tmp_path: Path) -> None:
    args = [a.replace("{tmp}", str(tmp_path / "j.sqlite")) for a in argv]
    probe = textwrap.dedent(
        f"""
        import sys, contextlib, io
        from tradefleet_runtime import cli
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli.main({args!r})
        assert code == 0, code
        loaded = [m for m in {HEAVY!r} if m in sys.modules]
        print(",".join(loaded))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{argv[0]} loaded: {done.stdout.strip()}"
