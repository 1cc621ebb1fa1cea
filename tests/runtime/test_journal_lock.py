"""One runtime a journal: a second one is refused while the first holds it, however the path
to the file is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradefleet_runtime.errors import JournalError
from tradefleet_runtime.journal import Journal


def test_a_second_journal_on_the_same_file_is_refused_even_through_a_symlink(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    alias = tmp_path / "alias.sqlite"
    first = Journal(path, durable=True)
    alias.symlink_to(path)
    try:
        for other in (path, alias, tmp_path / "." / "journal.sqlite"):
            with pytest.raises(JournalError, match=r"is in use by pid \d+") as refused:
                Journal(other, durable=True)
            assert str(path) + ".lock" in str(refused.value)  # the holder's lock, named
    finally:
        first.close()
    Journal(alias, durable=True).close()  # free again once the first is closed
