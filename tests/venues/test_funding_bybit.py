"""Funding payments on the fake Bybit (linear), read by the real ccxt.

ccxt's ``bybit.fetch_funding_history`` calls ``privateGetV5ExecutionList`` (signed
``GET /v5/execution/list`` with ``execType=Funding``, ``category=linear``, ``symbol``,
``startTime`` = since and ``size`` = limit or 100, a parameter v5 does not have: the page is
``limit``, 50 unless sent) and ``parse_income`` maps a row to ``amount`` = ``execFee``
(Bybit's sign, a fee's: POSITIVE when the account paid, unlike Binance's income), ``id`` =
``execId``, ``timestamp`` = ``execTime``, ``rate`` = ``feeRate`` and ``code`` USDT.
Expected values are worked out here from the position, the mark and the rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from tests.venues.bybit.fixtures import fake_bybit, make_ccxt_bybit  # noqa: F401
from tests.venues.bybit.server import FakeBybit
from tests.venues.funding_schedule import EIGHT_HOURS_MS
from tests.venues.venue_checks import call, session

PERP = "BTC/USDT:USDT"
D = Decimal
# the keys of ccxt's parse_income sample (bybit.py), without the nextPageCursor ccxt adds
SAMPLE_KEYS = {
    "symbol",
    "orderType",
    "underlyingPrice",
    "orderLinkId",
    "orderId",
    "stopOrderType",
    "execTime",
    "feeCurrency",
    "createType",
    "feeRate",
    "tradeIv",
    "blockTradeId",
    "markPrice",
    "execPrice",
    "markIv",
    "orderQty",
    "orderPrice",
    "execValue",
    "closedSize",
    "execType",
    "seq",
    "side",
    "indexPrice",
    "leavesQty",
    "isMaker",
    "execFee",
    "execId",
    "marketUnit",
    "execQty",
}


@pytest.fixture(autouse=True)
def usual_rate(fake_bybit: FakeBybit) -> None:  # noqa: F811
    """The real venue's usual rate, 0.0001, for every symbol (the fake's default is 0)."""
    with fake_bybit.state.lock:
        fake_bybit.state.funding.default_rate = D("0.0001")


@pytest.fixture
def bybit(fake_bybit: FakeBybit) -> Iterator[Any]:  # noqa: F811
    yield make_ccxt_bybit(fake_bybit)


def open_position(ex: Any, side: str, amount: float = 2) -> None:
    """A market order at the fake's BTCUSDT price, 50,000."""
    ex.create_order(PERP, "market", side, amount)


