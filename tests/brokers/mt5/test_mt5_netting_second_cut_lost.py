"""R28b: a second cut whose new order never arrived takes the first removed ticket for it.

On a netting account F40b cuts a reduce-only exit by removing its ticket and sending a new one
under the same comment; a lost answer is looked up by that comment, skipping only the ticket
this cut removed (``_Recut.removed``, ``_settle_recuts`` in
plugins/tradefleet_plugins/brokers/mt5_broker.py). After a first cut (ticket T1 removed, T2
placed) a person closes more: the second cut removes T2 and sends T3, whose answer is lost and
which never arrived. The look-up skips T2 only, finds T1 (cancelled by the first cut) in the
history under the same comment, and ends the exit (``_recut_ended``: "re-placed as ticket T1
… which has ended") instead of sending it again: the position still open runs without the
protective stop the strategy placed, and the status names a ticket that was never the new
order. Every ticket an exit's cuts removed must be skipped (or the look-up limited to tickets
newer than the send). Fails now; passes once fixed.
"""

from __future__ import annotations

from tests.brokers.mt5.harness import updates
from tests.brokers.mt5.test_mt5_netting_reduce_only_cut import (
    _close_by_hand,
    _long_with_exit,
    _netting,
)
from tests.venues.mt5.faults import UnknownOutcome
from tradefleet_runtime.sdk import OrderStatus


def test_a_second_cut_lost_before_arriving_is_sent_again_not_ended_on_the_first_ticket() -> None:
    venue = _netting()
    try:
        exit_order, first = _long_with_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        venue.settle()  # cut to 0.6: a new ticket
        ((second, lots),) = [
            (int(o.ticket), o.volume_current) for o in venue.terminal.orders_get() or ()
        ]
        assert second != first and lots == 0.6
        _close_by_hand(venue, 0.2)  # 0.4 left
        # The removal of the second ticket goes through; the third never arrives.
        venue.terminal.faults.script("order_send", [None, UnknownOutcome(10012, executed=False)])
        events = updates(venue.settle())
        events += updates(venue.settle())
        events += updates(venue.settle())
        mine = [u for u in events if u.client_order_id == exit_id]
        # Now: CANCELLED "... re-placed as ticket <first> (its answer was lost: found by its
        # comment), which has ended at the terminal", and nothing rests.
        assert [u for u in mine if u.status is OrderStatus.CANCELLED] == [], mine
        assert [o.volume_current for o in venue.terminal.orders_get() or ()] == [0.4]
    finally:
        venue.close()
