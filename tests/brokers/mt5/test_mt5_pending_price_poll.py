"""The poll reports the price a pending order really rests at. A move (TRADE_ACTION_MODIFY)
whose answer was lost and whose read back failed too is refused as an unknown outcome, the
bot keeping the old price; if the terminal did apply it, the broker's next poll (which reads
``orders_get`` each cycle anyway) finds the order held at another price than the one it last
reported and reports it once, so the engine's book, its journal and a restart's re-arm follow
the terminal. Nothing for an unchanged price, for orders that are not the bot's, or for an
order whose amend is still on its way (its own answer reports the price)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    Mt5Harness,
    live_engine,
    minute_bar,
    restarted_plan,
    settle_and_pump,
    updates,
)
from tests.brokers.mt5.test_mt5_pending_echo import _held, _query, _stop_bot, _working_price
from tests.brokers.mt5.test_mt5_pending_unknown_outcome import ASKED, PLACED, SNAP, _resting
from tests.runtime.helpers import Scripted
from tests.venues.mt5 import CallError, UnknownOutcome
from tradefleet_plugins.brokers.mt5_broker import _Job, _pending_moves
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import Order, OrderStatus, OrderType, OrderUpdate, ReasonCode

# Every broker-level test runs twice: on the emulator, and through the bridge in front of it.
transports = pytest.mark.usefixtures("transport")

TRADE_ACTION_MODIFY = 7
TRADE_ACTION_PENDING = 5
ORDER_TYPE_BUY = 0
ORDER_TYPE_BUY_LIMIT = 2
TRADE_RETCODE_DONE = 10009


def _lose_the_answer_and_the_read_back(harness: Mt5Harness, executed: bool = True) -> None:
    """The next modify's answer is lost (10012) after the terminal did (or did not) apply
    it, and the read back after it fails (the amend's first orders_get, the order's SL/TP
    before the change, answers; -1 is a call that failed, not a lost terminal)."""
    harness.terminal.faults.script("order_send", [UnknownOutcome(10012, executed=executed)])
    harness.terminal.faults.script("orders_get", [None, CallError(-1, "Terminal: Call failed")])


def _move_at_the_terminal(harness: Mt5Harness, ticket: int, price: float) -> None:
    """Move a resting order as a person does in the terminal (not through the broker)."""
    [live] = [o for o in harness.terminal.orders_get() or () if int(o.ticket) == ticket]
    result = harness.terminal.order_send(
        {
            "action": TRADE_ACTION_MODIFY,
            "order": ticket,
            "symbol": live.symbol,
            "price": price,
            "sl": live.sl,
            "tp": live.tp,
        }
    )
    assert result is not None and result.retcode == TRADE_RETCODE_DONE


def _ticket(harness: Mt5Harness, order: Order) -> int:
    [live] = [o for o in harness.terminal.orders_get() or () if o.comment == order.client_order_id]
    return int(live.ticket)


def _amend_lost(harness: Mt5Harness, order: Order) -> list[OrderUpdate]:
    harness.broker.amend(order.client_order_id, None, ASKED)
    return updates(harness.settle())


@transports
@pytest.mark.parametrize(("snap", "held"), [(0, ASKED), (SNAP, 1.0980)], ids=["as-sent", "snapped"])
def test_a_lost_move_the_read_back_missed_is_reported_by_the_next_poll(
    netting: Mt5Harness, snap: int, held: float
) -> None:
    netting.terminal.update_symbol("EURUSD", held_price_step=snap)
    order = _resting(netting)
    _lose_the_answer_and_the_read_back(netting)
    events = _amend_lost(netting, order)
    assert netting.terminal.faults.pending("orders_get") == 0  # the read back failed
    assert _held(netting) == held  # the terminal applied it
    # The amend's own answer: unknown, the bot keeps 1.099 (it read nothing else).
    assert (events[0].status, events[0].code, events[0].price) == (
        OrderStatus.OPEN,
        ReasonCode.UNKNOWN_OUTCOME,
        None,
    )
    # The poll after it reads the order at the price held: reported (the old broker: nothing).
    assert [(u.status, u.code, u.price) for u in events[1:]] == [
        (OrderStatus.OPEN, ReasonCode.NONE, held)
    ]
    assert events[1].reason == (
        f"the terminal holds it at {held}, not 1.099 (a change whose answer was lost, or made "
        "at the terminal)"
    )
    assert _working_price(netting, order) == held
    # Once: the next polls find what they reported.
    assert netting.settle() == []
    assert netting.settle() == []


@transports
def test_a_lost_move_not_applied_is_not_reported_by_the_poll(netting: Mt5Harness) -> None:
    order = _resting(netting)
    _lose_the_answer_and_the_read_back(netting, executed=False)
    events = _amend_lost(netting, order)
    assert _held(netting) == PLACED
    assert [u.code for u in events] == [ReasonCode.UNKNOWN_OUTCOME]  # its answer, and no more
    assert netting.settle() == []
    assert _working_price(netting, order) == PLACED


@transports
def test_an_unchanged_resting_order_is_never_reported(netting: Mt5Harness) -> None:
    order = _resting(netting)
    for _ in range(3):
        assert netting.settle() == []
    netting.broker.amend(order.client_order_id, None, ASKED)
    [answer] = updates(netting.settle())
    assert (answer.reason, answer.price) == ("amended", ASKED)
    assert netting.settle() == []  # the amend's answer said the price: nothing to repeat


@transports
def test_a_move_made_at_the_terminal_is_reported_once(netting: Mt5Harness) -> None:
    order = _resting(netting)
    _move_at_the_terminal(netting, _ticket(netting, order), 1.0975)
    [update] = updates(netting.settle())
    assert (update.client_order_id, update.status, update.code, update.price) == (
        order.client_order_id,
        OrderStatus.OPEN,
        ReasonCode.NONE,
        1.0975,
    )
    assert netting.settle() == []
    _move_at_the_terminal(netting, _ticket(netting, order), 1.0970)  # and again
    assert [u.price for u in updates(netting.settle())] == [1.0970]


@transports
def test_orders_that_are_not_the_bots_are_never_reported(netting: Mt5Harness) -> None:
    """A person's pending order (magic 0) moved at the terminal: not the bot's business."""
    placed = netting.terminal.order_send(
        {
            "action": TRADE_ACTION_PENDING,
            "symbol": "EURUSD",
            "volume": 0.1,
            "type": ORDER_TYPE_BUY_LIMIT,
            "price": 1.0950,
            "magic": 0,
            "comment": "by hand",
        }
    )
    assert placed is not None and placed.retcode == TRADE_RETCODE_DONE
    _resting(netting)
    assert netting.settle() == []
    _move_at_the_terminal(netting, int(placed.order), 1.0940)
    assert netting.settle() == []


def test_a_poll_does_not_fight_an_amend_on_its_way() -> None:
    """A poll that runs while an amend of the order is queued (sent by the engine, not yet
    answered) leaves the order to the amend's answer: a price it reported in between would
    be taken for that answer, or undo it in the book."""
    harness = Mt5Harness.netting(transport="direct").connect()
    try:
        order = _resting(harness)
        _move_at_the_terminal(harness, _ticket(harness, order), 1.0975)
        gate = threading.Event()
        harness.broker._queue(_Job(lambda: gate.wait(10.0)))  # holds the I/O thread
        harness.broker.amend(order.client_order_id, None, ASKED)  # queued behind it
        polled: list[float] = []

        def poll() -> None:
            harness.broker._poll()
            polled.append(_held(harness))  # what the terminal held when it polled

        harness.broker._queue(_Job(poll), first=True)  # ahead of the amend
        gate.set()
        events = updates(harness.settle())
        assert polled == [1.0975]  # the poll ran before the amend moved it
        # The old broker (after the fix, without the guard) said 1.0975 first.
        assert [(u.reason, u.price) for u in events] == [("amended", ASKED)]
        assert harness.settle() == []
    finally:
        harness.close()


def test_a_restarted_broker_reports_the_price_held_at_its_first_poll() -> None:
    """The bot died after the lost answer, before a poll: the new broker has no price of its
    own for the order; its first poll reports the one the terminal holds, once."""
    old = Mt5Harness.netting(transport="direct").connect()
    order = _resting(old)
    _lose_the_answer_and_the_read_back(old)
    old.broker.amend(order.client_order_id, None, ASKED)
    old.broker._ask(lambda: None)  # the amend ran; no poll after it
    assert [u.code for u in updates(old.broker.drain_events())] == [ReasonCode.UNKNOWN_OUTCOME]
    old.close()
    new = Mt5Harness.build(venue=old.terminal, transport="direct").connect()
    try:
        [update] = updates(new.settle())
        assert (update.client_order_id, update.status, update.price) == (
            order.client_order_id,
            OrderStatus.OPEN,
            ASKED,
        )
        assert update.reason == "the terminal holds it at 1.0982"
        assert new.settle() == []
    finally:
        new.close()


# -- the decision, pure --------------------------------------------------------------------------


class _Record(NamedTuple):
    ticket: int
    symbol: str
    price_open: Any
    type: int = ORDER_TYPE_BUY_LIMIT


HALF_TICKS = {"EURUSD": 0.000005}


@pytest.mark.parametrize(
    ("held", "booked", "busy", "found"),
    [
        (1.0982, 1.0990, (), [("a", 1.0982)]),
        (1.0990 + 0.4e-5, 1.0990, (), []),  # within half a tick: the same price
        (1.0990, 1.0990, (), []),
        (1.0982, 1.0990, ("a",), []),  # an amend on its way reports it
        (1.0982, None, (), [("a", 1.0982)]),  # never reported (a restart): reported
        (0.0, 1.0990, (), []),  # no usable price: no news
        (float("nan"), 1.0990, (), []),
    ],
)
def test_which_resting_orders_moved(
    held: float, booked: float | None, busy: tuple[str, ...], found: list[tuple[str, float]]
) -> None:
    records = [_Record(7, "EURUSD", held), _Record(8, "EURUSD", 1.2)]  # 8: not tracked
    prices = {} if booked is None else {"a": booked}
    moves = _pending_moves(records, {7: "a"}, prices, frozenset(busy), HALF_TICKS)
    assert [(m.client_order_id, m.price) for m in moves] == found


def test_a_market_order_the_server_placed_has_no_price_to_report() -> None:
    """10008 on a market order: placed, to fill on a later tick; its price_open is no
    price of the bot's (``test_placed_market_order_fills_on_the_next_tick``)."""
    placed = _Record(7, "EURUSD", 1.1001, type=ORDER_TYPE_BUY)
    assert _pending_moves([placed], {7: "a"}, {}, frozenset(), HALF_TICKS) == []


