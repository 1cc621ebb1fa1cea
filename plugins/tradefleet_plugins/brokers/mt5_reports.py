"""The terminal's orders, deals and positions -> the contract's reports. Pure functions.

An order of the bot is one or more MT5 orders carrying its client order id in their comment
(``mt5_requests.comment_for``); MT5's own SL/TP closes carry the terminal's comment
(``[sl 1.09500]``) and are the bot's bracket children, found through the position they closed:
the position was opened by the parent order, whose id is in the opening deal's comment.

The terminal counts in lots; every report counts in units, as the rest of the runtime does:
each function is given ``units`` (the broker's symbol name and a volume in lots -> units,
``mt5_requests.to_units`` on that symbol's units per lot).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from tradefleet_runtime.sdk import (
    STOP_LOSS_TAG,
    TAKE_PROFIT_TAG,
    CashFlow,
    Fill,
    OrderReport,
    OrderStatus,
    OrderType,
    PositionReport,
    Side,
    child_order_id,
)

ORDER_STATE_STARTED = 0
ORDER_STATE_PLACED = 1
ORDER_STATE_CANCELED = 2
ORDER_STATE_PARTIAL = 3
ORDER_STATE_FILLED = 4
ORDER_STATE_REJECTED = 5
ORDER_STATE_EXPIRED = 6
DEAL_TYPE_BUY = 0
DEAL_TYPE_SELL = 1
DEAL_ENTRY_IN = 0
DEAL_ENTRY_INOUT = 2
DEAL_REASON_SL = 4
DEAL_REASON_TP = 5
ORDER_REASON_SL = 4
ORDER_REASON_TP = 5
POSITION_TYPE_BUY = 0

_BUY_TYPES = frozenset({0, 2, 4, 6})
_EPS = 1e-9
_DEAL_ENTRY_IN = 0  # a deal that opened a position (the terminal's DEAL_ENTRY_IN)
_TYPES = {
    0: OrderType.MARKET,
    1: OrderType.MARKET,
    2: OrderType.LIMIT,
    3: OrderType.LIMIT,
    4: OrderType.STOP,
    5: OrderType.STOP,
    6: OrderType.STOP,
    7: OrderType.STOP,
}
_STATES = {
    ORDER_STATE_STARTED: OrderStatus.OPEN,
    ORDER_STATE_PLACED: OrderStatus.OPEN,
    ORDER_STATE_CANCELED: OrderStatus.CANCELLED,
    ORDER_STATE_PARTIAL: OrderStatus.PARTIALLY_FILLED,
    ORDER_STATE_FILLED: OrderStatus.FILLED,
    ORDER_STATE_REJECTED: OrderStatus.REJECTED,
    ORDER_STATE_EXPIRED: OrderStatus.CANCELLED,
}
# The states of an order record that no longer works (history's).
_ENDED = frozenset(
    {ORDER_STATE_CANCELED, ORDER_STATE_FILLED, ORDER_STATE_REJECTED, ORDER_STATE_EXPIRED}
)

# comment -> the bot's client order id (None: not one of the bot's comments)
Resolver = Callable[[str], str | None]
# position id -> the client order id of the order that opened it (SL/TP children)
ParentOf = Callable[[int], str | None]
# (the broker's symbol name, a volume in lots) -> the quantity in units
Units = Callable[[str, float], float]


def child_role(reason: int) -> str | None:
    """``sl``/``tp`` for a deal or order the terminal made when a position's SL/TP fired."""
    if reason == DEAL_REASON_SL:
        return "sl"
    if reason == DEAL_REASON_TP:
        return "tp"
    return None


def deal_client_id(deal: Any, resolve: Resolver, parent_of: ParentOf) -> str | None:
    """The client order id a deal belongs to (an SL/TP close: the bracket child's id)."""
    role = child_role(int(deal.reason))
    if role is not None:
        parent = parent_of(int(deal.position_id))
        return None if parent is None else child_order_id(parent, role)
    return resolve(str(deal.comment))


def fill_from_deal(
    deal: Any, client_order_id: str, symbol: str, units: Units, reason: str = "market"
) -> Fill | None:
    """A buy/sell deal -> ``Fill``, its volume in units (balance, credit, ... deals -> None).
    The deal ticket is the fill id, so the same execution always has the same id. Its charges
    (``deal_charges``: commission and fee, the venue's price of the trade) are a cost when
    their sum is negative, and ``Fill.fee`` (≥ 0 by the contract) is that cost; a net credit
    (a commission rebate) cannot be a fee: the fee is 0 and the broker says how much it could
    not book (``deal_credit``). The swap a closing deal books is not a fee: it is a payment
    for holding the position, reported apart (``swap_flow``). ``reason``: the order's tag, or
    untagged, its type; the terminal's own SL/TP closes are ``stop_loss``/``take_profit``.
    ``units``: the deal's volume (lots) of its symbol in units."""
    if int(deal.type) not in (DEAL_TYPE_BUY, DEAL_TYPE_SELL):
        return None
    role = child_role(int(deal.reason))
    cost = deal_charges(deal)
    return Fill(
        client_order_id=client_order_id,
        symbol=symbol,
        side=Side.BUY if int(deal.type) == DEAL_TYPE_BUY else Side.SELL,
        quantity=units(str(deal.symbol), float(deal.volume)),
        price=float(deal.price),
        fee=-cost if cost < 0 else 0.0,
        ts=int(deal.time),
        fill_id=str(deal.ticket),
        reason={"sl": STOP_LOSS_TAG, "tp": TAKE_PROFIT_TAG}.get(role or "", reason),
    )


