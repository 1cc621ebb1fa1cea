"""The csv feed on the bundled real data, and its refusals naming file and row."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from tradefleet_plugins.feeds.csv_feed import CsvFeed
from tradefleet_plugins.feeds.csv_params import CsvFeedParams
from tradefleet_runtime.contracts import FeedRequest
from tradefleet_runtime.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
HOUR = 3600


def _bars(
    params: dict[str, object], symbols: tuple[str, ...] = ("X",), tf: int = HOUR
) -> tuple[list, CsvFeed]:
    feed = CsvFeed(CsvFeedParams.model_validate(params))
    return list(feed.bars(FeedRequest(symbols, tf, DATA))), feed


def test_eurusd_2017_measured_facts() -> None:
    bars, feed = _bars({"path": "EURUSD_H1_2017.csv"}, ("EURUSD",))
    report = feed.report()
    assert len(bars) == report.bars == 6225
    assert report.gaps == 52
    assert report.missing_bars == 2463
    assert bars[0].ts == 1483308000  # 2017-01-01 22:00 UTC
    assert bars[-1].ts == 1514581200  # 2017-12-29 21:00 UTC
    assert sum(1 for a, b in pairwise(bars) if b.open != a.close) == 4192


def test_btcusd_is_newest_first_with_an_interleaved_stretch_and_no_gaps() -> None:
    # The real file is newest first, except a stale-feed stretch on 2017-11-12 where rows of
    # 04:00-08:00 are interleaved with 23:00-03:00: strict descending order refuses it...
    with pytest.raises(DataError, match=r"row 14372: timestamp 2017-11-12 08:00 is out of order"):
        _bars({"path": "BTCUSD_H1_bitfinex_2017-2019.csv", "order": "descending"}, ("BTC/USD",))
    # ... and `order: any` sorts it, says so, and finds every hour present once.
    bars, feed = _bars({"path": "BTCUSD_H1_bitfinex_2017-2019.csv", "order": "any"}, ("BTC/USD",))
    assert len(bars) == 17583
    assert feed.report().gaps == 0
    assert any("out of time order, sorted" in note for note in feed.report().notes)
    assert bars[0].ts == 1498906800  # 2017-07-01 11:00 UTC
    assert bars[-1].ts == 1562202000  # 2019-07-04 01:00 UTC
    assert all(b.ts - a.ts == HOUR for a, b in pairwise(bars))


def test_descending_file_read_as_ascending_names_the_row() -> None:
    with pytest.raises(DataError, match=r"BTCUSD_H1_bitfinex_2017-2019.csv: row 3: .*out of"):
        _bars({"path": "BTCUSD_H1_bitfinex_2017-2019.csv"}, ("BTC/USD",))


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + body)
    return path


def test_duplicate_timestamp_names_file_and_both_rows(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "2020-01-01 00:00,1,2,1,2,5\n2020-01-01 01:00,1,2,1,2,5\n2020-01-01 01:00,1,2,1,2,5\n",
    )
    with pytest.raises(DataError, match=rf"{path}: row 4: duplicate timestamp .*row 3"):
        _bars({"path": str(path)})


def test_nan_names_the_field_and_row(tmp_path: Path) -> None:
    path = _write(tmp_path, "2020-01-01 00:00,1,2,1,2,5\n2020-01-01 01:00,1,2,1,nan,5\n")
    with pytest.raises(DataError, match=rf"{path}: row 3: close is nan"):
        _bars({"path": str(path)})


def test_non_number_names_the_field_and_row(tmp_path: Path) -> None:
    path = _write(tmp_path, "2020-01-01 00:00,1,2,1,2,5\n2020-01-01 01:00,1,x,1,2,5\n")
    with pytest.raises(DataError, match=r"row 3: high is not a number: 'x'"):
        _bars({"path": str(path)})


def test_inconsistent_high_low_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "2020-01-01 00:00,1,2,1.5,1.2,5\n")
    with pytest.raises(DataError, match="row 2: high/low"):
        _bars({"path": str(path)})


GAPPY = "2020-01-01 00:00,1,2,1,2,5\n2020-01-01 01:00,2,3,2,3,5\n2020-01-01 04:00,3,4,3,4,5\n"


def test_gap_policy_trade_counts_and_keeps_going(tmp_path: Path) -> None:
    bars, feed = _bars({"path": str(_write(tmp_path, GAPPY))})
    assert len(bars) == 3
    assert (feed.report().gaps, feed.report().missing_bars) == (1, 2)


def test_gap_policy_fail_names_the_gap(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"gap of 2 bar\(s\) between 2020-01-01 01:00 and 2020-01-01 04:00"
    ):
        _bars({"path": str(_write(tmp_path, GAPPY)), "gap_policy": "fail"})


def test_gap_policy_fill_inserts_flat_bars(tmp_path: Path) -> None:
    bars, feed = _bars({"path": str(_write(tmp_path, GAPPY)), "gap_policy": "fill"})
    assert len(bars) == 5
    assert [(b.open, b.close, b.volume) for b in bars[2:4]] == [(3, 3, 0), (3, 3, 0)]
    assert feed.report().filled_bars == 2


def test_hourly_bars_resample_to_four_hours() -> None:
    bars, feed = _bars({"path": "EURUSD_H1_2017.csv"}, ("EURUSD",), tf=4 * HOUR)
    assert all(b.timeframe_s == 4 * HOUR and b.ts % (4 * HOUR) == 0 for b in bars)
    assert 6225 / 4 <= len(bars) <= 6225 / 4 + 60  # weekend gaps leave partial buckets
    assert any("resampled" in note for note in feed.report().notes)


def test_coarser_data_than_the_timeframe_is_refused() -> None:
    with pytest.raises(DataError, match="coarser than the bot's timeframe 1m"):
        _bars({"path": "EURUSD_H1_2017.csv"}, ("EURUSD",), tf=60)


def test_multi_symbol_bars_are_merged_in_time_then_symbol_order(tmp_path: Path) -> None:
    feed = CsvFeed(CsvFeedParams.model_validate({"files": {"A": "a.csv", "B": "b.csv"}}))
    for name, offset in (("a.csv", 0.0), ("b.csv", 10.0)):
        (tmp_path / name).write_text(
            "timestamp,open,high,low,close\n"
            + "".join(
                f"2020-01-01 0{h}:00,{1 + offset},{2 + offset},{1 + offset},{2 + offset}\n"
                for h in range(3)
            )
        )
    merged = list(feed.bars(FeedRequest(("B", "A"), HOUR, tmp_path)))
    assert [(b.symbol, b.ts % 86400 // HOUR) for b in merged] == [
        ("B", 0),
        ("A", 0),
        ("B", 1),
        ("A", 1),
        ("B", 2),
        ("A", 2),
    ]


def test_missing_file_names_the_field_and_the_path() -> None:
    with pytest.raises(
        DataError, match=r"^spec\.data\.params\.path: .*nowhere\.csv: no such file$"
    ):
        _bars({"path": "nowhere.csv"})


def test_a_symbols_missing_file_names_its_field(tmp_path: Path) -> None:
    # R51: "…/b.csv: cannot read: No such file or directory" named no field of the manifest.
    (tmp_path / "a.csv").write_text("timestamp,open,high,low,close\n2020-01-01 00:00,1,2,1,2\n")
    feed = CsvFeed(CsvFeedParams.model_validate({"files": {"A": "a.csv", "B": "b.csv"}}))
    with pytest.raises(DataError, match=r"^spec\.data\.params\.files\.B: .*b\.csv: no such file$"):
        list(feed.bars(FeedRequest(("A", "B"), HOUR, tmp_path)))


def test_params_need_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="either path"):
        CsvFeedParams.model_validate({})


@pytest.mark.parametrize(
    ("params", "field", "said"),
    [
        ({"files": {"A": "a.csv"}}, "spec.data.params.files", "no file for B"),
        ({"path": "a.csv"}, "spec.data.params.path", "use `files` with one file per symbol"),
    ],
    ids=["files-missing-a-symbol", "path-for-two-symbols"],
)
def test_a_symbol_without_its_file_is_refused_naming_the_field(
    params: dict[str, object], field: str, said: str
) -> None:
    # W33: "csv feed: no file for B in `files`" named no field of the manifest.
    feed = CsvFeed(CsvFeedParams.model_validate(params))
    with pytest.raises(DataError) as refused:
        list(feed.bars(FeedRequest(("A", "B"), HOUR, DATA)))
    assert str(refused.value).startswith(f"{field}: ")
    assert said in str(refused.value)
