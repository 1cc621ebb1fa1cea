"""MT5 netting: a reduce-only exit a person partly closed under is cut, not removed whole.

The bot's reduce-only stop or limit rests on a netting account as a plain pending order. A
person closing part of the position by hand (0.4 of 1.0 lot) left it for more than the
position holds; each poll removed it *whole* and reported it cancelled, leaving the 0.6 lot
still open without the exit the strategy placed (a protective stop: no stop at all). MT5
cannot change a pending order's volume, so the broker cuts it: removes the ticket and sends a
new pending order like it (type, price, SL/TP, expiry, magic and the same comment — the
client order id) for the volume the position still holds against it, rounded down to the
volume step, and reports the order OPEN at that size (``child_held``: the engine books and
journals it). Below the symbol's minimum volume it is still removed whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    Mt5Harness,
    fills,
    gold_pro_symbols,
    live_engine,
    minute_bar,
    restarted_plan,
    settle_and_pump,
    updates,
)
from tests.brokers.mt5.test_mt5_netting_children_reduce import _by_hand
from tests.runtime.helpers import Scripted
from tests.venues.mt5 import MT5Terminal, default_symbol_specs
from tests.venues.mt5 import constants as C
from tests.venues.mt5.faults import Disconnect, UnknownOutcome
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import OrderIntent
from tradefleet_runtime.sdk import Order, OrderStatus, OrderType, ReasonCode, Side

LOT = 100_000.0  # euros: 1.0 lot of EURUSD
STOP = 1.0950

pytestmark = pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge


def _netting(venue: Any = None) -> Mt5Harness:
    harness = Mt5Harness.build("netting", venue=venue)
    harness.symbols = ("EURUSD",)
    harness.connect()
    harness.terminal.set_price("EURUSD", 1.1000, 1.1001)
    return harness


def _long_with_exit(venue: Mt5Harness) -> tuple[Order, int]:
    """1.0 lot long and a reduce-only sell stop of 1.0 lot under it: the exit, its ticket."""
    venue.submit(venue.order(Side.BUY, LOT))
    exit_order = venue.order(
        Side.SELL, LOT, order_type=OrderType.STOP, price=STOP, reduce_only=True
    )
    (placed,) = updates(venue.submit(exit_order))
    assert placed.status is OrderStatus.OPEN
    (resting,) = venue.terminal.orders_get() or ()
    return exit_order, int(resting.ticket)


def _close_by_hand(venue: Mt5Harness, lots: float) -> int:
    """A person closes ``lots`` of the bot's position: its ticket."""
    (position,) = venue.terminal.positions_get() or ()
    _by_hand(venue.terminal, venue.terminal.ORDER_TYPE_SELL, lots, position=position.ticket)
    return int(position.ticket)


def _resting(venue: Mt5Harness) -> list[tuple[int, float, str, int, float]]:
    """(ticket, volume left, comment, type, price) of each order resting at the terminal."""
    return [
        (int(o.ticket), o.volume_current, o.comment, int(o.type), o.price_open)
        for o in venue.terminal.orders_get() or ()
    ]


def _stops_placed(venue: Mt5Harness) -> int:
    """How many sell stops the terminal ever placed: those in its history and those resting."""
    history = [o for o in venue.history_orders() if int(o.type) == C.ORDER_TYPE_SELL_STOP]
    return len(history) + len(venue.terminal.orders_get() or ())


# -- the cut, on a running bot ------------------------------------------------------------


def _bot(venue: Mt5Harness, journal: Journal) -> tuple[Engine, str]:
    """A live bot that bought 1.0 lot and rests a reduce-only sell stop of 1.0 lot under it."""
    exit_stop = OrderIntent("EURUSD", Side.SELL, LOT, OrderType.STOP, STOP, reduce_only=True)
    strategy = Scripted({0: lambda c, b: c.buy("EURUSD", LOT), 1: lambda c, b: c.submit(exit_stop)})
    engine, _ = live_engine(venue, strategy, journal)
    for i in range(2):
        engine.run([minute_bar(i, 1.1)])
        settle_and_pump(engine, venue)
    (exit_order,) = [w.order for w in engine.book if w.order.reduce_only]
    return engine, exit_order.client_order_id


def _pump(engine: Engine, venue: Mt5Harness, times: int = 2) -> None:
    for _ in range(times):
        settle_and_pump(engine, venue)