def deal_charges(deal: Any) -> float:
    """What a deal charged or credited the account for the trade itself, in the account's
    currency: commission and fee; negative is a cost. Not its swap (``swap_flow``)."""
    return float(deal.commission) + float(getattr(deal, "fee", 0.0))


def deal_credit(deal: Any) -> float:
    """The part of a deal's charges that is a credit ``Fill.fee`` cannot carry (it is ≥ 0):
    a commission rebate beyond the deal's fee. 0 for most deals (a swap credit is booked as
    a ``swap_flow``, never here)."""
    return max(deal_charges(deal), 0.0)


def swap_flow(deal: Any, symbol: str, currency: str, ts: int) -> CashFlow | None:
    """The swap a buy/sell deal booked -> a ``CashFlow`` of kind ``swap`` (None: no swap).

    MT5 accrues a position's swap at each rollover and books it on the deal that closes it
    (each partial close its share): a payment for holding the position, charged or credited,
    not a price of the trade. Its id is the deal's ticket (``swap:<ticket>``), so every report
    of the deal is the same flow and it is booked once. ``symbol``: the bot's name of the
    deal's symbol; ``currency``: the account's (MT5 books swap in it); ``ts``: the deal's
    time, UTC seconds, as its fill's."""
    if int(deal.type) not in (DEAL_TYPE_BUY, DEAL_TYPE_SELL):
        return None
    amount = float(getattr(deal, "swap", 0.0))
    if amount == 0.0:
        return None
    return CashFlow(
        flow_id=f"swap:{int(deal.ticket)}",
        symbol=symbol,
        amount=amount,
        currency=currency,
        ts=ts,
        kind="swap",
    )


def position_swaps(positions: Iterable[Any], symbol_of: Callable[[str], str]) -> dict[str, float]:
    """The swap the bot's open ``positions`` accrued and the terminal has not booked yet
    (``TradePosition.swap``, in the account's currency, part of the terminal's equity), summed
    per bot symbol (a hedging account holds several positions of one symbol)."""
    totals: dict[str, float] = {}
    for position in positions:
        symbol = symbol_of(str(position.symbol))
        totals[symbol] = totals.get(symbol, 0.0) + float(getattr(position, "swap", 0.0))
    # The float noise of the sum away, so an unchanged total compares equal.
    return {symbol: round(total, 8) for symbol, total in totals.items()}


def accruals_due(
    totals: Mapping[str, float], reported: Mapping[str, float], symbols: Iterable[str]
) -> dict[str, float]:
    """The swap totals to report as ``Accrual``s: each symbol (the bot's ``symbols`` and those
    of ``totals``) whose total — 0 when no position of it is open — differs from the one
    ``reported`` last. ``reported``: absent is 0, what a bot starts from; NaN is unknown (a
    deal booked part of it since, which the bot took out of its accrual), so it is reported
    whatever it is."""
    due: dict[str, float] = {}
    for symbol in dict.fromkeys([*symbols, *totals]):
        total = totals.get(symbol, 0.0)
        if reported.get(symbol, 0.0) != total:  # NaN differs from everything
            due[symbol] = total
    return due


