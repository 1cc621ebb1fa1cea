"""The csv feed's window (``start``/``end``), text encoding and time grid.

Each refusal names what to fix: the param (``spec.data.params.start``) or the file and row,
never a traceback or a silent report of no bars; a legitimate file still reads as before.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tradefleet_plugins.feeds import csv_feed
from tradefleet_plugins.feeds.csv_feed import CsvFeed, read_csv_bars, stray_rows
from tradefleet_plugins.feeds.csv_params import COLUMN_FIELDS, CsvFeedParams
from tradefleet_runtime.bar_columns import cache_path
from tradefleet_runtime.contracts import FeedRequest
from tradefleet_runtime.errors import DataError
from tradefleet_runtime.plugins.registry import BUILTIN_MODULE, PluginKind, PluginRegistry

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
HOUR = 3600
DAY = 86400
HEADER = "timestamp,open,high,low,close,volume\n"
EURUSD_RANGE = "has bars from 2017-01-01 22:00 to 2017-12-29 21:00 UTC"


def _bars(
    params: dict[str, object], folder: Path = DATA, tf: int = HOUR, symbol: str = "EURUSD"
) -> tuple[list, CsvFeed]:
    feed = CsvFeed(CsvFeedParams.model_validate(params))
    return list(feed.bars(FeedRequest((symbol,), tf, folder))), feed


def _param_errors(**params: object) -> dict[str, str]:
    """The manifest's errors of the csv feed's ``params``, by field."""
    registry = PluginRegistry.from_modules(importlib.import_module(BUILTIN_MODULE))
    _, errors = registry.check(PluginKind.DATA_FEED, "csv", params, ["spec", "data"])
    return {error.field: error.message for error in errors}


def _stamps(first: datetime, step: timedelta, count: int) -> list[datetime]:
    return [first + i * step for i in range(count)]


def _csv(folder: Path, stamps: list[datetime], name: str = "bars.csv") -> Path:
    lines = []
    for i, stamp in enumerate(stamps):
        price = 100 + (i % 7) * 0.25
        lines.append(f"{stamp:%Y-%m-%d %H:%M:%S},{price},{price + 1},{price - 1},{price + 0.5},7")
    path = folder / name
    path.write_text(HEADER + "\n".join(lines) + "\n")
    return path


def _hours_with_weekends(count: int) -> list[datetime]:
    """Hourly stamps from a Monday, without Saturdays and Sundays (FX data's gaps)."""
    stamps = _stamps(datetime(2020, 1, 6), timedelta(hours=1), count * 2)
    return [s for s in stamps if s.weekday() < 5][:count]


# -- start and end ------------------------------------------------------------------------------


def test_start_that_is_not_a_time_is_refused_naming_the_field() -> None:
    errors = _param_errors(path="x.csv", start="yesterday")
    assert "'yesterday' is not a time" in errors["spec.data.params.start"]
    assert "ISO 8601" in errors["spec.data.params.start"]
    errors = _param_errors(path="x.csv", end="31/12/2017")
    assert "'31/12/2017' is not a time" in errors["spec.data.params.end"]
    # Digits too short for epoch seconds would read as 1970: refused, not guessed.
    errors = _param_errors(path="x.csv", start="2017")
    assert "ambiguous" in errors["spec.data.params.start"]


def test_a_columns_key_the_feed_does_not_read_is_refused_naming_it() -> None:
    errors = _param_errors(path="x.csv", columns={"clsoe": "Close", "open": "Open"})
    assert "unknown field(s) 'clsoe'" in errors["spec.data.params.columns"]
    assert _param_errors(path="x.csv", columns={"close": "Last", "volume": "Qty"}) == {}
    # The fields the params name are the ones the feed looks headers up for.
    assert set(COLUMN_FIELDS) == set(csv_feed._FIELD_HEADERS)


def test_start_forms_the_feed_reads_are_accepted() -> None:
    for text in ("2017-06-01", "2017-06-01T12:00", "2017-06-01T12:00:00Z", "1496275200"):
        assert _param_errors(path="x.csv", start=text) == {}, text


@pytest.mark.parametrize("end", ["2017-05-01", "2017-06-01", "2017-06-01T02:00+02:00"])
def test_end_not_after_start_is_refused_naming_end(end: str) -> None:
    errors = _param_errors(path="x.csv", start="2017-06-01", end=end)
    assert list(errors) == ["spec.data.params.end"]
    assert "must be after start (2017-06-01 00:00)" in errors["spec.data.params.end"]


def test_start_after_the_data_names_start_and_the_datas_range() -> None:
    with pytest.raises(DataError) as caught:
        _bars({"path": "EURUSD_H1_2017.csv", "start": "2019-01-01"})
    message = str(caught.value)
    assert message.startswith("spec.data.params.start: 2019-01-01 00:00 is after the data")
    assert EURUSD_RANGE in message


def test_end_before_the_data_names_end_and_the_datas_range() -> None:
    with pytest.raises(DataError) as caught:
        _bars({"path": "EURUSD_H1_2017.csv", "end": "2016-01-01"})
    message = str(caught.value)
    assert message.startswith("spec.data.params.end: 2016-01-01 00:00 is at or before")
    assert EURUSD_RANGE in message


def test_window_inside_a_gap_of_the_data_is_refused() -> None:
    # Saturday 2017-01-07: the market is closed, so the window holds no bar.
    with pytest.raises(DataError, match=r"spec\.data\.params\.start/end: no bar from"):
        _bars({"path": "EURUSD_H1_2017.csv", "start": "2017-01-07", "end": "2017-01-08"})


def test_window_without_bars_is_refused_when_resampling_too() -> None:
    with pytest.raises(DataError, match=r"spec\.data\.params\.start: .*after the data"):
        _bars({"path": "EURUSD_H1_2017.csv", "start": "2019-01-01"}, tf=4 * HOUR)


def test_window_within_the_data_still_selects_its_bars() -> None:
    bars, _ = _bars({"path": "EURUSD_H1_2017.csv", "start": "2017-06-01", "end": "2017-07-01"})
    assert bars[0].ts == int(datetime(2017, 6, 1, tzinfo=UTC).timestamp())
    assert bars[-1].ts < int(datetime(2017, 7, 1, tzinfo=UTC).timestamp())


# -- encoding -----------------------------------------------------------------------------------


def _never(*_: object, **__: object) -> None:
    raise AssertionError("read row by row")


def _row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the feed skip numpy's reader, as it does for a file off its plain shape."""
    monkeypatch.setattr(csv_feed, "fast_csv_columns", lambda *_, **__: None)


@pytest.mark.parametrize("fast", [True, False], ids=["numpy-reader", "row-by-row"])
def test_utf8_file_with_a_byte_order_mark_reads_as_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    # As Excel saves "CSV UTF-8": the mark, then "Time" as the first header.
    plain = _csv(tmp_path, _hours_with_weekends(30), "plain.csv")
    marked = tmp_path / "marked.csv"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes().replace(b"timestamp", b"Time", 1))
    expected, _ = _bars({"path": str(plain)}, tmp_path)
    if fast:  # numpy's reader takes it: the row-by-row reader is never asked
        monkeypatch.setattr(csv_feed, "read_csv_bars", _never)
    else:
        _row_by_row(monkeypatch)
    got, _ = _bars({"path": str(marked)}, tmp_path)
    assert got == expected
    assert len(got) == 30


