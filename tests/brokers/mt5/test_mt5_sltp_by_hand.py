"""An SL/TP changed by hand in the terminal while the bot runs: the bot's working children are
what the terminal holds.

MT5 keeps a position's SL/TP as its attributes; the bot's bracket children (``<id>-sl``,
``<id>-tp``) are those levels. A person dragging the SL in the terminal moves the child: the
broker's poll reports the child working at the price the position holds (the engine books and
journals it, as for a resting order's price changed at the terminal). A person deleting it
ends the child: the poll reports it cancelled at the venue, and the engine says loudly that
the stop-loss was cancelled outside the bot (the position runs without it; the bot does not
place it again). Before, the bot kept the stop at its old level for ever, with no event,
while the position had another stop or none.

On a hedging account a split entry's child is the level of its tickets, each its own line in
the terminal: what the bot shows is what the tickets hold. A line removed or moved on one
ticket only leaves the child to the tickets still at the bot's level — cut to what they hold
(journaled, said as a warning naming the ticket, "changed at the terminal"), the other
ticket's level outside the bot from then on (the bot's own moves and cancels leave it be, and
its firing is a change made outside the bot, not the child's fill). Moved on every ticket of
the child, the child follows to the new level — never to a level of a ticket outside it; it
ends when none of its own tickets holds any, or is open: a move or a cancel then sets
nothing, and the person's ticket keeps its own level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness, live_engine, minute_bar, settle_and_pump
from tests.brokers.mt5.test_mt5_hedging_split_entry import MOVED, SplitBot, _set_by_hand
from tests.brokers.mt5.test_mt5_netting_children_reduce import _by_hand, _exits, _statuses
from tests.brokers.stop_movers import Mover
from tests.runtime.helpers import Scripted
from tradefleet_plugins.brokers.mt5_broker import (
    _Booked,
    _child_change,
    _child_level,
    _tickets_look,
)
from tradefleet_plugins.brokers.mt5_reports import ticket_levels
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import OrderType

SL, TP = 1.0950, 1.1100
LOT = 100_000.0  # EURUSD units in one lot

pytestmark = pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge


@pytest.fixture(params=["netting", "hedging"])
def margin(request: pytest.FixtureRequest) -> Iterator[str]:
    mode: str = request.param
    yield mode


def _venue(mode: str) -> Mt5Harness:
    venue = Mt5Harness.build(mode)
    venue.symbols = ("EURUSD",)
    return venue.connect()


def _pump(engine: Engine, venue: Mt5Harness, times: int = 3) -> None:
    for _ in range(times):
        settle_and_pump(engine, venue)


def _stops(engine: Engine) -> list[tuple[float, float | None]]:
    """The bot's working stop-loss children: (quantity, price)."""
    return [
        (o.quantity, o.price)
        for o in engine.open_orders()
        if o.order_type is OrderType.STOP and o.client_order_id.endswith("-sl")
    ]


def _by_hand_sltp(venue: Mt5Harness, sl: float) -> None:
    """A person drags (or deletes: 0.0) the SL of the bot's position in the terminal."""
    term = venue.terminal
    (position,) = term.positions_get() or ()
    answer: Any = term.order_send(
        {
            "action": term.TRADE_ACTION_SLTP,
            "symbol": "EURUSD",
            "position": position.ticket,
            "sl": sl,
            "tp": position.tp,
        }
    )
    assert answer.retcode == term.TRADE_RETCODE_DONE


def _bracketed(
    venue: Mt5Harness, take_profit: float | None = None, hooks: RiskHooks | None = None
) -> tuple[Engine, Journal]:
    strategy = Scripted(
        {0: lambda ctx, bar: ctx.buy("EURUSD", 10_000.0, stop_loss=SL, take_profit=take_profit)}
    )
    engine, journal = live_engine(venue, strategy, hooks=hooks)
    engine.run([minute_bar(0, 1.1)])
    _pump(engine, venue)
    assert _stops(engine) == [(10_000.0, SL)]
    return engine, journal


def _bars(engine: Engine, venue: Mt5Harness, first: int = 1, count: int = 3) -> None:
    """Bars go by; the broker polls the terminal after each."""
    for i in range(first, first + count):
        engine.run([minute_bar(i, 1.1)])
        _pump(engine, venue)


def _events(journal: Journal, kind: str) -> list[str]:
    return [str(m) for (m,) in journal.query("SELECT message FROM events WHERE kind = ?", kind)]


