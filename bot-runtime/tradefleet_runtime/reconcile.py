"""Start-up reconciliation: what the journal says against what the venue holds. Pure.

A restarted bot (or a new pod after a node loss) must not trade on a picture of its account that
the venue no longer shares. Before its first order the session asks a ``venue-execution`` broker
for its orders, fills and positions and this module decides, without touching anything:

- **fills that happened while the bot was down** (the venue's executions of the bot's own
  orders that the journal lacks) are journaled, so cash and positions move as the venue's did,
  under the reason their order gives any fill (``fill_reason``: a stop-loss child's fill is a
  ``stop_loss`` exit, as if the bot had seen it), or, for an order the journal does not hold,
  the venue's own word;
- **the bot's own orders still working at the venue** (recognised by the client-id prefix) are
  adopted as working orders, with what of them already filled, at the price and quantity the
  venue holds (an amend the journal did not keep is noted, ``adopted_order``); but a bracket
  child whose sibling filled (a stop hit while the bot was down, or just before it died) is
  cancelled: the bot cancels the sibling when it sees the fill, and left working, the
  reduce-only target of a closed position would act on the next position opened in that
  symbol — unless the sibling filled only in part (it still works at the venue) and the
  position is still open: the rest of the position is what the child protects, and it stays
  (cut to the position);
- **orders the journal thought working** that the venue has closed take the venue's final
  status; those the venue never saw are closed as never sent (not re-sent: the strategy decides
  again on fresh data) — but a bracket child protecting a position that is still open (the bot
  died after its entry filled, before the venue took the stop) is sent now, under its own id:
  closing it would leave the position without its stop-loss;
- **foreign orders and positions** (other prefixes, other symbols) are reported, never touched;
- **positions** are compared after all that (a spot venue's balance only has to cover what the
  bot holds: the account may hold more of the coin than the bot bought): when the venue and
  the journal still disagree by more than the tolerance, the bot is ``Degraded`` and trades
  nothing until a person resolves it — or, when the bot's spec says so, the venue's position
  is adopted through a reconciliation fill at the venue's average price.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tradefleet_runtime.accounting import apply_fill
from tradefleet_runtime.brackets import OUTSIDE_TAG, bracket_role
from tradefleet_runtime.model import (
    Fill,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    Position,
    PositionReport,
    Side,
    fill_reason,
)
from tradefleet_runtime.order_ids import child_order_id

RECONCILED_REASON = "reconciled"
ADOPTED_REASON = "reconciliation: venue position adopted"
# The status-log reasons of a fill booked at a restart (``fill_statuses``).
DOWN_FILLED_REASON = "filled at the venue while the bot was down"
DOWN_PART_REASON = "filled in part at the venue while the bot was down"


@dataclass(frozen=True)
class ReconcilePlan:
    """What to apply, in order: ``missed_fills``, ``closed``, ``adopted``, ``adjustments``."""

    missed_fills: tuple[Fill, ...] = ()
    # Journal-working orders the venue has closed: (order id, the venue's report).
    closed: tuple[tuple[str, OrderReport], ...] = ()
    # Journal-working orders the venue reports nothing of: never received, or (``gone``) gone.
    never_sent: tuple[str, ...] = ()
    # Of those (but ``withheld``) and of ``resend``, orders the venue had acknowledged (the
    # journal held them working, not pending): they ended at the venue while the bot was down
    # and no report of them is left (an MT5 position's SL/TP when a person closed the position,
    # or when the bot's own removal went unheard). Not "never received".
    gone: tuple[str, ...] = ()
    # Of those, bracket children protecting a position still open: to send now, not close.
    resend: tuple[str, ...] = ()
    # Of ``never_sent``, the children ``resend`` would hold, withheld because the plan is
    # Degraded: a Degraded bot sends nothing (they would act on whatever position the account
    # holds next, which a person settles first).
    withheld: tuple[str, ...] = ()
    # The bot's orders still working at the venue (whether or not the journal knew them).
    adopted: tuple[OrderReport, ...] = ()
    # Adopted bracket children whose OCO sibling has filled: to cancel at the venue.
    orphaned: tuple[str, ...] = ()
    # Fills that make the journal's position equal the venue's (only when adopting positions).
    adjustments: tuple[Fill, ...] = ()
    foreign_orders: tuple[OrderReport, ...] = ()
    foreign_positions: tuple[PositionReport, ...] = ()
    # Each disagreement beyond tolerance, for people; non-empty means Degraded.
    mismatches: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def degraded(self) -> bool:
        return bool(self.mismatches)

    def summary(self) -> str:
        parts = [
            f"{len(self.missed_fills)} fill(s) while down journaled",
            # An orphan is adopted only to be cancelled at once: not counted as working.
            f"{len(self.adopted) - len(self.orphaned)} working order(s) adopted",
            f"{len(self.closed)} order(s) closed at the venue",
            f"{len(set(self.never_sent).difference(self.gone, self.withheld))} never reached "
            "the venue",
        ]
        if self.withheld:
            parts.append(
                f"{len(self.withheld)} protective order(s) not sent again: Degraded, a person "
                "settles the position first"
            )
        gone = set(self.gone).intersection(self.never_sent)
        if gone:
            parts.append(f"{len(gone)} acknowledged order(s) gone from the venue without a report")
        unsent = set(self.resend).difference(self.gone)
        if unsent:
            parts.append(f"{len(unsent)} protective order(s) the venue never received sent again")
        if len(unsent) < len(self.resend):
            parts.append(
                f"{len(self.resend) - len(unsent)} protective order(s) gone from the venue "
                "without a report sent again"
            )
        if self.orphaned:
            parts.append(
                f"{len(self.orphaned)} bracket order(s) whose sibling filled to be cancelled"
            )
        if self.adjustments:
            parts.append(f"{len(self.adjustments)} venue position(s) adopted")
        if self.foreign_orders or self.foreign_positions:
            parts.append(
                f"{len(self.foreign_orders)} foreign order(s) and "
                f"{len(self.foreign_positions)} foreign position(s) left alone"
            )
        if self.mismatches:
            parts.append("MISMATCH: " + "; ".join(self.mismatches))
        return ", ".join(parts)


@dataclass(frozen=True)
class SpentUncovered:
    """A bracket entry's part that filled beyond what its children covered, its bracket ended
    (a child filled): ``spent_uncovered``. ``side`` is the close's (the entry's opposite)."""

    entry_id: str
    symbol: str
    side: Side
    quantity: float


# How many restart closes of one spent entry are ever sent (``spent_close_id``): each is
# sent only when the ones before it ended at the venue without closing all they were for.
SPENT_CLOSES_MAX = 9
_SPENT_MARK = re.compile(r"-bs([2-9])?$")


def spent_close_id(entry_id: str, attempt: int = 1) -> str:
    """The id of the ``attempt``-th (1, 2, …) restart close of bracket entry ``entry_id``'s
    uncovered part: derived from the entry's, so that no later restart sends one twice (a
    known id is never sent). A later attempt only for what the ones before did not close
    (ended at the venue part-filled, or never received). ``-bs``/``-bs<n>`` is no bracket
    role (``bracket_role``) nor a replacement's mark (``original_order_id``)."""
    if not 1 <= attempt <= SPENT_CLOSES_MAX:
        raise ValueError(f"attempt: {attempt} is not in 1..{SPENT_CLOSES_MAX}")
    return f"{entry_id}-bs" if attempt == 1 else f"{entry_id}-bs{attempt}"


