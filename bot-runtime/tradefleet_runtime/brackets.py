"""Bracket orders: the stop-loss and take-profit children of an entry, built in one place.

The engine tracks them and a simulated venue works them; both build them here, sized by what the
entry actually filled, so the two never disagree about a child's id, side or quantity.
"""

from __future__ import annotations

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


__all__ = [
    "BRACKET_SPENT_TAG",
    "STOP_LOSS_TAG",
    "STOP_REFUSED_TAG",
    "TAKE_PROFIT_TAG",
    "bracket_children",
    "bracket_role",
]
