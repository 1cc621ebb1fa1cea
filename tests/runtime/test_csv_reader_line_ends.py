"""The csv feed's fast reader gives exactly the bars the row-by-row reader gives, or leaves the
file to it: a volume of a bare point is refused naming the row, and rows ended by a lone
carriage return are all read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradefleet_plugins.feeds.csv_feed import _read_columns, read_csv_bars
from tradefleet_plugins.feeds.csv_params import CsvFeedParams
from tradefleet_runtime.sdk import DataError

HEADER = "timestamp,open,high,low,close,volume"


def _rows(count: int, extra: str = "") -> list[str]:
    return [f"2024-01-01 {hour:02d}:00:00,1.5,2.5,1.0,2.0,10{extra}" for hour in range(count)]


def test_a_bare_point_volume_is_refused_as_the_row_reader_refuses_it(tmp_path: Path) -> None:
    # float(".") raises, so the row reader refuses the file naming the row; a fast reader that
    # took "." for 0.0 would answer bars (volume 0 being allowed) the row reader never gives.
    rows = _rows(3)
    rows[1] = "2024-01-01 01:00:00,1.5,2.5,1.0,2.0,."
    path = tmp_path / "bars.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    params = CsvFeedParams(path=str(path))
    with pytest.raises(DataError, match="volume is not a number"):
        read_csv_bars(path, params)
    with pytest.raises(DataError, match="volume is not a number"):
        _read_columns(path, params, [])


def test_a_body_ending_rows_in_cr_reads_every_row(tmp_path: Path) -> None:
    # The header ends in CRLF, the rows in a lone CR (old Mac line ends after an editor's
    # header). The row reader (csv, newline="") ends a row at a lone CR and reads all four. A
    # reader splitting only at LF would see one line whose first six cells are the first row,
    # the extra unused column soaking up the rest: one bar, three silently lost.
    header = HEADER + ",note"
    body = "\r".join(_rows(4, extra=",x")) + "\r"
    path = tmp_path / "bars.csv"
    path.write_bytes((header + "\r\n" + body).encode())
    params = CsvFeedParams(path=str(path))
    rows, _ = read_csv_bars(path, params)
    assert len(rows) == 4
    columns = _read_columns(path, params, [])
    assert len(columns) == 4
