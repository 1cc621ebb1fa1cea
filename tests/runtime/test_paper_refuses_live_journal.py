"""A live bot switched to ``mode: paper`` in place (its journal volume kept) is refused,
naming ``spec.mode``, before anything is journaled.

It used to be admitted: the paper runtime restored the live runs' fills and working orders into
its simulated account, so the status showed the venue's positions as the paper bot's and the
strategy traded them in simulation while the real ones stayed open at the venue; switching
back to live was then refused for good (the journal held paper runs). The other way round
(paper to live) was already refused.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.runtime.test_recovery import _paper_bot
from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.session import BotSession


def _journal_of_a_live_bot(path: Path) -> None:
    """A journal whose runs are the bot's live runs (fills, working orders, bars handled).

    A live run needs a venue; its rows are what matters here, so a run is journaled and marked
    as the live run it stands for (the ``runs.mode`` column the runtime reads)."""
    journal = Journal(path, durable=True)
    try:
        BotSession(_paper_bot("2017-02-01"), journal).run_to_end()
    finally:
        journal.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET mode = 'live'")
    journal = Journal(path, durable=True)
    try:
        assert journal.run_modes("continued") == frozenset({"live"})
        carried = journal.carried_state("continued")
        assert carried is not None and carried.fills  # the live account has history
    finally:
        journal.close()


def test_a_paper_run_never_takes_over_a_live_account(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _journal_of_a_live_bot(path)
    journal = Journal(path, durable=True)
    try:
        session = BotSession(_paper_bot("2017-03-01"), journal)
        try:
            with pytest.raises(SpecError) as refused:
                session.open()
        finally:
            if session.engine is not None:
                session.close("stopped")
        assert [error.field for error in refused.value.errors] == ["spec.mode"]
        # Nothing was journaled as a paper run of the live account.
        assert journal.run_modes("continued") == frozenset({"live"})
    finally:
        journal.close()