def spent_entry_of(client_order_id: str) -> str | None:
    """The entry's id of a restart close of a spent bracket (``spent_close_id``); None for any
    other id."""
    match = _SPENT_MARK.search(client_order_id)
    return client_order_id[: match.start()] if match and match.start() > 0 else None


def spent_uncovered(
    journaled: Mapping[str, Order],
    fills: Sequence[Fill],
    cuts: Mapping[str, float],
    reports: Mapping[str, OrderReport],
    never_sent: Collection[str] = (),
    tolerance: float = 1e-9,
) -> tuple[SpentUncovered, ...]:
    """What of each bracket entry the journal held working (``journaled``: the orders the
    journal held working or unacknowledged) filled beyond what its children covered, once one
    of its children filled — the restart's form of the running rule
    (``Engine._bracket_after_fill``): a part of an entry that fills after its bracket ended
    is closed at market, reduce-only. While the bot was down nothing grew the children as the
    entry filled, so the venue's stop closed only what it covered and the rest is held with
    no stop.

    ``fills``: every fill booked (the journal's and those missed while down). ``reports``:
    the venue's word after the restart on each journaled order it holds or closed
    (``plan.closed`` and ``plan.adopted``); ``never_sent``: those it never received.

    What a child covered is its quantity *as the venue reports it* (the journal may hold a
    resize the venue never made) plus what earlier runs cut off it as its position got
    smaller (``cuts``: ``carried_cuts``); the most of the two children. An entry whose
    children the venue reports neither (ended before the restart, not found) is left out:
    what they covered is not known here. What earlier restarts' closes of it
    (``spent_close_id``) filled is not owed again. An earlier restart's close the journal
    held working while its entry is no longer (the entry's end journaled by that restart)
    owes what it did not fill once the venue ended it (part filled, the rest expired or
    cancelled) or never received it; one the venue still works is on its way: nothing.
    Not capped at the position, nor checked against closes on their way: the engine does
    that."""
    filled: dict[str, float] = {}
    for fill in fills:
        filled[fill.client_order_id] = filled.get(fill.client_order_id, 0.0) + fill.quantity
    closed_by: dict[str, float] = {}
    for order_id, quantity in filled.items():
        entry_id = spent_entry_of(order_id)
        if entry_id is not None:
            closed_by[entry_id] = closed_by.get(entry_id, 0.0) + quantity
    out: list[SpentUncovered] = []
    for entry in journaled.values():
        if entry.parent_id is not None or entry.reduce_only:
            continue
        if entry.stop_loss is None and entry.take_profit is None:
            continue
        ids = [child_order_id(entry.client_order_id, role) for role in ("sl", "tp")]
        if not any(filled.get(i, 0.0) > tolerance for i in ids):
            continue  # the bracket has not ended: the engine grows its children
        seen = [reports[i] for i in ids if i in reports]
        if not seen:
            continue
        covered = max(r.quantity + cuts.get(r.client_order_id, 0.0) for r in seen)
        left = (
            filled.get(entry.client_order_id, 0.0)
            - covered
            - closed_by.get(entry.client_order_id, 0.0)
        )
        if left > tolerance:
            out.append(
                SpentUncovered(entry.client_order_id, entry.symbol, entry.side.opposite, left)
            )
    for close in journaled.values():
        entry_id = spent_entry_of(close.client_order_id)
        if entry_id is None or entry_id in journaled:
            continue  # not such a close, or counted with its entry above
        report = reports.get(close.client_order_id)
        if report is not None and report.status.is_final:
            whole = report.quantity
        elif report is None and close.client_order_id in never_sent:
            whole = close.quantity
        else:
            continue  # on its way at the venue, or its fate unknown
        left = whole - filled.get(close.client_order_id, 0.0)
        if report is not None:
            left = min(left, whole - report.filled_quantity)
        if left > tolerance:
            out.append(SpentUncovered(entry_id, close.symbol, close.side, left))
    return tuple(out)