def order_reports(
    orders: Iterable[Any],
    resolve: Resolver,
    symbol_of: Callable[[str], str],
    units: Units,
    parent_of: ParentOf | None = None,
) -> list[OrderReport]:
    """MT5 orders (live and history) -> one report per client order id: the legs of one order
    (hedging closes by ticket) are summed. ``parent_of``: the order the terminal made when a
    position's SL/TP fired (comment ``[sl 1.09500]``, reason SL/TP) is reported as that
    bracket child's (``<parent>-sl``/``-tp``), the parent being the order that opened the
    position.

    An order of several legs is reported for what its legs filled plus what is left of it: of
    the legs still working at the terminal (then at the resting leg's price and type), else of
    its last leg. A leg's rest can go on as a later leg (a limit's deal that filled in part,
    a resting order moved through the market: cancelled, its rest sent again): summed whole,
    that rest would count twice, and a restart adopt the order for more than the bot asked.

    A cancelled leg counts no fills, except one a netting cut removed (``_cut_legs``: a
    later leg carries its very comment): what it filled before the cut is the order's, and
    in its quantity, as the running bot booked it."""
    orders = list(orders)
    cut = _cut_legs(orders)
    merged: dict[str, OrderReport] = {}
    notional: dict[str, float] = {}
    resting: dict[str, float] = {}  # what the working legs of each order have left
    last: dict[str, tuple[int, float]] = {}  # each order's newest leg: (ticket, what it left)
    legs: dict[str, int] = {}
    for order in orders:
        client_id = resolve(str(order.comment))
        if client_id is None and parent_of is not None:
            role = child_role(int(getattr(order, "reason", -1)))
            parent = parent_of(int(order.position_id)) if role is not None else None
            client_id = child_order_id(parent, role) if parent and role else None
        if client_id is None:
            continue
        otype = int(order.type)
        venue_symbol = str(order.symbol)
        initial = units(venue_symbol, float(order.volume_initial))
        state = int(order.state)
        filled = (
            initial - units(venue_symbol, float(order.volume_current))
            if state != ORDER_STATE_CANCELED or int(order.ticket) in cut
            else 0.0
        )
        if state in (ORDER_STATE_FILLED,):
            filled = initial
        status = _STATES.get(state, OrderStatus.OPEN)
        order_type = _TYPES.get(otype, OrderType.MARKET)
        price = float(order.price_open) if order_type is not OrderType.MARKET else None
        fill_price = float(order.price_current) or float(order.price_open)
        ts = int(order.time_done) or int(order.time_setup)
        report = OrderReport(
            client_order_id=client_id,
            venue_order_id=str(order.ticket),
            symbol=symbol_of(venue_symbol),
            side=Side.BUY if otype in _BUY_TYPES else Side.SELL,
            order_type=order_type,
            quantity=initial,
            filled_quantity=filled,
            status=status,
            ts=ts,
            price=price,
            average_price=fill_price if filled else None,
        )
        live = _rests(order)
        left = max(initial - filled, 0.0)
        if live:
            resting[client_id] = resting.get(client_id, 0.0) + left
        legs[client_id] = legs.get(client_id, 0) + 1
        if int(order.ticket) >= last.get(client_id, (-1, 0.0))[0]:
            last[client_id] = (int(order.ticket), left)
        before = merged.get(client_id)
        if before is None:
            merged[client_id] = report
            notional[client_id] = filled * fill_price
            continue
        # Another leg of the same order: quantities add up; working if any leg works.
        total_filled = before.filled_quantity + filled
        notional[client_id] += filled * fill_price
        working = live or OrderStatus.OPEN in (before.status, status)
        merged[client_id] = before._replace(
            venue_order_id=f"{before.venue_order_id},{order.ticket}",
            quantity=before.quantity + initial,
            filled_quantity=total_filled,
            status=OrderStatus.OPEN
            if working
            else (before.status if before.status is status else OrderStatus.FILLED),
            ts=max(before.ts, ts),
            average_price=notional[client_id] / total_filled if total_filled else None,
            order_type=order_type if live else before.order_type,
            price=price if live else before.price,
        )
    for client_id, report in merged.items():
        if legs[client_id] > 1 or client_id in resting:
            left = resting[client_id] if client_id in resting else last[client_id][1]
            merged[client_id] = report._replace(quantity=round(report.filled_quantity + left, 8))
    return list(merged.values())


def _cut_legs(orders: Sequence[Any]) -> set[int]:
    """The tickets of ``orders`` (live and history) a netting cut removed: cancelled, with a
    later ticket under the very same comment — a cut re-places an exit under its own comment
    (``_replacement_request`` in mt5_broker), where any other new request of an order carries
    a new leg's (``next_leg``) and a lost one is looked up, never sent again beside it."""
    newest: dict[str, int] = {}
    for order in orders:
        comment = str(order.comment)
        newest[comment] = max(newest.get(comment, 0), int(order.ticket))
    return {
        int(order.ticket)
        for order in orders
        if int(order.state) == ORDER_STATE_CANCELED
        and int(order.ticket) < newest[str(order.comment)]
    }


def _rests(order: Any) -> bool:
    """Whether a terminal's order record is one still working (``orders_get``'s: not done)."""
    state = int(order.state)
    return int(order.time_done) == 0 and state not in _ENDED


def position_reports(
    positions: Iterable[Any], symbol_of: Callable[[str], str], ts: int, units: Units
) -> list[PositionReport]:
    """MT5 positions (hedging: several per symbol) -> one net position per symbol, in units."""
    quantity: dict[str, float] = {}
    notional: dict[str, float] = {}
    for position in positions:
        symbol = symbol_of(str(position.symbol))
        sign = 1.0 if int(position.type) == POSITION_TYPE_BUY else -1.0
        held = sign * units(str(position.symbol), float(position.volume))
        quantity[symbol] = quantity.get(symbol, 0.0) + held
        notional[symbol] = notional.get(symbol, 0.0) + held * float(position.price_open)
    reports = []
    for symbol, net in quantity.items():
        if abs(net) < 1e-12:
            continue
        reports.append(PositionReport(symbol, round(net, 8), notional[symbol] / net, ts))
    return reports


def child_report(
    position: Any,
    client_order_id: str,
    role: str,
    symbol: str,
    ts: int,
    units: Units,
    lots: float | None = None,
) -> OrderReport | None:
    """A bracket child that is still working: the SL (``role`` ``sl``, a stop) or TP (``tp``,
    a limit) of the ``position`` its parent opened, closing all of it on the other side. MT5
    keeps them as the position's attributes, not orders: the position ticket is the venue id.
    ``lots``: the part of the position that is its entry's (a netting position several entries
    added to, ``entry_child_reports``); None, all of it. None when the position carries no
    such level any more."""
    price = float(position.sl if role == "sl" else position.tp)
    if price <= 0.0:
        return None
    volume = float(position.volume) if lots is None else min(lots, float(position.volume))
    return OrderReport(
        client_order_id=client_order_id,
        venue_order_id=str(position.ticket),
        symbol=symbol,
        side=Side.SELL if int(position.type) == POSITION_TYPE_BUY else Side.BUY,
        order_type=OrderType.STOP if role == "sl" else OrderType.LIMIT,
        quantity=units(str(position.symbol), volume),
        filled_quantity=0.0,
        status=OrderStatus.OPEN,
        ts=ts,
        price=price,
        reduce_only=True,
    )


