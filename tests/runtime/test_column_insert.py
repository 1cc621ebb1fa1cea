"""``journal/column_insert.py``: rows inserted from columns are the rows a plain insert of the
same values writes — values, SQLite types and order — whatever the row count (whole statements,
a tail, several slices) and whichever columns are the same for every row."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

import pytest

from tradefleet_runtime.journal.column_insert import ROWS_PER_INSERT, Same, insert_columns

TABLE = (
    "CREATE TABLE t (id INTEGER PRIMARY KEY, run TEXT, name TEXT, side TEXT, qty REAL,"
    " ts INTEGER, note TEXT, venue TEXT)"
)
NAMES = ("run", "name", "side", "qty", "ts", "note", "venue")


def _columns(count: int, seed: int) -> dict[str, Same | list[Any]]:
    rng = random.Random(seed)
    tail = max(count - 3, 0)  # the last rows differ: a slice may be all one value, or not
    return {
        "run": Same("20261203T120000-abcdef"),
        "name": [f"tf{n:08x}" for n in range(count)],
        "side": ["buy" if n < tail else rng.choice(("buy", "sell")) for n in range(count)],
        "qty": [rng.choice((1.0, -0.0, 0.1 + 0.2, 1e-300, 123456789.123)) for _ in range(count)],
        "ts": [1_500_000_000 + 3600 * n for n in range(count)],
        "note": Same(None),
        "venue": [None if n < tail else f"paper-{n}" for n in range(count)],
    }


def _rows(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, run, name, side, qty, ts, note, venue, typeof(qty), typeof(ts),"
        " typeof(note), typeof(venue) FROM t ORDER BY id"
    ).fetchall()


@pytest.mark.parametrize(
    "count", [1, ROWS_PER_INSERT - 1, ROWS_PER_INSERT, ROWS_PER_INSERT + 1, 4096, 4096 * 2 + 69]
)
def test_rows_from_columns_equal_rows_inserted_one_by_one(count: int) -> None:
    columns = _columns(count, seed=count)
    plain, packed = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    for db in (plain, packed):
        db.execute(TABLE)
    rows = [
        tuple(v.value if isinstance(v, Same) else v[n] for v in columns.values())
        for n in range(count)
    ]
    plain.executemany(f"INSERT INTO t ({', '.join(NAMES)}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    insert_columns(packed, "INSERT", "t", columns, count)
    expected, got = _rows(plain), _rows(packed)
    assert len(got) == count
    assert got == expected
    # -0.0 stays -0.0 (equal to 0.0 in Python, so compare the bits too).
    signs = [str(row[4]) for row in got]
    assert signs == [str(row[4]) for row in expected]


def test_a_conflict_clause_is_kept() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE k (a TEXT PRIMARY KEY, b REAL)")
    db.execute("INSERT INTO k VALUES ('x', 1.0)")
    insert_columns(db, "INSERT OR IGNORE", "k", {"a": ["x", "y"], "b": [2.0, 3.0]}, 2)
    assert db.execute("SELECT a, b FROM k ORDER BY a").fetchall() == [("x", 1.0), ("y", 3.0)]
    with pytest.raises(sqlite3.IntegrityError):
        insert_columns(db, "INSERT", "k", {"a": ["y"], "b": [4.0]}, 1)


def test_nothing_to_insert_writes_nothing() -> None:
    db = sqlite3.connect(":memory:")
    db.execute(TABLE)
    insert_columns(db, "INSERT", "t", _columns(0, seed=1), 0)
    assert _rows(db) == []
