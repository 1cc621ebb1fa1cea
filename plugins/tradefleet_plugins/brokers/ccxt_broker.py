"""The ccxt broker: an account at any venue ccxt speaks, spot or linear futures.

Threads: the engine calls ``submit``/``cancel``/``amend``/``cancel_all`` and they return at once
(PENDING / None); the work runs on the broker's own event-loop thread (``ccxt_venue``), whose
answers come back as events the engine drains (``drain_events``) after ``ctx.wake()``. The
queries (``query_order``, the reports) block: they are for start-up reconciliation.

Money safety:
- a client order id is sent once. An id this broker (or, within ``known_ids_lookback_h``, an
  earlier run of the bot at this venue) already used is refused with DUPLICATE_CLIENT_ID;
- after a timeout, a dropped connection or a 5xx the order may exist: it is looked up by its
  client order id before it is sent again, and a duplicate-id refusal from the venue means
  "look it up", never a second order;
- nothing is sent while a 429/418 ``Retry-After`` lasts (a request during a ban extends it).

Fills come from the venue's own trade list (``fetch_my_trades``), the trade id being the fill
id, so the same execution is the same fill in every report and after every restart. An order's
final update (FILLED, or CANCELLED after part of it filled) follows its fills.

Brackets: from an entry's first fill, its stop-loss/take-profit children (``bracket_children``)
are placed as native reduce-only orders — Binance USDⓈ-M ``STOP_MARKET``/``TAKE_PROFIT_MARKET``,
Binance spot ``STOP_LOSS`` and a limit, Bybit a conditional market order and a reduce-only
limit — sized on what of the entry filled, and resized as the rest fills (amended where the
venue can; on Binance spot by cancel-replace, on USDⓈ-M by cancel and place again under a
derived id): no filled part waits for the rest without its stop. The broker cancels the other
child when one fills (one-cancels-other). An entry adopted after a restart is told its bracket
by the bot (``follow_bracket``: the venue does not keep it) and is protected the same way;
the children of an entry that filled while the bot was down are placed when the bot asks
(``protect_filled``), as at its fill.

Restarts: the bot tells a new broker object the positions it books (``restore_positions``)
twice: before the reconciliation's reports, the ones its journal held before the fills they
list (those made while the bot was down among them), and once it has reconciled with the
venue, before its first bar. A spot fill is counted from the position it finds
(``spot_count``), so the counts after a restart are those without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import Enum
from typing import Any

from tradefleet_plugins.brokers.ccxt_credentials import CredentialFiles
from tradefleet_plugins.brokers.ccxt_errors import Failure, Retry
from tradefleet_plugins.brokers.ccxt_fee_rates import FeeRates
from tradefleet_plugins.brokers.ccxt_funding import (
    FUNDING_WINDOW_MS,
    FundingRows,
    Payment,
    funding_rows_of,
    funding_windows,
    payment_of,
)
from tradefleet_plugins.brokers.ccxt_orders import (
    CreateArgs,
    Dialect,
    FillRules,
    Refusal,
    bot_client_id,
    ccxt_status,
    coin_fee_rate,
    copies_whole_quantity,
    create_args,
    dialect_for,
    fill_of,
    fill_terms,
    instrument_of,
    oco_params,
    position_of,
    replacement_quantity,
    report_of,
    status_of,
    target_reached,
    terms_by_trade,
    trade_id_of,
    trade_owner,
    trade_problem,
    venue_client_id,
)
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams, MarketType
from tradefleet_plugins.brokers.ccxt_venue import CcxtVenue, VenueFailure, VenueLoop
from tradefleet_plugins.brokers.seen_ids import SeenIds
from tradefleet_plugins.market_names import repeated_market
from tradefleet_runtime.sdk import (
    QUOTE_MAX_AGE_S,
    STOP_LOSS_TAG,
    TAKE_PROFIT_TAG,
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
    apply_fill,
    bot_prefix,
    bracket_children,
    bracket_role,
    child_order_id,
    fill_reason,
    limit_problem,
    original_order_id,
    round_quantity,
    venue_replacement_id,
)

log = logging.getLogger("tradefleet.brokers.ccxt")

_EPS = 1e-12
_CONNECT_TIMEOUT_S = 120.0
# Failures that say the venue cannot be reached now, not that it refused the bot.
_UNREACHABLE = frozenset(
    (ReasonCode.VENUE_UNAVAILABLE, ReasonCode.RATE_LIMITED, ReasonCode.UNKNOWN_OUTCOME)
)
_QUERY_TIMEOUT_S = 300.0
_STOP_STEP_S = 3.0
_DAY_MS = 86_400_000
_TRADE_HISTORY_DAYS = 90
# Rows in a page of Kraken's closed orders and own trades.
_KRAKEN_PAGE = 50
# Rows in a page of Bybit's lists, the largest it gives (unless asked: 50 trades, 20 orders).
_BYBIT_TRADE_PAGE = 100
_BYBIT_ORDER_PAGE = 50
# Pages of Bybit's newest ended orders a poll cycle reads for the orders that left the open
# list, before it looks the rest up one by one.
_BYBIT_ENDED_PAGES = 4
# Venue clocks and list indexing lag ours by a little: reads from our times start this early.
_CLOCK_MARGIN_MS = 60_000
# A market's price is read at most this often for the take-profits the broker watches.
_TICKER_EVERY_S = 1.0
# ``quotes-prices``: each market's ticker is read this often on the I/O thread, so that
# ``market_price`` answers on the engine thread from a price at most a round (plus one read)
# old, well inside ``QUOTE_MAX_AGE_S``, without waiting for the network: an emergency stop
# queued behind a burst of signals waits for none of their prices. A ticker read for Kraken's
# watched take-profits (every ``_TICKER_EVERY_S``) serves it too and is not read twice.
# 30 reads a minute per market, half the pace of those take-profit reads; on Binance a ticker
# weighs 1-2 of its 2,400-6,000 a minute.
_QUOTE_EVERY_S = 2.0
# One ticker read may take this long: a price that lands later is older than
# ``QUOTE_MAX_AGE_S`` (its age counts from the read's start) and of no use. The read is given
# up, so a ticker that hangs delays the next round by this at most.
_QUOTE_READ_S = QUOTE_MAX_AGE_S
# An ask that found no fresh price starts the next round at once, but rounds are never closer
# than this: a venue failing at once is not asked in a loop.
_QUOTE_GAP_S = 0.5
# Funding: each read starts this long before the venue's time when the last successful one
# began. A venue settles every account's funding over minutes and may list a payment after a
# read that began later than its stamp; the repeats are dropped by id.
_FUNDING_OVERLAP_MS = 15 * 60_000
# A funding read that failed is tried again this soon (or at ``funding_poll_s``, if sooner).
_FUNDING_RETRY_S = 30.0
# A live start without its credentials folder (``TRADEFLEET_CREDENTIALS_DIR`` unset).
_NO_CREDENTIALS = (
    "TRADEFLEET_CREDENTIALS_DIR is not set: a live ccxt broker reads its API key from that "
    "folder, one file per key (apiKey, secret; password or uid where the venue asks for one). "
    "Outside a cluster, set it to such a folder; run by the operator, the Secret named in "
    "spec.broker.credentialsSecret is mounted there (/var/run/tradefleet/credentials)"
)
# A first run's capital may exceed what the account holds by this much (rounding, a fee).
_CAPITAL_TOLERANCE = 0.005
# Lists read for all markets at once (Kraken's), by (method, since), within one report or
# one poll.
_Lists = dict[tuple[str, int], list[dict[str, Any]]]


@dataclass
class _Tracked:
    """One order of this broker at the venue (touched on the I/O thread only)."""

    order: Order
    market: str
    status: OrderStatus = OrderStatus.PENDING
    venue_id: str | None = None
    filled: float = 0.0  # what the venue says is filled
    seen: float = 0.0  # what this broker reported as fills (the venue's amounts)
    # What of ``seen`` the account holds (on spot, less a fee taken in the asset bought: the
    # bot's position, and what the bracket's children sell); ``seen`` elsewhere.
    held: float = 0.0
    # The rest of its fills below the lot step the account holds beyond ``held``, counted in
    # its next fill (``held_quantity``). Carried within one order only: a person may convert
    # an idle account's dust to another coin, and a count that leaned on it would sell more
    # than the account has.
    dust: Decimal = Decimal(0)
    reported: float = 0.0  # filled quantity of the last PARTIALLY_FILLED update
    # This broker's own request for it is running (its create_order and look-ups, an amend,
    # a cancel-replace): its next cancel or amend waits for it.
    sending: bool = True
    # The order as an amend on its way would make it (None: no amend running). The poller
    # reads the order all the same (a stop moved at every event pump would otherwise hide its
    # own fill for as long as its moves take); during a cancel-replace (``replacing``: Binance
    # spot, an OCO list) a cancelled order it reads is the replace's cancel, not the order's
    # end, which the amend decides.
    amending: Order | None = None
    replacing: bool = False
    final_sent: bool = False
    # A bracket entry: what of it its children should cover (what filled), and what they cover
    # at the venue; one task at a time brings them there.
    protect_to: float = 0.0
    protected: float = 0.0
    protecting: bool = False
    # The engine cut a child of this entry (``cut_child``) since the children were last
    # brought to their sizes: they are sized again, answering the cut.
    recut: bool = False
    # The id the venue knows the order by: the bot's, or after a cancel-replace amend (Binance
    # spot) a derived one, ``<id>-a<n>`` (events and reports still carry the bot's id).
    venue_cid: str = ""
    replaced: int = 0
    # What the copies a cancel-replace ended had executed: the venue's rows of the working copy
    # count its own executed quantity only, and ``filled`` is the whole order's.
    prior: float = 0.0
    # The venue's order list (a Binance spot OCO: a bracket's stop-loss and take-profit) this
    # order is a leg of, by the venue's list id; "" when none.
    list_id: str = ""
    # The price the venue's answer to placing its list says this leg holds (the list's order
    # report), for an amend's answer; None when the answer did not say.
    list_price: float | None = None
    # A take-profit this broker watches instead of resting it at the venue (Kraken spot, beside
    # its stop-loss: ``_watched_target``); a stop-loss cancelled at the venue for its
    # take-profit's market sell, which the bot still counts until that sells (``lifted``).
    watched: bool = False
    lifted: bool = False
    # Why a cancel was asked for (None: not by this broker — the venue or a person did it).
    cancel_code: ReasonCode | None = None
    adopted_ms: int = 0  # an order of an earlier run: its trades before this are not ours to report
    doubt_since: float = 0.0  # when the retries were spent without an answer (0: not in doubt)
    # When this broker began to follow it (ms): none of its trades is older than that, less
    # the clock margin, so a poll reads the venue's trades from there at the earliest.
    tracked_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def __post_init__(self) -> None:
        self.venue_cid = self.venue_cid or self.order.client_order_id

    @property
    def held_filled(self) -> float:
        """What the account holds of ``filled``: ``held``, and any part whose trades are not
        seen yet as the venue states it."""
        return self.held + max(self.filled - self.seen, 0.0)

    @property
    def trades_from_ms(self) -> int:
        """The earliest venue time its trades (those this broker reports) can carry."""
        return (self.adopted_ms or self.tracked_ms) - _CLOCK_MARGIN_MS


@dataclass(frozen=True)
class _Copies:
    """An order an earlier run amended by cancel-replace, as the venue lists its copies
    (``<id>``, ``<id>-a1``, …): the newest one (the venue's client id and the amendment
    number), what the ones it replaced executed, and when the first was placed."""

    venue_cid: str
    replaced: int
    prior: float
    venue_ids: frozenset[str]  # every copy's venue order id
    created_ms: int
    # The whole order's quantity as the copies before the newest show it
    # (``copies_whole_quantity``), and what the newest working copy's rest would take it to
    # with what every copy executed: above the whole, that copy was sized before a fill of the
    # one it replaced and an earlier run stopped before cutting it (``_cut_left_over``, while
    # it works). Both 0.0 when not measured (a stop's copies, a bracket leg's).
    whole: float = 0.0
    working: float = 0.0

    @property
    def overbought(self) -> bool:
        return self.whole > 0.0 and self.working > self.whole + _EPS


@dataclass
class _EndedPages:
    """A market's newest ended orders at Bybit, read a page at a time within one poll cycle,
    by the venue's client id."""

    source: AsyncIterator[list[dict[str, Any]]]
    by_cid: dict[str, dict[str, Any]] = field(default_factory=dict)
    pages: int = 0
    done: bool = False


class _LoneCancel(Enum):
    """What the venue's row of a lone Binance spot bracket child says once ``_join_lone`` asked
    to cancel it (``_lone_cancel_outcome``)."""

    CANCELLED = "cancelled"  # cancelled with nothing of it filled: the coin is free for a list
    FILLED = "filled"  # filled or triggered, in whole or in part: the fill wins
    KEPT = "kept"  # the venue keeps it working (refused the cancel, or kept failing)
    UNREAD = "unread"  # the cancel went unanswered and the row cannot be read: nothing known


class _Join(Enum):
    """How ``_join_lone`` ended for a bracket's children."""

    NONE = "none"  # nothing joined: the caller places what is left one by one
    LISTED = "listed"  # the list went (or is in doubt, looked up by the poller)
    ENDED = "ended"  # the lone child filled first: nothing more is placed for the bracket
    DUE = "due"  # the lone child's state unknown: both held as they are, tried at each poll


@dataclass
class _LoneJoin:
    """A lone child on its way to one OCO list with its pair's other part (``_join_lone``):
    kept from one try to the next while the venue cannot say what became of the lone child."""

    entry: _Tracked
    want: float  # what of the entry the pair covers
    lone: _Tracked
    paired: _Tracked  # the other part: known and followed (sending) while the join is on
    lone_order: Order  # the lone child as the list holds it (its venue price, the pair's size)
    lone_cid: str  # its derived id in the list (``<id>-a<n>``)
    params: dict[str, str]  # the list's request
    said: bool = False  # the wait was said (once)


def _lone_cancel_outcome(status: OrderStatus | None, filled: float) -> _LoneCancel:
    """What a lone child's row after ``_join_lone``'s cancel means: ``status`` as the venue
    states it (None: the cancel went unanswered and the row could not be read), ``filled``
    what of it filled since the join began (nothing had). A fill wins over any status; a
    row still working is the venue's refusal (or a cancel that kept failing)."""
    if status is None:
        return _LoneCancel.UNREAD
    if filled > _EPS:
        return _LoneCancel.FILLED
    if status is OrderStatus.CANCELLED:
        return _LoneCancel.CANCELLED
    return _LoneCancel.KEPT


def _amend_unanswered(client_order_id: str, failure: Failure) -> OrderUpdate:
    """The answer to an amend of an order this object does not follow whose look-up at the
    venue failed: whether the venue holds it is unknown, so it is kept as it was — OPEN with
    the failure's code (the engine journals the refusal and keeps the order, as for any amend
    the venue refused), never REJECTED ("no such order", which the engine drops)."""
    return _kept_unanswered(client_order_id, failure, "amend refused", "")


def _cancel_unanswered(client_order_id: str, failure: Failure) -> OrderUpdate:
    """The answer to a cancel of an order this object does not follow whose look-up at the
    venue failed: the venue may hold it (a bracket child an earlier run placed, its id not
    among those loaded at start-up), so it is kept as it was — OPEN with the failure's code
    (the engine journals it and keeps the order), never CANCELLED ("cancelled before it was
    placed": the bot would forget a stop the venue works). The cancel is asked again."""
    return _kept_unanswered(
        client_order_id, failure, "cancel not made", ", the cancel asked again at the next poll"
    )


# A cancel whose look-up keeps failing, or that the venue keeps refusing for a lasting reason
# (``_refusal_lasts``), is asked again after 1, 2, 4, ... polls, at most this many apart: a
# failure that lasts (a venue refusing the look-up or the cancel for a reason no retry changes,
# an endpoint answering 5xx to the look-up) is not asked, and its retries waited out, at every
# poll.
_CANCEL_WAIT_MAX_POLLS = 64
# After this many such tries in a row the cancel is said again, once: it has lasted.
_CANCEL_SAID_AFTER = 5


def _cancel_wait_polls(failed: int) -> int:
    """How many polls after its ``failed``-th failed try in a row a cancel is asked again."""
    return int(min(2 ** max(failed - 1, 0), _CANCEL_WAIT_MAX_POLLS))


def _refusal_lasts(failure: Failure) -> bool:
    """Whether a cancel the venue refused with ``failure`` would be refused alike at the next
    poll: the venue answered and refused it (a ccxt ``ExchangeError`` — ``PermissionDenied``,
    ``BadRequest``, ``InvalidOrder`` … — or a venue code the classifier takes for a refusal,
    e.g. Binance's -2015 that ccxt may raise as ``DDoSProtection``: ``Retry.NEVER``), and not
    because it holds no such order (the order ended: the poll reports how). A fault that
    passes (``NetworkError`` and its subclasses — timeouts, ``ExchangeNotAvailable``,
    ``OnMaintenance``, rate limits, a refused nonce —, ``BadResponse``, any 5xx) is not."""
    return failure.retry is Retry.NEVER and failure.code is not ReasonCode.UNKNOWN_ORDER


def _cancel_lasting(client_order_id: str, failure: Failure, failed: int) -> OrderUpdate:
    """The cancel of ``_cancel_unanswered`` said again, once, when it has failed ``failed``
    times in a row, its look-up the last time: still OPEN (the venue may hold the order), for a
    person to see that the cancel is not made and why."""
    return _kept_unanswered(
        client_order_id,
        failure,
        f"cancel still not made after {failed} tries",
        f", the cancel asked again at most every {_CANCEL_WAIT_MAX_POLLS} polls until the "
        "venue answers",
    )


def _cancel_refused_lasting(client_order_id: str, failure: Failure, failed: int) -> OrderUpdate:
    """A cancel the venue has refused for a lasting reason (``_refusal_lasts``), said once when
    it has failed ``failed`` times in a row: the venue holds the order, so it is OPEN, with
    the refusal's code and words, for a person to see that it still works and why."""
    return OrderUpdate(
        client_order_id,
        OrderStatus.OPEN,
        int(time.time()),
        f"cancel still not made after {failed} tries: the venue refused it "
        f"({failure.message}); the order works at the venue, the cancel asked again at most "
        f"every {_CANCEL_WAIT_MAX_POLLS} polls until the venue takes it",
        # A code, always: an OPEN update without one is the order's plain acknowledgement.
        code=failure.code if failure.code is not ReasonCode.NONE else ReasonCode.VENUE_REJECTED,
    )


def _kept_unanswered(client_order_id: str, failure: Failure, what: str, then: str) -> OrderUpdate:
    """An order kept as it was after a change to it (``what``) the venue could not be asked
    about: OPEN with the failure's code."""
    return OrderUpdate(
        client_order_id,
        OrderStatus.OPEN,
        int(time.time()),
        f"{what}: the venue could not be asked whether it holds this order "
        f"({failure.message}); kept as it was{then}",
        # A code, always: an OPEN update without one is the order's plain acknowledgement.
        code=failure.code if failure.code is not ReasonCode.NONE else ReasonCode.VENUE_UNAVAILABLE,
    )


def _sized_by_entry(protecting: bool, protect_to: float) -> bool:
    """Whether a cut of a bracket child goes to the task that sizes its entry's children
    (``_keep_protected``) rather than straight to the venue: that task runs now (``protecting``:
    a child's create may be in flight, the next child not sent yet — an amend would find no
    such order), or the entry has fills this object protects (``protect_to``: the next fill
    must not grow the child back over the cut)."""
    return protecting or protect_to > _EPS


