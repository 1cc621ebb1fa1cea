"""The engine's equity snapshots reach the journal once each, in order, even when the journal
refuses a chunk: the refused chunk stays pending and is written with the next."""

from __future__ import annotations

from array import array
from itertools import pairwise
from pathlib import Path

import pytest

from tests.runtime.test_journal_batched import MANIFEST, ROOT  # the bundled EURUSD backtest
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import parse_manifest


class RefusesOneChunk(Journal):
    """A journal whose disk is full for the second equity chunk only."""

    chunks = 0

    def record_equity(
        self, timestamps: array[int], equity: array[float], exposure: array[float]
    ) -> None:
        self.chunks += 1
        if self.chunks == 2:
            raise OSError("No space left on device (test)")
        super().record_equity(timestamps, equity, exposure)


def test_a_refused_equity_chunk_is_written_with_the_next_and_nothing_twice(
    tmp_path: Path,
) -> None:
    bot = assemble(parse_manifest(MANIFEST), PluginRegistry.discover(), ROOT)
    journal = RefusesOneChunk(tmp_path / "j.sqlite", batched=True)
    session = BotSession(bot, journal)
    with pytest.raises(OSError, match="No space left"):
        session.run_to_end()
    assert journal.chunks == 2
    # The disk has room again: finishing writes what was pending, refused chunk included.
    result = session.engine.finish() if session.engine is not None else None
    assert result is not None and len(result.equity_ts) > 1024
    timestamps, equity, exposure = journal.equity_curve(journal.run_id)
    journal.close()
    assert list(timestamps) == list(result.equity_ts)
    assert list(equity) == list(result.equity)
    assert list(exposure) == list(result.exposure)
    assert all(a < b for a, b in pairwise(timestamps))