def entry_tickets(positions: Iterable[Any], parent: str, parent_of: ParentOf) -> list[Any]:
    """The open positions of a hedging account that entry ``parent``'s requests opened, oldest
    first (``positions``: the bot's, ``positions_get``'s). Usually one; one entry sent in
    several requests opens a ticket with each (a limit's deal that filled in part and its rest
    sent as ``<id>#1``, the rest of a resting order moved through the market): every one of
    them is the entry's, carries its SL/TP, and is protected by its bracket children."""
    found = [p for p in positions if parent_of(int(p.ticket)) == parent]
    return sorted(found, key=lambda p: (int(getattr(p, "time_msc", 0)), int(p.ticket)))


class TicketLevels(NamedTuple):
    """How the tickets of one hedging entry hold one level of its bracket (``ticket_levels``):
    the level its child is at (0: no ticket holds any), the tickets at it — the child's, what
    it closes —, and the entry's other tickets: without the level, or holding another one (a
    person changed that ticket's line alone in the terminal), outside the bot's child. Each
    oldest first."""

    level: float
    at: tuple[Any, ...]
    off: tuple[Any, ...]


def ticket_levels(
    positions: Sequence[Any],
    role: str,
    booked: float | None,
    half: float = 0.0,
    outside: Collection[int] = (),
) -> TicketLevels:
    """How ``positions`` (one hedging entry's tickets, ``entry_tickets``: oldest first) hold
    its ``role`` level (``sl``, ``tp``), given ``booked``, the price the bot books the child at
    (None: not known — a restarted broker). The child stays at the bot's level while a ticket
    holds it (within ``half`` a tick), and is the tickets at it: a person moving or removing
    one ticket's line changes that ticket alone, and the bot's stop is not moved for the
    others. When none holds it any more (moved on every ticket, or nothing booked) the child
    is at the level of the oldest ticket holding one, and is the tickets at that one — a
    ticket in ``outside`` (found outside the child before: a person's own level) is never that
    one: the child does not take a person's level over; with no other holding one, no ticket
    holds the child (level 0). One of them set back at the bot's level is the child's again."""
    held = [p for p in positions if float(getattr(p, role)) > 0.0]
    at = [] if booked is None else _at_level(held, role, booked, half)
    if not at:
        own = [p for p in held if int(p.ticket) not in outside]
        at = _at_level(held, role, float(getattr(own[0], role)), half) if own else []
    if not at:
        return TicketLevels(0.0, (), tuple(positions))
    chosen = {int(p.ticket) for p in at}
    off = tuple(p for p in positions if int(p.ticket) not in chosen)
    return TicketLevels(float(getattr(at[0], role)), tuple(at), off)


def _at_level(positions: Sequence[Any], role: str, level: float, half: float) -> list[Any]:
    """The ``positions`` holding ``role`` at ``level`` (within ``half`` a tick; the terminal's
    own floats for one price otherwise)."""
    room = max(half, _EPS * max(abs(level), 1.0))
    return [p for p in positions if abs(float(getattr(p, role)) - level) <= room]


def ticket_child_reports(
    positions: Sequence[Any],
    parent: str,
    symbol: str,
    ts: int,
    units: Units,
    half: float = 0.0,
    booked: Mapping[str, float] | None = None,
    outside: Mapping[str, Collection[int]] | None = None,
) -> list[OrderReport]:
    """The working SL/TP children of hedging entry ``parent`` whose tickets are ``positions``
    (``entry_tickets``, oldest first): one report per level — not one per ticket, which would
    report the same child id several times, each for one ticket's part — for the volume of
    the tickets at that level (``ticket_levels``, within ``half`` a tick; a ticket at another
    level is outside the bot's child, as the running broker says it), its venue id those
    tickets (``7001,7002``). The level is the one the bot holds for the child (``booked``, by
    role: the journal's, at a restart) while a ticket holds it, else the oldest ticket's
    holding one — never one in ``outside`` (by role: tickets set apart from the child). A
    level no ticket holds is no child."""
    reports = []
    for role in ("sl", "tp"):
        levels = ticket_levels(
            positions,
            role,
            (booked or {}).get(role),
            half,
            (outside or {}).get(role, ()),
        )
        if not levels.at:
            continue
        first = levels.at[0]
        report = child_report(first, child_order_id(parent, role), role, symbol, ts, units)
        if report is None:
            continue
        lots = round(sum(float(p.volume) for p in levels.at), 8)
        reports.append(
            report._replace(
                venue_order_id=",".join(str(int(p.ticket)) for p in levels.at),
                quantity=units(str(first.symbol), lots),
            )
        )
    return reports


