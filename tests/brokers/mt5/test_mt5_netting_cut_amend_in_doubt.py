"""R28b: an amend of a cut exit whose new order is in doubt ends the exit while it rests on.

On a netting account F40b removes a reduce-only exit the position no longer covers and
re-sends it under the same comment; while that send's answer is lost the exit has no ticket
and sits in ``_recuts``. ``_cancel_job`` knows this window (``recut.cancel``), but an amend
does not: ``_amend_against_market``/``_modify_pending`` find no ticket and answer
``UNKNOWN_ORDER``, which ``_say_amend`` reports REJECTED — the engine ends the exit
(plugins/tradefleet_plugins/brokers/mt5_broker.py ``_modify_pending``, ``_say_amend``). The
next poll then finds the new order by its comment and keeps it resting and watched
(``_recut_placed``): the engine believes the position has no exit while the terminal holds
one under that id (the strategy places another: two exits, the second reversing the account
once the first fills). An amend in that window must wait for the look-up (or be refused
while the exit stays working), never end an exit that then rests. Fails now; passes once
fixed.
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

_ENDED = (OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.FILLED)


def test_an_amend_while_the_new_order_is_in_doubt_never_ends_an_exit_that_rests() -> None:
    venue = _netting()
    try:
        exit_order, _ = _long_with_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        # The removal goes through; the new order arrives, its answer is lost.
        venue.terminal.faults.script("order_send", [None, UnknownOutcome(10012, executed=True)])
        events = updates(venue.settle())
        venue.broker.amend(exit_id, None, 1.0940)  # the strategy trails its stop meanwhile
        events += updates(venue.settle())
        events += updates(venue.settle())
        ended = [u for u in events if u.client_order_id == exit_id and u.status in _ENDED]
        resting = [o for o in venue.terminal.orders_get() or () if str(o.comment) == exit_id]
        # Now: REJECTED "no resting order with this client order id", and the new 0.6 lot
        # stop rests at the terminal under the same id.
        assert not (ended and resting), (ended, resting)
    finally:
        venue.close()
