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
_REFUSAL_PREFIX = "stop_move_"


def refused_move(code: str) -> bool:
    """Whether a risk decision's ``code`` is a MOVE_STOP refused: journaled and counted as the
    plugin's veto, it vetoed no order, and a summary says so."""
    return code.startswith(_REFUSAL_PREFIX)


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
        return MoveRefused(PAST_MARK, f"stop {new:.10g} is {side} the mark {mark:.10g}")
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
    now = ", ".join(f"{stop.price:.10g}" for stop in stops)
    return MoveRefused(
        NOT_BETTER,
        f"stop {new:.10g} would not tighten the working stop-loss ({now}) for a "
        f"{'long' if long else 'short'} position",
    )


class StopHeld(NamedTuple):
    """A moved stop as the engine books it, from the broker's "amended" answer
    (``stop_held``): ``price`` is what the book and the journal keep. Each text is empty
    unless there is something to say: ``unusable`` why the venue's price was not taken,
    ``differs`` that the venue holds another price than asked (for information),
    ``looser`` that it holds one looser than the stop it replaced (a warning)."""

    price: float
    unusable: str = ""
    differs: str = ""
    looser: str = ""


def price_text(price: float) -> str:
    """A price as people read it: enough digits for any venue's tick (``:g``'s six would
    show 104123.45 as 104123), none of a float's noise (113.95000000000002 is 113.95)."""
    return f"{price:.12g}"


def stop_held(
    asked: float, venue: float | None, previous: float, long: bool, tick_size: float
) -> StopHeld:
    """The price to book for a stop moved from ``previous`` to ``asked``, the venue saying
    it holds ``venue`` (``OrderUpdate.price``; None: the answer did not say, the asked price
    stands, as before brokers said it). ``long``: the stop protects a long position.

    The venue's word is the booking — not the bot's wish: a journal and book at 114.00 while
    the venue holds 113.95 would re-arm the wrong price after a restart and show a wrong
    stop. A price that is no positive finite number is no word at all: the asked one is
    booked and the reason said. Within half a tick of the asked price (relative 1e-9 on an
    instrument without one) the two are the same price: nothing to say. A venue price looser
    than the old stop is booked too — the venue holds it, and fighting it would need another
    amend the venue may answer the same way — but said as the venue moving the stop the
    wrong way."""
    if venue is None:
        return StopHeld(asked)
    # A third-party broker's answer is checked, not trusted: a bool is no price (True would
    # book a stop at 1), and a Decimal or a numeric string is read as the number it is.
    given: object = venue
    try:
        venue = math.nan if isinstance(given, bool) else float(venue)
    except (TypeError, ValueError):
        venue = math.nan
    if not math.isfinite(venue) or venue <= 0.0:
        why = (
            f"the broker's amend answer gave OrderUpdate.price {given!r}, not a positive "
            f"finite number: booked the asked {price_text(asked)}"
        )
        return StopHeld(asked, unusable=why)
    tolerance = tick_size / 2.0 if tick_size > 0.0 else 1e-9 * max(abs(asked), abs(venue))
    if abs(venue - asked) <= tolerance:
        return StopHeld(venue)
    differs = f"the venue holds {price_text(venue)} where {price_text(asked)} was asked"
    looser = (venue < previous - tolerance) if long else (venue > previous + tolerance)
    if not looser:
        return StopHeld(venue, differs=differs)
    wrong_way = (
        f"{differs}, looser than the stop {price_text(previous)} it replaced: the venue "
        "moved it the wrong way; booked as the venue holds it"
    )
    return StopHeld(venue, differs=differs, looser=wrong_way)


__all__ = [
    "MOVED",
    "MoveRefused",
    "StopHeld",
    "StopMove",
    "decide_stop_move",
    "price_text",
    "protective_stop_losses",
    "stop_held",
]