def restart_apart(
    positions: Sequence[Any],
    role: str,
    booked: float | None,
    fired: Mapping[int, tuple[float, float]],
    half: float = 0.0,
    *,
    journaled: float = 0.0,
    opened: Mapping[int, float] | None = None,
) -> frozenset[int]:
    """At a restart, the tickets of a hedging entry (``positions``: those open, volumes in
    lots) set apart from its ``role`` child, as the running bot had them or would set them:
    the ones at another level than ``booked`` (the level the bot holds for the child: the
    journal's). While a ticket still holds ``booked``, every ticket at another level is apart
    (the running bot's rule: the child stays where one of its tickets holds it). When none
    does, ``journaled`` (the child's quantity in the journal, in lots: what its tickets held
    when the bot last looked) tells: the tickets that closed on the line at ``booked``
    (``fired``: ticket -> (level, lots)) account for it whole — the tickets at another level
    were set apart by the running bot, and stay apart —, or they do not, and the child follows
    the tickets left (a line moved while the bot was down, on every ticket still open: the
    running bot's child follows it too). Nothing booked: nothing apart."""
    if booked is None or booked <= 0.0:
        return frozenset()
    room = max(half, _EPS * max(abs(booked), 1.0))
    other = frozenset(
        int(p.ticket) for p in positions if abs(float(getattr(p, role)) - booked) > room
    )
    if len(other) < len(positions):
        return other  # a ticket holds the child's level
    if not journal_child_whole(
        positions, role, booked, fired, half, journaled=journaled, opened=opened
    ):
        return frozenset()  # the child still wants tickets: it follows them
    return other


def journal_child_whole(
    positions: Sequence[Any],
    role: str,
    booked: float,
    fired: Mapping[int, tuple[float, float]],
    half: float = 0.0,
    *,
    journaled: float,
    opened: Mapping[int, float] | None = None,
) -> bool:
    """Whether the tickets of a hedging entry at ``booked`` (the level the journal holds its
    ``role`` child at) — open (``positions``, volumes in lots) or closed on the line at it
    (``fired``: ticket -> (level, lots)) — account for the whole child the journal holds
    (``journaled``, in lots): the running bot had cut the child to them, any ticket at
    another level set apart. False when none is there (nothing tells the child's quantity
    was theirs) or they hold less (the child was wider: its line moved on the others).
    ``opened``: each ticket's volume when it opened (ticket -> lots), which a ticket counts
    for when it is more than what it holds or closed on the line: a person may have closed
    part of it by hand while the bot was down, which leaves the child no wider."""
    room = max(half, _EPS * max(abs(booked), 1.0))
    first = opened or {}
    at = {
        int(p.ticket): float(p.volume)
        for p in positions
        if abs(float(getattr(p, role)) - booked) <= room
    }
    # A ticket counted once: open at the level, or closed on the line at it.
    at.update({t: n for t, (was, n) in fired.items() if t not in at and abs(was - booked) <= room})
    there = sum(max(lots, first.get(ticket, 0.0)) for ticket, lots in at.items())
    return there > 0.0 and there + _EPS >= journaled


def opened_lots(deals: Iterable[Any]) -> dict[int, float]:
    """Each position's volume when it opened (position ticket -> lots): the sum of the deals
    that opened it (entry in: their ``volume``), among ``deals`` — one order filled in parts
    opens one hedging position through several such deals, each under its ``position_id``.
    A position whose opening deals ``deals`` do not hold is absent (pure)."""
    opened: dict[int, float] = {}
    for deal in deals:
        if int(getattr(deal, "entry", -1)) == _DEAL_ENTRY_IN:
            position_id = int(deal.position_id)
            opened[position_id] = opened.get(position_id, 0.0) + float(deal.volume)
    return opened


def restart_fired_outside(
    ticket: int,
    role: str,
    level: float | None,
    open_tickets: Sequence[Any],
    half: float = 0.0,
    *,
    fired: Mapping[int, tuple[float, float]],
    booked: float | None,
    journaled: float = 0.0,
    opened: Mapping[int, float] | None = None,
) -> bool:
    """At a restart, whether hedging ticket ``ticket``, closed by its own ``role`` line at
    ``level`` (``fired_level``) while the bot was down, was outside its entry's child
    (``fired_outside``), given ``booked`` and ``journaled``: the level and quantity (lots) the
    journal holds for the child (None, 0: not told). ``open_tickets``: the entry's tickets
    still open (volumes in lots); ``fired``: those closed on their ``role`` line, ticket ->
    (level, lots). A close at ``booked`` is the child's fill (its own line fired, whatever a
    ticket set apart holds). One at another level is outside when the tickets at ``booked``
    account for the journal's whole child (``journal_child_whole``, the quantity rule
    ``restart_apart`` sets tickets apart by): the running bot had cut the child to them, the
    closed ticket set apart. Otherwise it is judged by the oldest ticket's level, as a restart
    not told the journal's: the journal's level may be newer than the close (the running bot
    booked the close, then the child followed a line a person moved on the ticket left)."""
    if level is None:
        return False
    levels = {t: at for t, (at, _lots) in fired.items()}
    if booked is not None and booked > 0.0:
        if abs(level - booked) <= max(half, _EPS * max(abs(booked), 1.0)):
            return False
        if journal_child_whole(
            open_tickets, role, booked, fired, half, journaled=journaled, opened=opened
        ):
            return True
    return fired_outside(ticket, role, level, open_tickets, half, fired=levels)