@dataclass(frozen=True)
class PastFlat:
    """What a reduce-only order took a position past flat and no close of the bot covers
    (``past_flat_owed``): ``side`` is the close's, ``order_id`` the order that went past flat
    (or the earlier close of it that the venue ended short or never received)."""

    order_id: str
    symbol: str
    side: Side
    quantity: float


def past_flat_owed(
    journaled: Mapping[str, Order],
    booked: Sequence[Fill],
    missed: Sequence[Fill],
    reports: Mapping[str, OrderReport],
    never_sent: Collection[str],
    close_tag: str,
    tolerance: float = 1e-9,
) -> tuple[PastFlat, ...]:
    """The restart's form of the running rule (``Engine._close_past_flat``): what of a
    position a reduce-only order opened past flat is owed a close — the venue checks
    reduce-only as an order is placed, not as it fills (a strategy's close filling after the
    kept stop-loss that closed the position first). Pure.

    ``booked``: the fills earlier runs booked, in order; ``missed``: those the venue reports
    and the journal lacked, booked after them. A missed fill of a reduce-only order the journal
    held (``journaled``) that left its position on the fill's own side owes what it opened —
    the missed fills taken in the order the bot sent their orders (``_sent_order``), not the
    order the venue filled them in: a strategy's reversal (``close``, then ``sell``) that the
    venue filled the other way round opened what the strategy asked for, nothing past flat.
    A close the running bot sent for such a part (tagged ``close_tag``) that the venue never
    received (``never_sent``), or ended with a part unfilled (``reports``), owes what it did
    not fill; one the venue still works is on its way: nothing. Not capped at the position,
    nor checked against closes on their way: the engine does that."""
    held: dict[str, float] = {}
    filled: dict[str, float] = {}
    for fill in booked:
        held[fill.symbol] = held.get(fill.symbol, 0.0) + fill.side.sign * fill.quantity
        filled[fill.client_order_id] = filled.get(fill.client_order_id, 0.0) + fill.quantity
    out: list[PastFlat] = []
    for fill in _as_decided(missed, journaled):
        sign = fill.side.sign
        before = held.get(fill.symbol, 0.0)
        after = held[fill.symbol] = before + sign * fill.quantity
        filled[fill.client_order_id] = filled.get(fill.client_order_id, 0.0) + fill.quantity
        order = journaled.get(fill.client_order_id)
        if order is None or not order.reduce_only or after * sign <= tolerance:
            continue
        # All of the fill when the position was flat or on its side before; else what went
        # past flat.
        opened = fill.quantity if before * sign >= -tolerance else after * sign
        out.append(PastFlat(order.client_order_id, fill.symbol, fill.side.opposite, opened))
    for close in journaled.values():
        if close.tag != close_tag:
            continue
        report = reports.get(close.client_order_id)
        if report is not None and report.status.is_final:
            left = min(
                close.quantity - filled.get(close.client_order_id, 0.0),
                report.quantity - report.filled_quantity,
            )
        elif report is None and close.client_order_id in never_sent:
            left = close.quantity - filled.get(close.client_order_id, 0.0)
        else:
            continue  # on its way at the venue, or its fate unknown
        if left > tolerance:
            out.append(PastFlat(close.client_order_id, close.symbol, close.side, left))
    return tuple(out)