class CcxtBroker:
    """A venue account through ccxt (``venue-execution``)."""

    def __init__(self, params: CcxtBrokerParams) -> None:
        self.params = params
        linear = params.market_type is MarketType.LINEAR
        self._dialect = dialect_for(params.exchange, linear)
        self._linear = linear
        self._ctx: BrokerContext | None = None
        self._loop: VenueLoop | None = None
        self._venue: CcxtVenue | None = None
        self._markets: dict[str, str] = {}  # bot symbol -> ccxt symbol
        self._bot_symbols: dict[str, str] = {}  # ccxt symbol -> bot symbol
        self._instruments: dict[str, Instrument] = {}
        # The share of a buy each bot symbol's venue keeps in the coin bought (``coin_fee_rate``).
        self._coin_fees: dict[str, float] = {}
        # How each bot symbol's trades are booked (fee currencies, base asset, lot step).
        self._fill_rules: dict[str, FillRules] = {}
        self._known: set[str] = set()
        self._known_lock = threading.Lock()
        self._preloaded: set[str] = set()  # ids an earlier run sent (loaded at connect)
        self._events: list[Fill | OrderUpdate | CashFlow] = []
        self._events_lock = threading.Lock()
        # Funding (linear markets of a venue it has a reader for; None: no funding read). The
        # rest is the I/O thread's: the venue's time at connect (no payment booked before it
        # is this run's), where each market's next read starts (venue ms), the payments taken.
        self._funding_rows: FundingRows | None = funding_rows_of(self._dialect) if linear else None
        self._funding_floor_ms = 0
        self._funding_from: dict[str, int] = {}
        self._funding_seen: dict[str, SeenIds[str]] = {}
        self._funding_problem: str | None = None  # the last failed read's, said once
        self._funding_said: set[str] = set()  # payments whose unreadable field was said
        self._no_funding_said = False
        self._funding_reader: asyncio.Task[None] | None = None
        # I/O thread state
        self._tracked: dict[str, _Tracked] = {}
        # What the engine took off each bracket child since its entry began to fill
        # (``cut_child``): a child is its entry's fills less this, never grown back over it.
        self._cuts: dict[str, float] = {}
        self._by_venue_id: dict[str, str] = {}
        self._trade_ids: dict[str, SeenIds[str]] = {}  # by market
        self._trades_since: dict[str, int] = {}
        self._polled_ms = 0  # when the last poll cycle began (ms)
        self._ended: dict[str, _EndedPages] = {}  # this poll cycle's, by market (Bybit)
        self._foreign_ids: set[str] = set()
        # Earlier copies of resized conditional orders the venue has not cancelled yet:
        # (market, venue id, client id). A copy left working would act on a later position.
        self._stale: list[tuple[str, str, str]] = []
        # Cancels the venue did not take (a fault outlasted the request's retries, or it
        # refused), by client id, with their code: asked again at the next poll until the order
        # ends (one whose look-up keeps failing, or that the venue keeps refusing for a lasting
        # reason, slower: ``_cancels_failed``). A bracket's other child left working would act
        # on a later position.
        self._cancels_due: dict[str, ReasonCode] = {}
        # The orders whose cancel the bot asked (``cancel``, on the engine's thread), until
        # they end: a stop-loss lifted for its take-profit's sell whose cancel the bot asked is
        # cancelled as asked when that sell ends unsold, not refused (``_unlifted``).
        self._cancels_asked: set[str] = set()
        # Client id -> (its tries failed in a row, the poll it is asked again at) of a cancel due
        # whose look-up failed or that the venue refused for a lasting reason
        # (``_cancel_wait_polls``); ``_polls`` counts cycles. Dropped once it is no longer due.
        self._cancels_failed: dict[str, tuple[int, int]] = {}
        self._polls = 0
        # Bracket children cancelled before they were placed, or whose amend was refused as
        # not at the venue: never placed.
        self._withheld: set[str] = set()
        # Bracket entries whose children a ``_keep_protected`` pass is bringing to their sizes
        # now, by entry id (an entry that ended while the bot was down among them: its
        # stand-in, which ``_tracked`` does not hold): a cut or an amend of a child on its way
        # waits for it, never answered as if the venue had no such order.
        self._sizing: dict[str, _Tracked] = {}
        # Bracket entries whose one fitting child is held while its pair waits (Binance spot,
        # ``_pair_waits``): said once per wait, and again when the pair goes.
        self._pair_wait_said: set[str] = set()
        # Lone children on their way to a list whose state the venue could not say (their
        # cancel unanswered, their row unread), by entry: tried again at each poll, neither
        # part placed meanwhile (``_join_lone``).
        self._joins_due: dict[str, _LoneJoin] = {}
        self._fee_warned = False
        self._ticker_read: dict[str, float] = {}  # market -> when (monotonic) for take-profits
        # ``quotes-prices``: market -> (when its read began, monotonic; ccxt's ticker), written
        # on the I/O thread (``_quote_forever``), read on the engine thread; the event an ask
        # finding no fresh price sets to start the next round at once; the last failed read's
        # problem, said once.
        self._quotes: dict[str, tuple[float, Mapping[str, Any]]] = {}
        self._quote_kick: asyncio.Event | None = None
        self._quoter: asyncio.Task[None] | None = None
        self._quote_problem: str | None = None
        self._fee_rates: FeeRates | None = None  # made at start, with the venue's markets
        self._poke: asyncio.Event | None = None
        self._poller: asyncio.Task[None] | None = None
        self._poll_problem: str | None = None  # the last failed poll's, said once
        # Malformed trade rows already said (market, trade id, order, problem): once each.
        self._malformed_said: set[tuple[str, str, str, str]] = set()
        self._overfilled_said: set[str] = set()  # orders answered filled above their size
        self._closed = False
        # The bot's account as this broker saw it (for open_orders/positions/balance).
        self._positions: dict[str, Position] = {}
        self._cash = 0.0
        # The same positions as this broker booked them, by bot symbol, in the venue's exact
        # decimals (I/O thread): whether a spot buy closes a short or opens a long decides what
        # of it the bot counts (``spot_count``). From the positions the bot starts from after
        # a restart (``restore_positions``), moved by this run's fills.
        self._counted: dict[str, Decimal] = {}

    # -- Broker protocol: engine thread ------------------------------------------------------

    def connect(self, ctx: BrokerContext) -> None:
        # A connect that failed closed the broker; the runtime may call connect again (a
        # venue that was down at start): each try starts from a new venue client and loop.
        self._closed = False
        self._ctx = ctx
        self._cash = ctx.initial_capital
        credentials = (
            CredentialFiles(ctx.credentials_dir) if ctx.credentials_dir is not None else None
        )
        if credentials is None and ctx.mode == "live":
            # A refusal (one line, no traceback), naming what a person sets: the variable
            # outside a cluster, the Secret in the manifest under the operator.
            raise PluginError(_NO_CREDENTIALS)
        self._venue = CcxtVenue(self.params, credentials)
        self._loop = VenueLoop(f"ccxt-{self.params.exchange}")
        try:
            self._loop.call(self._start(ctx), _CONNECT_TIMEOUT_S)
        except BaseException as error:
            self._closed = True
            try:
                self._loop.call(self._stop(), 15)
            finally:
                self._loop.stop()
            # Unreachable (down, throttled, no answer in time): ConnectionError, which the
            # runtime may wait out. Refused (credentials, permissions, anything else): final.
            if isinstance(error, VenueFailure) and error.failure.code in _UNREACHABLE:
                raise ConnectionError(
                    f"exchange {self.params.exchange}: connecting failed ({error})"
                ) from None
            if isinstance(error, TimeoutError):
                raise ConnectionError(
                    f"exchange {self.params.exchange}: no answer within {_CONNECT_TIMEOUT_S:.10g}s"
                ) from None
            if isinstance(error, VenueFailure):
                raise PluginError(
                    f"broker: exchange {self.params.exchange} refused the connection ({error})"
                ) from None
            raise

    def coin_fee_rate(self, symbol: str) -> float:
        """The share of a buy of ``symbol`` the venue may keep as its fee in the coin bought
        (Binance spot; 0 elsewhere): the engine refuses a bracket entry whose stop-loss or
        take-profit, sized on the rest, the venue would refuse (``bracket_problem``)."""
        return self._coin_fees.get(symbol, 0.0)

    def closes_from_balance(self, symbol: str) -> bool:
        """``SpotCloses``: whether a close of ``symbol`` sells from the account's balance — on
        a spot market, where the venue has no position to reduce: a flatten then cancels the
        position's stop-loss and take-profit before its close (a kept one that filled beside
        it would sell the account's other coins); ``symbol`` is the same everywhere here."""
        return self.params.market_type is MarketType.SPOT

    def reduce_only_below_min_notional(self, symbol: str) -> bool:
        """``ReduceOnlyMinimums``: whether the venue takes a reduce-only order of ``symbol``
        below its minimum notional (Binance USDⓈ-M and Bybit linear; ``Dialect``'s)."""
        return self._dialect.reduce_only_below_min_notional

    def _coin_fee_of(self, symbol: str, market: Mapping[str, Any]) -> float:
        """``coin_fee_rate`` of ``symbol`` from its ccxt market; the worst documented rate,
        said once, when the market does not give it."""
        rate, known = coin_fee_rate(self._dialect, market)
        if not known:
            log.warning(
                "ccxt broker: %s's taker fee is not in %s's market: a buy's fee taken in the "
                "coin bought is counted at %g%%, the highest the venue documents, when a "
                "bracket's stop-loss and take-profit are checked against its minimums",
                symbol,
                self.params.exchange,
                rate * 100,
            )
        return rate

    def instrument(self, symbol: str) -> Instrument:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            raise KeyError(f"symbol: {symbol!r} is not a market of {self.params.exchange}")
        return instrument

    def submit(self, order: Order) -> OrderUpdate:
        order_id = order.client_order_id
        with self._known_lock:
            duplicate = order_id in self._known
            self._known.add(order_id)
        if duplicate:
            if order_id in self._preloaded:
                # Re-armed after a restart: the venue holds it; follow it from here on.
                self._preloaded.discard(order_id)
                self._io().spawn(self._adopt(order_id))
            return OrderUpdate(
                order_id,
                OrderStatus.REJECTED,
                order.created_ts,
                "duplicate client order id: the venue already has (or had) this order",
                code=ReasonCode.DUPLICATE_CLIENT_ID,
            )
        args = self._args(order)
        if isinstance(args, Refusal):
            return OrderUpdate(
                order_id, OrderStatus.REJECTED, order.created_ts, args.reason, code=args.code
            )
        self._io().spawn(self._place(order, args))
        return OrderUpdate(order_id, OrderStatus.PENDING, order.created_ts)

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        self._cancels_asked.add(client_order_id)
        self._io().spawn(self._cancel(client_order_id))
        return None

    def on_bar(self, bar: Bar) -> Sequence[Fill | OrderUpdate | CashFlow]:
        # A funding payment among them is booked by the engine as when pumped.
        return self.drain_events()

    def open_orders(self) -> Sequence[Order]:
        return self._io().call(self._open_orders(), _QUERY_TIMEOUT_S)

    def positions(self) -> dict[str, Position]:
        return {s: p for s, p in self._positions.items() if p.quantity}

    def restore_positions(self, positions: Mapping[str, Position]) -> None:
        """``restores-positions``: the bot's positions after a restart — before the
        reconciliation's reports, the journal's before the fills they list (``fill_reports``
        counts them from these); after it, before its first bar, the reconciled ones. The fills
        that follow are counted from them (``spot_count``: a buy closing a carried short counts
        its whole amount, one crossing it takes the fee from the long), as an object that had
        seen the earlier runs would count them."""
        self._positions = {s: replace(p) for s, p in positions.items() if p.quantity}
        told = {s: _exact(p.quantity) for s, p in self._positions.items()}
        self._io().call(self._count_from(told), _QUERY_TIMEOUT_S)

    def balance(self) -> float:
        return self._cash

    def close(self) -> None:
        if self._loop is None or self._closed:
            return
        self._closed = True
        try:
            self._loop.call(self._stop(), 4 * _STOP_STEP_S)
        except TimeoutError:
            log.warning("ccxt broker: shutdown timed out; leaving its thread behind")
        finally:
            self._loop.stop()

    # -- venue-execution -------------------------------------------------------------------

    def drain_events(self) -> Sequence[Fill | OrderUpdate | CashFlow]:
        with self._events_lock:
            events, self._events = self._events, []
        for event in events:
            if isinstance(event, Fill):
                self._book(event)
            elif isinstance(event, CashFlow):
                self._book_cash_flow(event)
        return events

    def query_order(self, client_order_id: str) -> OrderReport | None:
        return self._io().call(self._query(client_order_id), _QUERY_TIMEOUT_S)

    def order_reports(self, since_ts: int) -> Sequence[OrderReport]:
        return self._io().call(self._order_reports(since_ts), _QUERY_TIMEOUT_S)

    def fill_reports(self, since_ts: int) -> Sequence[Fill]:
        return self._io().call(self._fill_reports(since_ts), _QUERY_TIMEOUT_S)

    def cash_flow_reports(self, since_ts: int) -> Sequence[CashFlow]:
        """``reports-cash-flows``: the funding payments in the bot's symbols the venue booked
        at or after ``since_ts``, every page, oldest first (none on spot, and none from a
        venue without a funding reader)."""
        return self._io().call(self._cash_flow_reports(since_ts), _QUERY_TIMEOUT_S)

    def position_reports(self) -> Sequence[PositionReport]:
        return self._io().call(self._position_reports(), _QUERY_TIMEOUT_S)

    def cancel_all(self, symbol: str | None) -> None:
        self._io().spawn(self._cancel_all(symbol))

    def amend(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> OrderUpdate | None:
        self._io().spawn(self._amend(client_order_id, quantity, price))
        return None

    def cut_child(self, client_order_id: str, quantity: float, cut: float) -> OrderUpdate | None:
        """``ChildCutter``: the engine took ``cut`` off bracket child ``client_order_id`` (its
        position got smaller). From now on the child is what its entry filled less every cut
        — sized on this broker's count of the entry's fills, which may be ahead of the
        engine's (``quantity``, used only for a child whose entry this object does not
        follow) — and the one at the venue is brought there; answered as an amend."""
        self._io().spawn(self._cut(client_order_id, quantity, cut))
        return None

    def restore_cuts(self, cuts: Mapping[str, float]) -> None:
        """``ChildCutter``: what earlier runs cut off each bracket child still working at the
        venue (or sent again by the engine: the venue never received it), told after a restart
        before ``follow_bracket``: the children are sized as
        their entry's fills less it from the first step (``_sized``). Set on the I/O thread,
        by a task started before the engine's ``follow_bracket`` starts its own (in order)."""
        self._io().spawn(self._restore_cuts(dict(cuts)))

    async def _restore_cuts(self, cuts: dict[str, float]) -> None:
        for child_id, cut in cuts.items():
            self._cuts[child_id] = max(self._cuts.get(child_id, 0.0), cut)

    def is_connected(self) -> bool:
        venue = self._venue
        return venue is not None and venue.connected and venue.credentials_ok and not self._closed

    def account_leverage(self) -> float | None:
        # The leverage this bot sets on its symbols before its first order; without it the
        # venue's current setting is not read (it may differ per symbol): unknown.
        return None if self.params.leverage is None else float(self.params.leverage)

    def market_price(self, symbol: str, side: Side) -> float | None:
        """``quotes-prices``: the price a market order of ``symbol`` on ``side`` meets now
        (``side_price``: the ticker's ask for a buy, its bid for a sell, else its last trade),
        from the ticker the I/O thread read at most ``QUOTE_MAX_AGE_S`` ago
        (``_quote_forever``). Answered at once, never waiting on the network: the engine
        thread asks, and every command queued behind it (an emergency stop) would wait too.
        None: not connected, or no price that fresh (the venue's ticker slow or failing) —
        the next read is then started at once, for the next ask."""
        market = self._markets.get(symbol)
        loop = self._loop
        if market is None or loop is None or self._closed:
            return None
        held = self._quotes.get(market)
        if held is not None and time.monotonic() - held[0] <= QUOTE_MAX_AGE_S:
            return side_price(held[1], side) or None
        kick = self._quote_kick
        if kick is not None:
            loop.loop.call_soon_threadsafe(kick.set)
        return None

    # -- helpers (engine thread) -------------------------------------------------------------

    def _io(self) -> VenueLoop:
        if self._loop is None:
            raise RuntimeError("the ccxt broker is not connected")
        return self._loop

    def _ex(self) -> Any:
        assert self._venue is not None
        return self._venue.exchange

    def _args(self, order: Order) -> CreateArgs | Refusal:
        market = self._markets.get(order.symbol)
        if market is None:
            return Refusal(
                ReasonCode.VENUE_REJECTED,
                f"symbol {order.symbol!r} is not a market of {self.params.exchange}",
            )
        exchange = self._ex()
        return create_args(
            order,
            market,
            self._dialect,
            self._instruments[order.symbol],
            exchange.amount_to_precision,
            exchange.price_to_precision,
        )

    def _triggered(self, order: Order) -> bool:
        """Whether the venue holds ``order``'s price as a trigger (a stop; on Binance USDⓈ-M
        a take-profit too, placed as TAKE_PROFIT_MARKET), not as a limit price."""
        return order.order_type is OrderType.STOP or self._algo(order)

    def _algo(self, order: Order) -> bool:
        """Binance USDⓈ-M keeps conditional orders (stops, take-profit-market) apart."""
        return self._dialect is Dialect.BINANCE_USDM and (
            order.order_type is OrderType.STOP
            or (order.reduce_only and order.tag == TAKE_PROFIT_TAG)
        )

    def _book(self, fill: Fill) -> None:
        signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
        self._cash -= signed * fill.price + fill.fee
        position = self._positions.setdefault(fill.symbol, Position(fill.symbol))
        apply_fill(position, fill)

    def _book_cash_flow(self, flow: CashFlow) -> None:
        """A payment in the account's currency moves the cash this broker reports (as the
        engine books it: one it cannot read, or in another currency, is not booked)."""
        ctx = self._ctx
        same = ctx is not None and flow.currency.upper() == ctx.currency.upper()
        if same and math.isfinite(flow.amount):
            self._cash += flow.amount

    def _emit(self, *events: Fill | OrderUpdate | CashFlow) -> None:
        if not events:
            return
        with self._events_lock:
            self._events.extend(events)
        ctx = self._ctx
        if ctx is not None and ctx.wake is not None:
            ctx.wake()

    # -- start and stop (I/O thread) ---------------------------------------------------------

    async def _start(self, ctx: BrokerContext) -> None:
        venue = self._venue
        assert venue is not None
        exchange = venue.build()
        self._poke = asyncio.Event()
        await venue.request("load_markets")
        if self._dialect is Dialect.BYBIT:
            # ccxt asks whether the account is unified before an order until it knows: once
            # here, not once for each of the first orders sent at once (two calls each).
            await venue.request("is_unified_enabled")
        venue.share_markets()
        decimal_places = getattr(exchange, "precisionMode", None) == 2  # ccxt DECIMAL_PLACES
        found: list[dict[str, Any]] = []
        for i, symbol in enumerate(ctx.symbols):
            market = self._find_market(exchange, symbol)
            if market is None:
                raise PluginError(
                    _unknown_symbol(
                        i, symbol, self.params.exchange, self.params.market_type, exchange.markets
                    )
                )
            found.append(market)
        # Before anything is booked: two names of one market would split its orders and fills
        # between two bot symbols (and their positions, and the risk rules that read them).
        repeated = repeated_market(
            ctx.symbols, [str(m["symbol"]) for m in found], self.params.exchange
        )
        if repeated is not None:
            raise PluginError(repeated)
        for i, (symbol, market) in enumerate(zip(ctx.symbols, found, strict=True)):
            self._refuse_currency(i, symbol, market, ctx.currency)
            unified = str(market["symbol"])
            self._markets[symbol] = unified
            self._bot_symbols[unified] = symbol
            instrument = instrument_of(symbol, market, decimal_places)
            self._instruments[symbol] = instrument
            self._coin_fees[symbol] = self._coin_fee_of(symbol, market)
            self._fill_rules[symbol] = FillRules(
                frozenset(
                    c for c in (ctx.currency, market.get("quote"), market.get("settle")) if c
                ),
                str(market.get("base") or ""),
                instrument.lot_step,
                spot=not self._linear,
                quote=str(market.get("quote") or ""),
            )
        if ctx.first_run and ctx.mode == "live":
            # Before anything is set at the venue (leverage, margin mode).
            await self._refuse_capital(ctx)
        self._fee_rates = FeeRates(venue, exchange.markets or {})
        if self._linear:
            await self._setup_futures()
        await self._load_known_ids(ctx)
        now_ms = int(time.time() * 1000)
        for unified in self._markets.values():
            self._trades_since[unified] = now_ms - _CLOCK_MARGIN_MS
        if self._linear:
            await self._start_funding()
        self._polled_ms = now_ms
        self._poller = asyncio.get_running_loop().create_task(self._poll_forever())
        # The first prices before connect returns: a signal right after a start is sized at
        # the market too (a ticker that does not answer delays the start by _QUOTE_READ_S).
        self._quote_kick = asyncio.Event()
        spent = await self._quote_round()
        self._quoter = asyncio.get_running_loop().create_task(self._quote_forever(spent))

    def _refuse_currency(
        self, index: int, symbol: str, market: dict[str, Any], capital: str
    ) -> None:
        """The runtime books a trade's profit (quantity × price move) in the market's quote
        currency (a linear contract's settle currency) as if it were the bot's capital
        currency, and its risk rules decide on that figure: ETH/BTC on a USDT bot would book
        BTC as USDT. Refused at start, naming the field, until tradefleet converts currencies."""
        key = "settle" if self._linear else "quote"
        paid_in = str(market.get(key) or market.get("quote") or "")
        if capital and paid_in and paid_in.upper() != capital.upper():
            raise PluginError(
                f"spec.market.symbols[{index}]: {symbol} is priced and settled in {paid_in} "
                f"but spec.capital.currency is {capital}; tradefleet does not convert "
                f"currencies yet: set spec.capital.currency to {paid_in}, or trade markets "
                f"quoted in {capital}"
            )

    async def _refuse_capital(self, ctx: BrokerContext) -> None:
        """A live bot's first run: its capital must be money the account holds. Sizing on
        more (fixed-fractional risk, loss limits) multiplies every trade's risk, and bots
        sharing an account that together claim more than it holds see their orders refused.
        Linear futures: the account's total balance of the settle currency; spot: the quote
        currency's total plus what the bot's coins are worth at their last price."""
        venue = self._venue
        assert venue is not None
        totals = (await venue.request("fetch_balance")).get("total") or {}
        exchange = venue.exchange
        markets: dict[str, Any] = exchange.markets or {}
        code = ""
        coins: dict[str, str] = {}  # base coin -> the bot's market it is priced in
        for unified in self._markets.values():
            market = markets.get(unified) or {}
            code = str(market.get("settle" if self._linear else "quote") or "") or code
            base = str(market.get("base") or "")
            if not self._linear and base and base not in coins:
                coins[base] = unified
        code = code or ctx.currency
        held = _amount(totals.get(code))
        for coin, unified in coins.items():
            quantity = _amount(totals.get(coin))
            if quantity > 0:
                ticker = await venue.request("fetch_ticker", unified)
                price = _amount(ticker.get("last")) or _amount(ticker.get("close"))
                held += quantity * price
        if ctx.initial_capital > held * (1 + _CAPITAL_TOLERANCE):
            raise PluginError(
                f"spec.capital.initial: {_money(ctx.initial_capital)} {ctx.currency} is more "
                f"than the account holds ({_money(held)} {code}): sizing on money the account "
                "does not have multiplies every trade's risk; lower spec.capital.initial "
                "(several bots sharing an account each claim their own part)"
            )

    def _find_market(self, exchange: Any, symbol: str) -> dict[str, Any] | None:
        markets: dict[str, Any] = exchange.markets or {}
        candidates = [markets[symbol]] if symbol in markets else []
        by_id = (exchange.markets_by_id or {}).get(symbol) or []
        candidates += list(by_id)
        for market in candidates:
            if _tradable(market, self._linear):
                return dict(market)
        return None

    async def _setup_futures(self) -> None:
        """One-way position mode expected; margin mode and leverage before the first order."""
        venue = self._venue
        assert venue is not None
        exchange = venue.exchange
        for market in self._markets.values():
            hedged = await self._hedged(market)
            if hedged:
                raise ValueError(
                    f"exchange {self.params.exchange}: the account is in hedge (dual-side) "
                    f"position mode for {market}; the ccxt broker trades one-way mode only — "
                    "switch the account to one-way mode"
                )
            if self.params.margin_mode is not None and exchange.has.get("setMarginMode"):
                try:
                    await venue.request("set_margin_mode", self.params.margin_mode.value, market)
                except VenueFailure as error:
                    if not _no_change(error):
                        raise
            if self.params.leverage is not None and exchange.has.get("setLeverage"):
                try:
                    await venue.request("set_leverage", self.params.leverage, market)
                except VenueFailure as error:
                    if not _no_change(error):
                        raise

    async def _hedged(self, market: str) -> bool:
        venue = self._venue
        assert venue is not None
        if venue.exchange.has.get("fetchPositionMode"):
            mode = await venue.request("fetch_position_mode", market)
            return bool(mode.get("hedged"))
        # Bybit: a hedge-mode account reports a long and a short slot (positionIdx 1 and 2).
        positions = await venue.request("fetch_positions", [market])
        return any(str((p.get("info") or {}).get("positionIdx", "0")) != "0" for p in positions)

    async def _load_known_ids(self, ctx: BrokerContext) -> None:
        if self.params.known_ids_lookback_h <= 0:
            return
        since = int(time.time() - self.params.known_ids_lookback_h * 3600)
        prefix = bot_prefix(ctx.identity_seed)
        reports = await self._order_reports(since)
        ids = {r.client_order_id for r in reports if r.client_order_id.startswith(prefix)}
        with self._known_lock:
            self._known.update(ids)
            self._preloaded.update(ids)

    async def _stop(self) -> None:
        """Cancel the broker's tasks and close the clients, each step bounded: a venue that
        hangs must not hang the bot's shutdown."""
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=_STOP_STEP_S)
        if self._venue is not None:
            try:
                await asyncio.wait_for(self._venue.close(), _STOP_STEP_S)
            except TimeoutError:
                log.warning("ccxt broker: closing the venue clients timed out")

    # -- orders (I/O thread) -----------------------------------------------------------------

    async def _place(self, order: Order, args: CreateArgs) -> None:
        if self._watched_target(order):
            self._watch(order, args.symbol)
            return
        tracked = _Tracked(order, args.symbol, venue_cid=self._vcid(order.client_order_id))
        self._tracked[order.client_order_id] = tracked
        try:
            await self._create(tracked, args)
        finally:
            tracked.sending = False
            self._wake_poller()

    def _watched_target(self, order: Order) -> bool:
        """Whether ``order`` is a take-profit this broker watches instead of resting it at the
        venue: on Kraken spot, beside its stop-loss. Kraken has no OCO order, and each resting
        sell holds the coin it sells, so a take-profit beside the stop needs the position twice
        (refused on an account holding only the position). The stop rests at the venue (it
        acts while the bot is down); the take-profit is sold at market when the price reaches
        it (``_take_profit``)."""
        if self._dialect is not Dialect.KRAKEN or order.tag != TAKE_PROFIT_TAG:
            return False
        if order.parent_id is None:
            return False
        stop_id = child_order_id(order.parent_id, "sl")
        if stop_id in self._tracked:  # placed, or adopted after a restart
            return True
        with self._known_lock:
            return stop_id in self._known

    def _watch(self, order: Order, market: str) -> None:
        client_order_id = order.client_order_id
        self._tracked[client_order_id] = _Tracked(
            order,
            market,
            status=OrderStatus.OPEN,
            sending=False,
            watched=True,
            venue_cid=self._vcid(client_order_id),
        )
        self._emit(
            OrderUpdate(
                client_order_id,
                OrderStatus.OPEN,
                int(time.time()),
                "watched by the bot, sold at market when the price reaches it: the venue has "
                "no OCO order and holds the coin once, for the stop-loss",
            )
        )
        self._wake_poller()

    async def _quote_forever(self, spent: float) -> None:
        """Keep every market's price fresh for ``market_price``: a round of ticker reads
        (``_quote_round``) every ``_QUOTE_EVERY_S``, or sooner when an ask found none fresh
        (never closer than ``_QUOTE_GAP_S``), after the round connecting read, which took
        ``spent`` seconds."""
        kick = self._quote_kick
        assert kick is not None
        while True:
            if spent < _QUOTE_GAP_S:
                await asyncio.sleep(_QUOTE_GAP_S - spent)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, _QUOTE_EVERY_S - spent)):
                    await kick.wait()
            kick.clear()
            spent = await self._quote_round()

    async def _quote_round(self) -> float:
        """Read every market's ticker (``_read_quotes``); how long it took. Where the venue
        paces its public calls on their own (``CcxtVenue.public_apart``: Kraken, one a second)
        all markets go in one read, so a bot's prices are no older for its number of symbols;
        elsewhere one read a market, one after another. Each read goes once, behind the ban
        gate and its client's rate limiter, bounded by ``_QUOTE_READ_S``; a failed one leaves
        the price to age out."""
        began = time.monotonic()
        venue = self._venue
        assert venue is not None
        markets = sorted(set(self._markets.values()))
        if venue.public_apart:
            await self._read_quotes(markets)
        else:
            for market in markets:
                await self._read_quotes([market])
        return time.monotonic() - began

    async def _read_quotes(self, markets: Sequence[str]) -> None:
        """Read the tickers of ``markets`` into ``_quotes``, each with when the read began (its
        age counts from there), but for those a watched take-profit's read just now
        (``_check_targets``). One market: ``fetch_ticker``; more: one ``fetch_tickers``."""
        began = time.monotonic()
        due = [m for m in markets if not self._quoted_since(m, began - _TICKER_EVERY_S)]
        if not due:
            return
        venue = self._venue
        assert venue is not None
        try:
            async with asyncio.timeout(_QUOTE_READ_S):
                if len(due) == 1:
                    tickers = {due[0]: await venue.once("fetch_ticker", due[0])}
                else:
                    tickers = await venue.once("fetch_tickers", due)
        except TimeoutError:
            self._quote_failed(", ".join(due), f"no answer within {_QUOTE_READ_S:.10g}s")
            return
        except VenueFailure as error:
            self._quote_failed(", ".join(due), error.failure.message)
            return
        missing = [m for m in due if not isinstance(tickers.get(m), Mapping)]
        for market in due:
            if market not in missing:
                self._quotes[market] = (began, tickers[market])
        if missing:
            self._quote_failed(", ".join(missing), "not in the venue's answer")
        elif self._quote_problem is not None:
            log.info("ccxt broker: prices are read again (after: %s)", self._quote_problem)
            self._quote_problem = None

    def _quoted_since(self, market: str, since: float) -> bool:
        held = self._quotes.get(market)
        return held is not None and held[0] > since

    def _quote_failed(self, market: str, problem: str) -> None:
        """Say a failed price read once per distinct problem (a read runs every few seconds):
        market entries decided between bars are refused while no price is fresh."""
        said = f"{market}: {problem}"
        if said == self._quote_problem:
            return
        self._quote_problem = said
        log.warning(
            "ccxt broker: the price of %s could not be read (%s); a market entry decided "
            "between bars is refused until a price is read again",
            market,
            problem,
        )

    async def _check_targets(self) -> None:
        """Sell each watched take-profit the price reached (a ticker read a market, at most
        once every ``_TICKER_EVERY_S``)."""
        watched = [t for t in self._tracked.values() if t.watched and not t.final_sent]
        if not watched:
            return
        venue = self._venue
        assert venue is not None
        now = time.monotonic()
        for market in sorted({t.market for t in watched}):
            if now - self._ticker_read.get(market, -_TICKER_EVERY_S) < _TICKER_EVERY_S:
                continue
            self._ticker_read[market] = now
            try:
                ticker = await venue.once("fetch_ticker", market)
            except VenueFailure as error:
                log.warning(
                    "ccxt broker: the price of %s could not be read for its take-profits: %s",
                    market,
                    error.failure.message,
                )
                continue
            self._quotes[market] = (now, ticker)  # a fresh price for ``market_price`` too
            for target in watched:
                order = target.order
                if (
                    target.market == market
                    and target.watched
                    and not target.final_sent
                    and order.price is not None
                    and target_reached(order.side, order.price, ticker)
                ):
                    await self._take_profit(target)

    async def _take_profit(self, target: _Tracked) -> None:
        """The price reached a watched take-profit: lift its stop-loss at the venue (it holds
        the coin), then sell at market under the take-profit's id; its fill ends the bracket
        as a resting take-profit's would. A stop that acted first wins (nothing is sold). A
        sell the venue refuses ends the lifted stop as refused: the bot then closes the
        position at market, which is what the take-profit was selling it for."""
        parent = target.order.parent_id
        stop = self._tracked.get(child_order_id(parent, "sl")) if parent is not None else None
        if stop is not None and not stop.final_sent and not await self._lift(stop):
            return
        if target.final_sent:
            return  # cancelled while its stop was lifted (the bot's close): nothing is sold
        target.watched = False
        args = self._args(target.order._replace(order_type=OrderType.MARKET, price=None))
        if isinstance(args, Refusal):
            self._final(target, OrderStatus.REJECTED, args.reason, args.code)
            return
        target.sending = True
        try:
            await self._create(target, args)
        finally:
            target.sending = False
            self._wake_poller()

    async def _lift(self, stop: _Tracked) -> bool:
        """Cancel ``stop`` at the venue for its take-profit's sell, the bot not told: it counts
        the stop until the sell is done. False when the cancel failed (the stop triggered and
        filled: the venue no longer has it open): then nothing is sold, and the poller reports
        what the stop did. Nothing is read between the cancel and the sell (on Kraken a read
        waits seconds for the rate limiter, and the position has no stop at the venue
        meanwhile); a part of the stop that filled before the cancel is reported with its
        cancel (``_cancel``)."""
        while stop.sending:
            await asyncio.sleep(0.01)
        if stop.final_sent:
            return False
        venue = self._venue
        assert venue is not None
        stop.lifted = True
        params = {} if stop.venue_id else _client_id_params(self._dialect, stop.venue_cid, False)
        try:
            await venue.request("cancel_order", stop.venue_id or "", stop.market, params)
        except VenueFailure as error:
            log.warning(
                "ccxt broker: the stop-loss %s could not be lifted for its take-profit: %s",
                stop.order.client_order_id,
                error.failure.message,
            )
            stop.lifted = False
            self._wake_poller()
            return False
        return True

    def _unlifted(self, target: _Tracked, status: OrderStatus) -> None:
        """A take-profit's sell ended without selling it all: its lifted stop-loss is no
        longer at the venue, said as refused, so the bot closes the position at market."""
        parent = target.order.parent_id
        stop = self._tracked.get(child_order_id(parent, "sl")) if parent is not None else None
        if stop is None or not stop.lifted or stop.final_sent:
            return
        if stop.order.client_order_id in self._cancels_asked:
            # The bot asked the stop's cancel too (a close or a flatten cancelling the bracket
            # while its take-profit sold): gone from the venue as asked, not refused.
            self._final(stop, OrderStatus.CANCELLED, "cancelled", ReasonCode.CANCELLED_BY_USER)
            return
        self._final(
            stop,
            OrderStatus.REJECTED,
            f"lifted at the venue for its take-profit's market sell, which ended "
            f"{status.value}: the position is closed at market",
            ReasonCode.VENUE_REJECTED,
        )

    async def _create_order(self, args: CreateArgs) -> Any:
        """One ``create_order`` request (no retry: a lost answer is looked up, never resent)."""
        venue = self._venue
        assert venue is not None
        return await venue.once(
            "create_order",
            args.symbol,
            args.type,
            args.side,
            args.amount,
            args.price,
            dict(args.params),
        )

    async def _create(self, tracked: _Tracked, args: CreateArgs) -> None:
        venue = self._venue
        assert venue is not None
        attempt = 0
        while True:
            try:
                raw = await self._create_order(args)
            except VenueFailure as error:
                failure = error.failure
                if failure.duplicate or failure.retry is Retry.IN_DOUBT:
                    # It may exist (ours, sent by an attempt whose answer was lost): look it
                    # up before anything else; a failed look-up is no answer.
                    try:
                        found = await self._lookup(tracked.venue_cid, tracked.market)
                    except VenueFailure as lookup:
                        await self._in_doubt(tracked, lookup.failure.message)
                        return
                    if found is not None:
                        self._apply(tracked, found)
                        return
                    if failure.duplicate:
                        self._final(tracked, OrderStatus.REJECTED, failure.message, failure.code)
                        return
                if not await venue.recover(failure, attempt):
                    if failure.retry is Retry.IN_DOUBT:
                        # A late copy of an attempt may still land: keep looking a while.
                        await self._in_doubt(tracked, failure.message)
                        return
                    self._final(tracked, OrderStatus.REJECTED, failure.message, failure.code)
                    return
                attempt += 1
                continue
            self._apply(tracked, raw)
            return

    async def _in_doubt(self, tracked: _Tracked, message: str) -> None:
        """The retries are spent and the venue never said whether it has the order: the
        poller keeps looking it up (never resending). If a look-up succeeds and finds
        nothing, the order never arrived: rejected, the bot may decide again."""
        log.warning(
            "ccxt broker: %s outcome unknown after %d attempts (%s); looking it up",
            tracked.order.client_order_id,
            self.params.max_retries + 1,
            message,
        )
        tracked.status = OrderStatus.PENDING  # the poller resolves it
        tracked.doubt_since = time.monotonic()

    async def _lookup_quietly(self, tracked: _Tracked) -> dict[str, Any] | None:
        """A look-up whose failure means "no news" (the poller tries again)."""
        try:
            return await self._lookup(tracked.venue_cid, tracked.market)
        except VenueFailure:
            return None

    def _vcid(self, client_order_id: str) -> str:
        """The id the venue knows one of the bot's orders by (Kraken: packed; see
        ``ccxt_orders.venue_client_id``)."""
        return venue_client_id(client_order_id, self._dialect) or client_order_id

    def _bot_cid(self, venue_cid: str) -> str:
        """The bot's own id of an order the venue names ``venue_cid``."""
        return bot_client_id(venue_cid, self._dialect)

    def _order_of(self, venue_cid: str) -> str:
        """The order the venue names ``venue_cid``, by the bot's id (``_bot_cid``): a copy a
        cancel-replace placed for one of the bot's orders (``<id>-a<n>``) is ``<id>``."""
        named = self._bot_cid(venue_cid)
        own = _amendment(named)[0]
        mine = self._ctx is not None and own.startswith(bot_prefix(self._ctx.identity_seed))
        return own if mine else named

    def _report(self, row: dict[str, Any], bot_symbol: str) -> OrderReport:
        report = report_of(row, bot_symbol)
        own = self._bot_cid(report.client_order_id)
        return report if own == report.client_order_id else report._replace(client_order_id=own)

    async def _lookup(self, client_order_id: str, market: str) -> dict[str, Any] | None:
        """The venue's order with this client order id (None: the venue does not have it)."""
        venue = self._venue
        assert venue is not None
        dialect = self._dialect
        client_order_id = self._vcid(client_order_id)
        if dialect in (Dialect.BYBIT, Dialect.KRAKEN):
            # By the client id among open, then ended orders: Kraken's fetch_order sends it as
            # an integer reference, Bybit's finds nothing without a venue id. Kraken checks an
            # id against open orders only, so a filled order is found among the closed ones.
            key = "orderLinkId" if dialect is Dialect.BYBIT else "clientOrderId"
            methods = ["fetch_open_orders", "fetch_closed_orders"]
            if dialect is Dialect.BYBIT:
                # Every ended order, whatever Bybit names its end (a stop cancelled before it
                # triggered is "Deactivated", neither filled nor cancelled).
                methods[1] = "fetch_canceled_and_closed_orders"
            for method in methods:
                rows = await venue.request(method, market, None, None, {key: client_order_id})
                for row in rows:
                    if row.get("clientOrderId") == client_order_id:
                        return dict(row)
            return None
        queries: list[dict[str, Any]] = [{"origClientOrderId": client_order_id}]
        if dialect is Dialect.BINANCE_USDM:
            queries.append({"trigger": True, "clientAlgoId": client_order_id})
        for query in queries:
            try:
                row = await venue.request("fetch_order", None, market, query)
            except VenueFailure as error:
                if error.failure.code is ReasonCode.UNKNOWN_ORDER:
                    continue
                raise
            if row:
                return dict(row)
        return None

    def _apply(self, tracked: _Tracked, raw: dict[str, Any]) -> None:
        """What the venue says about a tracked order, as events (never twice the same)."""
        order = tracked.order
        venue_id = str(raw.get("id") or "") or tracked.venue_id
        if venue_id and venue_id != tracked.venue_id:
            tracked.venue_id = venue_id
            self._by_venue_id[venue_id] = order.client_order_id
        filled = self._venue_filled(tracked, raw)
        status, code = status_of(ccxt_status(raw), filled)
        now = int(time.time())
        if tracked.status is OrderStatus.PENDING:
            tracked.status = OrderStatus.OPEN
            self._emit(OrderUpdate(order.client_order_id, OrderStatus.OPEN, now, "", venue_id))
        if filled > tracked.filled + _EPS:
            tracked.filled = filled
        if not status.is_final:
            if tracked.seen > tracked.reported + _EPS and tracked.seen >= filled - _EPS:
                tracked.reported = tracked.seen
                tracked.status = OrderStatus.PARTIALLY_FILLED
                self._emit(
                    OrderUpdate(
                        order.client_order_id,
                        OrderStatus.PARTIALLY_FILLED,
                        now,
                        "",
                        venue_id,
                        filled_quantity=tracked.held,
                    )
                )
            return
        if tracked.seen < tracked.filled - _EPS:
            return  # its fills first: the poller fetches the trades, then reports the end
        if status is OrderStatus.CANCELLED and code is ReasonCode.CANCELLED_BY_USER:
            code = tracked.cancel_code or ReasonCode.CANCELLED_BY_VENUE
        elif status is OrderStatus.CANCELLED and tracked.list_id and code is ReasonCode.EXPIRED:
            # Its list's other leg filled or triggered: the venue's one-cancels-other.
            code = tracked.cancel_code or ReasonCode.CANCELLED_BY_VENUE
        self._final(
            tracked,
            status,
            _reason(status, code),
            code if status is not OrderStatus.FILLED else ReasonCode.NONE,
        )

    def _venue_filled(self, tracked: _Tracked, raw: dict[str, Any]) -> float:
        """What of ``tracked`` the venue's answer ``raw`` says is filled, as far as it can be.

        An executed quantity above what the order asked for (or not a number) cannot be: taken
        as it reads, the order would wait for ever for fills beyond its size (``_apply`` ends
        an order after its fills), working in the bot's book and blocking its next signals.
        Such an answer that says the order filled counts as all of it filled — its fills still
        come from the venue's trades, so the bot books what executed — and one that says it
        still works tells nothing new of its fills (the next poll asks again). Said once an
        order, naming the venue, the order and the field."""
        value = raw.get("filled")
        try:
            filled = float(value or 0.0)
        except (TypeError, ValueError):
            filled = float("nan")
        if math.isfinite(filled) and filled >= 0.0:
            # ``raw`` is the working copy's row: what earlier copies executed comes first.
            filled += tracked.prior
        ordered = self._ordered(tracked)
        if math.isfinite(filled) and filled <= ordered * (1 + 1e-9) + _EPS:
            return max(filled, 0.0)
        client_order_id = tracked.order.client_order_id
        if client_order_id not in self._overfilled_said:
            self._overfilled_said.add(client_order_id)
            log.warning(
                "ccxt broker: %s answered for %s a filled quantity of %r, above the %g it "
                "ordered; not taken (its fills come from the venue's trades)",
                self.params.exchange,
                client_order_id,
                value,
                ordered,
            )
        status, _ = status_of(ccxt_status(raw), 0.0)
        return ordered if status is OrderStatus.FILLED else tracked.filled

    def _ordered(self, tracked: _Tracked) -> float:
        """The quantity ``tracked`` went to the venue with: the order's, on the venue's lot
        step (ccxt truncates it so when it is sent)."""
        quantity = tracked.order.quantity
        if tracked.amending is not None:
            # A resize on its way the venue may hold already (the poller reads the order
            # meanwhile): its fills may reach the larger size.
            quantity = max(quantity, tracked.amending.quantity)
        try:
            sent = float(self._ex().amount_to_precision(tracked.market, quantity))
        except Exception:  # ccxt raises for an amount below its precision: the order's own
            return quantity
        return sent if 0.0 < sent <= quantity else quantity

    def _final(self, tracked: _Tracked, status: OrderStatus, reason: str, code: ReasonCode) -> None:
        if tracked.final_sent:
            return
        tracked.final_sent = True
        tracked.status = status
        order = tracked.order
        self._cancels_asked.discard(order.client_order_id)
        self._cuts.pop(order.client_order_id, None)  # an ended child is sized no more
        if order.tag == TAKE_PROFIT_TAG and status is not OrderStatus.FILLED:
            self._unlifted(tracked, status)
        self._emit(
            OrderUpdate(
                order.client_order_id,
                status,
                int(time.time()),
                reason,
                tracked.venue_id,
                code,
                tracked.held_filled if tracked.filled else None,
            )
        )
        if tracked.filled > _EPS:
            self._protect(tracked, tracked.held_filled)
        if (
            tracked.filled > _EPS
            and order.oco_group is not None
            and not (
                status is not OrderStatus.FILLED
                and order.tag == TAKE_PROFIT_TAG
                and not self.closes_from_balance(order.symbol)
            )
        ):
            # One-cancels-other once a child filled. A take-profit that ended with a part (a
            # market order meeting a thin book, the venue expiring the rest) left a position
            # its stop-loss still protects: the engine cuts that to what is held
            # (``Engine._cap_children``) — cancelled, the rest ran with no stop. On spot the
            # venue's OCO list ends the other leg at a leg's first part.
            self._spawn(self._cancel_siblings(order))

    def _spawn(self, coro: Any) -> None:
        asyncio.get_running_loop().create_task(coro)

    def _protect(self, entry: _Tracked, quantity: float) -> None:
        """Have a bracket entry's children cover ``quantity`` (what of it filled): placed at
        its first fill, resized as it fills, so no filled part waits unprotected for the rest
        (a limit entry can rest part-filled for hours)."""
        order = entry.order
        if order.stop_loss is None and order.take_profit is None:
            return
        if quantity <= entry.protected + _EPS:
            return
        entry.protect_to = max(entry.protect_to, quantity)
        if not entry.protecting:
            entry.protecting = True
            self._spawn(self._keep_protected(entry))

    async def _cut(self, client_order_id: str, quantity: float, cut: float) -> None:
        """``cut_child`` on the I/O thread: the cut counted, then the children of its entry
        sized again by the one task that sizes them (``_keep_protected``), so a fill of the
        entry on its way meanwhile cannot grow the child back over the cut — nor a cut told
        while that task still places the children (a create in flight, the next child not
        sent yet) be answered as if the venue had no such child: the task places it cut, or
        cuts it once placed."""
        self._cuts[client_order_id] = self._cuts.get(client_order_id, 0.0) + cut
        entry = self._entry_of(client_order_id)
        if entry is None or not _sized_by_entry(entry.protecting, entry.protect_to):
            # No entry this object follows (it ended before a restart, its children placed):
            # none of its fills is to come, and the engine's count is the child's.
            await self._amend(client_order_id, quantity, None)
            return
        entry.recut = True
        if not entry.protecting:
            entry.protecting = True
            await self._keep_protected(entry)

    def _entry_of(self, child_id: str) -> _Tracked | None:
        """The bracket entry of child ``child_id`` this object follows, or whose children it
        is placing now (``_sizing``); None for any other order."""
        found = bracket_role(child_id)
        if found is None:
            return None
        return self._tracked.get(found[0]) or self._sizing.get(found[0])

    def _sized_each(self, children: Sequence[Order]) -> Iterator[Order]:
        """``_sized``, one child at a time as the cuts stand when it is reached: a cut told
        while an earlier child's create was on its way goes into this one's create."""
        for child in children:
            yield from self._sized([child])

    def _sized(self, children: Sequence[Order]) -> list[Order]:
        """``children`` (sized on what their entry filled) less what the engine cut from
        each (``_cuts``), on the lot step; a child cut to nothing is left out (the engine
        cancels it)."""
        sized = []
        for child in children:
            cut = self._cuts.get(child.client_order_id, 0.0)
            if cut <= 0.0:
                sized.append(child)
                continue
            quantity = _on_step(child.quantity - cut, self._instruments[child.symbol].lot_step)
            if quantity > _EPS:
                sized.append(child._replace(quantity=quantity))
        return sized

    async def _keep_protected(self, entry: _Tracked) -> None:
        """Bring the children to what the entry filled less what the engine cut from each,
        one step after another (fills that arrive meanwhile, and cuts, make one more step). A
        first part below the venue's minimum waits for more of the entry (the next fill, or
        its end, tries again)."""
        entry_id = entry.order.client_order_id
        self._sizing[entry_id] = entry
        try:
            while entry.protected < entry.protect_to - _EPS or entry.recut:
                answer, entry.recut = entry.recut, False
                # A join an earlier pass left in flight (``_join_lone``: its lone child's state
                # unknown) is settled first, for what it was to cover; nothing of the bracket
                # is decided before it (the lone child may have filled meanwhile).
                due = self._joins_due.get(entry_id)
                # Fills summed in floats (0.001 + 0.009 = 0.009999999999999998) would be
                # truncated to the lot step below what the position holds: on the grid first.
                want = (
                    due.want
                    if due is not None
                    else _on_step(entry.protect_to, self._instruments[entry.order.symbol].lot_step)
                )
                done = entry.final_sent
                whole = bracket_children(entry.order, want, int(time.time()))
                children = self._sized(whole)
                if due is None and any(self._filled(child.client_order_id) for child in children):
                    # One child filled: the bracket's trade is over; nothing is placed or grown
                    # for it again. One filled in part leaves its sibling working for what is
                    # held: a cut the engine asks for it (``Engine._cap_children``) still
                    # brings the one at the venue down.
                    if answer:
                        for child in children:
                            tracked = self._tracked.get(child.client_order_id)
                            if (
                                child.client_order_id in self._cuts
                                and tracked is not None
                                and not tracked.final_sent
                            ):
                                await self._cover(child, True, answer)
                    return
                covered = True
                if self._pair_waits(children, done):
                    self._say_pair_waits(entry.order, children)
                    if answer:
                        for child in children:
                            self._cut_taken(child.client_order_id)
                    return  # neither goes alone: both, as one list, once both fit
                joined = await self._join_lone(entry, want, children, done)
                if joined in (_Join.ENDED, _Join.DUE):
                    # The lone child's fill won (its pair's other part said ended), or the
                    # venue could not say what became of it: the next poll tries again.
                    return
                unpaired = self._stop_unsendable(children, done)
                listed = joined is _Join.LISTED
                pair = None if listed else self._new_pair(children, done)
                if pair is not None and await self._place_pair(*pair):
                    self._say_pair_goes(entry.order, pair[0].quantity)
                elif not listed:
                    for child in self._sized_each(whole):
                        if self._stop_refused_on_spot(child):
                            # The bot closes the position at market: on spot a resting
                            # take-profit would hold the coin that close has to sell.
                            self._withhold(child.client_order_id, ReasonCode.CANCELLED_BY_VENUE)
                            continue
                        if unpaired and child.tag == TAKE_PROFIT_TAG:
                            # Its stop-loss is refused before it is sent: alone, the target
                            # would hold the coin the bot's close at market has to sell.
                            self._withhold(
                                child.client_order_id,
                                ReasonCode.CANCELLED_BY_VENUE,
                                "not placed: its stop-loss is below the venue's minimum, and "
                                "on Binance spot the two go only together (one OCO list); the "
                                "position is closed at market",
                            )
                            continue
                        covered = await self._cover(child, done, answer) and covered
                self._pair_wait_said.discard(entry.order.client_order_id)
                if not covered:
                    return
                entry.protected = want
        finally:
            # A join in flight keeps the entry's children to the poll that tries it again.
            entry.protecting = entry_id in self._joins_due
            if self._sizing.get(entry_id) is entry:
                del self._sizing[entry_id]

    def _stop_refused_on_spot(self, child: Order) -> bool:
        """Whether ``child`` is a spot bracket's take-profit whose stop-loss the venue refused
        (not placed yet: a take-profit already working is the venue's to settle)."""
        if not self._dialect.spot or child.tag != TAKE_PROFIT_TAG:
            return False
        if child.client_order_id in self._tracked:
            return False
        if child.parent_id is None:
            return False
        stop = self._tracked.get(child_order_id(child.parent_id, "sl"))
        return stop is not None and stop.final_sent and stop.status is OrderStatus.REJECTED

    def children_placed_together(self, symbol: str, side: Side) -> bool:
        """``PairedChildren``: whether a bracket's children of ``symbol`` on ``side`` go only
        as one order — Binance spot's sells, one OCO list (``_pair_waits``); ``symbol`` is
        the same everywhere on a venue."""
        return self._dialect is Dialect.BINANCE_SPOT and side is Side.SELL

    def _pair_waits(self, children: Sequence[Order], entry_done: bool) -> bool:
        """Whether a Binance spot bracket's stop-loss and take-profit, neither placed yet,
        wait together while their entry works because one of them is below the venue's
        minimums (``_waits``): the one that fits is not placed alone. Two sells would each
        hold the coin and the venue refuse the second — the stop, were the target first —,
        and the pair goes as one OCO list once both fit (``_new_pair``). The engine's book
        makes them by the same rule (``Engine._child_placeable``)."""
        if entry_done or len(children) != 2:
            return False
        if not self.children_placed_together(children[0].symbol, children[0].side):
            return False
        if {child.tag for child in children} != {STOP_LOSS_TAG, TAKE_PROFIT_TAG}:
            return False
        with self._known_lock:
            if any(child.client_order_id in self._known for child in children):
                return False  # one was placed (or withheld) already: followed one by one
        return any(self._waits(child) for child in children)

    def _new_pair(
        self, children: Sequence[Order], entry_done: bool
    ) -> tuple[Order, Order, CreateArgs, CreateArgs] | None:
        """A bracket's stop-loss and take-profit to place as one order list (Binance spot, a
        sell pair, neither sent before nor refused here nor waiting for more of a working
        entry, ``_waits``): (stop, target, their arguments)."""
        if self._dialect is not Dialect.BINANCE_SPOT or len(children) != 2:
            return None
        if not entry_done and any(self._waits(child) for child in children):
            return None  # each waits in ``_cover``, as the engine's book does
        stop, target = children
        if stop.tag != STOP_LOSS_TAG or target.tag != TAKE_PROFIT_TAG:
            return None
        with self._known_lock:
            if any(c.client_order_id in self._known for c in children):
                return None  # sent before (or withheld): followed one by one
        stop_args, target_args = self._args(stop), self._args(target)
        if isinstance(stop_args, Refusal) or isinstance(target_args, Refusal):
            return None  # refused as each alone would be
        return stop, target, stop_args, target_args

    def _stop_unsendable(self, children: Sequence[Order], entry_done: bool) -> bool:
        """Whether a Binance spot bracket's stop-loss and take-profit, neither sent yet, would
        go with the stop refused before it leaves (below the venue's minimum once its entry
        ended: a part filled, then cancelled) and the target alone. The pair rule holds: the
        target is not placed either — alone it would hold the coin, and the bot's close at
        market (the refused stop's) could not sell it."""
        if not entry_done or not self._pair_of(children):
            return False
        with self._known_lock:
            if any(child.client_order_id in self._known for child in children):
                return False
        return isinstance(self._args(children[0]), Refusal)

    def _pair_of(self, children: Sequence[Order]) -> bool:
        """Whether ``children`` are a bracket's stop-loss and take-profit (in that order) that
        go only together at this venue (``children_placed_together``)."""
        if len(children) != 2:
            return False
        stop, target = children
        if stop.tag != STOP_LOSS_TAG or target.tag != TAKE_PROFIT_TAG:
            return False
        return self.children_placed_together(stop.symbol, stop.side)

    def _say_pair_waits(self, entry: Order, children: Sequence[Order]) -> None:
        """Say once per wait that a child which fits is held while its pair waits
        (``_pair_waits``), naming the symbol, the part held and why: the position runs without
        it meanwhile, which the user would otherwise not see (the bot books neither)."""
        entry_id = entry.client_order_id
        problems = {child.client_order_id: self._wait_problem(child) for child in children}
        held = [child for child in children if problems[child.client_order_id] is None]
        if not held or entry_id in self._pair_wait_said:
            return  # both below the minimum: the ordinary wait for more of the entry
        self._pair_wait_said.add(entry_id)
        [part] = held
        [short] = [child for child in children if child is not part]
        log.warning(
            "ccxt broker: %s: the %s of %s (%g at %g) is held, not placed: its %s is below the "
            "venue's minimum (%s), and on Binance spot the two go only together, as one OCO "
            "list. The %g held so far has neither at the venue; both go when more of the entry "
            "fills",
            part.symbol,
            _role_name(part),
            entry_id,
            part.quantity,
            part.price or 0.0,
            _role_name(short),
            problems[short.client_order_id],
            part.quantity,
        )

    def _say_pair_goes(self, entry: Order, quantity: float) -> None:
        """The pair ``_say_pair_waits`` said held goes now, as one OCO list: said once."""
        entry_id = entry.client_order_id
        if entry_id not in self._pair_wait_said:
            return
        self._pair_wait_said.discard(entry_id)
        log.info(
            "ccxt broker: %s: the stop-loss and take-profit of %s go now as one OCO list "
            "(%g), no longer held",
            entry.symbol,
            entry_id,
            quantity,
        )

    async def _join_lone(
        self, entry: _Tracked, want: float, children: Sequence[Order], entry_done: bool
    ) -> _Join:
        """A Binance spot bracket child resting alone at the venue (placed by an earlier run,
        one order at a time) while its pair's other part was never sent, both fitting now:
        replaced by the OCO list of the two. The lone child holds the coin, so the list can
        only go once it is cancelled; the list is placed right after, the lone child under a
        derived id (``<id>-a<n>``: an id is placed once), the other under its own.

        What the venue's row of the lone child says after the cancel decides
        (``_lone_cancel_outcome``, ``_join_step``): cancelled, the list goes; filled or
        triggered (in whole or part), the fill wins (``_fill_won``); still working, the other
        part goes alone as before the lists (``_Join.NONE``: the venue takes it or refuses it,
        and the bot hears which); unread, both are held as they are and the next poll tries
        again (``_Join.DUE``), the other part not placed meanwhile — alone it could sell for a
        position the lone child's fill closed (a spot account may hold more of the coin)."""
        entry_id = entry.order.client_order_id
        join = self._joins_due.pop(entry_id, None)
        if join is None:
            join = await self._new_join(entry, want, children, entry_done)
            if join is None:
                return _Join.NONE
        outcome = await self._join_step(join)
        if outcome is _Join.DUE:
            self._joins_due[entry_id] = join
        elif join.said:
            log.info(
                "ccxt broker: the venue answers again for %s: its pair with %s is settled (%s)",
                join.lone.order.client_order_id,
                join.paired.order.client_order_id,
                {
                    _Join.LISTED: "placed as one OCO list",
                    _Join.ENDED: "it filled first; no list",
                    _Join.NONE: "placed one by one",
                }[outcome],
            )
        return outcome

    async def _new_join(
        self, entry: _Tracked, want: float, children: Sequence[Order], entry_done: bool
    ) -> _LoneJoin | None:
        """``_join_lone``'s join, begun: the other part known and followed from now (sending),
        so that a cancel the bot asks meanwhile waits for the join; None when there is nothing
        to join (``_lone_leg``), or the list would be refused as each alone would be."""
        found = await self._lone_leg(children, entry_done)
        if found is None:
            return None
        lone, other = found
        lone_id, other_id = lone.order.client_order_id, other.client_order_id
        wanted = next(c for c in children if c.client_order_id == lone_id)
        # The lone child keeps its price as the venue holds it (a stop moved since): resized
        # to what the pair is to cover now.
        orders = {lone_id: lone.order._replace(quantity=wanted.quantity), other_id: other}
        stop, target = (orders[child.client_order_id] for child in children)
        stop_args, target_args = self._args(stop), self._args(target)
        if isinstance(stop_args, Refusal) or isinstance(target_args, Refusal):
            return None  # refused as each alone would be
        cids = {
            lone_id: venue_replacement_id(lone_id, lone.replaced + 1),
            other_id: self._vcid(other_id),
        }
        params = self._list_params(
            stop_args, target_args, cids[stop.client_order_id], cids[target.client_order_id]
        )
        if params is None:
            return None
        paired = _Tracked(other, stop_args.symbol, venue_cid=cids[other_id])
        with self._known_lock:
            if other_id in self._known:
                return None
            self._known.add(other_id)
        self._tracked[other_id] = paired
        return _LoneJoin(entry, want, lone, paired, orders[lone_id], cids[lone_id], params)

    async def _join_step(self, join: _LoneJoin) -> _Join:
        """One try of ``_join_lone``: cancel the lone child, then act on what the venue's row
        of it says. Until it ends the lone child's cancel is not its end for the poller; an
        unread one (``_Join.DUE``) stays so — both parts left to the next try, followed by
        nothing else meanwhile (a cancel or amend the bot asks waits) — so that try starts
        from the same state."""
        lone, paired = join.lone, join.paired
        lone_id, other_id = lone.order.client_order_id, paired.order.client_order_id
        outcome = _Join.NONE
        # The lone copy's cancel is not the child's end (the poller leaves it to this).
        self._amending(lone, join.lone_order, True)
        try:
            ended, row, problem = await self._cancel_lone(lone)
            if ended is _LoneCancel.UNREAD:
                outcome = _Join.DUE
                if not join.said:
                    join.said = True
                    log.warning(
                        "ccxt broker: %s works alone at the venue; its cancel, to place it with "
                        "%s as one OCO list, went unanswered and its state cannot be read (%s). "
                        "%s is not placed meanwhile (alone it could sell for a position %s may "
                        "have closed); tried again at each poll",
                        lone_id,
                        other_id,
                        problem,
                        other_id,
                        lone_id,
                    )
                return outcome
            if ended is _LoneCancel.KEPT:
                log.warning(
                    "ccxt broker: %s works alone at the venue and was not cancelled to go with "
                    "its pair as one OCO list (%s); %s is placed alone instead, as before the "
                    "lists (the venue takes it, or refuses it for the coin %s holds)",
                    lone_id,
                    problem,
                    other_id,
                    lone_id,
                )
                self._forget(paired)
                return outcome
            # Fills before the cancel stay the lone copy's (its venue id still maps to it). A
            # failed read leaves them to the poller; the row says whether any came.
            with contextlib.suppress(VenueFailure):
                await self._poll_trades(lone.market, lone.trades_from_ms)
            if ended is _LoneCancel.FILLED or max(lone.filled, lone.seen) > _EPS:
                outcome = _Join.ENDED
                await self._fill_won(join, row)
                return outcome
            lone.order = join.lone_order
            lone.venue_cid = join.lone_cid
            lone.replaced += 1
            lone.prior = lone.filled
            lone.venue_id = None
            legs = [lone, paired] if lone.order.tag == STOP_LOSS_TAG else [paired, lone]
            refused = await self._send_list(legs, join.params)
            if refused is None:
                outcome = _Join.LISTED
                log.info(
                    "ccxt broker: %s rested alone at the venue (its pair's other part never "
                    "went): cancelled and placed again with %s as one OCO list, the coin held "
                    "once for both",
                    lone_id,
                    other_id,
                )
                if lone.status is not OrderStatus.PENDING:  # in doubt: the poller looks it up
                    held = lone.list_price
                    if held is not None and math.isfinite(held) and held > 0.0:
                        lone.order = lone.order._replace(price=held)
                    self._emit(
                        OrderUpdate(
                            lone_id,
                            OrderStatus.OPEN,
                            int(time.time()),
                            "amended",
                            lone.venue_id,
                            price=held,
                        )
                    )
                return outcome
            await self._unjoined(lone, paired, refused)
            return outcome
        finally:
            if outcome is _Join.DUE:
                # Neither is read by the poller (sending, no amend): the next try starts here.
                lone.amending = None
                lone.replacing = False
            else:
                self._amended(lone)
                paired.sending = False
            self._wake_poller()

    async def _fill_won(self, join: _LoneJoin, row: dict[str, Any] | None) -> None:
        """The lone child filled or triggered, in whole or in part, before its cancel landed:
        the fill wins, no list is placed. Its pair's other part, never sent, is said ended
        (cancelled by the venue: one cancels the other, as in the list), after the fills
        (read just before). A part the cancel took off goes back alone under the next derived
        id (``_lone_rest``): a stop-loss keeps protecting what is left of the position."""
        lone, paired = join.lone, join.paired
        lone_id, other_id = lone.order.client_order_id, paired.order.client_order_id
        self._forget(paired)
        executed = max(lone.filled, self._venue_filled(lone, row) if row is not None else 0.0)
        lone.filled = executed
        self._withhold(
            other_id,
            ReasonCode.CANCELLED_BY_VENUE,
            f"not placed: {lone_id}, which rested alone at the venue, filled first "
            f"({executed:.10g}); one cancels the other",
        )
        status = status_of(ccxt_status(row), executed)[0] if row is not None else None
        if status is not OrderStatus.CANCELLED:
            return  # it works on for the rest, or is over: the poller reports it
        await self._lone_rest(join, executed)

    async def _lone_rest(self, join: _LoneJoin, executed: float) -> None:
        """What ``_join_lone``'s cancel took off a lone child that had filled ``executed``
        before it landed, placed back alone (the coin is free: nothing else holds it) under
        the next derived id, as a cancel-replace's new copy. Refused before it is sent (below
        the venue's minimum), the child ends REJECTED — for a stop-loss the bot then closes
        the rest at market —; refused by the venue, likewise (``_create``)."""
        lone = join.lone
        lone_id = lone.order.client_order_id
        changed = join.lone_order
        step = self._instruments[changed.symbol].lot_step
        rest = replacement_quantity(changed.quantity, executed, step)
        if rest <= _EPS:
            return  # nothing left: the poller reports its fills and its end
        if lone.seen < executed - _EPS:
            # Its fills not read yet: told before anything else (the bot would size a close
            # of the rest on a position that still counts them); the poller reports them and
            # the end, said cancelled.
            log.warning(
                "ccxt broker: %s filled %g before its cancel (to go with its pair as one OCO "
                "list) landed, and its trades could not be read: the %g left is not placed "
                "again",
                lone_id,
                executed,
                rest,
            )
            return
        venue_cid = venue_replacement_id(lone_id, lone.replaced + 1)
        args = self._args(changed._replace(client_order_id=venue_cid, quantity=rest))
        log.warning(
            "ccxt broker: %s filled %g of %g at the venue before its cancel (to go with its "
            "pair as one OCO list) landed: the fill wins, no list; the %g left goes back alone "
            "as %s",
            lone_id,
            executed,
            changed.quantity,
            rest,
            venue_cid,
        )
        if isinstance(args, Refusal):
            self._final(
                lone,
                OrderStatus.REJECTED,
                f"the {rest:.10g} left after {executed:.10g} filled was not placed again: "
                f"{args.reason}",
                args.code,
            )
            return
        lone.order = changed
        lone.venue_cid = venue_cid
        lone.replaced += 1
        lone.prior = executed
        lone.venue_id = None
        await self._create(lone, args)

    async def _join_again(self) -> None:
        """Each poll: the joins whose lone child's state the venue could not say
        (``_Join.DUE``) tried again, each with its entry's protection."""
        for join in list(self._joins_due.values()):
            await self._keep_protected(join.entry)

    async def _lone_leg(
        self, children: Sequence[Order], entry_done: bool
    ) -> tuple[_Tracked, Order] | None:
        """``_join_lone``'s pair: (the child working alone at the venue, its pair's other part
        never sent), when both fit now; None otherwise."""
        if self._dialect is not Dialect.BINANCE_SPOT or not self._pair_of(children):
            return None
        if not entry_done and any(self._waits(child) for child in children):
            return None  # the pair waits for more of the entry
        with self._known_lock:
            known = [c for c in children if c.client_order_id in self._known]
            if len(known) != 1 or known[0].client_order_id in self._withheld:
                return None
        [lone_order] = known
        if lone_order.tag != TAKE_PROFIT_TAG:
            # A working stop-loss is never cancelled for its take-profit: between the cancel
            # and the list the position would have no stop, and a restart in that window finds
            # the stop cancelled (as a person's cancel is) and sends the target alone. The
            # target goes one by one, refused for the coin the stop holds; the stop protects.
            return None
        [other] = [child for child in children if child is not lone_order]
        lone = self._tracked.get(lone_order.client_order_id)
        if lone is None:
            lone = await self._adopt(lone_order.client_order_id)
        if lone is None:
            return None
        while lone.sending:
            await asyncio.sleep(0.01)
        if (
            lone.final_sent
            or lone.list_id
            or lone.watched
            or lone.lifted
            or lone.status is OrderStatus.PENDING
            or lone.filled > _EPS
        ):
            return None
        return lone, other

    async def _cancel_lone(self, lone: _Tracked) -> tuple[_LoneCancel, dict[str, Any] | None, str]:
        """Cancel a lone child for its list: what the venue's row of it says then
        (``_lone_cancel_outcome``), the row (the cancel's answer, or looked up when the cancel
        failed: it filled or triggered meanwhile, the venue kept it, or the cancel landed and
        its answer was lost), and the failure, said in the log."""
        venue = self._venue
        assert venue is not None
        params: dict[str, Any] = {}
        if not lone.venue_id:
            params.update(_client_id_params(self._dialect, lone.venue_cid, False))
        problem = ""
        row: dict[str, Any] | None
        try:
            answer = await venue.request("cancel_order", lone.venue_id or "", lone.market, params)
        except VenueFailure as error:
            problem = error.failure.message
            try:
                row = await self._lookup(lone.venue_cid, lone.market)
            except VenueFailure as lookup:
                row = None
                problem = f"{problem}; its look-up: {lookup.failure.message}"
        else:
            # Cancelled: its answer says what of it had executed by then.
            row = dict(answer) if isinstance(answer, Mapping) else {}
            row["status"] = row.get("status") or "canceled"
        status = None if row is None else status_of(ccxt_status(row), 0.0)[0]
        filled = max(lone.filled, lone.seen)
        if row is not None:
            filled = max(filled, self._venue_filled(lone, row))
        return _lone_cancel_outcome(status, filled), row, problem

    def _forget(self, paired: _Tracked) -> None:
        """``_join_lone``'s other child did not go: never placed, it is neither followed nor
        known (placed later one by one, or withheld by a cancel that waited for it)."""
        self._tracked.pop(paired.order.client_order_id, None)
        with self._known_lock:
            self._known.discard(paired.order.client_order_id)

    async def _unjoined(self, lone: _Tracked, paired: _Tracked, refused: Failure) -> None:
        """The venue refused the list ``_join_lone`` cancelled ``lone`` (a take-profit: a
        stop-loss is never cancelled for a list, ``_lone_leg``) for: nothing of it is at the
        venue. It ends refused, and the stop-loss goes alone at once under its own id, as after
        any refused list, once ``_join_lone`` returns."""
        self._forget(paired)
        log.warning(
            "ccxt broker: the venue refused %s and %s as one order list (%s) after %s's "
            "lone copy was cancelled; the stop-loss is placed alone",
            paired.order.client_order_id,
            lone.order.client_order_id,
            refused.message,
            lone.order.client_order_id,
        )
        self._final(
            lone,
            OrderStatus.REJECTED,
            "placed again with its stop-loss as one order list, which the venue refused "
            f"after its lone copy was cancelled: {refused.message}",
            refused.code,
        )

    def _list_params(
        self, stop: CreateArgs, target: CreateArgs, stop_cid: str, target_cid: str
    ) -> dict[str, str] | None:
        """``ccxt_orders.oco_params`` with the venue's own strings for quantity and prices."""
        exchange = self._ex()
        market = stop.symbol
        stop_price = stop.params.get("stopLossPrice")
        if target.price is None or stop_price is None:
            return None
        return oco_params(
            str(exchange.market(market)["id"]),
            stop.side,
            exchange.amount_to_precision(market, stop.amount),
            (stop_cid, exchange.price_to_precision(market, stop_price)),
            (target_cid, exchange.price_to_precision(market, target.price)),
        )

    async def _place_pair(
        self, stop: Order, target: Order, stop_args: CreateArgs, target_args: CreateArgs
    ) -> bool:
        """Place a bracket's two children as one OCO list: True when it is at the venue (or
        in doubt, looked up by the poller); False when the venue refused it, nothing placed,
        so the caller places them one by one as before."""
        params = self._list_params(
            stop_args,
            target_args,
            self._vcid(stop.client_order_id),
            self._vcid(target.client_order_id),
        )
        if params is None:
            return False
        ids = (stop.client_order_id, target.client_order_id)
        with self._known_lock:
            if any(i in self._known for i in ids):
                return False
            self._known.update(ids)
        legs = [
            _Tracked(order, args.symbol, venue_cid=self._vcid(order.client_order_id))
            for order, args in ((stop, stop_args), (target, target_args))
        ]
        for leg in legs:
            self._tracked[leg.order.client_order_id] = leg
        try:
            refused = await self._send_list(legs, params)
            if refused is not None:
                # Nothing at the venue: the ids were never placed, so the children go one by
                # one under them.
                log.warning(
                    "ccxt broker: the venue refused %s and %s as one order list (%s); placing "
                    "them one by one",
                    *ids,
                    refused.message,
                )
                for leg in legs:
                    self._tracked.pop(leg.order.client_order_id, None)
                with self._known_lock:
                    self._known.difference_update(ids)
            return refused is None
        finally:
            for leg in legs:
                leg.sending = False
            self._wake_poller()

    async def _send_list(self, legs: list[_Tracked], params: dict[str, str]) -> Failure | None:
        """Send one OCO list for ``legs`` (its stop, its target): None once the venue has it
        (the legs then follow its answer) or may have it (in doubt: the poller looks the legs
        up by their client ids, never resending); the venue's refusal otherwise."""
        venue = self._venue
        assert venue is not None
        for leg in legs:
            leg.list_price = None  # an earlier list's answer says nothing of this one
        attempt = 0
        while True:
            try:
                raw = await venue.once("private_post_orderlist_oco", params)
            except VenueFailure as error:
                failure = error.failure
                if failure.duplicate or failure.retry is Retry.IN_DOUBT:
                    try:
                        found = await self._lookup(legs[0].venue_cid, legs[0].market)
                    except VenueFailure as lookup:
                        for leg in legs:
                            await self._in_doubt(leg, lookup.failure.message)
                        return None
                    if found is not None:
                        for leg in legs:
                            row = found if leg is legs[0] else await self._lookup_quietly(leg)
                            if row is not None:
                                leg.list_price = _held_price(row, self._triggered(leg.order))
                                self._take_leg(leg, row)
                            else:
                                await self._in_doubt(leg, "its list's other leg was found")
                        return None
                if not await venue.recover(failure, attempt):
                    if failure.retry is Retry.IN_DOUBT:
                        for leg in legs:
                            await self._in_doubt(leg, failure.message)
                        return None
                    return failure
                attempt += 1
                continue
            list_id = str(raw.get("orderListId", ""))
            by_cid = {str(o.get("clientOrderId")): o for o in raw.get("orders") or []}
            reports = {str(o.get("clientOrderId")): o for o in raw.get("orderReports") or []}
            for leg in legs:
                answer = by_cid.get(leg.venue_cid) or {}
                row = {"id": str(answer.get("orderId") or ""), "filled": 0.0, "status": "open"}
                leg.list_id = list_id
                report = reports.get(leg.venue_cid) or {}
                leg.list_price = _held_price(report, self._triggered(leg.order))
                self._apply(leg, row)
            return None

    def _take_leg(self, leg: _Tracked, row: dict[str, Any]) -> None:
        """A leg found at the venue by its client id: its list, then what the venue says."""
        leg.list_id = _list_id(row)
        self._apply(leg, row)

    def _filled(self, client_order_id: str) -> bool:
        """Whether any of this order filled (as far as this broker saw)."""
        tracked = self._tracked.get(client_order_id)
        return tracked is not None and tracked.filled > _EPS

    async def _cover(self, child: Order, entry_done: bool, answer: bool = False) -> bool:
        """Place ``child``, or bring the one at the venue to its quantity; False when it is
        below the venue's minimum while its entry still works (it waits for more of it).
        A child that ended (its sibling filled, a person cancelled it) is not placed again:
        an id is sent once. ``answer``: a cut is being answered — a child already at its
        quantity is said "amended" all the same (the engine waits for the answer)."""
        child_id = child.client_order_id
        if child_id in self._withheld:
            return True
        tracked = self._tracked.get(child_id)
        if tracked is None:
            if not entry_done and child_id not in self._known and self._waits(child):
                if answer:
                    self._cut_taken(child_id)
                return False
            args = self._args(child)
            with self._known_lock:
                known = child_id in self._known
                self._known.add(child_id)
            if known:
                # Sent before (by an earlier run, or by the bot after a restart): follow it.
                tracked = await self._adopt(child_id)
                if tracked is None:
                    log.warning(
                        "ccxt broker: %s was sent before and is not working at the venue; "
                        "not sent again",
                        child_id,
                    )
                    return True
            elif isinstance(args, Refusal):
                # The whole entry's stop refused: said as the venue's refusal would be (the bot
                # then closes the position at market).
                self._emit(
                    OrderUpdate(
                        child_id,
                        OrderStatus.REJECTED,
                        int(time.time()),
                        args.reason,
                        code=args.code,
                    )
                )
                return True
            else:
                await self._place(child, args)
                return True
        while tracked.sending:
            await asyncio.sleep(0.01)
        if not tracked.final_sent and abs(tracked.order.quantity - child.quantity) > _EPS:
            await self._amend(child_id, child.quantity, None)
        elif answer and not tracked.final_sent:
            self._emit(OrderUpdate(child_id, OrderStatus.OPEN, int(time.time()), "amended"))
        return True

    def _cut_taken(self, child_id: str) -> None:
        """A cut of bracket child ``child_id``, held back for more of its entry (below the
        venue's minimum), is taken: the child waits at its new size and is placed at it once
        it fits. Said as a resize is ("amended"): the engine waits for an answer to each cut,
        and the child's next update (its placing, much later) is not that answer."""
        self._emit(OrderUpdate(child_id, OrderStatus.OPEN, int(time.time()), "amended"))

    def _waits(self, child: Order) -> bool:
        """Whether ``child``, not placed yet, is too small for the venue (its minimum quantity,
        or its minimum notional where a reduce-only order is held to it): while its entry
        works it waits for more of it. The engine's book makes a child by the same rule
        (``Engine._child_placeable``: ``limit_problem`` on the lot step), so no child works at
        the venue that the bot does not book — its stop, its cut, its fill — nor the other
        way round."""
        return self._wait_problem(child) is not None

    def _wait_problem(self, child: Order) -> str | None:
        """Why ``child`` waits (``_waits``), naming the venue's limit; None when it fits."""
        instrument = self._instruments[child.symbol]
        quantity = round_quantity(child.quantity, instrument.lot_step)
        exempt = child.reduce_only and self._dialect.reduce_only_below_min_notional
        problem = limit_problem(instrument, quantity, child.price, exempt)
        return None if problem is None else problem[1]

    def follow_bracket(self, order: Order) -> None:
        """``follows-brackets``: ``order``, adopted from the venue after a restart, is a
        bracket's entry (its stop-loss and take-profit are the bot's, not the venue's): protect
        what of it filled, and what fills from now on, as for an entry this object sent."""
        self._io().spawn(self._take_bracket(order))

    def protect_filled(self, order: Order, quantity: float) -> None:
        """``follows-brackets``: ``order``, a bracket entry, ended while the bot was down with
        ``quantity`` of it held in all: bring its children to cover that, as at a fill —
        placed (on Binance spot one OCO list: a stop-loss alone would hold the coin the
        take-profit sells), or grown when an earlier run placed them for a first part."""
        self._io().spawn(self._protect_ended(order, quantity))

    async def _protect_ended(self, order: Order, quantity: float) -> None:
        market = self._markets.get(order.symbol)
        if market is None:
            for child in bracket_children(order, quantity, int(time.time())):
                await self._cover(child, True)  # refused, as any order of that symbol
            return
        # The entry itself is done: a stand-in that only carries what its children cover (the
        # poller has nothing of it to follow).
        entry = _Tracked(
            order,
            market,
            status=OrderStatus.FILLED,
            filled=quantity,
            seen=quantity,
            held=quantity,
            sending=False,
            final_sent=True,
        )
        self._protect(entry, quantity)

    async def _take_bracket(self, order: Order) -> None:
        tracked = self._tracked.get(order.client_order_id) or await self._adopt(
            order.client_order_id
        )
        if tracked is None:
            return  # ended at the venue: the bot protects what filled while it was down
        tracked.order = tracked.order._replace(
            stop_loss=order.stop_loss,
            take_profit=order.take_profit,
            tag=order.tag or tracked.order.tag,
        )
        if tracked.filled > _EPS:
            self._protect(tracked, tracked.held_filled)

    async def _cancel_siblings(self, order: Order) -> None:
        for other in list(self._tracked.values()):
            sibling = other.order
            if (
                sibling.oco_group == order.oco_group
                and sibling.client_order_id != order.client_order_id
                and not other.final_sent
            ):
                await self._cancel(sibling.client_order_id, ReasonCode.CANCELLED_BY_VENUE)

    async def _adopt(self, client_order_id: str, strict: bool = False) -> _Tracked | None:
        """Follow a working order an earlier run of the bot left at the venue (it was
        re-armed, or is cancelled or amended now): its later fills and end become events.
        A look-up that failed (its retries spent: ``CcxtVenue.request``) is logged and None;
        ``strict``: raised instead, for a caller that must not take it for "no such order"."""
        tracked = self._tracked.get(client_order_id)
        if tracked is not None:
            return tracked
        for bot_symbol, market in self._markets.items():
            try:
                row = await self._lookup(client_order_id, market)
            except VenueFailure as error:
                log.warning(
                    "ccxt broker: look-up of %s failed: %s", client_order_id, error.failure.message
                )
                if strict:
                    raise
                return None
            if row is None:
                continue
            report = self._report(row, bot_symbol)
            if report.status.is_final or client_order_id in self._tracked:
                return self._tracked.get(client_order_id)
            return await self._follow_working(report, market, row)
        return None

    async def _follow_working(
        self, report: OrderReport, market: str, row: dict[str, Any], copies: _Copies | None = None
    ) -> _Tracked:
        """``_follow``, and on spot what the account holds of what filled before."""
        tracked = self._follow(report, market, copies)
        tracked.list_id = _list_id(row)
        if not self._linear and report.filled_quantity > _EPS:
            await self._hold_adopted(tracked, row, report.symbol, copies)
        return tracked

    async def _count_from(self, told: dict[str, Decimal]) -> None:
        """Count from ``told`` (I/O thread), moved by the fills emitted that the bot has not
        applied yet (an adopted order's fill after the reconciliation read the venue): the
        bot's positions once it drains them. Nothing is emitted or drained meanwhile (the poller
        runs on this thread; the engine thread waits for this call)."""
        with self._events_lock:
            pending = [event for event in self._events if isinstance(event, Fill)]
        for fill in pending:
            tracked = self._tracked.get(fill.client_order_id)
            reduce_only = tracked is not None and tracked.order.reduce_only
            told[fill.symbol] = _counted_after(told.get(fill.symbol, Decimal(0)), fill, reduce_only)
        self._counted = told

    async def _hold_adopted(
        self,
        tracked: _Tracked,
        row: dict[str, Any],
        bot_symbol: str,
        copies: _Copies | None = None,
    ) -> None:
        """What the account holds of a spot order's fills before it was adopted: its trades'
        fees in the asset are not held (``held_quantity``), and the children of a bracket
        entry sized on the gross amount would sell more than the account has. An order a
        cancel-replace amended counts the trades of every copy (``copies``), as one order."""
        venue_id = tracked.venue_id or str(row.get("id") or "")
        created_ms = int(float(row.get("timestamp") or 0) or tracked.adopted_ms)
        venue_ids = {venue_id}
        if copies is not None:
            venue_ids |= copies.venue_ids
            created_ms = min(created_ms, copies.created_ms or created_ms)
        seen = tracked.seen
        try:
            trades = await self._well_formed(tracked.market, created_ms - _CLOCK_MARGIN_MS)
        except VenueFailure as error:
            log.warning(
                "ccxt broker: the trades of %s before this run could not be read (%s); its "
                "bracket is sized on its filled amount, fees in the asset included",
                tracked.order.client_order_id,
                error.failure.message,
            )
            return
        before = [
            # One order: a rest below the lot step carries from copy to copy, as the
            # running broker counted them (one ``_Tracked``).
            {**trade, "order": venue_id}
            for trade in trades
            if str(trade.get("order") or "") in venue_ids
            # Later ones are the poller's to report (and to count).
            and int(trade.get("timestamp") or 0) < tracked.adopted_ms
        ]
        counted = terms_by_trade(
            before,
            self._fill_rules[bot_symbol],
            position=float(self._counted.get(bot_symbol, Decimal(0))),
            closing={venue_id} if tracked.order.reduce_only else (),
        )
        for trade in before:
            terms = counted[str(trade.get("id"))]
            tracked.held += terms.quantity - float(trade.get("amount") or 0.0)
            if tracked.seen == seen:  # no later fill counted meanwhile (with no dust)
                tracked.dust = terms.dust  # the last one's (in the venue's order) carries on

    def _follow(self, report: OrderReport, market: str, copies: _Copies | None = None) -> _Tracked:
        """Track a working order of the bot's that this broker object did not send.

        An order with a bracket child's id (``<entry>-sl``/``-tp``: the bot's own ids) is
        followed as that child: its fill cancels its sibling (one-cancels-other, as for the
        children this object places), its fill's reason is the bot's tag, and a Binance USDⓈ-M
        take-profit is looked for among the conditional orders when cancelled (``_algo``).
        An order an earlier run amended by cancel-replace (``copies``; ``report`` is the whole
        order's, under the bot's id) is followed at its newest copy, as that run left it: a
        poll reads that copy and adds what the ended ones executed, a next amend replaces it.
        """
        client_order_id = report.client_order_id
        child = bracket_role(client_order_id)
        parent, tag = child if child is not None else (None, "")
        order = Order(
            client_order_id,
            report.symbol,
            report.side,
            report.quantity,
            report.order_type,
            report.price,
            reduce_only=report.reduce_only,
            parent_id=parent,
            oco_group=parent,
            tag=tag,
        )
        tracked = _Tracked(
            order,
            market,
            status=report.status,
            venue_id=report.venue_order_id,
            filled=report.filled_quantity,
            seen=report.filled_quantity,
            held=report.filled_quantity,
            reported=report.filled_quantity,
            sending=False,
            adopted_ms=int(time.time() * 1000),
            venue_cid=self._vcid(client_order_id),
        )
        if copies is not None:
            tracked.venue_cid, tracked.replaced = copies.venue_cid, copies.replaced
            tracked.prior = copies.prior
            for venue_id in copies.venue_ids:  # their trades are the order's too
                self._by_venue_id[venue_id] = client_order_id
        self._tracked[client_order_id] = tracked
        self._by_venue_id[report.venue_order_id] = client_order_id
        self._wake_poller()
        return tracked

    async def _cancel(
        self,
        client_order_id: str,
        code: ReasonCode = ReasonCode.CANCELLED_BY_USER,
        again: bool = False,
    ) -> None:
        """``again``: a cancel due from an earlier try (``_cancel_due``), answered already."""
        await self._cancel_once(client_order_id, code, again)
        if client_order_id not in self._cancels_due:
            # Made, or no longer needed (the order ended, or was never placed): its pace ends.
            self._cancels_failed.pop(client_order_id, None)

    def _cancel_failed(self, client_order_id: str) -> int:
        """One more try of a due cancel failed for a lasting reason (its look-up, or the
        venue's refusal): it is asked again ``_cancel_wait_polls`` polls from now. The tries
        failed in a row."""
        failed = self._cancels_failed.get(client_order_id, (0, 0))[0] + 1
        self._cancels_failed[client_order_id] = (failed, self._polls + _cancel_wait_polls(failed))
        return failed

    async def _cancel_once(self, client_order_id: str, code: ReasonCode, again: bool) -> None:
        """One try of ``_cancel``: the cancel is left in ``_cancels_due`` when it must be asked
        again."""
        try:
            tracked = await self._followed(client_order_id, strict=True)
        except VenueFailure as error:
            # The venue could not be asked (its retries spent): it may hold the order. Not
            # "cancelled before it was placed" (a child withheld while the venue works it):
            # kept as it was, and asked again at the next poll, then slower (said when first
            # kept, and once more when it has lasted).
            self._cancels_due[client_order_id] = code
            failed = self._cancel_failed(client_order_id)
            if not again:
                self._emit(_cancel_unanswered(client_order_id, error.failure))
            elif failed == _CANCEL_SAID_AFTER:
                log.warning(
                    "ccxt broker: cancel of %s still not made after %d tries, its look-up "
                    "failing (kept open, asked again slower): %s",
                    client_order_id,
                    failed,
                    error.failure.message,
                )
                self._emit(_cancel_lasting(client_order_id, error.failure, failed))
            return
        if tracked is None and self._withhold(client_order_id, code):
            return
        if tracked is None or tracked.final_sent:
            self._cancels_asked.discard(client_order_id)  # never placed, or ended already
            return
        if tracked.watched or tracked.lifted:
            # Not at the venue: a watched take-profit, or a stop lifted for its take-profit's
            # sell (which filled: this is its sibling's cancel; any part of it that filled
            # before the lift is reported first).
            if tracked.lifted:
                await self._poll_trades(tracked.market, tracked.trades_from_ms)
            self._final(tracked, OrderStatus.CANCELLED, "cancelled", code)
            return
        while tracked.sending:
            await asyncio.sleep(0.01)  # its create is still in flight: cancel what it made
        if self._tracked.get(client_order_id) is not tracked:
            # Its placing was given up meanwhile, nothing sent (``_join_lone``): withheld.
            await self._cancel(client_order_id, code)
            return
        tracked.cancel_code = tracked.cancel_code or code
        venue = self._venue
        assert venue is not None
        params: dict[str, Any] = {"trigger": True} if self._algo(tracked.order) else {}
        if not tracked.venue_id:
            params.update(_client_id_params(self._dialect, tracked.venue_cid, bool(params)))
        try:
            await venue.request("cancel_order", tracked.venue_id or "", tracked.market, params)
        except VenueFailure as error:
            failure = error.failure
            if failure.code is ReasonCode.UNKNOWN_ORDER:
                # Unknown at the venue: it filled or ended meanwhile; the poller reports how.
                self._cancels_due.pop(client_order_id, None)
                self._wake_poller()
                return
            # The venue holds the order: the cancel stays due, never dropped nor reported
            # made; the poll still reads the order (a fill meanwhile is booked, and ends it).
            self._cancels_due[client_order_id] = tracked.cancel_code or code
            if not _refusal_lasts(failure):
                # A fault that passes (its retries spent): asked again at the next poll.
                log.warning(
                    "ccxt broker: cancel of %s failed (asked again at the next poll): %s",
                    client_order_id,
                    failure.message,
                )
                self._wake_poller()
                return
            # Refused, as it would be at the next poll: asked again slower, and the poller not
            # woken (a poll at once would ask nothing new, and count against the pace).
            failed = self._cancel_failed(client_order_id)
            log.warning(
                "ccxt broker: cancel of %s refused (%d in a row; asked again in %d polls): %s",
                client_order_id,
                failed,
                _cancel_wait_polls(failed),
                failure.message,
            )
            if failed == _CANCEL_SAID_AFTER:
                self._emit(_cancel_refused_lasting(client_order_id, failure, failed))
            return
        self._cancels_due.pop(client_order_id, None)
        await self._settle(tracked, code)

    def _withhold(
        self,
        client_order_id: str,
        code: ReasonCode,
        reason: str = "cancelled before it was placed",
    ) -> bool:
        """A cancel of a bracket child not placed yet (its entry's first part was below the
        venue's minimum, or its placing is queued behind a fill): it is never placed, and the
        bot hears it cancelled — a flatten must not leave a stop to be placed after it."""
        if bracket_role(client_order_id) is None:
            return False
        with self._known_lock:
            if client_order_id in self._known:
                return False  # placed (or sent by an earlier run): the venue answers for it
            self._known.add(client_order_id)  # never placed from now on
            self._withheld.add(client_order_id)
        self._emit(
            OrderUpdate(
                client_order_id,
                OrderStatus.CANCELLED,
                int(time.time()),
                reason,
                code=code,
            )
        )
        return True

    async def _settle(self, tracked: _Tracked, code: ReasonCode) -> None:
        """After a cancel: its fills first, then the cancel with its code."""
        await self._poll_trades(tracked.market, tracked.trades_from_ms)
        row = await self._lookup_quietly(tracked)
        if row is not None:
            filled = self._venue_filled(tracked, row)
            tracked.filled = max(tracked.filled, filled)
            status, _ = status_of(ccxt_status(row), filled)
            if status is OrderStatus.FILLED:
                self._apply(tracked, row)
                return
        if tracked.seen < tracked.filled - _EPS:
            self._wake_poller()
            return
        self._final(tracked, OrderStatus.CANCELLED, "cancelled", tracked.cancel_code or code)

    async def _cancel_all(self, symbol: str | None) -> None:
        venue = self._venue
        assert venue is not None
        markets = [self._markets[symbol]] if symbol is not None else list(self._markets.values())
        prefix = bot_prefix(self._ctx.identity_seed) if self._ctx is not None else None
        for market in markets:
            ids = [
                t.order.client_order_id
                for t in self._tracked.values()
                if t.market == market and not t.final_sent
            ]
            # The bot's own orders an earlier run left (never another's: foreign orders in
            # the same account are not the bot's to cancel).
            try:
                opens = await self._open_rows(market)
            except VenueFailure as error:
                log.warning("ccxt broker: cancel-all could not list orders: %s", error)
                opens = []
            for row in opens:
                cid = self._bot_cid(str(row.get("clientOrderId") or ""))
                if prefix and cid.startswith(prefix) and cid not in ids:
                    ids.append(cid)
            for client_order_id in ids:
                await self._cancel(client_order_id)

    async def _followed(
        self, client_order_id: str, placing: bool = False, strict: bool = False
    ) -> _Tracked | None:
        """The order this object follows under ``client_order_id``: its own, or one an earlier
        run left working at the venue (adopted). ``placing``: a bracket child the task sizing
        its entry's children is to place now (``_on_its_way``) is waited for. None: none.
        ``strict``: a look-up that failed raises its ``VenueFailure`` (unless the order is
        followed meanwhile) — the venue's answer is unknown, not "none"."""
        failed: VenueFailure | None = None
        try:
            tracked = self._tracked.get(client_order_id) or await self._adopt(
                client_order_id, strict=strict
            )
        except VenueFailure as error:
            tracked, failed = None, error
        # A child may have been placed while it was looked up (its id is known and tracked at
        # once when it is sent): the venue holds it, or soon will.
        tracked = tracked or self._tracked.get(client_order_id)
        while placing and tracked is None and self._on_its_way(client_order_id):
            await asyncio.sleep(0.01)
            tracked = self._tracked.get(client_order_id)
        if tracked is None and failed is not None:
            raise failed
        return tracked

    def _on_its_way(self, child_id: str) -> bool:
        """Whether bracket child ``child_id``, not placed yet, is still to be placed by the pass
        bringing its entry's children to size now (``_sizing``): not withheld. A child held
        for more of the entry (below the venue's minimum) ends that pass, and the wait."""
        found = bracket_role(child_id)
        if found is None or found[0] not in self._sizing:
            return False
        return child_id not in self._withheld

    def _never_place(self, client_order_id: str) -> None:
        """A bracket child the venue does not hold, now refused to the bot (an amend of it):
        never placed from now on, so that the refusal the bot journals stays true."""
        if bracket_role(client_order_id) is None:
            return
        with self._known_lock:
            if client_order_id in self._known:
                return  # sent before: the venue answers for it
            self._known.add(client_order_id)
            self._withheld.add(client_order_id)

    async def _amend(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> None:
        # A change to a child on its way is made to it once placed (a cut goes to the task
        # placing it: ``_cut``); a refusal here means the venue holds no such order.
        try:
            tracked = await self._followed(client_order_id, placing=True, strict=True)
        except VenueFailure as error:
            # The venue could not be asked (its retries spent): it may hold the order. Not a
            # refusal the bot would journal (and drop the order for), nor a child withheld.
            self._emit(_amend_unanswered(client_order_id, error.failure))
            return
        now = int(time.time())
        if tracked is None or tracked.final_sent:
            if tracked is None:
                self._never_place(client_order_id)
            self._emit(
                OrderUpdate(
                    client_order_id,
                    OrderStatus.REJECTED,
                    now,
                    "amend: no working order with this client order id",
                    code=ReasonCode.UNKNOWN_ORDER,
                )
            )
            return
        while tracked.sending:
            await asyncio.sleep(0.01)
        if self._tracked.get(client_order_id) is not tracked:
            # Its placing was given up meanwhile, nothing sent (its list refused: it goes one
            # by one; a join undone, ``_join_lone``): asked again of what follows it now.
            await self._amend(client_order_id, quantity, price)
            return
        changed = tracked.order
        if quantity is not None:
            changed = changed._replace(quantity=quantity)
        if price is not None:
            changed = changed._replace(price=price)
        args = self._args(changed)
        if isinstance(args, Refusal):
            self._amend_refused(tracked, args.reason, args.code)
            return
        if tracked.watched:
            self._replaced(tracked, changed, tracked.venue_cid, {})  # the broker's own
            return
        if self._algo(changed):
            await self._replace_algo(tracked, changed)
            return
        if tracked.list_id:
            await self._replace_list(tracked, changed)
            return
        venue = self._venue
        assert venue is not None
        executed = tracked.filled  # of every copy, as last read: the replacement's size
        if self._dialect is Dialect.BINANCE_SPOT:
            args = self._rest_args(tracked, changed, executed)
            if isinstance(args, Refusal):
                self._amend_refused(tracked, args.reason, args.code)
                return
        params = dict(args.params)
        params.pop("clientOrderId", None)
        replacement = tracked.venue_cid
        if self._dialect is Dialect.BINANCE_SPOT:
            # Spot amends by cancel-replace: the replacement gets a derived id, so that no
            # client order id is ever placed twice at the venue.
            replacement = venue_replacement_id(client_order_id, tracked.replaced + 1)
            params["newClientOrderId"] = replacement
            params["cancelOrigClientOrderId"] = tracked.venue_cid
            if "stopLossPrice" in params:
                # ccxt's spot edit reads a stop's trigger as triggerPrice (its create, as
                # stopLossPrice): passed on unread, the replacement would be a market order.
                params["triggerPrice"] = params.pop("stopLossPrice")
        replacing = replacement != tracked.venue_cid
        self._amending(tracked, changed, replacing)
        try:
            try:
                raw = await venue.request(
                    "edit_order",
                    tracked.venue_id,
                    args.symbol,
                    args.type,
                    args.side,
                    args.amount,
                    args.price,
                    params,
                )
            except VenueFailure as error:
                # A cancel-replace retried after a lost answer fails its cancel (done by the
                # first attempt): the replacement, under its derived id, may be working all
                # the same.
                found = None
                if replacing:
                    with contextlib.suppress(VenueFailure):
                        found = await self._lookup(replacement, tracked.market)
                if found is None:
                    # Still amending: the poller leaves a cancel it reads to this.
                    await self._amend_failed(tracked, error, changed, args)
                    return
                raw = found
            # Still replacing while the old copy is read: its cancel is not the order's end.
            prior = await self._copies_executed(tracked, changed, executed) if replacing else 0.0
        finally:
            self._amended(tracked)
        if price is not None and _held_price(raw, self._triggered(changed)) is None:
            # A move (a resize keeps its price): the venue's answer may not say what it holds.
            raw = await self._with_held_price(raw, replacement, tracked.market)
        if replacing:
            # With the copy the poller reads (no await between): its row counts from zero.
            tracked.prior = prior
            tracked.filled = max(tracked.filled, prior)
        self._replaced(tracked, changed, replacement, raw)
        if replacing and prior > executed + _EPS:
            self._resize_after_race(tracked, executed)

    def _rest_args(
        self, tracked: _Tracked, changed: Order, executed: float
    ) -> CreateArgs | Refusal:
        """A cancel-replace's new order (Binance spot): ``changed`` for what is left of it once
        ``executed`` (what its copies executed) is taken off, on the venue's terms (a rest below
        its minimum is refused here, before the venue would cancel the order and refuse the
        new one)."""
        step = self._instruments[changed.symbol].lot_step
        rest = replacement_quantity(changed.quantity, executed, step)
        if rest <= _EPS:
            return Refusal(
                ReasonCode.INVALID_QUANTITY,
                f"quantity {changed.quantity:.10g} is not above the {executed:.10g} of "
                f"{tracked.order.client_order_id} already filled",
            )
        return self._args(changed._replace(quantity=rest))

    async def _copies_executed(self, tracked: _Tracked, changed: Order, executed: float) -> float:
        """What the copies a cancel-replace just ended had executed, from the venue's row of
        the one it cancelled (final now): the replacement was sized on ``executed``, the last
        read, and a fill of the old copy since then would be bought or sold again. Read for a
        limit order only (a stop's copy executes only once triggered, whole, and then its
        cancel fails); ``executed`` when the row cannot be read."""
        if changed.order_type is not OrderType.LIMIT:
            return executed
        try:
            row = await self._lookup(tracked.venue_cid, tracked.market)
        except VenueFailure:
            row = None
        if row is None:
            return executed
        return max(executed, self._venue_filled(tracked, row))

    def _resize_after_race(self, tracked: _Tracked, executed: float) -> None:
        """The copies a cancel-replace ended had executed more than its replacement was sized
        on (a fill between the last read and the cancel): the replacement, working for more
        than is left, is cut to what is left — or cancelled when nothing is (its own fills
        took the rest) — so the order does not buy or sell that part twice. Said with the
        amounts."""
        order = tracked.order
        step = self._instruments[order.symbol].lot_step
        left = replacement_quantity(order.quantity, tracked.filled, step)
        log.warning(
            "ccxt broker: %s: its cancelled copies had executed %g of %g, not the %g its "
            "replacement was sized on; the replacement is %s",
            order.client_order_id,
            tracked.prior,
            order.quantity,
            executed,
            "cut to what is left" if left > _EPS else "cancelled: nothing is left",
        )
        if left > _EPS:
            self._spawn(self._amend(order.client_order_id, None, None))
        else:
            self._spawn(self._cancel(order.client_order_id))

    async def _with_held_price(
        self, raw: dict[str, Any], replacement: str, market: str
    ) -> dict[str, Any]:
        """``raw``, an amend's answer that names no price (Bybit's and Kraken's carry ids
        only), with the prices of the order as the venue now lists it: one look-up per move,
        so the bot books the price the venue holds (its tick, its rules), not the one asked.
        A look-up that fails or finds nothing leaves ``raw`` as it was: the asked price is
        booked, as before."""
        try:
            found = await self._lookup(replacement, market)
        except VenueFailure:
            return raw
        if not found:
            return raw
        prices: dict[str, Any] = {
            k: found[k] for k in ("triggerPrice", "stopPrice", "price") if k in found
        }
        return {**raw, **prices}

    def _amending(self, tracked: _Tracked, changed: Order, replacing: bool) -> None:
        """An amend of ``tracked`` to ``changed`` goes to the venue (``_Tracked.amending``)."""
        tracked.sending = True
        tracked.amending = changed
        tracked.replacing = replacing

    def _amended(self, tracked: _Tracked) -> None:
        tracked.sending = False
        tracked.amending = None
        tracked.replacing = False

    async def _replace_list(self, tracked: _Tracked, changed: Order) -> None:
        """Amend a leg of an OCO list (a resize as its entry fills, a moved price): Binance
        amends no list, so the list is cancelled and placed again, both legs under derived
        ids (an id is placed once), with the one quantity the list holds the coin for. Between
        the two requests the position has no stop at the venue for one round trip; a new
        list the venue refuses after the cancel ends both legs, said as REJECTED with its
        reason (for the stop-loss the bot then closes the position at market)."""
        sibling = next(
            (
                t
                for t in self._tracked.values()
                if t is not tracked and t.list_id == tracked.list_id and not t.final_sent
            ),
            None,
        )
        if sibling is None:
            self._amend_refused(tracked, "its order list has ended", ReasonCode.UNKNOWN_ORDER)
            return
        stop, target = (tracked, sibling) if changed.tag == STOP_LOSS_TAG else (sibling, tracked)
        orders = {
            id(t): changed if t is tracked else t.order._replace(quantity=changed.quantity)
            for t in (stop, target)
        }
        stop_args, target_args = self._args(orders[id(stop)]), self._args(orders[id(target)])
        if isinstance(stop_args, Refusal) or isinstance(target_args, Refusal):
            refusal = stop_args if isinstance(stop_args, Refusal) else target_args
            assert isinstance(refusal, Refusal)
            self._amend_refused(tracked, refusal.reason, refusal.code)
            return
        cids = {
            id(t): venue_replacement_id(t.order.client_order_id, t.replaced + 1)
            for t in (stop, target)
        }
        params = self._list_params(stop_args, target_args, cids[id(stop)], cids[id(target)])
        venue = self._venue
        assert venue is not None and params is not None
        legs = [stop, target]
        for leg in legs:
            self._amending(leg, orders[id(leg)], True)  # the list's cancel is not their end
        try:
            try:
                await venue.request(
                    "private_delete_orderlist",
                    {"symbol": params["symbol"], "orderListId": tracked.list_id},
                )
            except VenueFailure as error:
                if not await self._cancelled_whole(legs):
                    # A leg filled or triggered meanwhile (the list is over), or the venue
                    # refused: nothing changed; the poller reports what happened.
                    self._amend_refused(tracked, error.failure.message, error.failure.code)
                    return
                # A retried cancel whose first attempt had landed: cancelled all the same.
            # Fills before the cancel stay the legs' (their venue ids still map to them).
            await self._poll_trades(tracked.market, min(t.trades_from_ms for t in legs))
            for leg in legs:
                leg.order = orders[id(leg)]
                leg.venue_cid = cids[id(leg)]
                leg.replaced += 1
                leg.prior = leg.filled  # cancelled whole: nothing of the old copy was left out
                leg.venue_id = None
            refused = await self._send_list(legs, params)
            if refused is not None:
                for leg in legs:
                    self._final(
                        leg,
                        OrderStatus.REJECTED,
                        f"amend failed after the venue cancelled the order list: {refused.message}",
                        refused.code,
                    )
                return
            for leg in legs:
                if leg.status is not OrderStatus.PENDING:  # in doubt: the poller looks it up
                    held = leg.list_price
                    if held is not None and math.isfinite(held) and held > 0.0:
                        leg.order = leg.order._replace(price=held)  # as ``_replaced`` does
                    self._emit(
                        OrderUpdate(
                            leg.order.client_order_id,
                            OrderStatus.OPEN,
                            int(time.time()),
                            "amended",
                            leg.venue_id,
                            price=held,
                        )
                    )
        finally:
            for leg in legs:
                self._amended(leg)
            self._wake_poller()

    async def _cancelled_whole(self, legs: list[_Tracked]) -> bool:
        """Whether every leg is cancelled at the venue with nothing of it filled (what a list's
        cancel leaves; not a leg that filled, nor the other leg it expired)."""
        for leg in legs:
            row = await self._lookup_quietly(leg)
            if row is None or row.get("status") not in ("canceled", "cancelled"):
                return False
            if leg.prior + float(row.get("filled") or 0.0) > leg.filled + _EPS:
                return False
        return True

    async def _amend_failed(
        self, tracked: _Tracked, error: VenueFailure, changed: Order, args: CreateArgs
    ) -> None:
        """A refused amend leaves the order as it was — unless the venue had already cancelled
        it (a cancel-replace whose new order was refused): then it is over, said as REJECTED
        with the venue's reason (for a stop-loss child the bot then closes what it protected).
        The order found working as changed (an amend whose answer was lost, retried, and
        refused as "unchanged") is amended; one found filled (a stop that triggered while its
        move was on the way) is reported filled at once, after the refusal."""
        row = await self._lookup_quietly(tracked)
        if row is not None:
            status, _ = status_of(ccxt_status(row), float(row.get("filled") or 0.0))
            if not status.is_final and _holds(row, changed, args):
                self._replaced(tracked, changed, tracked.venue_cid, row)
                return
            if status is OrderStatus.FILLED:
                self._amend_refused(tracked, error.failure.message, error.failure.code)
                await self._poll_trades(tracked.market, tracked.trades_from_ms)
                self._apply(tracked, row)
                return
            if status is OrderStatus.CANCELLED:
                await self._poll_trades(tracked.market, tracked.trades_from_ms)
                self._final(
                    tracked,
                    OrderStatus.REJECTED,
                    f"amend failed after the venue cancelled the order: {error.failure.message}",
                    error.failure.code,
                )
                return
        self._amend_refused(tracked, error.failure.message, error.failure.code)

    def _amend_refused(self, tracked: _Tracked, reason: str, code: ReasonCode) -> None:
        """A refused amend changes nothing: the order keeps working as it was (OPEN, with the
        refusal's code and words). Unsaid when the order ended meanwhile (the poller read its
        fill while the amend was on its way): its end was the last word."""
        if tracked.final_sent:
            return
        self._emit(
            OrderUpdate(
                tracked.order.client_order_id,
                OrderStatus.OPEN,
                int(time.time()),
                f"amend refused: {reason}",
                tracked.venue_id,
                code,
            )
        )

    def _replaced(
        self, tracked: _Tracked, changed: Order, replacement: str, raw: dict[str, Any]
    ) -> None:
        """The changed order works at the venue (``raw``), under ``replacement`` (the venue's
        client id: derived when a copy replaced it): said as amended under the bot's id, with
        the price the venue says it holds (``OrderUpdate.price``; None when ``raw`` does not
        say), which may not be the one asked (ccxt's rounding to the market's precision, the
        venue's own rules). That price is the order's from here on: a later resize sends it,
        not the asked one."""
        client_order_id = changed.client_order_id
        held = _held_price(raw, self._triggered(changed))
        if held is not None and math.isfinite(held) and held > 0.0:
            changed = changed._replace(price=held)
        tracked.order = changed
        if replacement != tracked.venue_cid:
            tracked.replaced += 1
            tracked.venue_cid = replacement
        venue_id = str(raw.get("id") or "") or tracked.venue_id
        if self._dialect is Dialect.KRAKEN:
            venue_id = tracked.venue_id  # an amend keeps the order; its answer names the amend
        if venue_id and venue_id != tracked.venue_id:
            tracked.venue_id = venue_id
            self._by_venue_id[venue_id] = client_order_id
        if tracked.final_sent:
            return  # it ended (filled) while the amend was on its way: its end was the last word
        self._emit(
            OrderUpdate(
                client_order_id,
                OrderStatus.OPEN,
                int(time.time()),
                "amended",
                venue_id,
                price=held,
            )
        )

    async def _cancel_algo_copy(self, market: str, venue_id: str, client_id: str) -> bool:
        """Cancel a copy of a conditional order a resize replaced: whether it is gone (the
        venue cancelled it, or no longer has it: it triggered)."""
        venue = self._venue
        assert venue is not None
        params: dict[str, Any] = {"trigger": True}
        if not venue_id:
            params.update(_client_id_params(self._dialect, client_id, True))
        try:
            await venue.request("cancel_order", venue_id, market, params)
        except VenueFailure as error:
            return error.failure.code is ReasonCode.UNKNOWN_ORDER
        return True

    async def _replace_algo(self, tracked: _Tracked, changed: Order) -> None:
        """Binance USDⓈ-M cannot modify a conditional order: the changed one is placed under a
        derived id (an id is placed once), then the old one cancelled — never a moment without
        the order (a stop resized as its entry fills). Both are reduce-only: if the old one
        triggers meanwhile, the new one can only close what is left. A refused new order
        changes nothing."""
        client_order_id = tracked.order.client_order_id
        venue = self._venue
        assert venue is not None
        replacement = venue_replacement_id(client_order_id, tracked.replaced + 1)
        args = self._args(changed._replace(client_order_id=replacement))
        if isinstance(args, Refusal):  # checked on the same terms by the caller
            return
        try:
            raw = await self._create_order(args)
        except VenueFailure as error:
            # An answer lost on the way: the replacement may exist all the same.
            found = None
            if error.failure.duplicate or error.failure.retry is Retry.IN_DOUBT:
                with contextlib.suppress(VenueFailure):
                    found = await self._lookup(replacement, tracked.market)
            if found is None:
                self._amend_refused(tracked, error.failure.message, error.failure.code)
                return
            raw = found
        old_venue_id, old_cid = tracked.venue_id or "", tracked.venue_cid
        # From here the replacement is the order (its fills and end); the old one's fills,
        # should it trigger before the cancel lands, still map to the order by venue id.
        self._replaced(tracked, changed, replacement, raw)
        if not await self._cancel_algo_copy(tracked.market, old_venue_id, old_cid):
            log.warning(
                "ccxt broker: %s resized, but its earlier copy %s was not cancelled; trying "
                "again with each poll (both are reduce-only meanwhile)",
                client_order_id,
                old_cid,
            )
            self._stale.append((tracked.market, old_venue_id, old_cid))
            self._wake_poller()

    # -- polling (I/O thread) ----------------------------------------------------------------

    def _wake_poller(self) -> None:
        if self._poke is not None:
            self._poke.set()

    async def _poll_forever(self) -> None:
        assert self._poke is not None
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns a wake-up that
            # lands with a cancel and drops the cancel, and the poller then outlived close().
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.params.poll_interval_s):
                    await self._poke.wait()
            self._poke.clear()
            try:
                await self._poll()
            except VenueFailure as error:
                self._poll_failed(error.failure.message)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # A fault of ours: its traceback once, not at every poll (10 a second).
                self._poll_failed(f"{type(error).__name__}: {error}", with_traceback=True)
            else:
                if self._poll_problem is not None:
                    log.info("ccxt broker: polls work again (after: %s)", self._poll_problem)
                    self._poll_problem = None

    def _poll_failed(self, problem: str, with_traceback: bool = False) -> None:
        """Say a failed poll once per distinct problem: a poll runs every
        ``poll_interval_s``, and a problem that lasts (credentials unreadable, the venue down)
        would otherwise fill the log with the same line."""
        if problem == self._poll_problem:
            return
        self._poll_problem = problem
        problem = self._venue.redact(problem) if self._venue is not None else problem
        log.warning("ccxt broker: poll failed: %s", problem, exc_info=with_traceback)

    async def _poll(self) -> None:
        venue = self._venue
        assert venue is not None
        # The credential files are looked at each cycle, not only before a request: the
        # broker says it is not connected while they cannot be read, even with nothing to poll.
        venue.refresh_credentials()
        self._polls += 1
        if self._stale:
            await self._cancel_stale()
        if self._cancels_due:
            await self._cancel_due()
        if self._joins_due:
            await self._join_again()
        markets = {t.market for t in self._tracked.values() if not t.final_sent}
        # Kraken's lists hold every market: one cycle reads each once, for all of them.
        cycle: _Lists = {}
        self._ended = {}
        started = int(time.time() * 1000)
        for market in markets:
            await self._poll_market(market, cycle)
        self._polled_ms = started
        await self._check_targets()

    async def _cancel_stale(self) -> None:
        """Cancel the earlier copies of resized conditional orders a cancel missed (until the
        venue has, or says it has no such order)."""
        pending, self._stale = self._stale, []
        left = [copy for copy in pending if not await self._cancel_algo_copy(*copy)]
        self._stale.extend(left)  # after any a resize added meanwhile

    async def _cancel_due(self) -> None:
        """Ask again for the cancels the venue did not take (``_cancel`` keeps one due until
        the venue cancels the order or says it has none; an order that ended meanwhile is
        left to the poll to report). One whose tries keep failing for a lasting reason waits
        its pace (``_cancels_failed``): still due, only not asked at this poll."""
        due, self._cancels_due = self._cancels_due, {}
        for client_order_id, code in due.items():
            tracked = self._tracked.get(client_order_id)
            if tracked is not None and tracked.final_sent:
                self._cancels_failed.pop(client_order_id, None)  # ended: no longer due
                continue
            failed = self._cancels_failed.get(client_order_id)
            if failed is not None and failed[1] > self._polls:
                self._cancels_due.setdefault(client_order_id, code)  # not yet: paced
                continue
            # None: an order whose look-up failed (``_cancel``), looked up again.
            await self._cancel(client_order_id, code, again=True)

    async def _poll_market(self, market: str, cycle: _Lists) -> None:
        """Open orders first (cheap); own trades only when some order filled more than its
        reported fills, or left the open list (request weight is what a poll costs)."""
        venue = self._venue
        assert venue is not None
        kraken = self._dialect is Dialect.KRAKEN
        opens = await self._open_rows(market, cycle)
        by_id = {str(o.get("clientOrderId")): o for o in opens if o.get("clientOrderId")}
        # Each order with what the venue said of it, and how far its cancel-replaces were when
        # that was read (``_read_across_replace``).
        rows: list[tuple[_Tracked, dict[str, Any], int, bool]] = []
        need_trades: int | None = None  # the earliest trade time of the orders that need them
        for tracked in list(self._tracked.values()):
            if tracked.market != market or tracked.final_sent:
                continue
            if tracked.sending and tracked.amending is None:
                continue  # its create (or a cancel) is on its way: that answers for it
            if tracked.watched or tracked.lifted:
                continue  # not at the venue (``_watched_target``, ``_lift``)
            replaced, replacing = tracked.replaced, tracked.replacing
            raw = by_id.get(tracked.venue_cid)
            if raw is None and kraken:
                # Ended since the last cycle: among the orders closed since then (one read
                # for every market), before a look-up of its own (two calls each there).
                closed = await self._offset_pages(
                    "fetch_closed_orders", market, self._polled_ms - _CLOCK_MARGIN_MS, cycle
                )
                raw = next((r for r in closed if r.get("clientOrderId") == tracked.venue_cid), None)
            elif raw is None and self._dialect is Dialect.BYBIT:
                raw = await self._bybit_ended(market, tracked.venue_cid)
            if raw is None:
                raw = await self._lookup(tracked.venue_cid, market)
                if raw is None:
                    grace = max(30.0, 3 * self.params.timeout_ms / 1000)
                    if (
                        tracked.status is OrderStatus.PENDING
                        and time.monotonic() - tracked.doubt_since > grace
                    ):
                        # In doubt, and the venue (answering) still has no such order well
                        # after the last attempt: it never arrived. Rejected, never resent
                        # behind the bot's back.
                        self._final(
                            tracked,
                            OrderStatus.REJECTED,
                            "the venue never received the order (retries spent)",
                            ReasonCode.VENUE_UNAVAILABLE,
                        )
                    continue
            if tracked.replaced != replaced:
                continue  # the copy a cancel-replace ended meanwhile: the next poll reads its own
            if self._venue_filled(tracked, raw) > tracked.seen + _EPS:
                start = tracked.trades_from_ms
                need_trades = start if need_trades is None else min(need_trades, start)
            rows.append((tracked, raw, replaced, replacing))
        if need_trades is not None:
            await self._poll_trades(market, need_trades, cycle)
        for tracked, raw, replaced, replacing in rows:
            # Its fills are read; an end read during a cancel-replace is the amend's to decide.
            if not self._read_across_replace(tracked, raw, replaced, replacing):
                self._apply(tracked, raw)

    def _read_across_replace(
        self, tracked: _Tracked, raw: dict[str, Any], replaced: int, replacing: bool
    ) -> bool:
        """Whether ``raw``, read of ``tracked`` when it had been replaced ``replaced`` times
        (``replacing``: in a cancel-replace then), is not for the poller to apply: the copy a
        cancel-replace ended since (its venue id is no longer the order's), or an end without a
        whole fill (cancelled, or expired as an OCO leg) read during one — the replace's own
        cancel, as far as the poller can tell. Taken for the order's end, the bot would count
        its stop-loss gone and close the position at market while the replacement works."""
        if tracked.replaced != replaced:
            return True
        if not (replacing or tracked.replacing):
            return False
        status, _ = status_of(ccxt_status(raw), self._venue_filled(tracked, raw))
        return status.is_final and status is not OrderStatus.FILLED

    async def _poll_trades(
        self, market: str, earliest_ms: int, cycle: _Lists | None = None
    ) -> None:
        """The bot's new trades on ``market``: every page of them from the last one seen (but
        none from before the orders that need them were followed, less the clock margin).

        One page is not enough: Bybit and Kraken answer newest first, and a read that took
        only the newest page would move past the rest for ever (their orders never ending,
        their part of the position missing)."""
        since = max(self._trades_since.get(market, 0), earliest_ms)
        if self._dialect is Dialect.KRAKEN:
            # Kraken's start is whole seconds and exclusive: a later trade in the second of
            # the last one seen would be left out (the repeat is deduplicated by id).
            since -= 1000
        trades = await self._trades_since_ms(market, since, cycle)
        seen = self._trade_ids.setdefault(market, SeenIds())
        for trade in trades:
            trade_id = trade_id_of(trade)
            raw_stamp = trade.get("timestamp")
            venue_ms = int(raw_stamp) if raw_stamp is not None else None
            if trade_id is not None and seen.taken(trade_id, venue_ms):
                continue
            if self._malformed(trade, market, trade_problem(trade, market)):
                continue
            client_id = await self._client_id_of(trade, market)
            if client_id is None:
                continue
            tracked = self._tracked.get(client_id)
            if tracked is None:
                continue
            if trade_id is None or self._malformed(
                trade, market, trade_problem(trade, market, tracked.order.side), client_id
            ):
                continue
            if seen.taken(trade_id, venue_ms):
                # Taken meanwhile by another read of this market (the poller's, an amend's or
                # a cancel's), while the look-up of its order waited: one fill, not two.
                continue
            seen.add(trade_id, venue_ms)
            stamp = venue_ms or 0
            if stamp < tracked.adopted_ms:
                continue  # before adoption: the reconciler's, not ours
            # Trades at the last stamp are fetched again next time (deduplicated by id).
            self._trades_since[market] = max(self._trades_since.get(market, 0), stamp)
            bot_symbol = self._bot_symbols[market]
            rules = self._fill_rules[bot_symbol]
            rate = (await self._third_coin_rates([trade], rules)).get(trade_id)
            terms = fill_terms(
                trade,
                rules,
                tracked.dust,
                rate,
                float(self._counted.get(bot_symbol, Decimal(0))),
                tracked.order.reduce_only,
            )
            tracked.dust = terms.dust
            if not terms.converted and not self._fee_warned:
                self._fee_warned = True
                log.warning(
                    "ccxt broker: fees charged in %s are not converted to %s (recorded as 0: "
                    "no price for it at the venue)",
                    (trade.get("fee") or {}).get("currency"),
                    self._ctx.currency if self._ctx else "the account currency",
                )
            if tracked.status is OrderStatus.PENDING:
                tracked.status = OrderStatus.OPEN
                self._emit(
                    OrderUpdate(client_id, OrderStatus.OPEN, int(time.time()), "", tracked.venue_id)
                )
            fill = fill_of(
                trade, client_id, bot_symbol, terms.fee, fill_reason(tracked.order), terms.quantity
            )
            self._counted[bot_symbol] = _counted_after(
                self._counted.get(bot_symbol, Decimal(0)), fill, tracked.order.reduce_only
            )
            self._note_rebate(fill, terms.rebate, trade)
            tracked.seen += float(trade.get("amount") or 0.0)
            tracked.held += fill.quantity
            tracked.filled = max(tracked.filled, tracked.seen)
            self._emit(fill)
            self._protect(tracked, tracked.held)
        # No later read starts before the last trade seen less a second (Kraken's whole-second
        # start): older trades cannot come back, so a long-lived pod need not keep their ids.
        seen.forget_before(self._trades_since.get(market, 0) - 2 * _CLOCK_MARGIN_MS)

    def _note_rebate(self, fill: Fill, rebate: float, trade: Mapping[str, Any]) -> None:
        """A fill the venue paid a rebate on (a negative fee: a maker rebate): ``Fill.fee``
        cannot be negative, so the credit is not in the bot's books. Said with the amount,
        never dropped in silence (as the MT5 broker says a swap credit)."""
        if rebate > 0.0:
            fee = trade.get("fee") or {}
            log.warning(
                "ccxt broker: %s: fill %s was paid a rebate of %.8g %s (%s %s) that the bot's "
                "books do not hold: a fill's fee cannot be negative; the account's balance "
                "has it",
                fill.client_order_id,
                fill.fill_id,
                rebate,
                self._ctx.currency if self._ctx else "in the account currency",
                fee.get("cost"),
                fee.get("currency"),
            )

    def _malformed(
        self, trade: dict[str, Any], market: str, problem: str | None, client_id: str = ""
    ) -> bool:
        """Whether ``trade`` is refused as malformed (``trade_problem``): not booked, and not
        taken either, so a corrected row the venue gives later is booked once. Its order waits
        meanwhile as it was (an order whose end is known waits for its fills: ``_apply``), so
        the bot holds what it knows, not a fill it cannot know. Said once a row and problem,
        naming the venue, the trade and the field (a poll reads the same rows again)."""
        if problem is None:
            return False
        trade_id = trade_id_of(trade) or "(none)"
        order = client_id or str(trade.get("order") or "") or "(none)"
        key = (market, trade_id, order, problem)
        if key not in self._malformed_said:
            self._malformed_said.add(key)
            log.warning(
                "ccxt broker: %s sent a malformed trade on %s (trade id %s, order %s): %s; "
                "not booked",
                self.params.exchange,
                market,
                trade_id,
                order,
                problem,
            )
        return True

    async def _third_coin_rates(
        self, trades: Sequence[dict[str, Any]], rules: FillRules
    ) -> dict[str, float]:
        """The price of the coin each of ``trades`` paid its fee in, when that is none of the
        market's (Binance's BNB): by trade id (``FeeRates``)."""
        if self._fee_rates is None:
            return {}
        return await self._fee_rates.of(trades, rules)

    async def _client_id_of(self, trade: dict[str, Any], market: str) -> str | None:
        """The bot's id of the order ``trade`` is a fill of (``trade_owner``: one this run
        follows); None for any other's (a person's trade on the account), which the poller
        skips. A trade its row does not tell is looked up at the venue by its order."""
        venue_id = str(trade.get("order") or "")
        own = trade_owner(trade, self._by_venue_id, self._bot_cid, self._tracked.__contains__)
        if own is not None:
            if venue_id:
                self._by_venue_id[venue_id] = own
            return own
        if not venue_id or venue_id in self._foreign_ids:
            return None
        venue = self._venue
        assert venue is not None
        try:
            row = await venue.request("fetch_order", venue_id, market)
        except VenueFailure:
            return None
        client_id = self._bot_cid(str(row.get("clientOrderId") or ""))
        if client_id in self._tracked:
            self._by_venue_id[venue_id] = client_id
            return client_id
        self._foreign_ids.add(venue_id)
        return None

    # -- funding (I/O thread) ----------------------------------------------------------------

    async def _start_funding(self) -> None:
        """From the venue's time now on, this run's funding payments are read every
        ``funding_poll_s`` (a task of its own beside the order poller: a read that waits out
        its retries must not hold up the orders' polls). One booked before it belongs to
        whatever held the position then; a restart's catch-up (``cash_flow_reports``) reads
        those since the bot's last journaled one."""
        if self._funding_rows is None:
            if not self._no_funding_said:
                self._no_funding_said = True
                log.warning(
                    "ccxt broker: %s: the broker has no funding reader for this venue, so its "
                    "funding payments are not reported: the bot's cash and equity differ from "
                    "the venue's wallet by each of them",
                    self.params.exchange,
                )
            return
        venue_ms = await self._venue_ms()
        self._funding_floor_ms = venue_ms
        for market in self._markets.values():
            # The venue's clock and its lists may lag the answer a little: read from earlier.
            self._funding_from[market] = venue_ms - _CLOCK_MARGIN_MS
            self._funding_seen[market] = SeenIds()
        self._funding_reader = asyncio.get_running_loop().create_task(self._funding_forever())

    async def _venue_ms(self) -> int:
        """The venue's clock (ms): payments are stamped by it, and it may run apart from ours."""
        venue = self._venue
        assert venue is not None
        stamp = await venue.request("fetch_time")
        if isinstance(stamp, int) and not isinstance(stamp, bool) and stamp > 0:
            return stamp
        return int(time.time() * 1000)  # no time in the answer: ours (the margins cover NTP)

    async def _funding_forever(self) -> None:
        every = self.params.funding_poll_s
        delay = every
        while True:
            await asyncio.sleep(delay)
            try:
                await self._read_funding()
            except VenueFailure as error:
                failure = error.failure
                self._funding_failed(failure.code.value, failure.message)
                delay = min(every, _FUNDING_RETRY_S)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                name = type(error).__name__
                self._funding_failed(name, f"{name}: {error}", with_traceback=True)
                delay = min(every, _FUNDING_RETRY_S)
            else:
                if self._funding_problem is not None:
                    log.info(
                        "ccxt broker: funding reads work again (after: %s)", self._funding_problem
                    )
                    self._funding_problem = None
                delay = every

    def _funding_failed(self, kind: str, problem: str, with_traceback: bool = False) -> None:
        """A failed funding read, said once per kind of failure (its words name the request,
        which differ each time). Nothing is lost: the next read starts where the last
        successful one did."""
        if kind == self._funding_problem:
            return
        self._funding_problem = kind
        problem = self._venue.redact(problem) if self._venue is not None else problem
        log.warning(
            "ccxt broker: reading funding payments failed (tried again within %gs): %s",
            min(self.params.funding_poll_s, _FUNDING_RETRY_S),
            problem,
            exc_info=with_traceback,
        )

    async def _read_funding(self) -> None:
        """Each bot market's payments since its last read, those not taken yet as events;
        a market's next read starts from this one's venue time, less the overlap, once its
        read succeeded."""
        began = await self._venue_ms()
        for bot_symbol, market in self._markets.items():
            since = self._funding_from[market]
            seen = self._funding_seen[market]
            fresh: list[CashFlow] = []
            for payment in await self._payments(market, bot_symbol, since, began):
                if seen.taken(payment.key, payment.venue_ms):
                    continue
                seen.add(payment.key, payment.venue_ms)
                if payment.venue_ms and payment.venue_ms < self._funding_floor_ms:
                    continue  # booked before this run connected: not this run's to report
                self._say_unreadable(payment)
                fresh.append(payment.flow)
            self._emit(*fresh)
            self._funding_from[market] = max(since, began - _FUNDING_OVERLAP_MS)
            seen.forget_before(self._funding_from[market])

    def _say_unreadable(self, payment: Payment) -> None:
        """A payment with a field that cannot be read: said once, naming the venue's field (it
        is reported still, and the engine refuses it naming its own)."""
        if payment.problem and payment.key not in self._funding_said:
            self._funding_said.add(payment.key)
            log.warning(
                "ccxt broker: %s: a funding payment cannot be booked: %s",
                self.params.exchange,
                payment.problem,
            )

    async def _payments(
        self, market: str, bot_symbol: str, since_ms: int, now_ms: int
    ) -> list[Payment]:
        """``market``'s funding payments the venue booked from ``since_ms`` on, every page to
        the venue's ``now_ms``, oldest first, once each."""
        rows = self._funding_rows
        assert rows is not None
        spec = (self._ex().markets or {}).get(market) or {}
        market_id = str(spec.get("id") or "")
        settle = str(spec.get("settle") or spec.get("quote") or "")
        payments: dict[str, Payment] = {}
        for row in await self._funding_pages(rows, market, since_ms, now_ms):
            info = row.get("info")
            payment = payment_of(
                info if isinstance(info, dict) else {}, rows, market_id, bot_symbol, settle
            )
            if payment is not None:
                payments.setdefault(payment.key, payment)
        return sorted(payments.values(), key=lambda p: (p.venue_ms, p.flow.flow_id))

    async def _funding_pages(
        self, rows: FundingRows, market: str, since_ms: int, now_ms: int
    ) -> list[dict[str, Any]]:
        """The rows of ``fetch_funding_history`` from ``since_ms`` on (at most as far back as
        the venue keeps them), in windows of a week (the most Bybit answers a request) up to
        the venue's time, every page of each: Bybit's by its cursor, Binance's by time (oldest
        first, 1,000 a page)."""
        venue = self._venue
        assert venue is not None
        found: list[dict[str, Any]] = []
        # Nothing older than the venue keeps can come: no read of years of empty weeks.
        since_ms = max(since_ms, now_ms - rows.kept_ms)
        until_ms = now_ms + _CLOCK_MARGIN_MS
        for start, end in funding_windows(since_ms, until_ms, FUNDING_WINDOW_MS):
            until: dict[str, Any] = {} if end is None else {"until": end}
            if rows.cursor:
                params = {**rows.page_params, **until}
                pages = self._cursor_pages(
                    "fetch_funding_history", market, start, rows.page, params
                )
                found += await _every_row(pages)
                continue
            stamp = start
            keys: set[str] = set()
            while True:
                page = await venue.request(
                    "fetch_funding_history", market, stamp, rows.page, dict(until)
                )
                fresh = [r for r in page if _row_key(r) not in keys]
                keys.update(_row_key(r) for r in fresh)
                found += fresh
                if len(page) < rows.page or not fresh:
                    break
                stamp = max(int(r.get("timestamp") or 0) for r in page)
        return found

    async def _cash_flow_reports(self, since_ts: int) -> list[CashFlow]:
        if self._funding_rows is None:
            return []  # spot pays no funding; a venue without a reader was said at connect
        since_ms = since_ts * 1000
        now_ms = await self._venue_ms()
        flows: list[CashFlow] = []
        for bot_symbol, market in self._markets.items():
            for payment in await self._payments(market, bot_symbol, since_ms, now_ms):
                if payment.venue_ms and payment.venue_ms < since_ms:
                    continue
                self._say_unreadable(payment)
                flows.append(payment.flow)
        flows.sort(key=lambda flow: (flow.ts, flow.flow_id))
        return flows

    # -- queries (I/O thread) ----------------------------------------------------------------

    async def _query(self, client_order_id: str) -> OrderReport | None:
        tracked = self._tracked.get(client_order_id)
        if tracked is not None and (tracked.watched or tracked.lifted) and not tracked.final_sent:
            order = tracked.order  # not at the venue: the broker's word
            return OrderReport(
                client_order_id, tracked.venue_id or "", order.symbol, order.side,
                order.order_type, order.quantity, tracked.held, OrderStatus.OPEN,
                int(time.time()), price=order.price, reduce_only=order.reduce_only,
            )  # fmt: skip
        markets = [tracked.market] if tracked is not None else list(self._markets.values())
        venue_cid = tracked.venue_cid if tracked is not None else client_order_id
        # Taken with the copy it belongs to (a cancel-replace may end while the look-up waits).
        prior = tracked.prior if tracked is not None else 0.0
        whole = tracked.order.quantity if tracked is not None else 0.0
        for market in markets:
            row = await self._lookup(venue_cid, market)
            if row is not None:
                report = self._report(row, self._bot_symbols[market])
                report = report._replace(client_order_id=client_order_id)
                return _whole_order(report, whole, prior) if prior > _EPS else report
        return None

    async def _orders_since(
        self, market: str, since_ms: int, lists: _Lists | None = None
    ) -> list[dict[str, Any]]:
        venue = self._venue
        assert venue is not None
        rows = await self._open_rows(market, lists)
        if self._dialect is Dialect.BYBIT:
            # Every ended order (filled, cancelled, and those Bybit names otherwise: a stop
            # cancelled before it triggered is "Deactivated"), every page, a week at a time.
            rows += await self._weekly("fetch_canceled_and_closed_orders", market, since_ms)
        elif self._dialect is Dialect.KRAKEN:
            rows += await self._offset_pages("fetch_closed_orders", market, since_ms, lists)
        elif venue.exchange.has.get("fetchOrders"):
            rows += await self._paged("fetch_orders", market, since_ms)
            if self._dialect is Dialect.BINANCE_USDM:
                rows += await venue.request(
                    "fetch_orders", market, since_ms, None, {"trigger": True}
                )
        else:
            rows += await venue.request("fetch_closed_orders", market, since_ms)
        unique: dict[str, dict[str, Any]] = {}
        for row in rows:
            unique[str(row.get("id"))] = row
        return list(unique.values())

    async def _offset_pages(
        self, method: str, market: str, since_ms: int, lists: _Lists | None = None
    ) -> list[dict[str, Any]]:
        """``market``'s rows of a Kraken list (closed orders, own trades): 50 rows a page,
        newest first, from ``since_ms`` on, paged by offset. Read for every market at once, as
        Kraken filters by none (a page ccxt filtered to one market would look like the last);
        ``lists`` keeps what one report already read for its other markets."""
        key = (method, since_ms)
        rows = lists.get(key) if lists is not None else None
        if rows is None:
            venue = self._venue
            assert venue is not None
            rows = []
            offset = 0
            while True:
                page = await venue.request(method, None, since_ms, None, {"ofs": offset})
                rows += page
                if len(page) < _KRAKEN_PAGE:
                    break
                offset += len(page)
            if lists is not None:
                lists[key] = rows
        return [row for row in rows if row.get("symbol") == market]

    async def _paged(self, method: str, market: str, since_ms: int) -> list[dict[str, Any]]:
        """A list endpoint read page by page (1,000 rows at a time) from ``since_ms`` on."""
        venue = self._venue
        assert venue is not None
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        cursor = since_ms
        while True:
            page = await venue.request(method, market, cursor, 1000)
            fresh = [r for r in page if str(r.get("id")) not in seen]
            rows += fresh
            seen.update(str(r.get("id")) for r in fresh)
            if len(page) < 1000 or not fresh:
                return rows
            cursor = max(int(r.get("timestamp") or 0) for r in page)

    async def _open_rows(self, market: str, lists: _Lists | None = None) -> list[dict[str, Any]]:
        """``market``'s open orders at the venue, all of them.

        Kraken's list holds every market (one answer, not paged): read once per poll cycle or
        report (``lists``). Bybit's comes 20 a page unless asked (50 at most): every page.
        Binance USDⓈ-M keeps conditional orders in a list of their own."""
        venue = self._venue
        assert venue is not None
        dialect = self._dialect
        if dialect is Dialect.KRAKEN:
            key = ("fetch_open_orders", 0)
            rows = lists.get(key) if lists is not None else None
            if rows is None:
                rows = list(await venue.request("fetch_open_orders", None))
                if lists is not None:
                    lists[key] = rows
            return [row for row in rows if row.get("symbol") == market]
        if dialect is Dialect.BYBIT:
            return await _every_row(
                self._cursor_pages("fetch_open_orders", market, None, _BYBIT_ORDER_PAGE)
            )
        opens = list(await venue.request("fetch_open_orders", market))
        if dialect is Dialect.BINANCE_USDM:
            opens += await venue.request("fetch_open_orders", market, None, None, {"trigger": True})
        return opens

    async def _cursor_pages(
        self,
        method: str,
        market: str,
        since_ms: int | None,
        limit: int,
        params: dict[str, Any] | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """A Bybit list a page at a time, by the cursor each page names (``_next_cursor``),
        to its last page (a cursor named twice ends it: never a loop)."""
        venue = self._venue
        assert venue is not None
        cursor: str | None = None
        asked: set[str] = set()
        while True:
            extra = dict(params or {})
            if cursor:
                extra["cursor"] = cursor
                asked.add(cursor)
            page = list(await venue.request(method, market, since_ms, limit, extra))
            if page:
                yield page
            cursor = _next_cursor(page)
            if not page or not cursor or cursor in asked:
                return

    async def _bybit_ended(self, market: str, venue_cid: str) -> dict[str, Any] | None:
        """An order that left Bybit's open list, among the market's newest ended orders: read
        a page at a time for all such orders of the cycle (a call for 50 of them, not one
        each), at most ``_BYBIT_ENDED_PAGES`` pages. None: not there — the caller looks it up
        by its id (Bybit's history may lag its open list)."""
        pages = self._ended.get(market)
        if pages is None:
            source = self._cursor_pages(
                "fetch_canceled_and_closed_orders", market, None, _BYBIT_ORDER_PAGE
            )
            pages = self._ended[market] = _EndedPages(source)
        found = pages.by_cid.get(venue_cid)
        while found is None and not pages.done:
            page = await anext(pages.source, None)
            pages.pages += 1
            for row in page or ():
                cid = row.get("clientOrderId")
                if cid:
                    pages.by_cid.setdefault(str(cid), row)  # the newest row of an id
            pages.done = page is None or pages.pages >= _BYBIT_ENDED_PAGES
            found = pages.by_cid.get(venue_cid)
        return dict(found) if found is not None else None

    async def _trades_since_ms(
        self, market: str, since_ms: int, lists: _Lists | None = None
    ) -> list[dict[str, Any]]:
        """Own trades from ``since_ms`` on, every page of them, oldest first.

        Kraken: 50 a page by offset (``_offset_pages``). Binance spot: oldest first from the
        start asked, 1,000 a page. Binance USDⓈ-M and Bybit answer at most seven days a
        request: read in such windows (at most ``_TRADE_HISTORY_DAYS`` back); Bybit answers
        newest first, 100 a page at most, by its cursor."""
        dialect = self._dialect
        if dialect is Dialect.KRAKEN:
            trades = await self._offset_pages("fetch_my_trades", market, since_ms, lists)
        elif dialect is Dialect.BINANCE_SPOT:
            trades = await self._paged("fetch_my_trades", market, since_ms)
        else:
            trades = await self._weekly("fetch_my_trades", market, since_ms)
        unique = {str(r.get("id")): r for r in trades}
        return sorted(unique.values(), key=lambda r: (r.get("timestamp") or 0, str(r.get("id"))))

    async def _well_formed(
        self, market: str, since_ms: int, lists: _Lists | None = None
    ) -> list[dict[str, Any]]:
        """``_trades_since_ms`` without the rows that cannot be booked (``_malformed``): a
        restart's reports count and report no fill the poller would refuse."""
        trades = await self._trades_since_ms(market, since_ms, lists)
        return [t for t in trades if not self._malformed(t, market, trade_problem(t, market))]

    async def _weekly(self, method: str, market: str, since_ms: int) -> list[dict[str, Any]]:
        """A list (own trades; Bybit's ended orders) from ``since_ms`` on, read in windows
        of seven days (Binance USDⓈ-M and Bybit answer no more a request), every page of
        each: Bybit's by its cursor, Binance's by time (oldest first, 1,000 a page)."""
        venue = self._venue
        assert venue is not None
        now_ms = int(time.time() * 1000) + _CLOCK_MARGIN_MS
        start = max(since_ms, now_ms - _TRADE_HISTORY_DAYS * _DAY_MS)
        rows: dict[str, dict[str, Any]] = {}
        while True:
            end = start + 7 * _DAY_MS - 1
            # The last window names no end: the venue's week from its start, so a venue
            # whose clock runs ahead of ours still answers its newest rows.
            last = end >= now_ms
            until: dict[str, Any] = {} if last else {"until": end}
            if self._dialect is Dialect.BYBIT:
                size = _BYBIT_TRADE_PAGE if method == "fetch_my_trades" else _BYBIT_ORDER_PAGE
                page = await _every_row(self._cursor_pages(method, market, start, size, until))
                rows.update((str(r.get("id")), r) for r in page)
            else:
                stamp = start
                while True:
                    page = await venue.request(method, market, stamp, 1000, dict(until))
                    fresh = [r for r in page if str(r.get("id")) not in rows]
                    rows.update((str(r.get("id")), r) for r in fresh)
                    if len(page) < 1000 or not fresh:
                        break
                    stamp = max(int(r.get("timestamp") or 0) for r in page)
            if last:
                return list(rows.values())
            start = end + 1

    async def _order_reports(self, since_ts: int) -> list[OrderReport]:
        reports: list[OrderReport] = []
        prefix = bot_prefix(self._ctx.identity_seed) if self._ctx is not None else None
        lists: _Lists = {}
        for bot_symbol, market in self._markets.items():
            rows = await self._orders_since(market, since_ts * 1000, lists)
            listed = [(self._report(row, bot_symbol), row) for row in rows]
            for report, row, copies in await self._whole_orders(listed, market):
                if report.status.is_final and report.ts < since_ts:
                    continue
                reports.append(report)
                if (
                    prefix is not None
                    and report.client_order_id.startswith(prefix)
                    and not report.status.is_final
                    and report.client_order_id not in self._tracked
                ):
                    # Start-up reconciliation adopts the bot's working orders from these
                    # reports without re-sending them: follow them from here on, so their
                    # later fills and end reach the bot as events (earlier fills are the
                    # reconciler's, from fill_reports).
                    tracked = await self._follow_working(report, market, row, copies)
                    if copies is not None and copies.overbought:
                        await self._cut_left_over(tracked, copies)
        return reports

    async def _cut_left_over(self, tracked: _Tracked, copies: _Copies) -> None:
        """At a restart, before the bot trades: the newest copy of an amended order works for
        more than is left of it (``_Copies.overbought``: an earlier run died between a raced
        cancel-replace and the cut ``_resize_after_race`` would have sent). Cut to what is
        left, or cancelled when nothing is, as that run would have done; said with the
        amounts. ``tracked`` follows the order at its whole quantity already."""
        order = tracked.order
        step = self._instruments[order.symbol].lot_step
        left = replacement_quantity(copies.whole, tracked.filled, step)
        log.warning(
            "ccxt broker: %s: what its copies executed and its replacement %s still works "
            "(%g) exceed the order's whole %g (a fill raced its last amend and the earlier "
            "run stopped before cutting the replacement); the replacement is %s",
            order.client_order_id,
            copies.venue_cid,
            copies.working,
            copies.whole,
            f"cut to the {left:.10g} left" if left > _EPS else "cancelled: nothing is left",
        )
        if left > _EPS:
            await self._amend(order.client_order_id, None, None)
        else:
            await self._cancel(order.client_order_id)

    async def _whole_orders(
        self, listed: list[tuple[OrderReport, dict[str, Any]]], market: str
    ) -> list[tuple[OrderReport, dict[str, Any], _Copies | None]]:
        """The venue's rows (``listed``: each with its report) as the bot's orders. The copies
        of an order amended by cancel-replace (``<id>``, ``<id>-a1``, …) are one order, the
        bot's ``<id>``: reported as its newest copy with the whole order's quantity and what
        every copy executed, as ``query_order`` answers while the bot runs. Listed one by one,
        start-up reconciliation would close the bot's order (its first copy is cancelled) and
        adopt the newest copy as an order of its own, for the rest only."""
        prefix = bot_prefix(self._ctx.identity_seed) if self._ctx is not None else None
        groups: dict[str, list[tuple[int, OrderReport, dict[str, Any]]]] = {}
        for report, row in listed:
            own, amendment = _amendment(report.client_order_id)
            if prefix is None or not own.startswith(prefix):
                own, amendment = report.client_order_id, 0  # not the bot's: as it is
            groups.setdefault(own, []).append((amendment, report, row))
        whole: list[tuple[OrderReport, dict[str, Any], _Copies | None]] = []
        for own, members in groups.items():
            if all(amendment == 0 for amendment, _, _ in members):
                whole.extend((report, row, None) for _, report, row in members)
            else:
                whole.extend(await self._as_one_order(own, members, market))
        return whole

    async def _as_one_order(
        self, own: str, members: list[tuple[int, OrderReport, dict[str, Any]]], market: str
    ) -> list[tuple[OrderReport, dict[str, Any], _Copies]]:
        """``_whole_orders`` of one amended order: ``members`` are its copies the venue
        listed (amendment number, report, row). A limit order's copy the list left out (older
        than its start) is looked up by its id: what it executed is the order's. A stop's are
        not (a stop's copy executes only once triggered, whole, and then it is not replaced:
        a trailing stop moved a hundred times would cost a hundred look-ups)."""
        newest = max(amendment for amendment, _, _ in members)
        limit = any(
            report.order_type is OrderType.LIMIT
            for amendment, report, _ in members
            if amendment == newest
        )
        executed: dict[int, float] = {}
        ordered: dict[int, float] = {}
        venue_ids: set[str] = set()
        created: list[int] = []

        def take(amendment: int, report: OrderReport, row: dict[str, Any]) -> None:
            venue_ids.add(report.venue_order_id)
            created.append(int(row.get("timestamp") or 0))
            if amendment < newest:
                # A venue may list an order twice (a triggered conditional order).
                executed[amendment] = max(executed.get(amendment, 0.0), report.filled_quantity)
                ordered[amendment] = report.quantity
                if not report.status.is_final:
                    self._earlier_copy_open(own, report, market)

        for amendment, report, row in members:
            take(amendment, report, row)
        for amendment in range(newest if limit else 0):
            if amendment in executed:
                continue
            copy = venue_replacement_id(own, amendment) if amendment else own
            found = await self._lookup(copy, market)
            if found is not None:  # None: never placed (nothing of it executed)
                take(amendment, self._report(found, self._bot_symbols[market]), found)
        prior = sum(executed.values())
        copies = _Copies(
            self._vcid(venue_replacement_id(own, newest)),
            newest,
            prior,
            frozenset(venue_ids - {""}),
            min((stamp for stamp in created if stamp > 0), default=0),
        )
        whole: list[tuple[OrderReport, dict[str, Any], _Copies]] = []
        for amendment, report, row in members:
            if amendment != newest:
                continue
            measured = copies
            if limit and prior > _EPS and bracket_role(own) is None:
                # Every copy of a limit order is at hand (looked up above): the whole order's
                # quantity is what they show, not what the newest copy's size makes it. Only
                # a copy that executed can have raced; a bracket leg's list is placed again
                # whole as its entry fills: not measured.
                earlier = [(ordered[k], executed[k]) for k in sorted(ordered)]
                measured = replace(
                    copies,
                    whole=copies_whole_quantity(earlier),
                    working=prior + report.quantity,
                )
            whole.append((_as_whole_order(report, own, prior, measured.whole), row, measured))
        return whole

    def _earlier_copy_open(self, own: str, report: OrderReport, market: str) -> None:
        """A copy of ``own`` that a later one replaced is still open at the venue: on Binance
        USDⓈ-M a resized conditional order whose cancel had failed when the earlier run
        stopped (a cancel-replace on spot cancels first). Cancelled with each poll, as that run
        was doing; never followed as the order."""
        copy = (market, report.venue_order_id, self._vcid(report.client_order_id))
        if self._dialect is Dialect.BINANCE_USDM:
            if copy not in self._stale:
                self._stale.append(copy)
                self._wake_poller()
            what = "cancelled with each poll"
        else:
            what = "left to a person"
        log.warning(
            "ccxt broker: %s: its earlier copy %s (venue id %s) is still open at the venue; %s",
            own,
            report.client_order_id,
            report.venue_order_id,
            what,
        )

    async def _fill_reports(self, since_ts: int) -> list[Fill]:
        venue = self._venue
        assert venue is not None
        fills: list[Fill] = []
        lists: _Lists = {}
        prefix = bot_prefix(self._ctx.identity_seed) if self._ctx is not None else None

        def mine(client_id: str) -> bool:
            # The poller's test (an order this run follows), and for the ended orders no run
            # follows, the reconciler's (the bot's prefix).
            return client_id in self._tracked or (
                prefix is not None and client_id.startswith(prefix)
            )

        for bot_symbol, market in self._markets.items():
            rows = await self._orders_since(market, since_ts * 1000 - 86_400_000, lists)
            # A copy a cancel-replace placed (``<id>-a<n>``) is the bot's order ``<id>``.
            ids = {
                str(row.get("id")): self._order_of(str(row.get("clientOrderId") or ""))
                for row in rows
            }
            one = _one_order_key(ids, prefix)
            since_ms = since_ts * 1000
            trades = await self._well_formed(market, since_ms, lists)
            counted_from = trades
            if not self._linear:
                # A spot fill's count carries its order's earlier rests below the lot step (as
                # the poller counted them): read its orders' trades from the first one's start
                # (an amended order's: its first copy's).
                created: dict[str, int] = {}
                for row in rows:
                    key = one(str(row.get("id")))
                    stamp = int(row.get("timestamp") or 0)
                    created[key] = min(created.get(key, stamp), stamp)
                first = min(
                    (created.get(one(str(t.get("order") or "")), since_ms) for t in trades),
                    default=since_ms,
                )
                if first < since_ms:
                    counted_from = await self._well_formed(market, first, lists)
                    trades = [t for t in counted_from if int(t.get("timestamp") or 0) >= since_ms]
            rules = self._fill_rules[bot_symbol]
            rates = await self._third_coin_rates(trades, rules)
            # As the poller counts them (``spot_count``): an order that cannot open a position
            # (a bracket's child, or one the venue says is reduce-only) closes what it buys;
            # the rest from the position these trades make, counted from the one the bot held
            # before ``since_ts`` (told before these reports: ``restore_positions``; flat when
            # it was not).
            closing = {
                one(venue_id)
                for row in rows
                for venue_id in (str(row.get("id")),)
                if row.get("reduceOnly") is True or bracket_role(ids[venue_id]) is not None
            }
            # Only the bot's own trades move its position, as the poller decides
            # (``trade_owner``; ended orders no run follows are the bot's by its prefix): a
            # person's sell on the account and symbol counted into it would make the bot's buy
            # close a short the bot never had, whole, not open the long it did. Theirs are
            # counted apart, from flat, only to be reported (the reconciler books none).
            owners = {
                str(t.get("id")): trade_owner(t, ids, self._order_of, mine) for t in counted_from
            }
            # The copies of an amended order count as one: their rests carry on.
            keyed = [{**t, "order": one(str(t.get("order") or ""))} for t in counted_from]
            counted = terms_by_trade(
                [t for t in keyed if owners[str(t.get("id"))] is not None],
                rules,
                rates,
                position=float(self._counted.get(bot_symbol, Decimal(0))),
                closing=closing,
                position_from_ms=since_ms,
            )
            others = [t for t in keyed if owners[str(t.get("id"))] is None]
            counted.update(terms_by_trade(others, rules, rates, closing=closing))
            for trade in trades:
                client_id = owners[str(trade.get("id"))]
                if client_id is None:
                    client_id = ids.get(str(trade.get("order") or ""))
                if client_id is None:
                    link = str((trade.get("info") or {}).get("orderLinkId") or "")
                    client_id = self._order_of(link) if link else ""
                terms = counted[str(trade.get("id"))]
                fill = fill_of(trade, client_id, bot_symbol, terms.fee, quantity=terms.quantity)
                self._note_rebate(fill, terms.rebate, trade)
                fills.append(fill)
        fills.sort(key=lambda f: (f.ts, f.fill_id))
        return fills

    async def _position_reports(self) -> list[PositionReport]:
        venue = self._venue
        assert venue is not None
        now = int(time.time())
        if not self._linear:
            balance = await venue.request("fetch_balance")
            totals = balance.get("total") or {}
            out = []
            for bot_symbol in self._markets:
                held = float(totals.get(self._fill_rules[bot_symbol].base) or 0.0)
                if held:
                    # The account's balance of the coin, not the bot's position: the
                    # reconciler only checks that it covers what the bot holds.
                    out.append(PositionReport(bot_symbol, held, 0.0, now, balance=True))
            return out
        rows = await venue.request("fetch_positions", list(self._markets.values()))
        reports = []
        for row in rows:
            owner = self._bot_symbols.get(str(row.get("symbol")))
            if owner is None:
                continue
            report = position_of(row, owner)
            if report is not None:
                reports.append(report)
        return reports

    async def _open_orders(self) -> list[Order]:
        return [
            t.order
            for t in self._tracked.values()
            if not t.final_sent and t.status is not OrderStatus.PENDING
        ]


def _whole_order(report: OrderReport, quantity: float, prior: float) -> OrderReport:
    """The report of a copy a cancel-replace placed (Binance spot, sent for what was left) as
    the whole order's: its quantity, and what every copy executed (``prior``, the copies it
    ended). The average price stays the copy's own (the venue's row has no other)."""
    status = report.status
    if status is OrderStatus.OPEN:
        status = OrderStatus.PARTIALLY_FILLED
    return report._replace(
        quantity=max(quantity, report.quantity),
        filled_quantity=prior + report.filled_quantity,
        status=status,
    )


def _as_whole_order(report: OrderReport, own: str, prior: float, whole: float) -> OrderReport:
    """The report of an amended order's newest copy as the bot's order ``own``
    (``_whole_order`` when the copies it replaced executed ``prior``). Its quantity is
    ``whole`` when the copies measured it (``_Copies.whole``; 0.0: not measured), never less
    than what executed: a newest copy sized before a raced fill does not make the order larger
    (a restart cuts that copy, ``_cut_left_over``)."""
    report = report._replace(client_order_id=own)
    if prior <= _EPS:
        return report
    quantity = prior + report.quantity  # what the copies were placed for
    if whole > 0.0:
        quantity = max(min(whole, quantity), prior + report.filled_quantity)
    return _whole_order(report, quantity, prior)


def _amendment(client_order_id: str) -> tuple[str, int]:
    """(the bot's id, the amendment number) of a copy a cancel-replace placed under
    ``venue_replacement_id`` (``<id>-a<n>``); (the id, 0) of any other id."""
    own = original_order_id(client_order_id)
    suffix = client_order_id[len(own) :]
    if own == client_order_id or not suffix.startswith("-a") or not suffix[2:].isdigit():
        return client_order_id, 0
    return own, int(suffix[2:])


def _one_order_key(ids: Mapping[str, str], prefix: str | None) -> Callable[[str], str]:
    """What a trade's order (its venue id) is counted as: the bot's order it belongs to
    (``ids``: venue id -> the bot's id), so that the copies of an amended order carry their
    rests below the lot step as one order; any other order by its venue id."""

    def key(venue_id: str) -> str:
        own = ids.get(venue_id, "")
        return own if prefix and own.startswith(prefix) else venue_id

    return key


def _holds(row: Mapping[str, Any], changed: Order, args: CreateArgs) -> bool:
    """Whether the venue's order ``row`` already is ``changed`` as ``args`` would send it: its
    amount, and its trigger (a stop) or limit price."""

    def same(value: Any, want: float | None) -> bool:
        if want is None or value is None:
            return want is None
        try:
            return math.isclose(float(value), float(want), rel_tol=1e-9)
        except (TypeError, ValueError):
            return False

    if not same(row.get("amount"), args.amount):
        return False
    if changed.order_type is OrderType.STOP:
        keys = ("triggerPrice", "stopLossPrice", "stopPrice")
        want = next((args.params[k] for k in keys if args.params.get(k) is not None), None)
        found = row.get("triggerPrice") or row.get("stopPrice")
        return same(found, float(want) if want is not None else changed.price)
    return same(row.get("price"), args.price)


def _held_price(raw: Mapping[str, Any], trigger: bool) -> float | None:
    """The price an amended order holds by the venue's answer ``raw`` (ccxt's unified order
    structure, or Binance's own order report): a trigger order's ``triggerPrice`` (or
    ``stopPrice``, the name Binance's reports and older parsers give it), else its limit
    ``price``. None when the answer does not say — Bybit's and Kraken's amend answers carry
    ids only, and ccxt leaves a zero out —: the engine then books the price asked. A value
    that is no number is passed on as NaN, which the engine says it cannot book."""
    for key in ("triggerPrice", "stopPrice") if trigger else ("price",):
        value = raw.get(key)
        if value is None or value == "":
            continue
        try:
            price = float(value)
        except (TypeError, ValueError):
            return math.nan
        if price != 0.0:
            return price
    return None


def _exact(quantity: float) -> Decimal:
    """A quantity as the decimal it was written as (``0.01`` is 0.01), as fills are counted."""
    return Decimal(repr(quantity))


def _counted_after(before: Decimal, fill: Fill, reduce_only: bool) -> Decimal:
    """The bot's position in ``fill``'s symbol after it, from ``before``, as this broker counts
    it (``_counted``). A reduce-only order never opens the other way: past flat, it closed a
    position this object did not count (one the bot was not told of: ``restore_positions``),
    and a rest past flat would read as a short (a long) the next plain order "closes",
    counting a coin fee as held. It ends at flat instead."""
    moved = _exact(fill.quantity)
    after = before + (moved if fill.side is Side.BUY else -moved)
    if reduce_only and (before >= 0 > after or before <= 0 < after):
        return Decimal(0)
    return after


def side_price(ticker: Mapping[str, Any], side: Side) -> float:
    """The price a market order on ``side`` meets by ccxt's ``ticker``: the best ask for a
    buy, the best bid for a sell, the last trade where the ticker has no book (Binance
    USDⓈ-M's has none); 0 without any. Pure."""
    book = _amount(ticker.get("ask" if side is Side.BUY else "bid"))
    return book if book > 0.0 else max(_amount(ticker.get("last")), 0.0)


def _on_step(quantity: float, step: float) -> float:
    """``quantity`` on the lot ``step`` when it is within float noise of it (0.1 - 0.01 =
    0.09000000000000001, which the venue's precision would truncate a step down); as it is
    otherwise. Pure."""
    if step > 0.0 and abs(quantity / step - round(quantity / step)) < 1e-6:
        return round(quantity / step) * step
    return quantity


def _amount(value: Any) -> float:
    """A balance or price ccxt gave (a number, a numeric string or None) as a float; 0 for
    anything else."""
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return 0.0
    return amount if math.isfinite(amount) else 0.0


def _money(value: float) -> str:
    """An amount for a person: thousands separated, no needless decimals (``100,000``)."""
    if abs(value) >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.8g}"