@pytest.mark.parametrize("by_hand", [0.0, 1.0970], ids=["removed", "moved"])
def test_an_sl_changed_by_hand_while_running_is_what_the_bot_says(
    margin: str, by_hand: float
) -> None:
    venue = _venue(margin)
    try:
        engine, _journal = _bracketed(venue)
        _by_hand_sltp(venue, by_hand)
        _bars(engine, venue)
        held = [
            (round(p.volume * LOT), round(p.sl, 5))
            for p in venue.terminal.positions_get() or ()
            if p.sl
        ]
        shown = [(round(q), round(price or 0.0, 5)) for q, price in _stops(engine)]
        assert shown == held, f"the bot shows stops {shown}, the terminal holds {held}"
    finally:
        venue.close()


def test_an_sl_moved_by_hand_is_journaled_once_at_the_terminals_price(
    margin: str, caplog: pytest.LogCaptureFixture
) -> None:
    venue = _venue(margin)
    try:
        engine, journal = _bracketed(venue, take_profit=TP)
        sl_id = f"{engine.last_order_id}-sl"
        _by_hand_sltp(venue, 1.0970)
        with caplog.at_level(logging.WARNING):
            _bars(engine, venue)
        (price,) = journal.query("SELECT price FROM orders WHERE client_order_id = ?", sl_id)[0]
        assert price == pytest.approx(1.0970)  # `tradefleet orders` and a restart's re-arm
        said = [
            r.getMessage() for r in caplog.records if "changed at the terminal" in r.getMessage()
        ]
        # once by the broker, once by the engine booking it; not again at the later polls
        assert len(said) == 2 and all(sl_id in s for s in said), said
        assert "SL at 1.097, not 1.095" in said[0]
        # its take-profit, untouched, is not reported
        assert [o.price for o in engine.open_orders() if o.client_order_id.endswith("-tp")] == [TP]
    finally:
        venue.close()


def test_an_sl_removed_by_hand_is_said_loudly_and_its_take_profit_works_on(margin: str) -> None:
    venue = _venue(margin)
    try:
        engine, journal = _bracketed(venue, take_profit=TP)
        entry = engine.last_order_id
        _by_hand_sltp(venue, 0.0)
        _bars(engine, venue)
        assert _stops(engine) == []
        (said,) = _events(journal, "stop_cancelled")
        assert f"{entry}-sl" in said and "cancelled outside the bot" in said
        assert "removed at the terminal" in said and "runs without it" in said
        assert [o.client_order_id for o in engine.open_orders()] == [f"{entry}-tp"]
        assert engine.portfolio.position("EURUSD").quantity == 10_000.0  # nothing closed
        (status,) = journal.query(
            "SELECT status FROM order_status WHERE client_order_id = ?", f"{entry}-sl"
        )[0]
        assert status == "cancelled"
    finally:
        venue.close()


