"""A limit through the market goes as a deal; where the symbol fills deals Immediate-or-Cancel
and the deal fills only in part, the rest of the limit rests at its limit, as a limit order's
unfilled rest does — under the order's own id family, journaled by the bot as one order.

What went wrong: the rest expired with the deal (``filled 10000 of 20000; the rest expired
(IOC)``), while the paper broker of the same manifest filled all of it and a real limit would
have kept working for the rest.

What the broker does with the rest, decided on a fresh tick:
* the market is no longer through the limit (the usual case: the deal took what was offered
  up to the limit): it rests as a pending limit at the limit price, comment ``<id>#1``;
* the market is still through it (a stale quote, more offered since): it goes as another deal
  bounded by the same limit (deviation), never beyond it — a pending limit through the market
  is refused by the terminal (10015), and the rest is still the limit's to take now. At most
  ``mt5_requests.MAX_LEGS`` requests carry one order; what is left then expires, said.
"""

from __future__ import annotations

from typing import Any

from tests.brokers.mt5.harness import Mt5Harness, fills, gold_pro_symbols, updates
from tests.venues.mt5 import MT5Terminal
from tests.venues.mt5 import constants as C
from tradefleet_runtime.sdk import Order, OrderStatus, OrderType, ReasonCode, Side

_IOC_ONLY = 2  # SYMBOL_FILLING_IOC


class _Spy:
    """The terminal, recording every ``order_send`` request; ``after_first`` (bid, ask) is
    published for EURUSD right after the first one is handled (the deal took what was
    offered up to the limit, and the market moved on)."""

    def __init__(self, terminal: MT5Terminal) -> None:
        self.terminal = terminal
        self.requests: list[dict[str, Any]] = []
        self.after_first: tuple[float, float] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)

    def order_send(self, request: dict[str, Any]) -> Any:
        self.requests.append(dict(request))
        result = self.terminal.order_send(request)
        if self.after_first is not None:
            bid, ask = self.after_first
            self.after_first = None
            self.terminal.set_price("EURUSD", bid, ask)
        return result


def _ioc_only(margin_mode: str = "netting", balance: float = 10_000.0) -> tuple[Mt5Harness, _Spy]:
    symbols = gold_pro_symbols()
    symbols["EURUSD"] = {**symbols["EURUSD"], "filling_mode": _IOC_ONLY}
    spy = _Spy(MT5Terminal(margin_mode=margin_mode, symbols=symbols, balance=balance))
    venue = Mt5Harness.build(margin_mode, venue=spy)
    venue.symbols = ("EURUSD",)
    venue.connect()
    venue.terminal.set_price("EURUSD", 1.1000, 1.1001)
    return venue, spy


def _limit(venue: Mt5Harness) -> Order:
    # 0.2 lot, a buy limit at 1.1005: 40 points above the ask 1.1001, through the market.
    return venue.order(Side.BUY, 20_000.0, order_type=OrderType.LIMIT, price=1.1005)


def test_the_rest_of_a_partly_filled_ioc_limit_deal_rests_at_its_limit() -> None:
    venue, spy = _ioc_only()
    try:
        spy.after_first = (1.1006, 1.1007)  # the ask is above the limit now
        venue.terminal.faults.script("order_send", [10010])  # half of it fills (IOC)
        order = _limit(venue)
        events = venue.submit(order)
        (fill,) = fills(events)
        assert (fill.client_order_id, fill.quantity, fill.price) == (
            order.client_order_id,
            10_000.0,
            1.1001,
        )
        assert [u.status for u in updates(events)] == [OrderStatus.OPEN]  # still working
        deal, rest = spy.requests
        assert (deal["action"], deal["type_filling"], deal["deviation"]) == (
            C.TRADE_ACTION_DEAL,
            C.ORDER_FILLING_IOC,
            40,
        )
        assert (rest["action"], rest["type"], rest["volume"], rest["price"]) == (
            C.TRADE_ACTION_PENDING,
            C.ORDER_TYPE_BUY_LIMIT,
            0.1,
            1.1005,
        )
        assert rest["comment"] == f"{order.client_order_id}#1"
        (working,) = venue.broker.open_orders()
        assert working.client_order_id == order.client_order_id

        # The market comes back to the limit: the rest fills, as the same order.
        venue.terminal.set_price("EURUSD", 1.1003, 1.1004)
        (second,) = fills(venue.settle())
        assert (second.client_order_id, second.quantity, second.price) == (
            order.client_order_id,
            10_000.0,
            1.1004,
        )
        assert venue.broker.open_orders() == []
        (position,) = venue.terminal.positions_get() or ()
        assert position.volume == 0.2  # all of it, once
    finally:
        venue.close()


