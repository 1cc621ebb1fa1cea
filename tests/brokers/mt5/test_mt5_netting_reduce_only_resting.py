"""A reduce-only limit or stop resting on an MT5 netting account never opens or grows a position.

The terminal knows no reduce-only: a pending order fills whatever the account holds. A
reversal the risk chain cut to its closing part (sent reduce-only), or a strategy's exit limit
for the quantity it holds, rests as a pending order; once the position is closed first (its
stop-loss fires, a person closes it) the market reaching the order would open the other side.
The broker refuses to rest one beyond what the bot's position holds against it, and at each
poll removes one the position no longer covers (MT5 cannot change a pending order's volume),
reporting it cancelled with ``REDUCE_ONLY``, naming the position — or, while the position
still covers part of it, re-places it for that part (``test_mt5_netting_reduce_only_cut``).
"""

from __future__ import annotations

from tests.brokers.mt5.harness import (
    Mt5Harness,
    live_engine,
    minute_bar,
    settle_and_pump,
    updates,
)
from tests.brokers.mt5.test_mt5_netting_children_reduce import _by_hand
from tests.runtime.helpers import Scripted
from tradefleet_plugins.risk.pre_trade import PreTrade
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_runtime.sdk import OrderStatus, OrderType, ReasonCode, Side

LOT = 10_000.0  # euros: 0.1 lot of EURUSD


def _netting() -> Mt5Harness:
    venue = Mt5Harness.netting()
    venue.symbols = ("EURUSD",)
    venue.connect()
    venue.terminal.set_price("EURUSD", 1.1000, 1.1001)
    return venue


def test_a_cut_reversal_resting_on_netting_never_opens_after_the_stop_loss_closed() -> None:
    venue = _netting()
    try:
        term = venue.terminal
        strategy = Scripted(
            {
                0: lambda c, b: c.buy("EURUSD", LOT, stop_loss=1.0950),
                # A reversal: sell 0.2 lot at 1.1050. pre-trade's cap (0.1 lot) never cuts
                # below the closing part: it goes out as an exit of 0.1 lot, reduce-only.
                1: lambda c, b: c.sell("EURUSD", 2 * LOT, order_type=OrderType.LIMIT, price=1.1050),
            }
        )
        rule = PreTrade(PreTradeParams(max_order_quantity=LOT, margin_leverage=30.0))
        engine, journal = live_engine(venue, strategy, risk=[("pre-trade", rule)])
        engine.run([minute_bar(0, 1.1)])
        settle_and_pump(engine, venue)
        engine.run([minute_bar(1, 1.1)])
        settle_and_pump(engine, venue)
        sells = journal.query(
            "SELECT client_order_id, quantity, reduce_only FROM orders "
            "WHERE side = 'sell' AND parent_id IS NULL"
        )
        assert [tuple(r)[1:] for r in sells] == [(LOT, 1)]  # the cut, journaled reduce-only
        exit_id = str(sells[0][0])
        assert len(term.orders_get() or ()) == 1  # resting at the terminal
        term.set_price("EURUSD", 1.0940, 1.0941)  # the stop-loss closes the long
        settle_and_pump(engine, venue)
        assert engine.position("EURUSD").quantity == 0.0
        assert term.orders_get() == ()  # removed at the poll, before the market reached it
        ((reason,),) = journal.query(
            "SELECT reason FROM order_updates WHERE client_order_id = ? AND status = 'cancelled'",
            exit_id,
        )
        assert "reduce-only: the bot holds no EURUSD position" in str(reason), reason
        term.set_price("EURUSD", 1.1060, 1.1061)  # the market reaches the exit's limit
        settle_and_pump(engine, venue)
        shorts = [p.volume for p in term.positions_get() or () if int(p.type) == 1]
        assert shorts == [], f"the reduce-only exit opened a short of {shorts} lots"
        assert engine.position("EURUSD").quantity == 0.0
    finally:
        venue.close()


def test_a_resting_reduce_only_exit_the_position_shrank_under_is_cut_naming_it() -> None:
    """Cut, not cancelled (test_mt5_netting_reduce_only_cut): re-placed for what is left."""
    venue = _netting()
    try:
        venue.submit(venue.order(Side.BUY, 2 * LOT))
        exit_order = venue.order(
            Side.SELL, 2 * LOT, order_type=OrderType.LIMIT, price=1.1050, reduce_only=True
        )
        (placed,) = updates(venue.submit(exit_order))
        assert placed.status is OrderStatus.OPEN
        # The position halves (0.1 lot left): the poll after it re-places the exit for that.
        events = [*venue.submit(venue.order(Side.SELL, LOT)), *venue.settle()]
        (position,) = venue.terminal.positions_get() or ()
        said = [u for u in updates(events) if u.client_order_id == exit_order.client_order_id]
        assert [(u.status, u.code) for u in said] == [(OrderStatus.OPEN, ReasonCode.NONE)]
        assert f"position {position.ticket} holds 10000 against it" in said[0].reason
        ((volume, comment),) = [
            (o.volume_current, o.comment) for o in venue.terminal.orders_get() or ()
        ]
        assert (volume, comment) == (0.1, exit_order.client_order_id)
    finally:
        venue.close()


def test_a_reduce_only_pending_order_beyond_the_position_is_refused_nothing_sent() -> None:
    venue = _netting()
    try:
        flat = venue.order(
            Side.SELL, LOT, order_type=OrderType.STOP, price=1.0950, reduce_only=True
        )
        (refused,) = updates(venue.submit(flat))
        assert (refused.status, refused.code) == (OrderStatus.REJECTED, ReasonCode.REDUCE_ONLY)
        venue.submit(venue.order(Side.BUY, LOT))
        larger = venue.order(
            Side.SELL, 2 * LOT, order_type=OrderType.LIMIT, price=1.1050, reduce_only=True
        )
        (refused,) = updates(venue.submit(larger))
        assert (refused.status, refused.code) == (OrderStatus.REJECTED, ReasonCode.REDUCE_ONLY)
        assert venue.terminal.orders_get() == ()
        covered = venue.order(
            Side.SELL, LOT, order_type=OrderType.LIMIT, price=1.1050, reduce_only=True
        )
        (placed,) = updates(venue.submit(covered))
        assert placed.status is OrderStatus.OPEN  # what the position holds rests
    finally:
        venue.close()


def test_a_restarted_broker_told_the_journal_watches_an_adopted_exit_as_reduce_only() -> None:
    """The terminal keeps no reduce-only: a restarted broker adopts a resting order as the
    terminal holds it, and learns it is reduce-only from the journal (``restore_orders``)."""
    venue = _netting()
    restarted: Mt5Harness | None = None
    try:
        venue.submit(venue.order(Side.BUY, LOT))
        exit_order = venue.order(
            Side.SELL, LOT, order_type=OrderType.LIMIT, price=1.1050, reduce_only=True
        )
        venue.submit(exit_order)
        venue.close()  # the bot goes down; the exit rests at the terminal
        restarted = Mt5Harness.build("netting", venue=venue.terminal)
        restarted.symbols = ("EURUSD",)
        restarted.connect()
        restarted.broker.restore_orders([exit_order])
        (position,) = venue.terminal.positions_get() or ()
        _by_hand(venue.terminal, venue.terminal.ORDER_TYPE_SELL, 0.1, position=position.ticket)
        cancelled = [u for u in updates(restarted.settle()) if u.status is OrderStatus.CANCELLED]
        assert [u.code for u in cancelled] == [ReasonCode.REDUCE_ONLY], cancelled
        assert venue.terminal.orders_get() == ()
    finally:
        venue.close()
        if restarted is not None:
            restarted.close()