def _as_decided(fills: Sequence[Fill], journaled: Mapping[str, Order]) -> list[Fill]:
    """``fills`` in the order the venue made them, but a symbol's orders the bot decided at one
    time taken together, where the first of them filled, a close first: a strategy's ``close``
    before the entry it reverses into, as the bot sent them. A reversal the venue filled entry
    first opened what the strategy asked for, nothing past flat. A bracket's child (it works
    until its price comes, whenever it was placed) and an order the journal does not hold
    stand where they filled: a take-profit resting from before that filled after a later exit
    did go past flat."""
    batches: dict[tuple[str, int], int] = {}
    keyed: list[tuple[int, int, int]] = []
    for index, fill in enumerate(fills):
        order = journaled.get(fill.client_order_id)
        if order is None or order.parent_id is not None:
            keyed.append((index, 2, index))
            continue
        batch = batches.setdefault((order.symbol, order.created_ts), index)
        keyed.append((batch, 0 if order.reduce_only else 1, index))
    return [fills[index] for _, _, index in sorted(keyed)]


def closed_reason(report: OrderReport) -> str:
    """The status-log reason of an order the venue closed while the bot was down."""
    return f"{report.status.value} at the venue while the bot was down"


@dataclass(frozen=True)
class FillStatus:
    """How a fill booked at a restart reads in its order's status log: the order's status
    after it, why, and the venue's order id when the row is the venue's last word on it."""

    status: OrderStatus
    reason: str
    venue_order_id: str | None = None


