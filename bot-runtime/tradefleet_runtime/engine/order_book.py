"""The bot's working orders as the engine knows them, and the brackets of filled entries."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from tradefleet_runtime.brackets import bracket_children
from tradefleet_runtime.instruments import round_quantity
from tradefleet_runtime.model import Fill, Order, OrderStatus, Side

_QTY_EPSILON = 1e-12


class ChildLeft(NamedTuple):
    """A working bracket child as the cap on a position's exits sees it: what it has still to
    close, on which side, in which role (its tag: stop-loss or take-profit)."""

    client_order_id: str
    side: Side
    tag: str
    left: float


def children_over_position(
    position: float, children: Sequence[ChildLeft], lot_step: float = 0.0
) -> list[tuple[str, float]]:
    """The children that would close more than ``position`` (signed: > 0 long) holds, each with
    what it may still close now (0: nothing, it is to be cancelled), oldest first.

    Each role on each side is capped apart: the stop-losses on a long's closing side together
    close no more than the long holds, and so do its take-profits (one of a bracket fills, so
    a stop and a target are not added up). A child on the adding side of the position (left
    from before a reversal) may close nothing. ``children`` come in the order they were placed;
    the oldest are cut first (a netting account's one SL closes whatever is left, so any order
    would do there): the cut then matches the venue's own children and its reports after a
    restart (``mt5_reports.bracket_shares`` makes the same cut). What is left is rounded down
    to ``lot_step``. Where each entry's children follow a venue position of their own (an MT5
    hedging account's tickets: ``capabilities.TicketBrackets``) ``children_cut_by`` cuts
    instead.
    """
    groups: dict[tuple[Side, str], list[ChildLeft]] = {}
    for child in children:
        groups.setdefault((child.side, child.tag), []).append(child)
    cuts: list[tuple[str, float]] = []
    for (side, _tag), group in groups.items():
        room = max(-position * side.sign, 0.0)
        excess = sum(child.left for child in group) - room
        if excess <= _QTY_EPSILON * max(room, 1.0):
            continue
        for child in group:
            take = min(child.left, excess)
            if take <= 0.0:
                continue
            excess -= take
            left = child.left - take
            cuts.append(
                (child.client_order_id, round_quantity(left, lot_step) if left > 0.0 else 0.0)
            )
            if excess <= _QTY_EPSILON * max(room, 1.0):
                break
    return cuts


def children_cut_by(
    fill_side: Side, quantity: float, children: Sequence[ChildLeft], lot_step: float = 0.0
) -> list[tuple[str, float]]:
    """The children of an entry whose own venue position a fill of ``quantity`` on
    ``fill_side`` reduced (an MT5 hedging ticket closed in part or whole), each with what it
    may still close now (0: nothing, it is to be cancelled): each child on the fill's side
    closes ``quantity`` less, as the position it follows holds that much less. What is left is
    rounded down to ``lot_step``."""
    cuts: list[tuple[str, float]] = []
    for child in children:
        if child.side is not fill_side or child.left <= 0.0:
            continue
        left = child.left - quantity
        cuts.append((child.client_order_id, round_quantity(left, lot_step) if left > 0.0 else 0.0))
    return cuts


def carried_cuts(working: Sequence[tuple[Order, float]]) -> dict[str, float]:
    """What was cut off each bracket child an earlier run left working, by its id, from the
    journal's working orders (``working``: each order as journaled, and what of it filled).
    A child is what its entry filled less every cut (``OrderBook.protect``, ``shrink``), and
    the journal keeps both — the entry's fills, and the child's quantity as each cut resized
    it ("resized from X to Y: fill …") — so the cut is the difference. Only children whose
    entry still worked, since nothing else grows a child; none for a child journaled at or
    above its entry's fills (grown, but the fill not journaled before the process died)."""
    filled = {order.client_order_id: done for order, done in working}
    cuts: dict[str, float] = {}
    for child, _done in working:
        entry_filled = filled.get(child.parent_id) if child.parent_id is not None else None
        if entry_filled is None or not child.reduce_only:
            continue
        cut = entry_filled - child.quantity
        if cut > _QTY_EPSILON * max(entry_filled, 1.0):
            cuts[child.client_order_id] = cut
    return cuts


@dataclass
class WorkingOrder:
    order: Order
    filled: float = 0.0
    # What of ``filled`` opened none of the order's own position: it closed other entries'
    # (an MT5 hedging reversal's deal closing the long's ticket). Its bracket does not cover
    # that part: the position its children follow never held it.
    closed_others: float = 0.0


