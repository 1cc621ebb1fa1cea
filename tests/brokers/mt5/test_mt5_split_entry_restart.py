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

A ticket whose own line a person set apart from the child (B's SL moved above the bot's) and
that fired alone is no fill of the child: the level its close names (``[sl 1.09700]``) is not
the one A, the older ticket still open, holds. The running bot and a restart book it as a
change made outside the bot, the child A's 10,000 unfilled — whether the poll saw the line
moved before it fired, or not, or the bot was down.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers.mt5.test_mt5_hedging_split_entry import LOT, SL, TP, SplitBot, _set_by_hand
from tests.brokers.mt5.test_mt5_netting_children_reduce import _exits, _pump, _statuses
from tradefleet_plugins.brokers.mt5_reports import fired_level, fired_outside, restart_apart
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.sdk import OUTSIDE_TAG

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


# -- a ticket's own line, set apart from the child, fired ----------------------------------

APART = 1.0970  # B's SL, moved by hand above the bot's 1.095: it fires first


def _booked(engine: Engine) -> dict[str, tuple[float, float]]:
    """The engine's working orders: id -> (quantity, filled)."""
    return {w.order.client_order_id: (w.order.quantity, w.filled) for w in engine.book}


def test_a_restart_does_not_book_a_line_set_apart_as_the_childs_fill(tmp_path: Path) -> None:
    """B's SL moved by hand (the poll finds it outside the child, which is A's 10,000), then
    B's own SL fires: the running bot books it as a change made outside the bot, the child
    unfilled. A restart right after reads the same: the close's level (``[sl 1.09700]``) is
    not the level A, the older ticket still open, holds for the child (was: adopted as 20,000
    with 10,000 filled at 1.0965, the bot's stop said to have filled when it never did)."""
    bot = SplitBot(tmp_path)
    sl, tp = bot.children()
    a, b = sorted(p.ticket for p in bot.terminal.positions_get() or ())
    _set_by_hand(bot.terminal, b, APART, TP)
    bot.bar()
    bot.terminal.set_price("EURUSD", 1.0965)  # B's own SL fires, A's (the bot's) not
    bot.bar()
    assert _booked(bot.engine) == {sl: (LOT, 0.0), tp: (LOT, 0.0)}
    again, second, restarted, plan = bot.restart()
    try:
        assert again.portfolio.position("EURUSD").quantity == LOT
        assert _booked(again) == {sl: (LOT, 0.0), tp: (LOT, 0.0)}, plan.notes
        assert plan.notes == () and plan.orphaned == (), plan
        statuses = _statuses(second, "live-2")
        assert (statuses[sl][0], statuses[tp][0]) == ("open", "open"), statuses
        assert bot.tickets() == [(bot.entry, 0.1, SL, TP)]
        report = restarted.broker.query_order(sl)
        assert report is not None and report.venue_order_id == str(a), report
        fills = second.query("SELECT quantity FROM fills WHERE client_order_id = ?", sl)
        assert fills == [], fills
    finally:
        second.close()
        restarted.close()


def test_a_line_set_apart_that_fired_while_down_is_a_change_outside_the_bot(
    tmp_path: Path,
) -> None:
    """B's SL moved by hand and fired while the bot was down: the restart books B's close as a
    change made outside the bot (event ``position_changed_outside``), not the SL child's fill
    (was: its missed fill, the child adopted as 20,000 with 10,000 filled); the child is A's
    10,000 at the bot's level, still at the terminal, and the TP works on for A."""
    bot = SplitBot(tmp_path)
    sl, tp = bot.children()
    _a, b = sorted(p.ticket for p in bot.terminal.positions_get() or ())

    def apart_and_fired() -> None:
        _set_by_hand(bot.terminal, b, APART, TP)
        bot.terminal.set_price("EURUSD", 1.0965)

    bot.down(apart_and_fired)
    again, second, restarted, plan = bot.restart()
    try:
        missed = [(f.client_order_id == sl, f.reason) for f in plan.missed_fills]
        assert missed == [(False, OUTSIDE_TAG)], plan.missed_fills
        assert plan.orphaned == (), plan
        assert again.portfolio.position("EURUSD").quantity == LOT
        assert _booked(again) == {sl: (LOT, 0.0), tp: (LOT, 0.0)}, plan.notes
        assert bot.tickets() == [(bot.entry, 0.1, SL, TP)]  # A's SL, the bot's, kept
        events = second.query("SELECT kind, message FROM events")
        (said,) = [message for kind, message in events if kind == "position_changed_outside"]
        assert "sell 10000 at 1.0965" in said, said
        assert second.query("SELECT quantity FROM fills WHERE client_order_id = ?", sl) == []
    finally:
        second.close()
        restarted.close()


