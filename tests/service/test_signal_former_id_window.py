"""A former id answers only a row written within the request's window.

A request an older release journaled as ``KEYID:NONCE`` is answered from that row after an
upgrade (``BotController._former_outcome``). The nonce is unsigned and the id carries no time:
an alert firing again with the same text and a nonce an old run saw a month ago is a new
signal, traded, not answered with the old order. The row's age is bounded by its run's
wall-clock times (``Journal.signal_written_by``): its end, or the next run's start.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.runtime.helpers import start_test_run
from tests.service.paper_bots import (
    SIGNALS,
    at_first_bar,
    eurusd_signal,
    paper_controller,
    paper_manifest,
    short_eurusd,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.controller import former_row_in_window

MONTH_S = 30 * 86_400


def _root_orders(journal: Journal) -> list[str]:
    rows = journal.query(
        "SELECT client_order_id FROM orders WHERE parent_id IS NULL ORDER BY created_ts, rowid"
    )
    return [str(row[0]) for row in rows]


def test_a_new_alert_reusing_a_nonce_of_a_month_old_run_is_traded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path, durable=True)
    bot = paper_controller(paper_manifest("tv-bot", SIGNALS, short_eurusd(tmp_path)), journal)
    with at_first_bar(bot):  # an older release: the alert journaled under KEYID:NONCE
        old = bot.submit_signal(eurusd_signal("default:alert-7"))
    journal.close()
    assert old.accepted, old
    # That run was a month ago (far outside any replay window).
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE runs SET started_at = started_at - ?, ended_at = ended_at - ?",
            (MONTH_S, MONTH_S),
        )

    journal = Journal(path, durable=True)
    bot = paper_controller(paper_manifest("tv-bot", SIGNALS, short_eurusd(tmp_path)), journal)
    with at_first_bar(bot):
        # Today the same alert text fires again; the sender's nonce counter came round to 7.
        fresh = eurusd_signal("key-0123456789abcdef:sig-new")
        former = ("default:sig-0000", "default:alert-7")
        answer = bot.submit_signal(fresh, former_ids=former)
    orders = _root_orders(journal)
    journal.close()
    assert answer.client_order_id != old.client_order_id, (
        "a new alert was answered with a month-old order; nothing traded",
        orders,
    )


def test_a_killed_run_s_rows_are_bounded_by_the_next_run_s_start(tmp_path: Path) -> None:
    """A run killed before it ended has no end time: its rows were written before the run
    after it started (one process at a time), a month ago here; the latest run's rows have no
    bound yet."""
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    start_test_run(journal, "old")
    journal.record_signal("default:alert-7", 1000, True, "", "o-1", "d")
    journal.close()
    journal = Journal(path)
    start_test_run(journal, "new")  # marks "old" interrupted; ended_at stays NULL
    journal.record_signal("default:alert-8", 2000, True, "", "o-2", "d")
    journal.flush()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET started_at = started_at - ?", (MONTH_S,))
    old = journal.signal_written_by("default:alert-7")
    latest = journal.signal_written_by("default:alert-8")
    journal.close()
    assert old is not None and old < time.time() - MONTH_S + 60, old
    assert latest is None, latest
    assert not former_row_in_window(old, time.time())
    assert former_row_in_window(latest, time.time())