def test_bytes_that_are_not_utf8_name_the_row_and_byte(tmp_path: Path) -> None:
    text = HEADER.replace("volume\n", "volume,note\n") + (
        "2020-01-06 00:00,1,2,1,2,5,ok\n2020-01-06 01:00,1,2,1,2,5,caf\xe9\n"
    )
    path = tmp_path / "latin1.csv"
    path.write_bytes(text.encode("latin-1"))  # é as one byte, 0xe9: not UTF-8
    offset = text.encode("latin-1").index(b"\xe9")
    with pytest.raises(DataError) as caught:
        _bars({"path": str(path)}, tmp_path)
    assert str(caught.value) == (
        f"{path}: row 3: byte 0xe9 at offset {offset} is not UTF-8 (save the file as UTF-8)"
    )


def test_a_binary_file_is_a_data_error_naming_the_first_byte(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(bytes([0xE0, 0x44, 0xD2, 0x8B, 0x0A, 0xFF, 0x00, 0x31]))
    with pytest.raises(DataError, match=r"binary\.csv: row 1: byte 0xe0 at offset 0 is not UTF-8"):
        _bars({"path": str(path)}, tmp_path)
    with pytest.raises(DataError, match=r"row 1: byte 0xe0 at offset 0 is not UTF-8"):
        read_csv_bars(path, CsvFeedParams(path=str(path)))


# -- the time grid ------------------------------------------------------------------------------


def test_one_row_off_the_hourly_grid_is_refused_naming_it(tmp_path: Path) -> None:
    stamps = _hours_with_weekends(600)
    stamps[300] += timedelta(minutes=30)  # 10:30 instead of 10:00, say
    path = _csv(tmp_path, stamps)
    with pytest.raises(DataError) as caught:
        _bars({"path": str(path)}, tmp_path)
    assert str(caught.value) == (
        f"{path}: row 302: timestamp {stamps[300]:%Y-%m-%d %H:%M} is off the 1h grid of the "
        "other rows: correct or remove it (1 of 600 rows are off it; read as they are, the "
        "file would be 30m bars)"
    )
    # The columns are cached on the first read: the second read refuses the file too.
    assert cache_path(path).exists()
    with pytest.raises(DataError, match=r"row 302: .* is off the 1h grid"):
        _bars({"path": str(path)}, tmp_path)


def test_the_first_of_a_few_stray_rows_is_named_with_its_seconds(tmp_path: Path) -> None:
    stamps = _hours_with_weekends(200)
    stamps[50] += timedelta(seconds=30)
    stamps[120] += timedelta(minutes=15)
    path = _csv(tmp_path, stamps)
    with pytest.raises(
        DataError, match=rf"row 52: timestamp {stamps[50]:%Y-%m-%d %H:%M:%S} is off"
    ):
        _bars({"path": str(path)}, tmp_path)


def test_stray_row_of_a_newest_first_file_is_named_by_its_row(tmp_path: Path) -> None:
    stamps = _hours_with_weekends(100)
    stamps[40] += timedelta(minutes=30)
    path = _csv(tmp_path, stamps[::-1])
    with pytest.raises(DataError, match=rf"row {2 + 99 - 40}: timestamp .* is off the 1h grid"):
        _bars({"path": str(path), "order": "descending"}, tmp_path)


@pytest.mark.parametrize(
    ("stamps", "tf", "bars"),
    [
        # Thirty-minute data with weekends, its own bar size.
        (_stamps(datetime(2020, 1, 6), timedelta(minutes=30), 500), 30 * 60, 500),
        # Minute bars resampled to hours.
        (_stamps(datetime(2020, 1, 6), timedelta(minutes=1), 600), HOUR, 10),
        # Daily bars on weekdays only.
        (
            [s for s in _stamps(datetime(2020, 1, 6), timedelta(days=1), 70) if s.weekday() < 5],
            DAY,
            50,
        ),
    ],
    ids=["30m", "1m-to-1h", "daily"],
)
def test_data_on_its_own_grid_reads_as_before(
    tmp_path: Path, stamps: list[datetime], tf: int, bars: int
) -> None:
    got, _ = _bars({"path": str(_csv(tmp_path, stamps))}, tmp_path, tf=tf)
    assert len(got) == bars


def test_many_rows_between_the_common_steps_are_finer_data_not_strays(tmp_path: Path) -> None:
    # Half-hour bars with most :30 bars missing (a thin market): the most common step is an
    # hour, yet a tenth of the rows are at :30. That is 30-minute data, resampled as before.
    stamps = _stamps(datetime(2020, 1, 6), timedelta(hours=1), 300)
    stamps += [s + timedelta(minutes=30) for s in stamps[::10]]
    got, feed = _bars({"path": str(_csv(tmp_path, sorted(stamps)))}, tmp_path)
    assert len(got) == 299  # the last hour has no :30 bar: it never closes
    assert "resampled 30m bars to 1h" in feed.report().notes[-1]


@pytest.mark.parametrize(
    ("name", "order"),
    [("EURUSD_H1_2017.csv", "ascending"), ("BTCUSD_H1_bitfinex_2017-2019.csv", "any")],
)
def test_bundled_data_has_no_stray_rows(name: str, order: str) -> None:
    params = CsvFeedParams.model_validate({"path": name, "order": order})
    columns, step = csv_feed.read_csv_columns(DATA / name, params)
    assert stray_rows(columns.ts) is None
    assert step == HOUR


def test_stray_rows_names_the_first_off_the_grid() -> None:
    hours = np.arange(0, 1000 * HOUR, HOUR, dtype=np.int64)
    assert stray_rows(hours) is None
    shifted = hours.copy()
    shifted[[10, 700]] += 1800
    assert stray_rows(shifted) == (10, HOUR, 2)
    # Off by more than a handful (1% of rows, at least 3): data of another bar size.
    many = hours.copy()
    many[::50] += 1800
    assert stray_rows(many) is None
