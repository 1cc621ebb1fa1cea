"""The paper broker builds its hot-path values positionally (``tuple.__new__``, skipping the
named tuple's generated constructor): each must still have every field of its type, or a
field added to the type (``OrderUpdate.price``) leaves it one short, and ``_replace`` or a
read of the new field fails far from here."""

from __future__ import annotations

from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.model import Order, OrderStatus, OrderType, OrderUpdate, Side


def test_an_accepted_orders_update_has_every_field_of_its_type() -> None:
    broker = PaperBroker(PaperBrokerParams())
    broker.connect(BrokerContext("b", "backtest", ("BTCUSDT",), "USDT", 1e6))  # type: ignore[arg-type]
    update = broker.submit(
        Order("o1", "BTCUSDT", Side.BUY, 1.0, OrderType.LIMIT, price=100.0, created_ts=60)
    )
    assert update.status is OrderStatus.OPEN
    assert len(update) == len(OrderUpdate._fields)
    assert update._replace(venue_order_id="v1").price is None
