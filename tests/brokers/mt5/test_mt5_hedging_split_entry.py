"""On an MT5 hedging account one entry of the bot can open several tickets: each request opens a
position of its own, and one entry may go out in several requests — a limit through the market
whose Immediate-or-Cancel deal fills in part sends its rest as ``<id>#1`` (and the rest of a
resting order moved through the market goes out the same way). Every ticket carries the
entry's SL/TP at the terminal and is the entry's: its bracket children protect all of them.

What went wrong: the broker noted the children on the newest ticket only. A person closing that
ticket made the bot cancel both children ("the position it protected is closed") while the
older ticket still held the SL/TP at the terminal, the bot's 0.1 lot then running, to its
books, without a stop it would never place again; a moved stop (MOVE_STOP) or a cancelled
child changed the newest ticket only, the older one keeping the old level; after a restart the
children were adopted for one ticket's 0.1 lot of the 0.2 held ("the venue holds it at 1.095
for 10000, the journal at 1.095 for 20000; adopted as the venue holds it"), and a stop removed
by hand while the bot was down was set again on the oldest ticket only.

The setup: EURUSD fills deals IOC; a buy limit of 0.2 lot at 1.1005 (the ask 1.1001: through
the market) with SL 1.0950 / TP 1.1100 fills 0.1 on its first deal (scripted 10010) and its
rest, still through, as a second deal ``<id>#1``: tickets A and B, 0.1 lot each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    Mt5Harness,
    gold_pro_symbols,
    live_engine,
    minute_bar,
    restarted_plan,
)
from tests.brokers.mt5.test_mt5_netting_children_reduce import _by_hand, _exits, _pump, _statuses
from tests.brokers.stop_movers import Mover
from tests.runtime.helpers import Scripted
from tests.venues.mt5 import MT5Terminal
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import OrderType

SL, TP, MOVED = 1.0950, 1.1100, 1.0980
LOT = 10_000.0  # euros: 0.1 lot of EURUSD
_IOC_ONLY = 2  # SYMBOL_FILLING_IOC

pytestmark = pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge


class SplitBot:
    """A live bot whose one entry (``entry``) opened tickets A and B, journaling durably at
    ``tmp_path``; ``then``: the strategy's actions after it, by bar; ``mover``: an acting risk
    plugin moving the stop."""

    def __init__(
        self, tmp_path: Path, then: dict[int, Any] | None = None, mover: Mover | None = None
    ) -> None:
        symbols = gold_pro_symbols()
        symbols["EURUSD"] = {**symbols["EURUSD"], "filling_mode": _IOC_ONLY}
        self.terminal = MT5Terminal(margin_mode="hedging", symbols=symbols)
        self.venue = self._connect()
        self.terminal.set_price("EURUSD", 1.1000, 1.1001)
        self.path = tmp_path / "journal.sqlite"
        self.journal = Journal(self.path, durable=True)
        buy = lambda ctx, bar: ctx.buy(  # noqa: E731
            "EURUSD",
            2 * LOT,
            order_type=OrderType.LIMIT,
            price=1.1005,
            stop_loss=SL,
            take_profit=TP,
        )
        hooks = None
        if mover is not None:
            hooks = RiskHooks(bar_observers=(("trail", mover),), actors=(("trail", mover),))
        strategy = Scripted({0: buy, **(then or {})})
        self.engine, _ = live_engine(self.venue, strategy, self.journal, hooks=hooks)
        self.terminal.faults.script("order_send", [10010])  # the first deal fills half
        self.bars = 0
        self.is_down = False
        self.bar()
        self.entry = self.engine.last_order_id
        assert self.tickets() == [(self.entry, 0.1, SL, TP), (f"{self.entry}#1", 0.1, SL, TP)]
        assert self.engine.portfolio.position("EURUSD").quantity == 2 * LOT

    def _connect(self) -> Mt5Harness:
        venue = Mt5Harness.build("hedging", venue=self.terminal)
        venue.symbols = ("EURUSD",)
        venue.connect()
        return venue

    def bar(self) -> None:
        self.engine.run([minute_bar(self.bars, 1.1)])
        self.bars += 1
        _pump(self.engine, self.venue)

    def tickets(self) -> list[tuple[str, float, float, float]]:
        """The terminal's positions: (comment, volume, sl, tp), oldest first."""
        held = sorted(self.terminal.positions_get() or (), key=lambda p: p.ticket)
        return [(p.comment, p.volume, p.sl, p.tp) for p in held]

    def children(self) -> tuple[str, str]:
        return f"{self.entry}-sl", f"{self.entry}-tp"

    def down(self, meanwhile: Any = None) -> None:
        """The bot goes down (``meanwhile``: done at the terminal once its journal is closed,
        while the terminal still answers). Once."""
        if not self.is_down:
            self.is_down = True
            self.journal.close()
            if meanwhile is not None:
                meanwhile()
            self.venue.close()

    def restart(self) -> tuple[Engine, Journal, Mt5Harness, Any]:
        """The bot started again on the same terminal and journal, reconciled (and the plan)."""
        self.down()
        restarted = self._connect()
        second = Journal(self.path, durable=True)
        again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        _pump(again, restarted)
        return again, second, restarted, plan


