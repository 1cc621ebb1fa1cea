"""A position reduced by another order than its bracket's: the working SL/TP children are cut
so that, on each side, they close no more than the position holds — while the bot runs and
after a restart, the two the same for the same terminal state — and when the position's SL
fires, each child still working is filled by its own part, the parts adding up to the deal.

What went wrong before: a netting bot buys 0.1 lot with SL/TP twice (entries A and B, the
position's SL/TP: allowed on netting, docs/mt5.md), then sells 0.1. The running engine kept
A's and B's children at 0.1 + 0.1 = 0.2 lot of working exits for a 0.1 lot position; after a
restart the broker reported ``A-sl`` and ``B-sl`` at 0.1 each for it; and the SL's close was
booked as one child's fill of the whole position (B's while running, A's after a restart).

The rule (``engine.order_book.children_over_position``, replayed by
``mt5_reports.bracket_shares``): the oldest children are cut first — what an MT5 hedging
account closes first, its oldest ticket — and one cut to nothing is cancelled.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    Mt5Harness,
    live_engine,
    minute_bar,
    restarted_plan,
    settle_and_pump,
)
from tests.runtime.helpers import Scripted
from tests.venues.mt5 import MT5Terminal
from tradefleet_plugins.brokers.mt5_reports import bracket_shares
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.order_book import ChildLeft, children_over_position
from tradefleet_runtime.engine.risk_snapshot import protective_stops
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import STOP_LOSS_TAG, TAKE_PROFIT_TAG, Side

SL, TP = 1.0950, 1.1100
LOT = 10_000.0  # euros: 0.1 lot of EURUSD

pytestmark = pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge


def _exits(engine: Engine) -> list[tuple[str, float, float | None]]:
    """The engine's working bracket children: (id, quantity left, price), sorted."""
    return sorted(
        (w.order.client_order_id, w.order.quantity - w.filled, w.order.price)
        for w in engine.book
        if w.order.parent_id is not None
    )


def _pump(engine: Engine, venue: Mt5Harness, times: int = 3) -> None:
    for _ in range(times):
        settle_and_pump(engine, venue)


def _statuses(journal: Journal, run_id: str) -> dict[str, tuple[str, str]]:
    rows = journal.query(
        "SELECT client_order_id, status, reason FROM order_status WHERE run_id = ?", run_id
    )
    return {order_id: (status, reason) for order_id, status, reason in rows}


def _by_hand(term: MT5Terminal, side: int, volume: float, position: int = 0) -> None:
    """A person's market order in the terminal: magic 0, no comment."""
    request: dict[str, Any] = {
        "action": term.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": volume,
        "type": side,
        "type_filling": term.ORDER_FILLING_IOC,
        "magic": 0,
    }
    if position:
        request["position"] = position
    result = term.order_send(request)
    assert result is not None and result.retcode == term.TRADE_RETCODE_DONE, result


class Bot:
    """A live bot on an emulated account that bought 0.1 lot with SL/TP twice (entries A, B:
    ``entries``), journaling durably at ``path``."""

    def __init__(self, tmp_path: Path, margin_mode: str, then: dict[int, Any]) -> None:
        self.venue = Mt5Harness.build(margin_mode)
        self.venue.symbols = ("EURUSD",)
        self.venue.connect()
        self.margin_mode = margin_mode
        self.path = tmp_path / "journal.sqlite"
        buy = lambda ctx, bar: ctx.buy("EURUSD", LOT, stop_loss=SL, take_profit=TP)  # noqa: E731
        strategy = Scripted({0: buy, 1: buy, **then})
        self.journal = Journal(self.path, durable=True)
        self.engine, _ = live_engine(self.venue, strategy, self.journal)
        self.entries: list[str] = []
        self.bars = 0
        self.is_down = False
        for _ in range(2):
            self.bar()
            self.entries.append(self.engine.last_order_id)

    @property
    def terminal(self) -> MT5Terminal:
        return self.venue.terminal

    def bar(self) -> None:
        self.engine.run([minute_bar(self.bars, 1.1)])
        self.bars += 1
        _pump(self.engine, self.venue)

    def children(self, entry: int) -> list[str]:
        return [f"{self.entries[entry]}-{role}" for role in ("sl", "tp")]

    def down(self, meanwhile: Any = None) -> None:
        """The bot goes down (``meanwhile``: done at the terminal once its journal is closed
        and its broker polls no more; the terminal answers a connected caller). Once."""
        if self.is_down:
            return
        self.is_down = True
        self.journal.close()
        if meanwhile is not None:
            meanwhile()
        self.venue.close()

    def restart(self) -> tuple[Engine, Journal, Mt5Harness]:
        """The bot started again on the same terminal and journal, reconciled."""
        restarted = Mt5Harness.build(self.margin_mode, venue=self.terminal)
        restarted.symbols = ("EURUSD",)
        restarted.connect()
        second = Journal(self.path, durable=True)
        again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        _pump(again, restarted)
        return again, second, restarted


