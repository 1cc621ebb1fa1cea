"""R28b: a netting exit cut by re-placing it is sized on a position read that is already stale.

The poll reads the positions before the orders (d848292), so an exit that fills in part
between the two reads shows its rest against the position from before that fill. Before
F40b that only ever removed the exit (safe). F40b re-places the exit for
``min(rest, position as read)`` (``_cut_reduce_only``, ``_covered_volume`` in
plugins/tradefleet_plugins/brokers/mt5_broker.py): with 1.0 lot long, a person closing 0.4 and
0.3 of the exit filling between the reads, the new pending sell is 0.6 lot against a 0.3 lot
position — when the market reaches it, it sells 0.3 lot short on an account that knows no
reduce-only. The new order must never exceed what the position holds when it is sent (e.g.
re-read the positions after the removal, or take the removed ticket's filled volume off).
Fails now (0.6 rests against 0.3; the account ends short); passes once fixed.
"""

from __future__ import annotations

from tests.brokers.mt5.harness import Mt5Harness, updates
from tests.brokers.mt5.test_mt5_netting_children_reduce import _by_hand
from tests.brokers.mt5.test_mt5_netting_reduce_only_read_race import (
    _fill_part,
    _FillsBetweenReads,
)
from tests.venues.mt5 import MT5Terminal
from tradefleet_runtime.sdk import OrderStatus, OrderType, Side

LOT = 100_000.0  # 1.0 lot of EURUSD
EXIT = 1.1050


def test_a_cut_exit_never_rests_for_more_than_the_position_after_a_fill_between_reads() -> None:
    spy = _FillsBetweenReads(MT5Terminal(margin_mode="netting"))
    venue = Mt5Harness.build("netting", venue=spy)
    venue.symbols = ("EURUSD",)
    venue.connect()
    try:
        term = venue.terminal
        term.set_price("EURUSD", 1.1000, 1.1001)
        venue.submit(venue.order(Side.BUY, LOT))
        exit_order = venue.order(
            Side.SELL, LOT, order_type=OrderType.LIMIT, price=EXIT, reduce_only=True
        )
        (placed,) = updates(venue.submit(exit_order))
        assert placed.status is OrderStatus.OPEN
        ((ticket,),) = [(int(o.ticket),) for o in term.orders_get() or ()]
        (position,) = term.positions_get() or ()
        _by_hand(term, term.ORDER_TYPE_SELL, 0.4, position=int(position.ticket))

        # 0.3 lot of the exit executes between the poll's positions read (0.6) and its
        # orders read (rest 0.7): the position really holds 0.3.
        spy.between = lambda: _fill_part(term, ticket, 0.3, EXIT)
        venue.settle()
        assert spy.between is None
        (position,) = term.positions_get() or ()
        assert abs(position.volume - 0.3) < 1e-9
        resting = sum(float(o.volume_current) for o in term.orders_get() or ())
        # The market reaches the exit before the next poll could look again.
        term.set_price("EURUSD", 1.1060, 1.1061)
        venue.settle()
        shorts = [p for p in term.positions_get() or () if int(p.type) == term.POSITION_TYPE_SELL]
        # Now: 0.6 lot rested against 0.3 lot long, and a 0.3 lot short is open.
        assert shorts == [], (resting, shorts)
        assert resting <= 0.3 + 1e-9, resting
    finally:
        venue.close()
