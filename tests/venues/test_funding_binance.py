"""Funding payments on the fake Binance USDⓈ-M, read by the real ccxt.

ccxt's ``binanceusdm.fetch_funding_history`` calls ``fapiPrivateGetIncome`` (signed
``GET /fapi/v1/income`` with ``incomeType=FUNDING_FEE``, ``symbol``, ``startTime`` = since,
``limit``) and ``parse_income`` maps a row to ``amount`` = ``income`` (Binance's sign:
negative when the account paid), ``id`` = ``tranId``, ``timestamp`` = ``time``, ``code`` =
``asset``.  Expected values are worked out here from the position, the mark and the rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from tests.venues.binance.fixtures import fake_binance, make_ccxt_binance  # noqa: F401
from tests.venues.binance.server import FakeBinance
from tests.venues.funding_schedule import EIGHT_HOURS_MS
from tests.venues.venue_checks import call, session

PERP = "BTC/USDT:USDT"
D = Decimal


@pytest.fixture(autouse=True)
def usual_rate(fake_binance: FakeBinance) -> None:  # noqa: F811
    """The real venue's usual rate, 0.0001, for every symbol (the fake's default is 0)."""
    with fake_binance.state.lock:
        fake_binance.state.funding.default_rate = D("0.0001")


@pytest.fixture
def usdm(fake_binance: FakeBinance) -> Iterator[Any]:  # noqa: F811
    yield make_ccxt_binance(fake_binance, futures=True)


def wallet(fake: FakeBinance) -> Decimal:
    return fake.account().futures_wallet["USDT"]


def open_position(ex: Any, side: str, amount: float = 2) -> None:
    """A market order at the fake's BTCUSDT price, 50,000."""
    ex.create_order(PERP, "market", side, amount)


@pytest.mark.parametrize(
    ("side", "rate", "amount"),
    [
        ("buy", "0.0001", -10.0),  # a long pays a positive rate: 2 × 50,000 × 0.0001
        ("sell", "0.0001", 10.0),  # a short receives it
        ("buy", "-0.0001", 10.0),  # a negative rate: the long receives
        ("sell", "-0.0001", -10.0),  # and the short pays
    ],
)
def test_one_settlement_is_one_income_row_and_moves_the_wallet_by_it(
    fake_binance: FakeBinance,  # noqa: F811
    usdm: Any,
    side: str,
    rate: str,
    amount: float,
) -> None:
    fake_binance.set_funding_rate("BTCUSDT", rate)
    open_position(usdm, side)
    before = wallet(fake_binance)
    at = fake_binance.pass_funding_time()
    assert at % EIGHT_HOURS_MS == 0  # 00:00, 08:00 or 16:00 UTC
    assert wallet(fake_binance) - before == D(str(amount))

    history = usdm.fetch_funding_history(PERP, at)

    assert len(history) == 1
    entry = history[0]
    assert entry["amount"] == amount  # ccxt keeps Binance's sign: negative = paid
    assert entry["code"] == "USDT" and entry["symbol"] == PERP
    assert entry["timestamp"] == at
    assert entry["info"]["incomeType"] == "FUNDING_FEE" and entry["info"]["tradeId"] == ""
    assert entry["id"] == str(fake_binance.funding_income()[0].tran_id)
    sent = fake_binance.requests[-1]
    assert (sent.method, sent.path) == ("GET", "/fapi/v1/income")
    assert sent.params["incomeType"] == "FUNDING_FEE" and sent.params["symbol"] == "BTCUSDT"
    assert sent.params["startTime"] == str(at) and "signature" in sent.params
    assert [e["id"] for e in usdm.fetch_funding_history(PERP, at)] == [entry["id"]]  # stable


def test_the_row_shape_is_the_one_ccxt_parses(
    fake_binance: FakeBinance,  # noqa: F811
    usdm: Any,
) -> None:
    """The keys and JSON types of ccxt's ``parse_income`` sample (binance.py) and Binance's
    "Get Income History" example (``tranId`` a number, ``time`` a number)."""
    open_position(usdm, "buy")
    at = fake_binance.pass_funding_time()
    [row] = usdm.fapiPrivateGetIncome({"incomeType": "FUNDING_FEE"})
    assert set(row) == {
        "symbol",
        "incomeType",
        "income",
        "asset",
        "info",
        "time",
        "tranId",
        "tradeId",
    }
    assert row["income"] == "-10.00000000" and row["asset"] == "USDT"
    assert row["time"] == at and isinstance(row["tranId"], int)
    assert row["info"] == "FUNDING_FEE" and row["symbol"] == "BTCUSDT"


