"""When funding is due on a fake venue and what a position pays (``funding_schedule``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.venues.funding_schedule import (
    EIGHT_HOURS_MS,
    FundingSchedule,
    check_rate,
    funding_payment,
    funding_times,
    next_funding_time,
)

D = Decimal
H8 = EIGHT_HOURS_MS
DAY = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a funding instant


def test_funding_instants_are_utc_00_08_16_after_exclusive_upto_inclusive() -> None:
    assert funding_times(DAY - 1, DAY, H8) == [DAY]
    assert funding_times(DAY, DAY + H8 - 1, H8) == []  # the instant the count starts at is past
    assert funding_times(DAY - 1, DAY + 2 * H8, H8) == [DAY, DAY + H8, DAY + 2 * H8]
    assert [(t - DAY) // 3_600_000 for t in funding_times(DAY, DAY + 86_400_000, H8)] == [
        8,
        16,
        24,
    ]


def test_next_funding_time_after_an_instant_is_the_following_one() -> None:
    assert next_funding_time(DAY - 1, H8) == DAY
    assert next_funding_time(DAY, H8) == DAY + H8  # the one at DAY is settled at DAY


@pytest.mark.parametrize(
    ("size", "rate", "paid"),
    [
        ("2", "0.0001", "10"),  # a long pays a positive rate
        ("-2", "0.0001", "-10"),  # a short receives it
        ("2", "-0.0001", "-10"),  # a negative rate: the long receives
        ("-2", "-0.0001", "10"),  # and the short pays
        ("0.001", "0.000123456", "0.00617280"),  # 0.0061728, to 8 decimals
        ("0.003", "0.0000000333", "0.00000500"),  # 0.000004995 rounds half up
    ],
)
def test_a_position_pays_size_times_mark_times_rate(size: str, rate: str, paid: str) -> None:
    assert funding_payment(D(size), D("50000"), D(rate)) == D(paid)


def test_the_schedule_pays_each_instant_the_clock_passes_once() -> None:
    schedule = FundingSchedule(settled_ms=DAY - 10)
    assert schedule.due(DAY - 5) == []
    assert schedule.due(DAY + 1) == [DAY]
    assert schedule.due(DAY + 2) == []  # observed again: nothing more
    assert schedule.due(DAY + 2 * H8) == [DAY + H8, DAY + 2 * H8]


def test_a_clock_moved_back_pays_nothing_then_pays_its_new_timeline() -> None:
    schedule = FundingSchedule(settled_ms=DAY + 5)
    assert schedule.due(DAY - H8 - 5) == []  # a test starts a timeline in the past
    assert schedule.settled_ms == DAY - H8 - 5
    assert schedule.due(DAY - H8 + 1) == [DAY - H8]


def test_rates_default_to_nothing_paid_and_are_set_per_symbol() -> None:
    """0 until set: a test holding a position across a funding instant of the wall clock is
    paid nothing it did not set up."""
    schedule = FundingSchedule(settled_ms=DAY)
    assert schedule.rate("BTCUSDT") == D("0")
    schedule.set_rate("BTCUSDT", D("-0.0003"))
    assert schedule.rate("BTCUSDT") == D("-0.0003")
    assert schedule.rate("ETHUSDT") == D("0")


def test_a_rate_that_is_not_finite_or_out_of_bounds_is_refused_naming_the_symbol() -> None:
    with pytest.raises(ValueError, match="funding rate of BTCUSDT must be a finite number"):
        check_rate("BTCUSDT", D("NaN"))
    with pytest.raises(ValueError, match=r"funding rate of ETHUSDT must be within ±0.00375"):
        check_rate("ETHUSDT", D("0.004"), D("0.00375"))
    assert check_rate("ETHUSDT", D("-0.00375"), D("0.00375")) == D("-0.00375")
    with pytest.raises(ValueError, match="interval_ms must be positive"):
        funding_times(0, DAY, 0)
