"""Fixtures of the service tests: the journal a test's real bot writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tradefleet_runtime.journal import Journal


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A durable journal file in the test's folder, closed after the test (a module that
    needs another kind defines its own ``journal``)."""
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    yield journal
    journal.close()
