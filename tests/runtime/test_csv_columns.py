"""The csv feed's numpy reader and its columnar cache beside the file.

The fast reader must give exactly the bars the row-by-row reader gives (same floats, same
timestamps, same notes), fall back to it for anything else, and the cache must never serve
columns of other content: a changed file, a corrupt cache or another file's cache is rebuilt.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradefleet_plugins.feeds import csv_feed
from tradefleet_plugins.feeds.csv_feed import CsvFeed, _read_columns, parse_time, read_csv_bars
from tradefleet_plugins.feeds.csv_params import CsvFeedParams
from tradefleet_runtime.bar_columns import (
    cache_path,
    content_key,
    load_cached,
    parse_time_cells,
)
from tradefleet_runtime.contracts import FeedRequest
from tradefleet_runtime.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
HOUR = 3600
HEADER = "timestamp,open,high,low,close,volume\n"


def _write(folder: Path, body: str, name: str = "bars.csv") -> Path:
    path = folder / name
    path.write_text(HEADER + body)
    return path


def _rows(count: int, start: float = 100.0) -> str:
    lines = []
    for i in range(count):
        stamp = datetime.fromtimestamp(1_600_000_000 - 1_600_000_000 % HOUR + i * HOUR, UTC)
        price = start + i * 0.25
        lines.append(f"{stamp:%Y-%m-%d %H:%M},{price},{price + 1},{price - 1},{price + 0.5},7")
    return "\n".join(lines) + "\n"


def _bars(path: Path, **params: object) -> tuple[list, CsvFeed]:
    feed = CsvFeed(CsvFeedParams.model_validate({"path": str(path), **params}))
    return list(feed.bars(FeedRequest(("X",), HOUR, path.parent))), feed


@pytest.mark.parametrize(
    ("name", "order"),
    [("EURUSD_H1_2017.csv", "ascending"), ("BTCUSD_H1_bitfinex_2017-2019.csv", "any")],
)
def test_fast_reader_gives_the_row_by_row_bars_on_bundled_data(
    name: str, order: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    shutil.copy(DATA / name, path)
    params = CsvFeedParams(path=str(path), order=order)  # type: ignore[arg-type]
    fast_notes: list[str] = []
    columns = _read_columns(path, params, fast_notes)
    slow_notes: list[str] = []
    rows, _ = read_csv_bars(path, params, slow_notes)
    assert list(columns.rows()) == rows  # bit for bit: the same float parsing
    assert fast_notes == slow_notes


def test_fast_reader_is_used_on_plain_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, _rows(50))

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("read row by row")

    monkeypatch.setattr(csv_feed, "read_csv_bars", refuse)
    bars, _ = _bars(path)
    assert len(bars) == 50
    assert bars[1].open == 100.25


def test_second_run_reads_the_cache_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, _rows(30))
    first, _ = _bars(path)
    assert cache_path(path).is_file()

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(csv_feed, "fast_csv_columns", refuse)
    monkeypatch.setattr(csv_feed, "read_csv_bars", refuse)
    second, _ = _bars(path)
    assert second == first


def test_cache_keeps_the_notes_of_the_first_read(tmp_path: Path) -> None:
    lines = _rows(5).splitlines()
    path = _write(tmp_path, "\n".join(reversed(lines)) + "\n")
    _, first = _bars(path, order="any")
    _, second = _bars(path, order="any")
    assert first.report().notes == second.report().notes
    assert "newest first" in second.report().notes[0]


def test_stale_cache_after_the_csv_changed_is_rebuilt(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows(10))
    before, _ = _bars(path)
    text = path.read_text().replace(",100.5,", ",100.4,")  # same size: only the bytes differ
    path.write_text(text)
    after, _ = _bars(path)
    assert before[0].close == 100.5
    assert after[0].close == 100.4
    assert load_cached(path, content_key(path, csv_feed._reading_options(_params(path))))


def _params(path: Path, **more: object) -> CsvFeedParams:
    return CsvFeedParams.model_validate({"path": str(path), **more})


def test_a_changed_reading_option_does_not_use_the_cache(tmp_path: Path) -> None:
    lines = _rows(6).splitlines()
    path = _write(tmp_path, "\n".join(reversed(lines)) + "\n")
    with pytest.raises(DataError, match="out of order"):
        _bars(path)  # ascending: refused, nothing cached
    bars, _ = _bars(path, order="descending")
    assert [b.ts for b in bars] == sorted(b.ts for b in bars)
    with pytest.raises(DataError, match="out of order"):
        _bars(path)  # the descending read's cache is not the ascending answer


@pytest.mark.parametrize(
    "garbage", [b"", b"not a zip", b"PK\x03\x04 truncated", b"\x93NUMPY\x01\x00"]
)
def test_corrupt_cache_is_ignored_and_rewritten(tmp_path: Path, garbage: bytes) -> None:
    path = _write(tmp_path, _rows(12))
    expected, _ = _bars(path)
    cache_path(path).write_bytes(garbage)
    again, _ = _bars(path)
    assert again == expected
    assert cache_path(path).read_bytes() != garbage


def test_another_files_cache_is_never_trusted(tmp_path: Path) -> None:
    one = _write(tmp_path, _rows(8, start=100.0), "one.csv")
    two = _write(tmp_path, _rows(8, start=500.0), "two.csv")
    _bars(one)
    shutil.copy(cache_path(one), cache_path(two))  # same name scheme, other content
    bars, _ = _bars(two)
    assert bars[0].open == 500.0


def test_cache_with_wrong_arrays_is_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows(4))
    key = content_key(path, csv_feed._reading_options(_params(path)))
    with cache_path(path).open("wb") as out:
        np.savez(out, key=np.array(key), notes=np.array([], dtype=str), ts=np.arange(3))
    assert load_cached(path, key) is None
    bars, _ = _bars(path)
    assert len(bars) == 4


def test_unwritable_folder_still_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, _rows(5))

    def no_temp(*_: object, **__: object) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr("tradefleet_runtime.bar_columns.tempfile.mkstemp", no_temp)
    bars, _ = _bars(path)
    assert len(bars) == 5
    assert not cache_path(path).exists()


@pytest.mark.parametrize(
    "body",
    [
        '2020-01-01 00:00,"1",2,1,2,5\n',  # quoted cell: read row by row, accepted
        "2020-01-01 00:00,1,2,1,2,5\n\n2020-01-01 01:00,1,2,1,2,5\n",  # a blank line
        "2020-01-01 00:00,1,2,1,2\n",  # a short row: the row-by-row reader names it
        "2020-1-1 00:00,1,2,1,2,5\n2020-01-01 01:00,1,2,1,2,5\n",  # ragged timestamps
        "1577836800000,1,2,1,2,5\n1577840400000,1,2,1,2,5\n",  # epoch milliseconds
    ],
)
def test_files_off_the_fast_path_read_as_row_by_row(tmp_path: Path, body: str) -> None:
    path = _write(tmp_path, body)
    params = _params(path)
    try:
        expected: object = read_csv_bars(path, params, [])[0]
    except DataError as error:
        expected = str(error)
    try:
        got: object = list(_read_columns(path, params, []).rows())
    except DataError as error:
        got = str(error)
    assert got == expected


_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
    "%d.%m.%Y %H:%M:%S.%f",
    "%d.%m.%Y %H:%M",
    "%Y.%m.%d %H:%M",
]


@given(
    stamps=st.lists(
        st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 12, 31)),
        min_size=1,
        max_size=20,
    ),
    fmt=st.sampled_from(_FORMATS),
)
def test_fixed_width_times_parse_as_strptime_does(stamps: list[datetime], fmt: str) -> None:
    texts = [stamp.strftime(fmt) for stamp in stamps]
    cells = np.array([t.encode() for t in texts], dtype=f"S{len(texts[0])}")
    matrix = cells.view(np.uint8).reshape(len(texts), -1)
    parsed = parse_time_cells(matrix, fmt)
    assert parsed is not None
    assert parsed.tolist() == [parse_time(text, fmt) for text in texts]


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("2021-02-29 00:00", "%Y-%m-%d %H:%M"),
        ("2021-13-01", "%Y-%m-%d"),
        ("1969-12-31", "%Y-%m-%d"),
    ],
)
def test_impossible_or_early_dates_leave_the_fast_path(text: str, fmt: str) -> None:
    matrix = np.array([text.encode()]).view(np.uint8).reshape(1, -1)
    assert parse_time_cells(matrix, fmt) is None


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("2021-02-28 24:00:00", "%Y-%m-%d %H:%M:%S"),
        ("2021-02-28 23:60:00", "%Y-%m-%d %H:%M:%S"),
        ("2021-02-28 23:59:60", "%Y-%m-%d %H:%M:%S"),
        ("2021-02-28T23:59:59", "%Y-%m-%d %H:%M:%S"),
        ("2021-02-28 23:59:59", "%Y-%m-%dT%H:%M:%S"),
        ("+021-02-28 23:59:59", "%Y-%m-%d %H:%M:%S"),
        ("2021-02-28 23:59:5Z", "%Y-%m-%d %H:%M:%S"),
        ("2021-0a-28 23:59", "%Y-%m-%d %H:%M"),
        ("2021-02-28 23 59", "%Y-%m-%d %H:%M"),
        ("2021/02/28", "%Y-%m-%d"),
    ],
)
def test_iso_cells_that_strptime_refuses_leave_the_fast_path(text: str, fmt: str) -> None:
    """The ISO layouts are read by numpy's parser, which alone takes more than strptime: a
    sign, "T" for " ", a blank. Each cell is checked against the layout first."""
    with pytest.raises(ValueError):
        parse_time(text, fmt)
    matrix = np.array([text.encode()]).view(np.uint8).reshape(1, -1)
    assert parse_time_cells(matrix, fmt) is None
