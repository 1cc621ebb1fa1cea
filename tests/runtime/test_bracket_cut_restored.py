"""A bracket child cut to a smaller position stays cut across a restart: the engine rebuilds
the cut from the journal (the entry's fills less the child's journaled quantity), tells a
broker that sizes children itself (``ChildCutter.restore_cuts``) before it follows the entry,
and grows the child from there as the entry fills. A child cut to nothing (or otherwise
ended) while its entry still rests has the entry's rest cancelled at the restart, as the
running bot does.

The venue here is the paper broker's account, the reconciliation plan the real one
(``plan_reconciliation``) from hand-made venue reports."""

from __future__ import annotations

from pathlib import Path

import pytest

# HOUR, T0 and Idle are re-exported: test_bracket_resent_child_cut imports them from here.
from tests.runtime.helpers import HOUR as HOUR
from tests.runtime.helpers import T0 as T0
from tests.runtime.helpers import Idle as Idle
from tests.runtime.helpers import live_restart
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.brackets import bracket_children
from tradefleet_runtime.capabilities import ChildCutter
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.order_book import OrderBook, carried_cuts
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    CarriedState,
    Fill,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionReport,
    Side,
)
from tradefleet_runtime.order_ids import bot_prefix
from tradefleet_runtime.reconcile import plan_reconciliation

BOT = "cut-restart-bot"
PREFIX = bot_prefix(BOT)
ENTRY = Order(
    PREFIX + "1", "BTCUSDT", Side.BUY, 0.1, OrderType.LIMIT, 100.0,
    stop_loss=90.0, take_profit=110.0, created_ts=T0,
)  # fmt: skip
SL, TP = PREFIX + "1-sl", PREFIX + "1-tp"