class Resized(NamedTuple):
    """A working bracket child whose quantity grew with its entry's fills."""

    order: Order  # as it works now
    previous: float  # the quantity it had


# (children added to the book, children whose quantity grew)
BookedChildren = tuple[tuple[Order, ...], tuple[Resized, ...]]


class BookedFill(NamedTuple):
    """What a fill did to the book: its order's status, the order (None: not in the book),
    and the bracket children it placed or resized."""

    status: OrderStatus
    order: Order | None
    placed: tuple[Order, ...]
    resized: tuple[Resized, ...]


class OrderBook:
    """Orders sent and not yet final, by client order id (insertion order kept)."""

    def __init__(self) -> None:
        self._working: dict[str, WorkingOrder] = {}
        # Bracket children that left the book while their entry still worked: a later fill of
        # the entry does not make them again (their ids were sent once). Only then: a child
        # of an entry done is never made again anyway, so a backtest's brackets add nothing.
        self._ended: set[str] = set()
        # Bracket entries one of whose children filled while they still worked: their trade
        # is over.
        self._spent: set[str] = set()
        # What was taken off each bracket child because its position got smaller
        # (``shrink``): a later fill of its entry grows it from there, not back to all that
        # the entry filled.
        self._shrunk: dict[str, float] = {}
        # Bumped by every change (an order added, removed or filled): what a copy of the
        # protective stops was taken at (risk_snapshot.py).
        self.version = 0

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._working

    def __len__(self) -> int:
        return len(self._working)

    def __iter__(self) -> Iterator[WorkingOrder]:
        return iter(list(self._working.values()))

    def get(self, client_order_id: str) -> WorkingOrder | None:
        return self._working.get(client_order_id)

    def add(self, order: Order, filled: float = 0.0) -> None:
        self.version += 1
        self._working[order.client_order_id] = WorkingOrder(order, filled)

    def remove(self, client_order_id: str) -> WorkingOrder | None:
        self.version += 1
        working = self._working.pop(client_order_id, None)
        if working is not None and working.order.parent_id in self._working:
            self._ended.add(client_order_id)
        return working

    def reprice(self, client_order_id: str, price: float) -> Order | None:
        """A working order's price changed at the venue (a stop-loss moved): the order as it
        works now, or None when it is not in the book."""
        working = self._working.get(client_order_id)
        if working is None:
            return None
        self.version += 1  # the protective stops risk plugins read changed
        working.order = working.order._replace(price=price)
        return working.order

    def shrink(self, client_order_id: str, left: float) -> Resized | None:
        """A working bracket child may close only ``left`` more (``children_over_position``):
        its quantity is now what it filled plus ``left``. None when it is not in the book."""
        working = self._working.get(client_order_id)
        if working is None:
            return None
        self.version += 1  # the protective stops risk plugins read changed
        previous = working.order.quantity
        quantity = working.filled + left
        working.order = working.order._replace(quantity=quantity)
        self._shrunk[client_order_id] = self._shrunk.get(client_order_id, 0.0) + previous - quantity
        return Resized(working.order, previous)

    def restore_cut(self, client_order_id: str, cut: float) -> None:
        """An earlier run cut ``cut`` off bracket child ``client_order_id`` (``carried_cuts``):
        its entry's later fills grow it from there, as if the bot had never stopped."""
        self._shrunk[client_order_id] = cut

    def cut_of(self, client_order_id: str) -> float:
        """All that was cut off bracket child ``client_order_id`` (``shrink``, ``restore_cut``)."""
        return self._shrunk.get(client_order_id, 0.0)

    def child_ended(self, client_order_id: str) -> None:
        """Bracket child ``client_order_id`` ended before a restart while its entry worked:
        it is not made again (its id was sent once), as ``remove`` keeps it running."""
        self._ended.add(client_order_id)

    def spend(self, entry_id: str) -> None:
        """A child of working entry ``entry_id`` was cut to nothing (its part of the position
        was reduced away) and ended: the bracket can no longer protect what the entry fills
        (a child's id is sent once), as when a child filled. Nothing is made or grown for it
        again; a fill of it that comes before its cancel lands is closed by the engine."""
        self.version += 1
        self._spent.add(entry_id)

    def children_left(self, symbol: str, skip: Callable[[Order], bool]) -> list[ChildLeft]:
        """The working bracket children of ``symbol`` but those ``skip`` names, in the order
        they were placed, as ``children_over_position`` takes them."""
        return [
            ChildLeft(o.client_order_id, o.side, o.tag, w.order.quantity - w.filled)
            for w in self._working.values()
            if (o := w.order).parent_id is not None
            and o.reduce_only
            and o.symbol == symbol
            and not skip(o)
        ]

    def orders(self, symbol: str | None = None) -> list[Order]:
        return [
            w.order for w in self._working.values() if symbol is None or w.order.symbol == symbol
        ]

    def on_fill(
        self,
        fill: Fill,
        placeable: Callable[[Order], bool] | None = None,
        opened: bool = True,
    ) -> BookedFill:
        """Book a fill against its order: its status now, the order, and its bracket's
        children placed or resized by this fill.

        A bracket's children come with its entry's first fill, sized on what filled, and grow
        with each fill — as the venues' brokers place them (the ccxt broker amends them as
        the entry fills; the paper broker and MT5 fill an entry at once): what the status and
        the risk plugins see is what protects the position, and no filled part waits for the
        rest of a resting entry without its stop. ``placeable`` says whether the venue would
        take a child (its minimums): one sized on a part below them waits for more of its
        entry, as the broker's does; when the entry is done it is placed (and refused there).
        ``opened`` False: the fill closed other entries' own positions and opened none of the
        order's (``TicketBrackets``): it counts to the order's status, not to what its
        children protect.
        """
        working = self._working.get(fill.client_order_id)
        if working is None:
            return BookedFill(OrderStatus.FILLED, None, (), ())
        order = working.order
        self.version += 1
        working.filled += fill.quantity
        if not opened:
            working.closed_others += fill.quantity
        if order.parent_id in self._working:
            self._spent.add(order.parent_id)
        done = working.filled + _QTY_EPSILON * max(order.quantity, 1.0) >= order.quantity
        if done:
            self.remove(fill.client_order_id)
        covered = working.filled - working.closed_others
        placed, resized = self.protect(order, covered, fill.ts, None if done else placeable)
        status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        return BookedFill(status, order, placed, resized)

    def end(self, client_order_id: str, filled: float | None, ts: int) -> BookedChildren:
        """An order ended by the venue's word (cancelled or expired after part of it filled,
        rejected, or reported filled before its last fill arrived): out of the book. Its
        bracket's children, placed or resized to what it executed (the most the venue or its
        fills say), when it executed any."""
        working = self.remove(client_order_id)
        if working is None:
            return (), ()
        done = max(working.filled, filled or 0.0) - working.closed_others
        return self.protect(working.order, done, ts) if done > 0.0 else ((), ())

    def bracket_spent(self, order: Order) -> bool:
        """Whether a child of ``order``'s bracket has filled: its trade is over."""
        return order.client_order_id in self._spent

    def protect(
        self,
        order: Order,
        filled: float,
        ts: int,
        placeable: Callable[[Order], bool] | None = None,
    ) -> BookedChildren:
        """The children of ``order`` (built by ``bracket_children``, the one place brackets
        are made) covering ``filled``: (those added to the book, those whose quantity grew).
        A child that left the book (filled, cancelled) is not made again (its id was sent
        once); once a child filled the bracket is spent: nothing is made or grown for it again.
        A child cut to its position (``shrink``) grows by what fills after, less its cut.
        A new child that is not ``placeable`` is not made yet."""
        if order.stop_loss is None and order.take_profit is None:
            return (), ()
        if filled <= 0.0:
            return (), ()  # nothing of its own position to protect yet
        if order.client_order_id in self._spent:
            return (), ()  # the bracket's trade is over: its other child is being cancelled
        placed: list[Order] = []
        resized: list[Resized] = []
        for child in bracket_children(order, filled, ts):
            child_id = child.client_order_id
            if child_id in self._ended:
                continue
            working = self._working.get(child_id)
            if working is None:
                if placeable is not None and not placeable(child):
                    continue
                self.add(child)
                placed.append(child)
                continue
            size = filled - self._shrunk.get(child_id, 0.0)
            if working.order.quantity + _QTY_EPSILON * max(filled, 1.0) < size:
                self.version += 1
                previous = working.order.quantity
                working.order = working.order._replace(quantity=size)
                resized.append(Resized(working.order, previous))
        return tuple(placed), tuple(resized)
