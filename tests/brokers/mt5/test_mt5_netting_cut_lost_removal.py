"""R29b: a cut whose removal answer is lost ends the exit instead of re-placing it.

On a netting account F40b cuts a reduce-only exit a person partly closed under by removing
its ticket and sending a new one (``_cancel_reduce_only_beyond`` in plugins/
tradefleet_plugins/brokers/mt5_broker.py). When the removal's answer is lost (the trade
server removed the ticket; the broker got 10012 / lost the terminal) the broker neither
notes a ``_Recut`` nor drops the ticket: the next poll finds the ticket gone and
``_resting_gone`` reports the exit CANCELLED_BY_VENUE ("the terminal no longer holds the
order"), so the 0.6 lot still open runs without the stop the strategy placed — exactly the
outcome F40b exists to avoid (the old "removed whole"). The lost removal should be treated
as in doubt: the next poll, finding the ticket cancelled, re-places it for what the
position covers (0.6 lot). Fails now.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.brokers.mt5.harness import fills, updates
from tests.brokers.mt5.test_mt5_netting_reduce_only_cut import (
    _close_by_hand,
    _long_with_exit,
    _netting,
    _resting,
    _stops_placed,
)
from tests.venues.mt5.faults import Disconnect, UnknownOutcome
from tradefleet_runtime.sdk import OrderStatus, ReasonCode

pytestmark = pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge


def test_a_lost_answer_to_the_cuts_removal_still_re_places_the_exit() -> None:
    venue = _netting()
    try:
        exit_order, _ = _long_with_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        # The removal goes through at the trade server; its answer is lost.
        venue.terminal.faults.script("order_send", [UnknownOutcome(10012, executed=True)])
        events = updates(venue.settle())
        events += updates(venue.settle())
        events += updates(venue.settle())
        mine = [u for u in events if u.client_order_id == exit_id]
        # Now: CANCELLED (CANCELLED_BY_VENUE) "the terminal no longer holds the order", and
        # nothing rests against the 0.6 lot still open.
        assert [u for u in mine if u.status is not OrderStatus.OPEN] == [], mine
        assert [(v, c) for _, v, c, _, _ in _resting(venue)] == [(0.6, exit_id)]
    finally:
        venue.close()


def test_the_terminal_lost_during_the_cuts_removal_still_re_places_the_exit() -> None:
    venue = _netting()
    try:
        exit_order, ticket = _long_with_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        # The removal reaches the trade server; the terminal is lost before it answers.
        venue.terminal.faults.script("order_send", [Disconnect("ipc", executed=True)])
        events = updates(venue.settle())
        events += updates(venue.settle())
        events += updates(venue.settle())
        mine = [u for u in events if u.client_order_id == exit_id]
        # Old code: CANCELLED_BY_VENUE at the poll after the reconnect, nothing resting.
        assert [u for u in mine if u.status is not OrderStatus.OPEN] == [], mine
        ((new_ticket, volume, comment, _, _),) = _resting(venue)
        assert (volume, comment) == (0.6, exit_id) and new_ticket != ticket
        assert venue.broker.child_held(exit_id) == 60_000.0
    finally:
        venue.close()


def test_a_lost_removal_that_never_arrived_is_cut_again_at_the_next_poll() -> None:
    venue = _netting()
    try:
        exit_order, ticket = _long_with_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        venue.terminal.faults.script("order_send", [UnknownOutcome(10012, executed=False)])
        assert [u for u in updates(venue.settle()) if u.client_order_id == exit_id] == []
        assert [(t, v) for t, v, _, _, _ in _resting(venue)] == [(ticket, 1.0)]
        (cut,) = [u for u in updates(venue.settle()) if u.client_order_id == exit_id]
        assert (cut.status, cut.code) == (OrderStatus.OPEN, ReasonCode.NONE), cut
        assert cut.reason.startswith("cut from 100000 to 60000"), cut.reason
        ((new_ticket, volume, _, _, _),) = _resting(venue)
        assert volume == 0.6 and new_ticket != ticket
        assert _stops_placed(venue) == 2
    finally:
        venue.close()


def test_an_exit_filled_while_its_removal_is_in_doubt_is_booked_and_never_re_placed() -> None:
    venue = _netting()
    try:
        exit_order, _ = _long_with_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        venue.terminal.faults.script("order_send", [UnknownOutcome(10012, executed=False)])
        venue.settle()
        venue.terminal.set_price("EURUSD", 1.0940, 1.0941)  # the stop fires, still 1.0 lot
        events = venue.settle() + venue.settle()
        assert [(f.client_order_id, f.quantity) for f in fills(events)] == [(exit_id, 100_000.0)]
        assert [u for u in updates(events) if u.client_order_id == exit_id] == []
        assert venue.terminal.orders_get() == ()
        assert _stops_placed(venue) == 1
    finally:
        venue.close()


@pytest.mark.parametrize("executed", [True, False], ids=["removed", "still-resting"])
def test_an_exit_cancelled_while_its_removal_is_in_doubt_ends_cancelled_by_the_bot(
    executed: Any,
) -> None:
    venue = _netting()
    try:
        exit_order, _ = _long_with_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        venue.terminal.faults.script("order_send", [UnknownOutcome(10012, executed=executed)])
        venue.settle()
        venue.broker.cancel(exit_id)
        events = updates(venue.settle()) + updates(venue.settle())
        (ended,) = [u for u in events if u.client_order_id == exit_id]
        # Old code, removed: CANCELLED_BY_VENUE ("the terminal no longer holds the order").
        assert (ended.status, ended.code) == (OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_USER)
        assert venue.terminal.orders_get() == ()
        assert _stops_placed(venue) == 1  # no new order sent for a cancelled exit
    finally:
        venue.close()
