"""F53: an amend of a netting cut exit while the cut is in doubt — what its refusal says, and
that the amend asked again once the poll settled the cut is applied.

A netting cut removes the exit's ticket and places a new one under the same comment
(``_cancel_reduce_only_beyond`` in plugins/tradefleet_plugins/brokers/mt5_broker.py). Three
doubts can stand between: the removal's answer lost (the old ticket may still rest), the
reads sizing the new order failed (the old ticket removed, nothing sent yet), the new order's
answer lost (it may rest, under a ticket not known). An amend asked meanwhile is refused,
answered OPEN (the exit kept): applied, it could reach a ticket being removed, or leave the
new order at one price and the bot's exit at another. The refusal said "its new order is in
doubt" in all three; it now names the doubt that holds (one wording each).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness, updates
from tests.brokers.mt5.test_mt5_netting_cut_sizing import _OrderDealsUnread
from tests.brokers.mt5.test_mt5_netting_reduce_only_cut import (
    _close_by_hand,
    _long_with_exit,
    _netting,
    _resting,
)
from tests.venues.mt5 import MT5Terminal
from tests.venues.mt5.faults import UnknownOutcome
from tradefleet_runtime.sdk import OrderStatus, OrderUpdate, ReasonCode

pytestmark = pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge

MOVED = 1.0940  # the strategy trails its stop (1.0950) meanwhile


def _amend_answer(venue: Mt5Harness, exit_id: str, price: float) -> OrderUpdate:
    """The answer to an amend of ``exit_id`` to ``price`` (its job runs before the poll)."""
    venue.broker.amend(exit_id, None, price)
    answers = [
        u
        for u in updates(venue.settle())
        if u.client_order_id == exit_id and (u.code is not ReasonCode.NONE or u.reason)
    ]
    return answers[0]


_DOUBTS: dict[str, tuple[list[Any], str]] = {
    # The removal's answer lost; it never arrived: the old ticket still rests.
    "removal": (
        [UnknownOutcome(10012, executed=False)],
        "a cut: the removal of its old ticket is in doubt until the next poll looks it up",
    ),
    # The old ticket removed, its deals unread: nothing sent yet.
    "unsized": (
        [],
        "a cut: its old ticket was removed and its new order is not sent yet; the next poll "
        "sizes and sends it",
    ),
    # The old ticket removed, the new order's answer lost; it arrived.
    "new-order": (
        [None, UnknownOutcome(10012, executed=True)],
        "a cut: its new order is in doubt until the next poll looks it up",
    ),
}


@pytest.mark.parametrize("doubt", list(_DOUBTS))
def test_an_amend_while_a_cut_is_in_doubt_is_refused_naming_the_doubt_then_applied_once_settled(
    doubt: str,
) -> None:
    script, words = _DOUBTS[doubt]
    spy = _OrderDealsUnread(MT5Terminal(margin_mode="netting"))
    venue = _netting(spy)
    try:
        exit_order, _ = _long_with_exit(venue)
        exit_id = exit_order.client_order_id
        _close_by_hand(venue, 0.4)
        venue.terminal.faults.script("order_send", script)
        spy.unread = 1 if doubt == "unsized" else 0  # the removed ticket's deals
        assert [u for u in updates(venue.settle()) if u.client_order_id == exit_id] == []
        assert exit_id in venue.broker._recuts  # in doubt
        refused = _amend_answer(venue, exit_id, MOVED)
        assert (refused.status, refused.code) == (OrderStatus.OPEN, ReasonCode.UNKNOWN_OUTCOME)
        # Old code, the removal in doubt or nothing sent yet: "its new order is in doubt".
        assert words in refused.reason, refused.reason
        assert "nothing was sent" in refused.reason, refused.reason
        # That poll settled the cut: one ticket rests under the id, for what the position holds.
        assert exit_id not in venue.broker._recuts
        ((_, volume, comment, _, price),) = _resting(venue)
        assert (volume, comment, price) == (0.6, exit_id, 1.0950)
        # Asked again, the amend is applied to the ticket that rests.
        applied = _amend_answer(venue, exit_id, MOVED)
        assert (applied.status, applied.code, applied.reason) == (
            OrderStatus.OPEN,
            ReasonCode.NONE,
            "amended",
        )
        ((_, volume, comment, _, price),) = _resting(venue)
        assert (volume, comment, price) == (0.6, exit_id, MOVED)
    finally:
        venue.close()