def test_the_bots_own_stop_move_is_no_change_by_hand(
    margin: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The poll's baseline follows the bot's own moves (MOVE_STOP): nothing reported for them."""
    venue = _venue(margin)
    try:
        mover = Mover("EURUSD", {1: 1.0980})
        hooks = RiskHooks(bar_observers=(("trail", mover),), actors=(("trail", mover),))
        engine, _journal = _bracketed(venue, hooks=hooks)
        with caplog.at_level(logging.WARNING):
            _bars(engine, venue)
        assert _stops(engine) == [(10_000.0, 1.0980)]
        assert [p.sl for p in venue.terminal.positions_get() or ()] == [1.0980]
        assert "changed at the terminal" not in caplog.text
    finally:
        venue.close()


@contextmanager
def _split(tmp_path: Path, mover: Mover | None = None) -> Iterator[tuple[SplitBot, int, int]]:
    """A hedging bot whose entry opened tickets A and B (``SplitBot``; ``mover`` moves its
    stop), with A's and B's tickets, oldest first; the bot goes down after."""
    bot = SplitBot(tmp_path, mover=mover)
    try:
        a, b = sorted(p.ticket for p in bot.terminal.positions_get() or ())
        yield bot, a, b
    finally:
        bot.down()


def _sl_by_hand(bot: SplitBot, ticket: int, sl: float) -> None:
    """A person sets (0.0: removes) ``ticket``'s SL in the terminal, its TP left at the bot's."""
    _set_by_hand(bot.terminal, ticket, sl, TP)


def test_a_split_entrys_sl_ends_only_when_no_ticket_holds_it(tmp_path: Path) -> None:
    """Hedging, one entry on tickets A and B: the child is the level of both. Moved by hand on
    both, it is booked at the new price; removed from the oldest only, the child is B's (cut
    to B's 10,000; was: still 20,000, the oldest's level shown for both), no stop cancelled;
    removed from both, the child ends, said loudly."""
    with _split(tmp_path) as (bot, a, b):
        sl, _tp = bot.children()
        for ticket in (a, b):
            _sl_by_hand(bot, ticket, 1.0970)
        bot.bar()
        assert _stops(bot.engine) == [(20_000.0, 1.0970)]
        _sl_by_hand(bot, a, 0.0)
        bot.bar()
        assert _stops(bot.engine) == [(10_000.0, 1.0970)]
        assert _events(bot.journal, "stop_cancelled") == []
        _sl_by_hand(bot, b, 0.0)
        bot.bar()
        assert _stops(bot.engine) == []
        (said,) = _events(bot.journal, "stop_cancelled")
        assert sl in said and f"positions {a}, {b} no longer hold" in said


def _covered(bot: SplitBot, role: str = "sl") -> list[tuple[float, float]]:
    """What the terminal's tickets hold of ``role``: (units, level) per level held."""
    held: dict[float, float] = {}
    for position in bot.terminal.positions_get() or ():
        level = round(float(getattr(position, role)), 5)
        if level:
            held[level] = held.get(level, 0.0) + position.volume * LOT
    return sorted((round(units), level) for level, units in held.items())


def test_a_split_entrys_sl_removed_from_one_ticket_is_the_other_tickets_stop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A person deletes the SL of ticket A only (each ticket is its own line in the terminal):
    the bot's stop-loss child is cut to what B holds, journaled, said naming A (was: a stop
    for 20,000 shown while half the position had none)."""
    with _split(tmp_path) as (bot, a, b):
        sl, _tp = bot.children()
        _sl_by_hand(bot, a, 0.0)
        with caplog.at_level(logging.WARNING):
            bot.bar()
        assert _covered(bot) == [(10_000, SL)]
        assert [(round(q), p) for q, p in _stops(bot.engine)] == [(10_000, SL)]
        (quantity,) = bot.journal.query(
            "SELECT quantity FROM orders WHERE client_order_id = ?", sl
        )[0]
        assert quantity == 10_000.0  # `tradefleet orders`, and a restart's adoption
        said = [r.getMessage() for r in caplog.records if sl in r.getMessage()]
        assert said and all(f"position {a} no longer holds its SL" in s for s in said), said
        assert all("changed at the terminal" in s for s in said), said
        assert any(f"what position {b} holds" in s for s in said), said
        reasons = [r for _s, r in bot.journal.query(
            "SELECT status, reason FROM order_status WHERE client_order_id = ?", sl)]  # fmt: skip
        assert any("resized from 20000 to 10000" in r and str(a) in r for r in reasons), reasons
        assert _events(bot.journal, "stop_cancelled") == []  # B's stop works on
        # A person closing A (its SL gone) takes nothing off B's stop: the bot neither cuts the
        # child nor clears B's SL; the TP is B's too.
        _by_hand(bot.terminal, bot.terminal.ORDER_TYPE_SELL, 0.1, position=a)
        bot.bar()
        assert bot.tickets() == [(f"{bot.entry}#1", 0.1, SL, TP)]
        assert _exits(bot.engine) == [(sl, 10_000.0, SL), (f"{bot.entry}-tp", 10_000.0, TP)]
        assert bot.engine.portfolio.position("EURUSD").quantity == 10_000.0


def test_a_split_entrys_sl_moved_on_one_ticket_is_outside_the_bot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two tickets, two levels: a person moves B's SL to 1.097, A keeps the bot's 1.095. The
    bot's child stays at its level, for A's 10,000; B's level is said to be outside the bot.
    When B's own SL fires it is booked as a change made outside the bot — not the child's
    fill, which would end the stop A still holds; then A's fires as the child."""
    with _split(tmp_path) as (bot, _a, b):
        sl, tp = bot.children()
        _sl_by_hand(bot, b, 1.0970)
        with caplog.at_level(logging.WARNING):
            bot.bar()
        assert _covered(bot) == [(10_000, SL), (10_000, 1.0970)]
        assert _stops(bot.engine) == [(10_000.0, SL)]  # the bot's level, A's part
        said = [r.getMessage() for r in caplog.records if sl in r.getMessage()]
        assert any(
            f"position {b} holds its SL at 1.097, outside the bot: changed at the terminal" in s
            for s in said
        ), said
        bot.terminal.set_price("EURUSD", 1.0965)  # B's SL (1.097) fires, A's (1.095) not
        bot.bar()
        assert bot.tickets() == [(bot.entry, 0.1, SL, TP)]
        assert bot.engine.portfolio.position("EURUSD").quantity == 10_000.0
        assert _exits(bot.engine) == [(sl, 10_000.0, SL), (tp, 10_000.0, TP)]
        (changed,) = _events(bot.journal, "position_changed_outside")
        assert "reduced outside the bot" in changed and "sell 10000 at 1.0965" in changed, changed
        bot.terminal.set_price("EURUSD", 1.0940)  # A's SL: the child's fill
        bot.bar()
        assert bot.terminal.positions_get() == ()
        assert bot.engine.portfolio.position("EURUSD").quantity == 0.0
        assert _exits(bot.engine) == []
        fills = bot.journal.query("SELECT quantity FROM fills WHERE client_order_id = ?", sl)
        assert [q for (q,) in fills] == [10_000.0]


