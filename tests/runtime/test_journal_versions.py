"""A journal's schema version is checked on open: older files are migrated, others refused.

`fixtures/journal-v2-paper.sqlite` was written by release 0.1.0's own writer (schema version 2):
a paper bot with an open position, its bracket working and a resting limit order.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tradefleet_runtime.errors import JournalError
from tradefleet_runtime.journal import Journal, versions

FIXTURE = Path(__file__).parent / "fixtures" / "journal-v2-paper.sqlite"


def test_a_version_2_journal_is_migrated_and_read_the_same(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    shutil.copy(FIXTURE, path)
    old = sqlite3.connect(path)
    (run,) = old.execute("SELECT run_id FROM runs").fetchone()
    # A closed trade and a veto as release 0.1.0 journaled them: no funding, no code.
    old.execute(
        "INSERT INTO trades VALUES (?, 0, 'EURUSD', 1, 1000, 1, 2, 1.05, 1.06, 10, 0.5)", (run,)
    )
    old.execute(
        "INSERT INTO risk_decisions (run_id, ts, plugin, symbol, side, action, reason)"
        " VALUES (?, 1, 'circuit-breaker', 'EURUSD', 'buy', 'veto', 'daily loss')",
        (run,),
    )
    old.commit()
    old.close()
    journal = Journal(path)
    (trade,) = journal.trades(run)
    assert (trade.funding, trade.net_pnl, trade.exit_reason) == (0.0, 9.5, "")
    assert journal.query("SELECT code FROM risk_decisions") == [("",)]
    meta = dict(journal.query("SELECT key, value FROM meta"))
    assert meta.pop("cash_flows_from").isdigit()  # when it began to book payments
    assert meta == {"schema_version": str(versions.CURRENT), "migrated_from": "2"}
    carried = journal.carried_state("bot")
    assert carried is not None and carried.runs == 1
    assert sum(f.quantity for f in carried.fills) == 5
    working = sorted(o.client_order_id[-3:] for o, _ in carried.working)
    assert working == ["-sl", "-tp", "a00"]
    assert len(carried.known_order_ids) == 4 and carried.last_bar_ts > 0
    # Its orders have no reference price (schema 5): their fills are not measured.
    assert journal.query("SELECT COUNT(*) FROM orders WHERE reference_price IS NULL") == [(4,)]
    assert journal.measured_fills("bot", 100) == []
    # The migrated file takes the new kinds of rows.
    journal.start_run(
        run_id="run-2",
        bot="bot",
        mode="paper",
        currency="USD",
        initial_capital=10_000.0,
        timeframe_s=3600,
        config_hash="x",
        manifest={},
    )
    journal.record_signal("sig-1", 0, True, "", "tf1")
    assert journal.signal_outcome("sig-1") == (True, "", "tf1")
    journal.close()
    # Opening it again does not migrate again.
    again = Journal(path)
    assert dict(again.query("SELECT key, value FROM meta"))["schema_version"] == str(
        versions.CURRENT
    )
    again.close()


def _with_version(tmp_path: Path, version: str) -> Path:
    path = tmp_path / f"v{version}.sqlite"
    shutil.copy(FIXTURE, path)
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    db.commit()
    db.close()
    return path


def test_a_journal_from_a_newer_release_is_refused_naming_file_and_versions(
    tmp_path: Path,
) -> None:
    path = _with_version(tmp_path, "99")
    with pytest.raises(JournalError) as refused:
        Journal(path)
    message = str(refused.value)
    assert str(path) in message and "99" in message and str(versions.CURRENT) in message
    assert (
        dict(sqlite3.connect(path).execute("SELECT key, value FROM meta"))["schema_version"] == "99"
    )  # untouched


def test_a_version_1_journal_is_refused_not_misread(tmp_path: Path) -> None:
    path = _with_version(tmp_path, "1")
    with pytest.raises(JournalError, match=r"schema version 1 is older than this release"):
        Journal(path)


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (x)")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="not a tradefleet journal"):
        Journal(path)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(JournalError, match=str(garbage)):
        Journal(garbage)


def test_read_only_journal_gives_a_clear_error(tmp_path: Path) -> None:
    """A journal the process may only read is refused at open, naming the file and the cause,
    instead of a raw ``sqlite3.OperationalError`` traceback at the first fill.

    Tests run as root here, and root writes any file: the child drops the capabilities that let
    it (``setpriv``), as an unprivileged pod user would be."""
    path = tmp_path / "ro.sqlite"
    Journal(path).close()
    path.chmod(stat.S_IRUSR)
    probe = (
        "import sys\n"
        "from tradefleet_runtime.errors import JournalError\n"
        "from tradefleet_runtime.journal import Journal\n"
        "try:\n"
        f"    Journal({str(path)!r})\n"
        "except JournalError as error:\n"
        "    print(error)\n"
        "    sys.exit(3)\n"
    )
    command = [sys.executable, "-c", probe]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to drop root's file capabilities")
        drop = "-dac_override,-dac_read_search,-fowner"
        command = ["setpriv", "--bounding-set", drop, *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert str(path) in done.stdout and "read-only" in done.stdout
    assert "Traceback" not in done.stderr


def test_a_journal_path_that_is_a_folder_or_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="not a regular file"):
        Journal(tmp_path)
    with pytest.raises(JournalError, match="not a regular file"):
        Journal("/dev/zero")


def test_unwritable_folder_gives_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalError, match=rf"{blocker}"):
        Journal(blocker / "journal.sqlite")  # its "folder" is a file


def test_a_migration_is_said_in_the_log_naming_both_versions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One way: the release before can no longer open the file, so a person is told. From 7
    the step adds ``cash_flows`` (funding booked into the account: a release before it would
    rebuild the account without them, its cash off by every payment)."""
    path = _with_version(tmp_path, "7")
    with sqlite3.connect(path) as db:  # a version 7 file has what version 5 added
        db.execute("ALTER TABLE orders ADD COLUMN reference_price REAL")
    assert (
        not sqlite3.connect(path)
        .execute("SELECT name FROM sqlite_master WHERE name = 'cash_flows'")
        .fetchall()
    )
    with caplog.at_level("WARNING", logger="tradefleet_runtime.journal.sqlite"):
        journal = Journal(path)
    carried = journal.carried_state("bot")
    assert carried is not None and carried.cash_flows == []  # the new table is read
    journal.close()
    assert versions.CURRENT == 8
    (said,) = [r.getMessage() for r in caplog.records if "migrated" in r.getMessage()]
    assert said == (
        f"journal {path}: migrated from schema version 7 to 8; releases that read up to "
        "version 7 can no longer open it"
    )
    meta = dict(sqlite3.connect(path).execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == "8" and meta["migrated_from"] == "7"
    # When the journal began to book payments: a restart catches up none from before it.
    assert carried.cash_flows_from == int(meta["cash_flows_from"])
    assert abs(carried.cash_flows_from - time.time()) < 60
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(cash_flows)")]
    assert columns == [
        "id", "run_id", "flow_id", "kind", "symbol", "currency", "amount", "ts", "booked"
    ]  # fmt: skip
    caplog.clear()
    Journal(path).close()  # opened again: nothing to migrate, nothing said
    assert not [r for r in caplog.records if "migrated" in r.getMessage()]


def test_a_journal_made_by_this_release_asks_for_payments_from_its_first_fill(
    tmp_path: Path,
) -> None:
    """Only a migration records ``cash_flows_from``: a new journal books payments from its
    start, and opening a migrated one again keeps the first upgrade's time."""
    path = tmp_path / "new.sqlite"
    Journal(path).close()
    meta = dict(sqlite3.connect(path).execute("SELECT key, value FROM meta"))
    assert "cash_flows_from" not in meta
    old = _with_version(tmp_path, "7")
    Journal(old).close()
    first = dict(sqlite3.connect(old).execute("SELECT key, value FROM meta"))["cash_flows_from"]
    db = sqlite3.connect(old)
    db.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")  # migrated again
    db.commit()
    db.close()
    Journal(old).close()
    again = dict(sqlite3.connect(old).execute("SELECT key, value FROM meta"))["cash_flows_from"]
    assert again == first