def test_a_partial_hand_close_under_a_reduce_only_stop_cuts_it_and_the_stop_closes_the_rest(
    tmp_path: Path,
) -> None:
    venue = _netting()
    journal = Journal(tmp_path / "journal.sqlite", durable=True)
    try:
        engine, exit_id = _bot(venue, journal)
        ((old_ticket, _, _, _, _),) = _resting(venue)
        position = _close_by_hand(venue, 0.4)
        _pump(engine, venue)
        # Old code: nothing rests — the exit was removed whole, the 0.6 lot left unprotected.
        ((ticket, volume, comment, kind, price),) = _resting(venue)
        assert ticket != old_ticket
        assert (volume, comment, kind, price) == (0.6, exit_id, C.ORDER_TYPE_SELL_STOP, STOP)
        working = engine.book.get(exit_id)
        assert working is not None and working.order.quantity == 60_000.0
        ((quantity,),) = journal.query(
            "SELECT quantity FROM orders WHERE client_order_id = ?", exit_id
        )
        assert quantity == 60_000.0
        reasons = [
            str(r)
            for (r,) in journal.query(
                "SELECT reason FROM order_updates WHERE client_order_id = ?", exit_id
            )
        ]
        said = (
            f"cut from 100000 to 60000: position {position} holds 60000 against it; re-placed "
            f"as ticket {ticket}"
        )
        assert any(said in r for r in reasons), reasons

        venue.terminal.set_price("EURUSD", 1.0940, 1.0941)  # the stop fires
        _pump(engine, venue)
        assert venue.terminal.positions_get() == ()  # flat: no short opened
        assert venue.terminal.orders_get() == ()
        assert engine.position("EURUSD").quantity == 0.0
        ((status, filled),) = journal.query(
            "SELECT o.status, SUM(f.quantity) FROM order_status o JOIN fills f "
            "ON f.client_order_id = o.client_order_id WHERE o.client_order_id = ?",
            exit_id,
        )
        assert (status, filled) == ("filled", 60_000.0)
    finally:
        journal.close()
        venue.close()


def test_a_restart_after_the_cut_adopts_the_new_ticket_under_the_same_id(tmp_path: Path) -> None:
    venue = _netting()
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, durable=True)
    restarted: Mt5Harness | None = None
    try:
        engine, exit_id = _bot(venue, journal)
        _close_by_hand(venue, 0.4)
        _pump(engine, venue)
        ((ticket, volume, _, _, _),) = _resting(venue)
        assert volume == 0.6
        journal.close()
        venue.close()  # the bot goes down; the cut exit rests at the terminal

        restarted = _netting(venue.terminal)
        second = Journal(path, durable=True)
        try:
            again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
            # The journal's working exit agrees with the venue's (old engine: 100000).
            journaled = {o.client_order_id: o.quantity for o, _ in carried.working}
            assert journaled[exit_id] == 60_000.0
            assert not plan.degraded, plan.mismatches
            adopted = {r.client_order_id: r for r in plan.adopted}
            assert adopted[exit_id].quantity == 60_000.0  # the journal's, resized
            assert str(ticket) in adopted[exit_id].venue_order_id
            again.restore_from_venue(carried, plan, EMULATOR_T0)
            _pump(again, restarted, 3)
            working = again.book.get(exit_id)
            assert working is not None and working.order.quantity == 60_000.0
            assert [(t, v) for t, v, _, _, _ in _resting(restarted)] == [(ticket, 0.6)]
            restarted.terminal.set_price("EURUSD", 1.0940, 1.0941)
            _pump(again, restarted)
            assert restarted.terminal.positions_get() == ()
            assert again.position("EURUSD").quantity == 0.0
        finally:
            second.close()
    finally:
        venue.close()
        if restarted is not None:
            restarted.close()


# -- the broker's paths ---------------------------------------------------------------------


def test_a_cut_below_the_minimum_volume_removes_the_exit_whole() -> None:
    symbols = gold_pro_symbols()
    symbols["EURUSD"] = {**default_symbol_specs()["EURUSD"], "volume_min": 0.5}
    venue = _netting(MT5Terminal(margin_mode="netting", symbols=symbols))
    try:
        exit_order, _ = _long_with_exit(venue)
        position = _close_by_hand(venue, 0.6)  # 0.4 lot left: below the 0.5 minimum
        (cancelled,) = [u for u in updates(venue.settle()) if u.status is not OrderStatus.OPEN]
        assert (cancelled.client_order_id, cancelled.status, cancelled.code) == (
            exit_order.client_order_id,
            OrderStatus.CANCELLED,
            ReasonCode.REDUCE_ONLY,
        )
        assert f"position {position} holds 40000" in cancelled.reason
        assert venue.terminal.orders_get() == ()
    finally:
        venue.close()