def test_no_open_position_pays_nothing(
    fake_binance: FakeBinance,  # noqa: F811
    usdm: Any,
) -> None:
    start = wallet(fake_binance)
    first = fake_binance.pass_funding_time()
    assert usdm.fetch_funding_history(PERP, first - 1) == []
    open_position(usdm, "buy")
    usdm.create_order(PERP, "market", "sell", 2, None, {"reduceOnly": True})
    closed = wallet(fake_binance)
    fake_binance.pass_funding_time()
    assert usdm.fetch_funding_history(PERP, first - 1) == []
    assert wallet(fake_binance) == closed and closed == start - D("100")  # only the two fees


def test_two_settlements_are_two_rows_with_their_own_ids_and_since_filters(
    fake_binance: FakeBinance,  # noqa: F811
    usdm: Any,
) -> None:
    open_position(usdm, "buy")
    first = fake_binance.pass_funding_time()
    fake_binance.set_price("BTCUSDT", 60_000)  # the second instant pays at the new mark
    second = fake_binance.pass_funding_time()
    assert second == first + EIGHT_HOURS_MS

    both = usdm.fetch_funding_history(PERP, first)
    assert [e["timestamp"] for e in both] == [first, second]
    assert [e["amount"] for e in both] == [-10.0, -12.0]
    assert len({e["id"] for e in both}) == 2
    later = usdm.fetch_funding_history(PERP, first + 1)
    assert [e["timestamp"] for e in later] == [second]
    # the venue filters, not only ccxt: startTime and endTime are inclusive
    raw = usdm.fapiPrivateGetIncome
    assert [r["time"] for r in raw({"incomeType": "FUNDING_FEE", "startTime": first + 1})] == [
        second
    ]
    assert [r["time"] for r in raw({"incomeType": "FUNDING_FEE", "endTime": first})] == [first]


def test_the_clock_passing_a_funding_instant_settles_it_at_the_price_before_the_move(
    fake_binance: FakeBinance,  # noqa: F811
    usdm: Any,
) -> None:
    """No helper: the test moves the venue's clock, and the next price move (or request)
    pays what fell due, at the mark the position had then."""
    open_position(usdm, "buy")
    at = fake_binance.next_funding_time()
    fake_binance.signing_clock = usdm.milliseconds  # the venue's time runs ahead of ccxt's
    fake_binance.state.clock.frozen_ms = at + 60_000
    fake_binance.set_price("BTCUSDT", 60_000)
    assert [r.income for r in fake_binance.funding_income()] == [D("-10")]
    assert [e["timestamp"] for e in usdm.fetch_funding_history(PERP, at)] == [at]


def test_a_request_after_the_funding_instant_settles_it(
    fake_binance: FakeBinance,  # noqa: F811
    usdm: Any,
) -> None:
    open_position(usdm, "sell")
    at = fake_binance.next_funding_time()
    fake_binance.signing_clock = usdm.milliseconds
    fake_binance.state.clock.frozen_ms = at
    balance = usdm.fetch_balance()
    assert balance["USDT"]["total"] == pytest.approx(100_000 - 50 + 10)  # taker fee, funding


def test_income_filters_by_type_and_symbol_and_pages_oldest_first(
    fake_binance: FakeBinance,  # noqa: F811
    usdm: Any,
) -> None:
    """Without incomeType every type comes (the trades' COMMISSION and REALIZED_PNL too);
    with a startTime the first ``limit`` rows from it, else the latest ``limit``."""
    open_position(usdm, "buy")
    first = fake_binance.pass_funding_time()
    fake_binance.set_price("BTCUSDT", 51_000)
    usdm.create_order(PERP, "market", "sell", 2, None, {"reduceOnly": True})
    raw = usdm.fapiPrivateGetIncome

    every = raw({})
    assert [r["incomeType"] for r in every] == [
        "COMMISSION",
        "FUNDING_FEE",
        "REALIZED_PNL",
        "COMMISSION",
    ]
    assert [r["income"] for r in every] == [
        "-50.00000000",
        "-10.00000000",
        "2000.00000000",
        "-51.00000000",
    ]
    assert [r["time"] for r in every] == sorted(r["time"] for r in every)
    assert every[0]["tradeId"] != "" and every[1]["time"] == first
    assert [r["incomeType"] for r in raw({"incomeType": "COMMISSION"})] == ["COMMISSION"] * 2
    assert [r["incomeType"] for r in raw({"incomeType": "FUNDING_FEE"})] == ["FUNDING_FEE"]
    assert raw({"incomeType": "TRANSFER"}) == []
    assert raw({"symbol": "ETHUSDT"}) == []
    since = every[0]["time"]
    assert [r["incomeType"] for r in raw({"startTime": since, "limit": 2})] == [
        "COMMISSION",
        "FUNDING_FEE",
    ]
    assert [r["incomeType"] for r in raw({"startTime": since, "limit": 2, "page": 2})] == [
        "REALIZED_PNL",
        "COMMISSION",
    ]
    assert [r["income"] for r in raw({"limit": 1})] == ["-51.00000000"]  # the latest
    assert [r["income"] for r in raw({"limit": 1, "page": 2})] == ["2000.00000000"]


