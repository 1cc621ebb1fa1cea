"""MT5 netting: a cut exit's new order is sized on what is true once its ticket is removed.

The poll reads the positions before the orders, and the exit may fill in part between those
reads or before its removal: the new order is sized on the removed ticket's own deals (its
volume less what it filled) and on the positions read again after the removal, never more
than they hold. The engine is told the size it books against the fills it has seen (the
removed ticket's fills the poll has not reported yet are still to come). A failed read sends
nothing on a guess. The look-up of a lost new order skips every ticket the exit's cuts
removed, and a cancel refused on a found new order leaves the broker's book at the cut.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness, fills, gold_pro_symbols, updates
from tests.brokers.mt5.test_mt5_netting_reduce_only_cut import (
    _close_by_hand,
    _long_with_exit,
    _netting,
    _resting,
)
from tests.brokers.mt5.test_mt5_netting_reduce_only_read_race import (
    _fill_part,
    _FillsBetweenReads,
)
from tests.venues.mt5 import MT5Terminal, default_symbol_specs
from tests.venues.mt5 import constants as C
from tests.venues.mt5.faults import UnknownOutcome
from tradefleet_runtime.sdk import Order, OrderStatus, OrderType, ReasonCode, Side

LOT = 100_000.0  # 1.0 lot of EURUSD
EXIT = 1.1050


def _racing(volume_min: float = 0.01) -> tuple[_FillsBetweenReads, Mt5Harness]:
    symbols = gold_pro_symbols()
    symbols["EURUSD"] = {**default_symbol_specs()["EURUSD"], "volume_min": volume_min}
    spy = _FillsBetweenReads(MT5Terminal(margin_mode="netting", symbols=symbols))
    venue = Mt5Harness.build("netting", venue=spy)
    venue.symbols = ("EURUSD",)
    venue.connect()
    venue.terminal.set_price("EURUSD", 1.1000, 1.1001)
    return spy, venue


def _long_with_limit_exit(venue: Mt5Harness) -> tuple[Order, int]:
    """1.0 lot long and a reduce-only sell limit of 1.0 lot above it: the exit, its ticket."""
    venue.submit(venue.order(Side.BUY, LOT))
    exit_order = venue.order(
        Side.SELL, LOT, order_type=OrderType.LIMIT, price=EXIT, reduce_only=True
    )
    (placed,) = updates(venue.submit(exit_order))
    assert placed.status is OrderStatus.OPEN
    (resting,) = venue.terminal.orders_get() or ()
    return exit_order, int(resting.ticket)


def test_a_fill_between_the_reads_is_counted_in_the_cut_and_in_what_the_engine_is_told() -> None:
    spy, venue = _racing()
    try:
        term = venue.terminal
        exit_order, ticket = _long_with_limit_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        spy.between = lambda: _fill_part(term, ticket, 0.3, EXIT)
        (cut,) = [u for u in updates(venue.settle()) if u.client_order_id == exit_id]
        assert (cut.status, cut.code) == (OrderStatus.OPEN, ReasonCode.NONE), cut
        # The removed ticket had 0.7 left (not 1.0 less the 0.3 it filled unseen), the
        # position holds 0.3.
        assert cut.reason.startswith("cut from 70000 to 30000"), cut.reason
        assert [v for _, v, _, _, _ in _resting(venue)] == [0.3]
        # The engine has booked none of the 0.3 lot fill yet: it is told 0.3 rests and 0.3
        # is still to be reported (old code: 0.6 lot rests, against 0.3 long).
        assert venue.broker.child_held(exit_id) == 60_000.0
        (working,) = [o for o in venue.broker.open_orders() if o.client_order_id == exit_id]
        assert working.quantity == 60_000.0  # 0.3 filled and 0.3 resting
        assert [(f.client_order_id, f.quantity) for f in fills(venue.settle())] == [
            (exit_id, 30_000.0)
        ]
        term.set_price("EURUSD", 1.1060, 1.1061)
        assert [(f.client_order_id, f.quantity) for f in fills(venue.settle())] == [
            (exit_id, 30_000.0)
        ]
        assert term.positions_get() == () and term.orders_get() == ()
    finally:
        venue.close()


def test_a_position_below_the_minimum_once_read_again_ends_the_exit_cancelled() -> None:
    spy, venue = _racing(volume_min=0.4)
    try:
        term = venue.terminal
        exit_order, ticket = _long_with_limit_exit(venue)
        position = _close_by_hand(venue, 0.4)  # 0.6 left: over the 0.4 minimum, as read
        spy.between = lambda: _fill_part(term, ticket, 0.3, EXIT)  # 0.3 really left
        events = updates(venue.settle())
        (ended,) = [u for u in events if u.client_order_id == exit_order.client_order_id]
        # Old code: a new 0.6 lot order rests against the 0.3 lot position.
        assert (ended.status, ended.code) == (OrderStatus.CANCELLED, ReasonCode.REDUCE_ONLY)
        assert f"position {position} holds 30000" in ended.reason, ended.reason
        assert term.orders_get() == ()
    finally:
        venue.close()


class _OrderDealsUnread:
    """The terminal; ``unread`` times, a read of one order's deals
    (``history_deals_get(ticket=...)``) fails (None), as a terminal busy syncing its history."""

    def __init__(self, terminal: MT5Terminal) -> None:
        self.terminal = terminal
        self.unread = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)

    def history_deals_get(self, *args: Any, **kwargs: Any) -> Any:
        if "ticket" in kwargs and self.unread > 0:
            self.unread -= 1
            return None
        return self.terminal.history_deals_get(*args, **kwargs)


def test_an_unread_deal_history_after_the_removal_sends_nothing_until_the_next_poll() -> None:
    spy = _OrderDealsUnread(MT5Terminal(margin_mode="netting"))
    venue = _netting(spy)
    try:
        exit_order, ticket = _long_with_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        spy.unread = 1  # the removed ticket's deals
        assert [u for u in updates(venue.settle()) if u.client_order_id == exit_id] == []
        assert spy.unread == 0
        # Old code: the new order is sent at once, sized on the poll's reads.
        assert venue.terminal.orders_get() == ()
        (cut,) = [u for u in updates(venue.settle()) if u.client_order_id == exit_id]
        assert (cut.status, cut.code) == (OrderStatus.OPEN, ReasonCode.NONE), cut
        assert cut.reason.startswith("cut from 100000 to 60000"), cut.reason
        ((new_ticket, volume, _, _, _),) = _resting(venue)
        assert volume == 0.6 and new_ticket != ticket
        assert venue.broker.child_held(exit_id) == 60_000.0
    finally:
        venue.close()


def test_a_lost_second_cut_that_filled_is_found_as_its_own_ticket_not_the_first() -> None:
    venue = _netting()
    try:
        exit_order, first = _long_with_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        venue.settle()  # cut to 0.6: the second ticket
        ((second, _, _, _, _),) = _resting(venue)
        _close_by_hand(venue, 0.2)  # 0.4 left
        venue.terminal.faults.script("order_send", [None, UnknownOutcome(10012, executed=True)])
        venue.settle()
        ((third, volume, _, _, _),) = _resting(venue)
        assert volume == 0.4 and third not in (first, second)
        # The stop fires before the next poll looks the lost answer up.
        venue.terminal.set_price("EURUSD", 1.0940, 1.0941)
        venue.terminal.faults.script("orders_get", [None])
        events = updates(venue.settle())
        (ended,) = [u for u in events if u.client_order_id == exit_id]
        # Old code: "re-placed as ticket <first> …, which has ended", cancelled by the venue.
        assert f"re-placed as ticket {third} " in ended.reason, ended.reason
        assert "has filled" in ended.reason and ended.code is ReasonCode.REDUCE_ONLY, ended
        assert venue.terminal.positions_get() == ()
    finally:
        venue.close()


def test_a_found_new_order_whose_cancel_is_refused_is_watched_at_its_cut_size() -> None:
    venue = _netting()
    try:
        exit_order, _ = _long_with_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        venue.terminal.faults.script("order_send", [None, UnknownOutcome(10012, executed=True)])
        venue.settle()
        venue.broker.cancel(exit_id)  # noted: no ticket known yet
        venue.terminal.faults.script("order_send", [C.TRADE_RETCODE_REJECT])  # its removal
        events = updates(venue.settle())
        (cut,) = [u for u in events if u.client_order_id == exit_id]
        # Old code: nothing said, the engine and the broker's book kept 1.0 lot.
        assert (cut.status, cut.code) == (OrderStatus.OPEN, ReasonCode.NONE), cut
        assert "cancel of it refused" in cut.reason, cut.reason
        assert venue.broker.child_held(exit_id) == 60_000.0
        (working,) = [o for o in venue.broker.open_orders() if o.client_order_id == exit_id]
        assert working.quantity == 60_000.0
        venue.terminal.set_price("EURUSD", 1.0940, 1.0941)
        assert [(f.client_order_id, f.quantity) for f in fills(venue.settle())] == [
            (exit_id, 60_000.0)
        ]
        assert venue.terminal.positions_get() == ()
    finally:
        venue.close()


@pytest.mark.parametrize("quantity", [None, 60_000.0])
def test_an_amend_while_the_new_order_is_in_doubt_is_refused_and_the_exit_works_on(
    quantity: float | None,
) -> None:
    venue = _netting()
    try:
        exit_order, _ = _long_with_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        venue.terminal.faults.script("order_send", [None, UnknownOutcome(10012, executed=True)])
        venue.settle()
        venue.broker.amend(exit_id, quantity, 1.0940)
        (answer,) = [u for u in updates(venue.settle()) if "amend refused" in u.reason]
        # Old code: REJECTED, UNKNOWN_ORDER ("no resting order with this client order id").
        assert (answer.client_order_id, answer.status, answer.code) == (
            exit_id,
            OrderStatus.OPEN,
            ReasonCode.UNKNOWN_OUTCOME,
        )
        assert "in doubt" in answer.reason
    finally:
        venue.close()
