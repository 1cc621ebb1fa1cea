"""On an MT5 hedging account each ticket carries its own SL/TP — the children of the entry that
opened it. A fill that makes the bot's position smaller ends or cuts the children of the
ticket it closed, which only the broker knows (``TicketBrackets.entries_reduced``), never the
oldest entry's by the engine's netting rule: cancelling those clears the SL/TP of a ticket
still open at the terminal.

A bot buys 0.1 lot with SL/TP twice (entries A and B, tickets A and B). A person closes B's
ticket, or part of it, or a sell limit of the bot opens a short ticket of its own beside them:
ticket A keeps its SL/TP at the terminal, and the engine keeps A's children whole.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers.mt5.test_mt5_netting_children_reduce import (
    LOT,
    SL,
    TP,
    Bot,
    _by_hand,
    _exits,
    _pump,
    _statuses,
)
from tradefleet_runtime.sdk import OrderType

pytestmark = pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge


def _tickets(bot: Bot) -> list[tuple[str, float, float, float]]:
    """The terminal's positions: (comment, volume, sl, tp), oldest first."""
    held = sorted(bot.terminal.positions_get() or (), key=lambda p: p.ticket)
    return [(p.comment, p.volume, p.sl, p.tp) for p in held]


def test_a_person_closing_the_newest_ticket_leaves_the_oldest_its_stops(tmp_path: Path) -> None:
    bot = Bot(tmp_path, "hedging", {})
    try:
        older, newer = sorted(bot.terminal.positions_get() or (), key=lambda p: p.ticket)
        assert [older.comment, newer.comment] == bot.entries
        _by_hand(bot.terminal, bot.terminal.ORDER_TYPE_SELL, 0.1, position=newer.ticket)
        _pump(bot.engine, bot.venue)
        # the terminal: ticket A open with the SL/TP it was opened with
        assert _tickets(bot) == [(bot.entries[0], 0.1, SL, TP)]
        assert bot.engine.portfolio.position("EURUSD").quantity == LOT
        # the engine: A's children, whole; B's ended with its ticket
        assert _exits(bot.engine) == [(bot.children(0)[0], LOT, SL), (bot.children(0)[1], LOT, TP)]
        statuses = _statuses(bot.journal, "live")
        for child in bot.children(1):
            status, reason = statuses[child]
            assert status == "cancelled" and reason.startswith("nothing left to close"), reason
        assert [statuses[child][0] for child in bot.children(0)] == ["open", "open"]
    finally:
        bot.down()


def test_a_person_closing_part_of_the_newest_ticket_cuts_its_children_alone(
    tmp_path: Path,
) -> None:
    bot = Bot(tmp_path, "hedging", {})
    try:
        _older, newer = sorted(bot.terminal.positions_get() or (), key=lambda p: p.ticket)
        _by_hand(bot.terminal, bot.terminal.ORDER_TYPE_SELL, 0.05, position=newer.ticket)
        _pump(bot.engine, bot.venue)
        assert _tickets(bot) == [(bot.entries[0], 0.1, SL, TP), (bot.entries[1], 0.05, SL, TP)]
        assert _exits(bot.engine) == sorted(
            [
                (bot.children(0)[0], LOT, SL),
                (bot.children(0)[1], LOT, TP),
                (bot.children(1)[0], LOT / 2, SL),
                (bot.children(1)[1], LOT / 2, TP),
            ]
        )
    finally:
        bot.down()


def test_a_sell_limit_filling_as_a_ticket_of_its_own_cuts_no_ticket_s_stops(
    tmp_path: Path,
) -> None:
    """A sell limit of 0.3 lot (more than the 0.2 long: not a reduce, so it rests as one
    pending order) fills as a short ticket of its own: the bot is net short 0.1, and tickets
    A and B, still open, keep their SL/TP at the terminal and their children in the engine."""
    sell = lambda ctx, bar: ctx.sell(  # noqa: E731
        "EURUSD", 3 * LOT, order_type=OrderType.LIMIT, price=1.1010
    )
    bot = Bot(tmp_path, "hedging", {2: sell})
    try:
        bot.bar()
        bot.terminal.set_price("EURUSD", 1.1012)  # the limit fills
        _pump(bot.engine, bot.venue)
        assert bot.engine.portfolio.position("EURUSD").quantity == pytest.approx(-LOT)
        tickets = _tickets(bot)
        assert tickets[:2] == [(bot.entries[0], 0.1, SL, TP), (bot.entries[1], 0.1, SL, TP)]
        assert [(volume, sl, tp) for _c, volume, sl, tp in tickets[2:]] == [(0.3, 0.0, 0.0)]
        assert [cid for cid, _left, _price in _exits(bot.engine)] == sorted(
            [*bot.children(0), *bot.children(1)]
        )
    finally:
        bot.down()