def fill_statuses(plan: ReconcilePlan) -> tuple[tuple[FillStatus, ...], frozenset[str]]:
    """The status row of each fill ``plan`` books (its ``missed_fills``, then its
    ``adjustments``), and the closed orders whose closing row the last of their fills' rows
    already is (written, it would only repeat it).

    One row per event, each saying what was found: a fill leaves its order ``filled`` only
    when it is the last missed fill of an order the venue reports filled, and that row is the
    venue's word (``closed_reason``, the venue's order id). Any other fill of an order the
    venue closed (cancelled after a part) or still works (adopted) left it filled in part: a
    part-fill logged ``filled`` then ``cancelled`` is a false trail. A fill of an order the
    plan has no report of keeps ``filled`` (the journal does not know what is left of it)
    under the venue's word; a position adopted from the venue, under ``ADOPTED_REASON``."""
    closed = dict(plan.closed)
    adopted = {report.client_order_id for report in plan.adopted}
    last = {fill.client_order_id: i for i, fill in enumerate(plan.missed_fills)}
    rows: list[FillStatus] = []
    said: set[str] = set()
    for i, fill in enumerate(plan.missed_fills):
        order_id = fill.client_order_id
        report = closed.get(order_id)
        if report is not None and report.status is OrderStatus.FILLED and last[order_id] == i:
            rows.append(
                FillStatus(OrderStatus.FILLED, closed_reason(report), report.venue_order_id)
            )
            said.add(order_id)
        elif report is not None or order_id in adopted:
            rows.append(FillStatus(OrderStatus.PARTIALLY_FILLED, DOWN_PART_REASON))
        else:
            rows.append(FillStatus(OrderStatus.FILLED, DOWN_FILLED_REASON))
    rows.extend(FillStatus(OrderStatus.FILLED, fill.reason) for fill in plan.adjustments)
    return tuple(rows), frozenset(said)


def _net_positions(fills: Iterable[Fill]) -> dict[str, Position]:
    positions: dict[str, Position] = {}
    for fill in fills:
        position = positions.get(fill.symbol)
        if position is None:
            position = positions[fill.symbol] = Position(fill.symbol)
        apply_fill(position, fill)
    return positions


def _group(client_order_id: str) -> str | None:
    """A bracket child's one-cancels-other group (its parent's id), known from its id alone:
    bracket children are the only orders with a group (``brackets.py``)."""
    role = bracket_role(client_order_id)
    return role[0] if role is not None else None


def _filled_members(fills: Sequence[Fill]) -> dict[str, set[str]]:
    """Of each OCO group, the members that have a fill."""
    filled: dict[str, set[str]] = {}
    for fill in fills:
        group = _group(fill.client_order_id)
        if group is not None:
            filled.setdefault(group, set()).add(fill.client_order_id)
    return filled


def _orphaned(
    adopted: Sequence[OrderReport],
    filled: Mapping[str, set[str]],
    positions: Mapping[str, Position],
    tolerance: float = 1e-9,
) -> tuple[str, ...]:
    """The adopted orders whose OCO group saw a fill of another member, as the broker cancels
    a bracket's sibling when a child's fill ends it — but not while every member that filled
    did so only in part (it still works at the venue, ``_in_part``) and the position the
    order closes is still open: the rest of it is what the order protects, as the running
    bot keeps the sibling of a child still working (the ccxt broker cancels siblings once a
    child ends; an MT5 hedging split entry's SL closing one ticket leaves the TP on the
    others). It stays, cut to the position by the engine (its quantity at most what
    remains)."""
    working = {report.client_order_id: report for report in adopted}
    orphaned = []
    for report in adopted:
        group = _group(report.client_order_id)
        others = filled.get(group, set()) - {report.client_order_id} if group else set()
        if not others:
            continue
        if _closes_open(report, positions) and all(
            _in_part(working.get(other), tolerance) for other in others
        ):
            continue
        orphaned.append(report.client_order_id)
    return tuple(orphaned)


