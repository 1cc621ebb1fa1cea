"""Paper venues whose closing orders (those tagged ``close_tag``) are in a test's hands, for the
flatten tests (emergency, risk plugin, stop policy): refused, held unanswered until released,
let past flat, or refused for want of funds on a spot account. A subclass sets the tag."""

from __future__ import annotations

import json
from typing import ClassVar

from tests.runtime.helpers import bar
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.model import Bar, Order, OrderStatus, OrderType, OrderUpdate, ReasonCode

SYMBOL = "TEST"


def buy_with_bracket(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0, stop_loss=90.0, take_profit=110.0)


def rest_a_limit_buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=80.0)


def through_the_stop(i: int) -> Bar:
    """The i-th bar, opening at 100 and trading down through the stop-loss at 90."""
    return bar(i, 100.0, 100.0, 85.0, 88.0)


class HeldCloses(PaperBroker):
    """The paper venue, with the closing orders in the test's hands: ``refuse`` refuses them
    (with that code), ``hold`` keeps them unanswered (PENDING) until ``release`` hands them to
    the venue. ``ignore_reduce_only`` lets a close go past flat, as a venue that checks
    reduce-only when the order is sent, not as it fills."""

    close_tag: ClassVar[str] = ""

    def __init__(self, refuse: ReasonCode | None = None) -> None:
        super().__init__(PaperBrokerParams())
        self.refuse = refuse
        self.hold = False
        self.ignore_reduce_only = False
        self.held: list[Order] = []
        self.closes_sent: list[str] = []

    def submit(self, order: Order) -> OrderUpdate:
        if order.tag != self.close_tag:
            return super().submit(order)
        self.closes_sent.append(order.client_order_id)
        if self.refuse is not None:
            return OrderUpdate(
                order.client_order_id,
                OrderStatus.REJECTED,
                order.created_ts,
                "the venue is in maintenance",
                code=self.refuse,
            )
        if self.hold:
            self.held.append(order)
            return OrderUpdate(order.client_order_id, OrderStatus.PENDING, order.created_ts)
        return super().submit(self._honest(order))

    def _honest(self, order: Order) -> Order:
        return order._replace(reduce_only=False) if self.ignore_reduce_only else order

    def release(self) -> None:
        """The venue takes the held closes now; its answers come as events (``pump``)."""
        held, self.held, self.hold = self.held, [], False
        for order in held:
            self._queued.append(super().submit(self._honest(order)))


class AnsweredCancels(PaperBroker):
    """The paper venue whose cancels take effect when the test answers them
    (``answer_cancels``), as a real venue's do; until then the order works and may fill."""

    asked: list[str]

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        self.asked.append(client_order_id)
        return None

    def answer_cancels(self) -> None:
        asked, self.asked = self.asked, []
        for order_id in asked:
            update = PaperBroker.cancel(self, order_id)
            if update is not None:
                self._queued.append(update)


class SlowCancels(AnsweredCancels):
    """The plain paper venue, its cancels answered when the test says."""

    def __init__(self) -> None:
        super().__init__(PaperBrokerParams())
        self.asked = []


class SpotSlowCancels(SlowCancels):
    """The slow-cancel paper venue as a spot market (``SpotCloses``): no reduce-only caps a
    close there, so a close waits for the position's stop-loss and take-profit too."""

    def closes_from_balance(self, symbol: str) -> bool:
        return True


class SpotVenue(AnsweredCancels, HeldCloses):
    """A spot account: a resting sell holds the coin it sells, so a market sell of what the
    resting sells hold is refused for want of funds; cancels take effect when the venue
    answers them (``answer_cancels``), as a real venue's do."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = []

    def submit(self, order: Order) -> OrderUpdate:
        if order.tag == self.close_tag:
            self.closes_sent.append(order.client_order_id)
            held = self.positions()[order.symbol].quantity
            resting = sum(o.quantity for o in self.open_orders() if o.side is order.side)
            if order.quantity > held - resting + 1e-12:
                return OrderUpdate(
                    order.client_order_id,
                    OrderStatus.REJECTED,
                    order.created_ts,
                    "Account has insufficient balance for requested action.",
                    code=ReasonCode.INSUFFICIENT_FUNDS,
                )
            return PaperBroker.submit(self, order)
        return super().submit(order)


def bracket_entry(engine: Engine) -> str:
    """The entry whose bracket children work."""
    [entry] = {o.parent_id for o in engine.open_orders() if o.parent_id is not None}
    assert entry is not None
    return entry


def resting_limit(engine: Engine) -> str:
    """The one working order that is not reduce-only (a resting entry)."""
    [limit] = [o.client_order_id for o in engine.open_orders() if not o.reduce_only]
    return limit


def working_at(broker: PaperBroker) -> list[str]:
    """What works at the venue."""
    return [o.client_order_id for o in broker.open_orders()]


def journaled_events(engine: Engine, kind: str) -> list[tuple[str, dict[str, object]]]:
    """(message, data) of the engine's journaled events of ``kind``, oldest first."""
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT message, data FROM events WHERE kind = ? ORDER BY id", kind
    )
    return [(str(message), json.loads(data) if data else {}) for message, data in rows]


def last_status(engine: Engine, order_id: str) -> str:
    """The order's latest journaled status."""
    [(status,)] = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT status FROM order_updates WHERE client_order_id = ? ORDER BY id DESC LIMIT 1",
        order_id,
    )
    return str(status)


def owed_closes(engine: Engine) -> dict[str, tuple[str, str | None]]:
    """The closes the journal says risk plugins' and the stop policy's flattens still owe:
    symbol -> (their tag, the code of a refusal no retry changes, or None)."""
    return engine.journal.closes_owed(engine.config.bot_name)  # type: ignore[attr-defined,no-any-return]


def assert_closed_by(
    engine: Engine, venue: PaperBroker, symbol: str, entry: str, close: str, reason: str
) -> None:
    """A held close of a bracketed long, once filled: flat, nothing works at the venue or in
    the book, the close filled and only then the bracket's stop-loss and take-profit
    cancelled, and the one trade ended for ``reason`` (the close's tag)."""
    assert engine.position(symbol).quantity == 0.0
    assert not working_at(venue) and not engine.open_orders()
    assert last_status(engine, close) == "filled"
    assert (last_status(engine, f"{entry}-sl"), last_status(engine, f"{entry}-tp")) == (
        "cancelled",
        "cancelled",
    )
    [trade] = engine.portfolio.trades
    assert trade.exit_reason == reason