# -- the engine books it -------------------------------------------------------------------------


def test_the_engine_books_a_lost_stop_move_the_poll_found() -> None:
    """The brief's reproduction: a stop-loss resting as a pending order moved by MOVE_STOP;
    the terminal applies it, the answer is lost and the read back fails; the next polls
    succeed. The engine's working order (what `tradefleet orders` shows, what risk rules
    read) and its journal carry the price the terminal holds."""
    venue, engine = _stop_bot()  # a sell stop at 1.095 on a server snapping moves to 0.0005
    try:
        _lose_the_answer_and_the_read_back(venue)
        engine.run([minute_bar(2, 1.1)])  # the plugin asks its move to 1.0982 after this bar
        for _ in range(3):
            settle_and_pump(engine, venue)
        assert venue.terminal.faults.pending("order_send") == 0
        assert venue.terminal.faults.pending("orders_get") == 0
        [held] = [o for o in venue.terminal.orders_get() or ()]
        assert float(held.price_open) == 1.0980
        [stop] = [o for o in engine.open_orders() if o.order_type is OrderType.STOP]
        assert stop.price == pytest.approx(1.0980)  # the old code: 1.095 until a later move
        [(price,)] = _query(engine, "SELECT price FROM orders WHERE tag = 'stop_loss'")
        assert price == pytest.approx(1.0980)  # what a restart re-arms
        [(reason,)] = _query(
            engine, "SELECT reason FROM order_updates WHERE reason LIKE 'price 1.095 -> %'"
        )
        assert reason == (
            "price 1.095 -> 1.098 at the venue: the terminal holds it at 1.098, not 1.095 (a "
            "change whose answer was lost, or made at the terminal)"
        )
        # The move itself stays refused as unknown (the plugin's veto), not booked twice.
        assert _query(
            engine, "SELECT COUNT(*) FROM order_updates WHERE reason LIKE 'stop moved%'"
        ) == [(0,)]
    finally:
        venue.close()


