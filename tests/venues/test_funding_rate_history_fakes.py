"""The funding-rate history endpoints of the fake venues, read by the real ccxt: Binance
USDⓈ-M ``GET /fapi/v1/fundingRate`` (oldest first, ``startTime`` + ``limit``) and Bybit
``GET /v5/market/funding/history`` (newest first; ``startTime`` alone refused). What a
history lists is what the fake pays: an instant the clock passes is listed at the rate a
position paid then.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from tests.venues.binance.fixtures import fake_binance, make_ccxt_binance  # noqa: F401
from tests.venues.binance.server import FakeBinance
from tests.venues.bybit.fixtures import fake_bybit, make_ccxt_bybit  # noqa: F401
from tests.venues.bybit.server import FakeBybit
from tests.venues.funding_schedule import EIGHT_HOURS_MS

PERP = "BTC/USDT:USDT"
T0 = 1_672_531_200_000  # 2023-01-01 00:00 UTC, ms
D = Decimal
RATES = ["0.0001", "-0.0002", "0.0003", "0.00004", "-0.00005"]


def test_binance_lists_rows_in_its_own_shape_oldest_first_from_start_time(
    fake_binance: FakeBinance,  # noqa: F811
) -> None:
    assert fake_binance.seed_funding_history("BTCUSDT", T0, RATES, mark="42000.5") == [
        T0 + i * EIGHT_HOURS_MS for i in range(5)
    ]
    usdm = make_ccxt_binance(fake_binance, futures=True)
    rows = usdm.fapiPublicGetFundingRate({"symbol": "BTCUSDT", "startTime": T0, "limit": 2})
    # Binance's example: fundingTime a number, the rest strings, markPrice the mark then
    assert rows == [
        {
            "symbol": "BTCUSDT",
            "fundingRate": "0.00010000",
            "fundingTime": T0,
            "markPrice": "42000.50000000",
        },
        {
            "symbol": "BTCUSDT",
            "fundingRate": "-0.00020000",
            "fundingTime": T0 + EIGHT_HOURS_MS,
            "markPrice": "42000.50000000",
        },
    ]
    # without startTime: the latest limit rows, still oldest first
    latest = usdm.fapiPublicGetFundingRate({"symbol": "BTCUSDT", "limit": 2})
    assert [r["fundingTime"] for r in latest] == [T0 + 3 * EIGHT_HOURS_MS, T0 + 4 * EIGHT_HOURS_MS]
    # endTime inclusive
    upto = usdm.fapiPublicGetFundingRate(
        {"symbol": "BTCUSDT", "startTime": T0, "endTime": T0 + EIGHT_HOURS_MS}
    )
    assert len(upto) == 2
    history = usdm.fetch_funding_rate_history(PERP, T0, 10)
    assert [(h["timestamp"], h["fundingRate"]) for h in history] == [
        (T0 + i * EIGHT_HOURS_MS, float(r)) for i, r in enumerate(RATES)
    ]
    with pytest.raises(ccxt.BadSymbol):
        usdm.fapiPublicGetFundingRate({"symbol": "NOPEUSDT"})
    with pytest.raises(ccxt.BadRequest, match="Start time is greater than end time"):
        usdm.fapiPublicGetFundingRate({"symbol": "BTCUSDT", "startTime": T0 + 1, "endTime": T0})


def test_binance_cuts_a_limit_above_1000(fake_binance: FakeBinance) -> None:  # noqa: F811
    fake_binance.seed_funding_history("BTCUSDT", T0, ["0.0001"] * 1005)
    usdm = make_ccxt_binance(fake_binance, futures=True)
    rows = usdm.fapiPublicGetFundingRate({"symbol": "BTCUSDT", "startTime": T0, "limit": 5000})
    assert len(rows) == 1000 and rows[0]["fundingTime"] == T0


def test_bybit_lists_the_newest_rows_of_the_range_newest_first(
    fake_bybit: FakeBybit,  # noqa: F811
) -> None:
    fake_bybit.seed_funding_history("BTCUSDT", T0, RATES)
    ex = make_ccxt_bybit(fake_bybit)
    answer = ex.publicGetV5MarketFundingHistory(
        {
            "category": "linear",
            "symbol": "BTCUSDT",
            "startTime": T0,
            "endTime": T0 + 10 * EIGHT_HOURS_MS,
            "limit": 2,
        }
    )
    # the envelope, and Bybit's row: every field a string
    assert answer["retCode"] == 0 and answer["result"]["category"] == "linear"
    assert answer["result"]["list"] == [
        {
            "symbol": "BTCUSDT",
            "fundingRate": rate,
            "fundingRateTimestamp": str(T0 + i * EIGHT_HOURS_MS),
        }
        for i, rate in ((4, "-0.00005"), (3, "0.00004"))
    ]
    # "Passing only startTime returns an error."
    with pytest.raises(ccxt.BadRequest):
        ex.publicGetV5MarketFundingHistory(
            {"category": "linear", "symbol": "BTCUSDT", "startTime": T0}
        )
    with pytest.raises(ccxt.BadSymbol):
        ex.publicGetV5MarketFundingHistory({"category": "linear", "symbol": "NOPEUSDT"})
    history = ex.fetch_funding_rate_history(PERP, T0, 10, {"until": T0 + 10 * EIGHT_HOURS_MS})
    assert [(h["timestamp"], h["fundingRate"]) for h in history] == [
        (T0 + i * EIGHT_HOURS_MS, float(r)) for i, r in enumerate(RATES)
    ]


def test_bybit_cuts_a_limit_above_200(fake_bybit: FakeBybit) -> None:  # noqa: F811
    fake_bybit.seed_funding_history("BTCUSDT", T0, ["0.0001"] * 205)
    ex = make_ccxt_bybit(fake_bybit)
    rows = ex.publicGetV5MarketFundingHistory(
        {"category": "linear", "symbol": "BTCUSDT", "limit": 1000}
    )["result"]["list"]
    assert len(rows) == 200
    assert rows[0]["fundingRateTimestamp"] == str(T0 + 204 * EIGHT_HOURS_MS)


def _binance_paid(fake: Any) -> tuple[int, Decimal, list[dict[str, Any]]]:
    usdm = make_ccxt_binance(fake, futures=True)
    usdm.create_order(PERP, "market", "buy", 2)
    at = fake.pass_funding_time()
    (income,) = fake.funding_income()
    rows = usdm.fetch_funding_rate_history(PERP, at, 10)
    return at, income.income, rows


def _bybit_paid(fake: Any) -> tuple[int, Decimal, list[dict[str, Any]]]:
    ex = make_ccxt_bybit(fake)
    ex.create_order(PERP, "market", "buy", 2)
    at = fake.pass_funding_time()
    (execution,) = fake.funding_executions()
    rows = ex.fetch_funding_rate_history(PERP, at, 10, {"until": at})
    return at, -execution.fee, rows


@pytest.mark.parametrize("venue", ["binance", "bybit"])
def test_an_instant_the_clock_passes_is_listed_at_the_rate_it_paid(
    venue: str, request: pytest.FixtureRequest
) -> None:
    """2 BTC long at 50,000 held over a funding instant at -0.0003: the account receives 30,
    and the history lists that instant at -0.0003."""
    fake = request.getfixturevalue(f"fake_{venue}")
    fake.set_funding_rate("BTCUSDT", "-0.0003")
    at, received, rows = (_binance_paid if venue == "binance" else _bybit_paid)(fake)
    assert received == D("30")
    assert [(r["timestamp"], r["fundingRate"]) for r in rows] == [(at, -0.0003)]
    # and the instant cannot be seeded again at another rate
    with pytest.raises(ValueError, match="settled at"):
        fake.seed_funding_history("BTCUSDT", at, ["0.0001"])


@pytest.mark.parametrize("venue", ["binance", "bybit"])
def test_a_seed_must_be_on_the_schedule_and_in_the_venues_past(
    venue: str, request: pytest.FixtureRequest
) -> None:
    fake = request.getfixturevalue(f"fake_{venue}")
    with pytest.raises(ValueError, match="not a funding instant"):
        fake.seed_funding_history("BTCUSDT", T0 + 1, ["0.0001"])
    future = fake.next_funding_time()
    with pytest.raises(ValueError, match="after the venue's clock"):
        fake.seed_funding_history("BTCUSDT", future, ["0.0001"])
