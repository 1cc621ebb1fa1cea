"""A reduce-only limit or stop the market is through, sent as a deal on a netting account, is
cut to the position or refused when there is none, as a market order is: it never opens or
reverses a position.

The deal route (a limit through the market, a triggered stop) first went out at the order's
whole volume: a marketable reduce-only exit sent after the position was closed at the venue
(its SL fired, a person closed it, before the engine saw it) opened a position nobody asked
for, and one larger than the position reversed it.
"""

from __future__ import annotations

import pytest

from tests.brokers.mt5.harness import Mt5Harness, updates
from tradefleet_runtime.sdk import OrderStatus, OrderType, Side

LOT = 10_000.0  # 0.1 lot of EURUSD


@pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge
@pytest.mark.parametrize(
    ("order_type", "price"),
    [(OrderType.LIMIT, 1.0990), (OrderType.STOP, 1.1010)],  # a sell limit below the bid,
    ids=["limit", "stop"],  # a sell stop above it (triggered): both through the market
)
@pytest.mark.parametrize("held_lots", [0.0, 0.1])
def test_a_marketable_reduce_only_exit_never_opens_or_reverses(
    held_lots: float, order_type: OrderType, price: float
) -> None:
    venue = Mt5Harness.netting()
    venue.symbols = ("EURUSD",)
    venue.connect()
    try:
        venue.terminal.set_price("EURUSD", 1.1000, 1.1001)
        if held_lots:
            venue.submit(venue.order(Side.BUY, held_lots * 100_000))
            assert (venue.terminal.positions_get() or ())[0].volume == held_lots
        # A reduce-only exit for 0.2 lot while the venue holds less.
        exit_order = venue.order(
            Side.SELL, 2 * LOT, order_type=order_type, price=price, reduce_only=True
        )
        events = venue.submit(exit_order)
        shorts = [p.volume for p in venue.terminal.positions_get() or () if int(p.type) == 1]
        assert shorts == [], (
            f"a reduce-only {order_type} opened a short of {shorts} lots: "
            f"{[(u.status, u.reason) for u in updates(events)]}"
        )
        if not held_lots:
            assert updates(events)[-1].status is OrderStatus.REJECTED
    finally:
        venue.close()