class Cutter:
    """A ``follows-brackets`` broker that sizes children less the engine's cuts: what it was
    told, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def follow_bracket(self, order: Order) -> None:
        self.calls.append(("follow", order.client_order_id))

    def protect_filled(self, order: Order, quantity: float) -> None:
        self.calls.append(("protect", (order.client_order_id, quantity)))

    def cut_child(self, client_order_id: str, quantity: float, cut: float) -> OrderUpdate | None:
        self.calls.append(("cut", (client_order_id, round(quantity, 8), round(cut, 8))))
        return None

    def restore_cuts(self, cuts: dict[str, float]) -> None:
        self.calls.append(("restore", {k: round(v, 8) for k, v in cuts.items()}))


def _report(order: Order, quantity: float, filled: float) -> OrderReport:
    status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN
    return OrderReport(
        order.client_order_id, "v-" + order.client_order_id, "BTCUSDT", order.side,
        order.order_type, quantity, filled, status, T0 + 120, price=order.price,
        reduce_only=order.reduce_only,
    )  # fmt: skip


def _restart(
    folder: Path,
    cutter: Cutter,
    sold: float,
    children: dict[str, float],
    known_children: bool = True,
) -> tuple[Engine, Journal]:
    """A limit buy of 0.1 (SL/TP) filled 0.04 and a plain sell of ``sold`` followed; the bot
    stopped with the children journaled working at ``children`` (id -> quantity: what the
    cuts left; a child absent ended before the restart) and restarts with the entry still
    resting part-filled at the venue."""
    engine, journal = live_restart(folder, BOT, PaperBroker(PaperBrokerParams()), cutter)
    stop, target = bracket_children(ENTRY, 0.04, T0 + 60)
    working = [(ENTRY, 0.04)]
    for child in (stop, target):
        if child.client_order_id in children:
            working.append((child._replace(quantity=children[child.client_order_id]), 0.0))
    bought = Fill(ENTRY.client_order_id, "BTCUSDT", Side.BUY, 0.04, 100.0, 0.0, T0 + 60, "t1")
    sell = Fill(PREFIX + "2", "BTCUSDT", Side.SELL, sold, 101.0, 0.0, T0 + 90, "t2")
    known = {order.client_order_id for order, _ in working} | {PREFIX + "2"}
    if known_children:
        known |= {SL, TP}
    state = CarriedState(
        10_000.0, fills=[bought, sell], working=working, runs=1, known_order_ids=frozenset(known)
    )
    held = round(0.04 - sold, 8)
    plan = plan_reconciliation(
        prefix=PREFIX,
        symbols=["BTCUSDT"],
        journal_fills=[bought, sell],
        journal_working={o.client_order_id: o for o, _ in working},
        known_order_ids=state.known_order_ids,
        venue_orders=[_report(o, o.quantity, done) for o, done in working],
        venue_fills=[bought, sell],
        venue_positions=[PositionReport("BTCUSDT", held, 100.0)] if held else [],
        now=T0 + HOUR,
    )
    assert not plan.degraded, plan.mismatches
    engine.restore_from_venue(state, plan, T0 + HOUR)
    return engine, journal


def _children(engine: Engine) -> dict[str, float]:
    return {
        w.order.client_order_id: round(w.order.quantity, 8)
        for w in engine.book
        if w.order.parent_id == ENTRY.client_order_id
    }


# -- the rule, pure ------------------------------------------------------------------------------


def test_the_cut_is_the_entrys_fills_less_the_childs_journaled_quantity() -> None:
    stop, target = bracket_children(ENTRY, 0.04, T0)
    cuts = carried_cuts([(ENTRY, 0.04), (stop._replace(quantity=0.03), 0.0), (target, 0.0)])
    assert cuts == {SL: pytest.approx(0.01)}  # the take-profit was never cut
    # A child journaled over its entry's fills (grown, the fill not journaled yet): no cut;
    # a child whose entry no longer works: nothing grows it, no cut.
    assert carried_cuts([(ENTRY, 0.03), (stop, 0.0)]) == {}
    assert carried_cuts([(stop._replace(quantity=0.01), 0.0)]) == {}


def test_a_restored_cut_grows_the_child_by_later_fills_less_it() -> None:
    book = OrderBook()
    book.add(ENTRY, 0.04)
    stop, target = bracket_children(ENTRY, 0.04, T0)
    book.add(stop._replace(quantity=0.03))
    book.add(target._replace(quantity=0.03))
    book.restore_cut(SL, 0.01)
    book.restore_cut(TP, 0.01)
    _placed, resized = book.protect(ENTRY, 0.06, T0 + 60)
    assert sorted((r.order.client_order_id, round(r.order.quantity, 8)) for r in resized) == [
        (SL, 0.05),
        (TP, 0.05),
    ]


# -- the engine after a restart ------------------------------------------------------------------


def test_a_cut_child_stays_cut_after_a_restart_and_grows_from_there(tmp_path: Path) -> None:
    cutter = Cutter()
    assert isinstance(cutter, ChildCutter)  # the engine tells it cuts, not sizes
    engine, journal = _restart(tmp_path, cutter, 0.01, {SL: 0.03, TP: 0.03})
    # Told the cuts before it follows the entry: its first sizing is already less them.
    assert cutter.calls[:2] == [
        ("restore", {SL: 0.01, TP: 0.01}),
        ("follow", ENTRY.client_order_id),
    ]
    assert _children(engine) == {SL: 0.03, TP: 0.03}  # not grown back to the 0.04 filled
    # The entry fills 0.02 more: 0.05 held, and the children grow to it, not to 0.06.
    engine._on_fill(
        Fill(ENTRY.client_order_id, "BTCUSDT", Side.BUY, 0.02, 100.0, 0.0, T0 + HOUR, "t3")
    )
    assert engine.position("BTCUSDT").quantity == pytest.approx(0.05)
    assert _children(engine) == {SL: 0.05, TP: 0.05}
    journal.close()


def test_an_entry_whose_children_were_cut_to_nothing_has_its_rest_cancelled(
    tmp_path: Path,
) -> None:
    """The sell closed all 0.04: the children were cut to nothing and cancelled, and the bot
    died before the entry's cancel landed. Followed again, the entry's next fill would run
    with no stop (the children's ids were spent)."""
    cutter = Cutter()
    engine, journal = _restart(tmp_path, cutter, 0.04, {})
    assert ("follow", ENTRY.client_order_id) not in cutter.calls
    assert _children(engine) == {}
    events = journal.query(
        "SELECT kind, message FROM events WHERE kind = 'bracket_entry_cancelled'"
    )
    assert len(events) == 1 and "ended before the restart" in events[0][1], events
    # A fill of the rest that comes before the cancel lands is closed at market.
    engine._on_fill(
        Fill(ENTRY.client_order_id, "BTCUSDT", Side.BUY, 0.02, 100.0, 0.0, T0 + HOUR, "t3")
    )
    assert _children(engine) == {}
    spent = journal.query("SELECT kind FROM events WHERE kind = 'bracket_spent'")
    assert spent == [("bracket_spent",)]
    journal.close()


def test_a_cut_to_nothing_the_venue_never_got_is_made_at_the_restart(tmp_path: Path) -> None:
    """The bot died before both cancels (the children's and the entry's) landed: the
    children still work at the venue at 0.04 for a flat position. They are cut now, and the
    entry's rest cancelled."""
    cutter = Cutter()
    engine, journal = _restart(tmp_path, cutter, 0.04, {SL: 0.04, TP: 0.04})
    assert ("follow", ENTRY.client_order_id) not in cutter.calls
    reasons = [r for (r,) in journal.query("SELECT kind FROM events")]
    assert "bracket_entry_cancelled" in reasons
    assert engine.book.bracket_spent(ENTRY)
    journal.close()
