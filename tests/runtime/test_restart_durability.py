"""A paper bot SIGKILLed and restarted 20 times on one journal trades on, never its history again.

Regression for "a restarted paper bot trades its history again": the feed restarted from its
first bar after every restart, so ids were created again and filled in several runs. Now a
restart resumes after the last bar the journal has, and an id the journal knows is never sent
again as new.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "examples" / "bots" / "eurusd-paper.yaml"
TRADEFLEET = Path(sys.executable).parent / "tradefleet"
KILLS = 20
# 6,225 bars at 2,000,000× real time: about 11 s of bars, so every life trades a stretch.
SPEED = "2000000"


def _start(journal: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(TRADEFLEET), "run", str(MANIFEST), "--journal", str(journal), "--speed", SPEED],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_for_run(journal: Path, runs: int, process: subprocess.Popen[bytes]) -> None:
    """Until the process has started its run (its `runs` row is committed)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        if journal.exists():
            db = sqlite3.connect(journal, timeout=5)
            try:
                if db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] >= runs:
                    return
            except sqlite3.OperationalError:
                pass  # the schema is being created
            finally:
                db.close()
        time.sleep(0.02)
    raise AssertionError(f"run {runs} did not start within 60 s")


def _equity_timestamps(db: sqlite3.Connection) -> list[int]:
    stamps: list[int] = []
    for (blob,) in db.execute("SELECT ts FROM equity_chunks"):
        stamps.extend(int.from_bytes(blob[i : i + 8], "little") for i in range(0, len(blob), 8))
    return stamps


@pytest.mark.slow
def test_restarted_paper_bot_never_trades_its_history_again(tmp_path: Path) -> None:
    journal = tmp_path / "paper.sqlite"
    rng = random.Random(7)
    for life in range(KILLS):
        process = _start(journal)
        _wait_for_run(journal, life + 1, process)
        time.sleep(rng.uniform(0.05, 0.8))  # somewhere in its trading
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    final = _start(journal)
    _, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr.decode()

    db = sqlite3.connect(journal)
    runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert runs == KILLS + 1
    # Every client order id filled at most once in total: in one run only, and never beyond
    # its own quantity.
    twice = db.execute(
        "SELECT client_order_id, COUNT(DISTINCT run_id) FROM fills"
        " GROUP BY client_order_id HAVING COUNT(DISTINCT run_id) > 1"
    ).fetchall()
    assert twice == []
    overfilled = db.execute(
        "SELECT f.client_order_id FROM fills f"
        " GROUP BY f.client_order_id HAVING SUM(f.quantity) >"
        " (SELECT MAX(o.quantity) FROM orders o WHERE o.client_order_id = f.client_order_id)"
        " + 1e-9"
    ).fetchall()
    assert overfilled == []
    # New orders (not re-armed ones) are created once: an id appears as new in one run only.
    created_again = db.execute(
        "SELECT o.client_order_id FROM orders o JOIN order_updates u"
        " ON u.run_id = o.run_id AND u.client_order_id = o.client_order_id"
        " WHERE u.status = 'pending' AND u.reason = ''"
        " GROUP BY o.client_order_id HAVING COUNT(DISTINCT o.run_id) > 1"
    ).fetchall()
    assert created_again == []
    # Every bar was handled (its equity recorded) at most once across all runs, and the data's
    # last bar exactly once.
    stamps = _equity_timestamps(db)
    assert len(stamps) == len(set(stamps))
    last_close = max(stamps)
    assert stamps.count(last_close) == 1
    fills = db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    assert fills > 20  # it did trade
    db.close()