def test_a_line_moved_and_fired_between_two_polls_is_outside_the_child(tmp_path: Path) -> None:
    """B's SL moved by hand and fired before the poll looked at it: the level the close names
    (``[sl 1.09700]``) against A's, the older ticket at the bot's 1.095, says B was outside
    the child — booked as a change made outside the bot, the children cut to A's 10,000
    (was: the SL child's fill) — as a restart then reads it."""
    bot = SplitBot(tmp_path)
    sl, tp = bot.children()
    _a, b = sorted(p.ticket for p in bot.terminal.positions_get() or ())
    _set_by_hand(bot.terminal, b, APART, TP)
    bot.terminal.set_price("EURUSD", 1.0965)
    bot.bar()
    bot.bar()
    assert bot.tickets() == [(bot.entry, 0.1, SL, TP)]
    assert bot.engine.portfolio.position("EURUSD").quantity == LOT
    assert _booked(bot.engine) == {sl: (LOT, 0.0), tp: (LOT, 0.0)}
    assert bot.journal.query("SELECT quantity FROM fills WHERE client_order_id = ?", sl) == []
    again, second, restarted, plan = bot.restart()
    try:
        assert plan.notes == () and plan.missed_fills == (), plan
        assert _booked(again) == {sl: (LOT, 0.0), tp: (LOT, 0.0)}
    finally:
        second.close()
        restarted.close()


def test_a_line_set_apart_that_fired_before_the_childs_own_is_no_fill_of_the_child(
    tmp_path: Path,
) -> None:
    """B's SL moved by hand above the bot's and fired, then A's — the bot's own 1.095, the
    child — fired too, all while the bot was down: no ticket of the entry is left open, and
    the closes name their levels (``[sl 1.09700]`` B's, ``[sl 1.09500]`` A's, the older
    ticket's: the child's). B's close is a change made outside the bot, A's the child's fill
    of 10,000 (was: both the child's, 20,000 "filled", half at a level the bot never had)."""
    bot = SplitBot(tmp_path)
    sl, _tp = bot.children()
    _a, b = sorted(p.ticket for p in bot.terminal.positions_get() or ())

    def apart_fired_then_the_childs() -> None:
        _set_by_hand(bot.terminal, b, APART, TP)
        bot.terminal.set_price("EURUSD", 1.0965)  # B's own SL fires
        bot.terminal.set_price("EURUSD", 1.0940)  # then A's, the bot's 1.095
        assert bot.terminal.positions_get() == ()

    bot.down(apart_fired_then_the_childs)
    again, second, restarted, plan = bot.restart()
    try:
        assert again.portfolio.position("EURUSD").quantity == 0.0
        booked = sorted((f.client_order_id == sl, f.reason, f.quantity) for f in plan.missed_fills)
        assert [(mine, reason == OUTSIDE_TAG) for mine, reason, _q in booked] == [
            (False, True),
            (True, False),
        ], plan.missed_fills
        fills = second.query("SELECT quantity, price FROM fills WHERE client_order_id = ?", sl)
        assert [float(row[0]) for row in fills] == [LOT], fills
    finally:
        second.close()
        restarted.close()


def test_a_line_set_apart_and_the_childs_both_fired_between_two_polls(tmp_path: Path) -> None:
    """The same while the bot runs: B's SL moved by hand and fired, then A's at the bot's
    1.095, both before the poll looked — no ticket is open when it reads the closes. The
    deals it reads together tell the child's level (A's close names the bot's 1.095): B's
    close is a change made outside the bot, A's the child's fill of 10,000 (was: both the
    child's)."""
    bot = SplitBot(tmp_path)
    try:
        sl, _tp = bot.children()
        _a, b = sorted(p.ticket for p in bot.terminal.positions_get() or ())
        _set_by_hand(bot.terminal, b, APART, TP)
        bot.terminal.set_price("EURUSD", 1.0965)
        bot.terminal.set_price("EURUSD", 1.0940)
        assert bot.terminal.positions_get() == ()
        bot.bar()
        bot.bar()
        assert bot.engine.portfolio.position("EURUSD").quantity == 0.0
        fills = bot.journal.query("SELECT quantity FROM fills WHERE client_order_id = ?", sl)
        assert [float(row[0]) for row in fills] == [LOT], fills
        events = bot.journal.query(
            "SELECT message FROM events WHERE kind = ?", "position_changed_outside"
        )
        assert len(events) == 1 and "sell 10000 at 1.0965" in str(events[0][0]), events
    finally:
        bot.down()


class _Ticket:
    def __init__(self, ticket: int, sl: float) -> None:
        self.ticket, self.sl, self.tp, self.volume = ticket, sl, 0.0, 0.1


def test_the_level_a_close_fired_at_is_the_one_its_comment_names() -> None:
    assert fired_level("[sl 1.09700]", "sl") == 1.097
    assert fired_level("[tp 1.11000]", "sl") is None  # another line's
    assert fired_level("closed by hand", "sl") is None


