"""Funding rows read from the venue's own fields (``ccxt_funding``, pure): the sign from the
account's side whatever ccxt's ``amount`` says, a field that cannot be read named, the windows
a read is made of."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tradefleet_plugins.brokers.ccxt_funding import (
    FUNDING_ROWS,
    funding_rows_of,
    funding_windows,
    payment_of,
)
from tradefleet_plugins.brokers.ccxt_orders import Dialect
from tradefleet_runtime.cash_flows import cash_flow_problem
from tradefleet_runtime.sdk import CashFlow

BINANCE = FUNDING_ROWS[Dialect.BINANCE_USDM]
BYBIT = FUNDING_ROWS[Dialect.BYBIT]
AT = 1_700_006_400_000  # a funding instant (ms)


def _binance(**fields: Any) -> dict[str, Any]:
    """A row of GET /fapi/v1/income as Binance documents it."""
    row: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "incomeType": "FUNDING_FEE",
        "income": "-10.00000000",
        "asset": "USDT",
        "info": "FUNDING_FEE",
        "time": AT,
        "tranId": 2000000001,
        "tradeId": "",
    }
    row.update(fields)
    return row


def _bybit(**fields: Any) -> dict[str, Any]:
    """A funding row of GET /v5/execution/list (the fields read; ccxt's sample has more)."""
    row: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "execType": "Funding",
        "execFee": "10",
        "execTime": str(AT),
        "execId": "8d1ef156-4ec6-4445-9a6c-1c0c24dbd046",
        "feeCurrency": "",
        "side": "Buy",
    }
    row.update(fields)
    return row


@pytest.mark.parametrize(
    ("rows", "row", "amount"),
    [
        (BINANCE, _binance(), -10.0),  # income as the account sees it: paid
        (BINANCE, _binance(income="10.5"), 10.5),  # received
        (BYBIT, _bybit(), -10.0),  # execFee a fee's sign: +10 is paid
        (BYBIT, _bybit(execFee="-10"), 10.0),  # received
    ],
)
def test_the_amount_is_signed_from_the_accounts_side(
    rows: Any, row: dict[str, Any], amount: float
) -> None:
    payment = payment_of(row, rows, "BTCUSDT", "BTCUSDT", "USDT")
    assert payment is not None and payment.problem == ""
    assert payment.flow.amount == amount
    assert payment.flow.ts == AT // 1000 and payment.venue_ms == AT
    assert payment.flow.currency == "USDT" and payment.flow.kind == "funding"


def test_the_flow_carries_the_venues_id_and_the_bots_symbol() -> None:
    payment = payment_of(_binance(), BINANCE, "BTCUSDT", "BTC/USDT:USDT", "USDT")
    assert payment is not None
    assert payment.flow == CashFlow("2000000001", "BTC/USDT:USDT", -10.0, "USDT", AT // 1000)
    assert payment.key == "2000000001"
    bybit = payment_of(_bybit(), BYBIT, "BTCUSDT", "BTCUSDT", "USDT")
    assert bybit is not None and bybit.flow.flow_id == "8d1ef156-4ec6-4445-9a6c-1c0c24dbd046"


def test_a_row_without_a_currency_is_in_the_markets_settle_currency() -> None:
    """Bybit's funding rows leave feeCurrency empty (ccxt then says USDT even for a USDC
    perpetual): the market's settle currency is the payment's."""
    payment = payment_of(_bybit(symbol="BTCPERP"), BYBIT, "BTCPERP", "BTCPERP", "USDC")
    assert payment is not None and payment.flow.currency == "USDC"
    assert payment_of(_bybit(feeCurrency="USDT"), BYBIT, "BTCUSDT", "X", "USDC") is not None


def test_rows_of_another_type_or_market_are_not_payments_of_it() -> None:
    assert payment_of(_binance(incomeType="COMMISSION"), BINANCE, "BTCUSDT", "X", "USDT") is None
    assert payment_of(_bybit(execType="Trade"), BYBIT, "BTCUSDT", "X", "USDT") is None
    assert payment_of(_binance(symbol="ETHUSDT"), BINANCE, "BTCUSDT", "X", "USDT") is None


@pytest.mark.parametrize(
    ("rows", "row", "named"),
    [
        (BINANCE, _binance(income="abc"), "income 'abc' is not a number"),
        (BINANCE, _binance(income=None), "income None is not a number"),
        (BYBIT, _bybit(execFee="NaN"), "execFee 'NaN' is not a number"),
        (BYBIT, _bybit(execFee="Infinity"), "execFee 'Infinity' is not a number"),
    ],
)
def test_an_amount_that_cannot_be_read_is_named_and_the_engine_refuses_it(
    rows: Any, row: dict[str, Any], named: str
) -> None:
    payment = payment_of(row, rows, "BTCUSDT", "BTCUSDT", "USDT")
    assert payment is not None
    assert named in payment.problem and rows.name in payment.problem
    assert math.isnan(payment.flow.amount)
    assert "amount" in cash_flow_problem(payment.flow, ["BTCUSDT"])  # never booked


def test_a_missing_id_or_time_is_named_and_the_row_still_known_by_its_content() -> None:
    payment = payment_of(_binance(tranId=None), BINANCE, "BTCUSDT", "BTCUSDT", "USDT")
    assert payment is not None
    assert "tranId None is missing" in payment.problem and payment.flow.flow_id == ""
    assert payment.key == f"{AT}:-10.00000000"
    assert "flow_id" in cash_flow_problem(payment.flow, ["BTCUSDT"])
    timeless = payment_of(_bybit(execTime=""), BYBIT, "BTCUSDT", "BTCUSDT", "USDT")
    assert timeless is not None and "execTime '' is not a time" in timeless.problem
    assert timeless.flow.ts == 0 and timeless.venue_ms == 0
    assert "ts" in cash_flow_problem(timeless.flow, ["BTCUSDT"])


def test_only_futures_venues_have_funding_rows() -> None:
    assert funding_rows_of(Dialect.BINANCE_USDM) is BINANCE
    assert funding_rows_of(Dialect.BYBIT) is BYBIT
    assert funding_rows_of(Dialect.BINANCE_SPOT) is None
    assert funding_rows_of(Dialect.KRAKEN) is None


def test_windows_cover_the_span_each_at_most_the_width_the_last_open() -> None:
    assert funding_windows(0, 10, 5) == [(0, 4), (5, 9), (10, None)]
    assert funding_windows(0, 9, 5) == [(0, 4), (5, None)]
    assert funding_windows(20, 10, 5) == [(20, None)]  # a start past the end: one read
    with pytest.raises(ValueError, match="width_ms"):
        funding_windows(0, 10, 0)
