"""SQL lives only in the journal package: the engine and the service speak to it by methods."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    ROOT / "bot-runtime" / "tradefleet_runtime",
    ROOT / "plugins" / "tradefleet_plugins",
    ROOT / "operator" / "tradefleet_operator",
]
JOURNAL = ROOT / "bot-runtime" / "tradefleet_runtime" / "journal"
SQL = re.compile(
    r"^\s*(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
    r"CREATE\s+(TABLE|INDEX|VIEW)|PRAGMA\s)",
    re.DOTALL,
)


def sql_outside_the_journal() -> list[str]:
    found = []
    for package in PACKAGES:
        for source in sorted(package.rglob("*.py")):
            if JOURNAL in source.parents:
                continue
            tree = ast.parse(source.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                    module = node.module if isinstance(node, ast.ImportFrom) else None
                    if "sqlite3" in names or module == "sqlite3":
                        found.append(f"{source.relative_to(ROOT)}:{node.lineno} imports sqlite3")
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and SQL.match(node.value)
                ):
                    found.append(f"{source.relative_to(ROOT)}:{node.lineno}: {node.value[:40]!r}")
                if isinstance(node, ast.Attribute) and node.attr == "query":
                    found.append(f"{source.relative_to(ROOT)}:{node.lineno} calls .query()")
    return found


def test_sql_appears_only_under_journal() -> None:
    assert sql_outside_the_journal() == []


def test_the_check_sees_a_planted_query() -> None:
    assert SQL.match("SELECT kind FROM events")
    assert SQL.match("INSERT OR IGNORE INTO fills VALUES (?)")
    assert not SQL.match("select a strategy from the list")