def test_the_bots_move_after_a_one_ticket_change_moves_its_own_tickets_only(
    tmp_path: Path,
) -> None:
    """A's SL removed by hand: the bot's stop is B's. Its later move (MOVE_STOP) moves B's SL
    and sets none on A, whose lack of one is the person's."""
    with _split(tmp_path, Mover("EURUSD", {1: 1.0980})) as (bot, a, _b):
        _sl_by_hand(bot, a, 0.0)
        _pump(bot.engine, bot.venue)
        bot.bar()  # the move
        assert bot.tickets() == [(bot.entry, 0.1, 0.0, TP), (f"{bot.entry}#1", 0.1, 1.0980, TP)]
        assert _stops(bot.engine) == [(10_000.0, 1.0980)]


PERSONS_SL = 1.0900  # a ticket's SL lowered by hand: outside the bot's child from then on


def test_the_childs_last_ticket_closed_leaves_the_persons_sl_on_the_other(
    tmp_path: Path,
) -> None:
    """A's SL lowered by hand (A outside the child, which is B's 10,000), then B closed by
    hand: the child has nothing left to close — the engine cuts it to nothing and cancels it,
    the poll ends it — and A keeps the SL the person gave it (was: the cancel cleared the SL
    of every ticket of the entry, A's included, and A ran with no stop)."""
    with _split(tmp_path) as (bot, a, b):
        sl, tp = bot.children()
        _sl_by_hand(bot, a, PERSONS_SL)
        bot.bar()
        assert _stops(bot.engine) == [(10_000.0, SL)]  # B's
        _by_hand(bot.terminal, bot.terminal.ORDER_TYPE_SELL, 0.1, position=b)
        bot.bar()
        bot.bar()
        assert bot.tickets() == [(bot.entry, 0.1, PERSONS_SL, TP)]
        # The bot's stop ended (B is gone); A's own SL is not the bot's (was: adopted as the
        # child, "price 1.095 -> 1.09 at the venue"); the TP is A's, at the bot's level.
        assert _exits(bot.engine) == [(tp, 10_000.0, TP)]
        status, reason = _statuses(bot.journal, "live")[sl]
        assert status == "cancelled", reason
        kept = f"outside the bot's child, as a person set it: position {a} holds its SL at 1.09"
        assert kept in reason, reason
        assert _events(bot.journal, "stop_cancelled") == []  # the bot's own cut ended it
        assert bot.engine.portfolio.position("EURUSD").quantity == 10_000.0


