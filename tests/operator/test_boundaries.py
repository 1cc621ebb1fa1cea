"""What the operator may import from the runtime, and that its modules form no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "tradefleet_operator"

#: The runtime's public surface for the operator: the spec model, plugin registry (admission),
#: errors, timeframes, tracing, the generated gRPC stubs and the shared file/env names.
ALLOWED = (
    "tradefleet_runtime.spec",
    "tradefleet_runtime.plugins",
    "tradefleet_runtime.errors",
    "tradefleet_runtime.timeframes",
    "tradefleet_runtime.tracing",
    "tradefleet_runtime.api.v1",
    "tradefleet_runtime.api.conventions",
    "tradefleet_runtime.contracts",  # PluginParams, the type of a plugin's validated params
    "tradefleet_runtime.capabilities",  # admission asks a broker that declares knows-symbols
)
FORBIDDEN = (
    "tradefleet_runtime.service",
    "tradefleet_runtime.engine",
    "tradefleet_runtime.journal",
    "tradefleet_runtime.session",
    "tradefleet_plugins",
)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(module, line, at module level) of every import in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node.lineno, id(node) in top))
    return found


def _line_of(name: str, text: str) -> int:
    lines = (PACKAGE / name).read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def _inside(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_operator_imports_only_the_runtimes_public_surface() -> None:
    wrong = [
        f"{path.name}:{line}: {module}"
        for path in sorted(PACKAGE.glob("*.py"))
        for module, line, _ in _imports(path)
        if module.startswith(("tradefleet_runtime", "tradefleet_plugins"))
        and not _inside(module, ALLOWED)
    ]
    assert wrong == []


def test_no_lazy_imports_of_the_operators_own_modules() -> None:
    """A function-level import of a sibling module is how a cycle hides; there is none.

    The one exception is the entry point: ``main`` imports the handlers only after it has set
    the status interval they read at import (kopf registers the timer then)."""
    lazy = [
        f"{path.name}:{line}: {module}"
        for path in sorted(PACKAGE.glob("*.py"))
        for module, line, top in _imports(path)
        if module.startswith("tradefleet_operator") and not top
    ]
    assert lazy == [
        "main.py:"
        + str(_line_of("main.py", "from tradefleet_operator import handlers"))
        + ": tradefleet_operator"
    ]


def _own_imports(path: Path) -> set[str]:
    """The sibling modules one module imports (``from tradefleet_operator import x`` too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "tradefleet_operator":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "tradefleet_operator."
        ):
            found.add(str(node.module).split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith("tradefleet_operator.")
            }
    return found


def test_the_modules_form_no_import_cycle() -> None:
    graph = {path.stem: _own_imports(path) for path in PACKAGE.glob("*.py")}
    done: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, " -> ".join((*trail, module))
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, (*trail, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_loading_the_operator_loads_no_runtime_internals() -> None:
    names = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    code = "\n".join(
        [
            "import importlib, sys",
            f"for name in {names!r}:",
            "    importlib.import_module('tradefleet_operator.' + name)",
            f"bad = [m for m in sys.modules if m.startswith({FORBIDDEN!r})]",
            "assert not bad, bad",
        ]
    )
    subprocess.run([sys.executable, "-c", code], check=True)