def with_fired_part(working: OrderReport, fired: OrderReport | None) -> OrderReport:
    """A hedging split entry's child (``working``: at the volume of the tickets still holding
    its level, ``ticket_child_reports``) whose level closed some of the entry's other tickets
    before (``fired``: the terminal's closes, reported under the child's id by
    ``order_reports``): one report of the child the bot booked — filled in part by those
    closes, working on for the rest — as the running bot has it, not a child for the open
    tickets alone (which reconciliation took as the journal's child shrunk, and the closes'
    fills as its sibling's end). ``working`` as it is when nothing of it filled."""
    if fired is None or fired.client_order_id != working.client_order_id:
        return working
    filled = fired.filled_quantity
    if filled <= _EPS:
        return working
    return working._replace(
        quantity=round(filled + working.quantity, 8),
        filled_quantity=filled,
        status=OrderStatus.PARTIALLY_FILLED,
        average_price=fired.average_price,
    )


# The level an SL/TP close fired at, in the comment the terminal gives its order and deal.
_FIRED_AT = re.compile(r"\[(sl|tp)\s+([0-9]+(?:\.[0-9]*)?)\]", re.IGNORECASE)


def fired_level(comment: str, role: str) -> float | None:
    """The level a position's ``role`` (``sl``, ``tp``) close fired at, as the terminal writes
    it in the comment of the order and the deal it made (``[sl 1.09700]``): that ticket's own
    level then. None when the comment names none (a server that writes another)."""
    found = _FIRED_AT.search(comment)
    if found is None or found.group(1).lower() != role:
        return None
    level = float(found.group(2))
    return level if level > 0.0 else None


def fired_outside(
    ticket: int,
    role: str,
    level: float | None,
    open_tickets: Sequence[Any],
    half: float = 0.0,
    *,
    fired: Mapping[int, float] | None = None,
    booked: float | None = None,
    outside: Collection[int] = (),
) -> bool:
    """Whether hedging ticket ``ticket``, closed by its own ``role`` line at ``level``
    (``fired_level``), was outside its entry's child when it fired: a line a person set apart
    on it fired, which is booked as a change made outside the bot, never as the child's fill.

    What tells the child's level is the entry's other tickets — ``open_tickets`` (those still
    open, ``entry_tickets``: the level each holds) and ``fired`` (those closed by their own
    ``role`` line, by ticket: the level each fired at) —, never one in ``outside`` (found
    outside the child before: a person's own level says nothing of the bot's). With ``booked``
    (the level the running bot holds for the child) the close is outside when another ticket
    holds or fired at ``booked`` and ``level`` is another (beyond ``half`` a tick); a ticket
    in ``outside`` is outside. Without it (a restart: the child is the tickets at the oldest
    ticket's level, ``ticket_levels``), when the oldest of the others — older than ``ticket``,
    the terminal numbering tickets as it opens them — is at another level. False when nothing
    tells: no level in the comment, no other ticket at the child's level (the closed ticket
    was the child's last, or its oldest: its level was the child's, a move by hand the child
    follows)."""
    if level is None:
        return False
    if ticket in outside:
        return True
    tolerance = max(half, _EPS * max(abs(level), 1.0))
    others = [
        (int(p.ticket), float(getattr(p, role)))
        for p in open_tickets
        if int(p.ticket) != ticket and float(getattr(p, role)) > 0.0
    ]
    still = {int(p.ticket) for p in open_tickets}
    others += [(t, at) for t, at in (fired or {}).items() if t != ticket and t not in still]
    others = [(t, at) for t, at in others if t not in outside and at > 0.0]
    if booked is not None and booked > 0.0:
        child_there = any(abs(at - booked) <= tolerance for _t, at in others)
        return child_there and abs(level - booked) > tolerance
    if not others:
        return False
    oldest, at = min(others)
    return oldest < ticket and abs(at - level) > tolerance


class Entry(NamedTuple):
    """One of the bot's orders whose fills make up a position (``position_entries``): its
    client order id, the lots it added, and the levels (``sl``, ``tp``) its own request
    carried (``entry_levels``; empty until read)."""

    client_order_id: str
    lots: float
    levels: frozenset[str] = frozenset()


def position_entries(deals: Iterable[Any], resolve: Resolver) -> list[Entry]:
    """The bot's orders whose fills make up a position, oldest first, from the position's
    deals (``history_deals_get(position=…)``): on a hedging account the one order that opened
    it; on a netting account also every order that added to it — the symbol's one position
    keeps the id of the first, and its SL/TP hold for all of them. From the last reversal on
    (an INOUT deal: that order, for what the position holds past it); for a position since
    closed, those it held when it closed. A deal whose comment is no order of the bot's adds
    no entry."""
    added: dict[str, float] = {}
    held = 0.0  # signed lots before each deal
    for deal in sorted(deals, key=lambda d: int(d.ticket)):
        kind = int(deal.type)
        if kind not in (DEAL_TYPE_BUY, DEAL_TYPE_SELL):
            continue
        volume = float(deal.volume)
        after = round(held + (volume if kind == DEAL_TYPE_BUY else -volume), 8)
        entry = int(deal.entry)
        lots = 0.0
        if entry == DEAL_ENTRY_INOUT:
            added, lots = {}, abs(after)  # what was held before is closed by it
        elif entry == DEAL_ENTRY_IN:
            if abs(held) < _EPS:
                added = {}  # a position opened again under the same id holds none of before
            lots = volume
        held = after
        client_id = resolve(str(deal.comment)) if lots > _EPS else None
        if client_id is not None:
            added[client_id] = round(added.get(client_id, 0.0) + lots, 8)
    return [Entry(client_id, lots) for client_id, lots in added.items()]