def test_a_move_once_the_childs_tickets_closed_leaves_the_persons_sl(tmp_path: Path) -> None:
    """The same, the bot's stop move (MOVE_STOP) on its way before the poll saw B closed: the
    move acts on the child's own tickets only — none is left, so it sets nothing (was: it
    wrote the bot's 1.098 onto A, over the person's 1.09); the child ends."""
    with _split(tmp_path, Mover("EURUSD", {2: MOVED})) as (bot, a, b):
        sl, tp = bot.children()
        _sl_by_hand(bot, a, PERSONS_SL)
        bot.bar()
        assert _stops(bot.engine) == [(10_000.0, SL)]  # B's
        _by_hand(bot.terminal, bot.terminal.ORDER_TYPE_SELL, 0.1, position=b)
        bot.engine.run([minute_bar(bot.bars, 1.1)])  # the move, before the poll reads B's close
        bot.bars += 1
        bot.venue.broker.settle()  # the move's job, then the poll
        assert bot.tickets() == [(bot.entry, 0.1, PERSONS_SL, TP)]  # was: A at the bot's 1.098
        _pump(bot.engine, bot.venue)
        bot.bar()
        assert bot.tickets() == [(bot.entry, 0.1, PERSONS_SL, TP)]
        assert _exits(bot.engine) == [(tp, 10_000.0, TP)]
        # The move refused, not rejected: no "stop refused" close of A at market.
        assert _events(bot.journal, "stop_refused") == []
        assert _statuses(bot.journal, "live")[sl][0] == "cancelled"


def test_the_child_follows_its_own_tickets_not_a_ticket_set_apart(tmp_path: Path) -> None:
    """A's SL lowered by hand (outside the child), then B's moved by hand too: the child
    follows B, its own ticket, to 1.097 — not A's 1.09, which the child would take over
    as the oldest ticket's (was: A "at 1.09 again", the bot's later move writing over it);
    the bot's move then moves B alone."""
    with _split(tmp_path, Mover("EURUSD", {3: MOVED})) as (bot, a, b):
        sl, _tp = bot.children()
        _sl_by_hand(bot, a, PERSONS_SL)
        bot.bar()
        _sl_by_hand(bot, b, 1.0970)
        bot.bar()
        assert _stops(bot.engine) == [(10_000.0, 1.0970)]
        bot.bar()  # the move
        assert bot.tickets() == [
            (bot.entry, 0.1, PERSONS_SL, TP),
            (f"{bot.entry}#1", 0.1, MOVED, TP),
        ]
        assert _stops(bot.engine) == [(10_000.0, MOVED)]
        # B's SL removed by hand: the child ends, said loudly, naming B alone; A keeps its own.
        _sl_by_hand(bot, b, 0.0)
        bot.bar()
        assert _stops(bot.engine) == []
        (said,) = _events(bot.journal, "stop_cancelled")
        assert sl in said and f"position {b} no longer holds its SL" in said, said
        assert bot.tickets()[0] == (bot.entry, 0.1, PERSONS_SL, TP)


def test_the_childs_own_sl_firing_is_its_fill_when_the_older_ticket_is_set_apart(
    tmp_path: Path,
) -> None:
    """A's SL (the older ticket) lowered by hand: the poll finds A outside the child, which is
    B's 10,000 at the bot's 1.095. B's SL fires at 1.095 (A's 1.09 does not): the close names
    the child's own level, so it is the SL child's fill — not a change made outside the bot
    (was: compared with A's 1.09, the oldest ticket's, and booked outside; the child never
    filled and ended cancelled)."""
    bot = SplitBot(tmp_path)
    try:
        sl, _tp = bot.children()
        a, _b = sorted(p.ticket for p in bot.terminal.positions_get() or ())
        _set_by_hand(bot.terminal, a, PERSONS_SL, TP)
        bot.bar()  # the poll: A outside the child, the child is B's 10,000 at 1.095
        bot.terminal.set_price("EURUSD", 1.0945)  # B's SL (the bot's) fires, A's 1.09 not
        bot.bar()
        bot.bar()
        assert [p.ticket for p in bot.terminal.positions_get() or ()] == [a]
        assert bot.engine.portfolio.position("EURUSD").quantity == 10_000.0
        fills = bot.journal.query("SELECT quantity FROM fills WHERE client_order_id = ?", sl)
        assert [tuple(row) for row in fills] == [(10_000.0,)], fills
        assert _statuses(bot.journal, "live")[sl][0] == "filled"
        assert _events(bot.journal, "position_changed_outside") == []
    finally:
        bot.down()


# -- the decision, pure ---------------------------------------------------------------------


class _Pos:
    def __init__(self, sl: float, tp: float = 0.0) -> None:
        self.sl, self.tp = sl, tp


def test_the_level_of_a_child_is_the_oldest_position_holding_it() -> None:
    assert _child_level([_Pos(0.0), _Pos(1.09, 1.2), _Pos(1.08)], "sl") == 1.09
    assert _child_level([_Pos(1.09, 0.0), _Pos(1.08, 1.2)], "tp") == 1.2
    assert _child_level([_Pos(0.0), _Pos(0.0)], "sl") == 0.0


