"""A restart takes a hedging split entry's child at the level the journal holds for it.

One entry opened tickets A and B (``SplitBot``). A person lowered A's SL (the older ticket) and
the running bot set A apart from its SL child, which became B's 10,000 at the bot's 1.095. While
the bot was down B's SL fired at 1.095 (A's 1.09 did not). The terminal cannot tell which level
is the bot's: the oldest ticket, A, holds the person's. Told the journal's working orders
(``Mt5Broker.restore_orders``), the restarted broker reads B's close at the child's own level as
the child's fill — not a change made outside the bot — and adopts no stop at the person's line
on A (a later move of the bot's stop would have overwritten it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers.mt5.test_mt5_hedging_split_entry import LOT, SplitBot, _set_by_hand
from tests.brokers.mt5.test_mt5_sltp_by_hand import PERSONS_SL, TP
from tradefleet_runtime.sdk import OUTSIDE_TAG

pytestmark = pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge


def split_with_a_set_apart(tmp_path: Path) -> tuple[SplitBot, str, int]:
    """A ``SplitBot`` whose person lowered A's SL to 1.09, polled: the running bot set A apart
    and its SL child is B's 10,000 at the bot's 1.095. The bot, its SL child's id, A's ticket.
    (Also the setup of ``test_mt5_split_restart_apart_fired``.)"""
    bot = SplitBot(tmp_path)
    sl, _tp = bot.children()
    a, _b = sorted(p.ticket for p in bot.terminal.positions_get() or ())
    _set_by_hand(bot.terminal, a, PERSONS_SL, TP)
    bot.bar()  # the poll: A outside the child, the child is B's 10,000 at 1.095
    bot.bar()
    return bot, sl, a


def test_the_childs_sl_firing_while_down_is_its_fill_when_the_older_ticket_is_set_apart(
    tmp_path: Path,
) -> None:
    bot, sl, a = split_with_a_set_apart(tmp_path)

    def childs_sl_fires() -> None:
        bot.terminal.set_price("EURUSD", 1.0945)  # B's SL (the bot's 1.095) fires, A's not

    bot.down(childs_sl_fires)
    again, second, restarted, plan = bot.restart()  # told the journal's orders
    try:
        assert [p.ticket for p in bot.terminal.positions_get() or ()] == [a]  # B closed
        booked = [(f.client_order_id, f.reason, f.quantity) for f in plan.missed_fills]
        assert [c for c, _r, _q in booked] == [sl], booked  # the child's fill, not outside
        assert all(r != OUTSIDE_TAG for _c, r, _q in booked), booked
        assert again.portfolio.position("EURUSD").quantity == LOT
        # A's SL is the person's: the restarted bot works no stop of its own at 1.09.
        stops = [
            (w.order.quantity - w.filled, w.order.price)
            for w in again.book
            if w.order.client_order_id == sl
        ]
        assert stops == [], stops
        assert (bot.terminal.positions_get() or ())[0].sl == PERSONS_SL  # left as set
    finally:
        second.close()
        restarted.close()
