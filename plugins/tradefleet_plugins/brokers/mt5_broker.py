"""The MetaTrader 5 broker: orders to a terminal, on the broker contract for real venues.

Threads. Every terminal call runs on the broker's own I/O thread (the terminal serves one
caller at a time, and its calls take network time): ``submit``/``cancel``/``amend`` queue a
job and return at once (PENDING / None); the answers come back as events through
``drain_events``, and ``BrokerContext.wake`` tells the runtime there are some. The queries
(``query_order``, reports, ``instrument``) queue a job and wait for it: they are for start-up
reconciliation, never the per-bar path.

One order of the bot -> one MT5 request, except on a hedging account, where an order against
the bot's open positions closes them by ticket (oldest first) before the rest opens a new
one: each request is a *leg* with its own comment (``<id>``, ``<id>#1``, ...). Every request
carries the bot's magic number and the client order id in its comment, so the bot finds its
orders again after a restart, and so an order in doubt is looked up before anything is sent
again. What each retcode does is ``mt5_retcodes``; what a request holds is ``mt5_requests``.

Quantities. The runtime counts in units (euros of EURUSD, ounces of XAUUSD), the same in
backtest, paper and live, and books quantity × price move as profit; the terminal counts in
lots. This broker converts at its boundary and nowhere else: an order's quantity / the symbol's
units per lot is the request's volume (rounded down to the volume step), and every volume read
back (deals, orders, positions) × units per lot is a quantity (``mt5_requests.to_lots``/
``to_units``). Units per lot are what makes the runtime's profit the terminal's: the contract
size where the symbol's calc mode pays price move × contract size (Forex, CFD, stocks), tick
value / tick size where it pays by the tick (futures); any other calc mode is refused at start
(``mt5_requests.calc_mode_problem``). The ``Instrument`` it reports has its lot step and limits
in units too, and units per lot as its contract size. Profit is booked by the runtime in the
account's currency as if it were the symbol's profit currency, so a bot symbol whose profit
currency is not the account's is refused at start (no conversion yet).

SL/TP are position attributes (sent with the entry, changed with TRADE_ACTION_SLTP): the
engine's bracket children ``<id>-sl``/``<id>-tp`` are those attributes. When the terminal
closes a position on its SL or TP, the broker reports the fill as the child's and cancels the
sibling; cancelling or amending a child clears or moves the attribute. On a hedging account
one entry sent in several requests (a limit's deal filled in part and its rest as ``<id>#1``)
opens a ticket with each, all carrying its SL/TP: its children are the levels of every one of
them (moved, cleared, set again and reported after a restart over all), and go on while any of
them is open (``_split_entry_goes_on``).

Swaps. The terminal charges a position's swap at each rollover and books it on the deal that
closes it: that deal's swap is a ``CashFlow`` (kind ``swap``, ``reports-cash-flows``) reported
just before its fill. Until then the swap is in the terminal's equity, not its balance: at
every read of the bot's positions (at start, then each poll) the swap of the bot's positions
is summed per symbol and reported as an ``Accrual`` when the total changed (0 once, when the
position is gone; ``reports-accruals``), so the bot's equity counts it as the terminal's does.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from tradefleet_plugins.brokers import mt5_requests as rq
from tradefleet_plugins.brokers.mt5_link import (
    Link,
    ServerClock,
    TerminalLost,
    load_bridge,
    load_terminal,
    read_credentials,
    zone_floor,
)
from tradefleet_plugins.brokers.mt5_params import Mt5BrokerParams, SymbolMap, magic_number
from tradefleet_plugins.brokers.mt5_reports import (
    BracketShares,
    ChildShare,
    Entry,
    TicketLevels,
    accruals_due,
    bracket_shares,
    child_report,
    child_role,
    cut_child_report,
    deal_client_id,
    deal_credit,
    ended_children,
    entry_child_reports,
    entry_levels,
    entry_tickets,
    fill_from_deal,
    fired_level,
    fired_outside,
    opened_lots,
    order_reports,
    ours,
    position_entries,
    position_reports,
    position_swaps,
    restart_apart,
    restart_fired_outside,
    split_close,
    swap_flow,
    ticket_child_reports,
    ticket_levels,
    with_fired_part,
)
from tradefleet_plugins.brokers.mt5_retcodes import Action, verdict
from tradefleet_plugins.brokers.seen_ids import SeenIds
from tradefleet_runtime.sdk import (
    OUTSIDE_TAG,
    QUOTE_MAX_AGE_S,
    STOP_LOSS_TAG,
    Accrual,
    Bar,
    BrokerContext,
    CashFlow,
    Fill,
    Instrument,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PluginError,
    Position,
    PositionReport,
    ReasonCode,
    Side,
    bot_prefix,
    bracket_role,
    child_order_id,
    fill_reason,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Event = Fill | OrderUpdate | CashFlow | Accrual

_FAR = 2**31 - 1  # "until now" for history queries (server time, seconds)
_DAY = 86_400
_EPS = 1e-9
_QUERY_TIMEOUT_S = 60.0
# How often the poll looks at a tick for the server's zone (under ZONE_TOLERANCE_S, so two
# looks measure it).
_ZONE_LOOK_S = 60.0
_ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 2
# A first run's capital may exceed the account's equity by this much (rounding, a fee).
_CAPITAL_TOLERANCE = 0.005
_POSITION_TYPE_BUY = 0
_ORDER_STATE_FILLED = 4
_ORDER_STATE_PARTIAL = 3
_ORDER_STATE_PLACED = 1
_ORDER_STATE_STARTED = 0
_ORDER_STATE_CANCELED = 2
_ORDER_STATE_EXPIRED = 6
_RETCODE_DONE = 10009
# An amend of a cut exit while the cut is in doubt (``_Recut``, ``_recut_amend_refusal``):
# answered OPEN with this code (``_say_amend``), as an amend whose own outcome is unknown, so
# the engine keeps the exit; the words name the doubt that holds, one wording each.
# The removal of the old ticket answered other than DONE (``_Recut.removing``).
_RECUT_REMOVAL_AMEND_REFUSAL = (
    ReasonCode.UNKNOWN_OUTCOME,
    "the exit is being re-placed at the terminal (a cut: the removal of its old ticket is in "
    "doubt until the next poll looks it up); nothing was sent: it works as it was, ask again "
    "once settled",
)
# The old ticket removed, the reads sizing the new order failed (``_Recut.sized`` False).
_RECUT_UNSIZED_AMEND_REFUSAL = (
    ReasonCode.UNKNOWN_OUTCOME,
    "the exit is being re-placed at the terminal (a cut: its old ticket was removed and its "
    "new order is not sent yet; the next poll sizes and sends it); nothing was sent: it works "
    "as it was, ask again once settled",
)
# The new order's answer lost: it may rest, under a ticket not known yet.
_RECUT_AMEND_REFUSAL = (
    ReasonCode.UNKNOWN_OUTCOME,
    "the exit is being re-placed at the terminal (a cut: its new order is in doubt until "
    "the next poll looks it up); nothing was sent: it works as it was, ask again once settled",
)
_DEAL_ENTRY_IN = 0
_DEAL_ENTRY_OUT = 1
_DEAL_ENTRY_INOUT = 2
_DEAL_ENTRY_OUT_BY = 3
# Fills ``entries_reduced`` answers for that the engine has not asked about yet, at most.
_REDUCED_KEPT = 4096
_DEAL_TYPE_BUY = 0
_DEAL_TYPE_SELL = 1
# The MT5 order types the broker rests (limit and stop): the ones whose price can move.
_RESTING_TYPES = frozenset(
    {
        rq.ORDER_TYPE_BUY_LIMIT,
        rq.ORDER_TYPE_SELL_LIMIT,
        rq.ORDER_TYPE_BUY_STOP,
        rq.ORDER_TYPE_SELL_STOP,
    }
)


@dataclass
class _Job:
    run: Callable[[], Any]
    future: Future[Any] | None = None
    # What to tell the bot when the job can never run (the terminal refused the account).
    refuse: Callable[[PluginError], None] | None = None


@dataclass
class _Leg:
    volume: float  # lots, as the terminal counts (the order's quantity is in units)
    position: int = 0  # hedging: close this position by ticket
    doubt: bool = False  # a request went out and its outcome is not known yet
    sent_at: int = 0  # server time of the first attempt (the reconcile window)
    ticket: int = 0  # the MT5 order, once known
    executed: float = 0.0  # lots
    placed: bool = False
    unknown: int = 0
    carried: float = 0.0  # lots passed on to the next leg (a limit's deal filled in part)
    # A deal sent with ORDER_FILLING_RETURN that filled in part: the server keeps its rest
    # working as the same order (``ticket``), which the broker watches as a resting order.
    kept: bool = False


@dataclass
class _Submission:
    order: Order
    legs: list[_Leg] | None = None  # planned on the I/O thread, once
    next_leg: int = 0
    refusal: tuple[ReasonCode, str] | None = None
    acked: bool = False
    remainder_code: ReasonCode = ReasonCode.EXPIRED
    remainder_words: str = ""
    tickets: list[int] = field(default_factory=list)
    # The comment index of ``legs[0]`` (``<id>#k``): 0, but for the rest of a resting order
    # moved through the market, which goes on in its order's id family (``rq.next_leg``).
    first_leg: int = 0
    # The rest of a resting order moved through the market (``_move_through``): the price it
    # moved to. Its first answer is the amend's ("amended" at that price), and refused with
    # nothing sent it ends cancelled, not rejected: its resting order is gone.
    moved_to: float | None = None


@dataclass
class _Move:
    """An amend moving a resting order through the market (``_move_through``), kept until it
    is done: a lost terminal runs the amend again, which goes on from here — never cancelling
    twice, nor sending the rest twice."""

    ticket: int  # the resting order's
    order: Order  # the working order at its new price
    cancel_sent: bool = False
    rest: _Submission | None = None  # what is left of it to trade, once the cancel is settled


@dataclass
class _Recut:
    """A netting account's reduce-only exit cut by re-placing it (``_cut_reduce_only``): its
    ticket removed, a new pending order like it sent for what the position covers, with the
    same comment. Kept from the removal until that send's outcome is known (its answer lost,
    the terminal lost during it, or the reads sizing it failed): the next poll looks the
    comment up before anything is sent again (``_settle_recuts``), so one client order id
    never rests as two tickets, and the bot's requests on that id wait for it (a cancel is
    noted, an amend refused). Kept from the removal's own send too, when its answer was not
    DONE (``removing``): the ticket, no longer watched, is looked up at the next poll
    (``_settle_removal``) — resting, it is watched again; removed, the cut goes on; filled,
    its deals said so."""

    client_order_id: str
    symbol: str  # the terminal's name
    request: dict[str, Any]  # the new order, as sent (sent again only when it is found nowhere)
    # The ticket this cut removes. Its new order's ticket is above it, and every ticket the
    # exit had before (an earlier cut's) below: the look-up takes only a ticket above it.
    ticket: int
    was: float  # units the removed ticket had left when it was removed (its deals, once read)
    units: float  # units the new order closes
    said: str  # "cut from X to Y: position N holds Y against it"
    sent_at: int  # server time of the removal (the history look-up's window)
    initial: float = 0.0  # lots the removed ticket was placed for (its deals come off it)
    tries: int = 1
    unread: int = 0  # reads after the removal that failed (``_size_recut``)
    cancel: bool = False  # the bot cancelled it meanwhile: found resting, it is removed
    # False until the removed ticket's deals and the positions after the removal were read
    # (``_size_recut``): the new order is sized on them, never on the poll's earlier reads.
    sized: bool = True
    # The removed ticket's deals (deal ticket -> (server time, units)): those the poll has
    # not reported yet are still the engine's to book (``_recut_placed``).
    fills: dict[int, tuple[int, float]] = field(default_factory=dict)
    # True while the removal of ``ticket`` itself is in doubt (answered other than DONE): it
    # may still rest, or have filled.
    removing: bool = False


class Mt5Broker:
    """An MT5 account through a terminal (``terminal``: the module object, injected by tests
    and by the runtime; None: ``params.terminal`` is loaded at ``connect``)."""

    def __init__(
        self,
        params: Mt5BrokerParams,
        terminal: Any = None,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.params = params
        self._terminal = terminal
        self._sleep = sleep  # tests: waits that move the emulator's clock instead
        self._symbols = SymbolMap(params.symbols)
        self._magic = params.magic or 0
        self._prefix = ""  # the bot's client order id prefix (``bot_prefix``), at connect
        # The trade server's zone: server_offset_s until its ticks show it, then measured as the
        # data feed measures it (``ServerClock``), so a DST switch is followed (``_saw_tick``).
        self._offset = params.server_offset_s
        self._server = ServerClock(params.server_offset_s)
        self._next_zone_look = 0.0  # monotonic: when the poll looks at a tick for the zone
        self._stop = threading.Event()
        self._cv = threading.Condition()
        self._jobs: deque[_Job] = deque()
        self._thread: threading.Thread | None = None
        self._events: list[Event] = []
        self._events_lock = threading.Lock()
        self._wake: Callable[[], None] | None = None
        self._link: Link | None = None
        self._hedging = False
        self._currency = ""  # the account's, read at start: the currency of its swaps
        self._server_up = True
        # engine-thread caches (filled by the I/O thread, read under the lock)
        self._lock = threading.Lock()
        self._specs: dict[str, rq.SymbolSpec] = {}  # by the bot's symbol
        self._instruments: dict[str, Instrument] = {}
        self._known_ids: set[str] = set()
        self._known_comments: set[str] = set()
        self._working: dict[str, Order] = {}
        # Amends queued or running, by client order id: the poll leaves their orders' prices
        # to the amend's own answer (``_report_moved_pending``).
        self._amending: dict[str, int] = {}
        self._balance = 0.0
        self._leverage = 0.0  # the account's, read at start (0: not yet)
        self._positions: dict[str, Position] = {}
        # Hedging: the entry whose own position (ticket) each reported fill reduced or closed,
        # by fill id, until the engine asks (``entries_reduced``).
        self._reduced: dict[str, str] = {}
        # Hedging: what each SL/TP child closes (units: the tickets at its level) as the poll
        # last reported it changed; netting: what a reduce-only exit cut by re-placing it
        # closes now (``_recut_placed``) — until the engine asks (``child_held``).
        self._held: dict[str, float] = {}
        # I/O-thread state
        self._comment_ids: dict[str, str] = {}  # comment -> client order id
        self._tickets: dict[int, str] = {}  # resting MT5 orders we watch -> client order id
        self._moves: dict[str, _Move] = {}  # amends moving a resting order through the market
        # Netting: reduce-only exits cut by re-placing them whose new order is in doubt, by
        # client order id (``_Recut``).
        self._recuts: dict[str, _Recut] = {}
        # The price last reported (or booked at placement) for each watched resting order: the
        # poll reports the one the terminal holds when it differs. Absent after a restart: the
        # broker cannot know the journal's, so its first poll reports each once.
        self._booked: dict[str, float] = {}
        self._parents: dict[int, str] = {}  # position id -> id of the order that opened it
        self._children: dict[str, tuple[int, str]] = {}  # child id -> (position id, role)
        # The level (SL or TP price) last booked or reported for each child, and the side of
        # the position it closes: the poll reports the one the terminal holds when it differs
        # (``_report_changed_children``).
        self._child_levels: dict[str, _Booked] = {}
        # Hedging: the entries one of whose several tickets closed on its SL/TP while another
        # stayed open (``_split_entry_goes_on``), until their last one closes.
        self._split_fired: set[str] = set()
        # The orders the journal holds working, told by a restarted bot before start-up
        # reconciliation asks for reports (``restore_orders``): the level the bot holds for
        # each SL/TP child, which the terminal cannot tell once a person moved a ticket's line.
        self._journaled: dict[str, Order] = {}
        self._seen_deals: SeenIds[int] = SeenIds()  # by ticket, with the deal's server time
        self._bot_symbols: tuple[str, ...] = ()
        # The swap total last reported per bot symbol as an ``Accrual`` (absent: 0; NaN: the
        # bot's is unknown since a deal booked part of it): ``mt5_reports.accruals_due``.
        self._accruals_sent: dict[str, float] = {}
        self._poll_from = 0
        self._next_poll = 0.0
        self._server_now = 0
        self._fatal: PluginError | None = None  # the terminal refused the account: no retry

    # -- Broker protocol ---------------------------------------------------------------------

    def connect(self, ctx: BrokerContext) -> None:
        if self._terminal is None:
            self._terminal = (
                load_bridge(self.params, ctx.credentials_dir)
                if self.params.bridge_address is not None
                else load_terminal(self.params.terminal)
            )
        if not self._magic:
            self._magic = magic_number(ctx.identity_seed)
        self._prefix = bot_prefix(ctx.identity_seed)
        self._wake = ctx.wake
        # A connect that failed closed the broker; the runtime may call connect again (a
        # terminal that was unreachable at start): each try starts a new I/O thread.
        self._stop.clear()
        credentials = read_credentials(ctx.credentials_dir, self.params)
        self._link = Link(self._terminal, self.params, credentials, self._wait)
        self._thread = threading.Thread(target=self._run, name="mt5-broker", daemon=True)
        self._thread.start()
        try:
            self._ask(lambda: self._start(ctx), first=True)
        except BaseException:
            self.close()
            raise

    def instrument(self, symbol: str) -> Instrument:
        found = self._instruments.get(symbol)
        if found is None:
            spec = self._ask(lambda: self._spec(symbol))
            found = self._instrument_of(symbol, spec)
        return found

    def submit(self, order: Order) -> OrderUpdate:
        order_id = order.client_order_id
        with self._lock:
            duplicate = (
                order_id in self._known_ids or rq.comment_for(order_id) in self._known_comments
            )
            if not duplicate:
                self._known_ids.add(order_id)
                self._known_comments.add(rq.comment_for(order_id))
        if duplicate:
            return OrderUpdate(
                order_id,
                OrderStatus.REJECTED,
                order.created_ts,
                "duplicate client order id: this id was already sent to the terminal",
                code=ReasonCode.DUPLICATE_CLIENT_ID,
            )
        problem = self._local_problem(order)
        if problem is not None:
            return OrderUpdate(
                order_id, OrderStatus.REJECTED, order.created_ts, problem[1], code=problem[0]
            )
        with self._lock:
            self._working[order_id] = order
        submission = _Submission(order)
        self._queue(
            _Job(
                lambda: self._submit_job(submission),
                refuse=lambda error: self._refuse(submission, ReasonCode.AUTHENTICATION, error),
            )
        )
        return OrderUpdate(order_id, OrderStatus.PENDING, order.created_ts)

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        self._queue(_Job(lambda: self._cancel_job(client_order_id, user=True)))
        return None

    def on_bar(self, bar: Bar) -> Sequence[Event]:
        return self.drain_events()

    def open_orders(self) -> Sequence[Order]:
        with self._lock:
            return list(self._working.values())

    def positions(self) -> dict[str, Position]:
        with self._lock:
            return dict(self._positions)

    def balance(self) -> float:
        return self._balance

    def close(self) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        if self._terminal is not None and self._link is not None and self._link.up:
            # Closing: a dead terminal has nothing left to release.
            with contextlib.suppress(Exception):
                self._terminal.shutdown()

    # -- venue-execution ---------------------------------------------------------------------

    def drain_events(self) -> Sequence[Event]:
        with self._events_lock:
            events, self._events = self._events, []
        return events

    def query_order(self, client_order_id: str) -> OrderReport | None:
        return self._ask(lambda: self._query_order(client_order_id))

    def order_reports(self, since_ts: int) -> Sequence[OrderReport]:
        return self._ask(lambda: self._order_reports(since_ts))

    def fill_reports(self, since_ts: int) -> Sequence[Fill]:
        return self._ask(lambda: self._fill_reports(since_ts))

    def cash_flow_reports(self, since_ts: int) -> Sequence[CashFlow]:
        """``reports-cash-flows``: the swaps booked on the bot's deals (those ``fill_reports``
        reports) at or after ``since_ts``, oldest first, ``swap:<deal ticket>`` each."""
        return self._ask(lambda: self._cash_flow_reports(since_ts))

    def position_reports(self) -> Sequence[PositionReport]:
        return self._ask(self._position_reports)

    def cancel_all(self, symbol: str | None) -> None:
        self._queue(_Job(lambda: self._cancel_all_job(symbol)))

    def amend(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> OrderUpdate | None:
        # On its way from now, not from when the I/O thread takes it: a poll before that must
        # not report a price the engine would take for this amend's answer.
        with self._lock:
            self._amending[client_order_id] = self._amending.get(client_order_id, 0) + 1
        self._queue(_Job(lambda: self._amend_job(client_order_id, quantity, price)))
        return None

    def account_leverage(self) -> float | None:
        return self._leverage or None

    def restore_orders(self, orders: Sequence[Order]) -> None:
        """After a restart, before start-up reconciliation asks for ``order_reports`` and
        ``fill_reports``: the orders the journal holds working (engine thread; copies kept).
        The terminal keeps neither an SL/TP child's level as the bot holds it nor an order's
        reduce-only: a split entry's child is then the tickets at the journal's level, a
        ticket at another set apart as the running bot sets it (``restart_apart``), and its
        own line firing is the child's fill, not a change made outside the bot; a resting
        order the journal holds reduce-only is watched as one (``_cancel_reduce_only_beyond``)."""
        journaled = {order.client_order_id: order for order in orders}
        with self._lock:
            self._journaled = journaled
            for client_order_id, order in list(self._working.items()):
                kept = journaled.get(client_order_id)
                if kept is not None and kept.reduce_only and not order.reduce_only:
                    self._working[client_order_id] = order._replace(reduce_only=True)

    def entries_reduced(self, fill: Fill) -> tuple[str, ...] | None:
        """``TicketBrackets``: on a hedging account each ticket carries its own SL/TP — the
        children of the entry that opened it —, so a fill that made the bot's position smaller
        ends or cuts the children of the ticket it closed (noted when the deal was reported,
        ``_note_reduced``), never another's: () when it closed no ticket of an entry (a deal
        opening a ticket of its own beside them). None on a netting account: the position's
        one SL/TP is every entry's, cut oldest first by the engine."""
        if not self._hedging:
            return None
        with self._lock:
            entry = self._reduced.pop(fill.fill_id, None)
        return (entry,) if entry is not None else ()

    def child_held(self, client_order_id: str) -> float | None:
        """What reduce-only order ``client_order_id`` closes now (units), when the poll
        reported it changed, with an update of it: on a hedging account an SL/TP child, the
        volume of the entry's tickets at the child's level (``_report_changed_children``) — a
        person who removed or moved one ticket's line left the child to the others; on a
        netting account a reduce-only exit a person closed part of the position under, the
        volume of the new order it was re-placed as (``_cancel_reduce_only_beyond``: MT5
        cannot change a pending order's volume). Asked once per update, on the engine thread:
        answered from what the poll noted, never waiting on the terminal; None when nothing
        is noted."""
        with self._lock:
            return self._held.pop(client_order_id, None)

    # ``market_price``: how long the engine thread waits for its tick read. The read is the
    # terminal's own (milliseconds, no trip to the trade server) but waits its turn behind the
    # jobs queued before it, a close among them: past this the terminal is busy with them (or
    # stuck), and the entry asking is refused rather than holding the engine thread.
    _TICK_WAIT_S = 1.0
    # The last tick read ``market_price`` queued (engine thread): while it still waits its
    # turn, the next ask queues no other and waits for none (a burst of signals behind a
    # stuck terminal costs one wait, not one each).
    _tick_read: Future[Any] | None = None

    def market_price(self, symbol: str, side: Side) -> float | None:
        """``quotes-prices``: the terminal's current ask (a buy) or bid (a sell) of ``symbol``
        (``symbol_info_tick``, the tick it trades against), read on the broker's thread as
        every terminal call is, in turn behind the jobs already queued (never ahead of a
        close), waited for at most ``_TICK_WAIT_S``. None when not connected, while an earlier
        read still waits its turn, without an answer in time, without a two-sided tick, or
        with a tick older than ``QUOTE_MAX_AGE_S`` (``tick_age``)."""
        with self._lock:
            spec = self._specs.get(symbol)
        if spec is None or not self.is_connected():
            return None
        pending = self._tick_read
        if pending is not None and not pending.done():
            return None
        read: Future[Any] = Future()
        self._tick_read = read
        try:
            name = spec.name
            self._queue(_Job(lambda: self._saw_tick(self._call("symbol_info_tick", name)), read))
            tick = read.result(timeout=self._TICK_WAIT_S)
            bid, ask = float(tick.bid), float(tick.ask)
            stamp_ms = int(getattr(tick, "time_msc", 0) or 0) or int(tick.time) * 1000
        except Exception as error:  # no answer in time, no tick: no price, said
            why = str(error) or f"no answer within {self._TICK_WAIT_S:.10g} s"
            log.warning("MT5 broker: no current price of %s: %s", spec.name, why)
            return None
        if not (math.isfinite(bid) and math.isfinite(ask) and 0.0 < bid <= ask):
            return None
        age = tick_age(stamp_ms, time.time(), self._offset)
        if age is not None and age > QUOTE_MAX_AGE_S:
            log.warning(
                "MT5 broker: %s's last tick is %.0f s old: no current price", spec.name, age
            )
            return None
        return ask if side is Side.BUY else bid

    def is_connected(self) -> bool:
        link = self._link
        return bool(link is not None and link.up and self._server_up and self._fatal is None)

    def settle(self, timeout: float = _QUERY_TIMEOUT_S) -> None:
        """Wait until every job queued so far ran and the terminal was polled once (tests,
        benchmarks and an orderly stop use it; the engine never needs to)."""
        self._ask(self._poll, timeout=timeout)

    # -- the I/O thread ----------------------------------------------------------------------

    def _wait(self, seconds: float) -> bool:
        """Wait ``seconds`` (the injected sleep in tests); True when the broker is closing."""
        if self._sleep is not None:
            self._sleep(seconds)
            return self._stop.is_set()
        return self._stop.wait(seconds)

    def _queue(self, job: _Job, first: bool = False) -> None:
        with self._cv:
            if first:
                self._jobs.appendleft(job)
            else:
                self._jobs.append(job)
            self._cv.notify()

    def _ask(self, run: Callable[[], T], first: bool = False, timeout: float = 0.0) -> T:
        if self._thread is None:
            raise PluginError("broker: the MT5 broker is not connected (connect() first)")
        future: Future[T] = Future()
        self._queue(_Job(run, future), first=first)
        try:
            return future.result(timeout=timeout or _QUERY_TIMEOUT_S)
        except TimeoutError:
            raise PluginError(
                f"broker: the MetaTrader 5 terminal did not answer within "
                f"{timeout or _QUERY_TIMEOUT_S:.10g} s"
            ) from None

    def _next_job(self) -> _Job | None:
        with self._cv:
            if not self._jobs:
                self._cv.wait(timeout=self.params.poll_interval_s)
            return self._jobs.popleft() if self._jobs else None

    def _run(self) -> None:
        link = self._link
        assert link is not None
        while not self._stop.is_set():
            job = self._next_job()
            if self._stop.is_set():
                if job is not None and job.future is not None:
                    job.future.set_exception(PluginError("broker: closed"))
                break
            if self._fatal is not None:
                self._refuse_job(job, self._fatal)
                continue
            # The job ran to its end: a terminal lost in the poll after it must not run it
            # again (its future is already answered).
            done = False
            try:
                # Before the first connection (start-up) only the start job runs, and it
                # connects with a bounded number of attempts itself.
                if not link.up and link.reconnects and not self._reconnect(link, job):
                    break
                if self._fatal is not None:
                    continue  # the job was refused by _reconnect
                if job is not None:
                    result = job.run()
                    done = True
                    if job.future is not None:
                        job.future.set_result(result)
                if time.monotonic() >= self._next_poll and link.up and self._magic:
                    self._poll()
            except TerminalLost as lost:
                # Nothing of this job is lost: a submission keeps its progress and doubts,
                # and runs again first once the terminal is back (reconciling first).
                log.warning("%s; reconnecting", lost)
                if job is not None and not done:
                    self._queue(job, first=True)
            except Exception as error:
                if job is not None and not done and job.future is not None:
                    job.future.set_exception(error)
                else:
                    log.exception("MT5 broker job failed")
        self._fail_pending()

    def _reconnect(self, link: Link, job: _Job | None) -> bool:
        try:
            ok = link.ensure()
        except PluginError as error:
            # The account was refused (a changed password): retrying could lock it. Every
            # job from now on is refused; the bot's readiness says it is not connected.
            log.error("%s", error)
            self._fatal = error
            self._refuse_job(job, error)
            return True
        if not ok and job is not None:
            self._queue(job, first=True)
        return ok

    def _refuse_job(self, job: _Job | None, error: PluginError) -> None:
        if job is None:
            return
        if job.future is not None:
            job.future.set_exception(error)
        elif job.refuse is not None:
            job.refuse(error)

    def _refuse(self, sub: _Submission, code: ReasonCode, error: Exception) -> None:
        """A submission that cannot be completed: rejected if nothing went out, else reported
        as far as it got (the legs already executed are fills)."""
        sub.refusal = (code, str(error))
        if sub.legs is None:
            sub.legs = []
        order_id = sub.order.client_order_id
        if any(leg.ticket for leg in sub.legs):
            spec = self._specs.get(sub.order.symbol)
            if spec is not None and self._link is not None and self._link.up:
                self._report_submission(sub, spec)
                return
        with self._lock:
            self._working.pop(order_id, None)
        status = OrderStatus.REJECTED if sub.moved_to is None else OrderStatus.CANCELLED
        self._emit(OrderUpdate(order_id, status, sub.order.created_ts, str(error), code=code))

    def _fail_pending(self) -> None:
        with self._cv:
            jobs, self._jobs = list(self._jobs), deque()
        for job in jobs:
            if job.future is not None and not job.future.done():
                job.future.set_exception(PluginError("broker: closed"))

    def _emit(self, *events: Event) -> None:
        with self._events_lock:
            self._events.extend(events)
        wake = self._wake
        if wake is not None:
            wake()

    def _call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        link = self._link
        assert link is not None
        return link.call(function, *args, **kwargs)

    # -- start-up ----------------------------------------------------------------------------

    def _start(self, ctx: BrokerContext) -> None:
        symbols, currency = ctx.symbols, ctx.currency
        self._bot_symbols = tuple(symbols)
        link = self._link
        assert link is not None
        if not link.ensure(attempts=self.params.connect_attempts):
            raise PluginError("broker: closed while connecting")
        account = self._call("account_info")
        self._hedging = int(account.margin_mode) == _ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
        self._balance = float(account.balance)
        self._leverage = float(account.leverage)
        # MT5 books swap in the account's currency (the bot's: refused below otherwise).
        self._currency = str(account.currency) or currency
        self._refuse_currencies(symbols, currency, str(account.currency))
        self._refuse_calc_modes(symbols)
        if ctx.first_run and ctx.mode == "live":
            self._refuse_capital(ctx.initial_capital, float(account.equity), currency)
        if not self._hedging:
            self._refuse_shared_netting(symbols)
        now = self._now()
        since = now - self.params.history_days * _DAY
        # Every id the bot ever sent (within the history window) is known: a restarted bot
        # re-sending one gets DUPLICATE_CLIENT_ID, never a second order.
        comments = {str(o.comment) for o in ours(self._call("orders_get"), self._magic)}
        history = ours(self._call("history_orders_get", since, _FAR), self._magic)
        comments.update(str(o.comment) for o in history)
        every_deal = self._call("history_deals_get", since, _FAR) or ()
        # Every deal so far is known, the bot's own and others' (a person's close of the bot's
        # position): what happened before this start is start-up reconciliation's
        # (``fill_reports``), not a new event.
        for deal in every_deal:
            self._seen_deals.add(int(deal.ticket), int(deal.time))
        deals = ours(every_deal, self._magic)
        self._poll_from = max([now - _DAY, *(int(d.time) for d in deals)])
        self._adopt_resting(ours(self._call("orders_get"), self._magic))
        with self._lock:
            for comment in comments:
                self._known_comments.add(comment)
                self._known_comments.add(rq.base_comment(comment))
        # A new bot (a restart) holds no accrual: the swap its positions hold is reported at
        # once, before connect returns, so its equity counts it from before its first bar.
        self._accruals_sent = {}
        accruals = self._refresh_positions()
        if accruals:
            self._emit(*accruals)

    def _adopt_resting(self, resting: Sequence[Any]) -> None:
        """The resting orders an earlier run left at the terminal, made this broker's own
        working orders: watched by ticket (a fill or a cancel is an event), and amended,
        cancelled and cancelled-all as before the restart — known only by ticket, an amend
        of one (a risk plugin's MOVE_STOP of a pending stop) was refused as no resting order
        of that id and the engine dropped an order the terminal still works. As the terminal
        holds them (``_resting_order``): its price, volume, side and type; its SL/TP kept for
        the children its fill brings. The price is not taken as reported (``_booked``): the
        journal's may differ, and the first poll reports it once."""
        adopted: dict[str, Order] = {}
        for record in resting:
            client_id = self._resolve(str(record.comment))
            if client_id is None:
                continue
            self._tickets[int(record.ticket)] = client_id
            order = self._resting_order(record, client_id)
            if order is not None:
                adopted[client_id] = order
        with self._lock:
            self._working.update(adopted)

    def _resting_order(self, record: Any, client_id: str) -> Order | None:
        """The order a terminal's resting record (limit or stop) is, in units; None for any
        other type (a market order the server placed to fill later: nothing to amend)."""
        otype = int(record.type)
        if otype not in _RESTING_TYPES:
            return None
        price = _usable_price(record.price_open)
        buy = otype in (rq.ORDER_TYPE_BUY_LIMIT, rq.ORDER_TYPE_BUY_STOP)
        limit = otype in (rq.ORDER_TYPE_BUY_LIMIT, rq.ORDER_TYPE_SELL_LIMIT)
        sl, tp = float(record.sl or 0.0), float(record.tp or 0.0)
        return Order(
            client_order_id=client_id,
            symbol=self._symbols.ours(str(record.symbol)),
            side=Side.BUY if buy else Side.SELL,
            quantity=self._units(str(record.symbol), float(record.volume_initial)),
            order_type=OrderType.LIMIT if limit else OrderType.STOP,
            price=price,
            stop_loss=sl if sl > 0 else None,
            take_profit=tp if tp > 0 else None,
            created_ts=self._utc(int(record.time_setup)),
        )

    def _refuse_shared_netting(self, symbols: Sequence[str]) -> None:
        """A netting account holds one position per symbol, whoever opened it: a bot trading a
        symbol in which another bot (another magic) or a person (magic 0) holds a position
        would merge its orders into that position — its fills booked against a position it
        does not own, another's close booked as its own. Refused at start, naming the field."""
        for i, symbol in enumerate(symbols):
            venue = self._spec(symbol).name
            for position in self._call("positions_get", symbol=venue) or ():
                magic = int(position.magic)
                if magic == self._magic:
                    continue
                owner = "a person (magic 0)" if magic == 0 else f"another bot (magic {magic})"
                raise PluginError(
                    f"spec.market.symbols[{i}]: {symbol} on this netting account holds a "
                    f"position of {owner}; a netting account keeps one position per symbol, so "
                    "the bot's orders would merge into it: give the bot an account (or "
                    "symbol) of its own, or close that position first"
                )

    def _refuse_capital(self, capital: float, equity: float, currency: str) -> None:
        """A live bot's first run: its capital must be money the account holds (its equity,
        in the account's currency, which is the capital's). Sizing on more (risk per trade,
        a prop firm's loss limits) multiplies every trade's risk."""
        if capital > equity * (1 + _CAPITAL_TOLERANCE):
            raise PluginError(
                f"spec.capital.initial: {_money(capital)} {currency} is more than the account "
                f"holds ({_money(equity)} {currency}): sizing on money the account does not "
                "have multiplies every trade's risk; lower spec.capital.initial (several bots "
                "sharing an account each claim their own part)"
            )

    def _refuse_currencies(self, symbols: Sequence[str], capital: str, account: str) -> None:
        """The runtime books a symbol's profit (quantity × price move, in its profit currency)
        as if it were the account's currency, and the bot's capital as the account's balance:
        a bot whose capital or symbols are in another currency would book wrong figures, and
        its risk rules would decide on them. Refused here, naming the field, until tradefleet
        converts currencies."""
        if account and capital and capital.upper() != account.upper():
            raise PluginError(
                f"spec.capital.currency: the bot's capital is in {capital} but the MT5 account "
                f"is in {account}; tradefleet does not convert currencies yet: set "
                f"spec.capital.currency to {account}"
            )
        for i, symbol in enumerate(symbols):
            spec = self._spec(symbol)
            profit = spec.currency_profit
            if account and profit and profit.upper() != account.upper():
                venue = "" if spec.name == symbol else f" ({spec.name} at the broker)"
                raise PluginError(
                    f"spec.market.symbols[{i}]: {symbol}{venue} pays its profit in {profit} but "
                    f"the MT5 account is in {account}; tradefleet does not convert profit "
                    f"currencies yet: trade symbols whose profit currency is {account} on this "
                    "account"
                )

    def _refuse_calc_modes(self, symbols: Sequence[str]) -> None:
        """The runtime books quantity × price move; the terminal books by the symbol's calc
        mode. Units per lot reconcile the two for the modes ``mt5_requests.calc_mode_problem``
        accepts; a symbol in another mode (options, bonds, one whose tick value moves with a
        conversion rate) would have its P&L, equity, drawdown limits and sizing off by some
        factor, so it is refused here, naming the field and the mode."""
        for i, symbol in enumerate(symbols):
            spec = self._spec(symbol)
            problem = rq.calc_mode_problem(spec)
            if problem is not None:
                venue = "" if spec.name == symbol else f" ({spec.name} at the broker)"
                raise PluginError(
                    f"spec.market.symbols[{i}]: {symbol}{venue}: {problem}; tradefleet cannot "
                    "book this symbol's profit as the terminal does: trade symbols in the Forex, "
                    "CFD, stock or futures calc modes"
                )

    def _saw_tick(self, tick: Any) -> Any:
        """``tick`` (a ``symbol_info_tick`` answer, None: none), its time taken as a look at
        the server's zone (I/O thread): a zone it shows is the one times are converted with
        from now on, said when it is not ``server_offset_s`` or when it changes."""
        stamp = int(getattr(tick, "time", 0) or 0) if tick is not None else 0
        if stamp:
            news = self._server.follow(stamp, time.time(), self.params.server_offset_s)
            if news is not None:
                log.warning("MT5 broker: %s", news)
            self._offset = self._server.offset
        return tick

    def _now(self) -> int:
        """The trade server's time now (its clock, its time zone), from the latest tick."""
        latest = self._server_now
        self._next_zone_look = time.monotonic() + _ZONE_LOOK_S  # a look: the poll's is not due
        for spec in list(self._specs.values())[:1]:
            tick = self._saw_tick(self._call("symbol_info_tick", spec.name))
            if tick is not None and int(tick.time):
                latest = max(latest, int(tick.time))
        if not latest:
            latest = int(time.time()) + self._offset
        self._server_now = latest
        return latest

    def _spec(self, symbol: str) -> rq.SymbolSpec:
        spec = self._specs.get(symbol)
        if spec is not None:
            return spec
        venue = self._symbols.venue(symbol)
        # symbol_select first: a symbol outside Market Watch has no ticks to price orders with.
        if not self._call("symbol_select", venue, True):
            raise PluginError(
                f"broker: the terminal does not know symbol {venue!r} (for {symbol!r}); "
                "check broker.params.symbols"
            )
        info = self._call("symbol_info", venue)
        if info is None:
            raise PluginError(f"broker: no symbol_info for {venue!r}")
        spec = rq.spec_from_info(info)
        self._instrument_of(symbol, spec)
        with self._lock:
            self._specs[symbol] = spec
        return spec

    def _instrument_of(self, symbol: str, spec: rq.SymbolSpec) -> Instrument:
        # In units, as every quantity the runtime handles (the module's doc); contract_size
        # stays as information: the units in one of this broker's lots, which is what a lot
        # holds for the runtime (a strategy turning a signal's lots into units multiplies by
        # it), so units per lot, not trade_contract_size (a future's is not its multiplier).
        lot_step, min_quantity, max_quantity = rq.unit_limits(spec)
        instrument = Instrument(
            symbol=symbol,
            tick_size=spec.tick_size,
            lot_step=lot_step,
            min_quantity=min_quantity,
            max_quantity=max_quantity,
            contract_size=rq.units_per_lot(spec),
            quote_currency=spec.currency_profit,
        )
        self._instruments[symbol] = instrument
        return instrument

    # -- submit ------------------------------------------------------------------------------

    def _local_problem(self, order: Order) -> tuple[ReasonCode, str] | None:
        """A refusal known without asking the terminal (the spec is cached after start)."""
        if not order.quantity > 0:
            return ReasonCode.INVALID_QUANTITY, f"quantity must be positive, got {order.quantity}"
        if order.order_type is not OrderType.MARKET and not (order.price and order.price > 0):
            return ReasonCode.INVALID_PRICE, f"{order.order_type} order needs a positive price"
        spec = self._specs.get(order.symbol)
        if spec is None:
            return None
        lots = rq.round_volume(rq.to_lots(order.quantity, spec), spec)
        return rq.volume_problem(lots, spec, order.quantity)

    def _submit_job(self, sub: _Submission) -> None:
        try:
            self._submit(sub)
        except TerminalLost:
            raise  # runs again once the terminal is back, reconciling first
        except Exception as error:
            log.exception("%s: submission failed", sub.order.client_order_id)
            self._refuse(sub, ReasonCode.VENUE_REJECTED, error)

    def _submit(self, sub: _Submission) -> None:
        order = sub.order
        spec = self._spec(order.symbol)
        legs = sub.legs
        child = _bracket_child(order)
        if legs is None and child is not None and sub.moved_to is None:
            self._place_child(order, spec, *child)
            return
        if legs is None:
            volume = rq.round_volume(rq.to_lots(order.quantity, spec), spec)
            problem = rq.volume_problem(volume, spec, order.quantity)
            legs = []
            if problem is None:
                legs, problem = self._plan(sub, spec, volume)
            if problem is not None:
                legs = []
                sub.refusal = problem
            sub.legs = legs
            self._register(order, len(legs), sub.first_leg)
        while sub.refusal is None and sub.next_leg < len(legs):
            leg = legs[sub.next_leg]
            problem = self._send_leg(sub, spec, leg, sub.first_leg + sub.next_leg)
            if problem is not None:
                sub.refusal = problem
                break
            self._rest_the_rest(sub, spec, leg)
            sub.next_leg += 1
        self._report_submission(sub, spec)

    def _rest_kept(self, ticket: int) -> bool:
        """Whether the server still works the rest of deal order ``ticket``, sent with
        ORDER_FILLING_RETURN and filled in part: "the order with the remaining volume is not
        canceled, and is processed further" (MQL5), so it does unless the terminal says it
        no longer holds it; an unread answer counts as held (sent again, the rest could fill
        twice)."""
        return self._still_rests(ticket) is not False

    def _rest_the_rest(self, sub: _Submission, spec: rq.SymbolSpec, leg: _Leg) -> None:
        """The rest of a limit's deal that filled in part (a symbol filling deals Immediate-or-
        Cancel takes what is offered up to the limit, and the rest expires with the deal) is
        still the limit's, as a limit order's unfilled rest keeps working: a new leg right
        after this one, which ``_send_leg`` rests at the limit (a pending order, ``<id>#k``)
        or, the market still through it, sends as another deal bounded by the same limit — the
        terminal refuses a pending limit through the market, and the rest is the limit's to
        take now. At most ``rq.MAX_LEGS`` requests for one order: past them the rest expires,
        said in the order's end. Not for a deal sent with ORDER_FILLING_RETURN whose rest the
        server keeps working (``_Leg.kept``): sent again, the rest would trade twice."""
        legs = sub.legs
        if sub.order.order_type is not OrderType.LIMIT or legs is None or leg.placed or leg.kept:
            return
        rest = rq.round_volume(leg.volume - leg.executed, spec)
        if not leg.ticket or leg.executed <= _EPS or rest <= _EPS:
            return
        if sub.first_leg + len(legs) >= rq.MAX_LEGS:
            return
        leg.carried = rest
        legs.insert(sub.next_leg + 1, _Leg(rest, position=leg.position))
        self._register(sub.order, len(legs), sub.first_leg)

    def _place_child(self, order: Order, spec: rq.SymbolSpec, parent: str, role: str) -> None:
        """A bracket child sent on its own (a restarted bot re-sends the stop of a position
        whose SL a person removed while it was down, or places the children of an entry that
        filled while it was down): MT5 keeps SL/TP as attributes of the position its parent's
        fills are in, so it is set there with TRADE_ACTION_SLTP — never sent as a separate
        pending order, which on a netting account would open a position of its own once the
        position is gone, and which a hedging account refuses (reduce-only). On a netting
        account that is the symbol's one position, which carries the id of the first entry
        only: the child of any entry that added to it is found there (``_entries_of``). A
        position already holding the child's price holds the child: it is acknowledged as in
        place, nothing sent (``_child_on_position``). From here on it is one of the position's
        children (its sibling cancelled when it fires). No such position open: refused,
        nothing sent."""
        order_id = order.client_order_id
        ts = self._utc(self._server_now) or order.created_ts
        with self._lock:
            self._working.pop(order_id, None)
        found = self._position_of_entry(spec, parent, long=order.side is Side.SELL)
        position = found[0] if found is not None else None
        refusal: tuple[ReasonCode, str] | None = None
        said = ""
        if position is None:
            refusal = (
                ReasonCode.VENUE_REJECTED,
                f"no open position of {parent} at the terminal to set this {role.upper()} on "
                "(MT5 keeps SL/TP on the position)",
            )
        elif not order.price:
            refusal = ReasonCode.INVALID_PRICE, f"{role.upper()} needs a price"
        else:
            assert found is not None
            held = float(position.sl if role == "sl" else position.tp)
            kind = OrderType.STOP if role == "sl" else OrderType.LIMIT
            want = rq.on_tick(order.price, spec, order.side, kind)
            shared = bool(found[1])
            # Hedging: every ticket the entry opened (a split entry has several) takes it.
            targets = [position]
            if self._hedging:
                targets = self._entry_positions(order_id, int(position.ticket)) or targets
            tickets = [int(p.ticket) for p in targets]
            placings = [
                _child_on_position(_level(p, role), want, spec.point / 2, shared) for p in targets
            ]
            if all(placing == "in place" for placing in placings):
                said = (
                    f"already {_positions_words(tickets)}'s {role.upper()} at {held:.10g}: "
                    "nothing sent"
                )
            elif "replaces" in placings:
                refusal = (
                    ReasonCode.VENUE_REJECTED,
                    f"a netting account holds one SL/TP per position: {spec.name}'s "
                    f"{rq.to_units(float(position.volume), spec):.10g} position (entries "
                    f"{', '.join([parent, *found[1]])}) has {role.upper()} {held:.10g}, which "
                    f"this {role.upper()} {want:.10g} would replace for the whole position; "
                    "nothing sent",
                )
            else:
                missing = [t for t, how in zip(tickets, placings, strict=True) if how == "set"]
                done: list[int] = []
                for ticket in missing:
                    refusal = self._set_stops(ticket, role, order.price)
                    if refusal is not None:
                        if done:  # said, as ``_set_child_stops`` does
                            level = f"{role.upper()} {order.price:.10g}"
                            words = f"on position {ticket}; {_positions_words(done)} hold {level}"
                            refusal = (refusal[0], f"{refusal[1]} {words}")
                        break
                    done.append(ticket)
                said = f"set as {_positions_words(missing)}'s {role.upper()}"
        if refusal is not None:
            self._emit(OrderUpdate(order_id, OrderStatus.REJECTED, ts, refusal[1], code=refusal[0]))
            return
        assert position is not None
        self._children[order_id] = (int(position.ticket), role)
        if order.price:  # the poll's baseline: the price the engine books the child at
            self._child_levels[order_id] = _Booked(order.price, long=order.side is Side.SELL)
        venue_id = ",".join(str(t) for t in tickets) if tickets else str(int(position.ticket))
        self._emit(OrderUpdate(order_id, OrderStatus.OPEN, ts, said, venue_order_id=venue_id))

    def _position_of_entry(
        self, spec: rq.SymbolSpec, parent: str, long: bool
    ) -> tuple[Any, list[str]] | None:
        """The bot's open ``spec`` position (long or not) that ``parent``'s fills are in, with
        the other entries whose fills are in it too (a netting account's one position: their
        stops are its stops as well); None when there is none."""
        for position in ours(self._call("positions_get", symbol=spec.name), self._magic):
            if (int(position.type) == _POSITION_TYPE_BUY) != long:
                continue
            ticket = int(position.ticket)
            # Hedging: one entry per position, named by ``_parent_of``.
            entries = [] if self._hedging else [e.client_order_id for e in self._entries_of(ticket)]
            if parent in entries or self._parent_of(ticket) == parent:
                return position, [e for e in entries if e != parent]
        return None

    def _register(self, order: Order, legs: int, first: int = 0) -> None:
        order_id = order.client_order_id
        comments = [rq.comment_for(order_id, leg) for leg in range(first, first + max(legs, 1))]
        for comment in comments:
            self._comment_ids[comment] = order_id
        # Known as sent, as the terminal's history tells a restarted broker: a later request of
        # the order (``rq.next_leg``) takes none of these comments.
        with self._lock:
            self._known_comments.update(comments)

    def _plan(
        self, sub: _Submission, spec: rq.SymbolSpec, volume: float
    ) -> tuple[list[_Leg], tuple[ReasonCode, str] | None]:
        order = sub.order
        if not self._hedging and not order.reduce_only and (order.stop_loss or order.take_profit):
            problem = self._netting_stops_problem(order, spec)
            if problem is not None:
                return [], (ReasonCode.VENUE_REJECTED, problem)
        if order.order_type is not OrderType.MARKET:
            if order.reduce_only and self._hedging:
                return [], (
                    ReasonCode.VENUE_REJECTED,
                    "a hedging account cannot rest a reduce-only order; use stop_loss/"
                    "take_profit on the entry (position attributes)",
                )
            if not self._hedging:
                if order.reduce_only:
                    # The terminal knows no reduce-only: rested beyond what the bot holds
                    # against it, the order would open or reverse a position when it fills.
                    beyond = _reduce_only_beyond(
                        order, volume, self._opposite_positions(order, spec), spec
                    )
                    if beyond is not None:
                        return [], (ReasonCode.REDUCE_ONLY, f"{beyond}; nothing sent")
                return [_Leg(volume)], None
        opposite = self._opposite_positions(order, spec)
        if order.order_type is not OrderType.MARKET and not (
            opposite and self._through_now(order, spec)
        ):
            # Hedging: a limit or stop that rests (or that trades with nothing of the bot's
            # against it) is one request. One the market is through trades now, as a market
            # order: it closes the bot's tickets against it first (below) — sent whole, it
            # opened a ticket beside them, long and short at once.
            return [_Leg(volume)], None
        if self._hedging:
            legs: list[_Leg] = []
            left = volume
            for position in sorted(opposite, key=lambda p: (int(p.time_msc), int(p.ticket))):
                if left <= _EPS:
                    break
                part = rq.round_volume(min(float(position.volume), left), spec)
                legs.append(_Leg(part, position=int(position.ticket)))
                left = round(left - part, 8)
            if left > _EPS:
                if order.reduce_only:
                    sub.remainder_code = ReasonCode.REDUCE_ONLY
                    sub.remainder_words = (
                        f"reduce-only: {rq.to_units(left, spec):.10g} more would open a position"
                    )
                else:
                    legs.append(_Leg(left))
            if not legs:
                return [], (ReasonCode.REDUCE_ONLY, "reduce-only order: no position to reduce")
            return legs, None
        if order.reduce_only:
            cut = self._reduce_only_cut(sub, spec, volume, opposite)
            if isinstance(cut, tuple):
                return [], cut
            volume = cut
        return [_Leg(volume)], None

    def _through_now(self, order: Order, spec: rq.SymbolSpec) -> bool:
        """Whether the market is through ``order``'s price on the tick now
        (``rq.through_market``); False unread: planned as one request, and each attempt
        decides again on its own tick."""
        tick = self._call("symbol_info_tick", spec.name)
        if tick is None or not (float(tick.bid) > 0 and float(tick.ask) > 0):
            return False
        return rq.through_market(order, spec, float(tick.bid), float(tick.ask))

    def _opposite_positions(self, order: Order, spec: rq.SymbolSpec) -> list[Any]:
        """The bot's positions in ``order``'s symbol that ``order`` would reduce (the other
        side's), as the terminal holds them now."""
        buy = order.side is Side.BUY
        held = ours(self._call("positions_get", symbol=spec.name), self._magic)
        return [p for p in held if (int(p.type) == _POSITION_TYPE_BUY) != buy]

    def _reduce_only_cut(
        self, sub: _Submission, spec: rq.SymbolSpec, volume: float, opposite: Sequence[Any]
    ) -> float | tuple[ReasonCode, str]:
        """A netting account's reduce-only order of ``volume`` lots cut to the bot's position
        against it (``opposite``: its positions of the other side), the rest said as the
        order's remainder; refused when there is none (the terminal knows no reduce-only:
        sent whole, it would open or reverse a position)."""
        reducible = rq.round_volume(sum(float(p.volume) for p in opposite), spec)
        if reducible <= _EPS:
            return ReasonCode.REDUCE_ONLY, "reduce-only order: no position to reduce"
        if reducible < volume - _EPS:
            sub.remainder_code = ReasonCode.REDUCE_ONLY
            more = rq.to_units(volume, spec) - rq.to_units(reducible, spec)
            sub.remainder_words = f"reduce-only: {more:.10g} more would reverse"
            return reducible
        return volume

    def _netting_stops_problem(self, order: Order, spec: rq.SymbolSpec) -> str | None:
        """Why an entry with SL/TP cannot be added to the bot's position on a netting account:
        the account has one position per symbol with one SL and one TP, and the entry's would
        replace those of the position the bot holds — silently moving the stop of what earlier
        entries bought, while the bot's journal still shows their own. Refused before it is
        sent unless its SL/TP are the position's (then one stop protects all, as shown)."""
        buy = order.side is Side.BUY
        exit_side = order.side.opposite
        want_sl = (
            rq.on_tick(order.stop_loss, spec, exit_side, OrderType.STOP) if order.stop_loss else 0.0
        )
        want_tp = (
            rq.on_tick(order.take_profit, spec, exit_side, OrderType.LIMIT)
            if order.take_profit
            else 0.0
        )
        for position in ours(self._call("positions_get", symbol=spec.name), self._magic):
            if (int(position.type) == _POSITION_TYPE_BUY) != buy:
                continue  # against the position: it closes or reverses it
            sl, tp = float(position.sl), float(position.tp)
            half = spec.point / 2
            if abs(sl - want_sl) <= half and abs(tp - want_tp) <= half:
                return None
            return (
                f"a netting account holds one SL/TP per position: {spec.name}'s "
                f"{rq.to_units(float(position.volume), spec):.10g} position has SL {sl:.10g} TP "
                f"{tp:.10g}, which this entry's SL {want_sl:.10g} TP {want_tp:.10g} would "
                "replace for the whole position; send it with the position's SL/TP, or close first"
            )
        return None

    def _send_leg(
        self, sub: _Submission, spec: rq.SymbolSpec, leg: _Leg, index: int
    ) -> tuple[ReasonCode, str] | None:
        """Send one request (``leg.volume``, in lots) until the terminal gives a final answer;
        None when the leg was executed or placed, else the refusal.

        A limit or stop order rests as a pending order, or goes as a market deal when the
        market is already through it (``rq.through_market``: the terminal would refuse it as a
        pending order), decided on the tick read before each attempt: a limit the market
        moved away from after a requote rests instead."""
        order = sub.order
        modes: tuple[int, ...] = ()
        mode = 0
        as_deal: bool | None = None  # the route of the last attempt
        requotes = busy = 0
        reference = 0.0
        p = self.params
        while True:
            if leg.doubt:
                # Reconcile before anything else: the last request may have gone through.
                if self._reconcile(sub, spec, leg, index):
                    return None
                leg.doubt = False
                leg.unknown += 1
                if leg.unknown > p.unknown_retries:
                    return (
                        ReasonCode.UNKNOWN_OUTCOME,
                        f"no answer from the trade server after {leg.unknown} attempts, and "
                        "history shows no such order",
                    )
                if self._wait(self._backoff(leg.unknown)):
                    return ReasonCode.VENUE_UNAVAILABLE, "broker closed"
            tick = self._saw_tick(self._call("symbol_info_tick", spec.name))
            if tick is None or not (float(tick.bid) > 0 and float(tick.ask) > 0):
                return ReasonCode.MARKET_CLOSED, f"no prices for {spec.name}"
            self._server_now = max(self._server_now, int(tick.time))
            if not leg.sent_at:
                leg.sent_at = int(tick.time) or self._server_now
            bid, ask = float(tick.bid), float(tick.ask)
            deal = order.order_type is OrderType.MARKET or rq.through_market(order, spec, bid, ask)
            if not deal and leg.position:
                # Planned as deals closing the bot's tickets (the market was through the
                # limit), and the market moved away: a pending order cannot close a position
                # by ticket, so what is left of the order rests whole at its limit.
                _rest_whole(sub)
            if deal is not as_deal:
                # A deal and a pending order take different filling modes: start again.
                as_deal, modes, mode = deal, rq.filling_modes(spec, not deal), 0
                if deal and order.order_type is not OrderType.MARKET:
                    log.info(
                        "%s: %s %s %s is through the market (bid %s ask %s): sent as a deal",
                        order.client_order_id,
                        order.side,
                        order.order_type,
                        order.price,
                        bid,
                        ask,
                    )
            if deal and order.reduce_only and order.order_type is not OrderType.MARKET:
                # A reduce-only limit or stop the market is through trades now, as a market
                # order does: cut to the position as one (planned as a pending order, it was
                # not), never opening or reversing one.
                opposite = self._opposite_positions(order, spec)
                cut = self._reduce_only_cut(sub, spec, leg.volume, opposite)
                if isinstance(cut, tuple):
                    return cut
                leg.volume = cut
            if deal and order.order_type is not OrderType.LIMIT:
                # A market order (or a triggered stop) follows requotes only so far; a limit's
                # own price bounds it instead (its deviation).
                price = ask if order.side is Side.BUY else bid
                if not reference:
                    reference = price
                moved = (price - reference) if order.side is Side.BUY else (reference - price)
                if moved > p.max_requote_points * spec.point + _EPS:
                    return (
                        ReasonCode.VENUE_REJECTED,
                        f"price moved {moved / spec.point:.0f} points against the order since "
                        f"the first quote (max_requote_points {p.max_requote_points})",
                    )
            request = (
                self._deal_leg_request(order, spec, leg, index, bid, ask, modes[mode])
                if deal
                else self._pending_leg_request(order, spec, leg, index, bid, ask, modes[mode])
            )
            if isinstance(request, tuple):
                return request
            leg.doubt = True  # until the answer is read: a lost terminal leaves it in doubt
            result = self._call("order_send", request)
            if result is None:
                leg.doubt = False
                code, message = self._link.last_error() if self._link else (0, "")
                return ReasonCode.VENUE_REJECTED, f"order_send refused: {code} {message}"
            leg.doubt = False
            retcode = int(result.retcode)
            v = verdict(retcode)
            if v.action in (Action.DONE, Action.DONE_PARTIAL) and deal:
                leg.ticket = int(result.order)
                leg.executed = float(result.volume)
                if v.action is Action.DONE_PARTIAL and modes[mode] == rq.ORDER_FILLING_RETURN:
                    leg.kept = self._rest_kept(leg.ticket)
                return None
            if v.action in (Action.PLACED, Action.DONE, Action.DONE_PARTIAL):
                # A resting order "done" is placed: it works at the broker until it fills.
                leg.ticket = int(result.order)
                leg.placed = True
                return None
            if v.action is Action.RETRY_PRICE:
                requotes += 1
                if requotes > p.requote_retries:
                    return ReasonCode.VENUE_REJECTED, f"{v.words} ({retcode}) {requotes} times"
                continue
            if v.action is Action.NEXT_FILLING:
                mode += 1
                if mode >= len(modes):
                    return v.code, f"{v.words} ({retcode}): no filling mode left to try"
                continue
            if v.action is Action.BACK_OFF:
                busy += 1
                if busy > p.busy_retries:
                    return v.code, f"{v.words} ({retcode}) {busy} times"
                if self._wait(self._backoff(busy)):
                    return ReasonCode.VENUE_UNAVAILABLE, "broker closed"
                continue
            if v.action is Action.RECONCILE:
                leg.doubt = True
                log.warning(
                    "%s: %s (%d); reconciling through history",
                    order.client_order_id,
                    v.words,
                    retcode,
                )
                last_code = v
                if self._reconcile(sub, spec, leg, index):
                    return None
                leg.doubt = False
                leg.unknown += 1
                if leg.unknown > p.unknown_retries:
                    return last_code.code, (
                        f"{last_code.words} ({retcode}) {leg.unknown} times; history shows no "
                        "such order"
                    )
                if self._wait(self._backoff(leg.unknown)):
                    return ReasonCode.VENUE_UNAVAILABLE, "broker closed"
                continue
            return v.code, f"{v.words} ({retcode})"

    def _pending_leg_request(
        self,
        order: Order,
        spec: rq.SymbolSpec,
        leg: _Leg,
        index: int,
        bid: float,
        ask: float,
        filling: int,
    ) -> dict[str, Any] | tuple[ReasonCode, str]:
        """The request resting ``order`` at its price (``index``: the leg's, its comment), or
        why the terminal would refuse it (its price, then its SL/TP, inside
        ``trade_stops_level``: ``rq.resting_problem``): never sent to be answered a bare
        10015/10016."""
        bad = rq.resting_problem(order, spec, bid, ask)
        if bad is not None:
            return ReasonCode.INVALID_PRICE, bad
        return rq.pending_request(
            order, spec, magic=self._magic, volume=leg.volume, filling=filling, leg=index
        )

    def _deal_leg_request(
        self,
        order: Order,
        spec: rq.SymbolSpec,
        leg: _Leg,
        index: int,
        bid: float,
        ask: float,
        filling: int,
    ) -> dict[str, Any] | tuple[ReasonCode, str]:
        """The market deal for ``order`` (a market order, or a limit or stop the market is
        through), or why its SL/TP cannot go with it: measured from the close side, as for
        any market entry."""
        buy = order.side is Side.BUY
        if not leg.position and (order.stop_loss or order.take_profit):
            close_side = bid if buy else ask
            bad = rq.stops_problem(
                order.side, close_side, order.stop_loss or 0.0, order.take_profit or 0.0, spec
            )
            if bad is not None:
                return ReasonCode.INVALID_PRICE, bad
        # A limit: no further than its own price where the server honours deviation (instant
        # and request execution); a market order or a triggered stop: the bot's setting.
        deviation = (
            rq.limit_deviation(order, spec, bid, ask)
            if order.order_type is OrderType.LIMIT
            else self.params.deviation_points
        )
        return rq.deal_request(
            order,
            spec,
            magic=self._magic,
            volume=leg.volume,
            price=ask if buy else bid,
            deviation=deviation,
            filling=filling,
            position=leg.position,
            leg=index,
        )

    def _say_beyond_limit(self, order: Order, spec: rq.SymbolSpec, price: float) -> None:
        """A limit sent as a deal filled beyond its limit: a server in market execution ignores
        the deviation. The venue's fill is what the account holds, so it is booked as it is;
        the warning says so, naming both prices."""
        if rq.beyond_limit(order, spec, price):
            log.warning(
                "%s: %s limit %s filled at %s, beyond its limit: the server ignored the "
                "deviation (market execution); booked at the terminal's price",
                order.client_order_id,
                order.side,
                order.price,
                price,
            )

    def _backoff(self, attempt: int) -> float:
        p = self.params
        return float(min(p.backoff_s * 2 ** max(attempt - 1, 0), p.max_backoff_s))

    def _reconcile(self, sub: _Submission, spec: rq.SymbolSpec, leg: _Leg, index: int) -> bool:
        """Whether the leg's request reached the market: its comment and the bot's magic number
        in the terminal's orders or history. Records what it found."""
        comment = rq.comment_for(sub.order.client_order_id, index)
        for order in ours(self._call("orders_get", symbol=spec.name), self._magic):
            if str(order.comment) == comment:
                leg.ticket, leg.placed = int(order.ticket), True
                return True
        since = (leg.sent_at or self._now()) - _DAY
        history = self._call("history_orders_get", since, _FAR, group=spec.name)
        for order in ours(history, self._magic):
            if str(order.comment) != comment:
                continue
            state = int(order.state)
            if state in (_ORDER_STATE_FILLED, _ORDER_STATE_PARTIAL):
                leg.ticket = int(order.ticket)
                leg.executed = float(order.volume_initial) - float(order.volume_current)
                return True
            if state in (_ORDER_STATE_PLACED, _ORDER_STATE_STARTED):
                leg.ticket, leg.placed = int(order.ticket), True
                return True
        return False

    def _report_submission(self, sub: _Submission, spec: rq.SymbolSpec) -> None:
        order = sub.order
        order_id = order.client_order_id
        ts = self._utc(self._server_now) or order.created_ts
        legs = sub.legs or []
        tickets = [leg.ticket for leg in legs if leg.ticket]
        events: list[Event] = []
        if not tickets:
            code, words = sub.refusal or (ReasonCode.VENUE_REJECTED, "nothing sent")
            with self._lock:
                self._working.pop(order_id, None)
            status = OrderStatus.REJECTED
            if sub.moved_to is not None:  # its resting order is gone: it ends here
                status = OrderStatus.CANCELLED
                words = (
                    f"cancelled to trade at {sub.moved_to:.10g} through the market, and the rest "
                    f"was refused: {words}"
                )
            self._emit(OrderUpdate(order_id, status, ts, words, code=code))
            return
        venue_id = ",".join(str(t) for t in tickets)
        said = "" if sub.moved_to is None else "amended"  # the move's answer
        events.append(
            OrderUpdate(
                order_id, OrderStatus.OPEN, ts, said, venue_order_id=venue_id, price=sub.moved_to
            )
        )
        executed = 0.0
        resting = False
        for leg in legs:
            if leg.placed:
                self._tickets[leg.ticket] = order_id
                if order.price is not None:  # the price it was sent at (the engine's tick)
                    self._booked[order_id] = rq.on_tick(
                        order.price, spec, order.side, order.order_type
                    )
                resting = True
                continue
            if not leg.ticket:
                continue
            if leg.kept:
                # The server works the rest of this deal as the same order: watched as a
                # resting one (the poll reports its fills and its end); its deals so far below.
                self._tickets[leg.ticket] = order_id
                resting = True
            executed += leg.executed
            deals = self._call("history_deals_get", ticket=leg.ticket) or ()
            for deal in deals:
                ticket = int(deal.ticket)
                if self._seen_deals.taken(ticket, int(deal.time)):
                    continue
                self._seen_deals.add(ticket, int(deal.time))
                fill = fill_from_deal(deal, order_id, order.symbol, self._units, fill_reason(order))
                if fill is None:
                    continue
                self._say_beyond_limit(order, spec, fill.price)
                events.extend(self._with_swap(deal, fill._replace(ts=self._utc(int(deal.time)))))
                self._note_entry(order, deal)
        if not resting:
            # executed and wanted in lots (the terminal's); what is gone in units (the bot's)
            wanted = sum(leg.volume - leg.carried for leg in legs)
            gone = round(order.quantity - rq.to_units(executed, spec), 8)
            if gone > _EPS:
                if sub.refusal is not None:
                    code, words = sub.refusal
                elif executed < wanted - _EPS:
                    done, asked = rq.to_units(executed, spec), rq.to_units(wanted, spec)
                    code, words = (
                        ReasonCode.EXPIRED,
                        (f"filled {done:.10g} of {asked:.10g}; the rest expired (IOC)"),
                    )
                elif sub.remainder_words:
                    code, words = sub.remainder_code, sub.remainder_words
                else:
                    step = spec.volume_step
                    code, words = (
                        ReasonCode.INVALID_QUANTITY,
                        (
                            f"{gone:.10g} below {spec.name}'s volume step {step:.10g} lots "
                            f"({rq.to_units(step, spec):.10g} units)"
                        ),
                    )
                events.append(OrderUpdate(order_id, OrderStatus.CANCELLED, ts, words, code=code))
            with self._lock:
                self._working.pop(order_id, None)
        self._emit(*events)

    def _note_entry(self, order: Order, deal: Any) -> None:
        """A deal that opened (or reversed into) a position with the order's SL/TP: the
        position's SL/TP are the order's bracket children from now on."""
        if int(deal.entry) not in (_DEAL_ENTRY_IN, _DEAL_ENTRY_INOUT):
            return
        position = int(deal.position_id)
        self._parents[position] = order.client_order_id
        for role, price in (("sl", order.stop_loss), ("tp", order.take_profit)):
            if price:
                child_id = child_order_id(order.client_order_id, role)
                self._children[child_id] = (position, role)
                # The poll's baseline: the engine books the child at the price asked, for
                # every ticket of the entry (its tickets looked at again); a ticket already
                # said to be outside the child (a split entry's) is not said again.
                before = self._child_levels.get(child_id)
                off = before.off if before is not None else frozenset()
                self._child_levels[child_id] = _Booked(price, order.side is Side.BUY, off=off)

    # -- cancel / amend ----------------------------------------------------------------------

    def _cancel_job(self, client_order_id: str, user: bool) -> None:
        ts = self._utc(self._server_now)
        code = ReasonCode.CANCELLED_BY_USER
        child = self._children.get(client_order_id)
        if child is not None and self._level_of_others(client_order_id, *child):
            # A netting position's level is every entry's child: one the bot cut to nothing
            # (its part of the position was reduced away) leaves it to the others.
            del self._children[client_order_id]
            said = (
                f"cancelled; position {child[0]}'s {child[1].upper()} stays for its other children"
            )
            self._emit(OrderUpdate(client_order_id, OrderStatus.CANCELLED, ts, said, code=code))
            return
        if child is not None:
            refusal, _set = self._set_child_stops(client_order_id, child[0], child[1], 0.0)
            if refusal is None:
                del self._children[client_order_id]
                self._emit(
                    OrderUpdate(client_order_id, OrderStatus.CANCELLED, ts, "cancelled", code=code)
                )
            return
        ticket = next((t for t, cid in self._tickets.items() if cid == client_order_id), 0)
        recut = self._recuts.get(client_order_id)
        if not ticket and recut is not None:
            # A cut exit in doubt (the removal of its old ticket, or its new order): the next
            # poll's look-up removes whichever ticket rests, and sends nothing again
            # (``_settle_removal``, ``_settle_recuts``).
            recut.cancel = True
            return
        if not ticket:
            return  # not resting at the terminal (filled, or never placed): nothing to cancel
        result = self._call("order_send", rq.remove_request(ticket))
        if result is not None and verdict(int(result.retcode)).action is Action.DONE:
            del self._tickets[ticket]
            self._booked.pop(client_order_id, None)
            with self._lock:
                self._working.pop(client_order_id, None)
            self._emit(
                OrderUpdate(client_order_id, OrderStatus.CANCELLED, ts, "cancelled", code=code)
            )
        # Otherwise it filled or went meanwhile: the next poll reports what happened to it.

    def _level_of_others(self, client_order_id: str, position_id: int, role: str) -> bool:
        """Whether ``client_order_id``, a child of netting position ``position_id``, closes
        none of it while another child of its level does (``bracket_shares``): clearing the
        level would take their stop away."""
        if self._hedging:
            return False
        held = ours(self._call("positions_get", ticket=position_id), self._magic)
        if not held:
            return False
        working = self._shares(position_id, _levels_held(held[0])).working[role]
        ids = {share.client_order_id for share in working}
        return client_order_id not in ids and bool(ids)

    def _cancel_all_job(self, symbol: str | None) -> None:
        with self._lock:
            working = [
                cid
                for cid, order in self._working.items()
                if symbol is None or order.symbol == symbol
            ]
        for client_order_id in working:
            self._cancel_job(client_order_id, user=True)
        venue = None if symbol is None else self._symbols.venue(symbol)
        live = {int(p.ticket): p for p in ours(self._call("positions_get"), self._magic)}
        for child_id, (position, _role) in list(self._children.items()):
            held = live.get(self._ticket_left(child_id, position, live))
            if held is not None and (venue is None or str(held.symbol) == venue):
                self._cancel_job(child_id, user=True)

    def _entry_positions(self, child_id: str, position_id: int) -> list[Any]:
        """The open positions child ``child_id``'s level is on (``position_id``: the one it was
        noted on): on a netting account that one position; on a hedging account every ticket
        its entry opened, oldest first (``entry_tickets``) — one entry sent in several requests
        has several, each carrying its SL/TP, and a move or a cancel of the child on one of
        them only would leave the others at the old level. Nothing read: []."""
        found = bracket_role(child_id)
        if not self._hedging or found is None:
            return ours(self._call("positions_get", ticket=position_id), self._magic)
        held = ours(self._call("positions_get"), self._magic)
        return entry_tickets(held, found[0], self._parent_of)

    def _child_tickets(self, child_id: str, position_id: int) -> tuple[list[Any], list[Any]]:
        """``_entry_positions`` split into hedging child ``child_id``'s own tickets and those
        the poll found outside it (a person removed or moved their line: ``_tickets_look``):
        the bot moves or clears its own level on the first, and leaves a person's own level
        on the others (or its lack of one) as it is — also once the child's own tickets are
        all closed: a move or a cancel then acts on nothing (the poll ends the child,
        ``_ticket_left``)."""
        positions = self._entry_positions(child_id, position_id)
        off = self._off(child_id)
        own = [p for p in positions if int(p.ticket) not in off]
        return own, [p for p in positions if int(p.ticket) in off]

    def _off(self, child_id: str) -> frozenset[int]:
        """The tickets the poll found outside hedging child ``child_id`` (``_tickets_look``)."""
        booked = self._child_levels.get(child_id)
        return frozenset() if booked is None else booked.off

    def _outside_child(self, position_id: int, roles: Collection[str] = ("sl", "tp")) -> bool:
        """Hedging: whether ticket ``position_id`` is outside a child of its entry (of
        ``roles``): the poll found its line removed or moved by a person (``_tickets_look``),
        the child being the entry's other tickets."""
        if not self._hedging:
            return False
        entry = self._parent_of(position_id)
        if entry is None:
            return False
        for role in roles:
            booked = self._child_levels.get(child_order_id(entry, role))
            if booked is not None and position_id in booked.off:
                return True
        return False

    def _fired_apart(
        self, closer: Any, held: Sequence[Any], closers: Iterable[Any], *, running: bool
    ) -> bool:
        """Hedging: whether ``closer`` (a deal or order the terminal made when a ticket's SL or
        TP fired) closed a ticket a person had set apart from its entry's child, as the
        terminal tells it whatever the poll saw (``fired_outside``: the level the close's
        comment names, ``[sl 1.09700]``, against the child's level). ``running``: the bot's
        own poll, which knows the level it holds for the child (``_child_levels``) and the
        tickets it found outside it (``_off``); else start-up reconciliation, for which a
        close at the level the journal holds for the child (``restore_orders``) is its fill,
        and another is outside when the tickets at that level hold the whole child the
        journal holds, else judged by the oldest ticket's level (``restart_fired_outside``).
        Either as the entry's
        other tickets tell it: ``held``, the bot's positions, and ``closers``, the deals or
        orders read with ``closer`` (those of its tickets that fired, before or after it). Its
        close is then no fill of the child, but a change made outside the bot."""
        role = child_role(int(getattr(closer, "reason", -1)))
        position_id = int(getattr(closer, "position_id", 0))
        if not self._hedging or role is None or not position_id:
            return False
        parent = self._parent_of(position_id)
        if parent is None:
            return False
        level = fired_level(str(closer.comment), role)
        if level is None:
            return False
        tickets = entry_tickets(held, parent, self._parent_of)
        child_id = child_order_id(parent, role)
        half = self._half_tick(str(closer.symbol))
        if not running:
            # A restart: judged against the level and quantity the journal holds for the
            # child (``restart_fired_outside``): its own line's close is its fill; another
            # is outside when the tickets at the journal's level account for the whole
            # child (the running bot had set the closed ticket apart), else judged by the
            # oldest ticket, the journal's level maybe newer than the close.
            fired = self._fired_lots(closers, role, parent)
            return restart_fired_outside(
                position_id,
                role,
                level,
                tickets,
                half,
                fired=fired,
                booked=self._journaled_level(child_id),
                journaled=self._journaled_lots(child_id),
                opened=self._opened_lots([*(int(t.ticket) for t in tickets), *fired]),
            )
        held_for = self._child_levels.get(child_id)
        return fired_outside(
            position_id,
            role,
            level,
            tickets,
            half,
            fired=self._fired_levels(closers, role, parent),
            booked=None if held_for is None else held_for.price,
            outside=self._off(child_id),
        )

    def _journaled_level(self, child_id: str) -> float | None:
        """The level the journal holds SL/TP child ``child_id`` at (``restore_orders``); None
        when it holds no such child (a broker not told, or a child it never journaled)."""
        with self._lock:
            order = self._journaled.get(child_id)
        price = None if order is None else order.price
        return price if price is not None and price > 0.0 else None

    def _fired_levels(self, closers: Iterable[Any], role: str, parent: str) -> dict[int, float]:
        """The tickets of entry ``parent`` that ``closers`` (deals or orders) say closed on
        their own ``role`` line, each with the level it fired at (``fired_level``)."""
        return {t: level for t, (level, _lots) in self._fired_lots(closers, role, parent).items()}

    def _fired_lots(
        self, closers: Iterable[Any], role: str, parent: str
    ) -> dict[int, tuple[float, float]]:
        """``_fired_levels`` with the lots each ticket's close took: ticket -> (level, lots),
        read from the close itself — an order's ``volume_initial``, a deal's ``volume`` —,
        never from the ticket's opening order or deal, which shares its ``position_id``. The
        sum of all its closes on the line: a close filled in parts is several deals of one
        ticket, and the last alone would make it look smaller than what it closed."""
        fired: dict[int, tuple[float, float]] = {}
        for closer in closers:
            position_id = int(getattr(closer, "position_id", 0))
            if (
                not position_id
                or int(getattr(closer, "magic", 0)) != self._magic
                or child_role(int(getattr(closer, "reason", -1))) != role
            ):
                continue
            level = fired_level(str(closer.comment), role)
            if level is not None and self._parent_of(position_id) == parent:
                lots: Any = getattr(closer, "volume_initial", None)  # an order's
                if lots is None:
                    lots = getattr(closer, "volume", 0.0)  # a deal's
                _was, before = fired.get(position_id, (level, 0.0))
                fired[position_id] = (level, before + float(lots))
        return fired

    def _opened_lots(self, tickets: Iterable[int]) -> dict[int, float]:
        """Each of ``tickets``' volume when it opened (lots), from its own deals: what a person
        closed of a ticket by hand since does not make its entry's child look wider."""
        opened: dict[int, float] = {}
        for ticket in dict.fromkeys(tickets):
            opened.update(opened_lots(self._call("history_deals_get", position=ticket) or ()))
        return opened

    def _journaled_lots(self, child_id: str) -> float:
        """The quantity the journal holds SL/TP child ``child_id`` at (``restore_orders``), in
        lots; 0 when it holds no such child."""
        with self._lock:
            order = self._journaled.get(child_id)
        if order is None:
            return 0.0
        return rq.to_lots(order.quantity, self._spec(order.symbol))

    def _ticket_left(self, child_id: str, position_id: int, live: Mapping[int, Any]) -> int:
        """An open position (``live``: the bot's, by ticket) child ``child_id``'s level is on:
        ``position_id`` itself, or on a hedging account another ticket of its entry (a split
        entry whose newest ticket closed still protects the others) — not one found outside
        the child (``_off``: a person's own line, which the child never takes over); 0 when
        none is: the child has nothing left to close, and ends."""
        off = self._off(child_id)
        if position_id in live and position_id not in off:
            return position_id
        found = bracket_role(child_id)
        if not self._hedging or found is None:
            return 0
        left = entry_tickets(live.values(), found[0], self._parent_of)
        return next((int(p.ticket) for p in left if int(p.ticket) not in off), 0)

    def _set_child_stops(
        self, child_id: str, position_id: int, role: str, price: float
    ) -> tuple[tuple[ReasonCode, str] | None, list[int]]:
        """Set child ``child_id``'s level (``role``) to ``price`` (0: clear it) on every open
        position it is on (``_entry_positions``; on a hedging account its own tickets, never
        one a person set apart: ``_child_tickets``): (the refusal, None when done; the tickets
        it was set on). A ticket closed meanwhile is skipped; with none left open, the refusal
        is ``_set_stops``' (the position is closed), or, while tickets set apart are open, a
        refusal naming them (nothing sent). It stops at the first refusal: the terminal
        refuses one level alike on every ticket of one entry (one side, one price), and the
        tickets already set are named in it, so the level held is never a guess."""
        if not self._hedging:
            refusal = self._set_stops(position_id, role, price)
            return refusal, [] if refusal is not None else [position_id]
        done: list[int] = []
        gone: tuple[ReasonCode, str] = (
            ReasonCode.UNKNOWN_ORDER,
            "the position the child protected is closed",
        )
        own, apart = self._child_tickets(child_id, position_id)
        if not own and apart:
            # Only a person's tickets are left: nothing is the bot's to set. Refused, not
            # rejected as closed (the engine would close the position for a stop it thinks
            # refused: a person's ticket); the poll ends the child.
            words = _closed_words(role, apart)
            return (ReasonCode.VENUE_REJECTED, f"nothing sent: {words}"), []
        for position in own:
            ticket = int(position.ticket)
            refusal = self._set_stops(ticket, role, price)
            if refusal is None:
                done.append(ticket)
                continue
            if refusal[0] is ReasonCode.UNKNOWN_ORDER:
                gone = refusal
                continue
            if done:
                level = f"{role.upper()} {price:.10g}" if price else f"no {role.upper()}"
                words = f"{refusal[1]} on position {ticket}; {_positions_words(done)} hold {level}"
                log.warning("%s: %s", child_id, words)
                refusal = (refusal[0], words)
            return refusal, done
        return (None if done else gone), done

    def _set_stops(
        self, position_id: int, role: str, price: float
    ) -> tuple[ReasonCode, str] | None:
        held = ours(self._call("positions_get", ticket=position_id), self._magic)
        if not held:
            return ReasonCode.UNKNOWN_ORDER, "the position the child protected is closed"
        position = held[0]
        spec = next((s for s in self._specs.values() if s.name == str(position.symbol)), None)
        if spec is None:
            spec = self._spec(self._symbols.ours(str(position.symbol)))
        sl = price if role == "sl" else float(position.sl)
        tp = price if role == "tp" else float(position.tp)
        if price:
            long = int(position.type) == _POSITION_TYPE_BUY
            exit_side = Side.SELL if long else Side.BUY
            kind = OrderType.STOP if role == "sl" else OrderType.LIMIT
            rounded = rq.on_tick(price, spec, exit_side, kind)
            sl, tp = (rounded, tp) if role == "sl" else (sl, rounded)
            # Checked as an entry's SL/TP are, naming the level: from the price that would
            # close the position (the bid for a long, the ask for a short).
            tick = self._call("symbol_info_tick", spec.name)
            if tick is not None and float(tick.bid) > 0 and float(tick.ask) > 0:
                close_at = float(tick.bid) if long else float(tick.ask)
                side = Side.BUY if long else Side.SELL
                new_sl, new_tp = (rounded, 0.0) if role == "sl" else (0.0, rounded)
                bad = rq.stops_problem(side, close_at, new_sl, new_tp, spec)
                if bad is not None:
                    return ReasonCode.INVALID_PRICE, bad
        request = rq.sltp_request(
            spec, position=int(position.ticket), stop_loss=sl, take_profit=tp, magic=self._magic
        )
        result = self._call("order_send", request)
        if result is None:
            return ReasonCode.VENUE_REJECTED, "order_send refused the SL/TP change"
        retcode = int(result.retcode)
        if retcode in (10009, 10025):  # done, or no change needed
            return None
        v = verdict(retcode)
        if v.action is Action.RECONCILE and self._stops_are(position_id, sl, tp, spec):
            # The answer was lost but the change landed (a timeout after it executed): said
            # as refused, the bot's book would keep an SL the position no longer has.
            return None
        return (v.code or ReasonCode.VENUE_REJECTED), f"{v.words} ({retcode})"

    def _held_stop(self, position_id: int, role: str) -> float | None:
        """The SL (``role`` "sl") or TP the position holds now, read back from the terminal
        after a TRADE_ACTION_SLTP: the server may keep another price than the one sent (a
        stops level it clamps to, its own rounding), and that is the one to book. None when
        the position cannot be read (closed meanwhile, the call failed): the engine then
        books the price asked. A 0 (the server holds none) is passed on for the engine to
        say."""
        held = ours(self._call("positions_get", ticket=position_id), self._magic)
        if not held:
            return None
        return float(held[0].sl if role == "sl" else held[0].tp)

    def _stops_are(self, position_id: int, sl: float, tp: float, spec: rq.SymbolSpec) -> bool:
        """Whether the position now holds exactly this SL and TP (read again from the
        terminal)."""
        held = ours(self._call("positions_get", ticket=position_id), self._magic)
        half = spec.point / 2
        return (
            bool(held)
            and abs(float(held[0].sl) - sl) <= half
            and (abs(float(held[0].tp) - tp) <= half)
        )

    def _amend_job(self, client_order_id: str, quantity: float | None, price: float | None) -> None:
        try:
            self._answer_amend(client_order_id, quantity, price)
        except TerminalLost:
            raise  # runs again once the terminal is back: still on its way
        except Exception:
            self._amend_done(client_order_id)  # answered by no one: the poll watches again
            raise
        self._amend_done(client_order_id)

    def _amend_done(self, client_order_id: str) -> None:
        with self._lock:
            left = self._amending.pop(client_order_id, 1) - 1
            if left > 0:
                self._amending[client_order_id] = left

    def _answer_amend(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> None:
        ts = self._utc(self._server_now)
        refusal: tuple[ReasonCode, str] | None
        held: float | None = None  # the price the terminal holds now (None: nothing moved)
        child = self._children.get(client_order_id)
        if child is not None:
            # MT5 SL/TP are position attributes: the level closes what the position holds
            # when it fires, so a child's quantity (the bot's count of its part: an engine
            # cutting it to a smaller position) needs nothing sent.
            if price is None:
                refusal = None
            else:
                refusal, done = self._set_child_stops(client_order_id, child[0], child[1], price)
                if refusal is None:
                    held = self._held_stop(done[0], child[1])
                    # The poll's baseline: what the engine books from the answer below.
                    booked = self._child_levels.get(client_order_id)
                    if booked is not None:
                        booked = booked._replace(price=price if held is None else held)
                        self._child_levels[client_order_id] = booked
        elif client_order_id in self._recuts:
            # A cut exit between its removed ticket and its new one (``_Recut``): refused,
            # never UNKNOWN_ORDER (REJECTED: the engine would drop an exit the next poll may
            # find resting), and never applied: the old ticket's removal in doubt, a move sent
            # to it may find it gone, and the cut re-places the exit at the price it copied
            # before (the move lost though answered); the new order in doubt, its ticket is not
            # known, and a price kept for a resend would miss a new order already resting —
            # the id at two prices. Asked again once the poll settled the cut, it moves the
            # ticket that rests.
            refusal = _recut_amend_refusal(self._recuts[client_order_id])
        else:
            decided = self._amend_against_market(client_order_id, quantity, price)
            if decided is True:
                return  # moved through the market: the move answers
            if isinstance(decided, tuple):
                refusal = decided
            else:
                refusal, held = self._modify_pending(client_order_id, quantity, price)
                if refusal is None and held is not None:
                    self._booked[client_order_id] = held  # reported below: the poll's baseline
        self._say_amend(client_order_id, refusal, held, ts)

    def _say_amend(
        self,
        client_order_id: str,
        refusal: tuple[ReasonCode, str] | None,
        held: float | None = None,
        ts: int | None = None,
    ) -> None:
        """An amend's answer: ``amended`` (at ``held``, the price the terminal holds; None: the
        price asked), or its refusal."""
        ts = self._utc(self._server_now) if ts is None else ts
        if refusal is None:
            self._emit(OrderUpdate(client_order_id, OrderStatus.OPEN, ts, "amended", price=held))
        elif refusal[0] is ReasonCode.UNKNOWN_ORDER:
            self._emit(
                OrderUpdate(client_order_id, OrderStatus.REJECTED, ts, refusal[1], code=refusal[0])
            )
        else:
            # The terminal still holds the order as it was: it stays working (a REJECTED here
            # would make the engine drop a live order, e.g. a protective stop).
            self._emit(
                OrderUpdate(
                    client_order_id,
                    OrderStatus.OPEN,
                    ts,
                    f"amend refused: {refusal[1]}",
                    code=refusal[0],
                )
            )

    def _amend_against_market(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> tuple[ReasonCode, str] | bool:
        """A resting order's move decided against the market on the tick, before anything is
        sent, as a submit at that price is: through the market (a buy limit moved above the
        ask), moved as a deal (``_move_through``; True: answered there); inside
        ``trade_stops_level`` (its price, or its SL/TP measured from it), the refusal naming
        the level (the terminal would answer a bare 10015/10016); False: the ordinary
        TRADE_ACTION_MODIFY (``_modify_pending``), which also refuses what is no move of a
        resting order. A move a lost terminal interrupted goes on where it stopped."""
        move = self._moves.get(client_order_id)
        if move is not None:
            self._move_through(client_order_id, move)
            return True
        ticket = next((t for t, cid in self._tickets.items() if cid == client_order_id), 0)
        with self._lock:
            order = self._working.get(client_order_id)
        if price is None or not ticket or order is None or order.order_type is OrderType.MARKET:
            return False
        if quantity is not None and abs(quantity - order.quantity) > _EPS:
            return False  # MT5 cannot change a resting order's volume: refused, named
        spec = self._spec(order.symbol)
        tick = self._call("symbol_info_tick", spec.name)
        if tick is None or not (float(tick.bid) > 0 and float(tick.ask) > 0):
            return False  # no quote to decide on: the terminal decides
        bid, ask = float(tick.bid), float(tick.ask)
        self._server_now = max(self._server_now, int(tick.time))
        moved = order._replace(price=rq.on_tick(price, spec, order.side, order.order_type))
        if not rq.through_market(moved, spec, bid, ask):
            bad = rq.resting_problem(moved, spec, bid, ask)
            return False if bad is None else (ReasonCode.INVALID_PRICE, bad)
        problem = self._move_problem(moved, spec, bid, ask)
        if problem is not None:
            return problem
        self._moves[client_order_id] = move = _Move(ticket, moved)
        self._move_through(client_order_id, move)
        return True

    def _move_problem(
        self, moved: Order, spec: rq.SymbolSpec, bid: float, ask: float
    ) -> tuple[ReasonCode, str] | None:
        """Why a resting order moved through the market (``moved``: at its new price) cannot
        trade as a deal, known before its resting order is cancelled: its SL/TP inside the
        stops level from the close side (as for any market entry), an SL/TP the netting
        position would not take (``_netting_stops_problem``), or no comment left in its id
        family for another request. Refused then, the order works as it was."""
        sl, tp = moved.stop_loss or 0.0, moved.take_profit or 0.0
        if sl or tp:
            close_side = bid if moved.side is Side.BUY else ask
            bad = rq.stops_problem(moved.side, close_side, sl, tp, spec)
            if bad is not None:
                return ReasonCode.INVALID_PRICE, bad
            if not self._hedging and not moved.reduce_only:
                clash = self._netting_stops_problem(moved, spec)
                if clash is not None:
                    return ReasonCode.VENUE_REJECTED, clash
        with self._lock:
            first = rq.next_leg(moved.client_order_id, self._known_comments)
        if first >= rq.MAX_LEGS:
            return ReasonCode.VENUE_REJECTED, (
                f"the order went out in {rq.MAX_LEGS} requests already, as many as its id "
                "can name at the terminal: cancel it and send a new one"
            )
        return None

    def _move_through(self, client_order_id: str, move: _Move) -> None:
        """Move a resting order through the market as a submit at that price goes: its resting
        order cancelled (``_cancel_for_move``), then what is left of it sent as the order at its
        new price — a deal bounded by the limit (its deviation), the rest of an IOC deal that
        filled in part resting at the limit (``_rest_the_rest``) — under the order's id family
        on a comment no request of it had (``rq.next_leg``): looked up by that comment before
        any resend, it never fills twice. Nothing sent when the cancel finds it filled."""
        try:
            if move.rest is None:
                lots = self._cancel_for_move(client_order_id, move)
                if lots is None:
                    self._moves.pop(client_order_id, None)
                    return
                spec = self._spec(move.order.symbol)
                with self._lock:
                    first = rq.next_leg(client_order_id, self._known_comments)
                rest = move.order._replace(quantity=rq.to_units(lots, spec))
                if rest.price is not None:  # always: a limit or stop at its new price
                    self._reprice_working(client_order_id, rest.price)
                move.rest = _Submission(rest, first_leg=first, moved_to=rest.price)
            self._submit(move.rest)
        except TerminalLost:
            raise  # the amend runs again once the terminal is back, and goes on from here
        except Exception as error:
            self._moves.pop(client_order_id, None)
            if move.rest is None:
                raise  # its resting order, if cancelled, is the poll's to report
            log.exception("%s: the move through the market failed", client_order_id)
            self._refuse(move.rest, ReasonCode.VENUE_REJECTED, error)
            return
        self._moves.pop(client_order_id, None)

    def _cancel_for_move(self, client_order_id: str, move: _Move) -> float | None:
        """Cancel a moving order's resting order: the lots left of it to trade (what had not
        filled, from its record in history), or None when nothing is to be sent, the amend
        answered here: the order still rests as it was (refused), it filled or ended
        otherwise first (the poll reports how), or the outcome is unknown (sending on a guess
        could fill it twice: the poll reports the order as the terminal holds it)."""
        ticket = move.ticket
        answer: int | None = None
        # Resumed after a lost terminal: sent again only to an order that still rests.
        live = self._still_rests(ticket) if move.cancel_sent else True
        if live:
            move.cancel_sent = True
            result = self._call("order_send", rq.remove_request(ticket))
            answer = None if result is None else int(result.retcode)
            live = False if answer == _RETCODE_DONE else self._still_rests(ticket)
        history = ours(self._call("history_orders_get", ticket=ticket), self._magic)
        record = history[0] if history else None
        state = None if record is None else int(record.state)
        left = 0.0 if record is None else float(record.volume_current)
        outcome = _after_move_cancel(answer, live, state, left)
        if outcome == "cancelled":
            self._tickets.pop(ticket, None)  # ended by the bot: not the poll's to report
            self._booked.pop(client_order_id, None)
            return left
        self._say_amend(client_order_id, _move_cancel_refusal(outcome, answer))
        return None

    def _still_rests(self, ticket: int) -> bool | None:
        """Whether the bot's order ``ticket`` rests at the terminal (None: the read failed)."""
        read = self._call("orders_get", ticket=ticket)
        return None if read is None else bool(ours(read, self._magic))

    def _modify_pending(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> tuple[tuple[ReasonCode, str] | None, float | None]:
        """Move a resting order's price: (None, the price the terminal holds now) when done —
        None for that price when nothing was asked to move —, else (the refusal, None), the
        order still working at the price it had."""
        ticket = next((t for t, cid in self._tickets.items() if cid == client_order_id), 0)
        with self._lock:
            order = self._working.get(client_order_id)
        if not ticket or order is None:
            return (ReasonCode.UNKNOWN_ORDER, "no resting order with this client order id"), None
        if quantity is not None and abs(quantity - order.quantity) > _EPS:
            # Bad input is named as such (below the minimum, off the volume range) before the
            # venue's own limit: MT5 cannot change a resting order's volume at all.
            spec = self._spec(order.symbol)
            lots = rq.round_volume(rq.to_lots(quantity, spec), spec)
            problem = rq.volume_problem(lots, spec, quantity)
            if problem is not None:
                return problem, None
            return (
                ReasonCode.VENUE_REJECTED,
                "MT5 cannot change a resting order's volume; cancel it and send a new one",
            ), None
        if price is None:
            return None, None
        spec = self._spec(order.symbol)
        new_price = rq.on_tick(price, spec, order.side, order.order_type)
        live = ours(self._call("orders_get", ticket=ticket), self._magic)
        if not live:
            # TRADE_ACTION_MODIFY sets the order's SL and TP too: sent without them read, it
            # would wipe a pending entry's own stop-loss (its position would open unprotected).
            return (
                ReasonCode.VENUE_UNAVAILABLE,
                "the order could not be read before the change (its stop-loss and take-profit "
                "are sent with it): nothing was sent; it still works as it was",
            ), None
        sl = float(live[0].sl)
        tp = float(live[0].tp)
        # The price the order works at just before the change, as the terminal holds it: a
        # lost answer's read back is told apart from it (the broker's own may be stale, after
        # an earlier lost answer it could not settle).
        before = _usable_price(live[0].price_open)
        request = rq.modify_request(
            spec, ticket=ticket, price=new_price, stop_loss=sl, take_profit=tp
        )
        result = self._call("order_send", request)
        retcode = None if result is None else int(result.retcode)
        if retcode in (10009, 10025):
            return None, self._moved(client_order_id, ticket, new_price)
        if retcode is None:
            # None without a lost terminal (that raises and runs the amend again): the
            # request may still have reached the server.
            lost, code = "order_send answered nothing", ReasonCode.VENUE_REJECTED
        else:
            v = verdict(retcode)
            if v.action is not Action.RECONCILE:
                return ((v.code or ReasonCode.VENUE_REJECTED), f"{v.words} ({retcode})"), None
            lost = f"{v.words} ({retcode})"
            code = v.code or ReasonCode.UNKNOWN_OUTCOME
        return self._settle_lost_modify(
            client_order_id, ticket, (before, order.price), new_price, spec, (lost, code)
        )

    def _moved(self, client_order_id: str, ticket: int, sent: float) -> float:
        """The price a done TRADE_ACTION_MODIFY left the order at, read back and kept as the
        working order's. The change is done whatever the read back finds: a failed read is
        no refusal."""
        read = ours(self._call("orders_get", ticket=ticket), self._magic)
        held = _held_pending_price(read, sent)
        if held.unread:
            log.warning("%s: moved, but %s", client_order_id, held.unread)
        elif held.differs:
            log.info("%s: %s", client_order_id, held.differs)
        self._reprice_working(client_order_id, held.price)
        return held.price

    def _settle_lost_modify(
        self,
        client_order_id: str,
        ticket: int,
        before: tuple[float | None, float | None],
        sent: float,
        spec: rq.SymbolSpec,
        lost: tuple[str, ReasonCode],
    ) -> tuple[tuple[ReasonCode, str] | None, float | None]:
        """A TRADE_ACTION_MODIFY whose answer was lost (``lost``: what came back, and the
        refusal's code), settled by reading the order back as an SL/TP move's is
        (``_stops_are``): said refused, a change the terminal applied would leave the bot's
        book, journal and a restart's re-arm at a price the order no longer works at.
        ``before``: the price read just before the change (None: unread), and the broker's."""
        read = self._call("orders_get", ticket=ticket)
        terminal = before[0]
        last = terminal if terminal is not None else before[1]
        found = _pending_after_doubt(
            None if read is None else ours(read, self._magic), last, sent, spec.tick_size
        )
        words, code = lost
        if found.applied and found.price is not None:
            log.warning(
                "%s: %s, but read back the order works at %s: amended%s",
                client_order_id,
                words,
                found.price,
                f" ({found.said})" if found.said else "",
            )
            self._reprice_working(client_order_id, found.price)
            return None, found.price
        if found.applied is False and found.price is not None:
            self._reprice_working(client_order_id, found.price)
            why = f"{words}; read back, the order still works at {found.price}: the change "
            return (code, why + "was not applied"), None
        # Unsettled: the broker keeps the last price it read (just before the change, when it
        # could), never the one it sent and did not read; the next amend reads it first.
        if terminal is not None:
            self._reprice_working(client_order_id, terminal)
        return (ReasonCode.UNKNOWN_OUTCOME, f"{words}, outcome unknown: {found.said}"), None

    def _reprice_working(self, client_order_id: str, price: float) -> None:
        with self._lock:
            order = self._working.get(client_order_id)
            if order is not None:
                self._working[client_order_id] = order._replace(price=price)

    # -- polling: fills of resting orders, SL/TP closes, the account -------------------------

    def _poll(self) -> None:
        self._next_poll = time.monotonic() + self.params.poll_interval_s
        link = self._link
        if link is None or not link.up or not self._magic:
            return
        account = self._call("account_info")
        self._balance = float(account.balance)
        info = self._call("terminal_info")
        self._server_up = bool(info.connected)
        if time.monotonic() >= self._next_zone_look:
            # A tick now and then, so a DST switch is followed by a bot that sends nothing
            # (its SL firing on Monday is stamped in the new zone); two looks within
            # ZONE_TOLERANCE_S of each other measure a zone going back (``ServerClock``).
            self._now()
        events: list[Event] = []
        try:
            self._poll_into(events)
        finally:
            # What was found before a terminal lost mid-poll is reported all the same: its
            # deals are marked seen and would not come back.
            if events:
                self._emit(*events)

    def _poll_into(self, events: list[Event]) -> None:
        # Every deal, not only the bot's: one by someone else (a person closing the bot's
        # position by hand, magic 0) that reduces or closes one of the bot's positions is
        # booked (``_outside_fill``), or the bot would trade on a position it no longer has.
        deals = self._call("history_deals_get", self._poll_from, _FAR) or ()
        newest = max((int(deal.time) for deal in deals), default=0)
        if newest and zone_floor(newest, time.time(), self._offset) is not None:
            # A deal stamped later than the zone in use allows (a deal is never stamped after
            # it is seen): the server's zone moved since the last look — a DST switch over a
            # closed market, its first deal a gap stop at the reopen. Looked at (a tick; else
            # the deal's own time) before any deal is converted, or it is booked an hour ahead.
            self._now()
            if zone_floor(newest, time.time(), self._offset) is not None:
                self._saw_tick(_Stamp(newest))
        for deal in sorted(deals, key=lambda d: int(d.ticket)):
            ticket = int(deal.ticket)
            self._poll_from = max(self._poll_from, int(deal.time) - 1)
            if self._seen_deals.taken(ticket, int(deal.time)):
                continue
            # Seen once decided: a terminal lost while deciding leaves it for the next poll.
            if int(deal.magic) != self._magic or not self._deal_event(deal, events, deals):
                outside = self._outside_fill(deal)
                if outside is not None:
                    events.extend(self._with_swap(deal, outside))
            self._seen_deals.add(ticket, int(deal.time))
        # No later read reaches back a day before the poll's start: older deals cannot come
        # back, and a long-lived pod need not keep their tickets.
        self._seen_deals.forget_before(self._poll_from - _DAY)
        # A read that failed (None: the terminal answers () when there is none) is no news:
        # read as empty, it would end every resting order and every bracket child the bot has.
        # The positions before the orders: a resting exit that fills in part between the two
        # reads then shows its rest against the position from before the fill, which holds
        # more — never its volume from before the fill against a position that already holds
        # less, whose covered rest ``_cancel_reduce_only_beyond`` would remove. (The bot sends
        # nothing meanwhile: its requests go out on this thread.)
        held = self._call("positions_get")
        orders = self._call("orders_get")
        resting = ours(orders, self._magic)
        live = {int(o.ticket) for o in resting}
        for ticket, client_order_id in list(self._tickets.items()):
            if orders is None or ticket in live:
                continue
            del self._tickets[ticket]
            self._booked.pop(client_order_id, None)
            self._resting_gone(ticket, client_order_id, events)
        events.extend(self._report_moved_pending(resting))
        positions = {int(p.ticket): p for p in ours(held, self._magic)}
        for child_id, (position, role) in list(self._children.items()) if held is not None else ():
            left = self._ticket_left(child_id, position, positions)
            off = self._off(child_id).intersection(positions)  # a person's tickets, open
            if left:
                # Hedging: another ticket of a split entry still holds the child's level.
                self._children[child_id] = (left, role)
            else:
                del self._children[child_id]
                events.append(
                    OrderUpdate(
                        child_id,
                        OrderStatus.CANCELLED,
                        self._utc(self._server_now),
                        _closed_words(role, [positions[t] for t in sorted(off)]),
                        code=ReasonCode.CANCELLED_BY_VENUE,
                    )
                )
        if held is not None and orders is not None and not self._hedging:
            # A cut exit's new order in doubt first: found, it is watched (and judged) again.
            events.extend(self._settle_recuts(resting, positions))
            events.extend(self._cancel_reduce_only_beyond(resting, positions))
        if held is not None:
            events.extend(self._report_changed_children(positions))
        # After the deals' events: a swap booked by a deal above leaves the accrual first.
        events.extend(self._refresh_positions())

    def _cancel_reduce_only_beyond(
        self, resting: Sequence[Any], positions: Mapping[int, Any]
    ) -> list[OrderUpdate]:
        """Netting: the bot's reduce-only orders resting at the terminal (``resting``, from the
        poll's ``orders_get``) for more than the bot's position holds against them
        (``positions``: the bot's, by ticket, read before the orders, so an exit's fill between
        the reads only makes it look smaller) — a person closed part or all of it, its
        stop-loss fired, an exit filled. The terminal knows no reduce-only, so such an order
        would open (or reverse into) a position when the market reaches it, and MT5 cannot
        change a pending order's volume (TRADE_ACTION_MODIFY moves its price, SL/TP and expiry
        only): its ticket is removed, and while the position still covers at least the
        symbol's minimum volume of it (``_covered_volume``) a new order like it is sent for
        that, sized on what is true once the ticket is removed (``_size_recut``: the exit is
        cut, not taken away from what is left); otherwise it is reported cancelled, naming the
        position. A removal answered other than DONE (its answer lost, the terminal lost, or
        refused: it filled meanwhile) is in doubt: noted as a cut not sized yet, removing
        (``_Recut.removing``), for the next poll to look the ticket up (``_settle_removal``)."""
        found: list[OrderUpdate] = []
        for record in resting:
            ticket = int(record.ticket)
            client_order_id = self._tickets.get(ticket)
            if client_order_id is None:
                continue
            with self._lock:
                order = self._working.get(client_order_id)
            if order is None or not order.reduce_only:
                continue
            spec = self._specs.get(order.symbol)
            if spec is None:
                continue
            against = _against(order, spec, positions)
            lots = float(record.volume_current)
            beyond = _reduce_only_beyond(order, lots, against, spec)
            if beyond is None:
                continue
            # Noted before the send, so a terminal lost during it (the call raises) leaves
            # the ticket to the next poll's look-up as well; unwatched meanwhile, so the poll
            # never takes a removal that went through for the venue's cancel.
            del self._tickets[ticket]
            recut = _Recut(
                client_order_id,
                spec.name,
                _replacement_request(record, 0.0),
                ticket,
                rq.to_units(lots, spec),
                0.0,
                "",
                self._server_now,
                initial=float(record.volume_initial),
                sized=False,
                removing=True,
            )
            self._recuts[client_order_id] = recut
            result = self._call("order_send", rq.remove_request(ticket))
            if result is None or verdict(int(result.retcode)).action is not Action.DONE:
                log.warning(
                    "%s: %s; the removal of ticket %d was answered %s: looked up at the next poll",
                    client_order_id,
                    beyond,
                    ticket,
                    "nothing" if result is None else int(result.retcode),
                )
                continue
            self._booked.pop(client_order_id, None)
            if _covered_volume(lots, against, spec) <= 0.0:
                self._recuts.pop(client_order_id, None)
                found.append(self._reduce_only_cancelled(client_order_id, beyond))
                continue
            # The poll's reads only bound the cut: the exit may have filled in part between
            # them, or between them and the removal. Noted before any further call, so a
            # terminal lost from here leaves it to the next poll (``_settle_recuts``).
            recut.removing = False
            found.extend(self._size_recut(recut))
        return found

    def _reduce_only_cancelled(self, client_order_id: str, beyond: str) -> OrderUpdate:
        """Reduce-only exit ``client_order_id``, its ticket removed for what no position covers
        (``beyond``: why), ends cancelled."""
        with self._lock:
            self._working.pop(client_order_id, None)
        said = f"{beyond}; cancelled at the terminal, which knows no reduce-only"
        log.warning("%s: %s", client_order_id, said)
        return OrderUpdate(
            client_order_id,
            OrderStatus.CANCELLED,
            self._utc(self._server_now),
            said,
            code=ReasonCode.REDUCE_ONLY,
        )

    def _size_recut(self, recut: _Recut) -> list[OrderUpdate]:
        """Size the new order of cut exit ``recut`` on what is true once its ticket is removed,
        and send it (``_cut_reduce_only``): what the removed ticket had left — its volume less
        its deals, so a fill between the poll's reads or before the removal is counted — and
        no more than the bot's positions read again now hold against it (the poll read them
        before its orders: they may hold more than they do), rounded down to the volume step.
        Below the symbol's minimum volume the exit ends cancelled, as a removal does. A read
        that fails sends nothing on a guess: the next poll sizes it again, at most
        ``unknown_retries`` times, then the exit ends cancelled."""
        client_order_id = recut.client_order_id
        with self._lock:
            order = self._working.get(client_order_id)
        spec = self._specs.get(order.symbol) if order is not None else None
        if order is None or spec is None:
            self._recuts.pop(client_order_id, None)
            return []
        deals = self._call("history_deals_get", ticket=recut.ticket)
        held = None if deals is None else self._call("positions_get")
        if deals is None or held is None:
            recut.unread += 1
            what = "deals" if deals is None else "positions"
            if recut.unread > self.params.unknown_retries:
                return self._recut_failed(
                    recut,
                    f"the {what} could not be read after its removal ({recut.unread} times): "
                    "no new order was sent",
                    sent=False,
                )
            log.warning(
                "%s: ticket %d removed, the %s unread: the new order is sized and sent at the "
                "next poll",
                client_order_id,
                recut.ticket,
                what,
            )
            return []
        mine = [d for d in deals if int(d.order) == recut.ticket]
        recut.fills = {
            int(d.ticket): (int(d.time), rq.to_units(float(d.volume), spec)) for d in mine
        }
        left = max(0.0, recut.initial - sum(float(d.volume) for d in mine))
        recut.was = rq.to_units(left, spec)
        against = _against(order, spec, {int(p.ticket): p for p in ours(held, self._magic)})
        covered = _covered_volume(left, against, spec)
        if covered <= 0.0:
            self._recuts.pop(client_order_id, None)
            beyond = _reduce_only_beyond(order, left, against, spec) or (
                f"reduce-only: {recut.was:.10g} of it left after its fills, below "
                f"{order.symbol}'s minimum volume"
            )
            return [self._reduce_only_cancelled(client_order_id, beyond)]
        total = rq.to_units(sum(float(p.volume) for p in against), spec)
        recut.units = rq.to_units(covered, spec)
        recut.request = {**recut.request, "volume": covered}
        recut.said = _cut_words(recut.was, recut.units, [int(p.ticket) for p in against], total)
        recut.sized = True
        return self._cut_reduce_only(recut)

    def _cut_reduce_only(self, recut: _Recut) -> list[OrderUpdate]:
        """Send the new order of a reduce-only exit whose ticket was removed (``recut``), and
        what to report: the exit working at its new size (``_recut_placed``); cancelled,
        naming the removal and the refusal, when the terminal refuses it; nothing while its
        outcome is unknown — noted before the send, so a terminal lost during it leaves it
        to the next poll's look-up (``_settle_recuts``) as well, never sent twice unseen."""
        client_order_id = recut.client_order_id
        self._recuts[client_order_id] = recut
        result = self._call("order_send", recut.request)
        if result is None:
            code, message = self._link.last_error() if self._link else (0, "")
            return self._recut_failed(recut, f"order_send refused: {code} {message}")
        retcode = int(result.retcode)
        v = verdict(retcode)
        placed = v.action in (Action.PLACED, Action.DONE, Action.DONE_PARTIAL)
        if placed and int(result.order):
            return self._recut_placed(recut, int(result.order))
        if placed or v.action is Action.RECONCILE:
            log.warning(
                "%s: %s; the new order's answer was lost (%s, %d): looked up by its comment "
                "at the next poll",
                client_order_id,
                recut.said,
                v.words or "no ticket",
                retcode,
            )
            return []
        return self._recut_failed(recut, f"{v.words} ({retcode})")

    def _recut_placed(self, recut: _Recut, ticket: int, how: str = "") -> list[OrderUpdate]:
        """The new order of cut exit ``recut`` rests as ``ticket``: watched under its client
        order id, its size noted for the engine (``child_held``), reported working."""
        client_order_id = recut.client_order_id
        del self._recuts[client_order_id]
        self._tickets[ticket] = client_order_id
        self._booked[client_order_id] = float(recut.request["price"])
        # The engine sizes the exit on the fills it has booked: the removed ticket's deals
        # the poll has not reported yet (filled after it read the deals) are still to come.
        unseen = sum(
            units
            for deal, (when, units) in recut.fills.items()
            if not self._seen_deals.taken(deal, when)
        )
        with self._lock:
            self._held[client_order_id] = recut.units + unseen
            order = self._working.get(client_order_id)
            if order is not None:
                cut = order.quantity - (recut.was - recut.units)
                self._working[client_order_id] = order._replace(quantity=cut)
        said = (
            f"{recut.said}; re-placed as ticket {ticket}{how} (MT5 cannot change a pending "
            "order's volume)"
        )
        log.warning("%s: %s", client_order_id, said)
        return [
            OrderUpdate(
                client_order_id,
                OrderStatus.OPEN,
                self._utc(self._server_now),
                said,
                venue_order_id=str(ticket),
            )
        ]

    def _recut_failed(self, recut: _Recut, why: str, sent: bool = True) -> list[OrderUpdate]:
        """Cut exit ``recut`` ends: its ticket was removed and its new order is not resting
        (``why``; ``sent``: one was sent, and refused): reported cancelled, naming both."""
        new = f"the new order for {recut.units:.10g} was refused: {why}" if sent else why
        said = (
            f"{recut.said or 'cut'}; ticket {recut.ticket} removed (MT5 cannot change a pending "
            f"order's volume), and {new}; the exit is cancelled"
        )
        return self._recut_over(recut, said, ReasonCode.REDUCE_ONLY)

    def _recut_over(self, recut: _Recut, said: str, code: ReasonCode) -> list[OrderUpdate]:
        """Cut exit ``recut`` ends cancelled (``said``, ``code``), said as a warning."""
        client_order_id = recut.client_order_id
        self._end_recut(client_order_id)
        log.warning("%s: %s", client_order_id, said)
        return [
            OrderUpdate(
                client_order_id, OrderStatus.CANCELLED, self._utc(self._server_now), said, code=code
            )
        ]

    def _end_recut(self, client_order_id: str) -> None:
        """Cut exit ``client_order_id`` ends here: forgotten, and its order no longer works."""
        self._recuts.pop(client_order_id, None)
        with self._lock:
            self._working.pop(client_order_id, None)

    def _settle_recuts(
        self, resting: Sequence[Any], positions: Mapping[int, Any]
    ) -> list[OrderUpdate]:
        """The cut exits whose new order's outcome was not known (``_Recut``), looked up by
        its comment (as a lost create is, ``_reconcile``) before anything is sent again, only
        among the tickets above the one the cut removed (``_newest``: never one an earlier cut
        of the exit removed, before a restart too), the newest first when several match:
        found resting (``resting``, the poll's own ``orders_get``), it is the exit at its new
        size — or removed, when the bot cancelled the exit meanwhile; found in the history, it
        was placed and has ended (its fills were reported by the deals, by the comment): the
        exit ends. Found nowhere, it is sent again — for what the position covers now
        (``positions``), at most ``unknown_retries`` times — unless the bot cancelled it;
        after that it is reported cancelled, naming the removal and the lost answer. One whose
        reads after the removal failed (never sent) is sized again."""
        found: list[OrderUpdate] = []
        for recut in list(self._recuts.values()):
            if recut.removing:
                found.extend(self._settle_removal(recut, resting))
                continue
            if not recut.sized:
                if recut.cancel:
                    found.extend(self._recut_cancelled(recut, "no new order was sent"))
                else:
                    found.extend(self._size_recut(recut))
                continue
            comment = str(recut.request["comment"])
            live = _newest(resting, comment, recut.ticket)
            if live is not None:
                found.extend(self._recut_found(recut, int(live.ticket)))
                continue
            history = self._call(
                "history_orders_get", recut.sent_at - _DAY, _FAR, group=recut.symbol
            )
            if history is None:
                continue  # unread: no news, the next poll looks again
            done = _newest(ours(history, self._magic), comment, recut.ticket)
            if done is not None:
                found.extend(self._recut_ended(recut, done))
                continue
            if recut.cancel:
                found.extend(self._recut_cancelled(recut, "the new order was never placed"))
                continue
            found.extend(self._resend_recut(recut, positions))
        return found

    def _settle_removal(self, recut: _Recut, resting: Sequence[Any]) -> list[OrderUpdate]:
        """Cut exit ``recut`` whose removal was answered other than DONE (``removing``),
        looked up: still resting (``resting``, the poll's ``orders_get``), nothing changed —
        watched again, and judged again by this poll's ``_cancel_reduce_only_beyond`` (or
        removed, when the bot cancelled it meanwhile); gone and filled (history FILLED), its
        deals were reported by the poll: it ends as any filled order; gone otherwise (removed:
        CANCELED, or PARTIAL — part filled, the rest removed), the cut goes on as after a DONE
        removal (``_size_recut``, which takes its deals off). Expired or rejected meanwhile:
        reported as the poll reports any order gone (``_resting_gone``). History unread: no
        news, the next poll looks again."""
        client_order_id = recut.client_order_id
        ticket = recut.ticket
        if any(int(r.ticket) == ticket for r in resting):
            del self._recuts[client_order_id]
            self._tickets[ticket] = client_order_id
            if not recut.cancel:
                return []
            result = self._call("order_send", rq.remove_request(ticket))
            if result is None or verdict(int(result.retcode)).action is not Action.DONE:
                # The bot's cancel in doubt as the cut's removal was: looked up again.
                del self._tickets[ticket]
                self._recuts[client_order_id] = recut
                return []
            del self._tickets[ticket]
            self._booked.pop(client_order_id, None)
            return self._recut_cancelled(recut, f"ticket {ticket} removed")
        history = self._call("history_orders_get", ticket=ticket)
        if history is None:
            return []
        self._booked.pop(client_order_id, None)
        # Nothing in the history: gone, and nothing says it filled (as ``_resting_gone``).
        state = int(history[0].state) if history else _ORDER_STATE_CANCELED
        if state in (_ORDER_STATE_CANCELED, _ORDER_STATE_PARTIAL):
            recut.removing = False
            if recut.cancel:
                return self._recut_cancelled(recut, f"ticket {ticket} removed")
            return self._size_recut(recut)
        self._end_recut(client_order_id)
        if state == _ORDER_STATE_FILLED:
            return []  # its deals were reported by the poll
        return [self._gone_update(client_order_id, state)]

    def _recut_found(self, recut: _Recut, ticket: int) -> list[OrderUpdate]:
        """The new order of cut exit ``recut`` whose answer was lost rests as ``ticket``."""
        how = " (its answer was lost: found by its comment)"
        if not recut.cancel:
            return self._recut_placed(recut, ticket, how)
        result = self._call("order_send", rq.remove_request(ticket))
        if result is not None and verdict(int(result.retcode)).action is Action.DONE:
            return self._recut_cancelled(recut, f"its new order, ticket {ticket}, removed")
        # It filled or went meanwhile: watched at its new size, as the engine is told, so the
        # next poll reports what happened to it against the right quantity.
        return self._recut_placed(recut, ticket, how + ", and the bot's cancel of it refused")

    def _recut_cancelled(self, recut: _Recut, what: str) -> list[OrderUpdate]:
        """Cut exit ``recut``, cancelled by the bot while its new order was in doubt: ended."""
        client_order_id = recut.client_order_id
        self._end_recut(client_order_id)
        return [
            OrderUpdate(
                client_order_id,
                OrderStatus.CANCELLED,
                self._utc(self._server_now),
                f"cancelled ({what})",
                code=ReasonCode.CANCELLED_BY_USER,
            )
        ]

    def _recut_ended(self, recut: _Recut, done: Any) -> list[OrderUpdate]:
        """The new order of cut exit ``recut`` whose answer was lost was placed and has ended
        before a poll saw it rest (``done``: its history record, the newest of the comment's
        above the ticket the cut removed): what it filled was reported by its deals; the exit
        ends, what is left of it at the bot cancelled."""
        state = int(done.state)
        ended = "filled" if state in (_ORDER_STATE_FILLED, _ORDER_STATE_PARTIAL) else "ended"
        said = (
            f"{recut.said}; re-placed as ticket {int(done.ticket)} (its answer was lost: found "
            f"by its comment), which has {ended} at the terminal"
        )
        code = ReasonCode.REDUCE_ONLY if ended == "filled" else ReasonCode.CANCELLED_BY_VENUE
        return self._recut_over(recut, said, code)

    def _resend_recut(self, recut: _Recut, positions: Mapping[int, Any]) -> list[OrderUpdate]:
        """The new order of cut exit ``recut`` is nowhere at the terminal (its answer was
        lost, and it never arrived): sent again for what the position covers now, unless it
        was tried ``unknown_retries`` times already — then the exit ends cancelled. The
        poll's positions serve: no order of the exit rested since they were read (the look-up
        found none), so none of its fills can have made them hold less."""
        recut.tries += 1
        if recut.tries > self.params.unknown_retries + 1:
            return self._recut_failed(
                recut,
                f"no answer from the trade server after {recut.tries - 1} attempts, and the "
                "terminal shows no such order",
            )
        with self._lock:
            order = self._working.get(recut.client_order_id)
        spec = self._specs.get(order.symbol) if order is not None else None
        if order is None or spec is None:
            self._recuts.pop(recut.client_order_id, None)
            return []
        lots = float(recut.request["volume"])
        against = _against(order, spec, positions)
        covered = _covered_volume(lots, against, spec)
        if covered <= 0.0:
            return self._recut_failed(
                recut, "its answer was lost, and the position no longer covers it"
            )
        if covered != lots:  # the position changed meanwhile: what it covers now
            recut.request = {**recut.request, "volume": covered}
            recut.units = rq.to_units(covered, spec)
            held = rq.to_units(sum(float(p.volume) for p in against), spec)
            recut.said = _cut_words(recut.was, recut.units, [int(p.ticket) for p in against], held)
        return self._cut_reduce_only(recut)

    def _report_moved_pending(self, resting: Sequence[Any]) -> list[OrderUpdate]:
        """The watched resting orders the terminal holds at another price than the one last
        reported (``_pending_moves``), from the poll's own ``orders_get`` (no extra call): a
        move whose answer was lost and whose read back failed (refused as unknown, the bot
        keeping the old price), a server's own price, a person's change at the terminal.
        Each is reported once, as the price the order works at, and kept as its own."""
        with self._lock:
            busy = frozenset(self._amending)
        half_ticks = {spec.name: spec.tick_size / 2 for spec in self._specs.values()}
        moves = _pending_moves(resting, self._tickets, self._booked, busy, half_ticks)
        ts = self._utc(self._server_now)
        found = []
        for move in moves:
            # A change is worth a warning; a restart's first report of each order is routine.
            known = move.client_order_id in self._booked
            level = logging.WARNING if known else logging.INFO
            log.log(level, "%s: %s", move.client_order_id, move.said)
            self._booked[move.client_order_id] = move.price
            self._reprice_working(move.client_order_id, move.price)
            found.append(
                OrderUpdate(move.client_order_id, OrderStatus.OPEN, ts, move.said, price=move.price)
            )
        return found

    def _report_changed_children(self, positions: Mapping[int, Any]) -> list[OrderUpdate]:
        """The working SL/TP children whose level the terminal holds at another price than
        the one last booked, or no more (``_child_change``), from the poll's own
        ``positions_get`` (``positions``: the bot's, by ticket; no extra call): a person
        dragging or deleting the SL/TP of the bot's position in the terminal. Reported as a
        restart would find it: a moved level as the child working at the price held (the
        engine books and journals it); a removed one as the child cancelled at the venue (the
        engine says loudly that a stop-loss was cancelled outside the bot). A child whose
        amend is on its way is left to the amend's answer, and one of the other side than the
        position (a netting position the bot reversed: the engine is cutting that child, and
        the level is the reversal's) to that cut.

        On a hedging account a split entry's child is the tickets at its level
        (``ticket_levels``): a line removed or moved on one ticket only leaves the child to
        the others, at the bot's level — reported as the child working for what those hold
        (``child_held``; the engine cuts it to that, journaled), naming the ticket, whose own
        level is outside the bot from then on (``_tickets_look``)."""
        with self._lock:
            busy = frozenset(self._amending)
        for gone in [c for c in self._child_levels if c not in self._children]:
            del self._child_levels[gone]
        half_ticks = {spec.name: spec.tick_size / 2 for spec in self._specs.values()}
        ts = self._utc(self._server_now)
        found = []
        for child_id, (position_id, role) in list(self._children.items()):
            if child_id in busy:
                continue
            holding = self._child_positions(child_id, position_id, positions)
            if not holding:
                continue  # its position closed: the caller ended it
            long = int(holding[0].type) == _POSITION_TYPE_BUY
            booked = self._child_levels.get(child_id)
            if booked is not None and booked.long != long:
                continue
            half = half_ticks.get(str(holding[0].symbol), 0.0)
            last = None if booked is None else booked.price
            off = frozenset() if booked is None else booked.off
            levels = (
                ticket_levels(holding, role, last, half, off)
                if self._hedging
                else TicketLevels(_child_level(holding, role), tuple(holding), ())
            )
            held = levels.level
            # Named: the tickets at its level; removed, those holding none (a ticket outside
            # the child may hold a person's own level still).
            bare = [p for p in holding if _level(p, role) <= 0.0] or holding
            tickets = [int(p.ticket) for p in levels.at or bare]
            change = _child_change(role, held, last, half, tickets)
            if held <= 0.0:
                assert change is not None  # removed: always news
                log.warning("%s: %s", child_id, change.said)
                del self._children[child_id]
                self._child_levels.pop(child_id, None)
                found.append(
                    OrderUpdate(
                        child_id,
                        OrderStatus.CANCELLED,
                        ts,
                        change.said,
                        code=ReasonCode.CANCELLED_BY_VENUE,
                    )
                )
                continue
            sized, units = "", 0.0  # what the child closes, when news (``_tickets_look``)
            warn = change is not None
            if self._hedging:
                lots = sum(float(p.volume) for p in levels.at)
                units = self._units(str(holding[0].symbol), lots)
                look = _tickets_look(role, levels, booked, units)
                self._child_levels[child_id] = _Booked(
                    held, long, look.volumes, look.off, look.held
                )
                if look.said:
                    sized, warn = look.said, warn or look.warn
            else:
                self._child_levels[child_id] = _Booked(held, long)
            if change is None and not sized:
                continue
            with self._lock:
                # What the engine takes with this update: a size reported, or none (one noted
                # with an earlier update the engine took otherwise is no longer the child's).
                if sized:
                    self._held[child_id] = units
                else:
                    self._held.pop(child_id, None)
            said = "; ".join(words for words in (change.said if change else "", sized) if words)
            log.log(logging.WARNING if warn else logging.INFO, "%s: %s", child_id, said)
            found.append(OrderUpdate(child_id, OrderStatus.OPEN, ts, said, price=held))
        return found

    def _child_positions(
        self, child_id: str, position_id: int, positions: Mapping[int, Any]
    ) -> list[Any]:
        """The open positions (``positions``: the bot's, by ticket) child ``child_id``'s level
        is on, as ``_entry_positions`` finds them but from positions already read: on a
        hedging account every ticket of its entry, oldest first; else ``position_id``."""
        found = bracket_role(child_id)
        if self._hedging and found is not None:
            return entry_tickets(positions.values(), found[0], self._parent_of)
        position = positions.get(position_id)
        return [] if position is None else [position]

    def _deal_event(self, deal: Any, events: list[Event], deals: Sequence[Any] = ()) -> bool:
        """A deal of the bot's magic number -> its events; False when it is no order's of the
        bot (a stop-out, a comment the server rewrote): ``_outside_fill`` then decides.
        ``deals``: those the poll read with it (``_fired_apart``: its entry's other closes)."""
        client_order_id = deal_client_id(deal, self._resolve, self._parent_of)
        if client_order_id is None:
            return False
        symbol = self._symbols.ours(str(deal.symbol))
        with self._lock:
            tracked = self._working.get(client_order_id)
        reason = fill_reason(tracked) if tracked is not None else "market"
        fill = fill_from_deal(deal, client_order_id, symbol, self._units, reason)
        if fill is None:
            return True
        role = child_role(int(deal.reason))
        # Hedging: the entry's tickets now, read once for this close (None: unread).
        held = self._call("positions_get") if role is not None and self._hedging else None
        if role is not None and (
            self._outside_child(int(deal.position_id), (role,))
            or self._fired_apart(deal, ours(held, self._magic), deals, running=True)
        ):
            # A level a person set on one ticket of a split entry fired (``_tickets_look``:
            # outside the bot's child, which is the entry's other tickets — or so the level it
            # fired at says, ``_fired_apart``, when it fired before the poll looked): no fill
            # of the child — it protects those still — but a change made outside the bot.
            outside = self._outside_fill(deal, say=False)
            if outside is not None:
                log.warning(
                    "%s: position %d closed on its own %s, outside the bot's child (deal %d, "
                    "%g lots at %g): booked as a change made outside the bot",
                    client_order_id,
                    int(deal.position_id),
                    role.upper(),
                    int(deal.ticket),
                    float(deal.volume),
                    float(deal.price),
                )
                events.extend(self._with_swap(deal, outside._replace(reason=OUTSIDE_TAG)))
            return True
        self._note_credit(deal, client_order_id)
        fill = fill._replace(ts=self._utc(int(deal.time)))
        parts = self._closer_parts(deal, fill) if role is not None else [fill]
        events.extend(self._with_swap(deal, parts[0]))
        if role is not None and self._split_entry_goes_on(deal, fill.client_order_id, held):
            return True
        if role is not None:
            # The terminal closed the position on its SL/TP: each child that level was is
            # filled by its part, and the other child of each is gone with it.
            for i, part in enumerate(parts):
                if i:
                    events.append(part)
                self._children.pop(part.client_order_id, None)
                found = bracket_role(part.client_order_id)
                if found is None:
                    continue
                sibling = child_order_id(found[0], "tp" if role == "sl" else "sl")
                if self._children.pop(sibling, None) is not None:
                    events.append(
                        OrderUpdate(
                            sibling,
                            OrderStatus.CANCELLED,
                            fill.ts,
                            "one-cancels-other sibling filled",
                            code=ReasonCode.CANCELLED_BY_VENUE,
                        )
                    )
                if found[0] in self._split_fired:
                    # The last ticket of a split entry whose levels fired apart: the child is
                    # booked for all of its tickets, and what no ticket is left to close of it
                    # ends here (already filled whole, the engine has nothing to end).
                    self._split_fired.discard(found[0])
                    events.append(
                        OrderUpdate(
                            part.client_order_id,
                            OrderStatus.CANCELLED,
                            fill.ts,
                            "the position it protected is closed (the entry's last ticket)",
                            code=ReasonCode.CANCELLED_BY_VENUE,
                        )
                    )
            return True
        with self._lock:
            order = self._working.get(client_order_id)
        if order is not None:
            self._note_entry(order, deal)
        return True

    def _split_entry_goes_on(self, deal: Any, child_id: str, held: Sequence[Any] | None) -> bool:
        """Hedging: whether the entry whose ticket ``deal`` closed on its SL/TP (``child_id``:
        the child filled) still has another ticket open (``held``: ``positions_get`` read
        after the close) — one entry sent in several requests opens several, each holding the
        same SL and TP. Then its children go on for those (the child filled by this ticket's
        part, its sibling not cancelled: the terminal still holds it on them), noted on one of
        them. Positions unread: the children go on too, and the poll ends them once none of
        the entry's tickets is open."""
        found = bracket_role(child_id)
        if not self._hedging or found is None:
            return False
        closed = int(deal.position_id)
        if held is None:
            left = closed
        else:
            tickets = entry_tickets(ours(held, self._magic), found[0], self._parent_of)
            left = next((int(p.ticket) for p in tickets if int(p.ticket) != closed), 0)
        if not left:
            return False
        self._split_fired.add(found[0])
        for role in ("sl", "tp"):
            sibling = child_order_id(found[0], role)
            if sibling in self._children:
                self._children[sibling] = (left, role)
        log.info(
            "%s: position %d closed on it; the entry's other tickets hold its SL/TP: its "
            "children go on for them",
            child_id,
            closed,
        )
        return True

    def _closer_parts(self, deal: Any, fill: Fill) -> list[Fill]:
        """The fills of a deal the terminal made when a netting position's SL (or TP) fired
        (``fill``: all of it, as one child's): one per child that level was, each of its part
        (``split_close`` of ``bracket_shares`` before the deal), its share of the charges;
        the first keeps the deal's ticket as fill id, the others ``<ticket>.<n>``. As
        ``fill`` alone on a hedging account (a position is one entry's) or when no child is
        found."""
        role = child_role(int(deal.reason))
        if role is None or self._hedging:
            return [fill]
        volume = float(deal.volume)
        parts = self._split(int(deal.position_id), role, int(deal.ticket), volume)
        if not parts:
            return [fill]
        fills = []
        fee_left = fill.fee
        for i, (child_id, lots) in enumerate(parts):
            fee = fee_left if i == len(parts) - 1 else fill.fee * lots / volume
            fee_left -= fee
            fills.append(
                fill._replace(
                    client_order_id=child_id,
                    quantity=self._units(str(deal.symbol), lots),
                    fee=fee,
                    fill_id=fill.fill_id if i == 0 else f"{fill.fill_id}.{i}",
                )
            )
        return fills

    def _split(
        self, position_id: int, role: str, deal_ticket: int, lots: float
    ) -> list[tuple[str, float]]:
        """The children a netting position's ``role`` level closed ``lots`` of it for, by
        deal ``deal_ticket``, each with its part (``split_close``)."""
        shares = self._shares(position_id, frozenset({role}), before=deal_ticket)
        return split_close(shares.working[role], lots)

    def _shares(self, position_id: int, held: frozenset[str], before: int = 0) -> BracketShares:
        """The bot's children on netting position ``position_id`` and the part of it each
        closes (``bracket_shares``; ``held``: the levels the position holds), from its deals —
        those before deal ``before`` when given."""
        deals = self._call("history_deals_get", position=position_id) or ()
        if before:
            deals = [deal for deal in deals if int(deal.ticket) < before]
        orders = self._call("history_orders_get", position=position_id) or ()
        levels = entry_levels(ours(orders, self._magic), self._resolve)
        return bracket_shares(deals, self._resolve, levels, held)

    def _with_swap(self, deal: Any, fill: Fill) -> list[Event]:
        """A deal's fill, after the swap it booked (``swap_flow``) when it booked one. The swap
        comes first: it is the position's, and the engine books a payment into the trade that
        holds the position; once a closing fill has ended that trade, the swap would land in
        cash alone and the closed trade's net P&L would miss it."""
        self._note_reduced(deal, fill)
        flow = self._swap_of(deal, fill.symbol)
        if flow is None:
            return [fill]
        # The bot takes the booked swap out of the position's accrual: what is left there is
        # the terminal's new total, reported at the next refresh even if it equals the last.
        self._accruals_sent[fill.symbol] = math.nan
        return [flow, fill]

    def _note_reduced(self, deal: Any, fill: Fill) -> None:
        """Hedging: note the entry whose ticket ``deal`` (``fill``'s) closed in part or whole —
        the bot's close by ticket, a person's, the ticket's own SL/TP — for
        ``entries_reduced``. A deal opening a ticket closes none."""
        if not self._hedging or int(deal.entry) not in (_DEAL_ENTRY_OUT, _DEAL_ENTRY_OUT_BY):
            return
        entry = self._parent_of(int(deal.position_id))
        if entry is None:
            return
        if self._outside_child(int(deal.position_id)):
            # A ticket outside one of the entry's children (its line changed by a person):
            # cut by what the deal closed, that child would lose what the tickets it is still
            # hold — and the bot clear their line with it. None is cut here; the poll's next
            # look sizes each child as the tickets at its level (``_tickets_look``).
            return
        with self._lock:
            self._reduced[fill.fill_id] = entry
            # The engine asks for each fill it books as it books it; one it never asks about
            # (a fill it did not book) is not kept for ever.
            while len(self._reduced) > _REDUCED_KEPT:
                del self._reduced[next(iter(self._reduced))]

    def _swap_of(self, deal: Any, symbol: str) -> CashFlow | None:
        return swap_flow(deal, symbol, self._currency, self._utc(int(deal.time)))

    def _outside_fill(self, deal: Any, say: bool = True) -> Fill | None:
        """A deal no order of the bot made (another magic number: a person closing a position
        by hand in the terminal, another expert) that reduces or closes one of the bot's
        positions: that part of it as a ``Fill`` tagged ``OUTSIDE_TAG`` (id
        ``<bot prefix>-outside-<deal ticket>``, the deal's ticket as fill id, its charges as the
        fee), which the engine books and journals as a change made outside the bot, so the
        bot's position, P&L and equity stay the terminal's (the swap it booked is the bot's
        position's: the caller reports it, ``_with_swap``). ``say``: log it (once per read of
        the deal, not again for its swap). None for anything else: a deal
        that adds to the bot's position (a netting account) or opens another is not the bot's
        to own — the running position check finds the difference and halts the bot.

        The bot's side of the position is read from the position's own deals (the last that
        the bot's magic opened or reversed); someone else's deal against that side reduces it,
        at most by what it held (the rest of a reversal is not the bot's)."""
        kind = int(deal.type)
        position_id = int(deal.position_id)
        if kind not in (_DEAL_TYPE_BUY, _DEAL_TYPE_SELL) or int(deal.entry) == _DEAL_ENTRY_IN:
            return None
        if not position_id or not self._prefix:
            return None
        ticket = int(deal.ticket)
        history = self._call("history_deals_get", position=position_id) or ()
        held = 0.0  # the position's signed volume (lots) before each deal
        side = 0.0  # the bot's side of it: 1 long, -1 short, 0 not the bot's
        closing = 0.0
        for earlier in sorted(history, key=lambda d: int(d.ticket)):
            if int(earlier.type) not in (_DEAL_TYPE_BUY, _DEAL_TYPE_SELL):
                continue
            sign = 1.0 if int(earlier.type) == _DEAL_TYPE_BUY else -1.0
            if int(earlier.ticket) == ticket:
                if side and held * side > 0 and sign != side:
                    closing = min(float(earlier.volume), abs(held))
                break
            held = round(held + sign * float(earlier.volume), 8)
            opens = int(earlier.entry) in (_DEAL_ENTRY_IN, _DEAL_ENTRY_INOUT)
            if int(earlier.magic) == self._magic and opens:
                side = 1.0 if held > 0 else -1.0 if held < 0 else 0.0
            elif held * side <= 0:
                side = 0.0  # closed or reversed by someone else: no longer the bot's
        if closing <= _EPS:
            return None
        symbol = self._symbols.ours(str(deal.symbol))
        client_order_id = f"{self._prefix}-outside-{ticket}"
        fill = fill_from_deal(deal, client_order_id, symbol, self._units, OUTSIDE_TAG)
        if fill is None:
            return None
        share = closing / float(deal.volume) if float(deal.volume) > 0 else 1.0
        if share < 1.0 - _EPS:
            fill = fill._replace(
                quantity=self._units(str(deal.symbol), closing), fee=fill.fee * share
            )
        self._note_credit(deal, client_order_id)
        if not say:
            return fill._replace(ts=self._utc(int(deal.time)))
        log.warning(
            "deal %d by magic %d %s the bot's position %d (%s %g lots of %s at %g): booked as "
            "a change made outside the bot",
            ticket,
            int(deal.magic),
            "reversed" if closing < float(deal.volume) - _EPS else "reduced or closed",
            position_id,
            fill.side,
            closing,
            deal.symbol,
            float(deal.price),
        )
        return fill._replace(ts=self._utc(int(deal.time)))

    def _note_credit(self, deal: Any, client_order_id: str) -> None:
        """A deal whose commission credited the account (a rebate) more than its fee cost:
        ``Fill.fee`` is ≥ 0 by the contract, so that credit is not in the bot's books. Said,
        with the amount, never dropped in silence. (A swap credit is booked: ``_with_swap``.)"""
        credit = deal_credit(deal)
        if credit > 0.0:
            log.warning(
                "%s: deal %d credited %.2f (commission %g, fee %g) that the bot's books do "
                "not hold: a fill's fee cannot be negative; the account's balance has it",
                client_order_id,
                int(deal.ticket),
                credit,
                float(deal.commission),
                float(getattr(deal, "fee", 0.0)),
            )

    def _resting_gone(self, ticket: int, client_order_id: str, events: list[Event]) -> None:
        history = self._call("history_orders_get", ticket=ticket) or ()
        state = int(history[0].state) if history else _ORDER_STATE_CANCELED
        with self._lock:
            self._working.pop(client_order_id, None)
        if state in (_ORDER_STATE_FILLED, _ORDER_STATE_PARTIAL):
            return  # its deals were reported above
        events.append(self._gone_update(client_order_id, state))

    def _gone_update(self, client_order_id: str, state: int) -> OrderUpdate:
        """A resting order the terminal no longer holds, its history ``state`` no fill: it
        expired, its activation was refused, or it was cancelled there."""
        code = (
            ReasonCode.EXPIRED if state == _ORDER_STATE_EXPIRED else ReasonCode.CANCELLED_BY_VENUE
        )
        status = OrderStatus.CANCELLED
        if state == 5:  # ORDER_STATE_REJECTED: activation refused (e.g. no money)
            status, code = OrderStatus.REJECTED, ReasonCode.VENUE_REJECTED
        return OrderUpdate(
            client_order_id,
            status,
            self._utc(self._server_now),
            "the terminal no longer holds the order",
            code=code,
        )

    def _refresh_positions(self) -> list[Accrual]:
        """Read the bot's positions again; returns an ``Accrual`` for each bot symbol whose
        swap total changed since the last one reported (``reports-accruals``: the terminal's
        equity counts a position's running swap, booked only by the deal that closes it), for
        the caller to report after the events of the deals it read before. A read that
        failed is no news: read as empty, it would drop every accrued swap from equity (and a
        risk plugin would judge that equity) until the next read."""
        raw = self._call("positions_get")
        if raw is None:
            return []
        held = ours(raw, self._magic)
        ts = self._utc(self._server_now)
        reports = position_reports(held, self._symbols.ours, ts, self._units)
        with self._lock:
            self._positions = {
                r.symbol: Position(r.symbol, r.quantity, r.average_price) for r in reports
            }
        totals = position_swaps(held, self._symbols.ours)
        due = accruals_due(totals, self._accruals_sent, self._bot_symbols)
        self._accruals_sent.update(due)
        # MT5 accrues swap in the account's currency (a symbol paying profit in another is
        # refused at start).
        return [Accrual(symbol, amount, self._currency, ts) for symbol, amount in due.items()]

    # -- reports -----------------------------------------------------------------------------

    def _resolve(self, comment: str) -> str | None:
        found = self._comment_ids.get(comment)
        if found is not None:
            return found
        if not comment or comment.startswith(("[", "h:")):
            return None  # the terminal's own comment, or an id hashed by another process
        return rq.base_comment(comment)

    def _parent_of(self, position_id: int) -> str | None:
        """The order a position's SL/TP are named after (``<id>-sl``): the first of its entries
        (``_entries_of``), or, while the bot runs, the entry it saw last (``_note_entry``)."""
        found = self._parents.get(position_id)
        if found is not None:
            return found
        entries = self._entries_of(position_id)
        if not entries:
            return None
        parent = entries[0].client_order_id
        self._parents[position_id] = parent
        return parent

    def _entries_of(self, position_id: int) -> list[Entry]:
        """The bot's orders whose fills make up the position (``position_entries``): on a
        netting account every entry that added to the symbol's one position, not only the
        first, whose id the position carries."""
        deals = self._call("history_deals_get", position=position_id) or ()
        return position_entries(deals, self._resolve)

    def _units(self, venue_symbol: str, volume: float) -> float:
        """The terminal's ``volume`` (lots) of its symbol ``venue_symbol`` in units (I/O
        thread: a symbol not seen yet is read from the terminal)."""
        return rq.to_units(volume, self._spec(self._symbols.ours(venue_symbol)))

    def _utc(self, server_ts: int) -> int:
        return server_ts - self._offset if server_ts else 0

    def _query_order(self, client_order_id: str) -> OrderReport | None:
        comments = {rq.comment_for(client_order_id, leg) for leg in range(rq.MAX_LEGS)}
        live = [o for o in ours(self._call("orders_get"), self._magic) if o.comment in comments]
        since = self._now() - self.params.history_days * _DAY
        history = [
            o
            for o in ours(self._call("history_orders_get", since, _FAR), self._magic)
            if o.comment in comments
        ]
        for comment in comments:
            self._comment_ids.setdefault(comment, client_order_id)
        reports = order_reports([*history, *live], self._resolve, self._symbols.ours, self._units)
        found = next((r for r in reports if r.client_order_id == client_order_id), None)
        if found is None and client_order_id in self._children:
            return self._child_report(client_order_id)
        return found

    def _child_report(self, client_order_id: str) -> OrderReport | None:
        """A working SL/TP child: an attribute of its position, not an MT5 order."""
        position_id, role = self._children[client_order_id]
        found = bracket_role(client_order_id)
        if self._hedging and found is not None:
            tickets = self._entry_positions(client_order_id, position_id)
            if not tickets:
                return None
            symbol = self._symbols.ours(str(tickets[0].symbol))
            now = self._utc(self._now())
            half = self._half_tick(str(tickets[0].symbol))
            reports = ticket_child_reports(tickets, found[0], symbol, now, self._units, half)
            return next((r for r in reports if r.client_order_id == client_order_id), None)
        for position in ours(self._call("positions_get", ticket=position_id), self._magic):
            symbol = self._symbols.ours(str(position.symbol))
            now = self._utc(self._now())
            return child_report(position, client_order_id, role, symbol, now, self._units)
        return None

    def _order_reports(self, since_ts: int) -> list[OrderReport]:
        live = ours(self._call("orders_get"), self._magic)
        history = ours(self._call("history_orders_get", since_ts + self._offset, _FAR), self._magic)
        if self._hedging:
            # A ticket's own line a person set apart from the child fired: no close of the
            # child's (its deal is a change made outside the bot: ``_deal_fills``).
            held = ours(self._call("positions_get"), self._magic)
            history = [o for o in history if not self._fired_apart(o, held, history, running=False)]
        reports = order_reports(
            [*history, *live], self._resolve, self._symbols.ours, self._units, self._parent_of
        )
        found = {r.client_order_id: r._replace(ts=self._utc(r.ts)) for r in reports}
        closed, ended = self._ended_children(history)
        for report in closed:
            found[report.client_order_id] = report._replace(ts=self._utc(report.ts))
        for report in ended:
            found.setdefault(report.client_order_id, report._replace(ts=self._utc(report.ts)))
        # A child working on an open position is that, whatever an older close said; on a
        # hedging account with what its level closed of its entry's other tickets before.
        for report in self._child_reports(history):
            fired = found.get(report.client_order_id) if self._hedging else None
            found[report.client_order_id] = with_fired_part(report, fired)
        return list(found.values())

    def _ended_children(
        self, history: Sequence[Any]
    ) -> tuple[list[OrderReport], list[OrderReport]]:
        """The bracket children that ended when their position's SL or TP fired (while the bot
        was down, or before), as the running broker reports them: (the children the close
        filled, each at its part on a netting position — ``_closer_parts`` —, which replace
        the report ``order_reports`` made of the close under the position's first entry's
        child, cancelled when that child was not among them; the children it cancelled at the
        venue — ``ended_children`` —, not left for reconciliation to call never sent)."""
        closed: list[OrderReport] = []
        ended: list[OrderReport] = []
        for closer in history:
            role = child_role(int(getattr(closer, "reason", -1)))
            position_id = int(closer.position_id)
            if role is None or not position_id:
                continue
            parent = self._parent_of(position_id)
            if parent is None:
                continue
            entries = [e.client_order_id for e in self._entries_of(position_id)] or [parent]
            symbol = self._symbols.ours(str(closer.symbol))
            named = child_order_id(parent, role)
            parts = [] if self._hedging else self._closer_split(closer, position_id, role)
            whole = order_reports(
                [closer], self._resolve, self._symbols.ours, self._units, self._parent_of
            )
            if not (parts and len(whole) == 1):
                parts = []
            filled = {child_id for child_id, _ in parts} or {named}
            for child_id, lots in parts:
                size = self._units(str(closer.symbol), lots)
                closed.append(
                    whole[0]._replace(client_order_id=child_id, quantity=size, filled_quantity=size)
                )
            if parts and named not in filled:  # the first entry's part was cut away before
                closed.append(whole[0]._replace(status=OrderStatus.CANCELLED, filled_quantity=0.0))
            ended.extend(ended_children(closer, entries, filled, symbol, self._units))
        return closed, ended

    def _closer_split(self, closer: Any, position_id: int, role: str) -> list[tuple[str, float]]:
        """``_split`` of the deal the terminal made for ``closer`` (none found: [])."""
        deals = self._call("history_deals_get", position=position_id) or ()
        for deal in deals:
            if int(deal.order) == int(closer.ticket):
                return self._split(position_id, role, int(deal.ticket), float(deal.volume))
        return []

    def _child_reports(self, history: Sequence[Any] = ()) -> list[OrderReport]:
        """The working SL/TP children of the bot's open positions, under their ids (the
        opening order's, ``-sl``/``-tp``; on a netting account, of every entry that added to
        the position too: ``entry_child_reports``): start-up reconciliation adopts them as
        working orders, as they are (not closed as never sent, nor sent again), and from here
        on this broker cancels and amends them like its own."""
        reports = []
        now = self._utc(self._now())
        held = ours(self._call("positions_get"), self._magic)
        if self._hedging:
            return self._ticket_child_reports(held, now, history)
        for position in held:
            ticket = int(position.ticket)
            parent = self._parent_of(ticket)
            if parent is None:
                continue
            symbol = self._symbols.ours(str(position.symbol))
            shares = None if self._hedging else self._shares(ticket, _levels_held(position))
            if shares is not None and any(shares.working.values()):
                found = entry_child_reports(position, shares.working, symbol, now, self._units)
            else:
                whole = {
                    role: [ChildShare(child_order_id(parent, role), parent, float(position.volume))]
                    for role in ("sl", "tp")
                }
                found = entry_child_reports(position, whole, symbol, now, self._units)
            for report in found:
                role = "sl" if report.order_type is OrderType.STOP else "tp"
                self._children.setdefault(report.client_order_id, (ticket, role))
                self._adopt_level(report)
                reports.append(report)
            for child_id in sorted(shares.gone) if shares is not None else ():
                role = "sl" if child_id.endswith("-sl") else "tp"
                reports.append(cut_child_report(position, child_id, role, symbol, now))
        return reports

    def _ticket_child_reports(
        self, held: Sequence[Any], now: int, history: Sequence[Any] = ()
    ) -> list[OrderReport]:
        """``_child_reports`` on a hedging account: each entry's children once, over every
        ticket the entry opened (``ticket_child_reports``) — a split entry's children at the
        volume of all its tickets, not at one ticket's, which a restarted bot adopted as the
        whole child and so counted half its stop. Each at the level the journal holds it
        (``restore_orders``) while a ticket holds it or fired at it (``history``: the orders
        the terminal made closing tickets on their lines), the tickets at another set apart
        from it (``restart_apart``) as the running bot had them — a person's line is never
        adopted as the bot's stop, which its next move would overwrite."""
        parents = {int(p.ticket): self._parent_of(int(p.ticket)) for p in held}
        reports = []
        for parent in dict.fromkeys(p for p in parents.values() if p is not None):
            tickets = entry_tickets(held, parent, parents.get)
            symbol = self._symbols.ours(str(tickets[0].symbol))
            half = self._half_tick(str(tickets[0].symbol))
            booked: dict[str, float] = {}
            apart: dict[str, frozenset[int]] = {}
            for role in ("sl", "tp"):
                level = self._journaled_level(child_order_id(parent, role))
                if level is None:
                    continue
                booked[role] = level
                fired = self._fired_lots(history, role, parent)
                journaled = self._journaled_lots(child_order_id(parent, role))
                opened = self._opened_lots([*(int(t.ticket) for t in tickets), *fired])
                apart[role] = restart_apart(
                    tickets, role, level, fired, half, journaled=journaled, opened=opened
                )
            found = ticket_child_reports(
                tickets, parent, symbol, now, self._units, half, booked, apart
            )
            for report in found:
                role = "sl" if report.order_type is OrderType.STOP else "tp"
                self._children.setdefault(report.client_order_id, (int(tickets[0].ticket), role))
                self._adopt_level(report, apart.get(role, frozenset()))
                reports.append(report)
        return reports

    def _half_tick(self, venue_symbol: str) -> float:
        """Half a tick of the terminal's ``venue_symbol``: two levels this close are one."""
        return self._spec(self._symbols.ours(venue_symbol)).tick_size / 2

    def _adopt_level(self, report: OrderReport, off: frozenset[int] = frozenset()) -> None:
        """A child a restart reports working: reconciliation adopts it at the level reported,
        the poll's baseline for it (``_report_changed_children``); ``off``: the tickets set
        apart from it (``restart_apart``), which the bot's moves and cancels leave alone."""
        if report.price:
            long = report.side is Side.SELL
            booked = _Booked(report.price, long, off=off)
            self._child_levels.setdefault(report.client_order_id, booked)

    def _fill_reports(self, since_ts: int) -> list[Fill]:
        """The bot's executions since ``since_ts``, and, as the running poll books them, the
        parts of others' deals that reduced or closed the bot's positions (``_outside_fill``:
        a person's close while the bot was down is booked at its restart, as while it runs).
        Not said "booked" here: reconciliation books only those its journal lacks (a close by
        hand the running bot booked is listed again at every restart), and the engine says
        each one it books (``position_changed_outside``)."""
        found = self._deal_fills(since_ts, say=False)
        for deal, fill in found:
            self._note_reduced(deal, fill)  # cut as the running broker's would be
            if fill.reason == OUTSIDE_TAG:
                log.info(
                    "MT5 broker: deal %s, a change made outside the bot, listed for start-up "
                    "reconciliation (booked there unless the journal holds it)",
                    fill.fill_id,
                )
        return [fill for _deal, fill in found]

    def _cash_flow_reports(self, since_ts: int) -> list[CashFlow]:
        """The swaps of the deals ``_fill_reports`` reports (a swap on a deal the bot missed
        while down included), oldest first."""
        flows = []
        done: set[int] = set()  # a close split into its children's fills books one swap
        for deal, fill in self._deal_fills(since_ts, say=False):
            if int(deal.ticket) in done:
                continue
            done.add(int(deal.ticket))
            flow = self._swap_of(deal, fill.symbol)
            if flow is not None:
                flows.append(flow)
        return flows

    def _deal_fills(self, since_ts: int, say: bool = True) -> list[tuple[Any, Fill]]:
        """The deals since ``since_ts`` that are the bot's fills, each with its fill, oldest
        first (``say``: log the outside ones)."""
        deals = self._call("history_deals_get", since_ts + self._offset, _FAR) or ()
        found: list[tuple[Any, Fill]] = []
        held: list[Any] | None = None  # the bot's positions, read once when needed
        for deal in sorted(deals, key=lambda d: (int(d.time_msc), int(d.ticket))):
            client_order_id = (
                deal_client_id(deal, self._resolve, self._parent_of)
                if int(deal.magic) == self._magic
                else None
            )
            apart = False
            if client_order_id is not None and self._hedging and child_role(int(deal.reason)):
                if held is None:
                    held = ours(self._call("positions_get"), self._magic)
                apart = self._fired_apart(deal, held, deals, running=False)
            if apart:
                # A line a person set apart fired (``_fired_apart``): booked as the running
                # broker books it, a change made outside the bot — never the child's fill.
                fill = self._outside_fill(deal, say=say)
                fill = None if fill is None else fill._replace(reason=OUTSIDE_TAG)
            elif client_order_id is None:
                fill = self._outside_fill(deal, say=say)
            else:
                symbol = self._symbols.ours(str(deal.symbol))
                fill = fill_from_deal(deal, client_order_id, symbol, self._units)
                if fill is not None:
                    # An SL/TP close: its children's fills, as the running broker books them.
                    parts = self._closer_parts(deal, fill._replace(ts=self._utc(int(deal.time))))
                    found.extend((deal, part) for part in parts)
                    continue
            if fill is not None:
                found.append((deal, fill))
        return found

    def _position_reports(self) -> list[PositionReport]:
        return position_reports(
            ours(self._call("positions_get"), self._magic),
            self._symbols.ours,
            self._utc(self._now()),
            self._units,
        )


def _positions_words(tickets: Sequence[int]) -> str:
    """``position 7001`` / ``positions 7001, 7002``: the tickets named for a person."""
    plural = "s" if len(tickets) > 1 else ""
    return f"position{plural} {', '.join(str(t) for t in tickets)}"


def _closed_words(role: str, apart: Sequence[Any]) -> str:
    """Why a child has nothing left to close: its position closed; ``apart`` the tickets of
    its entry still open that a person set apart from it (``_tickets_look``), each named
    with the ``role`` level it keeps (``position 7001 holds its SL at 1.09``, ``position 7001
    holds no SL``)."""
    if not apart:
        return "the position it protected is closed"
    name = role.upper()
    kept = [
        f"position {int(p.ticket)} holds its {name} at {_level(p, role):.10g}"
        if _level(p, role) > 0.0
        else f"position {int(p.ticket)} holds no {name}"
        for p in apart
    ]
    return (
        "the positions it protected are closed; outside the bot's child, as a person set "
        f"it: {', '.join(kept)}"
    )


def _reduce_only_beyond(
    order: Order, lots: float, against: Sequence[Any], spec: rq.SymbolSpec
) -> str | None:
    """Why reduce-only ``order``, ``lots`` of it resting (or to rest) on a netting account,
    would open or reverse a position: more than ``against`` (the bot's positions of the other
    side in its symbol) hold, named with what they hold; None when they hold it all."""
    held = sum(float(p.volume) for p in against)
    if lots <= held + _EPS:
        return None
    verb = "buy" if order.side is Side.BUY else "sell"
    asked = rq.to_units(lots, spec)
    if not against:
        return (
            f"reduce-only: the bot holds no {order.symbol} position this {verb} of {asked:.10g} "
            "could reduce (closed, or on the same side): it would open one"
        )
    tickets = [int(p.ticket) for p in against]
    holds = "hold" if len(tickets) > 1 else "holds"
    return (
        f"reduce-only: {_positions_words(tickets)} {holds} {rq.to_units(held, spec):.10g} of "
        f"{order.symbol}, less than this {verb} of {asked:.10g}: the rest would reverse it"
    )


def _newest(records: Iterable[Any], comment: str, after: int) -> Any | None:
    """The newest of ``records`` (orders, resting or in history) under ``comment`` whose
    ticket is above ``after`` (the ticket a cut removed): the terminal numbers tickets
    upward, so only an order sent after that removal can be its new order — every ticket
    the exit had before (an earlier cut's, one removed before a restart, which the restarted
    broker never saw removed) is below it. None when none is."""
    found = [r for r in records if str(r.comment) == comment and int(r.ticket) > after]
    return max(found, key=lambda r: int(r.ticket), default=None)


def _recut_amend_refusal(recut: _Recut) -> tuple[ReasonCode, str]:
    """The refusal of an amend of cut exit ``recut``, naming what of the cut is in doubt: the
    removal of its old ticket, the new order not sent yet, or the new order's answer."""
    if recut.removing:
        return _RECUT_REMOVAL_AMEND_REFUSAL
    if not recut.sized:
        return _RECUT_UNSIZED_AMEND_REFUSAL
    return _RECUT_AMEND_REFUSAL


def _against(order: Order, spec: rq.SymbolSpec, positions: Mapping[int, Any]) -> list[Any]:
    """The bot's positions (``positions``, by ticket) of ``spec``'s symbol on the other side
    than ``order``: what a reduce-only ``order`` may close."""
    return [
        p
        for p in positions.values()
        if str(p.symbol) == spec.name
        and (int(p.type) == _POSITION_TYPE_BUY) != (order.side is Side.BUY)
    ]


def _covered_volume(lots: float, against: Sequence[Any], spec: rq.SymbolSpec) -> float:
    """The volume (lots) a reduce-only order of ``lots`` is cut to on a netting account: what
    ``against`` (the positions it closes) hold of it, rounded down to the volume step (never
    more than they hold, or the rest would open the other side); 0.0 when that is below the
    symbol's minimum volume (no order can rest for it: the exit is removed whole)."""
    held = sum(float(p.volume) for p in against)
    covered = rq.round_volume(min(lots, held), spec)
    return covered if covered >= spec.volume_min - _EPS and covered > 0.0 else 0.0


def _cut_words(was: float, units: float, tickets: Sequence[int], held: float) -> str:
    """What a cut of a reduce-only exit says: from ``was`` to ``units`` (units), because
    ``tickets`` hold ``held`` against it."""
    holds = "hold" if len(tickets) > 1 else "holds"
    return (
        f"cut from {was:.10g} to {units:.10g}: {_positions_words(tickets)} {holds} "
        f"{held:.10g} against it"
    )


def _replacement_request(record: Any, volume: float) -> dict[str, Any]:
    """The pending order re-placing resting order ``record`` (an ``orders_get`` record) for
    ``volume`` lots: its symbol, type, price, stop-limit price, SL/TP, expiry, filling, magic
    and comment (the client order id: the order is found by it after a lost answer or a
    restart) — all but the volume as the terminal holds them."""
    request: dict[str, Any] = {
        "action": rq.TRADE_ACTION_PENDING,
        "symbol": str(record.symbol),
        "volume": volume,
        "type": int(record.type),
        "price": float(record.price_open),
        "sl": float(record.sl),
        "tp": float(record.tp),
        "magic": int(record.magic),
        "comment": str(record.comment),
        "type_time": int(record.type_time),
        "type_filling": int(record.type_filling),
    }
    if float(record.price_stoplimit):
        request["stoplimit"] = float(record.price_stoplimit)
    if int(record.time_expiration):
        request["expiration"] = int(record.time_expiration)
    return request


def _money(value: float) -> str:
    """An amount for a person: thousands separated, no needless decimals (``100,000``)."""
    if abs(value) >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.8g}"


class _HeldPrice(NamedTuple):
    """The price to report for a moved pending order (``_held_pending_price``), and what to
    say: ``unread`` why the terminal's price was not taken, ``differs`` that it holds
    another price than sent. Each empty unless there is something to say."""

    price: float
    unread: str = ""
    differs: str = ""


def _held_pending_price(read: Sequence[Any], sent: float) -> _HeldPrice:
    """The price a pending order moved to ``sent`` (on the tick, as sent in
    TRADE_ACTION_MODIFY) works at, ``read`` being the bot's records ``orders_get(ticket=…)``
    returned after the change. The terminal's ``price_open`` is the booking: a server may
    hold another price than sent, and a book at the one sent would re-arm a wrong price
    after a restart. Nothing read (the call failed, the order filled meanwhile) or no
    positive finite price: the price sent, which is the best the broker knows — never a
    price it neither read nor sent."""
    if not read:
        return _HeldPrice(sent, unread=f"the order could not be read back; {sent} sent is reported")
    given = read[0].price_open
    price = _usable_price(given)
    if price is None:
        return _HeldPrice(
            sent, unread=f"the order read back has no price ({given!r}); {sent} sent is reported"
        )
    if price != sent:
        return _HeldPrice(price, differs=f"the terminal holds {price} where {sent} was sent")
    return _HeldPrice(price)


def _usable_price(given: Any) -> float | None:
    """A terminal record's price as a positive finite float; None when it is not one."""
    try:
        price = 0.0 if isinstance(given, bool) else float(given)
    except (TypeError, ValueError):
        return None
    return price if math.isfinite(price) and price > 0.0 else None


class _AfterDoubt(NamedTuple):
    """What a read back says of a TRADE_ACTION_MODIFY whose answer was lost
    (``_pending_after_doubt``): ``applied`` True, the order works at ``price`` now; False, it
    still works at ``price``, the one it had; None, nothing tells (``said`` why)."""

    applied: bool | None
    price: float | None = None
    said: str = ""


def _pending_after_doubt(
    read: Sequence[Any] | None, before: float | None, sent: float, tick: float
) -> _AfterDoubt:
    """Whether a pending order's move to ``sent`` whose answer was lost (10012, 10031,
    ``order_send`` None) was applied, from ``read``: the bot's records ``orders_get(ticket=…)``
    returned after it (None: the call failed). ``before``: the price the order worked at just
    before (None: unknown); prices match within half a ``tick``. A price that is neither is
    the terminal's own for the move (a server holding moves on a step it does not state):
    applied, and booked as it holds it, as a move's answer is. An order no longer resting
    (filled, cancelled meanwhile) is the poll's to report, from the deals and history."""
    if read is None:
        tail = f"{before} or {sent}" if before is not None else f"{sent} or its old price"
        return _AfterDoubt(
            None,
            said=f"the order could not be read back; it works at {tail} at the terminal until"
            " a read tells (the next amend reads it first; the poll reports a fill or a cancel)",
        )
    if not read:
        return _AfterDoubt(
            None,
            said="the terminal no longer holds it resting (filled or cancelled meanwhile):"
            " the poll reports how it ended",
        )
    given = read[0].price_open
    price = _usable_price(given)
    if price is None:
        return _AfterDoubt(
            None,
            said=f"the order read back has no price ({given!r}); the next amend reads it first",
        )
    half = tick / 2
    if abs(price - sent) <= half:
        return _AfterDoubt(True, price)
    if before is not None and abs(price - before) <= half:
        return _AfterDoubt(False, price)
    return _AfterDoubt(True, price, f"the terminal holds {price} where {sent} was sent")


class _PendingMove(NamedTuple):
    """A resting order the terminal holds at another price than the bot books
    (``_pending_moves``): its id, the price held, and the words of its report."""

    client_order_id: str
    price: float
    said: str


def _pending_moves(
    resting: Sequence[Any],
    watched: Mapping[int, str],
    booked: Mapping[str, float],
    busy: Collection[str],
    half_ticks: Mapping[str, float],
) -> list[_PendingMove]:
    """Of the bot's resting orders ``resting`` (its records from ``orders_get``), the limit
    and stop orders it watches (``watched``: ticket -> client order id; a market order the
    server placed to fill later has no price to move) whose ``price_open`` is more than half
    a tick (``half_ticks`` by the terminal's symbol; 0: exact) from the price last reported
    for them (``booked``; absent: none known, after a restart, reported whatever it is).
    ``busy``: ids whose amend is queued or running — its answer reports the price, and a
    report before it would be taken for it. A record without a usable price is no news."""
    moves = []
    for record in resting:
        client_order_id = watched.get(int(record.ticket))
        if client_order_id is None or client_order_id in busy:
            continue
        if int(record.type) not in _RESTING_TYPES:
            continue
        price = _usable_price(record.price_open)
        if price is None:
            continue
        last = booked.get(client_order_id)
        if last is None:
            said = f"the terminal holds it at {price}"
        elif abs(price - last) > half_ticks.get(str(record.symbol), 0.0):
            said = (
                f"the terminal holds it at {price}, not {last} (a change whose answer was "
                "lost, or made at the terminal)"
            )
        else:
            continue
        moves.append(_PendingMove(client_order_id, price, said))
    return moves


def _child_on_position(held: float, want: float, half: float, shared: bool) -> str:
    """How a bracket child at ``want`` goes on a position holding ``held`` for its level (0:
    none): ``in place`` — the position holds it already (within ``half`` a point): nothing to
    send, and sending would move nothing; ``replaces`` — a netting position other entries'
    fills are in (``shared``) holds another level, which this one would replace for all of
    them while the journal still shows theirs (``_netting_stops_problem``'s rule): refused;
    ``set`` — anything else (no level held, or a hedging position of its own entry)."""
    if held > 0.0 and abs(held - want) <= half:
        return "in place"
    if shared and held > 0.0:
        return "replaces"
    return "set"


class _Booked(NamedTuple):
    """A working SL/TP child's level as the bot books it (``_report_changed_children``'s
    baseline): its price, and whether it closes a long (the position's side it is for). On a
    hedging account also its entry's tickets as the poll last looked at them (``_tickets_look``):
    each ticket's volume (lots; None: not looked at yet), the tickets outside the child (without
    its level, or at another) as last said, and what the child closes (units; None: not known)."""

    price: float
    long: bool
    volumes: frozenset[tuple[int, float]] | None = None
    off: frozenset[int] = frozenset()
    held: float | None = None


class _TicketsLook(NamedTuple):
    """The poll's look at the tickets of a hedging entry for one child (``_tickets_look``): the
    baseline to keep (``volumes``, ``off``, ``held``) and, when the child's size is news, the
    words (``said``; "" when it is not) — said as a warning when a ticket changed at the
    terminal (``warn``), quietly when only tickets closed under it."""

    volumes: frozenset[tuple[int, float]]
    off: frozenset[int]
    held: float | None
    said: str
    warn: bool


def _tickets_look(
    role: str, levels: TicketLevels, before: _Booked | None, held: float
) -> _TicketsLook:
    """Whether what a hedging child closes is news: ``levels`` how its entry's tickets hold its
    ``role`` level now (``ticket_levels``), ``held`` the units of those at it, ``before`` the
    last look. A ticket now outside the child (its line removed or moved by a person), or back
    at its level, is news said as a change at the terminal; so is one outside at the first
    look (a child just placed or adopted covers every ticket of its entry, or a restart's
    report the tickets at its level: said once). The child's size is news too when it differs
    from the one last noted with no ticket changed (a ticket closed under it by a fill that
    cut it otherwise: its sibling of a split entry). While the tickets' volumes change (a fill:
    a ticket opened, closed, reduced) nothing is said: the fill's deal may not be read yet (it
    happened between the poll's read of deals and of positions), and its fill, booked first,
    sizes the child; the next look, the volumes holding still, judges."""
    volumes = frozenset((int(p.ticket), float(p.volume)) for p in (*levels.at, *levels.off))
    off = frozenset(int(p.ticket) for p in levels.off)
    if before is None or before.volumes is None:
        was = before.off if before is not None else frozenset()
        said = _off_words(role, levels, was - off) if off != was else ""
        return _TicketsLook(volumes, off, held, said, bool(said))
    if volumes != before.volumes:
        open_now = frozenset(ticket for ticket, _ in volumes)
        return _TicketsLook(volumes, before.off & open_now, before.held, "", False)
    if off != before.off:
        return _TicketsLook(volumes, off, held, _off_words(role, levels, before.off - off), True)
    if before.held is None or abs(held - before.held) <= _EPS * max(held, 1.0):
        return _TicketsLook(volumes, off, held, "", False)
    return _TicketsLook(volumes, off, held, _child_words(role, levels) + " now", False)


def _off_words(role: str, levels: TicketLevels, back: frozenset[int] = frozenset()) -> str:
    """A change at the terminal of which tickets a hedging child is, for a person: each ticket
    outside it (``position 7001 no longer holds its SL``, ``position 7002 holds its SL at
    1.097, outside the bot``), each ``back`` at its level, then what the child closes."""
    name = role.upper()
    said = []
    for position in levels.off:
        level = _level(position, role)
        ticket = int(position.ticket)
        if level > 0.0:
            said.append(f"position {ticket} holds its {name} at {level:.10g}, outside the bot")
        else:
            said.append(f"position {ticket} no longer holds its {name}")
    said.extend(
        f"position {ticket} holds its {name} at {levels.level:.10g} again"
        for ticket in sorted(back)
    )
    return f"{'; '.join(said)}: changed at the terminal; {_child_words(role, levels)}"


def _child_words(role: str, levels: TicketLevels) -> str:
    """``the SL child closes what position 7002 holds at 1.095``."""
    at = [int(p.ticket) for p in levels.at]
    holds = "hold" if len(at) > 1 else "holds"
    where = _positions_words(at)
    return f"the {role.upper()} child closes what {where} {holds} at {levels.level:.10g}"


class _ChildChange(NamedTuple):
    """A working SL/TP child whose level the terminal holds otherwise than booked
    (``_child_change``): the price held (0: the level was removed), and the words."""

    price: float
    said: str


def _child_level(holding: Sequence[Any], role: str) -> float:
    """The level (``role``: sl, tp) a child on ``holding`` (its positions, oldest first) is
    at: the oldest's that holds one, as a restart reports it (``ticket_child_reports``); 0
    when none holds it."""
    return next((_level(p, role) for p in holding if _level(p, role) > 0.0), 0.0)


def _child_change(
    role: str, held: float, last: float | None, half: float, tickets: Sequence[int]
) -> _ChildChange | None:
    """Whether a working child's level ``held`` at the terminal (0: none) is news against
    ``last``, the price the bot last booked for it (None: not known — a restarted broker
    reads it from the terminal, so nothing to say): removed; or more than ``half`` a tick
    away; None when it is where the bot books it."""
    name = role.upper()
    where = _positions_words(tickets)
    holds = "hold" if len(tickets) > 1 else "holds"
    if held <= 0.0:
        return _ChildChange(0.0, f"{where} no longer {holds} its {name}: removed at the terminal")
    if last is None or abs(held - last) <= half:
        return None
    return _ChildChange(
        held, f"{where} {holds} its {name} at {held:.10g}, not {last:.10g}: changed at the terminal"
    )


def _level(position: Any, role: str) -> float:
    """The SL (``role`` "sl") or TP an MT5 position holds (0: none)."""
    return float(position.sl if role == "sl" else position.tp)


def _levels_held(position: Any) -> frozenset[str]:
    """The levels (``sl``, ``tp``) an MT5 position holds."""
    return frozenset(role for role in ("sl", "tp") if float(getattr(position, role)) > 0.0)


def _rest_whole(sub: _Submission) -> None:
    """What is left of a hedging account's limit planned as deals closing the bot's tickets
    against it (the market was through it), made one leg — the current one, closing no ticket
    — when the market moved away before that leg went out: it rests at its limit as one
    pending order, as a limit the market never crossed does (a pending order cannot close a
    position by ticket; it opens its own, booked net)."""
    legs = sub.legs or []
    here = legs[sub.next_leg]
    here.volume = round(sum(leg.volume for leg in legs[sub.next_leg :]), 8)
    here.position = 0
    del legs[sub.next_leg + 1 :]


def _after_move_cancel(
    answer: int | None, live: bool | None, state: int | None, left: float
) -> str:
    """What the cancel of a resting order moved through the market left: ``answer`` the
    remove's retcode (None: none read — lost, or sent before a lost terminal), ``live`` whether
    the order still rests (None: unread; False when the remove was done), ``state`` and
    ``left`` (lots not filled) its history record's (state None: none read). ``cancelled``: by
    this move, ``left`` is to trade; ``resting``: the cancel did not land, the order works as
    it was; ``filled``: it filled first; ``ended``: cancelled or expired by another hand;
    ``unknown``: nothing tells."""
    if answer != _RETCODE_DONE:
        if live is None:
            return "unknown"
        if live:
            return "resting"
    if state is None:
        return "unknown"
    if state == _ORDER_STATE_FILLED or left <= _EPS:
        return "filled"
    if state in (_ORDER_STATE_CANCELED, _ORDER_STATE_PARTIAL):
        lost = answer is None or verdict(answer).action is Action.RECONCILE
        return "cancelled" if answer == _RETCODE_DONE or lost else "ended"
    return "ended"


def _move_cancel_refusal(outcome: str, answer: int | None) -> tuple[ReasonCode, str]:
    """The amend's refusal when a move through the market sends nothing
    (``_after_move_cancel``'s ``outcome``; ``answer`` the remove's retcode)."""
    if outcome == "resting":
        v = verdict(answer) if answer is not None else None
        said = f"{v.words} ({answer})" if v is not None else "no answer"
        code = (v.code if v is not None else ReasonCode.VENUE_UNAVAILABLE) or (
            ReasonCode.VENUE_REJECTED
        )
        return code, (
            f"it could not be cancelled to trade through the market ({said}): it works as it was"
        )
    if outcome == "filled":
        return ReasonCode.VENUE_REJECTED, (
            "it filled before it could be moved through the market: nothing sent"
        )
    if outcome == "ended":
        return ReasonCode.VENUE_REJECTED, (
            "the terminal no longer holds it (it ended there): nothing sent"
        )
    return ReasonCode.UNKNOWN_OUTCOME, (
        "cancelled to trade through the market, but what is left of it could not be read: "
        "nothing sent (the poll reports the order as the terminal holds it)"
    )


def _bracket_child(order: Order) -> tuple[str, str] | None:
    """(parent id, ``sl``/``tp``) when ``order`` is a bracket child (``child_order_id``)."""
    found = bracket_role(order.client_order_id)
    if found is None or not order.reduce_only:
        return None
    parent, tag = found
    role = "sl" if tag == STOP_LOSS_TAG else "tp"
    return (parent, role) if child_order_id(parent, role) == order.client_order_id else None


# ``tick_age``: beyond this from the host's clock (either way), a tick's time says nothing of
# its age: the trade server's zone is not ``server_offset_s`` (brokers' zones are whole or
# half hours apart), or the market has been shut for long (a weekend's last tick).
_ZONE_DOUBT_S = 1800.0
# How far behind the host's clock a tick is still known old (the widest zone, UTC+14).
_AGE_KNOWN_S = 14 * 3600.0


class _Stamp(NamedTuple):
    """A server-clock reading taken as a tick's time (``Mt5Broker._saw_tick``): a deal's."""

    time: int


def tick_age(stamp_ms: int, host_s: float, offset_s: int) -> float | None:
    """How old (seconds) a tick stamped ``stamp_ms`` by the trade server's clock is at host
    time ``host_s`` (UTC), the server's zone being ``offset_s`` (``server_offset_s``, or the
    zone measured); None when the two clocks cannot be compared: no stamp, a tick more than
    ``_ZONE_DOUBT_S`` in the future (a zone not known yet), or more than ``_AGE_KNOWN_S`` in the
    past (a weekend's last tick, a test terminal's own calendar). A tick hours old within that
    is old, not unknown: a terminal whose quotes stopped (a lost data feed, a halted symbol)
    must not price an order. Pure."""
    if stamp_ms <= 0:
        return None
    age = host_s + offset_s - stamp_ms / 1000.0
    return age if -_ZONE_DOUBT_S < age < _AGE_KNOWN_S else None


__all__ = ["Mt5Broker", "tick_age"]