@pytest.fixture
def reduced(tmp_path: Path) -> Iterator[Bot]:
    """Netting, A and B bought, then a plain sell of 0.1 lot by the strategy."""
    bot = Bot(tmp_path, "netting", {2: lambda ctx, bar: ctx.sell("EURUSD", LOT)})
    bot.bar()
    yield bot
    bot.down()


def test_a_reduce_cuts_the_oldest_entrys_children_and_keeps_the_positions_stops(
    reduced: Bot,
) -> None:
    bot = reduced
    (position,) = bot.terminal.positions_get() or ()
    # the terminal: 0.1 lot left, its SL/TP untouched (cancelling A's children cleared nothing)
    assert (position.volume, position.sl, position.tp) == (0.1, SL, TP)
    assert bot.engine.portfolio.position("EURUSD").quantity == LOT
    # the engine: one SL and one TP of 0.1 lot for the 0.1 lot position (was A's and B's:
    # 0.2 lot of each)
    assert _exits(bot.engine) == [(bot.children(1)[0], LOT, SL), (bot.children(1)[1], LOT, TP)]
    stops = protective_stops(bot.engine.portfolio, bot.engine.book)["EURUSD"]
    assert sum(left for left, _ in stops) == LOT  # what risk-at-stop reads
    # journaled: A's children cancelled, naming the fill that cut them
    statuses = _statuses(bot.journal, "live")
    sell = bot.engine.last_order_id
    for child in bot.children(0):
        status, reason = statuses[child]
        assert status == "cancelled", statuses
        assert reason.startswith("nothing left to close: fill ") and sell in reason, reason
    assert [statuses[child][0] for child in bot.children(1)] == ["open", "open"]


def test_a_restarted_bot_finds_the_same_working_exits(reduced: Bot) -> None:
    bot = reduced
    running = _exits(bot.engine)
    bot.down()
    again, second, restarted = bot.restart()
    try:
        assert _exits(again) == running
        for role in ("-sl", "-tp"):  # each level once, for the 0.1 lot held
            assert sum(left for cid, left, _ in _exits(again) if cid.endswith(role)) == LOT
        statuses = _statuses(second, "live-2")
        assert "rejected" not in {status for status, _ in statuses.values()}, statuses
        assert [d.type for d in restarted.deals()] == [0, 0, 1]  # nothing else traded
    finally:
        second.close()
        restarted.close()


@pytest.mark.parametrize("when", ["running", "down"])
def test_the_stop_then_fills_the_child_left_by_its_part(reduced: Bot, when: str) -> None:
    """After the reduce the SL fires: booked as B-sl's 0.1 (A's children were cancelled),
    whether the bot sees it running or after a restart."""
    bot = reduced
    if when == "running":
        bot.terminal.set_price("EURUSD", 1.0940)
        _pump(bot.engine, bot.venue)
        engine, journal = bot.engine, bot.journal
    else:
        bot.down()
        bot.terminal.set_price("EURUSD", 1.0940)
        engine, journal, restarted = bot.restart()
    try:
        fills = journal.query(
            "SELECT client_order_id, quantity, reason FROM fills WHERE reason = 'stop_loss'"
        )
        assert fills == [(bot.children(1)[0], LOT, STOP_LOSS_TAG)]
        assert engine.portfolio.position("EURUSD").quantity == 0.0
        assert _exits(engine) == []
        statuses = _statuses(journal, "live" if when == "running" else "live-2")
        assert statuses[bot.children(1)[1]][0] == "cancelled"
        if when == "down":  # the close is B's stop's, not the position's first entry's
            reports = restarted.broker.order_reports(EMULATOR_T0 - 3600)
            said = {r.client_order_id: (r.status.value, r.filled_quantity) for r in reports}
            assert said[bot.children(1)[0]] == ("filled", LOT)
            assert said[bot.children(0)[0]] == ("cancelled", 0.0)
    finally:
        if when == "down":
            journal.close()
            restarted.close()


