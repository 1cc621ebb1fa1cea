"""The poll judges a resting reduce-only exit on one consistent view of the account.

A netting account's reduce-only limit or stop rests as a plain pending order, and each poll
removes one the position no longer covers (``_cancel_reduce_only_beyond``). The poll read the
orders (``orders_get``) before the positions (``positions_get``): an exit that filled in part
between the two reads was judged at its volume from before the fill against a position that
already held less, and its rest — all of it covered — was removed, leaving the rest of the
position without the exit the strategy placed. The positions are read first: a fill of the
exit between the reads then leaves the order read smaller, never the position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.brokers.mt5.harness import Mt5Harness, fills, updates
from tests.venues.mt5 import MT5Terminal
from tests.venues.mt5 import constants as C
from tradefleet_runtime.sdk import OrderStatus, OrderType, Side

LOT = 10_000.0  # euros: 0.1 lot of EURUSD
EXIT = 1.1050


class _FillsBetweenReads:
    """The terminal; once armed, the poll's first read of the orders or the positions (the
    plain ``orders_get()``/``positions_get()``, whichever comes first) is answered, and then
    ``between`` runs — at the terminal, before the other read."""

    def __init__(self, terminal: MT5Terminal) -> None:
        self.terminal = terminal
        self.between: Callable[[], None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)

    def _after(self, read: Any) -> Any:
        between, self.between = self.between, None
        if between is not None:
            between()
        return read

    def orders_get(self, *args: Any, **kwargs: Any) -> Any:
        read = self.terminal.orders_get(*args, **kwargs)
        return self._after(read) if not args and not kwargs else read

    def positions_get(self, *args: Any, **kwargs: Any) -> Any:
        read = self.terminal.positions_get(*args, **kwargs)
        return self._after(read) if not args and not kwargs else read


def _fill_part(terminal: MT5Terminal, ticket: int, lots: float, price: float) -> None:
    """``lots`` of resting order ``ticket`` execute at ``price``; the rest keeps working as
    the same order (the emulator fills a triggered pending order whole, never in part)."""
    order = terminal._orders[ticket]
    symbol = terminal._symbols[order.symbol]
    terminal._fill(order, symbol, lots, price, C.DEAL_REASON_EXPERT, keep_rest=True)


def test_an_exit_filling_in_part_between_the_polls_reads_keeps_its_covered_rest() -> None:
    spy = _FillsBetweenReads(MT5Terminal(margin_mode="netting"))
    venue = Mt5Harness.build("netting", venue=spy)
    venue.symbols = ("EURUSD",)
    venue.connect()
    try:
        term = venue.terminal
        term.set_price("EURUSD", 1.1000, 1.1001)
        venue.submit(venue.order(Side.BUY, 2 * LOT))
        exit_order = venue.order(
            Side.SELL, 2 * LOT, order_type=OrderType.LIMIT, price=EXIT, reduce_only=True
        )
        (placed,) = updates(venue.submit(exit_order))
        assert placed.status is OrderStatus.OPEN
        (resting,) = term.orders_get() or ()
        ticket = int(resting.ticket)

        # 0.1 lot of the exit executes between the poll's two reads: 0.1 lot of the position
        # is left, and the exit's 0.1 lot rest covers it exactly.
        spy.between = lambda: _fill_part(term, ticket, 0.1, EXIT)
        events = venue.settle()
        assert spy.between is None  # the fill happened within the poll
        (position,) = term.positions_get() or ()
        assert position.volume == 0.1
        cancelled = [u for u in updates(events) if u.status is OrderStatus.CANCELLED]
        # Old code: "reduce-only: position … holds 10000 of EURUSD, less than this sell of
        # 20000", and the covered rest removed from the terminal.
        assert cancelled == [], cancelled
        assert [(int(o.ticket), o.volume_current) for o in term.orders_get() or ()] == [
            (ticket, 0.1)
        ]

        # The next poll sees the fill and a covered rest: the rest keeps working.
        events = venue.settle()
        assert [(f.client_order_id, f.quantity) for f in fills(events)] == [
            (exit_order.client_order_id, LOT)
        ]
        assert [u for u in updates(events) if u.status is OrderStatus.CANCELLED] == []
        assert len(term.orders_get() or ()) == 1

        # The market reaches the exit: its rest closes exactly what is left, nothing opens.
        term.set_price("EURUSD", 1.1060, 1.1061)
        events = venue.settle()
        assert [(f.client_order_id, f.quantity) for f in fills(events)] == [
            (exit_order.client_order_id, LOT)
        ]
        assert term.positions_get() == ()
        assert term.orders_get() == ()
    finally:
        venue.close()