def _tradable(market: Mapping[str, Any], linear: bool) -> bool:
    """Whether a ccxt market is of the kind this broker trades: spot, or linear contracts."""
    if linear:
        return not market.get("spot") and bool(market.get("linear"))
    return bool(market.get("spot"))


def _loose(name: str) -> str:
    """A market name without what people get wrong in it: case and separators (``btc-usdt``
    and ``BTCUSDT`` both read ``BTCUSDT``)."""
    return re.sub(r"[/\-_ ]", "", name).upper()


def _spellings(name: str, market: Mapping[str, Any]) -> set[str]:
    """The loose forms of the names a person may know a ccxt market by: its ccxt symbol (a
    contract's also without its settle suffix), the venue's id, and Kraken's other names
    (``XBTUSD``, ``XBT/USD``)."""
    info = market.get("info")
    extra = [info.get(key) for key in ("altname", "wsname")] if isinstance(info, dict) else []
    names = [name, name.split(":", 1)[0], market.get("id"), *extra]
    return {_loose(n) for n in names if isinstance(n, str) and n}


# Markets an unknown symbol's refusal shows as what the venue has.
_EXAMPLES = 5


def _unknown_symbol(
    index: int,
    symbol: str,
    exchange: str,
    market_type: MarketType,
    markets: Mapping[str, Any] | None,
) -> str:
    """Why ``spec.market.symbols[index]`` is refused when ``markets`` (the venue's, by ccxt
    symbol) hold no such market of the broker's kind (pure): the venue's spelling when a
    market matches but for case or separators (a contract's also without its settle suffix,
    never a spot market for a contract's name); else how many markets the venue
    lists and some of them, those of the same base coin first."""
    kind = market_type.value
    spellings = {
        name: _spellings(name, market)
        for name, market in (markets or {}).items()
        if _tradable(market, market_type is MarketType.LINEAR)
    }
    listed = sorted(spellings)
    where = f"spec.market.symbols[{index}]: {symbol} is not a {kind} market of {exchange}"
    wanted = _loose(symbol)
    near = [name for name in listed if wanted in spellings[name]]
    if near:
        # The venue has the market, spelled otherwise: its spelling is all the fix needs.
        return (
            f"{where}; did you mean {' or '.join(near)}? (a market is named by its ccxt "
            "symbol or the venue's id, exactly)"
        )
    if not listed:
        return f"{where}: it lists no {kind} markets (see spec.broker.params.market_type)"
    base = symbol.split("/", 1)[0].upper() if "/" in symbol else ""
    same_base = [name for name in listed if base and name.split("/", 1)[0] == base]
    shown = (same_base + [name for name in listed if name not in same_base])[:_EXAMPLES]
    some = "" if len(shown) == len(listed) else ", e.g."
    return (
        f"{where} (spec.broker.params.market_type is {kind}); it lists {len(listed)}{some}: "
        f"{', '.join(shown)}"
    )


