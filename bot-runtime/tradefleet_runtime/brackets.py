"""Bracket orders: the stop-loss and take-profit children of an entry, built in one place.

The engine tracks them and a simulated venue works them; both build them here, sized by what the
entry actually filled, so the two never disagree about a child's id, side or quantity.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradefleet_runtime.model import Order, OrderType
from tradefleet_runtime.order_ids import child_order_id, original_order_id

STOP_LOSS_TAG = "stop_loss"
TAKE_PROFIT_TAG = "take_profit"
# The market exit of a position whose stop-loss the venue refused (a stop already crossed,
# say): without its stop the position is closed, not left to run unprotected.
STOP_REFUSED_TAG = "stop-refused"
# The market exit of a part of an entry that filled after one of its children had (the trade
# was over, its bracket spent: its ids are sent once), before the entry's cancel landed.
BRACKET_SPENT_TAG = "bracket-spent"
# The fill of a change made to the bot's position outside the bot (a person closing it by hand
# at the venue, another program): booked so the bot's position, P&L and equity stay the
# venue's, and journaled as an outside change; never an order of the bot's.
OUTSIDE_TAG = "outside"
# The fill of the venue's liquidation of a position (its equity fell to the maintenance
# margin): booked as an outside change is, under an order id of the venue's, and said as a
# liquidation.
LIQUIDATION_TAG = "liquidation"


_ROLE_TAGS = {"sl": STOP_LOSS_TAG, "tp": TAKE_PROFIT_TAG}


def bracket_role(client_order_id: str) -> tuple[str, str] | None:
    """(the parent's id, the child's tag) of a bracket child's id (``child_order_id``); None
    for any other id. A broker that finds an earlier run's orders at the venue (after a restart)
    knows its brackets by them: their one-cancels-other group and their fills' reasons — also
    a child amended by cancel-replace, held at the venue under its replacement's id."""
    parent, dash, role = original_order_id(client_order_id).rpartition("-")
    tag = _ROLE_TAGS.get(role) if dash and parent else None
    return (parent, tag) if tag is not None else None


def bracket_children(parent: Order, filled: float, ts: int) -> tuple[Order, ...]:
    """The reduce-only SL/TP children of ``parent`` after ``filled`` of it was executed at ``ts``.

    Children share the parent's id as their one-cancels-other group: when one fills, the venue
    (or the paper broker) cancels the other.
    """
    children = []
    for role, order_type, price, tag in (
        ("sl", OrderType.STOP, parent.stop_loss, STOP_LOSS_TAG),
        ("tp", OrderType.LIMIT, parent.take_profit, TAKE_PROFIT_TAG),
    ):
        if price is None:
            continue
        children.append(
            Order(
                client_order_id=child_order_id(parent.client_order_id, role),
                symbol=parent.symbol,
                side=parent.side.opposite,
                quantity=filled,
                order_type=order_type,
                price=price,
                reduce_only=True,
                parent_id=parent.client_order_id,
                oco_group=parent.client_order_id,
                created_ts=ts,
                tag=tag,
            )
        )
    return tuple(children)


def bracket_entry(children: Sequence[Order], entry: Order | None = None) -> Order | None:
    """The entry ``children`` protect, as they stand (a stop moved since is where it is now),
    when they are all its children and of one size: ``bracket_children(result, size, ts)``
    gives them again (their creation time aside). ``entry``: the entry as journaled, when the
    journal still holds it (its type, time and tag kept); else it is told by its children.
    None when they are not one whole bracket."""
    if not children or children[0].parent_id is None:
        return None
    first, parent_id = children[0], children[0].parent_id
    prices = {child.tag: child.price for child in children}
    size = first.quantity
    if entry is not None and (
        (entry.stop_loss is None) != (STOP_LOSS_TAG not in prices)
        or (entry.take_profit is None) != (TAKE_PROFIT_TAG not in prices)
    ):
        return None  # not all of the entry's children
    base = entry or Order(parent_id, first.symbol, first.side.opposite, size)
    parent = base._replace(
        stop_loss=prices.get(STOP_LOSS_TAG), take_profit=prices.get(TAKE_PROFIT_TAG)
    )
    again = bracket_children(parent, size, 0)
    given = sorted((c.client_order_id, c.symbol, c.side, c.quantity, c.price) for c in children)
    expected = sorted((c.client_order_id, c.symbol, c.side, c.quantity, c.price) for c in again)
    return parent if given == expected and base.client_order_id == parent_id else None


__all__ = [
    "BRACKET_SPENT_TAG",
    "LIQUIDATION_TAG",
    "OUTSIDE_TAG",
    "STOP_LOSS_TAG",
    "STOP_REFUSED_TAG",
    "TAKE_PROFIT_TAG",
    "bracket_children",
    "bracket_entry",
    "bracket_role",
]
