"""The ``symbol`` label of the order, fill, fee and slippage series is bounded by the spec (W34).

``metric_labels`` keeps labels to bounded values: a symbol is one the spec lists, else ``other``
(as the position and funding series already did). The listener labelled orders, fills and fees
with the venue's own symbol: a person's trade in another symbol on the same account added
series of its own, one per symbol traded.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.service.paper_bots import paper_controller, paper_manifest
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
from tradefleet_runtime.service.controller import _Listener
from tradefleet_runtime.service.metric_labels import OTHER_SYMBOL

T0 = 1_700_000_000


def test_an_order_and_a_fill_outside_the_specs_symbols_are_labelled_other(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    try:
        controller = paper_controller(paper_manifest("labels", {"name": "ema-cross"}), journal)
        listener = _Listener(controller)
        for symbol in ("XRPUSDT", "EURUSD"):
            order = Order(f"venue-{symbol}", symbol, Side.BUY, 1.0, OrderType.MARKET)
            listener.on_order(order, OrderUpdate(order.client_order_id, OrderStatus.FILLED, T0))
            fill = Fill(order.client_order_id, symbol, Side.BUY, 1.0, 0.5, 0.001, T0, symbol)
            listener.on_fill(fill, None, Position(symbol, 1.0, 0.5))
        text = generate_latest(controller.metrics.registry).decode()
    finally:
        journal.close()
    labelled = {
        (family.name, sample.labels["symbol"])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if family.name in ("tradefleet_orders", "tradefleet_fills", "tradefleet_fees")
    }
    assert {symbol for _, symbol in labelled} == {"EURUSD", OTHER_SYMBOL}, labelled
    assert len({name for name, _ in labelled}) == 3, labelled  # orders, fills and fees each