def _in_part(report: OrderReport | None, tolerance: float) -> bool:
    """Whether ``report`` (an adopted order: working at the venue; None: not one) filled only
    in part: the venue still works more of it."""
    return report is not None and report.remaining > tolerance


def _closes_open(report: OrderReport, positions: Mapping[str, Position]) -> bool:
    """Whether bracket child ``report`` closes a position still open (``positions``: as the
    journal and the fills missed while down make them): one held on the side it closes (a
    venue may not flag a child reduce-only: a spot one has no such flag)."""
    held = positions.get(report.symbol)
    quantity = held.quantity if held is not None else 0.0
    return quantity < 0 if report.side is Side.BUY else quantity > 0


def _protects(
    order: Order, positions: Mapping[str, Position], filled: Mapping[str, set[str]]
) -> bool:
    """Whether ``order`` is a bracket child still protecting an open position: its entry's
    fill stands (the position is open on the side the child closes) and no member of its OCO
    group has filled."""
    if order.parent_id is None or not order.reduce_only:
        return False
    group = _group(order.client_order_id)
    if group is not None and filled.get(group):
        return False
    held = positions.get(order.symbol)
    quantity = held.quantity if held is not None else 0.0
    return quantity < 0 if order.side is Side.BUY else quantity > 0


def _difference(have: float, at_venue: PositionReport | None, tolerance: float) -> float | None:
    """What the venue holds beyond what the bot holds (``have``), or None when they agree:
    within ``tolerance``, or a spot balance covering the bot's holding (the rest is the
    owner's coins)."""
    venue = at_venue.quantity if at_venue is not None else 0.0
    difference = venue - have
    if abs(difference) <= tolerance:
        return None
    if at_venue is not None and at_venue.balance and difference > 0 and have >= 0:
        return None
    return difference


def position_drift(
    symbols: Sequence[str],
    held: Mapping[str, float],
    venue_positions: Sequence[PositionReport],
    tolerance: float,
) -> dict[str, tuple[float, float]]:
    """The bot's symbols whose position the venue no longer agrees with while the bot runs (a
    person closed it by hand, a venue's liquidation): symbol -> (what the bot holds, what the
    venue does), by the rules the start-up reconciliation applies (``plan_reconciliation``)."""
    venue_net = {p.symbol: p for p in venue_positions if p.quantity}
    drift: dict[str, tuple[float, float]] = {}
    for symbol in symbols:
        have = held.get(symbol, 0.0)
        difference = _difference(have, venue_net.get(symbol), tolerance)
        if difference is not None:
            drift[symbol] = (have, have + difference)
    return drift


def order_from_report(report: OrderReport) -> Order:
    """The order a venue reports, as the bot's own (adopting one the journal never recorded):
    a bracket child by its id — also under a replacement's id, after an amend — keeps its
    parent, its one-cancels-other group and its tag, as the broker follows it."""
    role = bracket_role(report.client_order_id)
    parent, tag = role if role is not None else (None, "adopted")
    return Order(
        client_order_id=report.client_order_id,
        symbol=report.symbol,
        side=report.side,
        quantity=report.quantity,
        order_type=report.order_type,
        price=report.price,
        reduce_only=report.reduce_only,
        parent_id=parent,
        oco_group=parent,
        created_ts=report.ts,
        tag=tag,
    )


def adopted_order(report: OrderReport, journaled: Order | None) -> Order:
    """The order the bot works after adopting ``report``: the journal's own (its tag, bracket
    and reference kept) as the venue holds it now — its quantity (a bracket child resized as
    its entry filled, an amended order) and its price (an order moved before the restart, in
    place or by a cancel-replace: the journal keeps the price it was sent at, and a strategy
    or risk rule reading the working order would decide on a price the venue no longer
    holds). One the journal never held is the report's (``order_from_report``)."""
    if journaled is None:
        return order_from_report(report)
    order = journaled
    if report.quantity > 0.0 and report.quantity != order.quantity:
        order = order._replace(quantity=report.quantity)
    price = _venue_price(report, order)
    if price is not None and price != order.price:
        order = order._replace(price=price)
    return order


