"""The account snapshot (``RiskContext``) the risk chain decides an intent on.

Risk plugins must see a snapshot that never changes under them, and the portfolio changes its
positions in place, so positions are handed over as copies; so are the protective stops, which
take a pass over the working orders. Both copies are taken again only when a fill or a working
order changed them (``Portfolio.version``, ``OrderBook.version``): the intents between two such
changes — every intent of a bar without fills — share one copy, and only what moves with each
bar (equity, marks, the bar time) is read afresh. Plugins read the snapshot; none may change it.

The working entry orders (``RiskContext.entries``) are copied with the stops: an entry the chain
let through earlier in the same bar is in the book, so the next intent's rules count it. So is
what each open position still holds net of the exits working on its closing side
(``RiskContext.closable``, ``reducible``'s figure): after a ``ctx.close`` the entry that follows
it closes nothing, and a cap on what an order opens must know it.

Between bars a symbol's mark is its last close, up to a timeframe old, while a market entry
decided then (a signal's) fills at the market: the engine asks a ``quotes-prices`` broker
where the market stands and, when ``quoted_mark`` finds the price usable, the snapshot of that
order alone carries it as the symbol's mark (``RiskSnapshots.context``'s ``quote``); the
portfolio's marks and equity keep the close.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, cast

from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.engine.order_book import OrderBook
from tradefleet_runtime.engine.portfolio import Portfolio
from tradefleet_runtime.model import Fill, Instrument, Order, OrderType, Position, Side

Stops = dict[str, tuple[tuple[float, float], ...]]
_new = tuple.__new__  # a named tuple built positionally, without its generated __new__
_STOP = OrderType.STOP  # a module name: an enum member read through its class costs ~0.3 µs
_BUY, _SELL = Side.BUY, Side.SELL

#: How far (a fraction of the last close) a broker's current price may lie from the last
#: close for a market entry decided between bars to be sized on it. Beyond it the price is a
#: bad tick, another instrument, or a market that ran away from what the order was decided on
#: (a signal's entry is checked against the last close): no size is right then, on either
#: price, and the entry is refused. A tenth is more than most markets move in a bar and less
#: than a wrong instrument's or a bad tick's usual distance.
QUOTE_MAX_MOVE = 0.10
#: ``quoted_mark``'s refusals' codes (``RiskDecision.code``, a metrics label).
NO_CURRENT_PRICE = "no_current_price"
PRICE_OFF_CLOSE = "price_off_close"


def quoted_mark(
    symbol: str, side: Side, quote: object, close: float | None
) -> tuple[float | None, str, str]:
    """(mark, reason, code) a market entry of ``symbol`` on ``side`` decided between bars is
    sized and risk-checked on, from the broker's current price ``quote``
    (``PriceQuoter.market_price``) and the symbol's last close (None: no bar yet).

    The quote when usable, with code "". Else None, with the refusal's reason (naming the
    symbol and both prices) and code: ``NO_CURRENT_PRICE`` when there is no quote, or one
    that is no positive finite number (a broker's fault is no price); ``PRICE_OFF_CLOSE``
    when it lies more than ``QUOTE_MAX_MOVE`` from the close. Without a close there is
    nothing to hold the quote against, and it is taken (a close would have sized nothing).
    Pure."""
    to = "buy" if side is Side.BUY else "sell"
    price = _positive(quote)
    if close is None or not (math.isfinite(close) and close > 0.0):
        close = None
    if price is None:
        said = "" if quote is None else f"its answer, {quote!r}, is not a price; "
        last = (
            "no bar has closed yet"
            if close is None
            else f"the last close, {close:.10g}, is up to a bar old"
        )
        return (
            None,
            f"no current price to {to} {symbol} from the broker ({said}{last}): a market "
            "entry is not sized on a stale price; send it again, or as a limit order",
            NO_CURRENT_PRICE,
        )
    if close is None:
        return (
            price,
            f"sized at the current price to {to} {symbol}, {price:.10g} (no close yet)",
            "",
        )
    move = abs(price - close) / close
    if move > QUOTE_MAX_MOVE:
        return (
            None,
            f"the current price to {to} {symbol}, {price:.10g}, is {move:.1%} from its last "
            f"close {close:.10g}, more than {QUOTE_MAX_MOVE:.0%}: a bad price, or a market that "
            "ran away from what the order was decided on; a market entry is sized on "
            "neither (send it again once a bar closed there, or as a limit order)",
            PRICE_OFF_CLOSE,
        )
    return (
        price,
        f"sized at the current price to {to} {symbol}, {price:.10g} (last close {close:.10g}, "
        f"{move:.2%} away)",
        "",
    )


def _positive(value: object) -> float | None:
    """``value`` as a float when it is a positive finite number (a bool is none), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0.0 else None


def protective_stops(portfolio: Portfolio, book: OrderBook) -> Stops:
    """(quantity left, stop price) of every reduce-only stop on the closing side of an open
    position, by symbol, in the order the book holds them."""
    stops: Stops = {}
    held = portfolio.open_positions
    for working in book:
        order = working.order
        if order.reduce_only and order.order_type is _STOP and order.price:
            position = held.get(order.symbol)
            # Only a stop on the closing side protects (a long's sell stop, a short's buy
            # stop); one left from before a reversal would not reduce anything.
            if position is None or position.quantity * order.side.sign >= 0:
                continue
            left = order.quantity - working.filled
            stops[order.symbol] = (*stops.get(order.symbol, ()), (left, order.price))
    return stops


def working_entries(book: OrderBook) -> tuple[Order, ...]:
    """Every working order that is not reduce-only (an entry, or an order adding to or
    reversing a position), with the quantity it has still to fill, in the book's order."""
    entries: list[Order] = []
    for working in book:
        order = working.order
        if order.reduce_only:
            continue
        left = order.quantity - working.filled
        if left > 0.0:
            entries.append(order if not working.filled else order._replace(quantity=left))
    return tuple(entries)


def reducible(portfolio: Portfolio, book: OrderBook, symbol: str, side: Side) -> float:
    """How much of ``symbol``'s position an order on ``side`` may still close: the quantity
    held on the other side, less what the working reduce-only orders on ``side`` that are not
    a bracket's children will close (a bracket's stop and take-profit guard the position, one
    of them at most fills, and a position closed otherwise takes them with it; an exit already
    sent is what closes it). 0 when ``side`` would open or add."""
    position = portfolio.open_positions.get(symbol)
    if position is None:
        return 0.0
    held = -position.quantity * side.sign
    if held <= 0.0:
        return 0.0
    for working in book:
        order = working.order
        if (
            order.reduce_only
            and order.parent_id is None
            and order.symbol == symbol
            and order.side is side
        ):
            held -= order.quantity - working.filled
    return held if held > 0.0 else 0.0


def closable_quantities(portfolio: Portfolio, book: OrderBook) -> dict[str, float]:
    """``reducible`` on the closing side of every open position, by symbol: what an order
    there may still close (``RiskContext.closable``)."""
    return {
        symbol: reducible(portfolio, book, symbol, _BUY if position.quantity < 0 else _SELL)
        for symbol, position in portfolio.open_positions.items()
    }


class HeldPosition(Position):
    """A position as a risk plugin sees it: read-only. The context's mappings are read-only
    views too: a plugin writing what it was shown (a mark near zero, a position cleared)
    changed what the next plugin of the chain, and the next intent's, decided on — a notional
    cap or a position count switched off by another plugin."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a risk context's position is read-only (not {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a risk context's position is read-only (not {name!r})")

    def __eq__(self, other: object) -> bool:
        # Equal to the position it copies (a dataclass compares its own class only).
        if not isinstance(other, Position):
            return NotImplemented
        return (
            self.symbol == other.symbol
            and self.quantity == other.quantity
            and self.average_price == other.average_price
            and self.realized_pnl == other.realized_pnl
            and self.opened_ts == other.opened_ts
        )

    __hash__ = None  # type: ignore[assignment]  # as Position's: mutable there, so unhashable

    # A copy is the plugin's own: a plain, writable Position (``copy``, ``deepcopy``, pickle and
    # ``dataclasses.replace`` raised on the read-only one, failing a plugin that wrote nothing).
    def _plain(self, **changes: Any) -> Position:
        fields = {
            "symbol": self.symbol,
            "quantity": self.quantity,
            "average_price": self.average_price,
            "realized_pnl": self.realized_pnl,
            "opened_ts": self.opened_ts,
        }
        return Position(**{**fields, **changes})

    def __copy__(self) -> Position:
        return self._plain()

    def __deepcopy__(self, memo: dict[int, Any]) -> Position:
        return self._plain()

    def __reduce__(self) -> tuple[Any, ...]:
        plain = self._plain()
        return (
            Position,
            (
                plain.symbol,
                plain.quantity,
                plain.average_price,
                plain.realized_pnl,
                plain.opened_ts,
            ),
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # ``dataclasses.replace`` builds ``type(obj)(**fields)``: set through the slots.
        plain = Position(*args, **kwargs)
        for name in ("symbol", "quantity", "average_price", "realized_pnl", "opened_ts"):
            _set(self, name, getattr(plain, name))


_set = object.__setattr__


def held_position(position: Position) -> HeldPosition:
    """A read-only copy of ``position``."""
    held = object.__new__(HeldPosition)
    _set(held, "symbol", position.symbol)
    _set(held, "quantity", position.quantity)
    _set(held, "average_price", position.average_price)
    _set(held, "realized_pnl", position.realized_pnl)
    _set(held, "opened_ts", position.opened_ts)
    return held


def _read_only(mapping: dict[str, Any]) -> Any:
    # Typed as the dict the context's fields declare: a view reads as one.
    return cast(Any, MappingProxyType(mapping))


class RiskSnapshots:
    """Builds each intent's :class:`RiskContext`, copying positions and stops only when they
    changed since the last copy; what it shows plugins is read-only (:class:`HeldPosition`)."""

    __slots__ = (
        "_book",
        "_closable",
        "_entries",
        "_initial",
        "_instrument",
        "_portfolio",
        "_positions",
        "_positions_at",
        "_stops",
        "_stops_at",
    )

    def __init__(
        self,
        portfolio: Portfolio,
        book: OrderBook,
        instrument: Callable[[str], Instrument],
        initial_equity: float,
    ) -> None:
        self._portfolio = portfolio
        self._book = book
        self._instrument = instrument
        self._initial = initial_equity
        self._positions: dict[str, Position] = _read_only({})
        self._positions_at = -1
        self._stops: Stops = _read_only({})
        self._entries: tuple[Order, ...] = ()
        self._closable: dict[str, float] = _read_only({})
        self._stops_at = (-1, -1)

    def context(
        self,
        symbol: str,
        now: int,
        start_of_day_equity: float,
        peak_equity: float,
        quote: tuple[str, float] | None = None,
        fills_while_down: tuple[Fill, ...] = (),
    ) -> RiskContext:
        """The snapshot ``symbol``'s intent is decided on; ``quote`` (symbol, price): that
        symbol's mark in this snapshot alone (a market entry decided between bars);
        ``fills_while_down``: ``RiskContext.fills_while_down``."""
        portfolio = self._portfolio
        version = portfolio.version
        if version != self._positions_at:
            self._positions = _read_only(
                {s: held_position(p) for s, p in portfolio.open_positions.items()}
            )
            self._positions_at = version
        at = (version, self._book.version)
        if at != self._stops_at:
            self._stops = _read_only(protective_stops(portfolio, self._book))
            self._entries = working_entries(self._book)
            self._closable = _read_only(closable_quantities(portfolio, self._book))
            self._stops_at = at
        marks = dict(portfolio.marks)
        if quote is not None:
            marks[quote[0]] = quote[1]
        context: RiskContext = _new(
            RiskContext,
            (
                now,
                portfolio.equity(),
                portfolio.cash,
                start_of_day_equity,
                peak_equity,
                self._positions,
                _read_only(marks),
                self._instrument(symbol),
                self._stops,
                portfolio.leverage,
                self._initial,
                self._entries,
                self._closable,
                fills_while_down,
            ),
        )
        return context


__all__ = [
    "NO_CURRENT_PRICE",
    "PRICE_OFF_CLOSE",
    "QUOTE_MAX_MOVE",
    "RiskSnapshots",
    "closable_quantities",
    "protective_stops",
    "quoted_mark",
    "reducible",
    "working_entries",
]