@pytest.mark.parametrize("when", ["running", "down"])
def test_a_netted_stop_fills_each_child_by_its_part(tmp_path: Path, when: str) -> None:
    """A and B, no reduce: the SL closes 0.2 lot in one deal; booked as A-sl's 0.1 and B-sl's
    0.1 (the same ids and parts whether the bot saw it running or after a restart), each
    one's take-profit cancelled."""
    bot = Bot(tmp_path, "netting", {})
    if when == "running":
        bot.terminal.set_price("EURUSD", 1.0940)
        _pump(bot.engine, bot.venue)
        journal, engine = bot.journal, bot.engine
        run_id = "live"
    else:
        bot.down()
        bot.terminal.set_price("EURUSD", 1.0940)
        engine, journal, restarted = bot.restart()
        run_id = "live-2"
    try:
        rows = journal.query(
            "SELECT client_order_id, quantity, fill_id FROM fills WHERE reason = 'stop_loss'"
        )
        (deal,) = [d for d in bot.venue.deals() if d.reason == 4]  # DEAL_REASON_SL
        assert sorted((cid, qty) for cid, qty, _ in rows) == [
            (bot.children(0)[0], LOT),
            (bot.children(1)[0], LOT),
        ]
        assert sum(qty for _, qty, _ in rows) == deal.volume * 100_000  # the deal, all of it
        assert sorted(fill_id for *_, fill_id in rows) == [str(deal.ticket), f"{deal.ticket}.1"]
        statuses = _statuses(journal, run_id)
        assert [statuses[bot.children(e)[1]][0] for e in (0, 1)] == ["cancelled", "cancelled"]
        assert engine.portfolio.position("EURUSD").quantity == 0.0
        assert _exits(engine) == []
    finally:
        if when == "running":
            bot.down()
        else:
            journal.close()
            restarted.close()


@pytest.mark.parametrize("when", ["running", "down"])
def test_a_reduce_by_hand_cuts_the_children_running_or_down_alike(
    tmp_path: Path, when: str
) -> None:
    """A person sells 0.1 lot of the 0.2 in the terminal: while the bot runs (booked as an
    outside fill, the children cut) or while it is down (the restarted broker reports A's
    children closed at the venue, B's working): the same working exits either way."""
    bot = Bot(tmp_path, "netting", {})
    if when == "running":
        _by_hand(bot.terminal, bot.terminal.ORDER_TYPE_SELL, 0.1)
        _pump(bot.engine, bot.venue)
        engine = bot.engine
    else:
        term = bot.terminal
        bot.down(lambda: _by_hand(term, term.ORDER_TYPE_SELL, 0.1))
        engine, journal, restarted = bot.restart()
    try:
        assert engine.portfolio.position("EURUSD").quantity == LOT
        assert _exits(engine) == [
            (bot.children(1)[0], LOT, SL),
            (bot.children(1)[1], LOT, TP),
        ]
        (position,) = bot.terminal.positions_get() or ()
        assert (position.volume, position.sl, position.tp) == (0.1, SL, TP)
        if when == "down":
            statuses = _statuses(journal, "live-2")
            assert [statuses[child][0] for child in bot.children(0)] == ["cancelled"] * 2
            assert "rejected" not in {status for status, _ in statuses.values()}, statuses
    finally:
        if when == "running":
            bot.down()
        else:
            journal.close()
            restarted.close()


