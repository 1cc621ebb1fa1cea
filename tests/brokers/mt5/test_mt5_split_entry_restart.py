"""A restart after one ticket of an MT5 hedging split entry closed on its SL.

One entry opened tickets A and B (``SplitBot``), each holding the entry's SL and TP. A person
lowered B's SL, so A's fires alone: B runs on, still holding the TP (and its own SL). The bot's
SL child is filled in part (A's 0.1 lot) and works on for B; its TP child works for B alone.

A bot restarted then reconciles: the SL child filled only in part and still working at the
terminal is no "sibling filled" — the TP is kept working (not cancelled, which cleared B's TP
at the terminal), and both children are adopted as the running bot had them: the SL for the
entry's 20,000 with A's 10,000 filled (the terminal's close of A is its fill), the TP for the
10,000 of B. Whether the running bot saw A's close or the restart finds it, what the journal
and the engine show is what the terminal holds: B's 10,000 under an SL at 1.09 and a TP at
1.11. B's TP firing later leaves the bot flat with nothing working.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers.mt5.test_mt5_hedging_split_entry import LOT, TP, SplitBot, _set_by_hand
from tests.brokers.mt5.test_mt5_netting_children_reduce import _exits, _pump, _statuses

pytestmark = pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge

LOWER = 1.0900  # B's SL, lowered by hand


def _fire_a(bot: SplitBot) -> None:
    """B's SL lowered by hand, then the price falls through A's SL only."""
    newer = max(bot.terminal.positions_get() or (), key=lambda p: p.ticket)
    _set_by_hand(bot.terminal, newer.ticket, LOWER, TP)
    bot.terminal.set_price("EURUSD", 1.0940)


def test_a_restart_after_one_ticket_closed_on_its_sl_keeps_the_others_take_profit(
    tmp_path: Path,
) -> None:
    bot = SplitBot(tmp_path)
    _fire_a(bot)
    _pump(bot.engine, bot.venue)
    assert bot.tickets() == [(f"{bot.entry}#1", 0.1, LOWER, TP)]  # B keeps its TP
    sl, tp = bot.children()
    # The running bot's children are B's: the SL's rest, the TP cut to B's 0.1 lot.
    assert _exits(bot.engine) == [(sl, LOT, LOWER), (tp, LOT, TP)]
    again, second, restarted, plan = bot.restart()
    try:
        assert plan.orphaned == (), plan  # was (tp,): cancelled, clearing B's TP
        assert plan.notes == (), plan.notes  # was: both "held for 10000, the journal 20000"
        # The restarted bot leaves B's TP at the terminal, and its TP child working.
        assert bot.tickets() == [(f"{bot.entry}#1", 0.1, LOWER, TP)], (bot.tickets(), plan)
        booked = {w.order.client_order_id: (w.order.quantity, w.filled) for w in again.book}
        assert booked == {sl: (2 * LOT, LOT), tp: (LOT, 0.0)}
        statuses = _statuses(second, "live-2")
        assert (statuses[sl][0], statuses[tp][0]) == ("partially_filled", "open"), statuses
        bot.terminal.set_price("EURUSD", 1.1100)  # B's TP fires: flat, nothing working
        _pump(again, restarted)
        assert bot.terminal.positions_get() == ()
        assert again.portfolio.position("EURUSD").quantity == 0.0
        assert _exits(again) == [], (_exits(again), _statuses(second, "live-2"))
    finally:
        second.close()
        restarted.close()


def test_a_ticket_closed_on_its_sl_while_the_bot_was_down_leaves_the_take_profit_to_the_rest(
    tmp_path: Path,
) -> None:
    """The same, B's SL lowered and A's firing while the bot is down: the restart books A's
    close as the SL child's fill, adopts the SL at B's level for the entry's 20,000 (A's part
    filled) and the TP as the terminal holds it, for B's 10,000 — each said against the
    journal."""
    bot = SplitBot(tmp_path)
    sl, tp = bot.children()
    bot.down(lambda: _fire_a(bot))
    again, second, restarted, plan = bot.restart()
    try:
        assert plan.orphaned == (), plan
        assert [f.client_order_id for f in plan.missed_fills] == [sl]
        assert plan.notes == (
            f"{sl}: the venue holds it at 1.09 for 20000, the journal at 1.095 for 20000; "
            "adopted as the venue holds it",  # B's SL moved, A's close its fill
            f"{tp}: the venue holds it at 1.11 for 10000, the journal at 1.11 for 20000; "
            "adopted as the venue holds it",
        )
        assert bot.tickets() == [(f"{bot.entry}#1", 0.1, LOWER, TP)]
        assert _exits(again) == [(sl, LOT, LOWER), (tp, LOT, TP)]
        assert again.portfolio.position("EURUSD").quantity == LOT
    finally:
        second.close()
        restarted.close()
