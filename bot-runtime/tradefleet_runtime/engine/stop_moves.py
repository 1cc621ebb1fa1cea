"""A risk plugin's MOVE_STOP: the one pure rule deciding whether a position's stop-loss may move.

Risk plugins may only shrink risk. Moving a protective stop toward the price, in the trade's
favour, is such a shrink; anything else (a looser stop, a stop past the mark that would fill at
once, a price that is not a number) is refused here, by the engine, not trusted to the plugin.

The price is put on the instrument's tick the way ``instruments.round_price`` rounds a stop: a
long's sell stop down, a short's buy stop up — away from the mark, toward the stop it replaces.
So rounding never tightens the stop beyond what the plugin asked, and never carries it past the
mark (a price below the mark rounded down stays below it).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import NamedTuple

from tradefleet_runtime.brackets import STOP_LOSS_TAG
from tradefleet_runtime.instruments import round_price
from tradefleet_runtime.model import Order, OrderType

# Codes of the refusals (metrics labels, journaled with each refusal).
NOT_FINITE = "stop_move_not_finite"
NO_POSITION = "stop_move_no_position"
NO_STOP = "stop_move_no_stop"
NO_MARK = "stop_move_no_mark"
PAST_MARK = "stop_move_past_mark"
NOT_BETTER = "stop_move_not_better"
PENDING = "stop_move_pending"
NO_AMEND = "stop_move_no_amend"
BROKER_REFUSED = "stop_move_refused_by_broker"
# The code of a stop moved.
MOVED = "trailing_stop"


class StopMove(NamedTuple):
    """One stop-loss to amend: the order as it works now and its new price (on the tick)."""

    order: Order
    price: float


class MoveRefused(NamedTuple):
    code: str
    reason: str


def protective_stop_losses(position: float, orders: Sequence[Order]) -> list[Order]:
    """The bracket stop-loss children among ``orders`` (one symbol's) that protect a position
    of ``position`` (signed): reduce-only stops on its closing side."""
    return [
        order
        for order in orders
        if order.tag == STOP_LOSS_TAG
        and order.reduce_only
        and order.order_type is OrderType.STOP
        and order.price is not None
        and position * order.side.sign < 0
    ]


def decide_stop_move(
    price: float | None,
    position: float,
    mark: float | None,
    stops: Sequence[Order],
    tick_size: float,
    pending: Collection[str] = (),
) -> list[StopMove] | MoveRefused:
    """The stops to move to ``price`` (the position's stop-losses it improves), or why none.

    ``position`` is the signed quantity held, ``stops`` the working stop-losses protecting it
    (``protective_stop_losses``), ``pending`` the ids of stops whose earlier move the broker
    has not answered yet (moved again only once it has)."""
    if price is None or not math.isfinite(price) or price <= 0.0:
        return MoveRefused(NOT_FINITE, f"price {price!r} is not a positive finite number")
    if not position:
        return MoveRefused(NO_POSITION, "no open position")
    if not stops:
        return MoveRefused(NO_STOP, "the position has no working stop-loss order")
    if mark is None or not math.isfinite(mark) or mark <= 0.0:
        return MoveRefused(NO_MARK, f"no usable mark ({mark!r}) to check the stop against")
    long = position > 0
    new = round_price(price, tick_size, stops[0].side, OrderType.STOP)
    if (new >= mark) if long else (new <= mark):
        side = "at or above" if long else "at or below"
        return MoveRefused(PAST_MARK, f"stop {new:g} is {side} the mark {mark:g}")
    moves = []
    waiting = False
    for stop in stops:
        current = stop.price
        assert current is not None  # protective_stop_losses keeps priced stops only
        if not ((new > current) if long else (new < current)):
            continue
        if stop.client_order_id in pending:
            waiting = True
            continue
        moves.append(StopMove(stop, new))
    if moves:
        return moves
    if waiting:
        return MoveRefused(PENDING, "the stop's last move is not answered yet")
    now = ", ".join(f"{stop.price:g}" for stop in stops)
    return MoveRefused(
        NOT_BETTER,
        f"stop {new:g} would not tighten the working stop-loss ({now}) for a "
        f"{'long' if long else 'short'} position",
    )


__all__ = [
    "MOVED",
    "MoveRefused",
    "StopMove",
    "decide_stop_move",
    "protective_stop_losses",
]