def entry_levels(orders: Iterable[Any], resolve: Resolver) -> dict[str, frozenset[str]]:
    """The SL/TP each of the bot's orders asked for (``sl``/``tp``: a non-zero ``sl``/``tp``
    on the terminal's record of it), by client order id, from a position's orders
    (``history_orders_get(position=…)``)."""
    levels: dict[str, frozenset[str]] = {}
    for order in orders:
        client_id = resolve(str(order.comment))
        if client_id is None:
            continue
        asked = {role for role in ("sl", "tp") if float(getattr(order, role, 0.0) or 0.0) > 0}
        levels[client_id] = levels.get(client_id, frozenset()) | asked
    return levels


def entry_child_reports(
    position: Any, shares: Mapping[str, Sequence[ChildShare]], symbol: str, ts: int, units: Units
) -> list[OrderReport]:
    """The working SL/TP children of ``position``, each the position's SL or TP (one of each
    for the whole position) reported at the part of it that child closes (``shares``, by
    role: ``bracket_shares`` on a netting position several entries added to), as the bot
    books them — not the whole position each, which would count the position's stop several
    times. Entry by entry, oldest first (the order the bot placed them in); a level the
    position does not hold is no child."""
    by_id = {share.client_order_id: (role, share) for role in shares for share in shares[role]}
    parents = dict.fromkeys(share.parent for role in ("sl", "tp") for share in shares.get(role, ()))
    reports = []
    for parent in parents:
        for role in ("sl", "tp"):
            found = by_id.get(child_order_id(parent, role))
            if found is None:
                continue
            report = child_report(
                position, found[1].client_order_id, role, symbol, ts, units, found[1].lots
            )
            if report is not None:
                reports.append(report)
    return reports


def cut_child_report(
    position: Any, client_order_id: str, role: str, symbol: str, ts: int
) -> OrderReport:
    """A bracket child of an open netting ``position`` that its reduces cut to nothing
    (``BracketShares.gone``): the bot cancelled it then, and a bot down at the time learns it
    from this report, closed at the venue — not sent again for a position its other
    children protect whole."""
    return OrderReport(
        client_order_id=client_order_id,
        venue_order_id=str(position.ticket),
        symbol=symbol,
        side=Side.SELL if int(position.type) == POSITION_TYPE_BUY else Side.BUY,
        order_type=OrderType.STOP if role == "sl" else OrderType.LIMIT,
        quantity=0.0,
        filled_quantity=0.0,
        status=OrderStatus.CANCELLED,
        ts=ts,
        reduce_only=True,
    )


class ChildShare(NamedTuple):
    """The part of a netting position one working bracket child closes (``bracket_shares``):
    the child's client order id, its entry's, and the lots."""

    client_order_id: str
    parent: str
    lots: float


class BracketShares(NamedTuple):
    """``bracket_shares``' answer: the working children by role (``sl``, ``tp``), oldest
    first, and the ids of those cut to nothing since the position (re)opened."""

    working: dict[str, list[ChildShare]]
    gone: frozenset[str]


def bracket_shares(
    deals: Iterable[Any],
    resolve: Resolver,
    levels: Mapping[str, frozenset[str]],
    opener_levels: frozenset[str],
) -> BracketShares:
    """The bot's working bracket children on a netting position and the lots each closes, by
    role (``sl``, ``tp``), oldest first, from the position's deals
    (``history_deals_get(position=…)``, every magic's) — the bot's own rule replayed
    (``tradefleet_runtime.engine.order_book.children_over_position``), so that a restarted bot
    finds the children the running one worked: an entry's children grow by what its deals
    add; a deal that leaves the position smaller (a reduce, a close by hand) cuts each role's
    children to what it holds, oldest first, and a child cut to nothing is gone for good (the
    bot cancelled it). The terminal's one SL/TP closes the whole position either way: the
    parts are the bot's count of it, which its risk rules read. ``levels``: the levels each
    entry's own request carried (``entry_levels``); ``opener_levels``: those of the entry
    that opened the position (the levels the position holds: a stop set on it later is that
    entry's child). From the last reversal or re-opening on, as ``position_entries``."""
    shares: dict[str, dict[str, ChildShare]] = {"sl": {}, "tp": {}}
    gone: set[str] = set()
    held = 0.0  # signed lots after each deal
    for deal in sorted(deals, key=lambda d: int(d.ticket)):
        kind = int(deal.type)
        if kind not in (DEAL_TYPE_BUY, DEAL_TYPE_SELL):
            continue
        volume = float(deal.volume)
        after = round(held + (volume if kind == DEAL_TYPE_BUY else -volume), 8)
        entry = int(deal.entry)
        opens = entry == DEAL_ENTRY_INOUT or (entry == DEAL_ENTRY_IN and abs(held) < _EPS)
        lots = 0.0  # what the deal adds to the position
        if entry == DEAL_ENTRY_INOUT:
            lots = abs(after)
        elif entry == DEAL_ENTRY_IN:
            lots = volume
        if opens:
            shares = {"sl": {}, "tp": {}}  # what was held before is closed
            gone = set()
        held = after
        client_id = resolve(str(deal.comment)) if lots > _EPS else None
        if client_id is not None:
            roles = levels.get(client_id, frozenset()) | (opener_levels if opens else frozenset())
            for role in ("sl", "tp"):
                child_id = child_order_id(client_id, role)
                if role not in roles or child_id in gone:
                    continue
                share = shares[role].get(child_id)
                total = round(lots + (share.lots if share is not None else 0.0), 8)
                shares[role][child_id] = ChildShare(child_id, client_id, total)
        for children in shares.values():
            gone.update(_cut_oldest_first(children, abs(held)))
    working = {role: list(children.values()) for role, children in shares.items()}
    return BracketShares(working, frozenset(gone))