def _set_by_hand(term: MT5Terminal, ticket: int, sl: float, tp: float) -> None:
    request = {"action": term.TRADE_ACTION_SLTP, "symbol": "EURUSD", "position": ticket}
    result = term.order_send({**request, "sl": sl, "tp": tp})
    assert result is not None and result.retcode == term.TRADE_RETCODE_DONE, result


def test_a_person_closing_the_newest_ticket_leaves_the_children_to_the_other(
    tmp_path: Path,
) -> None:
    bot = SplitBot(tmp_path)
    try:
        newer = max(bot.terminal.positions_get() or (), key=lambda p: p.ticket)
        _by_hand(bot.terminal, bot.terminal.ORDER_TYPE_SELL, 0.1, position=newer.ticket)
        _pump(bot.engine, bot.venue)
        assert bot.tickets() == [(bot.entry, 0.1, SL, TP)]  # ticket A still holds the SL/TP
        assert bot.engine.portfolio.position("EURUSD").quantity == LOT
        sl, tp = bot.children()
        assert _exits(bot.engine) == [(sl, LOT, SL), (tp, LOT, TP)]  # was []: both cancelled
        statuses = _statuses(bot.journal, "live")
        assert (statuses[sl][0], statuses[tp][0]) == ("open", "open"), statuses
        # then A's SL fires: the child's fill, its sibling cancelled, nothing left working
        bot.terminal.set_price("EURUSD", 1.0940)
        _pump(bot.engine, bot.venue)
        statuses = _statuses(bot.journal, "live")
        assert (statuses[sl][0], statuses[tp][0]) == ("filled", "cancelled"), statuses
        assert bot.engine.portfolio.position("EURUSD").quantity == 0.0
        assert bot.terminal.positions_get() == ()
    finally:
        bot.down()


def test_a_moved_stop_moves_the_sl_of_every_ticket(tmp_path: Path) -> None:
    bot = SplitBot(tmp_path, mover=Mover("EURUSD", {1: MOVED}))
    try:
        bot.bar()
        # was: B at 1.098, A still at 1.095
        assert bot.tickets() == [(bot.entry, 0.1, MOVED, TP), (f"{bot.entry}#1", 0.1, MOVED, TP)]
        sl, tp = bot.children()
        assert _exits(bot.engine) == [(sl, 2 * LOT, MOVED), (tp, 2 * LOT, TP)]
    finally:
        bot.down()


def test_a_cancelled_child_clears_its_level_on_every_ticket(tmp_path: Path) -> None:
    bot = SplitBot(tmp_path)
    try:
        _sl, tp = bot.children()
        bot.engine.cancel(tp)
        _pump(bot.engine, bot.venue)
        # was: B without TP, A still closing at 1.11 for a child the bot cancelled
        assert bot.tickets() == [(bot.entry, 0.1, SL, 0.0), (f"{bot.entry}#1", 0.1, SL, 0.0)]
        assert _statuses(bot.journal, "live")[tp][0] == "cancelled"
    finally:
        bot.down()


