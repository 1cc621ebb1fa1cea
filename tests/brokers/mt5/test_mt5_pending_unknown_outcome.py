"""A pending-order move (TRADE_ACTION_MODIFY) whose answer is lost — 10012 timeout, 10031 no
connection, or ``order_send`` answering None — is settled by reading the order back, as an
SL/TP move's is: the terminal may have applied it. Applied: reported "amended" at the price the
order holds; not applied: refused, saying the outcome was checked; the read failing too:
refused, saying the outcome is unknown, the broker claiming no price it did not read."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from tests.brokers.mt5.harness import Mt5Harness, minute_bar, settle_and_pump, updates
from tests.brokers.mt5.test_mt5_pending_echo import (
    _amend,
    _held,
    _query,
    _stop_bot,
    _working_price,
)
from tests.brokers.mt5.test_mt5_pending_echo import _resting as _resting_order
from tests.venues.mt5 import CallError, Disconnect, UnknownOutcome
from tests.venues.mt5.faults import FaultStep
from tradefleet_plugins.brokers.mt5_broker import _pending_after_doubt
from tradefleet_runtime.sdk import Order, OrderStatus, OrderType, ReasonCode, Side

# Every broker-level test runs twice: on the emulator, and through the bridge in front of it.
transports = pytest.mark.usefixtures("transport")

PLACED = 1.0990  # a buy limit under the ask (1.1001)
ASKED = 1.0982  # on EURUSD's tick: sent as asked
SNAP = 50  # points: a server holding moved pending prices on 0.0005 holds 1.0982 as 1.0980

# The faults that apply the change and lose its answer, by what the broker gets back.
APPLIED_LOST = {
    "timeout 10012": UnknownOutcome(10012, executed=True),
    "no connection 10031": UnknownOutcome(10031, executed=True),
    "trade server lost 10031": Disconnect("server", executed=True),
}
# The faults that lose the answer of a change the terminal did not apply, and the reason code
# the refusal keeps (the retcode's; order_send's None: a venue refusal, as before).
NOT_APPLIED_LOST = {
    "timeout 10012": (UnknownOutcome(10012, executed=False), ReasonCode.UNKNOWN_OUTCOME),
    "no connection 10031": (UnknownOutcome(10031, executed=False), ReasonCode.VENUE_UNAVAILABLE),
    "order_send None": (CallError(-1, "Terminal: Call failed"), ReasonCode.VENUE_REJECTED),
}


def _resting(harness: Mt5Harness) -> Order:
    """A buy limit of 0.1 lot EURUSD resting at the terminal at PLACED, acknowledged."""
    return _resting_order(harness, Side.BUY, OrderType.LIMIT, PLACED)


@transports
@pytest.mark.parametrize("fault", APPLIED_LOST.values(), ids=APPLIED_LOST.keys())
@pytest.mark.parametrize(("snap", "held"), [(0, ASKED), (SNAP, 1.0980)], ids=["as-sent", "snapped"])
def test_an_applied_move_whose_answer_was_lost_is_amended_at_the_price_held(
    netting: Mt5Harness, fault: FaultStep, snap: int, held: float
) -> None:
    netting.terminal.update_symbol("EURUSD", held_price_step=snap)
    order = _resting(netting)
    netting.terminal.faults.script("order_send", [fault])
    try:
        update = _amend(netting, order, ASKED)
    finally:
        netting.terminal.faults.reconnect("server")
    assert netting.terminal.faults.pending("order_send") == 0  # the fault was used
    assert _held(netting) == held  # the terminal applied it
    # The old broker said "amend refused: request timeout (10012)": the engine kept 1.099.
    assert (update.status, update.code, update.reason, update.price) == (
        OrderStatus.OPEN,
        ReasonCode.NONE,
        "amended",
        held,
    )
    assert _working_price(netting, order) == held


@transports
@pytest.mark.parametrize(("fault", "code"), NOT_APPLIED_LOST.values(), ids=NOT_APPLIED_LOST.keys())
def test_a_move_not_applied_whose_answer_was_lost_is_refused_as_checked(
    netting: Mt5Harness, fault: FaultStep, code: ReasonCode
) -> None:
    order = _resting(netting)
    netting.terminal.faults.script("order_send", [fault])
    update = _amend(netting, order, ASKED)
    assert netting.terminal.faults.pending("order_send") == 0
    assert _held(netting) == PLACED  # nothing moved
    assert (update.status, update.code, update.price) == (OrderStatus.OPEN, code, None)
    assert update.reason.startswith("amend refused: ")
    assert update.reason.endswith(
        "; read back, the order still works at 1.099: the change was not applied"
    )
    assert _working_price(netting, order) == PLACED


@transports
@pytest.mark.parametrize("executed", [True, False], ids=["applied", "not-applied"])
def test_a_lost_answer_whose_read_back_fails_too_is_refused_as_unknown(
    netting: Mt5Harness, executed: bool
) -> None:
    order = _resting(netting)
    netting.terminal.faults.script("order_send", [UnknownOutcome(10012, executed=executed)])
    # The amend's first orders_get (the order's SL/TP, before the change) answers; the read
    # back after the lost answer fails (not a lost terminal: -1, a call that failed), and so
    # does the poll's after it (which reports the price held: test_mt5_pending_price_poll).
    failed = CallError(-1, "Terminal: Call failed")
    netting.terminal.faults.script("orders_get", [None, failed, failed])
    update = _amend(netting, order, ASKED)
    assert netting.terminal.faults.pending("orders_get") == 0  # the read back failed
    assert _held(netting) == (ASKED if executed else PLACED)
    assert (update.status, update.code, update.price) == (
        OrderStatus.OPEN,
        ReasonCode.UNKNOWN_OUTCOME,
        None,
    )
    assert update.reason == (
        "amend refused: request timeout (10012), outcome unknown: the order could not be read"
        " back; it works at 1.099 or 1.0982 at the terminal until a read tells (the next"
        " amend reads it first; the poll reports a fill or a cancel)"
    )
    # The broker keeps the price it last read, not the 1.0982 it sent and never read.
    assert _working_price(netting, order) == PLACED


@transports
def test_the_next_amend_starts_from_the_price_the_terminal_holds(netting: Mt5Harness) -> None:
    """After an unknown outcome that did apply, the next move compares against the price read
    before it is sent, not the one the broker last knew: its own lost answer is then judged
    right."""
    order = _resting(netting)
    netting.terminal.faults.script(
        "order_send", [UnknownOutcome(10012, executed=True), UnknownOutcome(10012, executed=False)]
    )
    failed = CallError(-1, "Terminal: Call failed")  # the read back, and the poll's after it
    netting.terminal.faults.script("orders_get", [None, failed, failed])
    assert _amend(netting, order, ASKED).code is ReasonCode.UNKNOWN_OUTCOME
    assert _held(netting) == ASKED
    netting.broker.amend(order.client_order_id, None, 1.0975)  # lost again, not applied
    update, *reported = updates(netting.settle())
    assert _held(netting) == ASKED
    assert update.code is ReasonCode.UNKNOWN_OUTCOME
    assert update.reason.endswith(
        "read back, the order still works at 1.0982: the change was not applied"
    )
    assert _working_price(netting, order) == ASKED
    # The poll after it reads the 1.0982 the bot was never told, and reports it.
    assert [u.price for u in reported] == [ASKED]


# -- the decision, pure --------------------------------------------------------------------------


class _Record(NamedTuple):
    price_open: Any


TICK = 0.00001


@pytest.mark.parametrize(
    ("read", "applied", "price"),
    [
        ([_Record(1.0982)], True, 1.0982),
        ([_Record(1.0982 + 0.4 * TICK)], True, 1.0982 + 0.4 * TICK),  # within half a tick
        ([_Record(1.0980)], True, 1.0980),  # moved, held elsewhere: what the terminal holds
        ([_Record(1.0990)], False, 1.0990),
        ([_Record(1.0990 - 0.4 * TICK)], False, 1.0990 - 0.4 * TICK),
        (None, None, None),  # the read failed
        ([], None, None),  # no longer resting: filled or cancelled meanwhile
        ([_Record(0.0)], None, None),
        ([_Record(float("nan"))], None, None),
    ],
)
def test_what_a_read_back_says_of_a_lost_answer(
    read: list[_Record] | None, applied: bool | None, price: float | None
) -> None:
    found = _pending_after_doubt(read, before=1.0990, sent=1.0982, tick=TICK)
    assert (found.applied, found.price) == (applied, price)


def test_a_read_back_of_an_order_no_longer_resting_leaves_it_to_the_poll() -> None:
    found = _pending_after_doubt([], before=1.0990, sent=1.0982, tick=TICK)
    assert found.said == (
        "the terminal no longer holds it resting (filled or cancelled meanwhile):"
        " the poll reports how it ended"
    )


# -- the engine books it: a stop-loss resting as a pending order, moved by MOVE_STOP ------------


def test_a_moved_pending_stop_whose_answer_was_lost_is_booked_where_the_terminal_holds_it() -> None:
    venue, engine = _stop_bot()  # a sell stop at 1.095 on a server snapping moves to 0.0005
    try:
        venue.terminal.faults.script("order_send", [UnknownOutcome(10012, executed=True)])
        engine.run([minute_bar(2, 1.1)])  # the plugin asks its move to 1.0982 after this bar
        for _ in range(3):
            settle_and_pump(engine, venue)
        assert venue.terminal.faults.pending("order_send") == 0
        assert _held(venue) == 1.0980
        [stop] = [o for o in engine.open_orders() if o.order_type is OrderType.STOP]
        assert stop.price == pytest.approx(1.0980)  # the old broker left the book at 1.095
        [(price,)] = _query(engine, "SELECT price FROM orders WHERE tag = 'stop_loss'")
        assert price == pytest.approx(1.0980)  # what the status shows and a restart re-arms
    finally:
        venue.close()


@transports
def test_a_move_whose_order_cannot_be_read_first_sends_nothing(netting: Mt5Harness) -> None:
    """TRADE_ACTION_MODIFY carries the order's SL and TP: sent without them read, it would set
    them to 0 and wipe a pending entry's own stop-loss. Refused for a passing reason (the
    order keeps working as it was), nothing sent."""
    order = netting.order(
        Side.BUY,
        symbol="EURUSD",
        order_type=OrderType.LIMIT,
        price=PLACED,
        stop_loss=1.0950,
        take_profit=1.1050,
    )
    [ack] = netting.submit(order)
    assert ack.status is OrderStatus.OPEN  # type: ignore[union-attr]
    sends = netting.terminal.calls["order_send"]
    netting.terminal.faults.script("orders_get", [CallError(-1, "Terminal: Call failed")])
    update = _amend(netting, order, ASKED)
    assert netting.terminal.calls["order_send"] == sends  # nothing sent
    assert (update.status, update.code) == (OrderStatus.OPEN, ReasonCode.VENUE_UNAVAILABLE)
    assert "nothing was sent" in update.reason
    [live] = netting.terminal.orders_get() or ()
    assert (float(live.price_open), float(live.sl), float(live.tp)) == (PLACED, 1.0950, 1.1050)