def test_without_a_time_range_only_the_last_seven_days_come(
    fake_binance: FakeBinance,  # noqa: F811
    usdm: Any,
) -> None:
    open_position(usdm, "buy")
    instants = [fake_binance.pass_funding_time() for _ in range(22)]  # 7 days and 8 hours
    rows = usdm.fapiPrivateGetIncome({"incomeType": "FUNDING_FEE"})
    assert [r["time"] for r in rows] == instants[1:]  # the first is 7 days and 1 ms old
    assert len(usdm.fetch_funding_history(PERP, instants[0])) == 22


def test_bad_income_parameters_are_refused_naming_the_parameter(
    fake_binance: FakeBinance,  # noqa: F811
    usdm: Any,
) -> None:
    with pytest.raises(ccxt.BadRequest, match="'incomeType' is not valid"):
        usdm.fapiPrivateGetIncome({"incomeType": "FUNDING"})
    with pytest.raises(ccxt.BadRequest, match="Start time is greater than end time"):
        usdm.fapiPrivateGetIncome({"startTime": 2_000, "endTime": 1_000})
    with pytest.raises(ccxt.BadRequest, match="'page' is not valid"):
        usdm.fapiPrivateGetIncome({"page": 0})
    with pytest.raises(ccxt.BadSymbol):
        usdm.fapiPrivateGetIncome({"symbol": "DOGEUSDT"})


def test_premium_index_shows_the_rate_the_next_instant_pays_and_when(
    fake_binance: FakeBinance,  # noqa: F811
    usdm: Any,
) -> None:
    fake_binance.set_funding_rate("BTCUSDT", "-0.0002")
    rate = usdm.fetch_funding_rate(PERP)
    assert rate["fundingRate"] == -0.0002
    assert rate["fundingTimestamp"] == fake_binance.next_funding_time()
    open_position(usdm, "buy")
    at = fake_binance.pass_funding_time()
    assert usdm.fetch_funding_rate(PERP)["fundingTimestamp"] == at + EIGHT_HOURS_MS
    assert [e["amount"] for e in usdm.fetch_funding_history(PERP, at)] == [20.0]
    assert usdm.fetch_funding_rate("ETH/USDT:USDT")["fundingRate"] == 0.0001


def test_a_rate_for_an_unknown_symbol_is_refused_naming_it(
    fake_binance: FakeBinance,  # noqa: F811
) -> None:
    with pytest.raises(ValueError, match="'DOGEUSDT' is not a USDⓈ-M symbol"):
        fake_binance.set_funding_rate("DOGEUSDT", "0.0001")
    with pytest.raises(ValueError, match="funding rate of BTCUSDT must be a finite number"):
        fake_binance.set_funding_rate("BTCUSDT", "Infinity")


def test_funding_unavailable_gives_ccxts_503_class_and_the_payment_is_still_there(
    fake_binance: FakeBinance,  # noqa: F811
    usdm: Any,
) -> None:
    open_position(usdm, "buy")
    at = fake_binance.pass_funding_time()
    fake_binance.faults.inject("funding_unavailable", times=2)
    usdm.fetch_balance()  # other reads do not meet it
    usdm.fetch_my_trades(PERP)
    assert usdm.fapiPrivateGetIncome({"incomeType": "COMMISSION"})  # nor other income types
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            usdm.fetch_funding_history(PERP, at)
    assert [r.status for r in fake_binance.requests[-2:]] == [-1, -1]
    assert [e["amount"] for e in usdm.fetch_funding_history(PERP, at)] == [-10.0]


async def test_the_async_client_reads_the_same_history(
    fake_binance: FakeBinance,  # noqa: F811
    usdm: Any,
) -> None:
    open_position(usdm, "sell")
    at = fake_binance.pass_funding_time()
    async with session(make_ccxt_binance(fake_binance, futures=True, async_=True), True) as ex:
        history = await call(ex.fetch_funding_history, PERP, at)
    assert [(e["timestamp"], e["amount"]) for e in history] == [(at, 10.0)]
