"""Journal schema versions: what a file says it is, and bringing an older one up to date.

A journal is opened by whatever tradefleet release a pod runs, so a file may be older or newer
than the code. An older one is migrated in one transaction before anything reads it; one this
release cannot read (too old to migrate, or written by a newer release) is refused with a
message naming the file and both versions — never silently misread.

History:
- 1: the first skeleton (order status columns in ``orders``, an ``equity`` row per bar). No
  released bot ran it; refused.
- 2: ``order_updates`` log and packed ``equity_chunks`` (release 0.1.0).
- 3: ``signals`` (idempotency of external signals). 2 → 3 only adds the table.
- 4: ``trades.entry_reason``/``exit_reason`` (why a trade opened and ended) and
  ``run_symbols`` (first open and last close per symbol: the report's buy-and-hold benchmark).
  3 → 4 adds the columns (``ALTER TABLE``; old trades get '') and the table.
- 5: ``orders.reference_price``, the price an order was decided at (its own price, else the
  mark): what a fill's slippage is measured against, so execution quality survives a restart.
  4 → 5 adds the column (old orders get NULL: not measured).
- 6: ``signals.digest``, a digest of what each signal asked for: a signal_id used again for a
  different signal is refused instead of answered with the first one's outcome. 5 → 6 adds the
  column (old signals get '': not compared).
- 7: each bot's identity (``meta`` ``identity:<bot>``), which its orders' client ids derive
  from. No table changes; the version says a release before it must not open the file: it
  would take the bot's own orders working at the venue for another program's and leave them.
- 8: ``cash_flows``, the venue's payments outside fills (perpetual futures' funding),
  ``trades.funding``, a trade's share of them, and ``risk_decisions.code``, each decision's
  fixed word (what the metrics count it by). 7 → 8 adds the table and the columns (old trades
  get 0, old decisions ''); the version says a release before it must not open the file: it
  would rebuild the account without the payments, its cash off by every one. The step also
  records when it ran (``meta`` ``cash_flows_from``): the releases before booked no payment,
  and a restart catches up only those made from then on (``session.cash_flows_since``), not
  every payment since the bot's first fill in one jump that a daily loss limit would see.
"""

from __future__ import annotations

import re
import sqlite3
import time

from tradefleet_runtime.errors import JournalError

CURRENT = 8
# The first version whose release booked the venue's payments outside fills (funding, swaps).
CASH_FLOWS_BOOKED = 8
OLDEST_MIGRATABLE = 2

# Statements that change existing tables, by the version they lead to. New tables come from the
# schema script (CREATE ... IF NOT EXISTS), which runs first.
_STEPS: dict[int, tuple[str, ...]] = {
    4: (
        "ALTER TABLE trades ADD COLUMN entry_reason TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE trades ADD COLUMN exit_reason TEXT NOT NULL DEFAULT ''",
    ),
    5: ("ALTER TABLE orders ADD COLUMN reference_price REAL",),
    6: ("ALTER TABLE signals ADD COLUMN digest TEXT NOT NULL DEFAULT ''",),
    8: (
        "ALTER TABLE trades ADD COLUMN funding REAL NOT NULL DEFAULT 0",
        "ALTER TABLE risk_decisions ADD COLUMN code TEXT NOT NULL DEFAULT ''",
    ),
}
_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (\w+) .*")


def stored_version(db: sqlite3.Connection) -> int | None:
    """The version a file records; None for an empty (new) file."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None
    if "meta" not in tables:
        raise JournalError("it has tables but no meta table: not a tradefleet journal")
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise JournalError("it records no schema_version: not a tradefleet journal")
    try:
        return int(row[0])
    except ValueError:
        raise JournalError(f"its schema_version {row[0]!r} is not a number") from None


def check_openable(version: int | None) -> None:
    """Raise ``JournalError`` when a file of ``version`` cannot be read by this release."""
    if version is None or OLDEST_MIGRATABLE <= version <= CURRENT:
        return
    if version > CURRENT:
        raise JournalError(
            f"it was written by a newer tradefleet (schema version {version}; this release "
            f"reads up to {CURRENT}): upgrade tradefleet, or start a new journal"
        )
    raise JournalError(
        f"its schema version {version} is older than this release can migrate (oldest "
        f"{OLDEST_MIGRATABLE}): move the file aside to start a new journal"
    )


def migrate(db: sqlite3.Connection, version: int, schema: str) -> None:
    """Bring a file from ``version`` to ``CURRENT`` in one transaction.

    The schema script creates the tables a step adds; ``_STEPS`` changes existing ones,
    version by version (a version 2 file takes every step after 2).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _statements(schema):
            db.execute(statement)
        for target in range(version + 1, CURRENT + 1):
            for statement in _STEPS.get(target, ()):
                if not _adds_a_column_it_has(db, statement):
                    db.execute(statement)
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(CURRENT),)
        )
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('migrated_from', ?)", (str(version),)
        )
        if version < CASH_FLOWS_BOOKED:
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('cash_flows_from', ?)",
                (str(int(time.time())),),
            )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _adds_a_column_it_has(db: sqlite3.Connection, statement: str) -> bool:
    """Whether ``statement`` adds a column its table has already: a table newer than the file
    (``signals`` in a version 2 file) was just made by the schema script, with every column."""
    match = _ADD_COLUMN.fullmatch(statement)
    if match is None:
        return False
    table, column = match.groups()
    return any(row[1] == column for row in db.execute(f"PRAGMA table_info({table})"))


def _statements(script: str) -> list[str]:
    """The statements of a schema script (it has no semicolons inside statements)."""
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in body.split(";") if part.strip()]