def executions(ex: Any, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ex.privateGetV5ExecutionList({"category": "linear", **params})[
        "result"
    ]["list"]
    return rows


@pytest.mark.parametrize(
    ("side", "rate", "amount"),
    [
        ("buy", "0.0001", 10.0),  # a long pays a positive rate: 2 × 50,000 × 0.0001
        ("sell", "0.0001", -10.0),  # a short receives it
        ("buy", "-0.0001", -10.0),  # a negative rate: the long receives
        ("sell", "-0.0001", 10.0),  # and the short pays
    ],
)
def test_one_settlement_is_one_funding_execution_and_moves_the_wallet_by_it(
    fake_bybit: FakeBybit,  # noqa: F811
    bybit: Any,
    side: str,
    rate: str,
    amount: float,
) -> None:
    fake_bybit.set_funding_rate("BTCUSDT", rate)
    open_position(bybit, side)
    before = fake_bybit.account().wallet
    at = fake_bybit.pass_funding_time()
    assert at % EIGHT_HOURS_MS == 0  # 00:00, 08:00 or 16:00 UTC
    assert fake_bybit.account().wallet - before == -D(str(amount))  # execFee > 0: paid

    history = bybit.fetch_funding_history(PERP, at)

    assert len(history) == 1
    entry = history[0]
    assert entry["amount"] == amount  # ccxt keeps Bybit's sign: positive = paid
    assert entry["code"] == "USDT" and entry["symbol"] == PERP
    assert entry["timestamp"] == at
    assert entry["id"] == fake_bybit.funding_executions()[0].exec_id
    info = entry["info"]
    assert info["execType"] == "Funding" and info["side"] == ("Buy" if side == "buy" else "Sell")
    assert info["execQty"] == "2" and info["execPrice"] == info["markPrice"] == "50000"
    assert info["execValue"] == "100000"
    assert info["orderId"] == f"{at // 1000}-BTCUSDT-{fake_bybit.account().user_id}-{info['side']}"
    # execFee = execValue × feeRate, the rate as the position sees it
    assert D(info["execFee"]) == D(info["execValue"]) * D(info["feeRate"])
    sent = fake_bybit.requests[-1]
    assert (sent.method, sent.path) == ("GET", "/v5/execution/list")
    assert sent.params["execType"] == "Funding" and sent.params["symbol"] == "BTCUSDT"
    assert sent.params["startTime"] == str(at)
    assert [e["id"] for e in bybit.fetch_funding_history(PERP, at)] == [entry["id"]]  # stable


def test_the_row_shape_is_ccxts_sample(
    fake_bybit: FakeBybit,  # noqa: F811
    bybit: Any,
) -> None:
    open_position(bybit, "buy")
    fake_bybit.pass_funding_time()
    [row] = executions(bybit, execType="Funding")
    assert set(row) == SAMPLE_KEYS
    assert row["orderType"] == row["stopOrderType"] == "UNKNOWN"
    assert row["orderQty"] == row["orderPrice"] == row["leavesQty"] == row["closedSize"] == "0"
    assert row["isMaker"] is False and row["orderLinkId"] == "" and row["createType"] == ""


def test_funding_pays_into_the_wallet_and_the_positions_realised_pnl(
    fake_bybit: FakeBybit,  # noqa: F811
    bybit: Any,
) -> None:
    open_position(bybit, "buy")  # taker fee 2 × 50,000 × 0.00055 = 55
    fake_bybit.pass_funding_time()
    [position] = bybit.fetch_positions([PERP])
    assert position["info"]["cumRealisedPnl"] == "-65"
    balance = bybit.fetch_balance()
    assert balance["USDT"]["total"] == pytest.approx(100_000 - 55 - 10)


def test_no_open_position_pays_nothing(
    fake_bybit: FakeBybit,  # noqa: F811
    bybit: Any,
) -> None:
    first = fake_bybit.pass_funding_time()
    assert bybit.fetch_funding_history(PERP, first - 1) == []
    open_position(bybit, "buy")
    bybit.create_order(PERP, "market", "sell", 2, None, {"reduceOnly": True})
    closed = fake_bybit.account().wallet
    fake_bybit.pass_funding_time()
    assert bybit.fetch_funding_history(PERP, first - 1) == []
    assert fake_bybit.account().wallet == closed == D("100000") - D("110")  # the two fees


def test_two_settlements_are_two_rows_with_their_own_ids_and_since_filters(
    fake_bybit: FakeBybit,  # noqa: F811
    bybit: Any,
) -> None:
    open_position(bybit, "buy")
    first = fake_bybit.pass_funding_time()
    fake_bybit.set_price("BTCUSDT", 60_000)  # the second instant pays at the new mark
    second = fake_bybit.pass_funding_time()
    assert second == first + EIGHT_HOURS_MS

    both = bybit.fetch_funding_history(PERP, first)
    assert [e["timestamp"] for e in both] == [first, second]
    assert [e["amount"] for e in both] == [10.0, 12.0]
    assert len({e["id"] for e in both}) == 2
    later = bybit.fetch_funding_history(PERP, first + 1)
    assert [e["timestamp"] for e in later] == [second]
    # the venue filters, newest first, not only ccxt
    assert [r["execTime"] for r in executions(bybit, execType="Funding", startTime=first + 1)] == [
        str(second)
    ]
    assert [r["execTime"] for r in executions(bybit, execType="Funding")] == [
        str(second),
        str(first),
    ]


def test_funding_is_an_execution_type_apart_from_the_fills(
    fake_bybit: FakeBybit,  # noqa: F811
    bybit: Any,
) -> None:
    """Without execType every type comes, newest first; ``fetch_my_trades`` (execType
    Trade) never shows a payment, and the fake's fills list keeps fills only."""
    open_position(bybit, "buy")
    at = fake_bybit.pass_funding_time()
    bybit.create_order(PERP, "market", "sell", 1, None, {"reduceOnly": True})
    assert [r["execType"] for r in executions(bybit)] == ["Trade", "Funding", "Trade"]
    assert [r["execType"] for r in executions(bybit, execType="Trade")] == ["Trade", "Trade"]
    assert [r["execTime"] for r in executions(bybit, execType="Funding")] == [str(at)]
    assert executions(bybit, execType="BustTrade") == []
    assert [t["info"]["execType"] for t in bybit.fetch_my_trades(PERP)] == ["Trade", "Trade"]
    assert len(fake_bybit.state.executions[fake_bybit.api_key]) == 2


def test_pages_are_limit_rows_and_ccxts_size_is_not_a_v5_parameter(
    fake_bybit: FakeBybit,  # noqa: F811
    bybit: Any,
) -> None:
    open_position(bybit, "buy")
    instants = [fake_bybit.pass_funding_time() for _ in range(3)]
    page = bybit.privateGetV5ExecutionList(
        {"category": "linear", "execType": "Funding", "limit": 2}
    )["result"]
    assert [r["execTime"] for r in page["list"]] == [str(instants[2]), str(instants[1])]
    rest = bybit.privateGetV5ExecutionList(
        {"category": "linear", "execType": "Funding", "limit": 2, "cursor": page["nextPageCursor"]}
    )["result"]
    assert [r["execTime"] for r in rest["list"]] == [str(instants[0])] and not rest[
        "nextPageCursor"
    ]
    assert len(executions(bybit, execType="Funding", size=1)) == 3


def test_the_clock_passing_a_funding_instant_settles_it_at_the_price_before_the_move(
    fake_bybit: FakeBybit,  # noqa: F811
    bybit: Any,
) -> None:
    open_position(bybit, "buy")
    at = fake_bybit.next_funding_time()
    fake_bybit.signing_clock = bybit.milliseconds  # the venue's time runs ahead of ccxt's
    fake_bybit.state.clock.frozen_ms = at + 60_000
    fake_bybit.set_price("BTCUSDT", 60_000)
    assert [x.fee for x in fake_bybit.funding_executions()] == [D("10")]
    assert [e["timestamp"] for e in bybit.fetch_funding_history(PERP, at)] == [at]


def test_a_request_after_the_funding_instant_settles_it(
    fake_bybit: FakeBybit,  # noqa: F811
    bybit: Any,
) -> None:
    open_position(bybit, "sell")
    at = fake_bybit.next_funding_time()
    fake_bybit.signing_clock = bybit.milliseconds
    fake_bybit.state.clock.frozen_ms = at
    assert bybit.fetch_balance()["USDT"]["total"] == pytest.approx(100_000 - 55 + 10)


def test_tickers_and_instruments_show_the_rate_and_the_schedule(
    fake_bybit: FakeBybit,  # noqa: F811
    bybit: Any,
) -> None:
    fake_bybit.set_funding_rate("BTCUSDT", "-0.0002")
    rate = bybit.fetch_funding_rate(PERP)
    assert rate["fundingRate"] == -0.0002 and rate["interval"] == "8h"
    assert rate["fundingTimestamp"] == fake_bybit.next_funding_time()
    open_position(bybit, "buy")
    at = fake_bybit.pass_funding_time()
    assert bybit.fetch_funding_rate(PERP)["fundingTimestamp"] == at + EIGHT_HOURS_MS
    assert [e["amount"] for e in bybit.fetch_funding_history(PERP, at)] == [-20.0]  # received
    assert bybit.fetch_funding_rate("ETH/USDT:USDT")["fundingRate"] == 0.0001


def test_a_rate_outside_the_published_bounds_or_symbol_is_refused_naming_it(
    fake_bybit: FakeBybit,  # noqa: F811
) -> None:
    with pytest.raises(ValueError, match=r"funding rate of BTCUSDT must be within ±0\.00375"):
        fake_bybit.set_funding_rate("BTCUSDT", "0.004")
    with pytest.raises(ValueError, match="'DOGEUSDT' is not an instrument"):
        fake_bybit.set_funding_rate("DOGEUSDT", "0.0001")
    fake_bybit.set_funding_rate("BTCUSDT", "-0.00375")
    assert fake_bybit.funding_rate("BTCUSDT") == D("-0.00375")


def test_funding_unavailable_gives_ccxts_503_class_and_the_payment_is_still_there(
    fake_bybit: FakeBybit,  # noqa: F811
    bybit: Any,
) -> None:
    open_position(bybit, "buy")
    at = fake_bybit.pass_funding_time()
    fake_bybit.faults.inject("funding_unavailable", times=2)
    assert len(bybit.fetch_my_trades(PERP)) == 1  # execType Trade: not the funding history
    bybit.fetch_balance()
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            bybit.fetch_funding_history(PERP, at)
    assert [r.status for r in fake_bybit.requests[-2:]] == [-1, -1]
    assert [e["amount"] for e in bybit.fetch_funding_history(PERP, at)] == [10.0]


async def test_the_async_client_reads_the_same_history(
    fake_bybit: FakeBybit,  # noqa: F811
    bybit: Any,
) -> None:
    open_position(bybit, "sell")
    at = fake_bybit.pass_funding_time()
    async with session(make_ccxt_bybit(fake_bybit, async_=True), True) as ex:
        history = await call(ex.fetch_funding_history, PERP, at)
    assert [(e["timestamp"], e["amount"]) for e in history] == [(at, -10.0)]