def test_a_close_was_outside_the_child_when_an_older_ticket_holds_another_level() -> None:
    a = _Ticket(7001, 1.095)
    half = 0.000005
    assert fired_outside(7002, "sl", 1.097, [a], half)  # B's own line fired, A's the child's
    assert not fired_outside(7002, "sl", 1.095, [a], half)  # B's at the child's level
    assert not fired_outside(7002, "sl", 1.0950004, [a], half)  # within half a tick
    # The oldest ticket closed, a newer one open at another level: the close was the child's
    # (its level the oldest's), the newer ticket's line the one moved.
    assert not fired_outside(7001, "sl", 1.095, [_Ticket(7002, 1.090)], half)
    assert not fired_outside(7002, "sl", None, [a], half)  # no level named: nothing tells
    assert not fired_outside(7002, "sl", 1.097, [_Ticket(7001, 0.0)], half)  # A holds none


def test_a_close_is_the_childs_by_the_level_the_running_bot_holds_for_it() -> None:
    """The running bot compares a close's level with the child's own (``booked``) and the
    tickets it found outside the child, not with the oldest ticket's; a restart with the
    journal's level (``Mt5Broker.restore_orders``) reads it the same way."""
    half = 0.000005
    apart = _Ticket(7001, 1.090)  # A: the person's own line, found outside the child
    # B fired at the child's 1.095: the child's fill (was: against A's 1.09, outside).
    assert not fired_outside(7002, "sl", 1.095, [apart], half, booked=1.095, outside={7001})
    # A restart given the journal's 1.095 (no tickets said outside): the child's fill too
    # (was: a restart read the oldest ticket's level, A's, as the child's: outside).
    assert not fired_outside(7002, "sl", 1.095, [apart], half, booked=1.095)
    # Only a restart not told the journal's level falls back to the oldest ticket's.
    assert fired_outside(7002, "sl", 1.095, [apart], half)
    # A ticket found outside the child is outside whatever level it fired at.
    b = _Ticket(7002, 1.095)
    assert fired_outside(7001, "sl", 1.090, [b], half, booked=1.095, outside={7001})
    # The older ticket moved by hand and fired before the poll looked, B at the bot's level.
    assert fired_outside(7001, "sl", 1.097, [_Ticket(7002, 1.095)], half, booked=1.095)
    # Moved on every ticket (B too): the child follows, the close is its fill.
    assert not fired_outside(7001, "sl", 1.097, [_Ticket(7002, 1.097)], half, booked=1.095)
    # The child's last ticket, moved by hand and fired: the child followed it.
    assert not fired_outside(7002, "sl", 1.097, [], half, booked=1.095)
    # None open: another ticket's close at the bot's level tells the child's.
    assert fired_outside(7002, "sl", 1.097, [], half, fired={7001: 1.095}, booked=1.095)


def test_a_restart_reads_the_childs_level_from_the_closes_too() -> None:
    """At a restart not told the journal's level (nothing booked) the child's level is the
    oldest ticket's, open or closed
    on its line (the level its close names): a newer ticket's close at another level is
    outside the child, whether or not a ticket is still open."""
    half = 0.000005
    assert fired_outside(7002, "sl", 1.097, [], half, fired={7001: 1.095})
    assert not fired_outside(7001, "sl", 1.095, [], half, fired={7002: 1.097})
    assert not fired_outside(7002, "sl", 1.095, [], half, fired={7001: 1.095})
    assert not fired_outside(7002, "sl", 1.097, [], half)  # nothing tells


def test_a_restart_sets_apart_the_tickets_off_the_journals_level_while_the_child_is_there() -> None:
    """``restart_apart``: while a ticket holds the journal's level, the tickets at another
    level are apart (the running bot's rule). When none does, the tickets closed on the line
    at that level tell: they took the journal's whole child (the running bot had cut it to
    them, the others set apart), and the others stay apart; or they did not, and the child
    follows the tickets left (moved while the bot was down). Nothing journaled: none apart."""
    half = 0.000005
    a, b = _Ticket(7001, 1.090), _Ticket(7002, 1.095)
    assert restart_apart([a, b], "sl", 1.095, {}, half, journaled=0.2) == {7001}
    # B's 0.1 lot fired at it, the whole child the journal holds (A set apart before): apart.
    assert restart_apart([a], "sl", 1.095, {7002: (1.095, 0.1)}, half, journaled=0.1) == {7001}
    # B fired at it, but the journal's child was both tickets': A follows (moved while down).
    assert restart_apart([a], "sl", 1.095, {7002: (1.095, 0.1)}, half, journaled=0.2) == set()
    assert restart_apart([a], "sl", 1.095, {7002: (1.097, 0.1)}, half, journaled=0.1) == set()
    assert restart_apart([a], "sl", 1.095, {}, half, journaled=0.2) == frozenset()  # moved
    assert restart_apart([a, b], "sl", None, {}, half) == frozenset()  # nothing journaled
