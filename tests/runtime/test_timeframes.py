"""Higher timeframes are built from base bars and handed over only once closed."""

from __future__ import annotations

import pytest

from tests.runtime.helpers import HOUR, T0, Scripted, bar, run
from tradefleet_runtime.aggregation import BarAggregator
from tradefleet_runtime.contracts import Subscription
from tradefleet_runtime.model import Bar
from tradefleet_runtime.timeframes import bucket_start, format_timeframe, parse_timeframe


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1m", 60),
        ("5m", 300),
        ("1h", 3600),
        ("4h", 14400),
        ("1d", 86400),
        ("M5", 300),
        ("H1", 3600),
        ("D1", 86400),
    ],
)
def test_parse_timeframe(text: str, seconds: int) -> None:
    assert parse_timeframe(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "h1", "0m", "-1h"])
def test_bad_timeframes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="timeframe"):
        parse_timeframe(text)


def test_format_timeframe_round_trips() -> None:
    assert [format_timeframe(s) for s in (60, 3600, 14400, 86400, 604800)] == [
        "1m",
        "1h",
        "4h",
        "1d",
        "1w",
    ]


def test_weekly_buckets_start_on_monday() -> None:
    monday = 1_700_438_400  # 2023-11-20 00:00 UTC, a Monday
    assert bucket_start(monday + 3 * 86400 + 5, 604800) == monday


def test_four_hour_bars_from_hourly_bars() -> None:
    aggregator = BarAggregator("X", 4 * HOUR)
    outputs = [aggregator.add(bar(i, 10 + i, 20 + i, 5 + i, 11 + i, "X")) for i in range(8)]
    closed = [after for _, after in outputs if after is not None]
    assert [b.ts for b in closed] == [T0, T0 + 4 * HOUR]
    first = closed[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (10, 23, 5, 14, 4)
    assert all(before is None for before, _ in outputs)


def test_a_gap_closes_the_unfinished_bar_before_the_next_bucket() -> None:
    aggregator = BarAggregator("X", 4 * HOUR)
    assert aggregator.add(bar(0, 1, 2, 1, 2, "X")) == (None, None)
    assert aggregator.add(bar(1, 2, 3, 1, 2, "X")) == (None, None)
    before, after = aggregator.add(bar(5, 3, 4, 2, 3, "X"))  # bars 2, 3 and 4 are missing
    assert before is not None and after is None
    assert (before.ts, before.high, before.close) == (T0, 3, 2)


class TwoTimeframes(Scripted):
    def subscriptions(self, symbols: object, base_timeframe_s: int) -> list[Subscription]:
        return [Subscription("TEST", HOUR), Subscription("TEST", 4 * HOUR)]


def test_strategy_gets_the_higher_bar_right_after_its_last_base_bar() -> None:
    strategy = TwoTimeframes()
    run(strategy, [bar(i, 1, 2, 1, 1.5) for i in range(8)])
    seen = [(b.timeframe_s, b.ts) for b in strategy.seen]
    assert seen[:5] == [
        (HOUR, T0),
        (HOUR, T0 + HOUR),
        (HOUR, T0 + 2 * HOUR),
        (HOUR, T0 + 3 * HOUR),
        (4 * HOUR, T0),
    ]
    four_hour = [b for b in strategy.seen if b.timeframe_s == 4 * HOUR]
    assert [b.close_ts for b in four_hour] == [T0 + 4 * HOUR, T0 + 8 * HOUR]
    # When the 4h bar arrives the clock stands at its close: nothing later is known.
    assert all(isinstance(b, Bar) for b in four_hour)


def test_subscribing_to_a_finer_timeframe_is_refused() -> None:
    class Finer(Scripted):
        def subscriptions(self, symbols: object, base_timeframe_s: int) -> list[Subscription]:
            return [Subscription("TEST", 1800)]

    with pytest.raises(ValueError, match="multiple of the base timeframe"):
        run(Finer(), [bar(0, 1, 1, 1, 1)])