def _limit_bot_then_down(venue: Mt5Harness, path: Path) -> Order:
    """A live bot's buy limit at 1.099 resting at the terminal, journaled durably at
    ``path``; the bot then goes down (the terminal keeps the order)."""

    def limit(ctx: Any, bar: Any) -> None:
        ctx.buy("EURUSD", 10_000.0, order_type=OrderType.LIMIT, price=PLACED)

    engine, journal = live_engine(venue, Scripted({0: limit}), Journal(path, durable=True))
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    [order] = engine.open_orders()
    assert order.price == PLACED
    journal.close()
    return order


@pytest.mark.parametrize("moved", [True, False], ids=["moved-while-down", "unchanged"])
def test_a_restarted_engine_books_the_price_the_terminal_holds(tmp_path: Path, moved: bool) -> None:
    venue = Mt5Harness.build("netting", transport="direct")
    venue.symbols = ("EURUSD",)
    venue.connect()
    path = tmp_path / "journal.sqlite"
    order = _limit_bot_then_down(venue, path)
    if moved:  # the lost move landed (or a person moved it) while the bot was down
        _move_at_the_terminal(venue, _ticket(venue, order), ASKED)
    venue.close()
    restarted = Mt5Harness.build(venue=venue.terminal, transport="direct")
    restarted.symbols = ("EURUSD",)
    restarted.connect()
    try:
        second = Journal(path, durable=True)
        again, carried, plan = restarted_plan(restarted, second, 0)
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        settle_and_pump(again, restarted)
        held = ASKED if moved else PLACED
        [working] = again.open_orders()
        assert working.price == held  # the old code: the journal's 1.099
        [(price,)] = second.query(
            "SELECT price FROM orders WHERE client_order_id = ? ORDER BY rowid DESC LIMIT 1",
            order.client_order_id,
        )
        assert price == held
        if not moved:  # the first poll's report of an unchanged price journals nothing
            rows = second.query("SELECT COUNT(*) FROM order_updates WHERE reason LIKE 'price %'")
            assert rows == [(0,)]
        second.close()
    finally:
        restarted.close()
