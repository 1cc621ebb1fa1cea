"""Quantities and prices in the trade log's lines and the journal's resize reasons are plain,
exact numbers: no exponent and every digit the deal has.

A bot on MetaTrader 5 counts units, so 12 lots of EURUSD are 1,200,000 euros: formatted with
``:g`` (six significant digits) the lines said "fill: buy 1.2e+06 EURUSD ... position +1.2e+06",
"trade closed: long 1.2e+06 EURUSD" and "resized from 1.2e+06 to 200000: fill N (sell 1e+06
EURUSD ...)"; and a US30 fill at 44123.45 was logged "@ 44123.4", a price the deal never had.
"""

from __future__ import annotations

import logging

import pytest

from tests.runtime.helpers import Scripted, bar, make_engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Side,
)
from tradefleet_runtime.trade_log import TradeLogListener, number_text

TWELVE_LOTS = 1_200_000.0  # euros
SL, TP = 1.05, 1.20


def _logged_fill(
    caplog: pytest.LogCaptureFixture, symbol: str, quantity: float, price: float
) -> str:
    listener = TradeLogListener("eurusd-mt5-live", "USD")
    fill = Fill("tf-1", symbol, Side.BUY, quantity, price, 0.0, 1_736_121_600, "50000002", "market")
    position = Position(symbol, quantity, price, 0.0, 1_736_121_600)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tradefleet.trading"):
        listener.on_fill(fill, None, position)
    (record,) = caplog.records
    return record.getMessage()


def test_a_twelve_lot_fill_is_logged_in_plain_units(caplog: pytest.LogCaptureFixture) -> None:
    said = _logged_fill(caplog, "EURUSD", TWELVE_LOTS, 1.10012)
    assert said == "fill: buy 1200000 EURUSD @ 1.10012 (market), fee 0.00; position +1200000"


def test_an_index_fill_is_logged_at_the_deals_price(caplog: pytest.LogCaptureFixture) -> None:
    said = _logged_fill(caplog, "US30", 10.0, 44123.45)
    assert "@ 44123.45 " in said and "position +10" in said, said


def test_an_order_line_says_its_quantity_and_price_plainly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    order = Order("tf1", "US30", Side.SELL, 0.00005, OrderType.LIMIT, price=44123.45)
    with caplog.at_level(logging.INFO, logger="tradefleet.trading"):
        TradeLogListener("bot").on_order(order, OrderUpdate("tf1", OrderStatus.OPEN, 1))
    (record,) = caplog.records
    assert record.getMessage() == "order open: sell 0.00005 US30 limit @ 44123.45"


@pytest.mark.parametrize(
    ("value", "sign", "text"),
    [
        (1_200_000.0, "", "1200000"),
        (44123.45, "", "44123.45"),
        (0.1 + 0.2, "", "0.3"),  # no float noise
        (5e-05, "", "0.00005"),
        (1e15, "", "1000000000000000"),
        (1_200_000.0, "+", "+1200000"),
        (-2.5, "+", "-2.5"),
        (-0.0, "+", "+0"),  # flat, as `:+g` said it
    ],
)
def test_number_text_has_no_exponent_and_no_noise(value: float, sign: str, text: str) -> None:
    assert number_text(value, sign) == text


def test_a_closed_trade_of_twelve_lots_is_logged_in_plain_units(
    caplog: pytest.LogCaptureFixture,
) -> None:
    strategy = Scripted(
        {
            0: lambda ctx, b: ctx.buy("TEST", TWELVE_LOTS),
            2: lambda ctx, b: ctx.sell("TEST", TWELVE_LOTS),
        }
    )
    engine = make_engine(strategy, broker={"leverage": 200})
    TradeLogListener("bot", "USD").attach(engine)
    with caplog.at_level(logging.INFO, logger="tradefleet.trading"):
        engine.run([bar(i, 1.10012, 1.101, 1.099, 1.10012) for i in range(4)])
    (closed,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("trade")]
    assert closed.startswith("trade closed: long 1200000 TEST 1.10012 → 1.10012, net P&L"), closed


def test_a_bracket_cut_by_a_reduce_is_journaled_in_plain_units() -> None:
    journal = Journal(":memory:")
    strategy = Scripted(
        {
            0: lambda ctx, b: ctx.buy("TEST", TWELVE_LOTS, stop_loss=SL, take_profit=TP),
            2: lambda ctx, b: ctx.sell("TEST", 1_000_000.0),
        }
    )
    # A 1:200 account: 12 lots at 1.1 on 10,000 are 132x equity.
    engine = make_engine(strategy, journal=journal, broker={"leverage": 200})
    engine.run([bar(i, 1.1, 1.101, 1.099, 1.1) for i in range(4)])
    rows = journal.query("SELECT client_order_id, reason FROM order_status")
    (entry,) = journal.query("SELECT client_order_id FROM orders WHERE stop_loss IS NOT NULL")
    reason = dict(rows)[f"{entry[0]}-sl"]
    assert reason.startswith("resized from 1200000 to 200000: fill "), reason
    assert "(sell 1000000 TEST, order " in reason and reason.endswith("at 200000"), reason