def booked_fill(fill: Fill, order: Order | None) -> Fill:
    """``fill`` of the bot's working ``order`` (None: no such order), under the order's tag
    where the broker gave the order's bare type. A venue broker knows an order it adopted at a
    restart as the venue holds it, and venues keep no tag, so its fill reads ``limit`` or
    ``stop`` (``fill_reason`` of an untagged order) where the order the bot works — the
    journal's, adopted — says ``breakout`` or ``stop_loss``: the reason is the trade's entry or
    exit reason, as for the fills reconciliation books. Any other reason (a venue's own SL/TP
    close, a liquidation) is the broker's word and kept."""
    if order is None or not order.tag or fill.reason != order.order_type.value:
        return fill
    return fill._replace(reason=order.tag)


def _venue_price(report: OrderReport, order: Order) -> float | None:
    """The price ``report`` says the venue holds ``order`` at, when it is one the bot can take:
    a positive finite price of an order of the same kind (a limit price, a stop's trigger); a
    market order has none. None: the journal's stands."""
    price = report.price
    if order.order_type is OrderType.MARKET or report.order_type is not order.order_type:
        return None
    if price is None or not math.isfinite(price) or price <= 0.0:
        return None
    return price


def _changed_at_venue(report: OrderReport, journaled: Order | None) -> str | None:
    """A note for people when the venue holds an adopted order at another price or quantity
    than the journal (an amend the journal did not keep); None when they agree."""
    if journaled is None:
        return None
    adopted = adopted_order(report, journaled)
    if (adopted.price, adopted.quantity) == (journaled.price, journaled.quantity):
        return None
    return (
        f"{report.client_order_id}: the venue holds it at {_price_text(adopted.price)} for "
        f"{adopted.quantity:.10g}, the journal at {_price_text(journaled.price)} for "
        f"{journaled.quantity:.10g}; adopted as the venue holds it"
    )


def _price_text(price: float | None) -> str:
    return "no price" if price is None else f"{price:.10g}"