def _row_key(row: Mapping[str, Any]) -> str:
    """What tells two rows of a ccxt list apart within one read: the venue's id, else the
    whole row (never two distinct rows as one)."""
    row_id = row.get("id")
    return str(row_id) if row_id not in (None, "") else repr(sorted(row.items(), key=str))


def _list_id(row: dict[str, Any]) -> str:
    """The venue's order list a ccxt order row is a leg of (Binance's ``orderListId``; -1,
    or none: not a leg), as a string; "" when none."""
    value = str((row.get("info") or {}).get("orderListId", "-1"))
    return "" if value in ("-1", "", "None") else value


def _next_cursor(page: Sequence[dict[str, Any]]) -> str | None:
    """The next-page cursor of a Bybit list page (ccxt hands it on in one row's ``info``; ""
    or none on the last page)."""
    for row in page:
        cursor = (row.get("info") or {}).get("nextPageCursor")
        if cursor:
            return str(cursor)
    return None


def _no_change(error: VenueFailure) -> bool:
    """Setting leverage or margin mode to what it already is is not a failure."""
    words = error.failure.message.lower()
    return error.failure.venue_code in (-4046, 110043, 110026, 110025) or any(
        phrase in words for phrase in ("no need to change", "not modified", "already")
    )


def _role_name(child: Order) -> str:
    """A bracket child's role, as a person names it."""
    return "stop-loss" if child.tag == STOP_LOSS_TAG else "take-profit"


def _client_id_params(dialect: Dialect, client_order_id: str, algo: bool) -> dict[str, Any]:
    if dialect is Dialect.BYBIT:
        return {"orderLinkId": client_order_id}
    if dialect is Dialect.KRAKEN:
        return {"clientOrderId": client_order_id}  # ccxt sends it as cl_ord_id
    if algo:
        return {"clientAlgoId": client_order_id}
    return {"origClientOrderId": client_order_id}  # Binance, spot and USDⓈ-M


def _reason(status: OrderStatus, code: ReasonCode) -> str:
    if status is OrderStatus.FILLED:
        return "filled"
    if code is ReasonCode.EXPIRED:
        return "expired at the venue"
    if status is OrderStatus.REJECTED:
        return "rejected by the venue"
    return "cancelled at the venue"


__all__ = ["CcxtBroker", "side_price"]


async def _every_row(pages: AsyncIterator[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """A list read whole: the rows of every page ``pages`` yields."""
    return [row async for page in pages for row in page]