def test_the_stop_of_one_ticket_firing_leaves_the_other_its_take_profit(tmp_path: Path) -> None:
    """A person lowered B's SL: A's fires alone. The TP still works at the terminal on B: the
    bot keeps its TP child (was: cancelled as the SL's sibling), cut to B's 0.1 lot, and the
    SL child for B."""
    bot = SplitBot(tmp_path)
    try:
        newer = max(bot.terminal.positions_get() or (), key=lambda p: p.ticket)
        _set_by_hand(bot.terminal, newer.ticket, 1.0900, TP)
        bot.terminal.set_price("EURUSD", 1.0940)
        _pump(bot.engine, bot.venue)
        assert bot.tickets() == [(f"{bot.entry}#1", 0.1, 1.0900, TP)]
        assert bot.engine.portfolio.position("EURUSD").quantity == LOT
        sl, tp = bot.children()
        statuses = _statuses(bot.journal, "live")
        assert (statuses[sl][0], statuses[tp][0]) == ("partially_filled", "open"), statuses
        assert _exits(bot.engine) == [(sl, LOT, 1.0900), (tp, LOT, TP)]  # what B holds
        # B's TP fires later: the TP child's fill for B, all of it; the bot flat as the
        # terminal, the SL ended as its sibling: nothing works on for a flat position
        bot.terminal.set_price("EURUSD", 1.1100)
        _pump(bot.engine, bot.venue)
        assert bot.terminal.positions_get() == ()
        assert bot.engine.portfolio.position("EURUSD").quantity == 0.0
        assert _exits(bot.engine) == []
        tp_fills = bot.journal.query(
            "SELECT quantity, price FROM fills WHERE client_order_id = ?", tp
        )
        assert [tuple(row) for row in tp_fills] == [(LOT, TP)]
        statuses = _statuses(bot.journal, "live")
        assert (statuses[sl][0], statuses[tp][0]) == ("cancelled", "filled"), statuses
    finally:
        bot.down()


def test_a_restarted_bot_adopts_the_children_for_every_ticket(tmp_path: Path) -> None:
    bot = SplitBot(tmp_path)
    again, second, restarted, plan = bot.restart()
    try:
        sl, tp = bot.children()
        assert plan.notes == ()  # was: "the venue holds it ... for 10000, the journal ... 20000"
        assert _exits(again) == [(sl, 2 * LOT, SL), (tp, 2 * LOT, TP)]
        report = restarted.broker.query_order(sl)
        assert report is not None and report.quantity == 2 * LOT
        a, b = sorted(p.ticket for p in bot.terminal.positions_get() or ())
        assert report.venue_order_id == f"{a},{b}"
        # the bot's own close after the restart: both tickets closed, both children ended
        again.flatten("test", "close")
        _pump(again, restarted)
        assert bot.terminal.positions_get() == ()
        assert again.portfolio.position("EURUSD").quantity == 0.0
        assert _exits(again) == []
    finally:
        second.close()
        restarted.close()


def test_an_sl_removed_by_hand_while_down_is_set_again_on_every_ticket(tmp_path: Path) -> None:
    bot = SplitBot(tmp_path)

    def remove_stops() -> None:
        for position in bot.terminal.positions_get() or ():
            _set_by_hand(bot.terminal, position.ticket, 0.0, TP)
        assert [sl for _c, _v, sl, _tp in bot.tickets()] == [0.0, 0.0]

    bot.down(remove_stops)
    _again, second, restarted, plan = bot.restart()
    try:
        sl, _tp = bot.children()
        assert plan.resend == (sl,)
        # was: set on ticket A only, B left without a stop
        assert bot.tickets() == [(bot.entry, 0.1, SL, TP), (f"{bot.entry}#1", 0.1, SL, TP)]
        assert _statuses(second, "live-2")[sl][0] == "open"
    finally:
        second.close()
        restarted.close()


def test_the_bots_close_closes_every_ticket(tmp_path: Path) -> None:
    """Guard (held before the fix too): a sell of the whole position closes A then B by
    ticket, and the children end with them."""
    bot = SplitBot(tmp_path, then={1: lambda ctx, bar: ctx.sell("EURUSD", 2 * LOT)})
    try:
        bot.bar()
        assert bot.terminal.positions_get() == ()
        assert bot.engine.portfolio.position("EURUSD").quantity == 0.0
        assert _exits(bot.engine) == []
    finally:
        bot.down()