def plan_reconciliation(
    *,
    prefix: str,
    symbols: Sequence[str],
    journal_fills: Sequence[Fill],
    journal_working: Mapping[str, Order],
    known_order_ids: frozenset[str],
    venue_orders: Sequence[OrderReport],
    venue_fills: Sequence[Fill],
    venue_positions: Sequence[PositionReport],
    now: int,
    tolerance: float = 1e-9,
    adopt_venue_positions: bool = False,
    acknowledged: Collection[str] = (),
) -> ReconcilePlan:
    """The plan for making the journal agree with the venue (see the module doc).

    ``journal_working`` are the orders the journal thinks are working (by client order id);
    ``known_order_ids`` every id the bot ever journaled; ``tolerance`` the absolute quantity
    difference that still counts as equal (e.g. half a lot step); ``acknowledged``: those of
    ``journal_working`` the venue had acknowledged (the rest were pending).
    """
    symbol_set = frozenset(symbols)
    ours = {r.client_order_id: r for r in venue_orders if r.client_order_id.startswith(prefix)}
    foreign_orders = tuple(r for r in venue_orders if not r.client_order_id.startswith(prefix))

    # An execution is its venue trade id: one the journal has, or one a paginated report
    # listed twice, is booked once.
    seen = {fill.fill_id for fill in journal_fills}
    missed_fills: list[Fill] = []
    for fill in sorted(venue_fills, key=lambda f: (f.ts, f.fill_id)):
        if fill.client_order_id.startswith(prefix) and fill.fill_id not in seen:
            seen.add(fill.fill_id)
            order = journal_working.get(fill.client_order_id)
            reason = fill_reason(order) if order is not None else fill.reason
            missed_fills.append(fill._replace(reason=reason or RECONCILED_REASON))
    missed = tuple(missed_fills)
    notes: list[str] = []
    # (A change made outside the bot, booked under an id of its own, is no order of the bot.)
    unknown_ids = {
        f.client_order_id
        for f in missed
        if f.client_order_id not in known_order_ids and f.reason != OUTSIDE_TAG
    }
    if unknown_ids:
        # Our prefix, but no journal row: sent by a run that died between the venue's ack and
        # the journal's commit, or by a copy of this bot. Either way the venue's word counts.
        notes.append(
            f"{len(unknown_ids)} order id(s) with the bot's prefix not in the journal: "
            + ", ".join(sorted(unknown_ids)[:5])
        )

    expected = _net_positions([*journal_fills, *missed])
    filled = _filled_members([*journal_fills, *missed])
    closed: list[tuple[str, OrderReport]] = []
    never_sent: list[str] = []
    resend: list[str] = []
    for order_id, order in journal_working.items():
        report = ours.get(order_id)
        if report is None:
            (resend if _protects(order, expected, filled) else never_sent).append(order_id)
        elif report.status.is_final:
            closed.append((order_id, report))
    adopted = tuple(
        report
        for report in ours.values()
        if not report.status.is_final and report.status is not OrderStatus.REJECTED
    )
    orphaned = _orphaned(adopted, filled, expected, tolerance)
    for report in adopted:
        changed = _changed_at_venue(report, journal_working.get(report.client_order_id))
        if changed is not None:
            notes.append(changed)

    venue_net = {p.symbol: p for p in venue_positions if p.quantity}
    foreign_positions = tuple(p for s, p in venue_net.items() if s not in symbol_set)
    mismatches: list[str] = []
    adjustments: list[Fill] = []
    for symbol in symbols:
        held = expected.get(symbol)
        have = held.quantity if held is not None else 0.0
        at_venue = venue_net.get(symbol)
        difference = _difference(have, at_venue, tolerance)
        if difference is None:
            continue
        venue = have + difference
        if adopt_venue_positions:
            # At the venue's entry price when it has one; a position the venue no longer has
            # is closed at the journal's own entry price (no invented profit or loss).
            if at_venue is not None and at_venue.average_price:
                price = at_venue.average_price
            else:
                price = held.average_price if held is not None else 0.0
            adjustments.append(
                Fill(
                    client_order_id=f"{prefix}reconcile",
                    symbol=symbol,
                    side=Side.BUY if difference > 0 else Side.SELL,
                    quantity=abs(difference),
                    price=price,
                    fee=0.0,
                    ts=now,
                    fill_id=f"{prefix}reconcile-{symbol}-{now}",
                    reason=ADOPTED_REASON,
                )
            )
        else:
            mismatches.append(
                f"{symbol}: the journal holds {have:+.10g}, the venue {venue:+.10g} "
                f"(difference {difference:+.10g})"
            )
    withheld: list[str] = []
    if mismatches:
        withheld, resend = resend, []
        never_sent += withheld
    return ReconcilePlan(
        missed_fills=missed,
        closed=tuple(closed),
        never_sent=tuple(never_sent),
        withheld=tuple(withheld),
        gone=tuple(
            order_id
            for order_id in [*never_sent, *resend]
            if order_id in acknowledged and order_id not in withheld
        ),
        resend=tuple(resend),
        adopted=adopted,
        orphaned=orphaned,
        adjustments=tuple(adjustments),
        foreign_orders=foreign_orders,
        foreign_positions=foreign_positions,
        mismatches=tuple(mismatches),
        notes=tuple(notes),
    )


__all__ = [
    "ADOPTED_REASON",
    "DOWN_FILLED_REASON",
    "DOWN_PART_REASON",
    "RECONCILED_REASON",
    "SPENT_CLOSES_MAX",
    "FillStatus",
    "ReconcilePlan",
    "SpentUncovered",
    "adopted_order",
    "booked_fill",
    "closed_reason",
    "fill_statuses",
    "order_from_report",
    "plan_reconciliation",
    "position_drift",
    "spent_close_id",
    "spent_entry_of",
    "spent_uncovered",
]
