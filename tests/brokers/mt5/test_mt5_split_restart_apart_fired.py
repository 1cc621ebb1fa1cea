"""A restart after a ticket set apart from a split entry's child fired at the person's line.

One entry opened tickets A and B (``SplitBot``). A person lowered A's SL (the older ticket) to
1.09; the running bot set A apart, and its SL child became B's 10,000 at the bot's 1.095 (so
journaled). While the bot was down the market fell through both lines: B closed at the child's
1.095, A at the person's 1.09. Told the journal's working orders (``restore_orders``), the
restarted broker books B's close as the child's fill. A's close, at another level than the
journal's, is outside the child: B, at the journal's level, accounts for the whole 10,000
child the journal holds — the running bot had cut the child to B and set A apart. It is a
change made outside the bot, never a second fill of the 10,000 child.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers.mt5.test_mt5_hedging_split_entry import LOT
from tests.brokers.mt5.test_mt5_split_restart_journal_level import split_with_a_set_apart
from tradefleet_plugins.brokers.mt5_reports import journal_child_whole, restart_fired_outside
from tradefleet_runtime.sdk import OUTSIDE_TAG

pytestmark = pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge


def test_a_ticket_set_apart_firing_at_the_persons_line_while_down_is_not_the_childs_fill(
    tmp_path: Path,
) -> None:
    bot, sl, _a = split_with_a_set_apart(tmp_path)

    def both_fire() -> None:
        bot.terminal.set_price("EURUSD", 1.0945)  # B's SL (the bot's 1.095)
        bot.terminal.set_price("EURUSD", 1.0895)  # A's SL (the person's 1.09)

    bot.down(both_fire)
    again, second, restarted, plan = bot.restart()
    try:
        assert bot.terminal.positions_get() == ()  # both closed
        booked = [(f.client_order_id, f.reason, f.quantity, f.price) for f in plan.missed_fills]
        to_child = [(q, p) for c, r, q, p in booked if c == sl and r != OUTSIDE_TAG]
        # The child (B's 10,000 as the journal holds it) filled once, by B's close at its
        # 1.095 line (was: twice, A's close at the person's 1.09 booked to it as well).
        assert len(to_child) == 1, booked
        assert to_child[0][0] == LOT and to_child[0][1] > 1.092, booked
        # A's close, on the person's line, is a change made outside the bot.
        assert [q for c, r, q, _p in booked if r == OUTSIDE_TAG] == [LOT], booked
        assert again.portfolio.position("EURUSD").quantity == 0.0
        fills = second.query("SELECT quantity FROM fills WHERE client_order_id = ?", sl)
        assert [float(row[0]) for row in fills] == [LOT], fills
    finally:
        second.close()
        restarted.close()


class _Ticket:
    def __init__(self, ticket: int, sl: float, volume: float = 0.1) -> None:
        self.ticket, self.sl, self.tp, self.volume = ticket, sl, 0.0, volume


HALF = 0.000005


def test_the_tickets_at_the_journals_level_account_for_its_child_open_or_closed() -> None:
    """``journal_child_whole``: the lots at the journal's level, open or closed on the line
    at it, against the child's quantity the journal holds (lots)."""
    b = _Ticket(7002, 1.095)
    assert journal_child_whole([b], "sl", 1.095, {}, HALF, journaled=0.1)  # B open at it
    assert journal_child_whole([], "sl", 1.095, {7002: (1.095, 0.1)}, HALF, journaled=0.1)
    # The child was both tickets' (20,000): B's 0.1 lot is not all of it.
    assert not journal_child_whole([b], "sl", 1.095, {}, HALF, journaled=0.2)
    assert not journal_child_whole([], "sl", 1.095, {7002: (1.097, 0.1)}, HALF, journaled=0.1)
    # A ticket open at the level and named by a close too is counted once.
    assert not journal_child_whole([b], "sl", 1.095, {7002: (1.095, 0.1)}, HALF, journaled=0.2)
    assert not journal_child_whole([], "sl", 1.095, {}, HALF, journaled=0.0)  # none there


def test_a_restart_judges_a_close_at_another_level_by_the_journals_child_quantity() -> None:
    """``restart_fired_outside``: a close at the journal's level is the child's fill; one at
    another level is outside when the tickets at the journal's level hold the whole child it
    journaled, else judged by the oldest ticket's level (the journal's may be newer)."""
    # A (7001) at the person's 1.09 and B (7002) at the child's 1.095 both fired; the journal
    # holds the child as B's 0.1 lot at 1.095.
    both = {7001: (1.090, 0.1), 7002: (1.095, 0.1)}
    assert restart_fired_outside(
        7001, "sl", 1.09, [], HALF, fired=both, booked=1.095, journaled=0.1
    )
    assert not restart_fired_outside(
        7002, "sl", 1.095, [], HALF, fired=both, booked=1.095, journaled=0.1
    )
    # B still open at the child's level: A's close outside the same.
    fired_a = {7001: (1.090, 0.1)}
    b = _Ticket(7002, 1.095)
    assert restart_fired_outside(7001, "sl", 1.09, [b], HALF, fired=fired_a, booked=1.095)
    assert restart_fired_outside(
        7001, "sl", 1.09, [b], HALF, fired=fired_a, booked=1.095, journaled=0.1
    )
    # The running bot booked A's close at 1.095 as the child's (20,000, 10,000 filled), then
    # the child followed B's line moved to 1.09: B's 0.1 lot is not the whole child, so A's
    # close is judged by the oldest ticket — A itself: the child's.
    older = {7001: (1.095, 0.1)}
    moved = _Ticket(7002, 1.090)
    assert not restart_fired_outside(
        7001, "sl", 1.095, [moved], HALF, fired=older, booked=1.090, journaled=0.2
    )
    # Not told the journal's child: by the oldest ticket's level, as before.
    assert not restart_fired_outside(7001, "sl", 1.090, [], HALF, fired=both, booked=None)
    assert restart_fired_outside(7002, "sl", 1.095, [], HALF, fired=both, booked=None)
    assert not restart_fired_outside(7002, "sl", None, [], HALF, fired=both, booked=1.095)