def test_a_level_is_news_when_removed_or_moved_past_half_a_tick() -> None:
    removed = _child_change("sl", 0.0, 1.095, 0.000005, [7001])
    assert removed is not None and removed.price == 0.0
    assert removed.said == "position 7001 no longer holds its SL: removed at the terminal"
    moved = _child_change("tp", 1.112, 1.11, 0.000005, [7001, 7002])
    assert moved is not None and moved.price == 1.112
    assert (
        moved.said == "positions 7001, 7002 hold its TP at 1.112, not 1.11: changed at the terminal"
    )
    assert _child_change("sl", 1.095001, 1.095, 0.000005, [7001]) is None  # its tick's rounding
    assert _child_change("sl", 1.097, None, 0.000005, [7001]) is None  # nothing booked to differ


class _Ticket:
    def __init__(self, ticket: int, sl: float, volume: float = 0.1) -> None:
        self.ticket, self.sl, self.tp, self.volume = ticket, sl, 0.0, volume


def test_a_split_entrys_child_is_the_tickets_at_the_bots_level() -> None:
    a, b = _Ticket(7001, 1.095), _Ticket(7002, 1.097)
    moved = ticket_levels([a, b], "sl", 1.095, 0.000005)
    assert (moved.level, moved.at, moved.off) == (1.095, (a,), (b,))  # B outside the bot
    # no ticket at the bot's level (moved on every one, or nothing booked): the oldest's
    assert ticket_levels([a, b], "sl", 1.090, 0.000005).at == (a,)
    assert ticket_levels([b, a], "sl", None, 0.000005).at == (b,)
    gone = ticket_levels([_Ticket(7001, 0.0), b], "sl", 1.097, 0.000005)
    assert (gone.at, [p.ticket for p in gone.off]) == ((b,), [7001])
    assert ticket_levels([_Ticket(7001, 0.0)], "sl", 1.095, 0.0).level == 0.0


def test_a_ticket_set_apart_is_never_the_childs_level_by_age() -> None:
    """A ticket found outside the child before (``outside``) is not the oldest one the child
    follows to when no ticket holds the bot's level (was: A's own 1.09 taken over)."""
    a, b = _Ticket(7001, 1.090), _Ticket(7002, 1.097)
    follows = ticket_levels([a, b], "sl", 1.095, 0.000005, outside={7001})
    assert (follows.level, follows.at, follows.off) == (1.097, (b,), (a,))
    b.sl = 0.0  # the child's own line removed: no ticket holds it, A's level is a person's
    removed = ticket_levels([a, b], "sl", 1.095, 0.000005, outside={7001})
    assert (removed.level, removed.at, removed.off) == (0.0, (), (a, b))
    back = ticket_levels([_Ticket(7001, 1.095), b], "sl", 1.095, 0.000005, outside={7001})
    assert back.at[0].ticket == 7001  # set back at the bot's level: the child's again


def test_a_childs_size_is_news_when_a_ticket_changes_not_while_tickets_fill() -> None:
    a, b = _Ticket(7001, 1.095), _Ticket(7002, 1.095)
    both = ticket_levels([a, b], "sl", 1.095, 0.0)
    first = _tickets_look("sl", both, _Booked(1.095, True), 20_000.0)
    assert (first.said, first.held) == ("", 20_000.0)  # placed for every ticket: no news
    seen = _Booked(1.095, True, first.volumes, first.off, first.held)
    b.sl = 0.0
    one = _tickets_look("sl", ticket_levels([a, b], "sl", 1.095, 0.0), seen, 10_000.0)
    assert one.warn and one.said == (
        "position 7002 no longer holds its SL: changed at the terminal; "
        "the SL child closes what position 7001 holds at 1.095"
    )
    # A ticket closed (a fill, maybe not read yet): nothing said until the volumes hold still
    closing = _tickets_look("sl", ticket_levels([a], "sl", 1.095, 0.0), seen, 10_000.0)
    assert (closing.said, closing.held) == ("", 20_000.0)
    settled = _Booked(1.095, True, closing.volumes, closing.off, closing.held)
    after = _tickets_look("sl", ticket_levels([a], "sl", 1.095, 0.0), settled, 10_000.0)
    assert (
        not after.warn and after.said == "the SL child closes what position 7001 holds at 1.095 now"
    )
