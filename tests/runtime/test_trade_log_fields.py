"""The trade log's order line: `order_type` is the order's type and `tag` its tag (a market
order tagged "signal" logged `order_type: signal`, so filtering on `order_type=market` found
nothing), and bot times say their zone."""

from __future__ import annotations

import logging

import pytest

from tradefleet_runtime.model import Order, OrderStatus, OrderType, OrderUpdate, Side
from tradefleet_runtime.trade_log import TradeLogListener


def test_an_order_line_names_its_type_and_its_tag_apart(caplog: pytest.LogCaptureFixture) -> None:
    order = Order("tf1", "EURUSD", Side.BUY, 1000.0, OrderType.MARKET, tag="signal")
    with caplog.at_level(logging.INFO, logger="tradefleet.trading"):
        TradeLogListener("bot").on_order(
            order, OrderUpdate("tf1", OrderStatus.FILLED, 1_483_315_200)
        )
    (record,) = caplog.records
    fields = record.__dict__["fields"]
    assert (fields["order_type"], fields["tag"]) == ("market", "signal")
    assert fields["bar_time"] == "2017-01-02T00:00Z"
    assert "signal" in record.getMessage()  # the line still reads by the tag


def test_the_control_cli_says_its_times_are_utc() -> None:
    from tradefleet_runtime.service.cli_control import _ts

    assert _ts(1_483_315_200) == "2017-01-02 00:00:00Z" and _ts(0) == "-"
