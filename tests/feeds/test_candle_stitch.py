"""The candle stitcher (pure): closed candles only, each once, in order; gaps counted."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradefleet_plugins.feeds.candle_stitch import CandleStitcher, history_start
from tradefleet_plugins.feeds.csv_params import GapPolicy
from tradefleet_runtime.sdk import Bar, DataError, FeedReport

TF = 60
SYMBOLS = ("A", "B")


def _row(ts: int, price: float = 100.0) -> list[object]:
    return [ts * 1000, price, price + 1, price - 1, price + 0.5, 3.0]


@st.composite
def venues(draw: st.DrawFn) -> tuple[dict[str, set[int]], list[int], int]:
    """Per-symbol candle minutes (with holes), the times the feed asks, and a shuffle seed."""
    size = draw(st.integers(5, 40))
    minutes = {
        s: set(draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=size))) for s in SYMBOLS
    }
    asks = sorted(draw(st.lists(st.integers(0, size + 3), min_size=1, max_size=8)))
    return minutes, asks, draw(st.integers(0, 2**16))


@given(venues())
def test_each_closed_candle_once_in_order_and_holes_counted(
    case: tuple[dict[str, set[int]], list[int], int],
) -> None:
    minutes, asks, seed = case
    rng = random.Random(seed)
    report = FeedReport()
    stitch = CandleStitcher(SYMBOLS, TF, GapPolicy.TRADE, report, first_ts=0)
    released: list[Bar] = []
    for ask in asks:
        venue_now = ask * TF + rng.random() * TF  # part-way into a minute
        for symbol in SYMBOLS:
            # The venue answers with everything it has so far, the forming candle included,
            # in any order, with duplicates.
            rows = [_row(m * TF) for m in minutes[symbol] if m * TF <= venue_now]
            rows += rng.sample(rows, k=min(len(rows), 3))
            rng.shuffle(rows)
            stitch.add(symbol, rows, venue_now)
        for bar in stitch.ready(venue_now, late_s=10**9):
            assert bar.close_ts <= venue_now, "a forming candle was released"
            released.append(bar)
    final_now = asks[-1] * TF + TF
    released += stitch.ready(final_now + 10**6, late_s=0)  # flush what waits for the others
    closed = {(m * TF, s) for s in SYMBOLS for m in minutes[s] if m * TF + TF <= asks[-1] * TF}
    keys = [(b.ts, b.symbol) for b in released]
    assert keys == sorted(closed, key=lambda k: (k[0], SYMBOLS.index(k[1])))
    holes = {
        s: [b - a - 1 for a, b in zip(sorted(seen), sorted(seen)[1:], strict=False) if b - a > 1]
        for s in SYMBOLS
        if (seen := {ts // TF for ts, sym in closed if sym == s})
    }
    assert report.gaps == sum(len(h) for h in holes.values())
    assert report.missing_bars == sum(sum(h) for h in holes.values())
    assert report.bars == len(released)


def test_fill_policy_inserts_flat_candles_at_the_previous_close() -> None:
    report = FeedReport()
    stitch = CandleStitcher(("A",), TF, GapPolicy.FILL, report, first_ts=0)
    stitch.add("A", [_row(0, 100.0), _row(3 * TF, 110.0)], venue_now=10 * TF)
    bars = stitch.ready(10 * TF, late_s=0)
    assert [(b.ts, b.close, b.volume) for b in bars] == [
        (0, 100.5, 3.0),
        (TF, 100.5, 0.0),
        (2 * TF, 100.5, 0.0),
        (3 * TF, 110.5, 3.0),
    ]
    assert (report.gaps, report.missing_bars, report.filled_bars) == (1, 2, 2)


def test_fail_policy_refuses_the_gap_naming_the_param() -> None:
    stitch = CandleStitcher(("A",), TF, GapPolicy.FAIL, FeedReport(), first_ts=0)
    with pytest.raises(DataError, match=r"A: .*1970-01-01 00:00 and 1970-01-01 00:02 .*fail"):
        stitch.add("A", [_row(0), _row(2 * TF)], venue_now=10 * TF)


def test_a_late_symbol_is_passed_over_and_its_late_candle_dropped() -> None:
    report = FeedReport()
    stitch = CandleStitcher(SYMBOLS, TF, GapPolicy.TRADE, report, first_ts=0)
    stitch.add("A", [_row(0)], venue_now=TF)
    assert stitch.ready(TF, late_s=30) == []  # B's candle may still come
    released = stitch.ready(TF + 30, late_s=30)
    assert [(b.ts, b.symbol) for b in released] == [(0, "A")]
    stitch.add("B", [_row(0), _row(TF)], venue_now=2 * TF)
    stitch.add("A", [_row(TF)], venue_now=2 * TF)
    assert [(b.ts, b.symbol) for b in stitch.ready(2 * TF, late_s=30)] == [(TF, "A"), (TF, "B")]
    assert (report.gaps, report.missing_bars) == (1, 1)
    assert any("dropped" in n for n in report.notes)


def test_rows_without_prices_are_skipped_and_noted() -> None:
    report = FeedReport()
    stitch = CandleStitcher(("A",), TF, GapPolicy.TRADE, report, first_ts=0)
    stitch.add("A", [[0, None, 1, 1, 1, 1], _row(TF), [2 * TF * 1000, 5, 6, 4, 5, None]], 5 * TF)
    bars = stitch.ready(5 * TF, late_s=0)
    assert [(b.ts, b.volume) for b in bars] == [(TF, 3.0), (2 * TF, 0.0)]
    assert any("no prices" in n for n in report.notes)


@pytest.mark.parametrize(
    ("now", "warmup", "resume", "start"),
    [
        (10 * TF + 5, 3, 0, 7 * TF),  # candles 7, 8, 9 closed before now
        (10 * TF, 3, 0, 7 * TF),  # candle 9 closes exactly now
        (10 * TF + 5, 0, 0, 10 * TF),  # no warm-up: the next candle to close
        (10 * TF + 5, 2, 5 * TF, 3 * TF),  # restart: 2 before the first unhandled (5)
        (10 * TF + 5, 2, 9 * TF + 30, 7 * TF),  # resume point inside the warm-up: warm-up wins
    ],
)
def test_history_start(now: float, warmup: int, resume: int, start: int) -> None:
    assert history_start(now, TF, warmup, resume) == start