def test_a_rest_still_through_the_market_goes_as_another_deal_within_the_limit() -> None:
    venue, spy = _ioc_only()
    try:
        venue.terminal.faults.script("order_send", [10010])  # the first deal fills half
        order = _limit(venue)
        events = venue.submit(order)
        assert [(f.quantity, f.price) for f in fills(events)] == [
            (10_000.0, 1.1001),
            (10_000.0, 1.1001),
        ]
        _first, second = spy.requests
        assert second["action"] == C.TRADE_ACTION_DEAL
        assert (second["volume"], second["deviation"]) == (0.1, 40)  # the rest, same bound
        assert second["comment"] == f"{order.client_order_id}#1"
        assert not [u for u in updates(events) if u.status is not OrderStatus.OPEN]
        (position,) = venue.terminal.positions_get() or ()
        assert position.volume == 0.2
    finally:
        venue.close()


def test_a_rest_that_keeps_filling_in_part_stops_at_the_leg_limit_and_says_so() -> None:
    venue, spy = _ioc_only(balance=1_000_000.0)
    try:
        venue.terminal.faults.script("order_send", [10010] * 20)  # every deal fills half
        # 10 lots: 5, 2.5, 1.25, 0.62, ... each deal half of what is left, 0.01 left after ten.
        order = venue.order(Side.BUY, 1_000_000.0, order_type=OrderType.LIMIT, price=1.1005)
        events = venue.submit(order)
        assert len(spy.requests) == 10  # MAX_LEGS requests at most carry one order
        assert len({r["comment"] for r in spy.requests}) == 10  # each its own comment
        filled = sum(f.quantity for f in fills(events))
        assert filled == 999_000.0
        *_, last = updates(events)
        assert (last.status, last.code) == (OrderStatus.CANCELLED, ReasonCode.EXPIRED)
        assert f"filled {filled:g} of " in last.reason, last.reason
        (position,) = venue.terminal.positions_get() or ()
        assert position.volume * 100_000 == filled  # never more than the bot books
    finally:
        venue.close()


def test_a_restarted_broker_reports_the_order_once_as_what_it_is() -> None:
    venue, spy = _ioc_only()
    try:
        spy.after_first = (1.1006, 1.1007)
        venue.terminal.faults.script("order_send", [10010])
        order = _limit(venue)
        venue.submit(order)
        venue.broker.close()
        again = Mt5Harness.build("netting", venue=spy)
        again.symbols = ("EURUSD",)
        again.connect()
        try:
            report = again.broker.query_order(order.client_order_id)
            assert report is not None
            # One order of 0.2 lot, half filled, still working: not 0.3 (the deal's 0.2 and
            # the rest's 0.1 added up).
            assert (report.quantity, report.filled_quantity, report.status) == (
                20_000.0,
                10_000.0,
                OrderStatus.OPEN,
            )
            assert [f.client_order_id for f in again.broker.fill_reports(0)] == [
                order.client_order_id
            ]
            (working,) = again.broker.open_orders()
            assert (working.client_order_id, working.price) == (order.client_order_id, 1.1005)
            refused = again.broker.submit(order)
            assert refused.code is ReasonCode.DUPLICATE_CLIENT_ID
        finally:
            again.close()
    finally:
        venue.close()
