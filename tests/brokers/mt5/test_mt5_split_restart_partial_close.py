"""A restart after a split child's own ticket was partly closed by hand while the bot was down.

As in ``test_mt5_split_restart_apart_fired``: tickets A and B (0.1 lot each); a person lowered
A's SL to 1.09, the running bot set A apart and journaled its SL child as B's 10,000 at 1.095.
While the bot was down a person closed 0.04 lot of B by hand, then both lines fired: B's 0.06
at the child's 1.095, A's 0.1 at the person's 1.09. B counts for the volume it opened with
(its opening deal, ``opened_lots``): what a person closed of it by hand leaves the child no
wider, so B still accounts for the whole child the journal holds, and A's close is outside
it — never a second fill of the 10,000 child booked at the person's line.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.brokers.mt5.test_mt5_hedging_split_entry import LOT
from tests.brokers.mt5.test_mt5_netting_children_reduce import _by_hand
from tests.brokers.mt5.test_mt5_split_restart_journal_level import split_with_a_set_apart
from tradefleet_plugins.brokers.mt5_reports import opened_lots, restart_fired_outside
from tradefleet_runtime.sdk import OUTSIDE_TAG

pytestmark = pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge

HALF = 0.000005


def test_a_set_apart_ticket_firing_is_not_the_childs_fill_after_a_partial_close_by_hand(
    tmp_path: Path,
) -> None:
    bot, sl, _a = split_with_a_set_apart(tmp_path)
    b = max(p.ticket for p in bot.terminal.positions_get() or ())

    def part_then_both_fire() -> None:
        _by_hand(bot.terminal, bot.terminal.ORDER_TYPE_SELL, 0.04, position=b)
        bot.terminal.set_price("EURUSD", 1.0945)  # B's SL (the bot's 1.095)
        bot.terminal.set_price("EURUSD", 1.0895)  # A's SL (the person's 1.09)

    bot.down(part_then_both_fire)
    again, second, restarted, plan = bot.restart()
    try:
        assert bot.terminal.positions_get() == ()
        booked = [(f.client_order_id, f.reason, f.quantity, f.price) for f in plan.missed_fills]
        to_child = [(q, p) for c, r, q, p in booked if c == sl and r != OUTSIDE_TAG]
        assert [q for q, _p in to_child] == [0.6 * LOT], booked  # was [6000, 10000]
        assert all(p > 1.092 for _q, p in to_child), booked
        assert again.portfolio.position("EURUSD").quantity == 0.0
    finally:
        second.close()
        restarted.close()


def test_a_ticket_counts_for_what_it_opened_with_when_judging_a_close_at_a_restart() -> None:
    """The pure rule: B (7002) opened 0.1 lot, 0.04 closed by hand; closed on the child's line
    with 0.06 or still open with 0.06, it accounts for the journal's 0.1 lot child."""
    fired = {7001: (1.090, 0.1), 7002: (1.095, 0.06)}
    opened = {7001: 0.1, 7002: 0.1}
    assert restart_fired_outside(
        7001, "sl", 1.09, [], HALF, fired=fired, booked=1.095, journaled=0.1, opened=opened
    )
    b = SimpleNamespace(ticket=7002, sl=1.095, tp=0.0, volume=0.06)
    assert restart_fired_outside(
        7001, "sl", 1.09, [b], HALF, fired={7001: (1.090, 0.1)}, booked=1.095, journaled=0.1,
        opened=opened,
    )  # fmt: skip
    # Without the opening volumes: 0.06 < 0.1, judged by the oldest ticket (A: the child's).
    assert not restart_fired_outside(
        7001, "sl", 1.09, [], HALF, fired=fired, booked=1.095, journaled=0.1
    )


def test_opened_lots_reads_the_deal_that_opened_each_position() -> None:
    deal_in = SimpleNamespace(entry=0, position_id=7001, volume=0.1)
    by_hand = SimpleNamespace(entry=1, position_id=7001, volume=0.04)
    deal_out = SimpleNamespace(entry=1, position_id=7001, volume=0.06)
    assert opened_lots([deal_in, by_hand, deal_out]) == {7001: 0.1}
    assert opened_lots([by_hand]) == {}  # its opening not among them: absent
