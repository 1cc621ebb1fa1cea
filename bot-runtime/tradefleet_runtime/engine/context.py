"""What a strategy sees and does: the engine's implementation of ``StrategyContext``.

Reads come from the portfolio and the order book; every order a strategy asks for is queued as
an intent, and the engine passes the queue through the risk chain when the strategy returns.

Side and order type are taken as their enum members or those members' string values
(``"limit"`` is ``OrderType.LIMIT``, as a ``StrEnum`` compares equal to it) and queued as the
members: the engine tells them apart by identity, so a plain string would misroute the order
(or crash later, far from the call). Anything else is an error here, naming the argument.
Numbers are the engine's to check (``risk_driver.intent_problem``): every intent passes there,
and a bad one is refused and journaled rather than raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from tradefleet_runtime.engine.order_book import OrderBook
from tradefleet_runtime.engine.portfolio import Portfolio
from tradefleet_runtime.model import Instrument, Order, OrderIntent, OrderType, Position, Side

log = logging.getLogger("tradefleet.engine")

_E = TypeVar("_E", bound=StrEnum)


def _member(kind: type[_E], value: object, argument: str) -> _E:
    """``value`` as a member of ``kind``: a member, or a member's string value; else a
    ValueError (an unknown string) or TypeError (not a string), naming ``argument``."""
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
        choices = ", ".join(repr(member.value) for member in kind)
        raise ValueError(f"{argument}: {value!r} is not one of {choices}")
    raise TypeError(f"{argument}: expected a {kind.__name__}, not {type(value).__name__}")


def _with_members(intent: OrderIntent) -> OrderIntent:
    """``intent`` with its side and order type as the enum members (module docstring)."""
    side, order_type = intent.side, intent.order_type
    if side.__class__ is not Side:
        side = _member(Side, side, "side")
    if order_type.__class__ is not OrderType:
        order_type = _member(OrderType, order_type, "order_type")
    return intent._replace(side=side, order_type=order_type)


class BotContext:
    """One bot's :class:`~tradefleet_runtime.contracts.StrategyContext`."""

    def __init__(
        self,
        bot_name: str,
        symbols: tuple[str, ...],
        base_timeframe_s: int,
        portfolio: Portfolio,
        book: OrderBook,
        instrument: Callable[[str], Instrument],
        cancel: Callable[[str], None],
        record_event: Callable[[str, str, dict[str, Any] | None], None],
        clock: Callable[[], int] = lambda: 0,
        close: Callable[[str, str], None] | None = None,
    ) -> None:
        self.bot_name = bot_name
        self.intents: list[OrderIntent] = []
        # Read from the engine when asked: setting it on every bar would cost the hot loop.
        self._clock = clock
        self._symbols = symbols
        self._base_timeframe_s = base_timeframe_s
        self._portfolio = portfolio
        self._book = book
        self._instrument = instrument
        self._cancel = cancel
        self._record_event = record_event
        # The engine's close of a position (it cancels the symbol's orders and waits for the
        # venue to confirm those that would reduce it before the close goes); None: the close
        # is queued at once, as in a replay.
        self._close = close
        # True while the engine shows the strategy a history bar (``Engine.catch_up``; not
        # while a live feed waits there for its first new bar, serving signals):
        # its cancels are dropped like its orders. The working orders are today's (re-armed
        # from the journal and the venue at a restart): a replayed bar's ``close`` must not
        # cancel an open position's stop-loss and take-profit.
        self.replaying = False

    @property
    def now(self) -> int:
        """Close time of the bar being handled (UTC epoch seconds)."""
        return self._clock()

    @property
    def symbols(self) -> Sequence[str]:
        return self._symbols

    @property
    def base_timeframe_s(self) -> int:
        return self._base_timeframe_s

    @property
    def equity(self) -> float:
        return self._portfolio.equity()

    @property
    def cash(self) -> float:
        return self._portfolio.cash

    def position(self, symbol: str) -> Position:
        return self._portfolio.position(symbol)

    def instrument(self, symbol: str) -> Instrument:
        return self._instrument(symbol)

    def submit(self, intent: OrderIntent) -> None:
        if intent.side.__class__ is not Side or intent.order_type.__class__ is not OrderType:
            intent = _with_members(intent)
        self.intents.append(intent)

    def buy(
        self,
        symbol: str,
        quantity: float | None = None,
        *,
        order_type: OrderType = OrderType.MARKET,
        price: float | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        tag: str = "",
    ) -> None:
        if order_type.__class__ is not OrderType:
            order_type = _member(OrderType, order_type, "order_type")
        self.intents.append(
            OrderIntent(
                symbol, Side.BUY, quantity, order_type, price, stop_loss, take_profit, False, tag
            )
        )

    def sell(
        self,
        symbol: str,
        quantity: float | None = None,
        *,
        order_type: OrderType = OrderType.MARKET,
        price: float | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        tag: str = "",
    ) -> None:
        if order_type.__class__ is not OrderType:
            order_type = _member(OrderType, order_type, "order_type")
        self.intents.append(
            OrderIntent(
                symbol, Side.SELL, quantity, order_type, price, stop_loss, take_profit, False, tag
            )
        )

    def close(self, symbol: str, tag: str = "") -> None:
        if not self.replaying and self._close is not None:
            self._close(symbol, tag or "close")
            return
        if not self.replaying:
            for working in self._book:
                if working.order.symbol == symbol:
                    self._cancel(working.order.client_order_id)
        quantity = self._portfolio.position(symbol).quantity
        if quantity:
            side = Side.SELL if quantity > 0 else Side.BUY
            self.intents.append(
                OrderIntent(symbol, side, abs(quantity), reduce_only=True, tag=tag or "close")
            )

    def cancel(self, client_order_id: str) -> None:
        if not self.replaying:
            self._cancel(client_order_id)

    def open_orders(self, symbol: str | None = None) -> Sequence[Order]:
        return self._book.orders(symbol)

    def log(self, message: str, **fields: Any) -> None:
        log.info("%s: %s %s", self.bot_name, message, fields or "")
        self._record_event("strategy", message, fields or None)