def _cut_oldest_first(children: dict[str, ChildShare], room: float) -> list[str]:
    """Cut ``children`` (oldest first) to close no more than ``room`` lots together, as the
    engine cuts a position's children (``children_over_position``); returns those cut to
    nothing, which leave ``children``."""
    excess = round(sum(share.lots for share in children.values()) - room, 8)
    ended = []
    for child_id, share in list(children.items()):
        if excess <= _EPS:
            break
        take = min(share.lots, excess)
        excess = round(excess - take, 8)
        left = round(share.lots - take, 8)
        if left <= _EPS:
            del children[child_id]
            ended.append(child_id)
        else:
            children[child_id] = share._replace(lots=left)
    return ended


def split_close(shares: Sequence[ChildShare], lots: float) -> list[tuple[str, float]]:
    """A deal of ``lots`` that closed a netting position on its SL (or TP), as fills of the
    children that level was (``bracket_shares`` of that role, before the deal): each its own
    part, oldest first; what no child held (an entry sent without SL/TP is protected by the
    position's all the same) goes to the oldest child, so the parts add up to the deal."""
    parts: list[tuple[str, float]] = []
    left = lots
    for share in shares:
        part = min(share.lots, left)
        if part <= _EPS:
            break
        parts.append((share.client_order_id, part))
        left = round(left - part, 8)
    if parts and left > _EPS:
        first, part = parts[0]
        parts[0] = (first, round(part + left, 8))
    return parts


def ended_children(
    closer: Any, entries: Sequence[str], filled: Collection[str], symbol: str, units: Units
) -> list[OrderReport]:
    """The bracket children a position's SL/TP ended when it fired: ``closer`` the order the
    terminal made then (reason SL/TP, comment ``[sl 1.09500]``), ``entries`` the bot's orders
    that made up the position (``position_entries``), ``filled`` the children the close is
    reported as (``split_close``). Every other child of those entries — the fired level's
    siblings, and on a netting account the children of the entries that added to the position
    — is reported cancelled at the venue, as the running broker cancels them when it sees the
    close: MT5 held them on the position until it closed, so they did reach the venue. (An
    entry's child it never had is reported too: it matches no order the bot works, and
    nothing is done.)"""
    side = Side.BUY if int(closer.type) in _BUY_TYPES else Side.SELL
    ts = int(closer.time_done) or int(closer.time_setup)
    quantity = units(str(closer.symbol), float(closer.volume_initial))
    reports = []
    for entry in entries:
        for role in ("sl", "tp"):
            child_id = child_order_id(entry, role)
            if child_id in filled:
                continue
            reports.append(
                OrderReport(
                    client_order_id=child_id,
                    venue_order_id=str(int(closer.position_id)),
                    symbol=symbol,
                    side=side,
                    order_type=OrderType.STOP if role == "sl" else OrderType.LIMIT,
                    quantity=quantity,
                    filled_quantity=0.0,
                    status=OrderStatus.CANCELLED,
                    ts=ts,
                    reduce_only=True,
                )
            )
    return reports


def ours(items: Sequence[Any] | None, magic: int) -> list[Any]:
    """The records stamped with the bot's magic number (None: none)."""
    return [item for item in items or () if int(item.magic) == magic]


__all__ = [
    "BracketShares",
    "ChildShare",
    "Entry",
    "TicketLevels",
    "accruals_due",
    "bracket_shares",
    "child_report",
    "child_role",
    "cut_child_report",
    "deal_charges",
    "deal_client_id",
    "deal_credit",
    "ended_children",
    "entry_child_reports",
    "entry_levels",
    "entry_tickets",
    "fill_from_deal",
    "fired_level",
    "fired_outside",
    "order_reports",
    "ours",
    "position_entries",
    "position_reports",
    "position_swaps",
    "split_close",
    "swap_flow",
    "ticket_child_reports",
    "ticket_levels",
    "with_fired_part",
]