def test_one_entry_reduced_by_half_keeps_half_its_children_running_and_restarted(
    tmp_path: Path,
) -> None:
    """One 0.2 lot entry, a plain sell of 0.1: its children are resized to 0.1 (journaled,
    naming the fill; MT5 has nothing to send, the position's SL closes what it holds), as a
    restart reports them."""
    venue = Mt5Harness.netting()
    venue.symbols = ("EURUSD",)
    venue.connect()
    path = tmp_path / "journal.sqlite"
    strategy = Scripted(
        {
            0: lambda ctx, bar: ctx.buy("EURUSD", 2 * LOT, stop_loss=SL, take_profit=TP),
            1: lambda ctx, bar: ctx.sell("EURUSD", LOT),
        }
    )
    engine, journal = live_engine(venue, strategy, Journal(path, durable=True))
    for i in range(2):
        engine.run([minute_bar(i, 1.1)])
        _pump(engine, venue)
    sell = engine.last_order_id
    (entry,) = {o.parent_id for o in engine.open_orders()}
    assert _exits(engine) == [(f"{entry}-sl", LOT, SL), (f"{entry}-tp", LOT, TP)]
    rows = dict(journal.query("SELECT client_order_id, quantity FROM orders"))
    assert (rows[f"{entry}-sl"], rows[f"{entry}-tp"]) == (LOT, LOT)
    status, reason = _statuses(journal, "live")[f"{entry}-sl"]
    assert status == "open" and reason.startswith("resized from 20000 to 10000: fill "), reason
    assert sell in reason
    running = _exits(engine)
    journal.close()
    venue.close()
    restarted = Mt5Harness.build("netting", venue=venue.terminal)
    restarted.symbols = ("EURUSD",)
    restarted.connect()
    second = Journal(path, durable=True)
    try:
        again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        _pump(again, restarted)
        assert _exits(again) == running
    finally:
        second.close()
        restarted.close()


def test_hedging_cuts_the_children_of_the_ticket_the_reduce_closed(tmp_path: Path) -> None:
    """A hedging account closes the oldest ticket first: the cut takes A's children, never
    B's — whose position is the one left, its SL/TP still on it at the terminal."""
    bot = Bot(tmp_path, "hedging", {2: lambda ctx, bar: ctx.sell("EURUSD", LOT)})
    try:
        bot.bar()
        (position,) = bot.terminal.positions_get() or ()
        assert (position.volume, position.sl, position.tp) == (0.1, SL, TP)
        assert position.comment == bot.entries[1]  # B's ticket is left
        assert _exits(bot.engine) == [
            (bot.children(1)[0], LOT, SL),
            (bot.children(1)[1], LOT, TP),
        ]
    finally:
        bot.down()


# -- the engine's cut and the broker's replay are one rule --------------------------------------


class _Deal:
    """A terminal deal as ``bracket_shares`` reads it."""

    def __init__(self, ticket: int, buy: bool, volume: float, entry: int, comment: str) -> None:
        self.ticket, self.type, self.volume = ticket, 0 if buy else 1, volume
        self.entry, self.comment = entry, comment


def test_the_brokers_replay_cuts_as_the_engine_does() -> None:
    """Random pyramids (entries with and without SL/TP) and reduces on a long netting
    position: the children the engine keeps after each reduce are those the broker's replay
    of the deals reports, at the same parts."""
    rng = random.Random(7)
    for _ in range(300):
        held = 0
        book: list[ChildLeft] = []  # the engine's working children, oldest first
        levels: dict[str, frozenset[str]] = {}
        deals: list[_Deal] = []
        opener = ""
        for step in range(rng.randint(1, 8)):
            if held == 0 or rng.random() < 0.6:
                entry = f"e{step}"
                lots = rng.randint(1, 3)
                first = held == 0
                bracketed = first or rng.random() < 0.7
                levels[entry] = frozenset({"sl", "tp"}) if bracketed else frozenset()
                deals.append(_Deal(len(deals) + 1, True, lots / 10, 0, entry))
                held += lots
                if first:
                    book, opener = [], entry
                for role, tag in (("sl", STOP_LOSS_TAG), ("tp", TAKE_PROFIT_TAG)):
                    if bracketed:
                        book.append(ChildLeft(f"{entry}-{role}", Side.SELL, tag, float(lots)))
            else:
                lots = rng.randint(1, held)
                deals.append(_Deal(len(deals) + 1, False, lots / 10, 1, "by hand"))
                held -= lots
                cuts = dict(children_over_position(float(held), book))
                book = [
                    c._replace(left=cuts.get(c.client_order_id, c.left))
                    for c in book
                    if cuts.get(c.client_order_id, c.left) > 0
                ]
        if held == 0:
            continue
        shares = bracket_shares(
            deals, lambda c: None if c == "by hand" else c, levels, levels[opener]
        )
        replayed = sorted(
            (share.client_order_id, round(share.lots * 10, 6))
            for role in ("sl", "tp")
            for share in shares.working[role]
        )
        assert replayed == sorted((c.client_order_id, c.left) for c in book), deals
