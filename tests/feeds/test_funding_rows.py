"""The decisions of ``tradefleet funding-history`` (``funding_rows``, pure), and its paging
loop driven against venues held in memory: one answering a range with its oldest rows
(Binance), one with its newest (Bybit), funding every 30 minutes to 8 hours with changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradefleet_plugins.brokers.paper_funding_history import parse_funding_history
from tradefleet_plugins.feeds import funding_rows as rows
from tradefleet_plugins.feeds.funding_download import Venue, download
from tradefleet_plugins.feeds.funding_rows import FileRow, Window
from tradefleet_runtime.sdk import DataError

HOUR_MS = 3_600_000
T0_MS = 1_672_531_200_000  # 2023-01-01 00:00 UTC
T0 = T0_MS // 1000


class MemoryVenue:
    """``fetch_funding_rate_history`` over ``times`` (ms): the first ``limit`` rows of
    ``[since, until]`` when ``oldest_first``, else the last ``limit`` (as ccxt hands both
    back: ascending)."""

    def __init__(self, times: list[int], oldest_first: bool, cap: int | None = None) -> None:
        self.times = sorted(times)
        self.oldest_first = oldest_first
        self.cap = cap
        self.asked: list[tuple[int, int, int]] = []

    def fetch_funding_rate_history(
        self, symbol: str, since: int, limit: int, params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        until = int(params["until"])
        self.asked.append((since, until, limit))
        inside = [t for t in self.times if since <= t <= until]
        limit = min(limit, self.cap) if self.cap else limit
        picked = inside[:limit] if self.oldest_first else inside[-limit:]
        return [{"timestamp": t, "fundingRate": _rate(t)} for t in picked]


def _rate(t: int) -> float:
    return ((t // HOUR_MS) % 17 - 8) / 100_000


def _venue(client: Any, exchange: str = "bybit") -> Venue:
    return Venue(ccxt=None, client=client, exchange=exchange, symbol="BTC/USDT:USDT")


def _schedule(segments: list[tuple[int, int]]) -> list[int]:
    """Funding times from T0: ``count`` times ``step`` hours... in minutes: (minutes, count)."""
    times, at = [], T0_MS
    for minutes, count in segments:
        for _ in range(count):
            times.append(at)
            at += minutes * 60_000
    return times


@pytest.mark.parametrize("oldest_first", [True, False], ids=["binance-like", "bybit-like"])
@pytest.mark.parametrize(
    "segments",
    [
        [(480, 700)],  # 8-hourly, more than three pages
        [(480, 100), (240, 100), (60, 300), (480, 50)],  # a venue moving to 4h, 1h and back
        [(30, 500)],  # half-hourly: every window comes back full at first
    ],
    ids=["8h", "changes", "30min"],
)
def test_every_row_is_read_whichever_rows_a_venue_gives_for_a_range(
    oldest_first: bool, segments: list[tuple[int, int]]
) -> None:
    times = _schedule(segments)
    client = MemoryVenue(times, oldest_first)
    kept = download(_venue(client, "bybit"), "BTC/USDT:USDT", T0_MS, times[-1] + 10 * HOUR_MS)
    assert kept == {t // 1000: _rate(t) for t in times}
    assert all(limit == 200 for _, _, limit in client.asked)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from([30, 60, 120, 240, 480]), st.integers(1, 60)),
        min_size=1,
        max_size=5,
    ),
    oldest_first=st.booleans(),
    limit=st.sampled_from([3, 7, 50]),
    cut=st.tuples(st.integers(0, 50), st.integers(0, 50)),
)
def test_paging_reads_every_row_from_since_to_until(
    steps: list[tuple[int, int]], oldest_first: bool, limit: int, cut: tuple[int, int]
) -> None:
    times = _schedule(steps)
    since = times[min(cut[0], len(times) - 1)] - cut[1] * 60_000
    until = times[-1 - min(cut[1], len(times) - 1)] + 1
    client = MemoryVenue(times, oldest_first)
    kept = download(_venue(client), "BTC/USDT:USDT", since, until, limit)
    assert kept == {t // 1000: _rate(t) for t in times if since <= t <= until}


def test_a_window_holds_fewer_hourly_times_than_a_page() -> None:
    window = rows.first_window(T0_MS, T0_MS + 10**12, rows.first_span(200))
    assert window == Window(T0_MS, T0_MS + 199 * HOUR_MS - 1)
    # a full page: the window is asked again by halves; a short one moves on
    assert rows.next_window(window, 200, 200, 10**15, 5) == Window(
        T0_MS, T0_MS + (199 * HOUR_MS - 1) // 2
    )
    assert rows.next_window(window, 199, 200, 10**15, 5) == Window(
        T0_MS + 199 * HOUR_MS, T0_MS + 199 * HOUR_MS + 4
    )
    assert rows.next_window(window, 0, 200, window.end_ms, 5) is None
    assert rows.first_window(5, 4, 100) is None


def test_the_span_follows_the_shortest_gap_seen_and_grows_while_nothing_is_found() -> None:
    eight = [T0 + i * 8 * 3600 for i in range(5)]
    asked = Window(0, 99)
    assert rows.next_span(eight, asked, 5, 200) == 199 * 8 * HOUR_MS
    assert rows.next_span([T0, T0 + 60], asked, 2, 200) == 199 * HOUR_MS  # an hour at least
    assert rows.next_span([], asked, 0, 200) == 200  # nothing yet: twice the window
    assert rows.next_span([], Window(0, rows.MAX_SPAN_MS), 0, 200) == rows.MAX_SPAN_MS


def test_a_page_keeps_a_time_once_and_refuses_it_at_another_rate() -> None:
    window = Window(T0_MS, T0_MS + 10 * HOUR_MS)
    page = [
        {"timestamp": T0_MS - 1, "fundingRate": 0.1},  # before --since: left out
        {"timestamp": T0_MS, "fundingRate": 0.0001},
        {"timestamp": T0_MS + 3, "fundingRate": 0.0001},  # the same second, the same rate
        {"timestamp": T0_MS + 8 * HOUR_MS, "fundingRate": -0.0002},
    ]
    kept, inside = rows.take_page({}, page, window, window, "bybit BTC")
    assert kept == {T0: 0.0001, T0 + 8 * 3600: -0.0002}
    assert inside == 3
    again = [{"timestamp": T0_MS, "fundingRate": 0.0003}]
    with pytest.raises(DataError, match=r"bybit BTC: the venue listed 2023-01-01 00:00 UTC twice"):
        rows.take_page(kept, again, window, window, "bybit BTC")


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"timestamp": None, "fundingRate": 0.1}, "row 1 of a page has no time"),
        ({"timestamp": T0_MS, "fundingRate": None}, "2023-01-01 00:00 UTC has no funding rate"),
        ({"timestamp": T0_MS, "fundingRate": math.nan}, "has no funding rate"),
        ({"timestamp": T0_MS, "fundingRate": 0.5}, "0.5, is beyond ±0.05"),
    ],
)
def test_a_row_the_paper_broker_would_refuse_is_named(entry: dict[str, Any], says: str) -> None:
    window = Window(0, 10**15)
    with pytest.raises(DataError, match=says):
        rows.take_page({}, [entry], window, window, "x")


def _file(*rows_: tuple[int, int, float, str, str]) -> list[FileRow]:
    return [FileRow(*row) for row in rows_]


def test_a_merge_keeps_the_files_rows_adds_the_venues_and_counts_the_new() -> None:
    existing = _file((2, T0, 0.0001, "", ""), (3, T0 + 28_800, -0.0002, "bybit", "BTC/USDT:USDT"))
    venue = {T0 + 28_800: -0.0002, T0 + 57_600: 0.0003}
    merged = rows.merge(existing, venue, "bybit", "BTC/USDT:USDT", "f.csv")
    assert merged.new == 1
    assert [(r.time_s, r.rate, r.exchange) for r in merged.rows] == [
        (T0, 0.0001, ""),
        (T0 + 28_800, -0.0002, "bybit"),
        (T0 + 57_600, 0.0003, "bybit"),
    ]


def test_a_merge_refuses_a_conflict_and_another_market_naming_the_row() -> None:
    conflict = _file((4, T0, 0.0001, "", ""))
    with pytest.raises(DataError, match=r"f.csv: row 4: 2023-01-01 00:00 UTC is at 0.0001 in the "
                       r"file but at 0.0002 at bybit"):  # fmt: skip
        rows.merge(conflict, {T0: 0.0002}, "bybit", "BTC/USDT:USDT", "f.csv")
    other = _file((2, T0, 0.0001, "binanceusdm", ""))
    with pytest.raises(DataError, match="row 2: exchange: 'binanceusdm', not 'bybit'"):
        rows.merge(other, {}, "bybit", "BTC/USDT:USDT", "f.csv")


def test_what_is_written_reads_back_as_the_same_history() -> None:
    merged = rows.merge([], {T0: 1e-05, T0 + 28_800: -0.000375}, "bybit", "B", "f")
    text = rows.render(merged.rows)
    assert text.splitlines() == [
        "timestamp,fundingRate,exchange,symbol",
        "2023-01-01T00:00:00Z,0.00001,bybit,B",
        "2023-01-01T08:00:00Z,-0.000375,bybit,B",
    ]
    history = parse_funding_history(text.splitlines(), "f")
    assert history.times.tolist() == [T0, T0 + 28_800]
    assert history.rates.tolist() == [1e-05, -0.000375]
    assert rows.read_file(text.splitlines(), "f") == _file(
        (2, T0, 1e-05, "bybit", "B"), (3, T0 + 28_800, -0.000375, "bybit", "B")
    )


def test_a_binance_monthly_file_newest_first_is_read_with_its_row_numbers() -> None:
    lines = [
        "calc_time,funding_interval_hours,last_funding_rate",
        f"{(T0 + 28_800) * 1000},8,-0.0002",
        "",
        f"{T0 * 1000},8,0.0001",
    ]
    assert rows.read_file(lines, "m.csv") == _file(
        (2, T0 + 28_800, -0.0002, "", ""), (4, T0, 0.0001, "", "")
    )
    with pytest.raises(DataError, match=r"m\.csv: row 1: no funding rate column"):
        rows.read_file(["calc_time,x", f"{T0},1", f"{T0 + 1},1"], "m.csv")


def test_the_retry_wait_is_the_backoff_or_the_venues_longer_ask() -> None:
    assert rows.retry_wait(0, None, 0.0) == pytest.approx(rows.RETRY_BASE_S / 2)
    assert rows.retry_wait(10, None, 1.0) == pytest.approx(rows.RETRY_MAX_S)
    assert rows.retry_wait(0, 12.0, 0.5) == pytest.approx(12.0)
