"""An amend that moves a resting limit through the market does what a submit at that price
does: the resting order is cancelled and its rest trades as a deal bounded by the limit
(deviation), under the order's own id family (``<id>#k``), so it never fills twice — across a
lost answer, a lost terminal and a restart. A move inside ``trade_stops_level`` is refused
before anything is sent, naming the price and the level, as a submit is.

What went wrong: the terminal answered the move with 10015 (invalid price) and the amend was
refused (``amend refused: invalid price (10015)``), while a submit at that price traded and the
paper broker fills the moved limit at once; a move inside the stops level was refused with the
same bare 10015.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness, fills, gold_pro_symbols, updates
from tests.venues.mt5 import Disconnect, MT5Terminal, UnknownOutcome
from tests.venues.mt5 import constants as C
from tradefleet_plugins.brokers import mt5_requests as rq
from tradefleet_plugins.brokers.mt5_broker import _after_move_cancel
from tradefleet_runtime.sdk import OrderStatus, OrderType, ReasonCode, Side


class _Spy:
    """The terminal, recording every ``order_send`` request; ``on_remove`` runs just before a
    TRADE_ACTION_REMOVE is handled (the market moving while the cancel travels)."""

    def __init__(self, terminal: MT5Terminal) -> None:
        self.terminal = terminal
        self.requests: list[dict[str, Any]] = []
        self.on_remove: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)

    def order_send(self, request: dict[str, Any]) -> Any:
        self.requests.append(dict(request))
        if request.get("action") == C.TRADE_ACTION_REMOVE and self.on_remove is not None:
            run, self.on_remove = self.on_remove, None
            run()
        return self.terminal.order_send(request)

    def actions(self) -> list[int]:
        return [int(r["action"]) for r in self.requests]


def _rested(
    margin_mode: str = "netting", symbols: tuple[str, ...] = ("EURUSD",)
) -> tuple[Mt5Harness, _Spy]:
    spy = _Spy(MT5Terminal(margin_mode=margin_mode, symbols=gold_pro_symbols()))
    venue = Mt5Harness.build(margin_mode, venue=spy)
    venue.symbols = symbols
    venue.connect()
    return venue, spy


def _rest_buy_limit(venue: Mt5Harness, spy: _Spy, price: float = 1.0950) -> str:
    order = venue.order(Side.BUY, 10_000.0, order_type=OrderType.LIMIT, price=price)
    (ack,) = updates(venue.submit(order))
    assert ack.status is OrderStatus.OPEN
    venue.settle()
    spy.requests.clear()
    return order.client_order_id


@pytest.mark.parametrize("margin_mode", ["netting", "hedging"])
def test_a_limit_moved_through_the_market_is_cancelled_and_trades_as_a_deal(
    margin_mode: str,
) -> None:
    venue, spy = _rested(margin_mode)
    try:
        order_id = _rest_buy_limit(venue, spy)
        (resting,) = venue.terminal.orders_get() or ()
        # EURUSD 1.10000 / 1.10010: 1.1005 is 40 points above the ask.
        venue.broker.amend(order_id, None, 1.1005)
        events = venue.settle()
        answer, *_ = updates(events)
        assert (answer.status, answer.code, answer.reason, answer.price) == (
            OrderStatus.OPEN,
            ReasonCode.NONE,
            "amended",
            1.1005,
        )
        (fill,) = fills(events)
        assert (fill.client_order_id, fill.quantity, fill.price) == (order_id, 10_000.0, 1.1001)
        remove, deal = spy.requests
        assert (remove["action"], remove["order"]) == (C.TRADE_ACTION_REMOVE, resting.ticket)
        assert (deal["action"], deal["type"], deal["volume"], deal["deviation"]) == (
            C.TRADE_ACTION_DEAL,
            C.ORDER_TYPE_BUY,
            0.1,
            40,
        )
        assert deal["comment"] == f"{order_id}#1"  # the order's id family, a new leg
        assert venue.terminal.orders_get() == ()
        assert venue.broker.open_orders() == []
        (position,) = venue.terminal.positions_get() or ()
        assert position.volume == 0.1
        assert venue.settle() == []  # nothing more: the cancel is not reported as an end
    finally:
        venue.close()


def test_instant_execution_never_fills_the_moved_limit_beyond_it() -> None:
    # GBPUSD: instant execution, stops level 10, 1.25000 / 1.25012. The limit is moved to
    # 1.25020 (8 points above the ask); the ask jumps to 1.25042 while the deal travels: the
    # server requotes (deviation 8), and on the fresh tick the limit is no longer through: it
    # rests at 1.25020, under the id family, nothing filled.
    venue, spy = _rested(symbols=("GBPUSD",))
    try:
        order = venue.order(symbol="GBPUSD", order_type=OrderType.LIMIT, price=1.2490)
        venue.submit(order)
        venue.settle()
        spy.requests.clear()
        real_send = spy.terminal.order_send

        def jump(request: dict[str, Any]) -> Any:
            if request.get("action") == C.TRADE_ACTION_DEAL:
                spy.terminal.set_price("GBPUSD", 1.25030, 1.25042)
            return real_send(request)

        spy.terminal.order_send = jump  # type: ignore[method-assign]
        venue.broker.amend(order.client_order_id, None, 1.25020)
        events = venue.settle()
        assert fills(events) == []
        _remove, deal, pending = spy.requests
        assert (deal["action"], deal["deviation"]) == (C.TRADE_ACTION_DEAL, 8)
        assert (pending["action"], pending["price"], pending["comment"]) == (
            C.TRADE_ACTION_PENDING,
            1.2502,
            f"{order.client_order_id}#1",  # the leg the requoted deal was: it never executed
        )
        (resting,) = venue.terminal.orders_get() or ()
        assert resting.price_open == 1.2502
        (working,) = venue.broker.open_orders()
        assert working.price == 1.2502
    finally:
        venue.close()


def test_an_order_that_filled_before_the_cancel_is_not_sent_again() -> None:
    venue, spy = _rested()
    try:
        order_id = _rest_buy_limit(venue, spy)
        # The market drops through the resting limit while the cancel travels: it fills at
        # 1.0949 and the cancel finds no order.
        spy.on_remove = lambda: venue.terminal.set_price("EURUSD", 1.0948, 1.0949)
        venue.broker.amend(order_id, None, 1.1005)
        events = venue.settle()
        assert C.TRADE_ACTION_DEAL not in spy.actions()  # nothing sent after the cancel
        (fill,) = fills(events)
        assert (fill.client_order_id, fill.price) == (order_id, 1.0949)
        (answer,) = [u for u in updates(events) if u.code is not ReasonCode.NONE]
        assert answer.status is OrderStatus.OPEN and "filled" in answer.reason, answer.reason
        assert len(venue.deals(order_id)) == 1
        (position,) = venue.terminal.positions_get() or ()
        assert position.volume == 0.1
    finally:
        venue.close()


@pytest.mark.parametrize(
    "fault",
    [UnknownOutcome(10012, executed=True), Disconnect(kind="ipc", executed=True)],
    ids=["cancel-answer-lost", "terminal-lost-after-cancel"],
)
def test_a_lost_cancel_answer_is_settled_and_the_rest_sent_once(fault: Any) -> None:
    venue, spy = _rested()
    try:
        order_id = _rest_buy_limit(venue, spy)
        venue.terminal.faults.script("order_send", [fault])  # the cancel lands, unanswered
        venue.broker.amend(order_id, None, 1.1005)
        events = venue.settle()
        events += venue.settle()
        (fill,) = fills(events)
        assert (fill.client_order_id, fill.quantity) == (order_id, 10_000.0)
        assert [d.comment for d in venue.deals()] == [f"{order_id}#1"]  # one deal, once
        assert spy.actions().count(C.TRADE_ACTION_REMOVE) == 1
        assert not [u for u in updates(events) if u.status is not OrderStatus.OPEN]
        (position,) = venue.terminal.positions_get() or ()
        assert position.volume == 0.1
    finally:
        venue.close()


def test_a_moved_limit_whose_deal_is_refused_ends_cancelled_not_working() -> None:
    venue, spy = _rested()
    try:
        order_id = _rest_buy_limit(venue, spy)
        venue.terminal.faults.script("order_send", [None, 10019])  # the deal: no money
        venue.broker.amend(order_id, None, 1.1005)
        (end,) = updates(venue.settle())
        assert (end.status, end.code) == (OrderStatus.CANCELLED, ReasonCode.INSUFFICIENT_FUNDS)
        assert "not enough money" in end.reason
        assert venue.broker.open_orders() == []
        assert venue.terminal.orders_get() == ()
    finally:
        venue.close()


def test_a_restart_after_the_move_knows_the_family() -> None:
    venue, spy = _rested()
    try:
        order_id = _rest_buy_limit(venue, spy)
        venue.broker.amend(order_id, None, 1.1005)
        venue.settle()
        venue.broker.close()
        again = Mt5Harness.build("netting", venue=spy)
        again.symbols = ("EURUSD",)
        again.connect()
        try:
            report = again.broker.query_order(order_id)
            assert report is not None
            assert (report.quantity, report.filled_quantity, report.status) == (
                10_000.0,
                10_000.0,
                OrderStatus.FILLED,
            )
            assert [(f.client_order_id, f.quantity) for f in again.broker.fill_reports(0)] == [
                (order_id, 10_000.0)
            ]
        finally:
            again.close()
    finally:
        venue.close()


# -- inside trade_stops_level: refused before it is sent -------------------------------------


@pytest.mark.usefixtures("transport")
def test_a_move_inside_the_stops_level_is_refused_naming_the_price_and_level() -> None:
    venue, spy = _rested(symbols=("XAUUSD",))
    try:
        # GOLD.pro 2650.00 / 2650.30, trade_stops_level 50 points.
        order = venue.order(symbol="XAUUSD", quantity=5.0, order_type=OrderType.LIMIT, price=2640.0)
        venue.submit(order)
        venue.settle()
        spy.requests.clear()
        venue.broker.amend(order.client_order_id, None, 2650.10)
        (answer,) = updates(venue.settle())
        assert (answer.status, answer.code) == (OrderStatus.OPEN, ReasonCode.INVALID_PRICE)
        assert answer.reason == (
            "amend refused: a buy limit on XAUUSD must be at least 50 points (0.50) below the "
            "ask 2650.30 (GOLD.pro's trade_stops_level 50): 2649.80 at most, not 2650.10"
        )
        assert spy.requests == []  # decided before sending
        (resting,) = venue.terminal.orders_get() or ()
        assert resting.price_open == 2640.0
    finally:
        venue.close()


def test_a_moves_stop_loss_inside_the_level_is_refused_before_sending() -> None:
    venue, spy = _rested(symbols=("XAUUSD",))
    try:
        order = venue.order(
            symbol="XAUUSD",
            quantity=5.0,
            order_type=OrderType.LIMIT,
            price=2640.0,
            stop_loss=2630.0,
        )
        venue.submit(order)
        venue.settle()
        spy.requests.clear()
        # 2630.20 is 20 points above the stop-loss 2630.00: measured from the order's price.
        venue.broker.amend(order.client_order_id, None, 2630.20)
        (answer,) = updates(venue.settle())
        assert (answer.status, answer.code) == (OrderStatus.OPEN, ReasonCode.INVALID_PRICE)
        assert "stop_loss 2630 is 20 points from 2630.2" in answer.reason, answer.reason
        assert "trade_stops_level 50" in answer.reason
        assert spy.requests == []
    finally:
        venue.close()


# -- the pure decisions ----------------------------------------------------------------------

_DONE, _TIMEOUT, _INVALID_ORDER = 10009, 10012, 10013
_PLACED, _CANCELED, _PARTIAL, _FILLED, _EXPIRED = 1, 2, 3, 4, 6


@pytest.mark.parametrize(
    ("answer", "live", "state", "left", "outcome"),
    [
        (_DONE, False, _CANCELED, 0.1, "cancelled"),
        (_DONE, False, None, 0.0, "unknown"),  # done, but what is left unread: nothing sent
        (_DONE, False, _CANCELED, 0.0, "filled"),  # nothing left of it
        (_TIMEOUT, False, _CANCELED, 0.1, "cancelled"),  # the lost answer was ours
        (None, False, _PARTIAL, 0.05, "cancelled"),  # sent before a lost terminal
        (_TIMEOUT, True, _PLACED, 0.1, "resting"),  # the cancel did not land
        (_TIMEOUT, None, None, 0.1, "unknown"),
        (_INVALID_ORDER, False, _FILLED, 0.0, "filled"),
        (_INVALID_ORDER, False, _CANCELED, 0.1, "ended"),  # another hand cancelled it
        (_INVALID_ORDER, False, _EXPIRED, 0.1, "ended"),
    ],
)
def test_what_a_moves_cancel_left(
    answer: int | None, live: bool | None, state: int | None, left: float, outcome: str
) -> None:
    assert _after_move_cancel(answer, live, state, left) == outcome


def test_a_new_request_of_an_order_takes_the_leg_after_every_one_sent() -> None:
    order_id = "tf1234ab0001x"
    assert rq.next_leg(order_id, {order_id}) == 1
    assert rq.next_leg(order_id, {order_id, f"{order_id}#1", f"{order_id}#2"}) == 3
    assert rq.next_leg(order_id, {f"{order_id}#3"}) == 4  # after the last, never into a gap
    long_id = "x" * 29  # 29 characters: "#9" still fits the comment as it is
    assert rq.comment_for(long_id, rq.MAX_LEGS - 1) == f"{long_id}#9"