def test_a_refused_removal_changes_nothing_and_the_next_poll_cuts() -> None:
    venue = _netting()
    try:
        exit_order, ticket = _long_with_exit(venue)
        _close_by_hand(venue, 0.4)
        venue.terminal.faults.script("order_send", [C.TRADE_RETCODE_REJECT])  # the removal
        events = updates(venue.settle())
        assert events == [], events
        assert [(t, v) for t, v, _, _, _ in _resting(venue)] == [(ticket, 1.0)]
        (cut,) = [
            u for u in updates(venue.settle()) if u.client_order_id == exit_order.client_order_id
        ]
        # Old code: cancelled whole at this poll.
        assert (cut.status, cut.code) == (OrderStatus.OPEN, ReasonCode.NONE), cut
        assert cut.reason.startswith("cut from 100000 to 60000"), cut.reason
        assert venue.broker.child_held(exit_order.client_order_id) == 60_000.0
        ((new_ticket, volume, comment, _, _),) = _resting(venue)
        assert (volume, comment) == (0.6, exit_order.client_order_id) and new_ticket != ticket
    finally:
        venue.close()


def test_a_refused_new_send_after_the_removal_ends_the_exit_cancelled_naming_both() -> None:
    venue = _netting()
    try:
        exit_order, ticket = _long_with_exit(venue)
        _close_by_hand(venue, 0.4)
        # The removal goes through; the new order is refused.
        venue.terminal.faults.script("order_send", [None, C.TRADE_RETCODE_REJECT])
        (ended,) = [u for u in updates(venue.settle()) if u.status is not OrderStatus.OPEN]
        assert (ended.client_order_id, ended.status) == (
            exit_order.client_order_id,
            OrderStatus.CANCELLED,
        )
        # Old code: "reduce-only: position … holds 60000 …; cancelled at the terminal" — no
        # word of a new order.
        assert f"ticket {ticket} removed" in ended.reason, ended.reason
        assert "60000" in ended.reason and "refused" in ended.reason, ended.reason
        assert venue.terminal.orders_get() == ()
        assert updates(venue.settle()) == []  # said once
    finally:
        venue.close()


@pytest.mark.parametrize(
    "fault",
    [
        UnknownOutcome(10012, executed=True),
        UnknownOutcome(10012, executed=False),
        Disconnect("ipc", executed=True),
        Disconnect("ipc", executed=False),
    ],
    ids=["answer-lost-placed", "answer-lost-not-placed", "terminal-lost-placed", "terminal-lost"],
)
def test_a_lost_answer_to_the_new_send_is_looked_up_before_any_resend(fault: Any) -> None:
    venue = _netting()
    try:
        exit_order, ticket = _long_with_exit(venue)
        _close_by_hand(venue, 0.4)
        venue.terminal.faults.script("order_send", [None, fault])  # the removal goes through
        events = updates(venue.settle())
        if isinstance(fault, UnknownOutcome):
            # In doubt: nothing said yet (the engine keeps the exit as it was) ...
            assert [u for u in events if u.client_order_id == exit_order.client_order_id] == []
        events += updates(venue.settle())  # ... until the next poll looked the comment up
        (cut,) = [u for u in events if u.client_order_id == exit_order.client_order_id]
        assert (cut.status, cut.code) == (OrderStatus.OPEN, ReasonCode.NONE), cut
        assert cut.reason.startswith("cut from 100000 to 60000"), cut.reason
        assert venue.broker.child_held(exit_order.client_order_id) == 60_000.0
        ((new_ticket, volume, comment, _, _),) = _resting(venue)
        assert (volume, comment) == (0.6, exit_order.client_order_id) and new_ticket != ticket
        # One new order sent, never two: the first (removed) and the one resting.
        assert _stops_placed(venue) == 2
        assert updates(venue.settle()) == []
        # The broker watches the new ticket: the stop fires and closes exactly the rest.
        venue.terminal.set_price("EURUSD", 1.0940, 1.0941)
        assert [(f.client_order_id, f.quantity) for f in fills(venue.settle())] == [
            (exit_order.client_order_id, 60_000.0)
        ]
        assert venue.terminal.positions_get() == ()
    finally:
        venue.close()


def test_an_exit_cancelled_while_its_new_order_is_in_doubt_is_removed_once_found() -> None:
    venue = _netting()
    try:
        exit_order, _ = _long_with_exit(venue)
        _close_by_hand(venue, 0.4)
        venue.terminal.faults.script("order_send", [None, UnknownOutcome(10012, executed=True)])
        venue.settle()
        venue.broker.cancel(exit_order.client_order_id)  # no ticket known yet: noted
        events = [*updates(venue.settle()), *updates(venue.settle())]
        (ended,) = [u for u in events if u.client_order_id == exit_order.client_order_id]
        assert (ended.status, ended.code) == (OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_USER)
        assert venue.terminal.orders_get() == ()  # the new order found, and removed
    finally:
        venue.close()
