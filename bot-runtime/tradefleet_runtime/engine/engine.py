"""The event engine: one loop per bot.

The engine wires the parts that each do one job — the strategy's context (``context``), the
working orders and brackets (``order_book``), the way from intent to order (``risk_driver``),
the kill switch and locks (``trading_state``), the account (``portfolio``) — and runs the loop.
It writes through the ``JournalWriter`` protocol and knows no storage.

For every closed base bar, in time order: the broker matches working orders against it (fills),
the portfolio is marked to its close, higher-timeframe bars that closed are built, the strategy
sees the bar, and the intents it queued pass the risk chain and go to the broker. At the end of
each timestamp the equity is snapshotted. Backtest and paper runs share this loop; only the bar
source (and its clock) differs.
"""

from __future__ import annotations

import bisect
import json
import logging
import struct
import time
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn, Protocol, TypeVar, runtime_checkable

from tradefleet_runtime.accounting import FLAT_QUANTITY, equity_made
from tradefleet_runtime.aggregation import BarAggregator
from tradefleet_runtime.brackets import (
    BRACKET_SPENT_TAG,
    LIQUIDATION_TAG,
    OUTSIDE_TAG,
    STOP_LOSS_TAG,
    STOP_REFUSED_TAG,
    TAKE_PROFIT_TAG,
    bracket_children,
    bracket_entry,
)
from tradefleet_runtime.capabilities import (
    AccountAction,
    AccountRestorer,
    ActionKind,
    BracketFollower,
    CashFlowRestorer,
    ChildCutter,
    MissedBarMatcher,
    PairedChildren,
    PriceQuoter,
    RiskLockHolder,
    SignalReceiver,
    SpotCloses,
    TicketBrackets,
    VenueExecution,
)
from tradefleet_runtime.cash_flows import accrual_problem, books_in, cash_flow_problem
from tradefleet_runtime.contracts import (
    Broker,
    FeedReport,
    RiskContext,
    RiskPlugin,
    Strategy,
    Subscription,
)
from tradefleet_runtime.engine.context import BotContext
from tradefleet_runtime.engine.journal_port import JournalWriter
from tradefleet_runtime.engine.order_book import (
    OrderBook,
    Resized,
    WorkingOrder,
    carried_cuts,
    children_cut_by,
    children_over_position,
)
from tradefleet_runtime.engine.portfolio import Portfolio
from tradefleet_runtime.engine.risk_driver import (
    RiskDriver,
    bracket_dropped,
    closes_only,
    closing_part,
    unpriced_cut,
)
from tradefleet_runtime.engine.risk_hooks import (
    ACTION_TAG,
    RiskHooks,
    action_intents,
    action_problem,
)
from tradefleet_runtime.engine.risk_snapshot import RiskSnapshots, quoted_mark, reducible
from tradefleet_runtime.engine.stop_moves import (
    BROKER_REFUSED,
    MOVED,
    NO_AMEND,
    NO_POSITION,
    MoveRefused,
    StopHeld,
    decide_stop_move,
    price_text,
    protective_stop_losses,
    stop_held,
)
from tradefleet_runtime.engine.trading_state import (
    DEGRADED_HOLDER,
    JOINED_SUFFIX,
    Halt,
    TradingState,
    halt_holder,
    resume_holder,
)
from tradefleet_runtime.errors import (
    DataError,
    JournalError,
    PluginError,
    RiskPluginError,
    SpecError,
    StrategyError,
    StrategyRefused,
)
from tradefleet_runtime.indicators import bar_handler
from tradefleet_runtime.instruments import (
    CoinFees,
    ReduceOnlyMinimums,
    below_minimum_advice,
    bracket_problem,
    limit_problem,
    round_price,
    round_quantity,
)
from tradefleet_runtime.model import (
    Accrual,
    Bar,
    CarriedState,
    CashFlow,
    Fill,
    Instrument,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    ReasonCode,
    RiskAction,
    RiskDecision,
    Side,
    Trade,
)
from tradefleet_runtime.order_ids import bot_prefix, child_order_id, client_order_id
from tradefleet_runtime.reconcile import (
    SPENT_CLOSES_MAX,
    FillStatus,
    ReconcilePlan,
    adopted_order,
    booked_fill,
    closed_reason,
    fill_statuses,
    order_from_report,
    past_flat_owed,
    spent_close_id,
    spent_uncovered,
)
from tradefleet_runtime.signals import Signal
from tradefleet_runtime.timeframes import format_timeframe
from tradefleet_runtime.tracing import EngineTracer

# Module names: an enum member read through its class costs ~0.3 µs, on every order.
_VETO = RiskAction.VETO
_PENDING = OrderStatus.PENDING
_MOVE_STOP = ActionKind.MOVE_STOP
_FINAL = frozenset(status for status in OrderStatus if status.is_final)
_NONE_CLOSED: tuple[tuple[int, Trade], ...] = ()  # a fill that closed no trade
_NO_FILLS: Mapping[str, float] = MappingProxyType({})

log = logging.getLogger("tradefleet.engine")
# Fills of changes the venue (or a person at it) made to the bot's position, under order ids
# of none of the bot's orders: booked, and said.
_VENUE_CHANGES = frozenset({OUTSIDE_TAG, LIQUIDATION_TAG})
# The tag of an emergency stop's closing orders (a risk exit in the report, not a signal).
_FLATTEN_TAG = "emergency-flatten"
# The tag of the stop policy's closing orders (``spec.onStop.flattenPositions``).
STOP_FLATTEN_TAG = "stop-flatten"
# The close of what a reduce-only order the venue let go past flat opened (``_close_past_flat``).
PAST_FLAT_TAG = "past-flat"
_FLAT = FLAT_QUANTITY  # a position this close to 0 is flat (a float sum of fills)
# Of an order a venue reports closed, the share left unexecuted above which it ended unfilled.
_QTY_TOLERANCE = 1e-9


def _guards(order: Order) -> bool:
    """Whether ``order`` is a bracket's stop-loss or take-profit: reduce-only, protecting the
    position its entry opened. A flatten keeps these working until its close has filled."""
    return order.reduce_only and order.parent_id is not None


def _flatten_close(order: Order) -> bool:
    """Whether ``order`` is one of an emergency flatten's closing orders."""
    return order.reduce_only and order.tag == _FLATTEN_TAG


@dataclass(frozen=True, slots=True)
class _Closer:
    """Who closes positions while their stop-loss and take-profit keep working until the close
    has filled (``Engine._close_keeping_guards``): the emergency stop's flatten, a risk plugin's
    FLATTEN account action, the stop policy's flatten. They share every step; only how their
    closes are tagged, sent and told differs."""

    tag: str  # its closing orders' tag (their fills' exit reason)
    close_of: str  # its close, in messages: "the flatten's close"
    then: str  # what becomes of a position whose close failed, said in ``flatten_failed``
    event: str = "flattened"  # what its further steps are journaled as
    title: str = ""  # what those steps' messages start with (the emergency's: who and why)
    acting: bool = False  # a risk plugin's account action: its orders take the actions' ids


_EMERGENCY = _Closer(
    _FLATTEN_TAG,
    "the flatten's close",
    "The emergency stop holds; another emergency stop with flatten, or a restart, sends the "
    "close again",
)
_STOP_POLICY = _Closer(
    STOP_FLATTEN_TAG,
    "the stop policy's close",
    "The bot is stopping: the position stays open at the venue, and the bot's next start "
    "closes it before it trades",
    "stop_flatten",
    "the stop policy's flatten (spec.onStop.flattenPositions)",
)
# The close of a position whose stop-loss was refused (``Engine._exit_unprotected``): the
# position runs bare, so the close is owed as a flatten's is — sent again while refused for a
# passing reason, resumed by a restart, and, refused for good (below the venue's minimum),
# left to a person as a close stuck (``closes_stuck``, the TradefleetCloseStuck alert).
_STOP_REFUSED = _Closer(
    STOP_REFUSED_TAG,
    "the stop-refused close",
    "The bot sends the close again at the next bar (none while a close of it is on its way) "
    "until the position is flat, and a restart resumes it",
    "stop_refused_close",
    "the close after a refused stop-loss",
)


@dataclass(frozen=True, slots=True)
class _StrategyClose:
    """A strategy's ``close`` of a position, held until the orders it waits for have ended;
    the orders of the symbol the strategy asked for since, held to go after it."""

    side: Side  # the closing side: the position's when the strategy asked
    tag: str
    behind: frozenset[str]  # the orders whose cancels it waits for the venue to confirm
    then: list[OrderIntent] = field(default_factory=list)


def _opened_by(fill: Fill, held: float) -> float:
    """What ``fill`` opened of the position it left at ``held``: all of it when the position
    was flat or on the fill's side before it; else only what went past flat, read from the
    position, not as a difference of floats, which a venue would truncate a lot step short
    (pure)."""
    sign = fill.side.sign
    if (held - sign * fill.quantity) * sign >= 0.0:
        return fill.quantity
    return held * sign if held * sign > 0.0 else 0.0


def _resent(order_id: str, plan: ReconcilePlan) -> str:
    """Why a restart sends a protective order again: the venue never received it, or (one it
    had acknowledged: ``ReconcilePlan.gone``) it reports it no more."""
    if order_id in plan.gone:
        return "gone from the venue while the bot was down (no report of it left); sent again"
    return "the venue never received it; sent again"


def _stop_intent(stop: Order) -> OrderIntent:
    """A moved stop-loss as the intent its risk decision row is journaled about."""
    return OrderIntent(
        stop.symbol, stop.side, stop.quantity, OrderType.STOP, stop.price, reduce_only=True
    )


def _risk_closer(plugin: str) -> _Closer:
    """The closer of risk plugin ``plugin``'s FLATTEN: its orders are the plugin's account
    actions (tagged ``risk:<plugin>``, under the actions' ids)."""
    return _Closer(
        f"{ACTION_TAG}{plugin}",
        f"risk plugin {plugin}'s close",
        f"The bot sends {plugin}'s close again at the next bar (none while a close of it is "
        "on its way) until the position is flat, and a restart resumes it",
        "risk_flatten",
        f"risk plugin {plugin}'s flatten",
        acting=True,
    )


def _ends_guards(order: Order | None) -> bool:
    """Whether ``order`` is a close whose fill, leaving its position flat, ends the position's
    stop-loss and take-profit even when this run did not send it (a restart re-armed or
    adopted it): the stop policy's, a risk plugin's."""
    return (
        order is not None
        and order.reduce_only
        and (order.tag == STOP_FLATTEN_TAG or order.tag.startswith(ACTION_TAG))
    )


def _closer_by_tag(order: Order) -> _Closer:
    """The closer of ``order``, a close ``_ends_guards`` knows by its tag."""
    return _closer_named(order.tag)


def _closer_named(tag: str) -> _Closer:
    """The closer whose closes are tagged ``tag``: the stop policy's, the close of a position
    whose stop-loss was refused, or a risk plugin's."""
    if tag == STOP_FLATTEN_TAG:
        return _STOP_POLICY
    if tag == STOP_REFUSED_TAG:
        return _STOP_REFUSED
    return _risk_closer(tag[len(ACTION_TAG) :])


# Refusals of a risk plugin's or the stop policy's close that a later try may pass: the venue
# could not take an order now (down, throttling, its market shut), a market order found no
# price inside the venue's band or no liquidity before it expired, the venue cancelled it for
# its own reasons (self-trade prevention), or the order's fate was not known and it is gone.
# The close is sent again at the symbol's next bar. Any other refusal is of the order itself
# — a quantity below the minimum or off the lot step, the symbol not tradable or any other
# refusal the venue does not explain (VENUE_REJECTED), credentials refused, funds held
# elsewhere, nothing left to reduce, a duplicate id, a person's cancel — or not explained at
# all (NONE): sent again, it would be refused again, at every bar; it is said once, as an
# error, and left to a person.
_RETRIED = frozenset(
    {
        ReasonCode.VENUE_UNAVAILABLE,
        ReasonCode.RATE_LIMITED,
        ReasonCode.MARKET_CLOSED,
        ReasonCode.INVALID_PRICE,
        ReasonCode.EXPIRED,
        ReasonCode.CANCELLED_BY_VENUE,
        ReasonCode.UNKNOWN_OUTCOME,
    }
)


# Refusals in a row of a retried close from which a person is told (``closes_retrying``): the
# first may be a venue's blip that the next bar's retry passes.
_FAILING_AFTER = 2


_P = TypeVar("_P")


def _state_keyed(plugins: Sequence[tuple[str, _P]]) -> tuple[tuple[str, _P], ...]:
    """``restores-state`` plugins by the key their state is journaled under: the plugin's
    name, and ``name#2``, ``name#3`` for a second and third instance in the chain (two
    ``exits`` with other params each keep their own state; the chain's order is the
    manifest's, the same at every start)."""
    seen: dict[str, int] = {}
    keyed: list[tuple[str, _P]] = []
    for name, plugin in plugins:
        seen[name] = seen.get(name, 0) + 1
        keyed.append((name if seen[name] == 1 else f"{name}#{seen[name]}", plugin))
    return tuple(keyed)


def _replay_from(timestamps: Sequence[int], reset: int | None) -> int:
    """The first of ``timestamps`` (equity snapshots, oldest first) a ``restores-equity``
    plugin whose lock a person reset at bar time ``reset`` (None: never) is shown after a
    restart: the last snapshot at that time, the equity the reset took as its new start, else
    the first after it. A reset is stamped at the last close (between bars, or before a
    restarted bot's first bar: ``restore_clock``), after everything journaled at that time: a
    run that ended on a fill after its last close has two snapshots there (``_end_snapshot``),
    and replayed from the first, the equity before that fill, the plugin found again the loss
    the person had reset. Pure."""
    if reset is None:
        return 0
    after = bisect.bisect_right(timestamps, reset)
    return after - 1 if after and timestamps[after - 1] == reset else after


def _refusal_code(code: str) -> ReasonCode:
    """The reason code of the engine's own refusal of a close (its decision's code): the
    sizing's below-minimum is the venue's minimum quantity, a venue limit checked before the
    order leaves is its own code, and anything else (a risk plugin's veto) is NONE."""
    if code == "below_minimum":
        return ReasonCode.BELOW_MIN_QUANTITY
    try:
        return ReasonCode(code)
    except ValueError:
        return ReasonCode.NONE


# Errors out of a strategy's hook that already say what and where: the runtime's own refusals
# (a child strategy's params, a journal that failed under ``ctx``), or a StrategyError raised
# by a nested hook (``on_order_update`` of a cancel asked in ``on_bar``). They pass unchanged;
# anything else a hook raises becomes a StrategyError naming the plugin, the hook and the bar.
_TOLD = (StrategyError, StrategyRefused, SpecError, DataError, PluginError, JournalError)


def _always(_bar: Bar) -> bool:
    return True


def _utc(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def _bar_at(bar: Bar, history: bool = False) -> str:
    """Where a strategy failed on ``bar``: "the EURUSD 1h bar of 2017-01-02 08:00 UTC"."""
    where = f"the {bar[0]} {format_timeframe(bar[1])} bar of {_utc(bar[2])} (open time)"
    # Said so: warm-up and the bars an earlier run handled are replayed through the same code
    # at every start, so such an error recurs at every restart until the strategy is fixed.
    return (
        where + ", a history bar replayed at start (warm-up or already handled)"
        if history
        else where
    )


def _doubles(values: list[float]) -> array[float]:
    """``values`` as an array of doubles, packed in one call (``array("d", values)`` parses
    each value on its own: twice the cost)."""
    packed = array("d")
    packed.frombytes(struct.pack(f"{len(values)}d", *values))
    return packed


def _asked(price: float | None) -> str:
    """A risk plugin's asked stop price as people read it (no float noise: 51314.1192, not
    51314.119199999994); the venue's tick is applied when the move is sent."""
    return "no price" if price is None else price_text(price)


@dataclass(frozen=True)
class EngineConfig:
    bot_name: str
    mode: str
    symbols: tuple[str, ...]
    base_timeframe_s: int
    initial_capital: float
    currency: str = "USD"
    paused: bool = False
    # Equity snapshots are journaled in chunks of this many bars (1: every bar, for live bots).
    equity_chunk: int = 1024
    # What its order ids derive from (``BrokerContext.identity``); empty: ``bot_name``.
    identity: str = ""
    # The strategy plugin's name, which a StrategyError names (empty: its class's).
    strategy_name: str = ""


@dataclass
class RunResult:
    """What a run produced, for reports."""

    bot_name: str
    initial_capital: float
    # The equity this run started from: the capital, or for a run that continued an account
    # (a restarted paper or live bot) its equity when the last run stopped. ``trades`` and
    # ``fees`` are this run's own too: its figures are the run's, not the account's since its
    # first run.
    start_equity: float
    currency: str
    timeframe_s: int
    equity_ts: array[int]
    equity: array[float]
    exposure: array[float]
    trades: list[Trade]
    fees: float
    bars: int
    open_positions: list[Position]
    risk_decisions: Counter[tuple[str, str]]
    orders: int
    fills: int
    feed: FeedReport | None = None
    history_bars: int = 0  # bars shown to the strategy as warm-up or resume history, not traded
    # Risk tier changes and locks as they happened ("<bar close> <message>"), and the locks in
    # force at the end: what the report says about the risk plugins beside their vetoes.
    risk_notes: list[str] = field(default_factory=list)
    risk_locks: dict[str, str] = field(default_factory=dict)
    # Vetoes by (plugin, code or reason) with the first reason of each (``EngineStats``).
    vetoes: Counter[tuple[str, str]] = field(default_factory=Counter)
    veto_reasons: dict[tuple[str, str], str] = field(default_factory=dict)
    # Orders the broker refused, by its reason (``EngineStats.rejections``).
    rejections: Counter[str] = field(default_factory=Counter)
    run_id: str = ""
    journal_path: str = ""
    # What the venue paid (+) or charged (-) outside fills in this run, booked into cash:
    # funding. The trades' net P&L leaves it out; the equity has it.
    cash_flows: float = 0.0

    @property
    def final_equity(self) -> float:
        return self.equity[-1] if self.equity else self.start_equity

    @property
    def exposed(self) -> list[int]:
        """1 for each bar that closed with a position open, else 0."""
        return [1 if value > 0.0 else 0 for value in self.exposure]


@runtime_checkable
class _OwedReader(Protocol):
    """A journal that reads the closes an earlier run owes (``Journal``; the session's
    ``JournalPort``): a restart asks it before closing anything on its own."""

    def flatten_owed(self, bot: str) -> tuple[str, str] | None: ...

    def flatten_in_force(self, bot: str) -> tuple[str, str] | None: ...

    def closes_owed(self, bot: str) -> dict[str, tuple[str, str | None]]: ...


@runtime_checkable
class TicketChildSizes(Protocol):
    """A broker that sizes reduce-only orders at its venue on its own and reports it (an MT5
    account). On a hedging account (``TicketBrackets``) the bracket children are levels its
    venue positions hold, each ticket its own: a person may remove or move one ticket's level
    alone, and the child then closes what the tickets still at its level hold. On a netting
    account a reduce-only exit rests as a plain pending order whose volume MT5 cannot change:
    a person closing part of the position under it has the broker re-place it for what the
    position still holds. The broker reports such an order with an update of it (open,
    unasked); the engine asks what it closes now (a child: that; an exit that is no child:
    only when smaller than what is left of it). Optional: no capability to declare.

    (Beside ``TicketBrackets`` in ``capabilities.py`` is where it belongs.)"""

    def child_held(self, client_order_id: str) -> float | None:
        """What reduce-only order ``client_order_id`` (a bracket child, or an exit the venue
        cut) closes now, by the venue (units), as the broker noted it with its last update of
        the order; None when nothing is noted. Asked once per update, on the engine thread:
        answered without waiting on the venue."""
        ...


class EngineListener(Protocol):
    """Receives what the engine did, on the engine's thread (keep it quick)."""

    def on_order(self, order: Order, update: OrderUpdate) -> None: ...

    def on_fill(self, fill: Fill, order: Order | None, position: Position) -> None: ...

    def on_risk(
        self, plugin: str, intent: OrderIntent, decision: RiskDecision, order_id: str
    ) -> None: ...

    def on_state(self, kind: str, message: str) -> None: ...

    def on_cash_flow(self, flow: CashFlow, booked: bool) -> None: ...


class Outage(Protocol):
    """What a restarted bot's history says of the bars that closed while it was down, by the
    session's rule (``session.MissedBars``), for ``Engine.catch_up``."""

    def closed_while_down(self, bar: Bar) -> bool:
        """Whether the base bar ``bar`` closed while the bot was down."""
        ...

    def still_newest(self, bar: Bar) -> bool:
        """Whether ``bar``, of a series the strategy trades on, was still the newest closed bar
        of its series at the restart (no newer one had closed by the market's time then)."""
        ...

    def rested_on(self, order: Order, bar: Bar) -> bool:
        """Whether ``order``, working before the restart (journaled by an earlier run), was on
        the venue's book by ``bar``, a base bar that closed while the bot was down: not one an
        earlier restart sent once a newer bar had closed (it waited for that restart's first
        live bar)."""
        ...


@dataclass
class EngineStats:
    bars: int = 0
    orders: int = 0
    fills: int = 0
    rejected: int = 0
    history_bars: int = 0  # bars the strategy saw as history (warm-up, already handled)
    warmup_intents: int = 0  # orders a strategy asked for while warming up (dropped)
    late_bars: int = 0  # bars a live run got after a newer bar had closed (``_late_shown``)
    late_intents: int = 0  # orders a strategy asked for on those (dropped)
    known_ids_skipped: int = 0  # intents whose id an earlier run already sent (not re-sent)
    # A restart's bars that closed while the bot was down (``catch_up``): orders decided on
    # the newest closed bar of a higher timeframe built from them (sent), and fills of orders
    # that rested before the restart, worked on them by a broker that is its own venue.
    missed_decisions: int = 0
    filled_while_down: int = 0
    risk_decisions: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Vetoes by (plugin, code, or the reason when the plugin gave no code), and the first
    # reason given for each: what the end-of-run summary says a plugin refused, and why.
    vetoes: Counter[tuple[str, str]] = field(default_factory=Counter)
    veto_reasons: dict[tuple[str, str], str] = field(default_factory=dict)
    # Orders the broker refused, by its reason: the summary says why a run made no trade when
    # the risk chain let every order through (a size no margin covers, say).
    rejections: Counter[str] = field(default_factory=Counter)


class Engine:
    """Runs one bot: a strategy, its risk chain and a broker, journaling as it goes.

    Optional abilities arrive typed, from the plugins' declared capabilities: ``signals`` (the
    strategy takes external signals), ``lock_holders`` (risk plugins with locks),
    ``restorer`` (a broker that rebuilds its account from journaled fills) and ``brackets`` (a
    broker that places bracket children itself, told the brackets it adopts at a restart).
    """

    def __init__(
        self,
        config: EngineConfig,
        strategy: Strategy,
        broker: Broker,
        journal: JournalWriter,
        risk: Sequence[tuple[str, RiskPlugin]] = (),
        *,
        leverage: float = 1.0,
        signals: SignalReceiver | None = None,
        lock_holders: Sequence[tuple[str, RiskLockHolder]] = (),
        restorer: AccountRestorer | None = None,
        venue: VenueExecution | None = None,
        hooks: RiskHooks | None = None,
        brackets: BracketFollower | None = None,
    ) -> None:
        self.config = config
        self.strategy = strategy
        self.broker = broker
        self.journal = journal
        self.risk = list(risk)
        self.signals = signals
        self.restorer = restorer
        self.brackets = brackets
        self.portfolio = Portfolio(cash=config.initial_capital, leverage=leverage)
        self.book = OrderBook()
        # The strategy's closes waiting for the venue to confirm the cancel of orders that
        # would reduce the same position (``_strategy_close``), by symbol.
        self._strategy_closes: dict[str, _StrategyClose] = {}
        # The tag of the strategy's last close of each symbol (``_strategy_close``), and its
        # close the venue refused as reduce-only while the position may have shrunk under it
        # (``_close_refused_larger``): what knows such a refusal when it comes.
        self._closes_asked: dict[str, str] = {}
        self._closes_refused: dict[str, Order] = {}
        self._snapshots = RiskSnapshots(
            self.portfolio, self.book, self.instrument, config.initial_capital
        )
        self.state = TradingState(
            paused=config.paused,
            pause_reason="spec.paused" if config.paused else "",
            lock_holders=tuple(lock_holders),
        )
        self.stats = EngineStats()
        self.ctx = BotContext(
            config.bot_name,
            config.symbols,
            config.base_timeframe_s,
            self.portfolio,
            self.book,
            self.instrument,
            self.cancel,
            lambda kind, message, data: self.journal.record_event(self._now, kind, message, data),
            clock=lambda: self._now,
            close=self._strategy_close,
        )
        # Risk plugins' declared abilities beyond check (observe, act, tiers): the per-bar loop
        # touches them only when the chain declares one.
        self.hooks = hooks if hooks is not None else RiskHooks()
        self._fill_observers = tuple(observer.on_fill for _, observer in self.hooks.fill_observers)
        self.driver = RiskDriver(
            self.risk,
            self.state,
            self.instrument,
            self._risk_context,
            self._decide,
            order_observers=self.hooks.order_observers,
            intent_only=self.hooks.intent_only,
            reducible=self._reducible,
        )
        # Called for orders, fills, risk decisions and state changes when set (the service sets
        # it; backtests leave it None and pay nothing).
        self.listener: EngineListener | None = None
        # OpenTelemetry spans for bars that produce orders; None (the default) costs nothing.
        self.tracer: EngineTracer | None = None
        self.last_veto: RiskDecision | None = None
        self.last_order_id = ""
        # Client order ids earlier runs journaled: an intent that gets one is never re-sent.
        self.known_ids: frozenset[str] = frozenset()
        # ``CarriedState.vetoed_intents``: what earlier runs vetoed, by the id it took.
        self._vetoed: dict[str, tuple[str, str, float | None]] = {}
        self._late_closes: list[int] = []  # close times of late bars not said yet
        # Bracket children whose sibling filled whole: the venue or the broker ends them
        # (one-cancels-other), which is not "cancelled outside the bot".
        self._oco_ending: set[str] = set()
        # Orders the bot asked to cancel and not yet heard ended: a bracket's stop-loss that
        # ends cancelled without being among them was cancelled by someone else.
        self._cancels_asked: set[str] = set()
        # Bracket children cut to their smaller position (``_cap_children``) whose broker
        # answer is awaited: client order id -> why (a cancel's reason, journaled with the
        # broker's), or "" for an amend of the quantity (its plain answer adds nothing to the
        # journal's resize row).
        self._cuts_asked: dict[str, str] = {}
        # A broker whose children follow the venue position their entry opened (an MT5
        # hedging account's tickets): it says which entries' positions a fill reduced.
        self._tickets = broker if isinstance(broker, TicketBrackets) else None
        # Of those, one reporting what a child closes when a person changed a ticket's level.
        self._child_sizes = broker if isinstance(broker, TicketChildSizes) else None
        # Stop-losses a risk plugin's MOVE_STOP is amending, until the broker answers:
        # client order id -> (the plugin, the new price).
        self._stop_moves: dict[str, tuple[str, float]] = {}
        # A broker whose amend answers carry an unusable price says so at every move: once
        # is enough to find it (each such move is still booked at the asked price).
        self._venue_price_unusable_said = False
        self._prefix = bot_prefix(config.identity or config.bot_name)
        self._symbols = config.symbols
        self._symbol_set = frozenset(config.symbols)
        self._now = 0
        # 1 while orders are decided between bars (``between_bars``): they are created a
        # second after the last close.
        self._between_bars = 0
        # A broker that knows the market now (``quotes-prices``; the registry refuses a plugin
        # with ``market_price`` that does not declare it), and (symbol, its price) while a
        # market entry decided between bars is judged on it (``_quote_entry``).
        self._quoter = broker if isinstance(broker, PriceQuoter) else None
        # A broker whose closes sell from the account's balance (spot): a flatten cancels a
        # position's stop-loss and take-profit before its close there (``_keeps_guards``).
        self._spot = broker if isinstance(broker, SpotCloses) else None
        self._quote: tuple[str, float] | None = None
        self._sequence_ts = -1
        self._sequence = 0
        self._instruments: dict[str, Instrument] = {}
        # Per symbol: whether its instrument has a tick or limits to check (unknown: True, so
        # that the first order looks; a symbol without any then costs nothing per order).
        self._instrument_limits: dict[str, bool] = {}
        # The broker's event source when it declares ``venue-execution`` (checked at load),
        # for ``pump``; None otherwise.
        self._drain: Callable[[], Sequence[Fill | OrderUpdate | CashFlow | Accrual]] | None = (
            venue.drain_events if venue is not None else None
        )
        self._peak_equity = config.initial_capital
        # Where this run's own figures start: a run that continues an account reports from
        # the equity it took over (``restore_equity``, else ``_carry``), with the trades and
        # fees it made itself. None: a first run, from the capital.
        self._start_equity: float | None = None
        self._carried_trades = 0
        self._carried_fees = 0.0
        self._carried_cash_flows = 0.0
        # The venue's ids of the payments outside fills booked (or journaled unbooked) so far,
        # earlier runs' too: a payment reported again (a poll's overlap, a restart's catch-up)
        # is booked once.
        self._flow_ids: set[str] = set()
        # Payments a restart's reconciliation booked among the missed fills, for the summary
        # ``book_missed_cash_flows`` journals.
        self._flows_caught_up: list[CashFlow] = []
        # Symbols whose unreadable ``Accrual`` was said (once each: a venue reports them often).
        self._accruals_refused: set[str] = set()
        self._next_day = 0
        self._day_start_equity = config.initial_capital
        # The fills a restart's reconciliation booked that the venue made while the bot was
        # down (``restore_from_venue``; ``RiskContext.fills_while_down``): a day that begins
        # after them starts without those of its own time (``_day_begins``).
        self._ahead: tuple[Fill, ...] = ()
        self._equity_ts: array[int] = array("q")
        self._equity: array[float] = array("d")
        self._exposure: array[float] = array("d")
        # The snapshots not yet journaled, as lists: a list append costs about a third of an
        # array's (which parses its argument per call); _journal_equity packs them at once.
        self._pending_ts: list[int] = []
        self._pending_equity: list[float] = []
        self._pending_exposure: list[float] = []
        # The close a paper or live run snapshotted at the close itself (``close_timestamp``),
        # and its (equity, exposure): the loop does not take it again when the next
        # timestamp begins, after the fills a venue reported in between. -1: none.
        self._sealed_ts = -1
        self._sealed = (0.0, 0.0)
        self._base_symbols: frozenset[str] = frozenset()
        self._aggregators: dict[str, list[BarAggregator]] = {}
        self._started = False
        # ``restores-state`` plugins whose state is journaled as it changes: a paper or live
        # bot's only. A backtest (its journal batched or discarded) has nothing to restart and
        # never asks, so its bars cost nothing more.
        self._state_keepers = (
            _state_keyed(self.hooks.state_restorers)
            if config.mode != "backtest" and not journal.batched
            else ()
        )
        # Plugin -> the JSON text of its state last journaled; plugins whose state could not
        # be journaled (said once each).
        self._states_journaled: dict[str, str] = {}
        self._states_refused: set[str] = set()
        self._risk_after_bar_needed = bool(
            self.hooks.actors
            or self.hooks.tier_reporters
            or self.state.lock_holders
            or self._state_keepers
        )
        self._tiers: dict[str, int] = {name: 0 for name, _ in self.hooks.tier_reporters}
        self._risk_notes: list[str] = []
        self._acting = False
        for _, reader in self.hooks.trade_readers:
            reader.bind_trades(_TradesView(self.portfolio.trades))
        # What each bar is handed to: on_bar, after the strategy's declared indicators (set at
        # start, once they are declared).
        self._on_bar: Callable[[Bar], None] = strategy.on_bar
        # Why start-up reconciliation left the bot halted (Degraded), until a person resumes.
        self.degraded_reason = ""
        # (who, reason) of the flatten the halt in force asked for, until a resume: an entry
        # whose cancel lost the race with its fill is closed too (``_close_late_entry``).
        self._flatten_in_force: tuple[str, str] | None = None
        # Symbol -> the orders its flatten close waits for to end before it is sent: its
        # stop-loss and take-profit, cancelled because the venue refused the close while they
        # held the position (a spot account's resting sell holds the coin it sells); or the
        # orders that would reduce the position which the flatten asked to cancel (another
        # close, a strategy's resting sell): one that fills before its cancel lands and the
        # flatten's close together would sell twice what is held — on spot, which knows no
        # reduce-only, the account's other coins. Sent when the last of them has ended.
        self._closes_waiting: dict[str, frozenset[str]] = {}
        # Symbol -> the stop-loss and take-profit ids among what its close waits for (since the
        # wait began): a resume that forgets the close says the position runs without them.
        self._waited_guards: dict[str, frozenset[str]] = {}
        # The bot's spec asks a halt with flatten (``expect_spec_flatten``): a restart closes
        # nothing on its own, as the flatten the operator sends closes every position.
        self._spec_flatten = False
        # Symbols whose flatten close ended without closing the position (refused, expired):
        # the flatten owes them a close until another is sent or the position is flat.
        self._closes_failed: set[str] = set()
        # Symbol -> the flatten closing its position without a halt's flatten in force (a risk
        # plugin's, the stop policy's: ``_Closer``), from its close until the position is flat
        # and no close of it works. A halt's flatten takes every symbol over (``_closer_of``).
        self._closers: dict[str, _Closer] = {}
        # Symbol -> why its closer's close was refused, for a reason a later try may pass
        # (``_RETRIED``): sent again at the symbol's next bar (``_retry_close``). Bound once by
        # ``run``'s loop: emptied and filled in place, never rebound.
        self._retry: dict[str, ReasonCode] = {}
        # Symbol -> the position a refusal no retry changes left its closer's close on: not
        # sent again (at a bar, a plugin's next FLATTEN, a restart) while it is that position.
        self._stuck: dict[str, float] = {}
        # Symbol -> (refusals in a row, the time of the first, the last one's code) of a close
        # ``_retry`` sends again: from the second refusal on it is in ``closes_retrying``, for
        # a person to see that the position the flatten wants closed is still open. Until the
        # position is flat, the close is taken over (a halt's flatten) or it is stuck.
        self._failing: dict[str, tuple[int, int, str]] = {}
        # Symbol -> (closer's tag, the code of a refusal no retry changes or None) as the
        # journal's newest ``close_owed`` event holds it: what a restart resumes.
        self._owed: dict[str, tuple[str, str | None]] = {}

    # -- what the service and reports read ---------------------------------------------------

    @property
    def now(self) -> int:
        return self._now

    @property
    def symbols(self) -> Sequence[str]:
        return self._symbols

    @property
    def equity(self) -> float:
        return self.portfolio.equity()

    @property
    def peak_equity(self) -> float:
        return self._peak_equity

    @property
    def day_start_equity(self) -> float:
        return self._day_start_equity

    @property
    def paused(self) -> bool:
        return self.state.paused

    @property
    def pause_reason(self) -> str:
        return self.state.pause_reason

    @property
    def halted(self) -> bool:
        return self.state.halted

    @property
    def halt_reason(self) -> str:
        return self.state.halt_reason

    def position(self, symbol: str) -> Position:
        return self.portfolio.position(symbol)

    def open_orders(self, symbol: str | None = None) -> Sequence[Order]:
        return self.book.orders(symbol)

    def instrument(self, symbol: str) -> Instrument:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            instrument = self._instruments[symbol] = self.broker.instrument(symbol)
        return instrument

    def cancel(self, client_order_id: str) -> None:
        if client_order_id not in self.book:
            return
        self._cancels_asked.add(client_order_id)
        update = self.broker.cancel(client_order_id)
        if update is not None:
            if update.ts < self._now:
                # A simulator's clock is the bar it last matched (its open): the cancel is
                # asked now, and its row must not come before the order's own.
                update = update._replace(ts=self._now)
            self._on_order_update(update)

    def close(self, symbol: str, tag: str = "") -> None:
        self.ctx.close(symbol, tag)

    def _strategy_close(self, symbol: str, tag: str) -> None:
        """The strategy's ``close`` of ``symbol``: every order of it is cancelled but a
        flatten's close (the flatten's own: the strategy's close sends only what those leave),
        and the position is closed at market, reduce-only, once no order that would reduce it
        is left working.

        A venue confirms a cancel later than it is asked. A take-profit or resting sell that
        fills before its cancel lands, beside a close sent at once, closed twice what was held:
        on spot (no reduce-only caps a sale) the surplus was sold from the account's other
        coins, a person's own, and elsewhere the second opened the other way where the venue
        checks reduce-only only as an order is placed. Such orders are waited for as a
        flatten's close waits for them (``_reducing``: a stop-loss or take-profit only where
        no reduce-only caps a close, on spot); meanwhile the symbol's new orders are held to
        go after the close (``_process_intents``), in the order asked: a ``close`` + ``sell``
        still reverses. ``_strategy_close_ended`` sends them."""
        # The position's stop-loss and take-profit stay until the close has filled (then they
        # protect nothing and are cancelled: ``_cap_children``), as a flatten keeps them: a
        # close the venue refuses (requotes, a market closed, an outage) or a process that
        # dies before its fill left the position with no stop at all. Not on spot, where no
        # reduce-only caps a sale: there they are cancelled and waited for (``_reducing``).
        keeps = symbol in self.portfolio.open_positions and self._keeps_guards(symbol)
        for working in self.book:
            order = working.order
            if (
                order.symbol == symbol
                and not self._is_close(order)
                and not (keeps and _guards(order))
            ):
                self.cancel(order.client_order_id)
        earlier = self._strategy_closes.pop(symbol, None)
        if earlier is not None and earlier.then:
            # Held, not sent: a newer ``close`` would have cancelled them had they been.
            self._state(
                "close_waits",
                f"{symbol}: {len(earlier.then)} order(s) held behind the strategy's close are "
                "dropped: the strategy closed the position again",
                {"symbol": symbol, "dropped": len(earlier.then)},
            )
        position = self.portfolio.open_positions.get(symbol)
        if position is None:
            if earlier is not None:
                self._wait_over(symbol, earlier, "the position is flat: nothing to close")
            return
        held = position.quantity
        side = Side.SELL if held > 0.0 else Side.BUY
        behind = set(self._reducing(symbol))  # what a flatten's close waits for, too
        if earlier is not None and earlier.side is side:
            behind |= {order_id for order_id in earlier.behind if order_id in self.book}
        if earlier is not None and not behind:
            self._wait_over(symbol, earlier, "closed again, nothing left to wait for")
        if behind:
            self._wait_strategy_close(symbol, _StrategyClose(side, tag, frozenset(behind)))
            return
        quantity = abs(held) - self._closing_on_way(symbol)
        if quantity > _FLAT:
            self._closes_asked[symbol] = tag
            self._closes_refused.pop(symbol, None)
            self.ctx.intents.append(OrderIntent(symbol, side, quantity, reduce_only=True, tag=tag))

    def _wait_strategy_close(
        self, symbol: str, close: _StrategyClose, *, also: bool = False
    ) -> None:
        """Hold ``close``, ``symbol``'s strategy close, until the orders it waits for have ended
        (``_strategy_close_ended``), journaled with what it waits for and its tag: what a
        restart reads (``Journal.strategy_closes_waiting``). ``also``: the same close, now
        waiting for orders found since."""
        self._strategy_closes[symbol] = close
        waiting = sorted(close.behind)
        held = abs(self.portfolio.position(symbol).quantity)
        why = (
            "which would reduce the position as it is now"
            if also
            else "which would reduce the same position: sent beside it, both could fill; the "
            "symbol's next orders go after it"
        )
        self._state(
            "close_waits",
            f"the strategy's close of {held:.10g} {symbol} {'also ' if also else ''}waits for "
            f"the venue to confirm the cancel of {', '.join(waiting)}, {why}",
            {"symbol": symbol, "waiting_for": waiting, "tag": close.tag},
        )

    def _wait_over(self, symbol: str, earlier: _StrategyClose, why: str) -> None:
        """Journal that ``earlier``, a strategy's close that waited, waits no more (``why``): a
        newer ``close`` took it over and has nothing to wait for, so a restart must not ask it
        again (``Journal.strategy_closes_waiting``)."""
        self._state(
            "close_waits",
            f"{symbol}: the strategy's close that waited for {', '.join(sorted(earlier.behind))} "
            f"waits no more: {why}",
            {"symbol": symbol, "ended": sorted(earlier.behind), "then": 0},
        )

    def resume_strategy_closes(self, waiting: Mapping[str, str]) -> list[str]:
        """Ask again the strategy's closes an earlier run held back for the venue's cancel
        answers when it stopped (``Journal.strategy_closes_waiting``: symbol -> the close's
        tag), once the account is reconciled and before the first bar: the strategy decided
        them, and the cancels of the position's exits may have landed while the bot was down,
        leaving it bare. Each is journaled as resumed (a later start does not ask it again);
        a position found flat, or one an emergency stop's flatten closes, needs none — but the
        flat one's working orders are cancelled, as the close asked (a death before its cancels
        went left them working). The orders held behind such a close are not asked again. The
        symbols whose close was asked."""
        resumed: list[str] = []
        for symbol, tag in waiting.items():
            if self._flatten_in_force is None and symbol in self.portfolio.open_positions:
                resumed.append(symbol)
                # Said first, but not as ended: only the close's own rows may end the wait.
                self._state(
                    "close_waits",
                    f"{symbol}: the strategy's close that waited for the venue's cancel answers "
                    "when the bot stopped is asked again now",
                    {"symbol": symbol, "resumed": True},
                )
                self._strategy_close(symbol, tag)
                continue
            cancelled: list[str] = []
            if self._flatten_in_force is not None:
                why = "the emergency stop's flatten closes it instead"
            else:
                why = "the position was flat at the restart: nothing to close"
                # The close cancelled the symbol's orders when the strategy asked it; a death
                # before those cancels went left them working (re-armed at the restart): an
                # entry among them would open a position the strategy closed.
                cancelled = [
                    order.client_order_id
                    for order in self.book.orders(symbol)
                    if not self._is_close(order)
                ]
                if cancelled:
                    why += f"; its cancel of {', '.join(cancelled)} is asked again"
            self._state(
                "close_waits",
                f"{symbol}: the strategy's close that waited for the venue's cancel answers when "
                f"the bot stopped: {why}",
                {"symbol": symbol, "ended": [], "resumed": False, "cancelled": cancelled},
            )
            for order_id in cancelled:
                self.cancel(order_id)
        self._process_intents()
        for symbol in resumed:
            if symbol not in self._strategy_closes:
                # Its close went (or was refused, said in its decision) and is journaled by
                # now: a process that dies before this line asks it again at its next start,
                # which then waits for that close on its way instead of sending a second.
                self._state(
                    "close_waits",
                    f"{symbol}: the strategy's close asked again at the restart is done",
                    {"symbol": symbol, "ended": [], "resumed": True},
                )
        return resumed

    def _strategy_close_ended(self, symbol: str) -> None:
        """Send the strategy's close of ``symbol`` that waits (``_strategy_close``) once none of
        the orders it waits for is left working — what is held then, on whichever side (a
        resting sell larger than the position that filled first left a short), less a
        flatten's closes on their way; nothing when an order that filled closed it — then the
        orders of the symbol the strategy asked for since, in their order, as if the close had
        gone when asked. Orders that would reduce the position placed meanwhile (on spot, the
        exits of an entry whose cancel came too late) are cancelled and waited for first, as
        a flatten's close waits for them (``_close_when_unguarded``)."""
        waiting = self._strategy_closes.get(symbol)
        if waiting is None or any(order_id in self.book for order_id in waiting.behind):
            return
        position = self.portfolio.open_positions.get(symbol)
        since = self._reducing(symbol) if position is not None else []
        if position is not None and since:
            side = Side.SELL if position.quantity > 0.0 else Side.BUY
            again = _StrategyClose(side, waiting.tag, frozenset(since), waiting.then)
            self._wait_strategy_close(symbol, again, also=True)
            for order_id in since:
                if order_id not in self._cancels_asked:  # asked by the close already: once
                    self.cancel(order_id)  # answered at once, it ends the wait in there
            return
        del self._strategy_closes[symbol]
        ended = sorted(waiting.behind)
        quantity = abs(position.quantity) - self._closing_on_way(symbol) if position else 0.0
        with self.between_bars():
            if position is None or quantity <= _FLAT:
                how = "nothing is left for the strategy's close to close"
            else:
                side = Side.SELL if position.quantity > 0.0 else Side.BUY
                self._closes_asked[symbol] = waiting.tag
                self._closes_refused.pop(symbol, None)
                close_id = self._send_reduce_only(symbol, side, quantity, waiting.tag)
                how = (
                    f"the strategy's close goes: closing {quantity:.10g} at market ({close_id})"
                    if close_id
                    else "the strategy's close was refused (its decision is journaled)"
                )
            self._state(
                "close_waits",
                f"{symbol}: {', '.join(ended)} ended; {how}",
                {"symbol": symbol, "ended": ended, "then": len(waiting.then)},
            )
            for intent in waiting.then:
                self._process_intent(intent)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        try:
            subscriptions = list(
                self.strategy.subscriptions(self._symbols, self.config.base_timeframe_s)
            )
        except Exception as error:
            self._hook_failed(error, "subscriptions")
        self._wire(subscriptions)
        self.strategy.ctx = self.ctx
        try:
            self.strategy.on_start(self.ctx)
        except Exception as error:
            self._hook_failed(error, "on_start")
        self._on_bar = bar_handler(self.strategy.on_bar, self.strategy.indicator_book)
        self._started = True

    def strategy_error(self, hook: str, error: BaseException, where: str = "") -> StrategyError:
        """``error``, raised by the strategy's ``hook``, as the StrategyError that names them."""
        name = self.config.strategy_name or type(self.strategy).__name__
        return StrategyError.of(name, hook, error, where)

    def _hook_failed(self, error: Exception, hook: str, where: str = "") -> NoReturn:
        """Raise what the strategy's ``hook`` raised: unchanged when it already says what and
        where (``_TOLD``), else as the StrategyError naming the plugin, the hook and where."""
        if isinstance(error, _TOLD):
            raise error
        raise self.strategy_error(hook, error, where) from error

    def _observe(self, observers: tuple[tuple[str, Callable[[Bar], None]], ...], bar: Bar) -> None:
        """Show ``bar`` to the risk plugins that observe bars; one that raises ends the run,
        naming itself (it raised bare: "bar broke", naming nothing)."""
        for name, observe in observers:
            try:
                observe(bar)
            except Exception as error:
                where = _bar_at(bar, self.ctx.replaying)
                raise RiskPluginError(name, "on_bar", error, where) from error

    def _bar_failed(self, error: Exception, bar: Bar) -> NoReturn:
        """Raise what ``on_bar`` raised on ``bar``; during ``catch_up`` (the context replays)
        it says the bar was history replayed at start."""
        if self.tracer is not None:
            attributes = {"tradefleet.symbol": bar[0], "tradefleet.bar_ts": bar[2]}
            self.tracer.failed("bar", attributes, error)
        self._hook_failed(error, "on_bar", _bar_at(bar, self.ctx.replaying))

    def _wire(self, subscriptions: Iterable[Subscription]) -> None:
        base = self.config.base_timeframe_s
        base_symbols = set()
        for sub in subscriptions:
            if sub.symbol not in self._symbol_set:
                raise ValueError(
                    f"strategy subscribed to {sub.symbol!r}, not in spec.market.symbols"
                )
            if sub.timeframe_s == base:
                base_symbols.add(sub.symbol)
            elif sub.timeframe_s < base or sub.timeframe_s % base:
                raise ValueError(
                    f"strategy asked for a {sub.timeframe_s}s series of {sub.symbol}: it must be a "
                    f"multiple of the base timeframe ({base}s)"
                )
            else:
                self._aggregators.setdefault(sub.symbol, []).append(
                    BarAggregator(sub.symbol, sub.timeframe_s)
                )
        self._base_symbols = frozenset(base_symbols)

    def catch_up(self, bars: Iterable[Bar], outage: Outage | None = None) -> int:
        """Show the strategy bars from before the bot's start (warm-up history, bars an earlier
        run already handled, and a restart's bars that closed while the bot was down), so it
        rebuilds its state; returns how many.

        No equity is recorded, and the orders the strategy asks for are dropped (counted), its
        cancels too: those bars are history, already traded or never tradable, and the working
        orders are not theirs. ``outage`` (a restart's: which bars closed while the bot was
        down, by the session's rule) makes two exceptions:

        - A broker that is its own venue (``MissedBarMatcher``: the paper broker) first works
          the orders that rested before the restart over the bars that closed meanwhile, as
          its venue would have (``_worked_while_down``); their fills are booked and journaled
          at those bars' times, before the strategy is shown the bars, as a live bot's
          reconciliation books what its venue filled meanwhile.
        - A bar of a series the strategy trades on that was still the newest of its series at
          the restart — a higher timeframe's, built from base bars that closed while the bot
          was down — has its decision sent (``_send_missed_decisions``): a running bot would
          have traded it, a little earlier, and no newer bar of the series has replaced it. A
          base bar that closed while the bot was down is never the newest of its series; the
          orders asked for on it are dropped, each taking the id a running bot gave it, so
          that a decision sent at its time takes the id it had (and is not sent twice).
        """
        if not self._started:
            self.start()
        strategy_on_bar = self._on_bar
        marks = self.portfolio.marks
        ctx = self.ctx
        intents = ctx.intents
        # Risk plugins that observe bars rebuild their state (ATR, returns) from history too.
        observers = tuple((name, observer.on_bar) for name, observer in self.hooks.bar_observers)
        count = 0
        missed_on = outage.closed_while_down if outage is not None else None
        still_newest = outage.still_newest if outage is not None else None
        if outage is not None and isinstance(self.restorer, MissedBarMatcher):
            bars = self._worked_while_down(bars, outage, self.restorer)
        # The orders asked for on a bar that closed while the bot was down, in the order a
        # running bot would have numbered them, each with whether it is sent.
        decided: list[tuple[OrderIntent, bool]] = []

        def decide(series: Bar) -> None:
            # A bar built from a base bar that closed while the bot was down: traded only when
            # it is still the newest of its series (its cancels then go too), else history.
            assert still_newest is not None
            traded = still_newest(series)
            ctx.replaying = not traded
            try:
                strategy_on_bar(series)
            finally:
                ctx.replaying = True
            if intents:
                decided.extend((intent, traded) for intent in intents)
                intents.clear()

        current = None
        try:
            for bar in bars:
                if self._ahead and bar[2] != current:
                    if current is not None:
                        self._day_while_down(current + self.config.base_timeframe_s)
                    current = bar[2]
                count += 1
                marks[bar[0]] = bar[6]
                self._now = bar[2] + bar[1]
                if observers:
                    self._observe(observers, bar)
                deliver = decide if missed_on is not None and missed_on(bar) else strategy_on_bar
                # Only while the strategy is shown a bar: its cancels are dropped too
                # (``BotContext.replaying``). A live feed waits for its first new bar inside
                # ``bars``, serving signals and control calls: those act on today's orders
                # (a reversal's ``close`` cancels the opposite entry).
                ctx.replaying = True
                try:
                    if self._aggregators:
                        self._aggregate(bar, deliver)
                    elif bar[0] in self._base_symbols:
                        deliver(bar)
                except Exception as error:
                    self._bar_failed(error, bar)
                ctx.replaying = False
                if intents:
                    self.stats.warmup_intents += len(intents)
                    intents.clear()
                if decided:
                    self._send_missed_decisions(decided)
            if current is not None:
                self._day_while_down(current + self.config.base_timeframe_s)
        finally:
            ctx.replaying = False
        self.stats.history_bars += count
        return count

    def _day_while_down(self, close_ts: int) -> None:
        """A bar the bot missed closed at ``close_ts``, every symbol's bar of it seen: a day
        that began there (its first close, which came while the bot was down) begins now, at
        those bars' marks, without the fills the venue made on it while the bot was down
        (``_day_begins``). Begun at the first live close instead, the day started after them:
        a stop filled after midnight was in no day's loss when the bot came back two bars
        later. Only after a restart that booked such fills (``_ahead``)."""
        if close_ts < self._next_day:
            return
        raw, _ = self.portfolio.equity_and_exposure()
        self._day_begins(close_ts, raw)
        # And journaled as the account at that close: a later restart rebuilds the day from
        # its first snapshot, which was the first live close's, after those fills — and
        # forgot the loss this restart found.
        equity, exposure = self._account_at(close_ts)
        self._journal_equity()
        self._pending_ts.append(close_ts)
        self._pending_equity.append(equity)
        self._pending_exposure.append(exposure)
        self._peak_equity = max(self._peak_equity, equity)
        self._journal_equity()

    def _account_at(self, close_ts: int) -> tuple[float, float]:
        """Equity and exposure at ``close_ts``, at the marks now: the account less the fills a
        restart booked that the venue made after that close while the bot was down (``_ahead``;
        the account as it is when there are none)."""
        portfolio = self.portfolio
        after = [fill for fill in self._ahead if fill.ts > close_ts]
        if not after:
            return portfolio.equity_and_exposure()
        marks = portfolio.marks
        held = {s: p.quantity for s, p in portfolio.open_positions.items()}
        equity = portfolio.equity()
        for fill in after:
            equity -= equity_made(fill, marks)
            held[fill.symbol] = held.get(fill.symbol, 0.0) - fill.side.sign * fill.quantity
        exposure = sum(abs(quantity * marks.get(s, 0.0)) for s, quantity in held.items())
        return equity, exposure

    def _late_shown(
        self, on_bar: Callable[[Bar], None], late: Callable[[Bar], bool]
    ) -> Callable[[Bar], None]:
        """``on_bar``, but a bar that came ``late`` — after a newer bar of its series had
        closed: an outage of the venue or the feed, which hands the bars that closed meanwhile
        over in a burst once it is back — is shown to the strategy as history: the orders it
        asks for on it are dropped (counted, each using up the id a running bot gave it, as a
        restart drops them: ``_missed_order_id``), its cancels and closes too. Decided minutes
        after the bar closed, on prices that are gone, they would trade what a bot restarted
        after the same outage never trades (``session.split_history``). Each bar is judged on
        its own series' timeframe: a higher timeframe's bar still the newest of its series is
        traded. The venue still works the resting orders over those bars (the broker's
        ``on_bar``). A run of late bars is said once the next bar on time comes, or the run
        ends (``bars_late``)."""
        ctx = self.ctx
        intents = ctx.intents
        closes = self._late_closes

        def deliver(bar: Bar) -> None:
            if not late(bar):
                if closes:
                    self._said_late(closes)
                on_bar(bar)
                return
            before = len(intents)
            ctx.replaying = True
            try:
                on_bar(bar)
            finally:
                ctx.replaying = False
                if len(intents) > before:
                    for intent in intents[before:]:
                        self.stats.late_intents += 1
                        self._missed_order_id(intent)
                    del intents[before:]
            close = bar[2] + bar[1]
            if not closes or closes[-1] != close:
                closes.append(close)

        return deliver

    def _said_at_once(self, deliver: Callable[[Bar], None]) -> Callable[[Bar], None]:
        """``deliver`` (a ``_late_shown`` one), each bar it shows as history said at once."""
        closes = self._late_closes

        def said(bar: Bar) -> None:
            deliver(bar)
            if closes:
                self._said_late(closes)

        return said

    def _said_late(self, closes: list[int]) -> None:
        """Say (and empty) ``closes``: the close times of a run of bars that came late."""
        self.stats.late_bars += len(closes)
        first, last = closes[0], closes[-1]
        message = (
            f"{len(closes)} bar(s) came after a newer bar had closed (closes {_utc(first)} to "
            f"{_utc(last)}): the venue or the feed was out, the feed filled them in for a "
            "quiet market (gap_policy fill), or a higher timeframe's bar lacked its last base "
            "bars (a market closed for the weekend) and was ended by the next; shown to the "
            "strategy as history, no order sent for them"
        )
        log.warning("%s: %s", self.config.bot_name, message)
        self._state(
            "bars_late",
            message,
            {"bars": len(closes), "first_close": first, "last_close": last},
        )
        closes.clear()

    def _send_missed_decisions(self, decided: list[tuple[OrderIntent, bool]]) -> None:
        """Handle (and empty) ``decided``: the orders the strategy asked for on a bar that
        closed while the bot was down, in the order a running bot would have sent them. Those
        of the newest closed bar of a series it trades (True) are sent at that bar's close, as
        a running bot would have: under the ids it would have given them, so a restart that
        hands the bar over again — or an earlier run killed before the bar was marked handled,
        which sent them — sends nothing twice (``replay``); a simulated venue works them only
        from the first live bar (they were not on its book during the outage:
        ``_worked_while_down``). The others are history, dropped (counted), each taking the
        id a running bot gave it (``_missed_order_id``)."""
        intents = self.ctx.intents
        for intent, traded in decided:
            if traded:
                self.stats.missed_decisions += 1
                intents.append(intent)
                self._process_intents(replay=True)
            else:
                self.stats.warmup_intents += 1
                self._missed_order_id(intent)
        decided.clear()

    def _missed_order_id(self, intent: OrderIntent) -> None:
        """Use up the id a running bot gave ``intent``, dropped as history from a bar that
        closed while the bot was down: ids number a bar time's orders across its symbols
        (``_next_order_id``), so a decision sent at the same time after it (a higher
        timeframe's bar closing with it, another symbol's) takes the id a running bot gave it
        — the one an earlier run killed before the time was marked handled journaled. An
        intent for a symbol not the bot's never took one (``_decide_order``)."""
        if intent.symbol in self._symbol_set:
            self._next_order_id(intent.symbol)

    def _worked_while_down(
        self, bars: Iterable[Bar], outage: Outage, venue: MissedBarMatcher
    ) -> Iterator[Bar]:
        """``bars``, those that closed while the bot was down (history's last) handed on only
        once ``venue`` has worked them all (``_work_missed``): the strategy rebuilds its state
        on the account as the outage left it, the one it trades on from the restart, as a
        live bot's strategy does after its reconciliation."""
        missed: list[Bar] = []
        for bar in bars:
            if outage.closed_while_down(bar):
                missed.append(bar)
                continue
            if missed:  # not expected (they come last): their time comes first all the same
                self._work_missed(missed, venue, outage)
                yield from missed
                missed = []
            yield bar
        if missed:
            self._work_missed(missed, venue, outage)
            yield from missed

    def _work_missed(self, missed: Sequence[Bar], venue: MissedBarMatcher, outage: Outage) -> None:
        """Have ``venue`` work, bar by bar, the orders that rested on its book before the
        restart (working now, journaled by an earlier run) over ``missed``, the bars that
        closed while the bot was down: it fills them as it would have then. Each bar works only
        the orders on the book by it (``Outage.rested_on``): one an earlier restart sent (a
        higher timeframe's decision, a close owed) reached the venue when that restart came
        back, and a bar that had closed by then is handed over again only because that run
        was killed before it handled a live bar. Booked and journaled as any broker event,
        each fill also said (``filled_while_down``). The engine's clock stays at the
        restart's: what it sends in answer (a late entry's close under a flatten in force) is
        sent now, and worked from the first live bar."""
        known = self.known_ids
        before = [order for order in self.book.orders() if order.client_order_id in known]
        intents = self.ctx.intents
        for bar in missed:
            resting = frozenset(
                order.client_order_id
                for order in before
                if order.symbol == bar[0] and outage.rested_on(order, bar)
            )
            events = venue.match_missed_bar(bar, resting)
            if not events:
                continue
            self._on_broker_events(events)
            for event in events:
                if isinstance(event, Fill):
                    self._say_filled_while_down(event)
                    # Booked before the bars that closed meanwhile are shown, as a venue's
                    # reconciled fills are: a day begun at one of those closes leaves it out.
                    self._ahead = (*self._ahead, event)
            if intents:  # the strategy's answer to a fill (``on_fill``), on history: dropped
                self.stats.warmup_intents += len(intents)
                intents.clear()

    def _say_filled_while_down(self, fill: Fill) -> None:
        self.stats.filled_while_down += 1
        message = (
            f"{fill.symbol}: {fill.client_order_id} ({fill.reason or 'order'}) filled while the "
            f"bot was down, {fill.side.value} {fill.quantity:.10g} @ {fill.price:.10g} "
            "on the bar of "
            f"{_utc(fill.ts)}: the simulated venue worked its book over the bars that closed "
            "meanwhile, as a venue would have"
        )
        log.warning("%s: %s", self.config.bot_name, message)
        data = {"client_order_id": fill.client_order_id, "ts": fill.ts, "price": fill.price}
        self.journal.record_event(fill.ts, "filled_while_down", message, data)
        if self.listener is not None:
            self.listener.on_state("filled_while_down", message)

    def run(
        self,
        bars: Iterable[Bar],
        should_stop: Callable[[], bool] | None = None,
        *,
        warmup: bool = False,
        late: Callable[[Bar], bool] | None = None,
    ) -> None:
        """Consume bars until they end or ``should_stop()`` says so (checked per timestamp).

        With ``warmup`` the strategy's orders are dropped (counted): it is still learning.
        ``late`` (a live run's, ``session.bar_missed`` at the market's time each bar came):
        whether a bar came after a newer one of its series had closed — the venue or the feed
        was out — which the strategy is shown as history (``_late_shown``).

        This is the hot loop: about a microsecond a bar is the budget, so the end-of-timestamp
        snapshot is inlined and attributes are bound to locals.
        """
        if not self._started:
            self.start()
        strategy_on_bar = self._on_bar if late is None else self._late_shown(self._on_bar, late)
        # A higher bar ended only after a newer one of its timeframe closed (``_aggregate``).
        history = self._late_shown(self._on_bar, _always) if self._aggregators else None
        if history is not None and late is None:
            # Said at once: without a live judge no bar on time comes to say it (a backtest
            # would say every weekend's in one event at its end).
            history = self._said_at_once(history)
        broker_on_bar = self.broker.on_bar
        portfolio = self.portfolio
        marks = portfolio.marks
        open_positions = portfolio.open_positions
        base_symbols = self._base_symbols
        aggregators = self._aggregators
        intents = self.ctx.intents
        timeframe = self.config.base_timeframe_s
        chunk = self.config.equity_chunk
        ts_append = self._pending_ts.append
        equity_append = self._pending_equity.append
        exposure_append = self._pending_exposure.append
        tracer = self.tracer
        observers = tuple((name, observer.on_bar) for name, observer in self.hooks.bar_observers)
        risk_after_bar = self._risk_after_bar_needed
        retry = self._retry  # closes owed again at their symbol's bar: mostly empty
        started = 0
        current = None
        count = 0
        unjournaled = len(self._pending_ts)
        peak = self._peak_equity
        next_day = self._next_day
        for bar in bars:
            ts = bar[2]
            if ts != current:
                if current is not None:
                    close_ts = current + timeframe
                    if close_ts != self._sealed_ts:
                        # End of the previous timestamp: snapshot equity at its close.
                        equity = portfolio.cash + portfolio.accrued_total
                        exposure = 0.0
                        for held, position in open_positions.items():
                            value = position.quantity * marks[held]
                            equity += value
                            exposure += value if value > 0.0 else -value
                        ts_append(close_ts)
                        equity_append(equity)
                        exposure_append(exposure)
                        if equity > peak:
                            peak = self._peak_equity = equity
                        if close_ts >= next_day:
                            self._day_begins(close_ts, equity)
                            next_day = self._next_day
                        unjournaled += 1
                        if unjournaled >= chunk:
                            self._journal_equity()
                            unjournaled = 0
                    else:
                        # Taken at the close itself (``close_timestamp``), before the fills a
                        # venue reported since: those are the next close's. The locals follow.
                        peak, next_day = self._peak_equity, self._next_day
                        unjournaled = len(self._pending_ts)
                    if should_stop is not None and should_stop():
                        if close_ts != self._sealed_ts:
                            current = None  # snapshotted above: none at the end
                        break
                current = ts
            count += 1
            events = broker_on_bar(bar)
            if events:
                self._on_broker_events(events)
            symbol = bar[0]
            marks[symbol] = bar[6]
            self._now = ts + bar[1]
            if retry and symbol in retry:
                # After the bar's own events (a stop that filled leaves nothing to close), and
                # before the strategy, which then sees the close on its way.
                self._retry_close(symbol)
            if observers:
                self._observe(observers, bar)
            if tracer is not None:
                started = time.time_ns()
            # A try costs nothing in CPython 3.11 until something raises (zero-cost exceptions).
            try:
                if aggregators:
                    self._aggregate(bar, strategy_on_bar, history)
                elif symbol in base_symbols:
                    strategy_on_bar(bar)
            except Exception as error:
                self._bar_failed(error, bar)
            if intents:
                if warmup:
                    self.stats.warmup_intents += len(intents)
                    intents.clear()
                elif tracer is None:
                    self._process_intents(replay=True)
                else:
                    attributes = {"tradefleet.symbol": symbol, "tradefleet.bar_ts": ts}
                    with tracer.decision("bar", attributes, started):
                        tracer.signal(intents)
                        self._process_intents(replay=True)
            if risk_after_bar:
                # At once, not at the next bar: a lock must be journaled, and a flatten sent,
                # before a live bot waits an hour for its next bar (or is killed meanwhile).
                self._risk_after_bar()
        if current is not None:
            self._end_snapshot(current + timeframe)
        if self._late_closes:
            self._said_late(self._late_closes)  # a run that ended in a burst says it too
        self._journal_equity()
        self.stats.bars += count

    def _new_day(self, close_ts: int, equity: float) -> None:
        self._day_start_equity = equity
        self._next_day = (close_ts // 86400 + 1) * 86400

    def _day_begins(self, close_ts: int, equity: float) -> None:
        """A (UTC) day begins at ``close_ts``, its first close the bot handled, from ``equity``
        less what the fills a restart booked that the venue made on that day while the bot
        was down added, at the marks now: a stop filled after midnight while the bot was down
        is the new day's loss, not in its start — whether the bot came back before the day's
        first close or after it (those closes then history, no day begun at them)."""
        if self._ahead:
            day = close_ts // 86400
            marks = self.portfolio.marks
            equity -= sum(equity_made(f, marks) for f in self._ahead if f.ts // 86400 >= day)
        self._new_day(close_ts, equity)

    def close_timestamp(self, ts: int) -> None:
        """Every symbol's bar at ``ts`` is handled and the run is about to wait for the next
        (a paper or live run, ``session._marking_handled``): snapshot the equity at the close
        now, and journal it. Taken when the next timestamp began, the snapshot held the fills
        a venue reported in between (a stop-loss hit mid-bar): the day's start was taken after
        that loss, and a restart replaying the snapshots (``restores-equity``) forgot it."""
        close_ts = ts + self.config.base_timeframe_s
        if close_ts == self._sealed_ts:
            return
        raw, raw_exposure = self.portfolio.equity_and_exposure()
        # At the close, not with what a restart booked that the venue made after it while the
        # bot was down (the day's first live close after an outage): a later restart rebuilds
        # its day from this snapshot.
        equity, exposure = self._account_at(close_ts) if self._ahead else (raw, raw_exposure)
        self._journal_equity()  # the close in a chunk of its own (``_end_snapshot`` adds to it)
        self._pending_ts.append(close_ts)
        self._pending_equity.append(equity)
        self._pending_exposure.append(exposure)
        if equity > self._peak_equity:
            self._peak_equity = equity
        if close_ts >= self._next_day:
            self._day_begins(close_ts, raw)
        self._journal_equity()
        self._sealed_ts, self._sealed = close_ts, (equity, exposure)

    def _end_snapshot(self, close_ts: int) -> None:
        """The run's last snapshot, stamped at its last close, of the equity as the run ends.
        A close taken at the close itself (``close_timestamp``) keeps its point; what moved
        since (a fill between bars) is a second point of the same time, journaled in one chunk
        with it (a chunk replaces the one of its first time): the run ends at the account's
        equity, and a restart still starts the day where the run did."""
        equity, exposure = self.portfolio.equity_and_exposure()
        if equity > self._peak_equity:
            self._peak_equity = equity
        if close_ts != self._sealed_ts:
            self._pending_ts.append(close_ts)
            self._pending_equity.append(equity)
            self._pending_exposure.append(exposure)
            return
        if (equity, exposure) == self._sealed:
            return
        self._journal_equity()
        (sealed_equity, sealed_exposure), self._sealed_ts = self._sealed, -1
        self.journal.record_equity(
            array("q", (close_ts, close_ts)),
            _doubles([sealed_equity, equity]),
            _doubles([sealed_exposure, exposure]),
        )
        self._equity_ts.append(close_ts)
        self._equity.append(equity)
        self._exposure.append(exposure)

    def _journal_equity(self) -> None:
        """Journal the pending snapshots as one chunk, then move them into the run's arrays
        (a chunk the journal refused stays pending, to be written with the next)."""
        pending = self._pending_ts
        if not pending:
            return
        timestamps = array("q", pending)
        equity = _doubles(self._pending_equity)
        exposure = _doubles(self._pending_exposure)
        self.journal.record_equity(timestamps, equity, exposure)
        pending.clear()
        self._pending_equity.clear()
        self._pending_exposure.clear()
        self._equity_ts.extend(timestamps)
        self._equity.extend(equity)
        self._exposure.extend(exposure)

    def _aggregate(
        self,
        bar: Bar,
        deliver: Callable[[Bar], None],
        history: Callable[[Bar], None] | None = None,
    ) -> None:
        """Hand ``bar`` and the higher-timeframe bars it ends to ``deliver``. A higher bar
        whose last base bars never came (a gap; a market closed for the weekend: FX's Friday
        20:00 4h bucket holds two hours) is ended by the symbol's next base bar: when a newer
        bar of its timeframe had closed by then — on the bars' clock, the close of the bar
        that ended it — it goes to ``history`` (``_late_shown``), as a live bot shows a bar
        that came late (``session.bar_missed``): a backtest trades no bar its live bot drops."""
        # Each delivery has its own try (free until one raises): the error names the bar the
        # strategy failed on, a higher-timeframe one or the base bar.
        later = []
        for aggregator in self._aggregators.get(bar[0], ()):
            before, after = aggregator.add(bar)
            if before is not None:
                try:
                    if history is not None and before[2] + 2 * before[1] <= bar[2] + bar[1]:
                        history(before)
                    else:
                        deliver(before)
                except Exception as error:
                    self._bar_failed(error, before)
            if after is not None:
                later.append(after)
        if bar[0] in self._base_symbols:
            try:
                deliver(bar)
            except Exception as error:
                self._bar_failed(error, bar)
        for higher in later:
            try:
                deliver(higher)
            except Exception as error:
                self._bar_failed(error, higher)

    def finish(self, feed: FeedReport | None = None) -> RunResult:
        """Stop the strategy and return what the run produced (positions stay as they are)."""
        try:
            self.strategy.on_stop()
        except Exception as error:
            self._hook_failed(error, "on_stop", _utc(self._now))
        self._journal_equity()
        self.journal.flush()
        return RunResult(
            bot_name=self.config.bot_name,
            initial_capital=self.config.initial_capital,
            start_equity=(
                self.config.initial_capital if self._start_equity is None else self._start_equity
            ),
            currency=self.config.currency,
            timeframe_s=self.config.base_timeframe_s,
            equity_ts=self._equity_ts,
            equity=self._equity,
            exposure=self._exposure,
            trades=self.portfolio.trades[self._carried_trades :],
            fees=self.portfolio.fees_paid - self._carried_fees,
            bars=self.stats.bars,
            open_positions=[p for p in self.portfolio.positions.values() if p.quantity],
            risk_decisions=self.stats.risk_decisions,
            orders=self.stats.orders,
            fills=self.stats.fills,
            feed=feed,
            history_bars=self.stats.history_bars,
            risk_notes=list(self._risk_notes),
            risk_locks=self.state.locks(),
            vetoes=self.stats.vetoes,
            veto_reasons=self.stats.veto_reasons,
            rejections=self.stats.rejections,
            run_id=self.journal.run_id,
            journal_path=self.journal.path,
            cash_flows=self.portfolio.cash_flows - self._carried_cash_flows,
        )

    # -- orders ------------------------------------------------------------------------------

    def _next_order_id(self, symbol: str) -> str:
        if self._now != self._sequence_ts:
            self._sequence_ts = self._now
            self._sequence = 0
        # Orders of a risk plugin's account action carry their own prefix ("r"): they never
        # take an id a strategy's order of the same bar would have had.
        prefix = self._prefix + "r" if self._acting else self._prefix
        order_id = client_order_id(prefix, self._now, symbol, self._sequence)
        self._sequence += 1
        return order_id

    def _reducible(self, symbol: str, side: Side) -> float:
        # Most intents open or add: no position on the other side, nothing to look through.
        position = self.portfolio.open_positions.get(symbol)
        if position is None or position.quantity * side.sign >= 0.0:
            return 0.0
        return reducible(self.portfolio, self.book, symbol, side)

    def _risk_context(self, symbol: str) -> RiskContext:
        return self._snapshots.context(
            symbol, self._now, self._day_start_equity, self._peak_equity, self._quote, self._ahead
        )

    def _decided_mark(self, symbol: str) -> float | None:
        """The price an order of ``symbol`` is being decided at when it has none of its own:
        the broker's current one for a market entry decided between bars (``_quote_entry``),
        else the last close."""
        quote = self._quote
        if quote is not None and quote[0] == symbol:
            return quote[1]
        return self.portfolio.marks.get(symbol)

    def _quote_entry(self, intent: OrderIntent, order_id: str) -> OrderIntent | None:
        """Between bars a symbol's mark is its last close, up to a bar old, and a market
        entry fills at the market: one (not an exit, which sizes nothing on the price and is
        never refused) is sized and risk-checked at the broker's current price instead
        (``quotes-prices``), this order alone; equity and the bars' marks keep the close.
        Returns the intent to decide: ``intent`` itself, or only its closing part; None when it
        is refused whole. When the broker quotes prices but gave none usable
        (``risk_snapshot.quoted_mark``), what the order opens is refused, journaled: an order
        past the position goes as its closing part (``risk_driver.unpriced_cut``), reduce-only
        without its bracket, the shrink ``engine.price``'s; any other is refused whole. A
        reversal the gate stops (a halt, a lock: cut to its closing part; a pause: refused) is
        left to the gate, as at a bar, and asks no price. A live broker that quotes none: the
        decisions say the order was judged on the last close."""
        self._quote = None
        if intent.order_type is not OrderType.MARKET or intent.reduce_only:
            return intent
        symbol, side, quantity = intent.symbol, intent.side, intent.quantity
        left = 0.0
        if quantity is not None:
            left = self._reducible(symbol, side)
            if closes_only(quantity, left):  # the driver makes it reduce-only
                return intent
            if left > 0.0 and self.state.gate(intent) is not None:
                # Priced before the gate, an unpriced reversal was refused whole under a halt
                # or a lock, its closing part (an exit, sized on nothing) with it.
                return intent
        close = self.portfolio.marks.get(symbol)
        quoter = self._quoter
        if quoter is None:
            if self.config.mode == "live":
                last = f"{close:.10g} ({_utc(self._now)})" if close else "none yet"
                why = f"judged at {symbol}'s last close, {last}: the broker quotes no current price"
                self._decide("engine.price", intent, order_id, RiskDecision.approve(None, why))
            return intent
        try:
            quote: object = quoter.market_price(symbol, side)
        except Exception:  # a broker's fault is no price: the entry is refused, not misjudged
            log.exception("broker failed to quote %s", symbol)
            quote = None
        mark, reason, code = quoted_mark(symbol, side, quote, close)
        if mark is None:
            veto = RiskDecision.veto(reason, code)
            # The mark the driver would judge the order's stops at with no quote: the close.
            cut = unpriced_cut(veto, intent, left, close or 0.0)
            if cut is None:
                self._decide("engine.price", intent, order_id, veto)
                return None
            self._decide("engine.price", intent, order_id, cut)
            return closing_part(intent, cut)
        self._quote = (symbol, mark)
        self._decide("engine.price", intent, order_id, RiskDecision.approve(None, reason))
        return intent

    def send_queued(self) -> None:
        """Pass queued intents through the risk chain to the broker now (outside a bar)."""
        self._process_intents()

    def _process_intents(self, replay: bool = False) -> None:
        """Send the queued intents. ``replay``: they come from a bar, which an earlier run may
        have handled already (it crashed before recording the bar): an id it journaled is then
        that very order and is not sent again. Intents from signals and control calls are new
        whatever their time, and take the next free id instead."""
        intents = self.ctx.intents
        waiting = self._strategy_closes
        while intents:
            intent = intents.pop(0)
            held = waiting.get(intent.symbol) if waiting else None
            if held is not None:
                held.then.append(intent)  # after the close that waits (``_strategy_close``)
                continue
            self._process_intent(intent, replay)

    def _decide(
        self, plugin: str, intent: OrderIntent, order_id: str, decision: RiskDecision
    ) -> None:
        action = decision.action
        self.stats.risk_decisions[(plugin, action.value)] += 1
        if action is _VETO:
            self.last_veto = decision
            why = (plugin, decision.code or decision.reason)
            self.stats.vetoes[why] += 1
            self.stats.veto_reasons.setdefault(why, decision.reason)
        if self.listener is not None:
            self.listener.on_risk(plugin, intent, decision, order_id)
        if self.tracer is not None:
            self.tracer.risk(plugin, intent, decision)
        self.journal.record_risk(
            ts=self._now,
            plugin=plugin,
            symbol=intent.symbol,
            side=intent.side.value,
            decision=decision,
            quantity_in=intent.quantity,
            client_order_id=order_id,
        )

    def _process_intent(
        self, intent: OrderIntent, replay: bool = False, fixed_id: str | None = None
    ) -> None:
        # The order's decisions and the order itself are journaled in one transaction, which
        # commits before the broker sees the order (write-ahead). A batched journal (a
        # backtest's) commits in large batches anyway: no block to enter per order.
        if self.journal.batched:
            order = self._decide_order(intent, replay, fixed_id)
        else:
            with self.journal.grouped():
                order = self._decide_order(intent, replay, fixed_id)
                if self._state_keepers:
                    # What the chain's approval changed (pre-trade's entries of the day) goes
                    # with the order: a kill before the bar's end must not forget it.
                    self._journal_plugin_states()
        if order is not None:
            self._send(order)

    def _decide_order(
        self, intent: OrderIntent, replay: bool = False, fixed_id: str | None = None
    ) -> Order | None:
        """``fixed_id``: the order's id is derived from what it is for (a restart's close of a
        spent bracket's uncovered part, ``spent_close_id``), not the next free one: an earlier
        run that sent it already means it is not sent again."""
        if intent.symbol not in self._symbol_set:
            self.journal.record_event(
                self._now, "order_refused", f"{intent.symbol!r} is not one of the bot's symbols"
            )
            return None
        if fixed_id is not None:
            order_id = fixed_id
        else:
            order_id = self._next_order_id(intent.symbol)
            while not replay and (order_id in self.known_ids or order_id in self._vetoed):
                order_id = self._next_order_id(intent.symbol)
        if order_id in self.known_ids:
            # An earlier run sent this very order (the bot is handling a bar again after a
            # crash): its fate is in the journal and at the venue; sending it again could fill
            # it twice.
            self.stats.known_ids_skipped += 1
            self.journal.record_event(
                self._now,
                "order_known",
                f"{order_id}: already sent by an earlier run; not sent again",
                {"client_order_id": order_id},
            )
            return None
        if self._vetoed and self._vetoed.get(order_id) == (
            intent.symbol,
            intent.side.value,
            intent.quantity,
        ):
            # Vetoed by an earlier run on the bar handled again: decided and journaled once.
            # Only the same intent: the strategy may ask something else on it now (the venue
            # worked the outage: a close where an add was vetoed), which is decided.
            self.journal.record_event(
                self._now,
                "order_known",
                f"{order_id}: vetoed by an earlier run (its decision is journaled); not decided "
                "again",
                {"client_order_id": order_id, "vetoed": True},
            )
            return None
        # What the driver decides: the intent, or between bars only its closing part when the
        # broker cannot price the rest (``_quote_entry``); ``intent`` stays what was asked, for
        # the journal's ``bracket_dropped`` and the instrument's refusal.
        if self._between_bars:
            decided = self._quote_entry(intent, order_id)
            if decided is None:
                return None
        else:
            decided = intent
        order = self.driver.order_for(decided, order_id, self._now + self._between_bars)
        if order is None:
            return None
        if self._instrument_limits.get(order.symbol, True):
            order = self._fit_instrument(intent, order)
            if order is None:
                return None
        self.stats.orders += 1
        self.last_order_id = order.client_order_id
        self.journal.record_order(
            order, OrderStatus.PENDING, self._now, "", self._decided_mark(order.symbol)
        )
        if order.reduce_only and not intent.reduce_only:
            # Made an exit by the driver: one the chain shrank to its closing part went
            # without its stop-loss and take-profit (``drops_bracket``), which is said.
            dropped = bracket_dropped(intent, order)
            if dropped is not None:
                self._state("bracket_dropped", dropped, {"client_order_id": order_id})
        if self.listener is not None:
            self.listener.on_order(order, OrderUpdate(order.client_order_id, _PENDING, self._now))
        return order

    def _fit_instrument(self, intent: OrderIntent, order: Order) -> Order | None:
        """Prices on the instrument's tick, and the venue's limits checked before the order
        leaves: a venue refuses an off-tick price or a sub-minimum notional outright, after the
        risk chain approved the order; here the refusal is the engine's, journaled, naming the
        limit (``instruments.py``)."""
        instrument = self.instrument(order.symbol)
        limited = bool(
            instrument.tick_size
            or instrument.min_notional
            or instrument.min_quantity  # a bracket's children (``bracket_problem``)
            or instrument.max_quantity != float("inf")
        )
        self._instrument_limits[order.symbol] = limited
        if not limited:
            return order
        tick = instrument.tick_size
        if tick and (order.price or order.stop_loss or order.take_profit):
            side = order.side
            exit_side = side.opposite
            order = order._replace(
                price=round_price(order.price, tick, side, order.order_type)
                if order.price
                else order.price,
                # A stop-loss is a stop on the closing side, a take-profit a limit there.
                stop_loss=round_price(order.stop_loss, tick, exit_side, OrderType.STOP)
                if order.stop_loss
                else order.stop_loss,
                take_profit=round_price(order.take_profit, tick, exit_side, OrderType.LIMIT)
                if order.take_profit
                else order.take_profit,
            )
        price = order.price if order.price else self._decided_mark(order.symbol)
        exempt = self._reduce_only_exempt(order.symbol)
        problem = limit_problem(instrument, order.quantity, price, order.reduce_only and exempt)
        if problem is None and not order.reduce_only and (order.stop_loss or order.take_profit):
            # An entry's children must pass too: refused at the venue once the entry filled,
            # they would leave the position without its stop. An exit's are never checked: it
            # is never refused (its children close nothing: the position is closed).
            problem = bracket_problem(
                instrument,
                order.side,
                order.quantity,
                order.stop_loss,
                order.take_profit,
                self._coin_fee_rate(order.symbol),
                exempt,
            )
        if problem is None:
            return order
        self._decide(
            "engine.instrument",
            intent,
            order.client_order_id,
            RiskDecision.veto(problem[1], problem[0].value),
        )
        return None

    def _reduce_only_exempt(self, symbol: str) -> bool:
        """Whether the broker's venue takes a reduce-only order of ``symbol`` below its
        minimum notional (``ReduceOnlyMinimums``: the ccxt broker on Binance USDⓈ-M and
        Bybit); False for any other broker."""
        broker = self.broker
        return isinstance(broker, ReduceOnlyMinimums) and broker.reduce_only_below_min_notional(
            symbol
        )

    def _coin_fee_rate(self, symbol: str) -> float:
        """The share of a buy of ``symbol`` the venue keeps in the coin bought, as the broker
        says (``CoinFees``: the ccxt broker on Binance spot); 0 for any other broker."""
        broker = self.broker
        return broker.coin_fee_rate(symbol) if isinstance(broker, CoinFees) else 0.0

    def pump(self) -> int:
        """Apply the events a venue broker has reported since the last call (engine thread),
        then let risk plugins act on them at once: a fill that breaks a limit locks or
        flattens now, not at the next bar. Returns how many events were applied."""
        if self._drain is None:
            return 0
        events = self._drain()
        if events:
            self._on_broker_events(events)
            if self._risk_after_bar_needed:
                self._risk_after_bar()
        return len(events)

    def _send(self, order: Order) -> None:
        """Hand a journaled (pending) order to the broker and journal its answer."""
        self.book.add(order)
        if self.tracer is None:
            self._on_order_update(self.broker.submit(order))
            return
        with self.tracer.order(order):
            self._on_order_update(self.broker.submit(order))

    def _on_order_update(self, update: OrderUpdate) -> None:
        status = update.status
        if status is _PENDING:
            return  # sent; the venue's answer follows as an event (the journal says pending)
        if (
            self._stop_moves
            and update.client_order_id in self._stop_moves
            and self._stop_move_answered(update)
        ):
            return
        if self._cuts_asked and update.client_order_id in self._cuts_asked:
            cut = self._cut_answered(update)
            if cut is None:
                return
            update = cut
        working = self.book.get(update.client_order_id)
        if working is None:
            return
        if self._child_sizes is not None:
            self._venue_size(working, update)
        if self._venue_price(working.order, update):
            return
        if self.listener is not None:
            self.listener.on_order(working.order, update)
        self.journal.update_order(
            update.client_order_id,
            status,
            update.ts or self._now,
            update.reason,
            update.venue_order_id,
        )
        if status in _FINAL:
            if self.tracer is not None:
                self.tracer.order_ended(update)
            ended = update.ts or self._now
            placed, resized = self.book.end(update.client_order_id, update.filled_quantity, ended)
            self._journal_children(placed, resized, ended)
            if status is OrderStatus.REJECTED:
                self.stats.rejected += 1
                self.stats.rejections[update.reason or update.code.value] += 1
                self.journal.record_event(
                    update.ts or self._now,
                    "order_rejected",
                    f"{update.client_order_id}: {update.reason}",
                )
                order = working.order
                if (
                    order.tag == STOP_LOSS_TAG
                    and order.parent_id is not None
                    and update.code is not ReasonCode.DUPLICATE_CLIENT_ID  # the venue has it
                ):
                    self._exit_unprotected(order, update.reason, update.code)
                elif (
                    update.code is ReasonCode.REDUCE_ONLY
                    and self._closes_asked
                    and order.reduce_only
                    and order.parent_id is None
                    and self._closes_asked.get(order.symbol) == order.tag
                ):
                    self._close_refused_larger(order)
                elif self._closes_asked.get(order.symbol) == order.tag and order.reduce_only:
                    del self._closes_asked[order.symbol]  # refused for good: no longer asked
            elif status is OrderStatus.CANCELLED:
                order = working.order
                if (
                    order.tag == STOP_LOSS_TAG
                    and order.parent_id is not None
                    and order.client_order_id not in self._cancels_asked
                ):
                    self._stop_cancelled_outside(order, update.reason)
            if self._flatten_in_force is not None or self._closers:
                self._flatten_order_ended(working.order, update)
            if self._strategy_closes:
                self._strategy_close_ended(working.order.symbol)
            self._cancels_asked.discard(update.client_order_id)
            if self._oco_ending:
                self._oco_ending.discard(update.client_order_id)
            try:
                self.strategy.on_order_update(update)
            except Exception as error:
                where = f"the {status.value} update of order {update.client_order_id}"
                where += f" at {_utc(update.ts or self._now)}"
                self._hook_failed(error, "on_order_update", where)

    def _close_refused_larger(self, close: Order) -> None:
        """The venue refused ``close``, the strategy's close, as reduce-only: larger than the
        position it holds (Binance USDⓈ-M -2022), where something reduced the position while
        the close was on its way — a take-profit that executed a part. The strategy asked for
        the position closed: what is held now is closed at market, once. Asked again at each
        fill of the symbol until the bot books the smaller position (the fill that shrank it
        may come after the refusal); dropped when flat. One the bot booked at the close's size
        is no such case (the venue holds none: a stop's fill not heard yet?) and waits."""
        symbol = close.symbol
        held = self.portfolio.position(symbol).quantity
        if held * close.side.sign >= -_FLAT:
            self._closes_refused.pop(symbol, None)
            return  # flat, or the other way: nothing of the close is left to do
        quantity = abs(held) - self._closing_on_way(symbol)
        if quantity > close.quantity - _FLAT * max(close.quantity, 1.0):
            self._closes_refused[symbol] = close
            return
        self._closes_refused.pop(symbol, None)
        if quantity <= _FLAT:
            return
        with self.between_bars():
            close_id = self._send_reduce_only(symbol, close.side, quantity, close.tag)
            how = (
                f"closing the {quantity:.10g} held at market ({close_id})"
                if close_id
                else "its close of what is held was refused (its decision is journaled)"
            )
            message = (
                f"{close.client_order_id}: the venue refused the strategy's close of "
                f"{price_text(close.quantity)} {symbol} as larger than the position, which "
                f"something else reduced while it was on its way; {how}"
            )
            log.warning("%s: %s", self.config.bot_name, message)
            self._state(
                "close_resent",
                message,
                {"client_order_id": close.client_order_id, "symbol": symbol, "sent": close_id},
            )

    def _venue_price(self, order: Order, update: OrderUpdate) -> bool:
        """An open order's price as the venue reports it unasked — not an amend's answer
        ("amended": ``_stop_move_answered`` takes a stop move's): the MT5 broker's poll
        finding a move whose answer was lost applied after all, or one made at the
        terminal. Booked and journaled at it (a restart re-arms it) when it is more than
        half a tick from the book; nothing when it is not. True: ``update`` was one."""
        price = update.price
        if (
            price is None
            or update.status is not OrderStatus.OPEN
            or update.code is not ReasonCode.NONE
            or update.reason == "amended"
            or not 0.0 < price < float("inf")
        ):
            return False
        was = order.price
        if was is not None and abs(price - was) <= self.instrument(order.symbol).tick_size / 2:
            return True
        said = f"{price_text(was)} -> " if was is not None else ""
        reason = f"price {said}{price_text(price)} at the venue: {update.reason}"
        self.journal.reprice_order(
            order.client_order_id,
            price,
            update.ts or self._now,
            reason,
            self._working_status(order.client_order_id),
        )
        moved = self.book.reprice(order.client_order_id, price)
        log.warning("%s: %s: %s", self.config.bot_name, order.client_order_id, reason)
        if self.listener is not None and moved is not None:
            self.listener.on_order(moved, update)
        return True

    def _venue_size(self, working: WorkingOrder, update: OrderUpdate) -> None:
        """A reduce-only order's size as the venue reports it unasked (``TicketChildSizes``).
        A bracket child: an MT5 hedging entry whose tickets no longer all hold the child's
        level — a person removed or moved one ticket's line —, or a ticket closed under a
        child no fill cut. A reduce-only exit that is no child: an MT5 netting account's
        pending exit a person closed part of the position under, which the broker cut by
        re-placing it for what the position still holds (MT5 cannot change a pending order's
        volume; left whole, it would open the other side). The order closes what the broker
        says (``child_held``), booked and journaled (a restart adopts it so), said as a
        warning with the broker's words (which ticket, changed at the terminal). A child grows
        back (the line set again) only once its entry is done: while the entry works its
        fills grow it, and one not booked yet would be counted twice. An exit that is no child
        only ever shrinks: nothing grows it, so a size above what is left is ignored. Then
        ``_venue_price`` takes the price the same update carries."""
        order = working.order
        sizes = self._child_sizes
        if (
            sizes is None
            or not order.reduce_only
            or update.status is not OrderStatus.OPEN
            or update.code is not ReasonCode.NONE
            or update.reason == "amended"
        ):
            return
        held = sizes.child_held(order.client_order_id)
        if held is None or not 0.0 < held < float("inf"):
            return
        left = order.quantity - working.filled
        if abs(held - left) <= _FLAT * max(left, 1.0):
            return
        if held > left and (order.parent_id is None or order.parent_id in self.book):
            return
        resized = self.book.shrink(order.client_order_id, held)
        if resized is None:
            return
        child, previous = resized
        reason = (
            f"resized from {price_text(previous)} to {price_text(child.quantity)} at the venue: "
            f"{update.reason}"
        )
        self.journal.resize_order(
            order.client_order_id, child.quantity, update.ts or self._now, reason
        )
        log.warning("%s: %s: %s", self.config.bot_name, order.client_order_id, reason)
        if self.listener is not None:
            self.listener.on_order(child, update)

    def _stops_cover(self, stop: Order, held: float) -> bool:
        """Whether the working bracket stop-losses of ``stop``'s symbol and side but ``stop``
        close all of ``held``."""
        others = self.book.children_left(
            stop.symbol, lambda child: child.client_order_id == stop.client_order_id
        )
        left = sum(c.left for c in others if c.tag == STOP_LOSS_TAG and c.side is stop.side)
        return left >= abs(held) - _FLAT * max(abs(held), 1.0)

    def _stop_cancelled_outside(self, stop: Order, why: str) -> None:
        """A bracket's stop-loss ended cancelled though the bot never asked (a person at the
        venue, a venue's own clean-up) while the position it protected is open: say so loudly
        — journaled, logged, on the event stream. The bot does not place it again (an id is
        sent once, and a person may be managing that stop by hand) nor close the position:
        the person who cancelled it decides."""
        held = self.portfolio.position(stop.symbol).quantity
        if not (held > 0.0 if stop.side is Side.SELL else held < 0.0):
            return  # nothing left to protect on that side (its sibling filled, say)
        oco = bool(self._oco_ending) and stop.client_order_id in self._oco_ending
        if oco and self._stops_cover(stop, held):
            # Its take-profit filled whole: one-cancels-other; what remains held is another
            # entry's (a pyramid), under that entry's own stop. Not when that does not cover
            # it (the rest of its own entry filling after the take-profit): then it is bare.
            return
        said = why or "no reason given"
        # A close of the position on its way (its fill not heard yet): a venue ends a
        # reduce-only stop that has nothing left to reduce — the position may be closed
        # already. Said as it is, not as a position running bare.
        closing = [
            order.client_order_id
            for order in self.book.orders(stop.symbol)
            if order.reduce_only and not _guards(order) and order.side is stop.side
        ]
        if oco:
            message = (
                f"{stop.client_order_id}: the stop-loss ended with its take-profit's fill "
                f"(one-cancels-other); the {held:.10g} {stop.symbol} position left runs "
                "without a stop of its own — the bot does not place one"
            )
        elif closing:
            message = (
                f"{stop.client_order_id}: the stop-loss ended at the venue without the bot "
                f"asking ({said}) while the position's close {', '.join(closing)} is on its "
                f"way (a venue ends a reduce-only stop with nothing left to reduce); if that "
                f"close does not fill, the {held:.10g} {stop.symbol} position runs without a "
                "stop — the bot does not place it again"
            )
        else:
            message = (
                f"{stop.client_order_id}: the stop-loss was cancelled outside the bot ({said}); "
                f"the {held:.10g} {stop.symbol} position runs without it — the bot does not "
                "place it again"
            )
        log.warning("%s: %s", self.config.bot_name, message)
        self._state(
            "stop_cancelled",
            message,
            {
                "client_order_id": stop.client_order_id,
                "reason": why,
                "position": held,
                "closing": closing,
            },
        )

    def _changed_outside(self, fill: Fill, held: float) -> None:
        """The venue booked a change to the bot's position that no order of the bot made (a
        person closing it by hand, another program): the broker reports it as a fill tagged
        ``OUTSIDE_TAG`` so position, P&L and equity stay the venue's. Said loudly, as a stop
        cancelled outside the bot is."""
        what = "closed" if abs(held) < 1e-12 else "reduced"
        liquidated = fill.reason == LIQUIDATION_TAG
        by = (
            "by the venue's liquidation (equity at the maintenance margin)"
            if liquidated
            else ("outside the bot")
        )
        message = (
            f"{fill.symbol}: position {what} {by}: venue execution {fill.fill_id}, "
            f"{fill.side} {fill.quantity:.10g} at {fill.price:.10g} (fee {fill.fee:.10g}); "
            f"booked, the bot now holds {held:.10g}"
        )
        log.warning("%s: %s", self.config.bot_name, message)
        self._state(
            "position_liquidated" if liquidated else "position_changed_outside",
            message,
            {
                "client_order_id": fill.client_order_id,
                "fill_id": fill.fill_id,
                "symbol": fill.symbol,
                "side": str(fill.side),
                "quantity": fill.quantity,
                "price": fill.price,
                "fee": fill.fee,
                "position": held,
            },
        )

    def _exit_unprotected(self, stop: Order, why: str, code: ReasonCode) -> None:
        """The venue refused a bracket's stop-loss (its price already crossed, say), or the
        broker did not send it (below the venue's minimum), while the position it was to
        protect is open: close that position at market now, reduce-only, and cancel the rest
        of the bracket. Left alone, the position would run without the stop the strategy
        asked for until someone noticed. A stop that protected the whole position is closed
        as a flatten closes (``_STOP_REFUSED``): a close refused in turn is said, sent again
        or, refused for good, left stuck for a person (``closes_stuck``) — never silent."""
        held = self.portfolio.position(stop.symbol).quantity
        if not (held > 0.0 if stop.side is Side.SELL else held < 0.0):
            return  # nothing left to protect on that side
        quantity = min(stop.quantity, abs(held))
        if stop.oco_group is not None:
            for working in self.book:
                if working.order.oco_group == stop.oco_group:
                    self.cancel(working.order.client_order_id)
        # Below a minimum the venue never saw it: the broker checks its rules before sending.
        refused = (
            "the stop-loss is below the venue's minimum, not sent"
            if code in (ReasonCode.BELOW_MIN_NOTIONAL, ReasonCode.BELOW_MIN_QUANTITY)
            else "the venue refused the stop-loss"
        )
        self._state(
            "stop_refused",
            f"{stop.client_order_id}: {refused} ({why}); closing {quantity:.10g} {stop.symbol} "
            "at market",
            {
                "client_order_id": stop.client_order_id,
                "reason": why,
                "code": code.value,
                "quantity": quantity,
            },
        )
        if quantity >= abs(held) - _FLAT and self._closer_of(stop.symbol) is None:
            # Beside an order that would reduce the position too (a strategy's resting sell),
            # the close waits for its cancel: both could fill.
            self._close_or_wait(stop.symbol, _STOP_REFUSED)
            return
        if stop.symbol in self._closes_waiting:
            return  # a flatten's close waits to close all that is held when it goes
        on_way = self._closing_on_way(stop.symbol)
        # A flatten's closes on their way cover part of the position (or all): only the rest
        # of what the stop protected is closed beside them, never a second close of the same.
        quantity = min(quantity, abs(held) - on_way)
        if quantity <= _FLAT:
            return
        # Part of a position (another bracket's stop holds the rest), or a flatten closes it
        # already: a plain close of the part, as before.
        self._process_intent(
            OrderIntent(stop.symbol, stop.side, quantity, reduce_only=True, tag=STOP_REFUSED_TAG)
        )

    def _bracket_after_fill(self, order: Order, fill: Fill, protected: bool) -> None:
        """A bracket's trade is over once one of its children fills: an entry still working
        (a limit resting part-filled) is cancelled — the rest would open a position its spent
        bracket could no longer protect (a child's id is sent once). A fill of that entry
        that comes anyway (before the cancel landed) is closed at market, reduce-only."""
        parent_id = order.parent_id
        if parent_id is not None:
            if parent_id in self.book:
                self._state(
                    "bracket_entry_cancelled",
                    f"{parent_id}: its {order.tag or 'child'} filled while it still worked; "
                    "the rest of the entry is cancelled",
                    {"client_order_id": parent_id, "child": order.client_order_id},
                )
                self.cancel(parent_id)
            return
        if protected or not (order.stop_loss or order.take_profit):
            return
        if not self.book.bracket_spent(order):
            return
        self._state(
            "bracket_spent",
            f"{order.client_order_id}: {fill.quantity:.10g} filled after its bracket ended; "
            f"closing it at market",
            {"client_order_id": order.client_order_id, "quantity": fill.quantity},
        )
        self._process_intent(
            OrderIntent(
                fill.symbol,
                fill.side.opposite,
                fill.quantity,
                reduce_only=True,
                tag=BRACKET_SPENT_TAG,
            )
        )

    def _working_status(self, client_order_id: str) -> OrderStatus:
        """A working order's status as its journal keeps it: filled in part, or open."""
        working = self.book.get(client_order_id)
        filled = working is not None and working.filled > 0.0
        return OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN

    def _cap_children(
        self,
        fill: Fill,
        order: Order | None,
        reduced: tuple[str, ...] | None,
        status: OrderStatus = OrderStatus.FILLED,
    ) -> None:
        """``fill`` made ``fill.symbol``'s position smaller (a plain reduce, a close, a person
        at the venue, a child of another bracket): the bracket children working for it are cut
        so that they close no more than the position holds (``children_over_position``: each
        role apart, oldest first). Without it, two entries' children (a netting account's
        pyramid) would count 0.2 of stops for a 0.1 position — what a risk plugin reads as the
        risk at the stop. A cut child is resized at the venue (``amend``; its journal row says
        which fill cut it); one left nothing to close is cancelled. The filled child's own
        bracket is left out once the fill completed it (its sibling is being cancelled by the
        venue or the broker: one-cancels-other), and so are children whose cancel is already
        asked. A take-profit filled in part (``status``) does not end its stop-loss: one that
        executes 0.004 of 0.01 (the venue expiring the rest, or resting it) leaves 0.006
        held, which the stop-loss still protects, cut to it — but on spot, where the venue's
        one-cancels-other list ends the other leg at a leg's first part (``_keeps_guards``).
        A stop-loss filled in part ends its take-profit as before: that costs no protection.
        Where children follow the venue position their entry opened (``TicketBrackets``: an
        MT5 hedging account) only the children of the entries whose positions the fill reduced
        are cut, by what it closed (``children_cut_by``): the oldest entry's would take the
        stops off a ticket still open (``reduced``: the broker's ``entries_reduced`` of
        ``fill``)."""
        spent = (
            order.oco_group
            if order is not None
            and order.parent_id is not None
            and not (
                status is not OrderStatus.FILLED
                and order.tag == TAKE_PROFIT_TAG
                and self._keeps_guards(fill.symbol)
            )
            else None
        )
        if spent is not None and status is OrderStatus.FILLED:
            # Filled whole: its siblings end one-cancels-other (the venue's or the broker's
            # cancel). Not one filled in part: a spot OCO list ending the stop then leaves the
            # rest bare, which is said.
            self._oco_ending.update(
                other.client_order_id
                for other in self.book.orders(fill.symbol)
                if other.oco_group == spent and other.client_order_id != fill.client_order_id
            )
        asked = self._cancels_asked
        children = self.book.children_left(
            fill.symbol,
            lambda child: (
                child.client_order_id in asked
                or (spent is not None and child.oco_group == spent)
                or (reduced is not None and child.parent_id not in reduced)
            ),
        )
        if not children:
            return
        if order is not None and order.oco_group is not None and spent is None:
            # A take-profit filled in part: its own stop-loss is cut first, not the oldest
            # entry's — its own goes when the rest of it fills, and the other entry's stop
            # must then still cover what that entry holds (a pyramid).
            own = f"{order.oco_group}-"
            children.sort(key=lambda child: not child.client_order_id.startswith(own))
        held = self.portfolio.position(fill.symbol).quantity
        step = self.instrument(fill.symbol).lot_step
        cuts = (
            children_over_position(held, children, step)
            if reduced is None
            else children_cut_by(fill.side, fill.quantity, children, step)
        )
        by = (
            f"fill {fill.fill_id} ({fill.side} {price_text(fill.quantity)} {fill.symbol}, order "
            f"{fill.client_order_id}) left the position at {price_text(held)}"
        )
        for child_id, left in cuts:
            self._cut_child(child_id, left, by, fill.ts)

    def _close_past_flat(self, order: Order, fill: Fill, held: float) -> None:
        """``fill`` of ``order``, reduce-only, took the position past flat (``held`` now): the
        venue let it go, checking reduce-only as an order is placed, not as it fills — a
        strategy's close the venue held while the position's stop-loss, kept working until
        the close fills, filled first; or that stop-loss filling after the close, before its
        cancel landed. No order of the bot asked for what it opened: that part is closed at
        market, reduce-only (``PAST_FLAT_TAG``), and said (``reduce_only_past_flat``). Under
        a flatten its own rule does this (``_close_late_entry``); a strategy's close that
        waits closes what is held when its wait ends."""
        # A guard of a position since reversed (on the fill's side before it) opened all of it.
        quantity = _opened_by(fill, held)
        if quantity <= _FLAT:
            return
        with self.between_bars():
            self._send_past_flat_close(
                order.client_order_id,
                fill.symbol,
                fill.side.opposite,
                quantity,
                f"went {quantity:.10g} {fill.symbol} past flat ({fill.side} {fill.quantity:.10g}: "
                "the venue did not hold it to reduce-only)",
            )

    def _send_past_flat_close(
        self, order_id: str, symbol: str, side: Side, quantity: float, what: str, **data: Any
    ) -> str:
        """Close ``quantity`` of ``symbol`` that reduce-only ``order_id`` took past flat (``what``
        it did) at market, reduce-only (``PAST_FLAT_TAG``), and say it
        (``reduce_only_past_flat``, with ``data``). The close's id; empty when refused."""
        close_id = self._send_reduce_only(symbol, side, quantity, PAST_FLAT_TAG)
        how = (
            f"closing it at market ({close_id})"
            if close_id
            else "its close was refused (the decision is journaled): a person must close it"
        )
        self._state(
            "reduce_only_past_flat",
            f"{order_id} (reduce-only) {what}; {how}",
            {"client_order_id": order_id, "symbol": symbol, "quantity": quantity, **data},
        )
        return close_id

    def _cut_child(self, child_id: str, left: float, by: str, ts: int) -> None:
        """Cut one bracket child to ``left`` still to close (``_cap_children``); ``by``: what
        made the position smaller, journaled with the cut."""
        if left <= 0.0:
            working = self.book.get(child_id)
            self._cuts_asked[child_id] = f"nothing left to close: {by}"
            self.cancel(child_id)
            if working is not None and working.order.parent_id is not None:
                self._end_entry_of_cut(working.order, by)
            return
        resized = self.book.shrink(child_id, left)
        if resized is None:
            return
        child, previous = resized
        self.journal.resize_order(
            child_id,
            child.quantity,
            ts,
            f"resized from {price_text(previous)} to {price_text(child.quantity)}: {by}",
        )
        if isinstance(self.broker, VenueExecution):
            self._cuts_asked[child_id] = ""
            # A broker sizing the children itself is told the cut, not a size: it may have
            # seen more of the entry fill than the engine had, and grows from there.
            cutter = self.brackets if isinstance(self.brackets, ChildCutter) else None
            update = (
                cutter.cut_child(child_id, child.quantity, previous - child.quantity)
                if cutter is not None
                else self.broker.amend(child_id, child.quantity, None)
            )
            if update is not None:  # a simulator answers at once; a venue, as an event
                self._on_order_update(update._replace(ts=max(update.ts, self._now)))

    def _end_entry_of_cut(self, child: Order, by: str, ended: str = "was cut to nothing") -> None:
        """``child`` was cut to nothing while its entry may still work (a limit resting part-
        filled): the rest of the entry is cancelled and its bracket spent. The strategy asked
        for the entry and its stop as one: a child's id is sent once, so whatever of the entry
        filled from now on would run with no stop, which nothing would say. A fill that comes
        before the cancel lands is closed at market (``_bracket_after_fill``), as after a
        child's fill. A strategy that wants the position again sends a new entry, with a stop
        of its own."""
        entry_id = child.parent_id
        if entry_id is None or entry_id not in self.book or entry_id in self._cancels_asked:
            return
        self.book.spend(entry_id)
        self._state(
            "bracket_entry_cancelled",
            f"{entry_id}: its {child.tag or 'child'} {child.client_order_id} {ended} while it "
            f"still worked ({by}); the rest of the entry is cancelled: what it filled from now "
            "on would have no stop",
            {"client_order_id": entry_id, "child": child.client_order_id},
        )
        self.cancel(entry_id)

    def _cut_answered(self, update: OrderUpdate) -> OrderUpdate | None:
        """The broker's answer to a cut (``_cut_child``): a cancel's end journaled with why
        the bot asked for it; a resize's plain "amended" nothing more (the resize is in the
        journal already). None: nothing left to do with ``update``. A resize the venue
        refused is journaled as it came, the book keeping the cut: a reduce-only child closes
        no more than the position at the venue either."""
        order_id = update.client_order_id
        why = self._cuts_asked[order_id]
        if why:
            if update.status is OrderStatus.OPEN:
                return update  # an ack on its way before the cancel's answer
            del self._cuts_asked[order_id]
            if update.status is OrderStatus.CANCELLED:
                said = f" ({update.reason})" if update.reason else ""
                return update._replace(reason=why + said)
            return update
        del self._cuts_asked[order_id]
        if update.status is OrderStatus.OPEN and update.code is ReasonCode.NONE:
            return None
        return update

    def _child_placeable(self, child: Order) -> bool:
        """Whether the venue takes ``child`` (over its minimum quantity and notional, on the
        lot step): a bracket child sized on an entry's first part below them waits for more of
        the entry, as the venue brokers' do. A child is reduce-only: where the venue takes
        those below its minimum notional (``ReduceOnlyMinimums``) only its quantity counts —
        the rule the broker places its own children by (``limit_problem``), so the book never
        lacks a child working at the venue, nor holds one the broker waits with. Where the
        broker places a bracket's children only together (``PairedChildren``: one OCO list on
        Binance spot) neither is made while either waits, as the broker waits with both."""
        if not self._child_fits(child):
            return False
        entry = self.book.get(child.parent_id) if child.parent_id is not None else None
        broker = self.broker
        if entry is None or not (
            isinstance(broker, PairedChildren)
            and broker.children_placed_together(child.symbol, child.side)
        ):
            return True
        pair = bracket_children(entry.order, child.quantity, child.created_ts)
        if any(sibling.client_order_id in self.book for sibling in pair):
            return True  # one works already: not a new pair (placed one by one at the venue)
        return all(self._child_fits(sibling) for sibling in pair)

    def _child_fits(self, child: Order) -> bool:
        """``_child_placeable`` for ``child`` alone: over the venue's minimums."""
        instrument = self.instrument(child.symbol)
        quantity = round_quantity(child.quantity, instrument.lot_step)
        exempt = child.reduce_only and self._reduce_only_exempt(child.symbol)
        return limit_problem(instrument, quantity, child.price, exempt) is None

    def _journal_children(
        self,
        placed: Sequence[Order],
        resized: Sequence[Resized],
        ts: int,
        status: OrderStatus = OrderStatus.OPEN,
        reason: str = "",
    ) -> None:
        """Bracket children the broker places (or resizes) at the venue as their entry fills;
        a resize keeps what the child was in its log."""
        listener = self.listener
        for child in placed:
            self.journal.record_order(child, status, ts, reason)
            if listener is not None:
                listener.on_order(child, OrderUpdate(child.client_order_id, status, ts, reason))
        for child, previous in resized:
            self.journal.resize_order(
                child.client_order_id,
                child.quantity,
                ts,
                f"resized from {previous:.10g} to {child.quantity:.10g}: what of its entry filled",
            )

    def _on_broker_events(self, events: Sequence[Fill | OrderUpdate | CashFlow | Accrual]) -> None:
        for event in events:
            if isinstance(event, Fill):
                self._on_fill(event)
            elif isinstance(event, OrderUpdate):
                self._on_order_update(event)
            elif isinstance(event, Accrual):
                self._on_accrual(event)
            else:
                self._on_cash_flow(event)

    def _on_accrual(self, accrual: Accrual) -> None:
        """The venue's running total accrued on a position (an MT5 swap): a mark that equity
        counts, never booked or journaled (``cash_flows.accrual_problem``, ``Portfolio``). One
        it cannot read is said once per symbol, naming the field, and left out: never a crash
        of the engine's thread, never a guess."""
        problem = accrual_problem(accrual, self._symbols, self.config.currency)
        if not problem:
            self.portfolio.set_accrual(accrual.symbol, float(accrual.amount))
            return
        said = str(accrual.symbol)
        if said not in self._accruals_refused:
            self._accruals_refused.add(said)
            self._state(
                "accrual_refused",
                f"a {accrual.kind} accrued on a position, reported by the broker, is not in "
                f"the bot's equity: {problem}",
                {"symbol": said, "problem": problem},
            )

    def _on_cash_flow(self, flow: CashFlow) -> bool:
        """Book a payment the venue made outside fills (funding) into cash, once by its id;
        journaled, counted and told. Returns whether it was new."""
        if flow.flow_id in self._flow_ids:
            return False
        problem = cash_flow_problem(flow, self._symbols)
        if problem:
            # A broker's answer the bot cannot book is said, naming the field, and kept out of
            # the account: never a crash of the engine's thread, never a guess.
            self._state(
                "cash_flow_refused",
                f"a {flow.kind} payment reported by the broker was not booked: {problem}",
                {"flow_id": str(flow.flow_id), "problem": problem},
            )
            return False
        self._flow_ids.add(flow.flow_id)
        booked = books_in(flow, self.config.currency)
        if booked:
            self.portfolio.book_cash_flow(flow.amount, flow.symbol)
        self.journal.record_cash_flow(flow, booked)
        if not booked:
            self._state(
                "cash_flow_unbooked",
                f"{flow.kind} of {flow.amount:+,.8g} {flow.currency} for {flow.symbol} (venue id "
                f"{flow.flow_id}) is not in the bot's cash: it books in {self.config.currency}, "
                f"so its equity differs from the venue's by this payment",
                {"flow_id": flow.flow_id, "currency": flow.currency, "amount": flow.amount},
            )
        if self.listener is not None:
            self.listener.on_cash_flow(flow, booked)
        return True

    def book_missed_cash_flows(self, flows: Sequence[CashFlow]) -> str:
        """After a restart's reconciliation: book the venue's payments made while the bot was
        down (those already journaled are skipped by id). Returns a summary ('' for none)."""
        booked = [*self._flows_caught_up, *(flow for flow in flows if self._on_cash_flow(flow))]
        self._flows_caught_up = []
        if not booked:
            return ""
        total = sum(flow.amount for flow in booked if books_in(flow, self.config.currency))
        summary = (
            f"{len(booked)} {booked[0].kind} payment(s) made while the bot was down booked: "
            f"{total:+,.2f} {self.config.currency}"
        )
        self._state("cash_flows_caught_up", summary, {"count": len(booked), "total": total})
        return summary

    def _replay(self, state: CarriedState) -> list[CashFlow]:
        """Earlier runs' fills and payments into the account (before ``_carry``), in the order
        they happened: each payment goes to the trade that held its position then. Returns
        the payments booked into cash."""
        flows = sorted(state.cash_flows, key=lambda flow: flow.ts)
        booked: list[CashFlow] = []
        done = 0
        for fill in state.fills:
            # A payment stamped with its fill's second goes first: the venue settled it on the
            # position before the fill (the paper broker's funding at a bar's open, an MT5
            # swap booked with the deal that closes the position).
            while done < len(flows) and flows[done].ts <= fill.ts:
                self._restore_cash_flow(flows[done], booked)
                done += 1
            self.portfolio.apply(fill)
        for flow in flows[done:]:
            self._restore_cash_flow(flow, booked)
        return booked

    def _restore_cash_flow(self, flow: CashFlow, booked: list[CashFlow]) -> None:
        """An earlier run's payment, as journaled (booked there if in the account's currency)."""
        if flow.flow_id in self._flow_ids:
            return
        self._flow_ids.add(flow.flow_id)
        if books_in(flow, self.config.currency) and not cash_flow_problem(flow, self._symbols):
            self.portfolio.book_cash_flow(flow.amount, flow.symbol)
            booked.append(flow)

    def _on_fill(self, fill: Fill) -> None:
        self.stats.fills += 1
        working = self.book.get(fill.client_order_id)
        fill = booked_fill(fill, working.order if working is not None else None)
        portfolio = self.portfolio
        trades_before = len(portfolio.trades)
        closed_any = portfolio.apply(fill).closed_quantity > 0.0
        position = portfolio.positions[fill.symbol]
        # Asked once per fill (the broker forgets its answer once asked).
        reduced = None if self._tickets is None else self._tickets.entries_reduced(fill)
        # A fill that closed other entries' tickets opened nothing its own children protect.
        status, order, placed, resized = self.book.on_fill(
            fill, self._child_placeable, opened=not reduced
        )
        if placed or resized:
            self._journal_children(placed, resized, fill.ts)
        trades = portfolio.trades
        closed = (
            [(seq, trades[seq]) for seq in range(trades_before, len(trades))]
            if len(trades) > trades_before
            else _NONE_CLOSED
        )
        self.journal.record_fill(fill, position, status, closed)
        if order is None and fill.reason in _VENUE_CHANGES:
            self._changed_outside(fill, position.quantity)
        if order is not None and (
            order.parent_id is not None
            or order.stop_loss is not None
            or order.take_profit is not None
        ):
            self._bracket_after_fill(order, fill, bool(placed or resized))
        if self._flatten_in_force is not None or self._closers or _ends_guards(order):
            self._flatten_after_fill(order, fill, position.quantity)
            if fill.symbol in self._closes_waiting:
                # A waited order its fill ended (no final status follows one on every venue).
                self._close_when_unguarded(fill.symbol)
        if closed_any:
            self._cap_children(fill, order, reduced, status)
        if self._closes_refused and fill.symbol in self._closes_refused:
            self._close_refused_larger(self._closes_refused[fill.symbol])
        if self._closes_asked and abs(position.quantity) <= _FLAT:
            # The strategy's close is done with the position: a later reduce-only order of
            # the same tag (a strategy tagging every exit alike) is not taken for it.
            self._closes_asked.pop(fill.symbol, None)
            self._closes_refused.pop(fill.symbol, None)
        if self._strategy_closes and fill.symbol in self._strategy_closes:
            # A waited order its fill ended (no final status follows one on every venue: the
            # book forgets an order its fill completed, and MT5 reports none).
            self._strategy_close_ended(fill.symbol)
        elif (
            order is not None
            and order.reduce_only
            and position.quantity * fill.side.sign > _FLAT
            and self._flatten_in_force is None
            and fill.symbol not in self._closers
        ):
            self._close_past_flat(order, fill, position.quantity)
        if self.listener is not None:
            if order is not None:
                # The order's status change the journal just recorded (filled, partly filled),
                # as every other change reaches the listener (metrics, log, event stream).
                self.listener.on_order(order, OrderUpdate(fill.client_order_id, status, fill.ts))
            self.listener.on_fill(fill, order, position)
        if self.tracer is not None:
            self.tracer.fill(fill, order.parent_id if order is not None else None)
        try:
            self.strategy.on_fill(fill)
        except Exception as error:
            where = (
                f"the fill of {fill.side} {fill.quantity:.10g} {fill.symbol} @ {fill.price:.10g}"
                f" (order {fill.client_order_id}) at {_utc(fill.ts)}"
            )
            self._hook_failed(error, "on_fill", where)
        for observe in self._fill_observers:
            observe(fill)

    # -- risk plugins between orders ---------------------------------------------------------

    def _risk_after_bar(self) -> None:
        """After a bar's orders: account actions, new locks and tier changes of risk plugins."""
        if self.hooks.actors:
            self._act()
        self._journal_new_locks()
        self._refresh_tiers()
        if self._state_keepers:
            self._journal_plugin_states()

    def _journal_new_locks(self) -> None:
        """Journal the locks risk plugins took since last asked (``risk_locked``), with the
        plugins' states in the same commit: a process killed between the two would restore
        the lock with an older state (a symbol lock naming fewer symbols). Asked before an
        acting plugin's actions are sent too (``_act``): sending a flatten takes network round
        trips, and a kill meanwhile must not leave the flatten journaled and the lock not —
        the restart, on a new day, would trade again with nobody having cleared it."""
        taken = self.state.newly_locked(self._now)
        if not taken:
            return
        with self.journal.grouped():
            for name, reason in taken:
                self._risk_notes.append(f"{self._now} {name} locked trading: {reason}")
                symbols = self.state.said_symbols.get(name)
                self._state(
                    "risk_locked",
                    f"{name} locked trading until a person resets it: {reason}",
                    # A symbol locked after the first keeps the lock's since (a restart's too);
                    # the symbols it holds (None: every one) are restored with it.
                    {
                        "plugin": name,
                        "reason": reason,
                        "since_ts": self.state.held[name][1],
                        "symbols": None if symbols is None else sorted(symbols),
                    },
                )
            if self._state_keepers:
                self._journal_plugin_states()

    def _journal_plugin_states(self) -> None:
        """Journal each ``restores-state`` plugin's state that changed since it was last
        journaled (a ``plugin_state`` event, what a restart hands back). One that is no JSON
        or raises is said once, naming the plugin, and not journaled: the restart then gets
        the last good one, and the engine runs on."""
        for name, keeper in self._state_keepers:
            try:
                text = json.dumps(keeper.saved_state(), allow_nan=False, sort_keys=True)
            except Exception as error:  # a plugin's bug must not stop the bot's trading
                self._state_refused(name, error)
                continue
            if text == self._states_journaled.get(name):
                continue
            self._states_journaled[name] = text
            # Straight to the journal, not through ``_state``: a state changes at most bars,
            # which the service's event stream need not carry.
            self.journal.record_event(
                self._now,
                "plugin_state",
                f"{name} state changed",
                {"plugin": name, "state": json.loads(text)},
            )

    def _state_refused(self, name: str, error: Exception) -> None:
        if name in self._states_refused:
            return
        self._states_refused.add(name)
        message = (
            f"risk plugin {name}'s state cannot be journaled ({type(error).__name__}: "
            f"{error}): a restart will not get it back"
        )
        log.error("%s: %s", self.config.bot_name, message)
        self._state("plugin_state_refused", message, {"plugin": name})

    def _refresh_tiers(self) -> None:
        for name, reporter in self.hooks.tier_reporters:
            tier = reporter.tier()
            if tier != self._tiers.get(name, 0):
                before = self._tiers.get(name, 0)
                self._tiers[name] = tier
                self._risk_notes.append(f"{self._now} {name} tier {before} -> {tier}")
                self._state(
                    "risk_tier",
                    f"{name} tier {before} -> {tier}",
                    {"plugin": name, "tier": tier, "previous": before},
                )

    def _act(self) -> None:
        """Ask each acting risk plugin what to do, and do it through the normal order path."""
        context = self._risk_context(self._symbols[0])
        for name, actor in self.hooks.actors:
            try:
                actions = list(actor.account_actions(context))
            except Exception as error:  # a broken plugin acts on nothing; it is journaled
                log.exception("risk plugin %s failed to act", name)
                self._state("risk_action_failed", f"{name} failed: {type(error).__name__}: {error}")
                continue
            if actions:
                actions = self._doable(name, actions)
            if not actions:
                self._send_acted()  # what an earlier caller queued, as before
                continue
            self._journal_before_acting(name, actions)
            if self.tracer is None:
                self._do_actions(name, actions)
                continue
            # The orders they send are a decision's, as a bar's are: one trace per plugin.
            kinds = [action.kind.value for action in actions]
            attributes = {"tradefleet.plugin": name, "tradefleet.actions": kinds}
            with self.tracer.decision("risk_action", attributes, time.time_ns()):
                self._do_actions(name, actions)

    def _doable(self, name: str, actions: list[Any]) -> list[AccountAction]:
        """``actions`` without the items no action can be made of (``action_problem``), each
        refused in the plugin's name (``risk_action_failed``), naming the field: one crashed
        the bot, or (a REDUCE of 0 or a negative fraction) was said as done and did nothing."""
        doable = []
        for action in actions:
            problem = action_problem(action)
            if problem is None:
                doable.append(action)
                continue
            message = f"{name} asked an action the bot cannot do: {problem}"
            log.error("%s: %s", self.config.bot_name, message)
            self._state("risk_action_failed", message, {"plugin": name})
        return doable

    def _do_actions(self, name: str, actions: list[AccountAction]) -> None:
        """Do risk plugin ``name``'s ``actions`` (journaled already) through the order path."""
        for action in actions:
            self._state(
                "risk_action",
                f"{name} {action.kind.value}"
                f"{' ' + action.symbol if action.symbol else ''}"
                f"{f' {action.fraction:.2%}' if action.kind is ActionKind.REDUCE else ''}"
                f"{f' to {_asked(action.price)}' if action.kind is _MOVE_STOP else ''}"
                f": {action.reason}",
                {
                    "plugin": name,
                    "kind": action.kind.value,
                    "symbol": action.symbol,
                    "fraction": action.fraction,
                    "reason": action.reason,
                    "code": action.code,
                    "price": action.price,
                },
            )
            if action.kind is ActionKind.MOVE_STOP:
                self._move_stop(name, action)
                continue
            if action.kind is ActionKind.FLATTEN:
                self._risk_flatten(name, action)
                continue
            if action.kind is ActionKind.CANCEL_ENTRIES:
                for working in self.book:
                    order = working.order
                    if action.symbol is not None and order.symbol != action.symbol:
                        continue
                    if not order.reduce_only:
                        self.cancel(order.client_order_id)
            self.ctx.intents.extend(action_intents(name, action, self.portfolio.open_positions))
        self._send_acted()

    def _journal_before_acting(self, plugin: str, actions: Sequence[AccountAction]) -> None:
        """Before anything is sent for ``actions`` (risk plugin ``plugin``'s): the locks taken
        (``_journal_new_locks``) and the closes a FLATTEN among them owes (``close_owed``), in
        one commit. Sending takes network round trips; a process killed meanwhile must leave
        both or neither: the flatten owed without its lock, a restart on a new day trades again
        with nobody having cleared it; the lock without the flatten owed, the position it was
        to close stays open under the lock."""
        with self.journal.grouped():
            self._journal_new_locks()
            if self._flatten_in_force is not None:
                return  # a halt's flatten closes every position already (``_risk_flatten``)
            closer = _risk_closer(plugin)
            for action in actions:
                if action.kind is not ActionKind.FLATTEN:
                    continue
                for symbol in list(self.portfolio.open_positions):
                    # One owed already (another plugin's close, or a refusal no retry changes
                    # that a person must see to) keeps its record: the close goes on as before.
                    if (action.symbol is None or symbol == action.symbol) and (
                        symbol not in self._owed
                    ):
                        self._journal_owed(symbol, closer)

    def _send_acted(self) -> None:
        """Send the orders the acting plugins' actions queued, under the actions' own ids."""
        if self.ctx.intents:
            self._acting = True
            try:
                self._process_intents(replay=True)
            finally:
                self._acting = False

    def _move_stop(self, plugin: str, action: AccountAction) -> None:
        """Risk plugin ``plugin``'s MOVE_STOP: the symbol's working stop-loss(es) amended to
        ``action.price`` at the venue when ``stop_moves.decide_stop_move`` allows it (only
        toward the mark, never past it); else refused, journaled and counted, nothing sent."""
        symbol = action.symbol
        if symbol is None or symbol not in self._symbol_set:
            self._stop_move_refused(plugin, symbol or "", MoveRefused(NO_POSITION, "no symbol"))
            return
        held = self.portfolio.position(symbol).quantity
        stops = protective_stop_losses(held, self.book.orders(symbol))
        decided = decide_stop_move(
            action.price,
            held,
            self.portfolio.marks.get(symbol),
            stops,
            self.instrument(symbol).tick_size,
            self._stop_moves,
        )
        if isinstance(decided, MoveRefused):
            self._stop_move_refused(plugin, symbol, decided)
            return
        if not isinstance(self.broker, VenueExecution):
            why = "the broker cannot amend a working order (no venue-execution)"
            self._stop_move_refused(plugin, symbol, MoveRefused(NO_AMEND, why))
            return
        for move in decided:
            self._stop_moves[move.order.client_order_id] = (plugin, move.price)
            update = self.broker.amend(move.order.client_order_id, None, move.price)
            if update is not None:  # a simulator answers at once; a venue, as an event
                self._on_order_update(update._replace(ts=max(update.ts, self._now)))

    def _stop_move_answered(self, update: OrderUpdate) -> bool:
        """The broker's answer to a stop's move (``_move_stop``): the move booked (book,
        journal, count) or its refusal journaled — True, the update is handled; False for any
        other update of the stop (its fill or end then also ends the move)."""
        order_id = update.client_order_id
        if update.status is not OrderStatus.OPEN:
            if update.status in _FINAL:
                self._stop_moves.pop(order_id, None)
            return False
        working = self.book.get(order_id)
        if update.code is ReasonCode.NONE and update.reason != "amended":
            return False  # an ack of the stop, not the amend's answer
        plugin, price = self._stop_moves.pop(order_id)
        if working is None:
            return False
        stop = working.order
        ts = update.ts or self._now
        if update.code is not ReasonCode.NONE:
            why = f"the broker refused to move {order_id} to {price:.10g}: {update.reason}"
            self.journal.update_order(order_id, OrderStatus.OPEN, ts, update.reason)
            self._stop_move_refused(plugin, stop.symbol, MoveRefused(BROKER_REFUSED, why))
            return True
        # A protective stop-loss always has its trigger (``protective_stop_losses``).
        previous = stop.price if stop.price is not None else price
        long = stop.side is Side.SELL
        tick = self.instrument(stop.symbol).tick_size
        held = stop_held(price, update.price, previous, long, tick)
        reason = f"stop moved from {price_text(previous)} to {price_text(held.price)} by {plugin}"
        if held.differs:
            reason += f" ({price_text(price)} asked)"
        self.journal.reprice_order(order_id, held.price, ts, reason, self._working_status(order_id))
        self._say_stop_held(stop, held, price)
        moved = self.book.reprice(order_id, held.price)
        if moved is not None:
            self._decide(
                plugin, _stop_intent(moved), order_id, RiskDecision.approve(None, reason, MOVED)
            )
        return True

    def _say_stop_held(self, stop: Order, held: StopHeld, asked: float) -> None:
        """Say what ``stop_moves.stop_held`` found in a move's answer: the venue holding
        another price than asked (information: venues round to their tick, clamp to their
        stops level), one looser than the stop it replaced (a warning: the bot does not fight
        it), or an answer whose price could not be read (a warning, once per run)."""
        data = {
            "client_order_id": stop.client_order_id,
            "symbol": stop.symbol,
            "asked": asked,
            "held": held.price,
            "previous": stop.price,
        }
        if held.unusable and not self._venue_price_unusable_said:
            self._venue_price_unusable_said = True
            message = f"{stop.client_order_id}: {held.unusable} (said once per run)"
            log.warning("%s: %s", self.config.bot_name, message)
            self._state("stop_move_price_unusable", message, data)
        if held.looser:
            message = f"{stop.client_order_id}: {held.looser}"
            log.warning("%s: %s", self.config.bot_name, message)
            self._state("stop_move_wrong_way", message, data)
        elif held.differs:
            message = f"{stop.client_order_id}: {held.differs}"
            log.info("%s: %s", self.config.bot_name, message)
            self._state("stop_move_venue_price", message, data)

    def _stop_move_refused(self, plugin: str, symbol: str, refused: MoveRefused) -> None:
        """A MOVE_STOP refused: journaled as the plugin's vetoed decision and counted."""
        message = f"MOVE_STOP of {symbol or 'no symbol'} refused: {refused.reason}"
        intent = OrderIntent(symbol, Side.SELL, None, OrderType.STOP, reduce_only=True)
        held = self.portfolio.position(symbol).quantity if symbol in self._symbol_set else 0.0
        if held < 0.0:
            intent = intent._replace(side=Side.BUY)
        self._decide(plugin, intent, "", RiskDecision.veto(message, refused.code))

    def _risk_flatten(self, plugin: str, action: AccountAction) -> None:
        """Risk plugin ``plugin``'s FLATTEN of ``action.symbol`` (None: every symbol), as the
        emergency flatten does it (``_close_keeping_guards``): the symbol's other orders are
        cancelled at once, but a position's stop-loss and take-profit keep working until the
        plugin's close has filled — cancelled first, a close the venue refused or held would
        leave the position bare, as the plugin's risk turned. The close is the plugin's
        action still: through the risk chain (decided, journaled, counted), under the actions'
        ids and tagged ``risk:<plugin>``. What the plugin asked before it in the same list is
        sent first, in its order. A halt's flatten in force closes every position already: the
        plugin's is that flatten again (a close only where none is on its way)."""
        self._send_acted()
        if self._flatten_in_force is not None:
            self._flatten_journaled(*self._flatten_in_force)
            return
        symbols = None if action.symbol is None else (action.symbol,)
        self._close_keeping_guards(symbols, _risk_closer(plugin), replay=True)

    def snapshot_equity(self) -> None:
        """Journal the equity snapshots not yet written (for live bots between bars)."""
        self._journal_equity()

    # -- control (called on the engine's thread by the service) ------------------------------

    def _state(self, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        self.journal.record_event(self._now, kind, message, data)
        if self.listener is not None:
            self.listener.on_state(kind, message)

    def pause(self, who: str, reason: str) -> None:
        if self.state.pause(reason):
            self._state("paused", f"paused by {who}: {reason}", {"who": who, "reason": reason})

    def resume(self, who: str, reason: str, *, pause_only: bool = False) -> None:
        """Clear a pause and a halt (a Degraded bot's too: a person has looked at the venue).

        A resume aimed at one holder (``resume_holder``: the operator's, when the spec's stop
        went) lifts that holder's halt alone while another holds the bot (:meth:`_lift`).

        ``pause_only`` clears the pause alone: a halt and a Degraded stop stay (the operator's
        undoing of a pause it applied must never lift a person's emergency stop). It is
        journaled as ``unpaused``, never ``resumed``: a restart must not read it as the resume
        that ended a halt."""
        if pause_only:
            if self.state.unpause():
                kept = f" (the emergency stop stays: {self.halt_reason})" if self.halted else ""
                self._state(
                    "unpaused",
                    f"pause lifted by {who}: {reason}{kept}",
                    {"who": who, "reason": reason, "halted": self.halted},
                )
            return
        target = resume_holder(who)
        if target is not None and any(h != target for h in self.state.holders()):
            self._lift(target, who, reason)
            return
        self.degraded_reason = ""
        if self.state.resume():
            self._flatten_in_force = None  # entries may fill again: the strategy trades
            # The halt's closes are forgotten; a risk plugin's flatten under a plain halt goes on.
            dropped = {s: i for s, i in self._closes_waiting.items() if s not in self._closers}
            self._closes_waiting = {
                s: ids for s, ids in self._closes_waiting.items() if s in self._closers
            }
            self._closes_failed = {s for s in self._closes_failed if s in self._closers}
            self._state("resumed", f"resumed by {who}: {reason}", {"who": who, "reason": reason})
            for symbol in sorted(dropped):
                self._exits_lost_to_resume(symbol)

    def _exits_lost_to_resume(self, symbol: str) -> None:
        """A resume forgot the halt's close of ``symbol`` while it waited for the cancel of
        the position's stop-loss and take-profit (spot, or a close refused while they held its
        coin): the close is not sent, and once the venue confirms those cancels the position
        runs without them. Said loudly, as a stop cancelled outside the bot is: the bot does
        not place them again, and the person who resumed decides."""
        guards = sorted(self._waited_guards.pop(symbol, frozenset()))
        held = self.portfolio.open_positions.get(symbol)
        if not guards or held is None:
            return
        message = (
            f"{symbol}: resumed while the flatten's close waited for the cancel of the "
            f"position's stop-loss and take-profit ({', '.join(guards)}): the close is not "
            f"sent, and the {held.quantity:.10g} {symbol} position runs without them once the "
            "venue confirms — the bot does not place them again"
        )
        log.warning("%s: %s", self.config.bot_name, message)
        self._state(
            "stop_cancelled",
            message,
            {"symbol": symbol, "guards": guards, "position": held.quantity, "reason": "resumed"},
        )

    def _lift(self, holder: str, who: str, reason: str) -> None:
        """A resume aimed at ``holder`` (``resume_holder``) while another holder halts the
        bot too: that holder's halt goes (journaled ``halt_lifted``: a restart must not
        restore it), the others stay, and so does the bot's halt — a halt is undone only by a
        newer, explicit resume, and this one was never about them. A pause stays too: the
        resume that lifts the last halt lifts it."""
        if self.state.lift(holder):
            self._state(
                "halt_lifted",
                f"emergency stop of the {holder} lifted by {who}: {reason}; still halted: "
                f"{self.halt_reason}",
                {"who": who, "reason": reason, "holder": holder, "left": self.state.holders()},
            )

    def halt(self, who: str, reason: str, *, flatten: bool = False) -> bool:
        """The emergency stop. Returns False when already halted: then the bot's halt does not
        change, but one by a new holder (``halt_holder``: a person's after the fleet's) is
        kept with it and journaled (``halt_joined``), so that a resume aimed at the first
        holder does not lift it; and a flatten asked now is done (a person who halted first
        and then asks to flatten must not have to resume — letting the strategy trade — to
        get it)."""
        holder = halt_holder(who)
        if not self.state.halt(reason, holder):
            if self.state.join(holder, f"emergency stop by {who}: {reason}"):
                self._state(
                    "halt_joined",
                    f"emergency stop by {who}: {reason}{JOINED_SUFFIX}",
                    {"who": who, "reason": reason, "holder": holder, "flatten": flatten},
                )
            if flatten:
                self.flatten(who, reason)
            return False
        self._state(
            "halted",
            f"emergency stop by {who}: {reason}",
            {"who": who, "reason": reason, "flatten": flatten, "holder": holder},
        )
        if flatten:
            self._flatten_journaled(who, reason)
            return True
        self._cancel_entries()
        return True

    def _cancel_entries(self) -> list[str]:
        """Cancel the working orders that could open or add to a position (a halt's); the ids
        asked. Protective SL/TP children stay: the positions they protect stay open."""
        asked = [w.order.client_order_id for w in self.book if not w.order.reduce_only]
        for order_id in asked:
            self.cancel(order_id)
        return asked

    def enforce_restored_halt(self) -> list[str]:
        """A halt restored at a restart (``restore_halt``) does what a halt does, once the
        account is restored or reconciled: the entries still working (re-armed, or adopted from
        the venue — the earlier run died before its halt's cancels were confirmed) are
        cancelled, journaled. Left working they could fill while the bot says it is halted.
        The ids asked."""
        if not self.halted:
            return []
        asked = self._cancel_entries()
        if asked:
            self._state(
                "halt_entries_cancelled",
                f"{len(asked)} entry order(s) still working after the restart cancelled: the "
                f"emergency stop holds ({', '.join(asked)})",
                {"client_order_ids": asked},
            )
        return asked

    def flatten(self, who: str, reason: str) -> None:
        """Flatten a halted bot: the flatten of an emergency stop given while it was already
        halted, or before it could trade (while it waited for its venue at start), or one an
        earlier run asked and did not finish (``flatten_owed``). Cancel every working order but
        the stop-losses and take-profits of the positions it closes, close every position, and
        journal the closes sent (a later start flattens again until they have all filled)."""
        self._flatten_journaled(who, reason)

    def _flatten_journaled(self, who: str, reason: str) -> list[str]:
        """The emergency flatten, journaled (``flattened``); the ids it asked to cancel."""
        # The ``flattened`` event names the closes the flatten relies on (and the symbols it
        # could not close): the journal's ``flatten_owed`` reads it at the next start, so a
        # close that never filled (the process died while the venue held it) is owed still.
        self._flatten_in_force = (who, reason)
        # A risk plugin's or the stop policy's flatten under way is the halt's from here: its
        # close is cancelled with every other order but the halt's closes, and the halt sends
        # its own (``_flatten``); a close of it waiting for its guards' cancels is the halt's.
        # Their debts end here (the halt's own record is owed instead): a restart after a
        # later resume must not close what the strategy holds by then.
        for symbol in list(self._owed):
            self._owed_done(symbol, "the emergency stop's flatten closes it instead")
        self._closers.clear()
        self._retry.clear()
        self._stuck.clear()
        self._failing.clear()
        cancelled = self._flatten()
        closes, left = self._flatten_record()
        nothing = "" if closes or left else " (nothing was left to close)"
        waiting = {s: sorted(self._closes_waiting[s]) for s in left if s in self._closes_waiting}
        unclosed = [s for s in left if s not in waiting]
        said = f" ({', '.join(unclosed)} could not be closed yet)" if unclosed else ""
        said += "".join(
            f" ({symbol}'s close waits for the venue to confirm the cancel of {', '.join(ids)}, "
            "which would reduce the same position)"
            for symbol, ids in waiting.items()
        )
        self._state(
            "flattened",
            f"flattened for the emergency stop by {who}: {reason}{nothing}{said}",
            {"who": who, "reason": reason, "closes": closes, "left": left, "waiting": waiting},
        )
        return cancelled

    def _flatten(self) -> list[str]:
        """The emergency flatten (``_close_keeping_guards`` of every symbol); the ids it asked
        to cancel."""
        return self._close_keeping_guards(None, _EMERGENCY)

    def flatten_on_stop(self, symbols: Collection[str]) -> list[str]:
        """The stop policy's flatten (``spec.onStop.flattenPositions``) of ``symbols``: as the
        emergency flatten does it (``_close_keeping_guards``), the closes tagged
        ``stop-flatten``. A halt's flatten in force is that flatten again (a close only where
        none is on its way). The ids it asked to cancel at once; the positions' stop-losses and
        take-profits are cancelled once their close filled (``flatten_pending``)."""
        if not symbols:
            return []
        if self._flatten_in_force is not None:
            return self._flatten_journaled(*self._flatten_in_force)
        return self._close_keeping_guards(symbols, _STOP_POLICY)

    def _close_keeping_guards(
        self, symbols: Collection[str] | None, closer: _Closer, *, replay: bool = False
    ) -> list[str]:
        """Cancel every working order of ``symbols`` (None: of every symbol) but the
        stop-losses and take-profits guarding the positions to close (``_guards``) and the
        closes already on their way, and close each position of them at market, reduce-only,
        as ``closer``'s. The ids asked to cancel.

        The guards stay working until their position's close has filled (then they are
        cancelled: ``_flatten_symbol_flat``): cancelled first, a close the venue refuses or
        holds (an outage, a rate limit, a market closed), or a process that dies before the
        close fills, would leave the position open with no stop at all. A guard that fills
        meanwhile cannot make the close open the other way: the close is reduce-only, and a
        fill past flat all the same is closed again (``_close_late_entry``)."""
        # A symbol whose flatten is already on its way (a second emergency stop right after
        # the first, e.g. a fleet stop's direct call and then the operator's): its closing
        # order stays and no second one is sent. The position only changes when the close's
        # fill arrives, and a close sent again before then would close it twice. A symbol
        # whose close waits for its guards' cancels is on its way too.
        closing = {order.symbol for order in self.book.orders() if self._is_close(order)}
        closing |= set(self._closes_waiting)
        held = self.portfolio.open_positions
        cancelled: list[str] = []
        reducing: dict[str, list[str]] = {}
        for working in list(self.book):
            order = working.order
            if symbols is not None and order.symbol not in symbols:
                continue
            kept = self._is_close(order) or (
                _guards(order) and order.symbol in held and self._keeps_guards(order.symbol)
            )
            if not kept:
                cancelled.append(order.client_order_id)
                position = held.get(order.symbol)
                if position is not None and order.side.sign * position.quantity < 0.0:
                    reducing.setdefault(order.symbol, []).append(order.client_order_id)
                self.cancel(order.client_order_id)
        for symbol in list(held):
            if (symbols is None or symbol in symbols) and symbol not in closing:
                if closer is not _EMERGENCY and self._is_stuck(symbol):
                    self._journal_flattened(
                        f"the close of {symbol} is not sent again: the venue refused it for a "
                        "reason no retry changes (journaled as close_owed); a person must "
                        "close the position",
                        {"symbol": symbol},
                        closer,
                    )
                    continue
                # A cancel the venue answered at once has ended its order: only those still
                # working hold the close back (``_close_after``).
                behind = [i for i in reducing.get(symbol, ()) if i in self.book]
                if behind:
                    self._close_after(symbol, behind, closer)
                    continue
                self._send_flatten_close(symbol, closer, replay=replay)
        return cancelled

    def _closing_on_way(self, symbol: str) -> float:
        """What the closes of the flatten closing ``symbol`` still working have left to fill."""
        return sum(
            working.order.quantity - working.filled
            for working in self.book
            if working.order.symbol == symbol and self._is_close(working.order)
        )

    def _keeps_guards(self, symbol: str) -> bool:
        """Whether a flatten keeps ``symbol``'s stop-loss and take-profit working until its
        close has filled: everywhere but where a close sells from the account's balance
        (``SpotCloses``: spot), which no reduce-only caps. There a guard that fills beside the
        close sells the account's other coins (a person's own): the guards are cancelled and
        waited for first, as any other order that would reduce the position (``_close_after``),
        leaving the position bare only between their cancel and the close's fill."""
        spot = self._spot
        return spot is None or not spot.closes_from_balance(symbol)

    def _reducing(self, symbol: str) -> list[str]:
        """The working orders of ``symbol`` that would reduce its position, but its guards
        where a flatten keeps them (``_keeps_guards``) and the closes of the flatten closing
        it: what a close sent now could fill beside."""
        position = self.portfolio.open_positions.get(symbol)
        if position is None:
            return []
        keeps = self._keeps_guards(symbol)
        return [
            order.client_order_id
            for order in self.book.orders(symbol)
            if not (keeps and _guards(order))
            and not self._is_close(order)
            and order.side.sign * position.quantity < 0.0
        ]

    def _close_or_wait(self, symbol: str, closer: _Closer, *, replay: bool = False) -> str:
        """``closer``'s close of ``symbol``'s whole position, sent at once when no other order
        would reduce it; else those are cancelled and the close waits for them to end
        (``_close_after``). The close's id; empty when it waits or was refused."""
        reducing = self._reducing(symbol)
        for order_id in reducing:
            self.cancel(order_id)
        behind = [order_id for order_id in reducing if order_id in self.book]
        if behind:
            self._close_after(symbol, behind, closer)
            return ""
        return self._send_flatten_close(symbol, closer, replay=replay)

    def _wait_for(self, symbol: str, ids: Collection[str], *, more: bool = False) -> None:
        """``symbol``'s flatten close waits for ``ids`` to end (``_closes_waiting``); ``more``:
        the same wait goes on for orders sent since, and the guards it waited for count."""
        self._closes_waiting[symbol] = frozenset(ids)
        guards = frozenset(
            order_id
            for order_id in ids
            if (working := self.book.get(order_id)) is not None and _guards(working.order)
        )
        if more:
            guards |= self._waited_guards.get(symbol, frozenset())
        self._waited_guards[symbol] = guards

    def _close_after(self, symbol: str, behind: list[str], closer: _Closer) -> None:
        """Hold ``closer``'s close of ``symbol`` until ``behind`` — working orders that would
        reduce the position, whose cancels the flatten asked — have ended
        (``_close_when_unguarded``). Sent beside them, the close and one that fills before its
        cancel lands would together close twice what is held: on spot, selling the account's
        other coins. The position stays guarded meanwhile (its stop-loss and take-profit are
        kept), and the flatten owes the close (a restart sends it)."""
        self._wait_for(symbol, behind)
        if closer is not _EMERGENCY:
            self._closers[symbol] = closer  # whose close it is when it goes
            self._journal_owed(symbol, closer)
        held = self.portfolio.open_positions[symbol].quantity
        message = (
            f"the close of {held:.10g} {symbol} waits for the venue to confirm the cancel of "
            f"{', '.join(behind)}, which would reduce the same position: sent beside it, both "
            "could fill"
        )
        if closer is _EMERGENCY:
            log.warning("%s: %s: %s", self.config.bot_name, symbol, message)
            return  # the halt's own ``flattened`` event says it (``_flatten_record``)
        self._journal_flattened(message, {"symbol": symbol, "waiting_for": behind}, closer)

    def _is_stuck(self, symbol: str) -> bool:
        """Whether ``symbol``'s position is still the one whose close was refused for a
        reason no retry changes (``_stuck``): another position (the strategy added to it, a
        person reduced it) may be closable."""
        stuck = self._stuck.get(symbol)
        position = self.portfolio.open_positions.get(symbol)
        return stuck is not None and position is not None and position.quantity == stuck

    def closes_stuck(self) -> dict[str, tuple[str, float]]:
        """Symbol -> (the code of the refusal no retry changes, "" when the venue gave none;
        the position held) for every position a risk plugin's or the stop policy's flatten
        could not close and will not send again: a person must close it. Read, never kept: a
        position since flat or changed is no longer stuck (``_is_stuck``), and a restart's
        ``resume_closes`` fills ``_stuck`` again from the journal's ``close_owed``."""
        return {
            symbol: (self._owed.get(symbol, ("", None))[1] or "", held)
            for symbol, held in sorted(self._stuck.items())
            if self._is_stuck(symbol)
        }

    def _closer_of(self, symbol: str) -> _Closer | None:
        """Who closes ``symbol``'s position now: a halt's flatten in force closes every one."""
        if self._flatten_in_force is not None:
            return _EMERGENCY
        return self._closers.get(symbol)

    def _is_close(self, order: Order) -> bool:
        """Whether ``order`` is a closing order of the flatten closing its symbol."""
        closer = self._closer_of(order.symbol)
        return closer is not None and order.reduce_only and order.tag == closer.tag

    def _send_flatten_close(
        self,
        symbol: str,
        closer: _Closer = _EMERGENCY,
        *,
        replay: bool = False,
        quantity: float | None = None,
    ) -> str:
        """Close ``symbol``'s whole position (``quantity``: that much of it) at market,
        reduce-only, as ``closer``'s (nothing else of the symbol is cancelled: its guards
        stay). The close's id; empty when it was refused before it left."""
        position = self.portfolio.open_positions.get(symbol)
        if position is None:
            return ""
        self._closes_failed.discard(symbol)
        self._retry.pop(symbol, None)
        self._stuck.pop(symbol, None)
        side = Side.SELL if position.quantity > 0.0 else Side.BUY
        vetoes, skipped = self.stats.vetoes.total(), self.stats.known_ids_skipped
        size = abs(position.quantity) if quantity is None else quantity
        close_id = self._send_close(symbol, side, size, closer, replay)
        if not close_id and closer is not _EMERGENCY:
            # The emergency's ``flattened`` record names the symbol as left; the others say so.
            vetoed = self.last_veto if self.stats.vetoes.total() > vetoes else None
            self._close_failed(
                symbol,
                f"{closer.close_of} of {symbol} was refused before it was sent (its decision "
                "is journaled); the bot still holds",
                closer,
                {},
                # An id an earlier run sent (a bar handled again after a crash): that close's
                # fate is the venue's, and the next bar's takes another id.
                ReasonCode.UNKNOWN_OUTCOME
                if self.stats.known_ids_skipped > skipped
                else _refusal_code(vetoed.code if vetoed is not None else ""),
                vetoed.reason if vetoed is not None else "",
            )
        return close_id

    def _send_close(
        self, symbol: str, side: Side, quantity: float, closer: _Closer, replay: bool = False
    ) -> str:
        """Send ``closer``'s reduce-only market close of ``quantity`` ``symbol`` through the
        order path (the risk chain decides and the journal records it). Its id; empty when it
        was refused before it left."""
        if closer is not _EMERGENCY:
            self._closers[symbol] = closer  # first: the venue may refuse it as it is sent
            # Journaled before it leaves: a process that dies before its fill still owes it.
            self._journal_owed(symbol, closer)
        acting = self._acting
        self._acting = acting or closer.acting
        try:
            return self._send_reduce_only(symbol, side, quantity, closer.tag, replay)
        finally:
            self._acting = acting

    def _send_reduce_only(
        self, symbol: str, side: Side, quantity: float, tag: str, replay: bool = False
    ) -> str:
        """A reduce-only market order of ``quantity`` ``symbol`` tagged ``tag``, through the
        order path (the risk chain decides, the journal records it). Its id; empty when it was
        refused before it left."""
        sent = self.stats.orders
        self._process_intent(OrderIntent(symbol, side, quantity, reduce_only=True, tag=tag), replay)
        return self.last_order_id if self.stats.orders > sent else ""

    def _flatten_record(self) -> tuple[list[str], list[str]]:
        """What the flatten relies on now, as its ``flattened`` events journal it: the ids of
        its closes on their way for positions still held, and the symbols held with none (a
        close refused, or waiting for its guards' cancels). ``flatten_owed`` holds the flatten
        owed until every close named filled and none is left."""
        held = self.portfolio.open_positions
        on_way = [o for o in self.book.orders() if _flatten_close(o) and o.symbol in held]
        # A symbol whose close waits is owed whatever else of it is on its way (a late
        # entry's close covers only what that entry added).
        closing = {order.symbol for order in on_way} - set(self._closes_waiting)
        return [o.client_order_id for o in on_way], [s for s in held if s not in closing]

    def _journal_flattened(
        self, message: str, data: dict[str, Any], closer: _Closer = _EMERGENCY
    ) -> None:
        """A further step of ``closer``'s flatten, logged and journaled: for the emergency's, a
        further ``flattened`` event (after the flatten's own) with what it relies on now
        (``_flatten_record``), which a restart reads from the newest one; for the others, an
        event of their own (``_Closer.event``): what they owe a restart is in ``close_owed``
        events (``_journal_owed``)."""
        if closer is not _EMERGENCY:
            message = f"{closer.title}: {message}"
            log.warning("%s: %s", self.config.bot_name, message)
            self._state(closer.event, message, {"by": closer.tag, **data})
            return
        who, reason = self._flatten_in_force or ("", "")
        closes, left = self._flatten_record()
        message = f"flattened for the emergency stop by {who}: {reason}: {message}"
        log.warning("%s: %s", self.config.bot_name, message)
        self._state(
            "flattened",
            message,
            {"who": who, "reason": reason, "closes": closes, "left": left, **data},
        )

    def keep_flatten(self, who: str, reason: str) -> None:
        """A restart restored a halt whose flatten was asked (``restore_halt`` first): entries
        that fill from here on are closed, as the flatten would have (``_close_late_entry``)."""
        if self.halted:
            self._flatten_in_force = (who, reason)

    def flatten_pending(self, symbols: Iterable[str]) -> list[str]:
        """The symbols among ``symbols`` whose flatten is still under way: held, with a close
        working or waiting for its guards' cancels; or flat, with a stop-loss, take-profit or
        close of it still working (their cancels not confirmed yet). A position whose close
        failed is not: its guards are kept, and nothing more comes for it."""
        held = self.portfolio.open_positions
        pending: list[str] = []
        for symbol in symbols:
            orders = self.book.orders(symbol)
            if symbol in held:
                busy = symbol in self._closes_waiting or any(self._is_close(o) for o in orders)
            else:
                busy = any(_guards(o) or self._is_close(o) for o in orders)
            if busy:
                pending.append(symbol)
        return pending

    def protective_exits(self, symbols: Iterable[str]) -> list[str]:
        """The ids of the stop-losses and take-profits working for ``symbols``."""
        return [order_id for symbol in symbols for order_id in self._guards_of(symbol)]

    def exits_kept(self, symbols: Iterable[str]) -> list[str]:
        """The stop-losses and take-profits of the positions among ``symbols`` still held that
        work and that no flatten asked to cancel (their close has not filled): what protects
        each position a flatten could not close."""
        held = self.portfolio.open_positions
        return [
            order_id
            for symbol in symbols
            if symbol in held
            for order_id in self._guards_of(symbol)
            if order_id not in self._closes_waiting.get(symbol, ())
        ]

    def _flatten_after_fill(self, order: Order | None, fill: Fill, held: float) -> None:
        """A fill while a flatten closes its symbol (``held``: the position after it). What it
        opened is closed — under a halt's flatten an entry whose cancel lost the race; a
        reduce-only order the venue let go past flat —; a position it left flat needs its
        guards no more. A close of an earlier run that filled (``_ends_guards``) ends them
        too: this run knows nothing of its flatten, but a flat position needs no stop."""
        if self._flatten_in_force is not None:
            if order is not None and (not order.reduce_only or held * fill.side.sign > _FLAT):
                self._close_late_entry(order, fill, held)
            if fill.symbol not in self.portfolio.open_positions:
                self._flatten_symbol_flat(fill.symbol, order)
            return
        symbol = fill.symbol
        closer = self._closers.get(symbol)
        if closer is None:
            if order is None or not _ends_guards(order) or symbol in self.portfolio.open_positions:
                return
            closer = _closer_by_tag(order)
        elif order is not None and order.reduce_only and held * fill.side.sign > _FLAT:
            self._close_late_entry(order, fill, held, closer)
        if symbol not in self.portfolio.open_positions:
            self._flatten_symbol_flat(symbol, order, closer)
        self._settle(symbol)

    def _settle(self, symbol: str) -> None:
        """Forget the flatten of ``symbol`` (not a halt's) once it is done: the position flat,
        and no close of it working (one the venue fills now would go past flat: it is watched
        until it ends)."""
        if symbol not in self._closers or symbol in self.portfolio.open_positions:
            return
        if symbol not in self._closes_waiting and not any(
            self._is_close(order) for order in self.book.orders(symbol)
        ):
            del self._closers[symbol]
            self._owed_done(symbol, "the position is flat")

    def _flatten_symbol_flat(
        self, symbol: str, order: Order | None, closer: _Closer = _EMERGENCY
    ) -> None:
        """``symbol``'s position is flat while a flatten closes it: the stop-losses and
        take-profits kept for it protect nothing now and are cancelled (a venue that cancels
        them itself, an OCO or a position's SL/TP, reports them ended as well). A flatten close
        of it still working had something else close the position first (its stop-loss, a
        person at the venue): it is cancelled, and the flatten no longer relies on it; nor does
        it owe a close that failed or waited (a further ``flattened`` event says so)."""
        owed = symbol in self._closes_waiting or symbol in self._closes_failed
        self._closes_waiting.pop(symbol, None)
        self._closes_failed.discard(symbol)
        self._retry.pop(symbol, None)
        self._stuck.pop(symbol, None)
        self._failing.pop(symbol, None)
        moot: list[str] = []
        for working in self.book:
            other = working.order
            if other.symbol != symbol:
                continue
            if self._is_close(other):
                moot.append(other.client_order_id)
            elif not _guards(other):
                continue
            self.cancel(other.client_order_id)
        if moot or owed:
            by = order.client_order_id if order is not None else "a change outside the bot"
            how = f"; {', '.join(moot)} cancelled" if moot else ""
            self._journal_flattened(
                f"{symbol} was closed by {by} before a flatten's close filled{how}",
                {"closed_by": by, "cancelled": moot},
                closer,
            )

    def _flatten_order_ended(self, order: Order, update: OrderUpdate) -> None:
        """An order ended while a flatten closes its symbol. A close of it that ended without
        closing its position is said loudly (its guards still protect it), or, refused for
        want of what the position's guards hold, sent again once they are cancelled; the last
        guard of a position whose close waited for that lets the close go. A close the bot
        cancelled itself is no failure (a flatten of a risk plugin's that another took over),
        but for a halt's flatten, which cancels its closes only once their position is flat."""
        symbol = order.symbol
        closer = self._closer_of(symbol)
        if closer is not None and order.reduce_only and order.tag == closer.tag:
            if (
                update.status is not OrderStatus.FILLED
                and symbol in self.portfolio.open_positions
                and (closer is _EMERGENCY or order.client_order_id not in self._cancels_asked)
            ):
                self._flatten_close_failed(order, update, closer)
        elif symbol in self._closes_waiting:
            self._close_when_unguarded(symbol)
        if closer is not _EMERGENCY:
            self._settle(symbol)

    def _guards_of(self, symbol: str) -> list[str]:
        return [o.client_order_id for o in self.book.orders(symbol) if _guards(o)]

    def _flatten_close_failed(
        self, order: Order, update: OrderUpdate, closer: _Closer = _EMERGENCY
    ) -> None:
        """The venue refused (or cancelled, or expired) ``order``, ``closer``'s close, and the
        position it was to close is still held. Its stop-loss and take-profit were kept, so the
        position is not left bare: the bot says so (``_close_failed``).

        One refusal is answered at once: a close refused for want of funds while the
        position's guards work. On a spot account a resting sell holds the coin it sells, so
        the close cannot go while the stop-loss rests: the guards are cancelled, and the close
        is sent again once the venue has confirmed their cancels (``_close_when_unguarded``) —
        the venue's own order of operations, and the only one it takes."""
        symbol = order.symbol
        guards = self._guards_of(symbol)
        if update.code is ReasonCode.INSUFFICIENT_FUNDS and guards:
            held = self.portfolio.open_positions[symbol].quantity
            self._wait_for(symbol, guards)
            message = (
                f"{order.client_order_id}: the venue refused {closer.close_of} of {symbol} "
                f"({update.reason or update.code.value}): its stop-loss and take-profit hold "
                f"the position; cancelling {', '.join(guards)}, then closing the {held:.10g} "
                f"{symbol} once the venue confirms"
            )
            log.warning("%s: %s", self.config.bot_name, message)
            self._state(
                "flatten_exits_cancelled",
                message,
                {"client_order_id": order.client_order_id, "symbol": symbol, "guards": guards},
            )
            for guard in guards:
                self.cancel(guard)
            self._close_when_unguarded(symbol)
            return
        # A venue that holds no position to reduce has likely filled a guard whose fill is not
        # heard yet: the position is then flat, and a further ``flattened`` event says so.
        held_by = (
            "the bot still holds"
            if update.code is not ReasonCode.REDUCE_ONLY
            else "the bot still books (the venue has none to reduce: a stop's fill not heard yet?)"
        )
        self._close_failed(
            symbol,
            f"{order.client_order_id}: {closer.close_of} of {symbol} ended "
            f"{update.status.value} ({update.reason or update.code.value}); {held_by}",
            closer,
            {
                "client_order_id": order.client_order_id,
                "status": update.status.value,
                "reason": update.reason,
            },
            update.code,
            update.reason,
        )

    def _close_failed(
        self,
        symbol: str,
        what: str,
        closer: _Closer,
        data: dict[str, Any],
        code: ReasonCode = ReasonCode.NONE,
        reason: str = "",
    ) -> None:
        """``closer``'s close of ``symbol`` ended, or was refused (``code``, ``reason``),
        without closing the position (``what`` says how, up to what the bot holds): said
        loudly — journaled as ``flatten_failed``, logged — with the orders that still protect
        it. The flatten owes the close until another is sent or the position is flat: the
        emergency's when a person or a restart asks again (``closer.then``); a risk plugin's or
        the stop policy's at the symbol's next bar (and a restart) when ``code`` may pass
        (``_RETRIED``), else never by itself: said once more, as an error, for a person."""
        self._closes_failed.add(symbol)
        guards = self._guards_of(symbol)
        held = self.portfolio.open_positions[symbol].quantity
        kept = f"its {', '.join(guards)} still work" if guards else "no stop-loss protects it"
        retried = closer is not _EMERGENCY and code in _RETRIED
        then = closer.then
        if closer is not _EMERGENCY and not retried:
            then = (
                f"Sent again it would be refused again ({code.value or 'no reason code'}): the "
                f"bot does not send {closer.close_of} again; a person must close the position "
                f"({self._how_to_close(symbol, code)})"
            )
        message = f"{what} {held:.10g} {symbol}, and {kept}. {then}"
        log.warning("%s: %s", self.config.bot_name, message)
        self._state(
            "flatten_failed",
            message,
            {
                "client_order_id": "",
                **data,
                "code": code.value,
                "retried": retried,
                "symbol": symbol,
                "position": held,
                "guards": guards,
                "by": closer.tag,
            },
        )
        if closer is _EMERGENCY:
            return
        if retried:
            self._retry[symbol] = code
            self._count_refusal(symbol, code, closer, held)
            return
        self._failing.pop(symbol, None)  # no longer retried: stuck (``closes_stuck``)
        self._stuck[symbol] = held
        self._journal_owed(symbol, closer, code, reason)

    def _how_to_close(self, symbol: str, code: ReasonCode) -> str:
        """What a person does about ``symbol``'s close refused for good with ``code``: below the
        venue's minimum no close of the bot passes, an emergency flatten's neither."""
        advice = below_minimum_advice(self.instrument(symbol), code)
        return advice or "tradefleet stop --flatten, or at the venue"

    def _count_refusal(self, symbol: str, code: ReasonCode, closer: _Closer, held: float) -> None:
        """One more refusal in a row of ``symbol``'s close, which ``_retry`` sends again. The
        second makes it a close that keeps failing (``closes_retrying``): said once, as an
        error, so a person can close the position while the bot keeps trying. One refusal is
        a venue's blip and stays quiet."""
        refusals, since, _ = self._failing.get(symbol, (0, 0, ""))
        refusals += 1
        # A restart's resumed close is refused before the first bar gives the bot a time: the
        # refusals are then counted from the first one with a time (a bar later at most).
        self._failing[symbol] = (refusals, since or self.now, code.value)
        if refusals != _FAILING_AFTER:
            return
        log.error(
            "%s: %s of %g %s was refused %d times in a row (%s); the bot sends it again at "
            "each of the symbol's bars: a person may close the position (tradefleet stop "
            "--flatten, or at the venue)",
            self.config.bot_name,
            closer.close_of,
            held,
            symbol,
            refusals,
            code.value,
        )

    def closes_retrying(self) -> dict[str, tuple[str, float, int, int]]:
        """Symbol -> (the last refusal's code, the position held, refusals in a row, the
        bot time of the first) for every position a risk plugin's or the stop policy's flatten
        has asked to close and the venue refused at least ``_FAILING_AFTER`` times in a row
        for reasons a later try may pass: the bot still sends the close at each bar, but the
        position stays open meanwhile. Read, never kept."""
        held = self.portfolio.open_positions
        return {
            symbol: (code, held[symbol].quantity, refusals, since)
            for symbol, (refusals, since, code) in sorted(self._failing.items())
            if refusals >= _FAILING_AFTER and symbol in held
        }

    def _close_when_unguarded(self, symbol: str) -> None:
        """Send the flatten close that waits for orders of ``symbol`` to end (its guards, or
        orders that would reduce it: ``_closes_waiting``), once none of them is left working
        (their cancels confirmed, or one filled: then nothing may be left to close)."""
        behind = self._closes_waiting.get(symbol)
        if behind is None or any(order_id in self.book for order_id in behind):
            return
        closer = self._closer_of(symbol)
        position = self.portfolio.open_positions.get(symbol)
        if position is not None and closer is not None:
            # Orders that would reduce the position sent since (a strategy's ``close`` while
            # halted): cancelled too, and waited for as the first were.
            since = self._reducing(symbol)
            if since:
                self._wait_for(symbol, since, more=True)
                for order_id in since:
                    self.cancel(order_id)
                self._close_when_unguarded(symbol)  # a cancel answered at once ended them
                return
        del self._closes_waiting[symbol]
        if position is None or closer is None:
            return
        # A close of the flatten's already on its way (a late entry waited for its own exits'
        # cancels while the flatten's close of the rest went): only what it leaves is closed.
        on_way = self._closing_on_way(symbol)
        if on_way >= abs(position.quantity) - _FLAT:
            # Said, so that the flatten's record no longer names the symbol as left.
            self._journal_flattened(
                f"{symbol}: {', '.join(sorted(behind))} ended; the closes on their way cover "
                f"the {abs(position.quantity):.10g} held",
                {"symbol": symbol, "ended": sorted(behind)},
                closer,
            )
            return
        close_id = self._send_flatten_close(
            symbol, closer, quantity=abs(position.quantity) - on_way if on_way else None
        )
        how = f"closing it at market ({close_id})" if close_id else "the close was refused"
        self._journal_flattened(
            f"{symbol}: {', '.join(sorted(behind))} ended; {how}",
            {"symbol": symbol, "ended": sorted(behind)},
            closer,
        )

    def _retry_close(self, symbol: str) -> None:
        """At ``symbol``'s bar, send again the close a risk plugin's or the stop policy's
        flatten owes after a refusal a later try may pass (``_retry``), as the flatten sent it:
        the whole position, reduce-only, at market, through the risk chain. Never while a
        close of it is on its way (two closes racing could both fill; that one's end says what
        comes next), and not once the position is flat or a halt's flatten closes it. Its id
        follows the bar (``replay``): a bar handled again after a crash makes the same id,
        which the journal knows, and the close is not sent twice."""
        code = self._retry.pop(symbol)
        closer = self._closer_of(symbol)
        if closer is None or closer is _EMERGENCY or symbol not in self.portfolio.open_positions:
            self._failing.pop(symbol, None)  # no longer this close's to retry
            return
        if symbol in self._closes_waiting or any(
            self._is_close(order) for order in self.book.orders(symbol)
        ):
            return
        self._journal_flattened(
            f"the close of {symbol} was refused for a reason a later try may pass "
            f"({code.value}); sending it again at this bar",
            {"symbol": symbol, "code": code.value},
            closer,
        )
        # An order that would reduce the position sent meanwhile (the strategy trades on
        # under a risk plugin's flatten): the close waits for its cancel, never beside it.
        self._close_or_wait(symbol, closer, replay=True)

    def _journal_owed(
        self, symbol: str, closer: _Closer, refused: ReasonCode | None = None, reason: str = ""
    ) -> None:
        """Journal that ``closer`` owes ``symbol``'s close (a ``close_owed`` event: the newest
        of a symbol is what ``Journal.closes_owed`` gives the next start), unless the journal
        says so already: from its first close until the position is flat, so a process that
        dies meanwhile — the close refused, unanswered, never received — resumes it.
        ``refused``: a refusal no retry changes (``reason``, the venue's words) ended the last
        close: said as an error, and neither this run nor a restart sends it again while the
        position is the same."""
        record = (closer.tag, None if refused is None else refused.value)
        if self._owed.get(symbol) == record:
            return
        self._owed[symbol] = record
        held = self.portfolio.position(symbol).quantity
        data = {"symbol": symbol, "by": closer.tag, "owed": True, "refused": record[1]}
        if refused is None:
            message = (
                f"{closer.title} owes the close of {held:.10g} {symbol} until it is flat (sent "
                "again while refused for a passing reason; a restart resumes it)"
            )
            self._state("close_owed", message, {**data, "position": held})
            return
        message = (
            f"{closer.title}: the close of {held:.10g} {symbol} was refused for a reason no retry "
            f"changes ({refused.value or 'no reason code'}: {reason or 'no reason given'}); "
            "the bot does not send it again, nor does a restart: a person must close the "
            f"position ({self._how_to_close(symbol, refused)})"
        )
        log.error("%s: %s", self.config.bot_name, message)
        self._state("close_owed", message, {**data, "position": held})

    def _owed_done(self, symbol: str, why: str) -> None:
        """The close ``_journal_owed`` journaled is owed no more (``why``): journaled, so a
        restart does not resume it."""
        record = self._owed.pop(symbol, None)
        if record is None:
            return
        title = _closer_named(record[0]).title
        self._state(
            "close_owed",
            f"{title}: the close of {symbol} is no longer owed: {why}",
            {"symbol": symbol, "by": record[0], "owed": False},
        )

    def resume_closes(self, owed: Mapping[str, tuple[str, str | None]]) -> list[str]:
        """Resume what risk plugins' and the stop policy's flattens of earlier runs still owe
        (``Journal.closes_owed``: symbol -> (their closes' tag, the code of a refusal no retry
        changes, or None)), once the account is restored or reconciled and before the first
        bar. The symbols closed now.

        A position found flat owes nothing more (its close, its stop or a person closed it
        while the bot was down): the debt is cleared and nothing is sent (where reduce-only is
        not enforced, a close would open the other way); a close of it still working is
        cancelled. A close still working (re-armed, adopted) is the flatten's, on its way:
        none is sent beside it. A close refused for a reason no retry changes is said again, as
        an error, and not sent. Any other position is closed now as the flatten closes
        (``_close_keeping_guards``: its guards kept until the close fills), under an id no
        earlier run used. A halt's flatten in force closes every position itself."""
        closed: list[str] = []
        for symbol, (tag, refused) in owed.items():
            closer = _closer_named(tag)
            self._owed[symbol] = (tag, refused)  # what the journal holds
            position = self.portfolio.open_positions.get(symbol)
            if self._flatten_in_force is not None:
                self._owed_done(symbol, "the emergency stop's flatten closes it instead")
            elif position is None:
                self._owed_done(symbol, self._flat_at_restart(symbol, tag))
            elif refused is not None:
                self._still_refused(symbol, closer, refused, position.quantity)
            elif self._resume_close(symbol, closer):
                closed.append(symbol)
        return closed

    def _flat_at_restart(self, symbol: str, tag: str) -> str:
        """An owed close's position was flat at a restart: a close of it still working has
        nothing to close (cancelled). What is said of it."""
        moot = [
            o.client_order_id for o in self.book.orders(symbol) if o.reduce_only and o.tag == tag
        ]
        for order_id in moot:
            self.cancel(order_id)
        cancelled = f"; {', '.join(moot)} cancelled" if moot else ""
        return f"the position was flat at the restart, so no close was sent{cancelled}"

    def _still_refused(self, symbol: str, closer: _Closer, refused: str, held: float) -> None:
        """A restart found the position an earlier run's close could not close (a refusal no
        retry changes): said again, as an error; not sent."""
        how = self._how_to_close(symbol, _refusal_code(refused))
        self._closers[symbol] = closer
        self._closes_failed.add(symbol)
        self._stuck[symbol] = held
        message = (
            f"{closer.title}: the close of {held:.10g} {symbol} an earlier run owed was refused "
            f"for a reason no retry changes ({refused or 'no reason code'}); not sent again: "
            f"a person must close the position ({how})"
        )
        log.error("%s: %s", self.config.bot_name, message)
        self._state(
            "close_owed",
            message,
            {
                "symbol": symbol,
                "by": closer.tag,
                "owed": True,
                "refused": refused,
                "position": held,
                "resumed": True,
            },
        )

    def _resume_close(self, symbol: str, closer: _Closer) -> bool:
        """Close ``symbol`` as ``closer``'s flatten owed it, unless a close of it is on its
        way already. Whether a close was sent now."""
        self._closers[symbol] = closer
        on_way = [o.client_order_id for o in self.book.orders(symbol) if self._is_close(o)]
        if on_way:
            self._journal_flattened(
                f"resumed at the restart: {', '.join(on_way)} still closes {symbol}",
                {"symbol": symbol, "resumed": True, "closes": on_way},
                closer,
            )
            return False
        held = self.portfolio.open_positions[symbol].quantity
        self._journal_flattened(
            f"resumed at the restart: closing {held:.10g} {symbol} at market",
            {"symbol": symbol, "resumed": True},
            closer,
        )
        self._close_keeping_guards((symbol,), closer)
        return True

    def _close_late_entry(
        self, order: Order, fill: Fill, held: float, closer: _Closer = _EMERGENCY
    ) -> None:
        """An order filled while a flatten closes its symbol and opened a position: under a
        halt's flatten, an entry whose cancel lost the race (the venue had filled a market
        entry before it, or refused it too late); under any, a reduce-only order the venue let
        go past flat (a close and a stop-loss that both filled where reduce-only is checked
        before the order is sent, not as it fills). The flatten's promise is a flat position,
        so what the fill opened is closed at market, reduce-only, tagged as the flatten's
        closes, and the bracket children an entry's fill placed (the venue brokers place them
        themselves) are cancelled at once: they would protect nothing.

        The close is journaled in a further step of the flatten (``_journal_flattened``): for
        the halt's, a ``flattened`` event naming every flatten close still on its way
        (``flatten_owed`` reads the newest), so a process that dies before this close fills
        owes the flatten at its next start, as for the flatten's own closes."""
        entry_id = order.client_order_id
        # Read before the cancels below: one the venue answers at once may end the wait and
        # send the waiting close (``_close_when_unguarded``), which closes this fill's part too.
        waiting = fill.symbol in self._closes_waiting
        if not order.reduce_only:
            for role in ("sl", "tp"):
                self.cancel(child_order_id(entry_id, role))
        self.cancel(entry_id)  # what of it still works (asked once already: ask again)
        # A fill that reduced a position the flatten closes already (its close is reduce-only:
        # it cannot reverse) opened only what went past flat.
        quantity = _opened_by(fill, held)
        if quantity <= 0.0:
            return
        symbol = fill.symbol
        children = [
            child_order_id(entry_id, role)
            for role in ("sl", "tp")
            if not order.reduce_only and child_order_id(entry_id, role) in self.book
        ]
        if not waiting and children and not self._keeps_guards(symbol):
            # Spot: the exits the venue placed for the late fill sell from the same coins; a
            # close beside them and one of them filling would sell twice what was bought. The
            # close waits for their cancels (asked above), then closes what no close covers.
            self._wait_for(symbol, children)
            self._journal_flattened(
                f"{entry_id} filled {fill.side} {fill.quantity:.10g} {symbol} after the "
                f"flatten's cancel; closing it once the venue confirmed the cancel of "
                f"{', '.join(children)}",
                {"late_fill": entry_id, "quantity": quantity, "waiting_for": children},
                closer,
            )
            return
        if waiting:
            # The flatten's close of the symbol waits for orders to end: sent then, it closes
            # what is held then, this fill's part too. A close of it now beside would be two.
            self._journal_flattened(
                f"{entry_id} filled {fill.side} {fill.quantity:.10g} {symbol} after the flatten's "
                "cancel; the close that waits closes it with the rest",
                {"late_fill": entry_id, "quantity": quantity},
                closer,
            )
            return
        close_id = self._send_close(symbol, fill.side.opposite, quantity, closer)
        how = f"closing it at market ({close_id})" if close_id else "the close was refused"
        what = (
            f"went {quantity:.10g} {symbol} past flat ({fill.side} {fill.quantity:.10g}: the venue "
            "did not hold it to reduce-only)"
            if order.reduce_only
            else f"filled {fill.side} {quantity:.10g} {symbol} after the flatten's cancel"
        )
        self._journal_flattened(
            f"{entry_id} {what}; {how}", {"late_fill": entry_id, "quantity": quantity}, closer
        )

    def restore(self, state: CarriedState) -> str:
        """Carry a bot's account and working orders over from its earlier runs (before start).

        Returns a one-line summary for the journal and the log.
        """
        # What is journaled here (re-armed orders, the summary) is stamped at the last bar.
        self.restore_clock(state.last_bar_ts)
        booked = self._replay(state)
        for symbol, position in self.portfolio.open_positions.items():
            self.portfolio.marks.setdefault(symbol, position.average_price)
        self._carry()
        if self.restorer is not None:
            self.restorer.restore_account(state.fills)
            if isinstance(self.restorer, CashFlowRestorer):
                # The paper broker's own funding: its cash must be the bot's, not the fills'.
                self.restorer.restore_cash_flows(booked)
        self.known_ids = state.known_order_ids
        self._vetoed = state.vetoed_intents
        rearmed = 0
        for order, filled in state.working:
            self.journal.record_order(order, OrderStatus.PENDING, self._now, "re-armed on restart")
            self.book.add(order, filled)
            update = self.broker.submit(order)
            if (
                update.status is OrderStatus.REJECTED
                and update.code is ReasonCode.DUPLICATE_CLIENT_ID
            ):
                # The venue still holds it: it is working, which is what we wanted.
                update = OrderUpdate(order.client_order_id, OrderStatus.OPEN, update.ts)
            self._on_order_update(update)
            rearmed += 1
        for order in state.unacknowledged:
            self.journal.record_order(
                order,
                OrderStatus.CANCELLED,
                self._now,
                "never acknowledged before the restart; not re-sent",
            )
        positions = ", ".join(
            f"{s} {p.quantity:+.10g} @ {p.average_price:.10g}"
            for s, p in self.portfolio.open_positions.items()
        )
        summary = (
            f"restored from {state.runs} earlier run(s): {len(state.fills)} fill(s), cash "
            f"{self.portfolio.cash:,.2f}, positions [{positions}], {rearmed} order(s) re-armed, "
            f"{len(state.unacknowledged)} unacknowledged order(s) closed"
        )
        self._state("restored", summary, {"start_equity": self._start_equity})
        return summary

    @property
    def carried_trades(self) -> int:
        """How many of ``portfolio.trades`` earlier runs closed (restored, not made here)."""
        return self._carried_trades

    def _carry(self) -> None:
        """This run starts where the account was left: its figures count only the trades and
        fees made from here, from the equity journaled at the last bar an earlier run handled
        (``restore_equity``, which the session calls first) or, when none was, from the carried
        account marked at its entry prices."""
        self._carried_trades = len(self.portfolio.trades)
        self._carried_fees = self.portfolio.fees_paid
        self._carried_cash_flows = self.portfolio.cash_flows
        if self._start_equity is None:
            self._start_equity = self.portfolio.equity()

    def restore_from_venue(
        self,
        state: CarriedState,
        plan: ReconcilePlan,
        now: int,
        missed_flows: Sequence[CashFlow] = (),
    ) -> str:
        """Carry a bot's account over from its journal *as the venue confirms it* (a broker
        whose account lives at a venue; ``reconcile.py`` made ``plan``). Nothing is re-sent:
        orders still working at the venue are adopted under their own ids (but a bracket child
        whose sibling filled is cancelled, and one protecting an open position that the venue
        never received is sent), fills the bot missed while down are journaled, and a
        disagreement the plan could not resolve halts the bot (Degraded) until a person resumes
        it.

        ``missed_flows``: the venue's payments outside fills since the bot's last journaled
        one (``reports-cash-flows``), booked in time order with the missed fills, so that a
        payment lands in the trade that held its position then (an MT5 swap on a deal that
        closed the position while the bot was down); ``book_missed_cash_flows`` says them.
        """
        self._replay(state)
        self._carry()  # fills missed while down are this run's: journaled in it
        journaled = {order.client_order_id: order for order, _ in state.working}
        journaled.update({order.client_order_id: order for order in state.unacknowledged})
        # An order's status log lives in the run that journaled it: one carried over is
        # journaled in this run first (as a re-armed one is), before the fills it had while
        # the bot was down are booked, then given the venue's word.
        adopted = self._journal_carried_over(plan, journaled, now)
        flows = sorted(missed_flows, key=lambda flow: flow.ts)
        done = 0
        # Each fill's status row says what was found (a part of an order later cancelled is
        # ``partially_filled``); the last fill of an order the venue filled says the venue's
        # word, which is then not written again below.
        statuses, said = fill_statuses(plan)
        # Made by the venue while the bot was down, at their own times (the adjustments, a
        # position found different, have none of their own).
        self._ahead = tuple(plan.missed_fills)
        for fill, status in zip((*plan.missed_fills, *plan.adjustments), statuses, strict=True):
            while done < len(flows) and flows[done].ts <= fill.ts:
                if self._on_cash_flow(flows[done]):
                    self._flows_caught_up.append(flows[done])
                done += 1
            self._apply_reconciled_fill(fill, status)
        for symbol, position in self.portfolio.open_positions.items():
            self.portfolio.marks.setdefault(symbol, position.average_price)
        for order_id, report in plan.closed:
            if order_id in said:
                continue
            self.journal.update_order(
                order_id,
                report.status,
                report.ts or now,
                closed_reason(report),
                report.venue_order_id,
            )
        for order_id in plan.never_sent:
            self.journal.update_order(
                order_id,
                OrderStatus.CANCELLED,
                now,
                "not sent again: the journal and the venue disagree (Degraded); a person "
                "settles the position first"
                if order_id in plan.withheld
                else "gone from the venue while the bot was down (no report of it left: its "
                "position closed, or cancelled there); not re-sent"
                if order_id in plan.gone
                else "the venue never received it; not re-sent",
            )
        for report, order in zip(plan.adopted, adopted, strict=True):
            self.journal.update_order(
                report.client_order_id,
                report.status,
                now,
                "adopted from the venue on restart",
                report.venue_order_id,
            )
            self.book.add(order, report.filled_quantity)
        self.known_ids = state.known_order_ids | frozenset(
            report.client_order_id for report in plan.adopted
        )
        self._vetoed = state.vetoed_intents
        # Children of a working entry the venue never received are booked (not sent yet) so
        # that they are cut and grown as the adopted ones are; sent below at that size.
        unsent = self._book_resent(plan, journaled, now)
        # What earlier runs cut off children stays cut (before any of them is grown), and a cut
        # they decided but had not made is made now.
        self._restore_cuts(state.working)
        self._cap_restored_children(plan, now, unsent)
        followed = self._follow_brackets(plan, now, self._children_ended(state, plan))
        # A bracket child whose sibling filled protects a position that is gone: cancelled at
        # the venue, as the broker cancels a sibling when it sees the fill.
        for order_id in plan.orphaned:
            self.cancel(order_id)
        # A stop (or target) the venue never received while its position is open: the bot died
        # between the entry's fill and the venue's ack of the child. Sent now, under its own id
        # (the venue has no order of that id: a broker refuses a duplicate anyway).
        asked = self._resend_through_follower(plan.resend, journaled, followed)
        for order_id in plan.resend:
            if order_id in unsent:
                booked = self.book.get(order_id)
                if booked is not None:  # not cut to nothing (``_cap_restored_children``)
                    self._send(booked.order)  # as cut, then grown to its entry's fills
                continue
            order = journaled[order_id]
            self.journal.record_order(order, OrderStatus.PENDING, now, _resent(order_id, plan))
            if order.parent_id in asked:
                self.book.add(order)  # placed by the broker, below
            else:
                self._send(order)
        follower = self.brackets
        if follower is not None:
            for entry, size in asked.values():
                follower.protect_filled(entry, size)
        earlier = {order.client_order_id: done for order, done in state.working}
        # A Degraded bot sends nothing: no protective order for an entry filled while down
        # either (the plan withheld the children it would have sent again, too).
        protected = (
            0
            if plan.degraded
            else self._protect_missed_entries(plan, journaled, now, followed, earlier)
        )
        if plan.degraded:
            self.degraded_reason = "reconciliation: " + "; ".join(plan.mismatches)
            self._halt_degraded(self.degraded_reason)
        summary = f"reconciled with the venue: {plan.summary()}"
        if protected:
            summary += f", {protected} protective order(s) placed for entries filled while down"
        self._state(
            "degraded" if plan.degraded else "reconciled",
            summary,
            {"start_equity": self._start_equity},
        )
        # After the account is the venue's and said so, before the first bar: what the
        # running bot would have said or done as it saw these ends.
        self._stops_ended_while_down(plan, journaled, state)
        if not plan.degraded:  # a Degraded bot's position is a person's to settle
            self._close_spent_while_down(state, plan, journaled)
            self._close_past_flat_while_down(state, plan, journaled)
        return summary

    def _stops_ended_while_down(
        self, plan: ReconcilePlan, journaled: Mapping[str, Order], state: CarriedState
    ) -> None:
        """A bracket's stop-loss the venue ended while the bot was down after executing only a
        part of what it was for — its market order met a thin book and the venue ended the
        rest (Binance ``EXPIRED``, Bybit ``PartiallyFilledCanceled``) — with the position it
        protected still open: said as loudly as when the bot runs
        (``_stop_cancelled_outside``), for the bot does not place it again. Its take-profit is
        cancelled all the same (``plan.orphaned``), as the running ccxt broker cancels a
        child's sibling once that child ended with a part filled (``CcxtBroker._final``).

        A stop that ended with nothing executed is not said here: the journal does not keep
        the cancels the bot asked before it died (a flatten's, a cut to nothing, an exit
        ending its children: ``_cancels_asked`` lives in the process), so a person's cancel
        cannot be told from the bot's own, and the bot's own is no news. Only the venue ends a
        triggered stop's market order part-way."""
        booked: dict[str, float] = {}
        for fill in (*state.fills, *plan.missed_fills):
            booked[fill.client_order_id] = booked.get(fill.client_order_id, 0.0) + fill.quantity
        for order_id, report in plan.closed:
            stop = journaled.get(order_id)
            if stop is None or stop.tag != STOP_LOSS_TAG or stop.parent_id is None:
                continue
            if report.status is OrderStatus.REJECTED:
                continue
            # What executed, by the fills booked (a venue's report of a triggered stop may
            # say 0), or by the report.
            executed = max(booked.get(order_id, 0.0), report.filled_quantity)
            tolerance = _QTY_TOLERANCE * max(report.quantity, 1.0)
            if executed <= tolerance:
                continue  # never executed: whose cancel it was is not known (above)
            if executed >= report.quantity - tolerance:
                continue  # it closed all it was for
            # Said by what executed, not by the report's status: a venue may report the
            # triggered conditional order itself as filled (Binance USDⓈ-M) while its market
            # order executed only a part (walkthrough W20).
            self._stop_cancelled_outside(
                stop,
                f"ended at the venue while the bot was down with only {executed:.10g} of "
                f"{report.quantity:.10g} executed",
            )

    def expect_spec_flatten(self) -> None:
        """The bot's spec holds an emergency stop with flatten (the operator writes
        ``spec.emergencyStop`` into the pod's bot.yaml, and sends ``EmergencyStop(flatten)``
        once the runtime answers): one given while the bot was down is in no journal yet, and
        its flatten closes every position. Told before the reconciliation, so that a restart's
        own close (``_close_spent_while_down``) is not sent beside it: the flatten would not
        count it as on its way, and on spot, with no reduce-only, both could sell."""
        self._spec_flatten = True

    def _closes_owed_at_restart(self) -> frozenset[str] | None:
        """The symbols whose position a close already owed closes at this restart: None for
        every symbol (a halt's flatten owed or in force — ``BotSession`` flattens right after
        the reconciliation —, or a journal that cannot tell); else those a risk plugin's or
        the stop policy's close is owed for (``Journal.closes_owed``, resumed right after
        too). Read from the journal: the engine is told of them only after
        ``restore_from_venue``."""
        if self._spec_flatten:
            return None  # the spec's halt flattens (``expect_spec_flatten``)
        journal = self.journal
        if not isinstance(journal, _OwedReader):
            return None  # it cannot say: a close on its own could be the second one
        bot = self.config.bot_name
        if journal.flatten_owed(bot) is not None or journal.flatten_in_force(bot) is not None:
            return None
        return frozenset(journal.closes_owed(bot))

    def _close_spent_while_down(
        self, state: CarriedState, plan: ReconcilePlan, journaled: Mapping[str, Order]
    ) -> None:
        """A bracket entry that went on filling while the bot was down, its children not grown
        (the bot grows them as it sees each fill), and whose child then filled: the part the
        children did not cover (as the venue reports them) is held with no stop. Closed at
        market, reduce-only, as the running bot closes a part filled after its bracket ended
        (``_bracket_after_fill``: ``bracket_spent``), at most what is held on that side.

        Never a second close of a position: none for a symbol a close already covers at this
        restart — a halt's flatten owed or in force, a risk plugin's or the stop policy's
        close owed (``_closes_owed_at_restart``: those close the whole position, and would
        not count this one as on its way), or any close of the symbol still working (an
        earlier restart's, adopted). Under an id derived from the entry's
        (``spent_close_id``), the first one no run sent: a later restart never sends one
        twice, and sends the next only for what the earlier ones did not close."""
        cuts = carried_cuts(state.working)
        reports = {order_id: report for order_id, report in plan.closed}
        reports.update({report.client_order_id: report for report in plan.adopted})
        spent = spent_uncovered(
            journaled,
            (*state.fills, *plan.missed_fills),
            cuts,
            reports,
            plan.never_sent,
        )
        if not spent:
            return
        owed = self._closes_owed_at_restart()
        on_way = self._closes_on_way()
        sent: dict[str, float] = {}
        for part in spent:
            covered_by = (
                "a flatten owed (or a journal that cannot rule one out)"
                if owed is None
                else "a close owed"
                if part.symbol in owed
                else "a close on its way"
                if (part.symbol, part.side) in on_way
                else ""
            )
            if covered_by:
                log.warning(
                    "%s: %s: %.10g filled beyond its spent bracket's stop is not closed on its "
                    "own: %s closes %s",
                    self.config.bot_name,
                    part.entry_id,
                    part.quantity,
                    covered_by,
                    part.symbol,
                )
                continue
            held = self.portfolio.position(part.symbol).quantity * -part.side.sign
            quantity = min(part.quantity, held - sent.get(part.symbol, 0.0))
            if quantity <= _FLAT:
                continue
            close_id = self._next_spent_close_id(part.entry_id)
            if close_id is None:
                continue
            message = (
                f"{part.entry_id}: {quantity:.10g} filled while the bot was down beyond what its "
                f"stop-loss and take-profit covered, after its bracket ended; closing it at "
                f"market ({close_id})"
            )
            log.warning("%s: %s", self.config.bot_name, message)
            self._state(
                "bracket_spent",
                message,
                {"client_order_id": part.entry_id, "quantity": quantity, "restart": True},
            )
            orders = self.stats.orders
            self._process_intent(
                OrderIntent(
                    part.symbol, part.side, quantity, reduce_only=True, tag=BRACKET_SPENT_TAG
                ),
                fixed_id=close_id,
            )
            if self.stats.orders > orders:
                sent[part.symbol] = sent.get(part.symbol, 0.0) + quantity

    def _close_past_flat_while_down(
        self, state: CarriedState, plan: ReconcilePlan, journaled: Mapping[str, Order]
    ) -> None:
        """What a reduce-only order took past flat while the bot was down, or what the running
        bot's close of such a part left owed (the venue never received it, or ended it short):
        closed at market, reduce-only (``PAST_FLAT_TAG``), as the running bot does
        (``_close_past_flat``), at most what is held on that side. Left without it, the
        restart held a position no order asked for, with no stop, and nothing closed it.

        None for a symbol a close already covers at this restart: a flatten or close owed
        (``_closes_owed_at_restart``), or any close of the symbol still working (the running
        bot's own past-flat close, adopted). Under the bot's next free id: a later restart
        finds it journaled, working (on its way), ended or never received (owed again)."""
        reports = {order_id: report for order_id, report in plan.closed}
        reports.update({report.client_order_id: report for report in plan.adopted})
        owed_parts = past_flat_owed(
            journaled, state.fills, plan.missed_fills, reports, plan.never_sent, PAST_FLAT_TAG
        )
        if not owed_parts:
            return
        owed = self._closes_owed_at_restart()
        on_way = self._closes_on_way()
        sent: dict[str, float] = {}
        for part in owed_parts:
            if owed is None or part.symbol in owed or (part.symbol, part.side) in on_way:
                continue  # that close covers the whole position
            held = self.portfolio.position(part.symbol).quantity * -part.side.sign
            quantity = min(part.quantity, held - sent.get(part.symbol, 0.0))
            if quantity <= _FLAT:
                continue
            what = (
                f"left {quantity:.10g} {part.symbol} past flat while the bot was down, which no "
                "order of the bot asked for"
            )
            if self._send_past_flat_close(
                part.order_id, part.symbol, part.side, quantity, what, restart=True
            ):
                sent[part.symbol] = sent.get(part.symbol, 0.0) + quantity

    def _closes_on_way(self) -> set[tuple[str, Side]]:
        """(symbol, side) of each close working at a restart (reduce-only, not a bracket's
        guard): one closes on its own side only — a reduce-only order the other way (a
        strategy's limit exit of the position before it went past flat) would add to what
        a restart's close is for."""
        return {(o.symbol, o.side) for o in self.book.orders() if o.reduce_only and not _guards(o)}

    def _next_spent_close_id(self, entry_id: str) -> str | None:
        """The first restart close id of ``entry_id`` (``spent_close_id``) no run journaled;
        None, said, once every one was."""
        for attempt in range(1, SPENT_CLOSES_MAX + 1):
            close_id = spent_close_id(entry_id, attempt)
            if close_id not in self.known_ids:
                return close_id
        message = (
            f"{entry_id}: {SPENT_CLOSES_MAX} restart closes of what filled beyond its spent "
            "bracket were sent already; no more: a person must close the rest"
        )
        log.error("%s: %s", self.config.bot_name, message)
        self.journal.record_event(self._now, "bracket_spent", message)
        return None

    def _journal_carried_over(
        self, plan: ReconcilePlan, journaled: Mapping[str, Order], now: int
    ) -> list[Order]:
        """Journal in this run, pending, each order ``plan`` gives the venue's word on (closed
        or never received at the venue, adopted): before any fill it had while the bot was
        down is booked, so that its status log reads carried over, then filled, then the
        venue's word — never filled, then pending again. The adopted orders as the bot works
        them (``adopted_order``), in ``plan.adopted``'s order."""
        for order_id, report in plan.closed:
            order = journaled.get(order_id) or order_from_report(report)
            self.journal.record_order(order, OrderStatus.PENDING, now, "carried over")
        for order_id in plan.never_sent:
            if order_id in journaled:
                self.journal.record_order(
                    journaled[order_id], OrderStatus.PENDING, now, "carried over"
                )
        adopted: list[Order] = []
        for report in plan.adopted:
            # The venue's word on what works now: its quantity and price (a bracket child
            # resized as its entry filled, an order amended or moved before the restart).
            order = adopted_order(report, journaled.get(report.client_order_id))
            self.journal.record_order(
                order,
                OrderStatus.PENDING,
                now,
                "carried over" if report.client_order_id in journaled else "found at the venue",
            )
            adopted.append(order)
        return adopted

    def _resend_through_follower(
        self, resend: Sequence[str], journaled: Mapping[str, Order], followed: frozenset[str]
    ) -> dict[str, tuple[Order, float]]:
        """The entries whose every child is to be sent again (the venue never received them:
        the bot died between the entry's fill and their placing), for a broker that places
        brackets itself to place as at the fill (``protect_filled``): on Binance spot one OCO
        list, where two separate orders hold the coin twice and the venue refuses the second.
        Entry id -> (the entry as its children protect it (``bracket_entry``), their size).
        An entry the broker follows already (it still works), or children that are not one
        whole bracket of one size, are sent as orders."""
        if self.brackets is None:
            return {}
        groups: dict[str, list[Order]] = {}
        for order_id in resend:
            child = journaled[order_id]
            if child.parent_id is not None and child.parent_id not in followed:
                groups.setdefault(child.parent_id, []).append(child)
        asked: dict[str, tuple[Order, float]] = {}
        for parent_id, children in groups.items():
            if any(child_order_id(parent_id, role) in self.book for role in ("sl", "tp")):
                continue  # a sibling works at the venue (adopted): not one whole bracket
            entry = bracket_entry(children, journaled.get(parent_id))
            if entry is not None:
                asked[parent_id] = (entry, children[0].quantity)
        return asked

    def _book_resent(
        self, plan: ReconcilePlan, journaled: Mapping[str, Order], now: int
    ) -> frozenset[str]:
        """The bracket children to send again (the venue never received them) whose entry
        still works (adopted), booked and journaled now but not sent: so that their cut is
        restored (``_restore_cuts``) and they are capped to the position and grown to what
        their entry filled as the adopted children are, before any size leaves — else the
        entry's next fill grows a resent child back over its cut. Their ids."""
        booked: list[str] = []
        for order_id in plan.resend:
            child = journaled[order_id]
            if child.parent_id is None or child.parent_id not in self.book:
                continue
            self.journal.record_order(child, OrderStatus.PENDING, now, _resent(order_id, plan))
            self.book.add(child)
            booked.append(order_id)
        return frozenset(booked)

    def _restore_cuts(self, working: Sequence[tuple[Order, float]]) -> None:
        """The cuts earlier runs made to the bracket children the restart puts back — adopted
        from the venue, or booked to be sent again (``_book_resent``) — (``carried_cuts``, from
        the journal), back in the book and told to a broker that sizes the children itself
        (``ChildCutter``), before anything grows them: otherwise the entry's next fill — or the
        broker following it now — grows a child back over its cut, to close more than the
        position holds."""
        cuts = {
            child_id: cut
            for child_id, cut in carried_cuts(working).items()
            if child_id in self.book  # adopted, or booked to be sent again
        }
        for child_id, cut in cuts.items():
            self.book.restore_cut(child_id, cut)
        if cuts and isinstance(self.brackets, ChildCutter):
            self.brackets.restore_cuts(cuts)

    def _cap_restored_children(
        self, plan: ReconcilePlan, now: int, unsent: frozenset[str] = frozenset()
    ) -> None:
        """After a restart's reconciliation the adopted children are cut to what is held, as
        after a closing fill (``children_over_position``): a cut an earlier run had not made
        at the venue before it died (a cut to nothing whose cancel had not landed, a closing
        fill it never saw) is made now. Not where children follow their own tickets
        (``TicketBrackets``: the broker's reports size them), nor for a child already to be
        cancelled (its sibling filled). A child booked to be sent again (``unsent``) is cut in
        the book alone: the venue has nothing of it yet."""
        if self._tickets is not None:
            return
        skip = self._cancels_asked | set(plan.orphaned)
        symbols = {w.order.symbol for w in self.book if w.order.parent_id is not None}
        for symbol in sorted(symbols):
            children = self.book.children_left(symbol, lambda c: c.client_order_id in skip)
            held = self.portfolio.position(symbol).quantity
            cuts = children_over_position(held, children, self.instrument(symbol).lot_step)
            by = f"the position held {held:.10g} when the bot started again"
            for child_id, left in cuts:
                if child_id in unsent:
                    self._cut_unsent(child_id, left, by, now)
                else:
                    self._cut_child(child_id, left, by, now)

    def _cut_unsent(self, child_id: str, left: float, by: str, ts: int) -> None:
        """``_cut_child`` for a child booked but not sent yet (``_book_resent``): resized in
        the book and the journal, and a broker sizing children itself told the whole cut (as
        ``_restore_cuts`` tells it, before it follows the entry): it grows the child from
        there. Cut to nothing, it is never sent (cancelled in the journal) and the rest of its
        entry is cancelled, as for a child cut to nothing at the venue."""
        if left > 0.0:
            resized = self.book.shrink(child_id, left)
            if resized is not None:
                child, previous = resized
                self.journal.resize_order(
                    child_id,
                    child.quantity,
                    ts,
                    f"resized from {previous:.10g} to {child.quantity:.10g}: {by}",
                )
                if isinstance(self.brackets, ChildCutter):
                    self.brackets.restore_cuts({child_id: self.book.cut_of(child_id)})
            return
        working = self.book.remove(child_id)
        self.journal.update_order(
            child_id, OrderStatus.CANCELLED, ts, f"nothing left to close: {by}; not sent again"
        )
        if working is not None:
            self._end_entry_of_cut(working.order, by)

    def _children_ended(self, state: CarriedState, plan: ReconcilePlan) -> frozenset[str]:
        """Bracket children an earlier run placed that work no more — ended before the restart
        (journaled filled, cancelled, cut to nothing, refused) or at the venue while the bot
        was down — and are not to be sent again."""
        working = {order.client_order_id for order, _ in state.working}
        working.update(order.client_order_id for order in state.unacknowledged)
        ended = {i for i in state.known_order_ids if i not in working and i not in self.book}
        ended.update(order_id for order_id, _ in plan.closed)
        return frozenset(ended.difference(plan.resend, plan.never_sent))

    def _follow_brackets(
        self, plan: ReconcilePlan, now: int, ended: frozenset[str] = frozenset()
    ) -> frozenset[str]:
        """Bracket entries still working at the venue, told to a broker that places their
        children itself (``follows-brackets``): the venue keeps the entry, not its stop-loss.
        The children of what already filled are in the book (adopted, or placed now by the
        broker). An entry one of whose children ``ended`` is not followed: its rest is
        cancelled, as the running bot cancels it when a child fills or is cut to nothing
        (a child's id is sent once: what the entry fills from now on would have no stop); and
        one whose cancel is asked already (``_cap_restored_children``) neither. The entries'
        ids."""
        follower = self.brackets
        if follower is None:
            return frozenset()
        followed: list[str] = []
        for report in plan.adopted:
            working = self.book.get(report.client_order_id)
            if working is None:
                continue
            order = working.order
            if order.parent_id is not None or (
                order.stop_loss is None and order.take_profit is None
            ):
                continue
            if self._bracket_ended(order, working.filled, ended, now):
                followed.append(order.client_order_id)
                continue
            follower.follow_bracket(order)
            followed.append(order.client_order_id)
            if working.filled > 0.0:
                placed, resized = self.book.protect(
                    order, working.filled, now, self._child_placeable
                )
                self._journal_children(
                    placed, resized, now, OrderStatus.PENDING, "protects what of its entry filled"
                )
        return frozenset(followed)

    def _bracket_ended(self, entry: Order, filled: float, ended: frozenset[str], now: int) -> bool:
        """Whether adopted ``entry``'s bracket is over (``_follow_brackets``): a child of it
        ended — then it is never made again, and the rest of the entry is cancelled
        (``bracket_entry_cancelled``) — or its cancel is asked already."""
        gone = [c for c in bracket_children(entry, filled, now) if c.client_order_id in ended]
        for child in gone:
            self.book.child_ended(child.client_order_id)
        if gone:
            by = "not working at the venue when the bot started again"
            self._end_entry_of_cut(gone[0], by, "ended before the restart")
        return bool(gone) or entry.client_order_id in self._cancels_asked

    def _protect_missed_entries(
        self,
        plan: ReconcilePlan,
        journaled: dict[str, Order],
        now: int,
        followed: frozenset[str] = frozenset(),
        earlier: Mapping[str, float] = _NO_FILLS,
    ) -> int:
        """An entry with a stop-loss or take-profit that filled while the bot was down has no
        protection at the venue (the bot places a bracket's children when it sees the fill):
        place them now, sized on what filled, unless an earlier run already sent them — or the
        broker follows the entry's bracket (``followed``: it sizes them on all that filled).

        A broker that places brackets itself (``follows-brackets``) is asked to place them
        (``protect_filled``), as it would have at the fill: it knows how its venue takes them
        (Binance spot: one OCO list, since a stop-loss sent alone holds the coin and the venue
        refuses the take-profit). The children are journaled and booked here all the same.
        Children an earlier run placed for the part that filled before it stopped (``earlier``:
        what each entry had filled) are grown to all that filled the same way, while every one
        of them still works (adopted): otherwise the rest of the position had no stop."""
        filled: dict[str, float] = {}
        for fill in plan.missed_fills:
            parent = journaled.get(fill.client_order_id)
            if parent is None or parent.client_order_id in followed:
                continue
            if parent.stop_loss or parent.take_profit:
                filled[parent.client_order_id] = filled.get(parent.client_order_id, 0.0) + (
                    fill.quantity
                )
        sent = 0
        for parent_id, quantity in filled.items():
            children = bracket_children(journaled[parent_id], quantity, now)
            if any(child.client_order_id in self.known_ids for child in children):
                # The venue has (or had) them: reconciliation adopted what still works.
                total = earlier.get(parent_id, 0.0) + quantity
                sent += self._grow_children(journaled[parent_id], total, now)
                continue
            for child in children:
                self.journal.record_order(
                    child, OrderStatus.PENDING, now, "protects an entry filled while down"
                )
                if self.brackets is None:
                    self._send(child)
                else:
                    self.book.add(child)
                sent += 1
            if self.brackets is not None:
                self.brackets.protect_filled(journaled[parent_id], quantity)
        return sent

    def _grow_children(self, parent: Order, total: float, now: int) -> int:
        """Bring the children an earlier run placed for part of ``parent`` to ``total`` (all
        of it that filled), through a broker that places brackets itself (``protect_filled``:
        it resizes them at the venue as at a fill), when every one it placed still works here;
        a child that ended (filled, cancelled) means the bracket is spent or a person ended
        it: nothing is grown. The number of children placed or grown."""
        follower = self.brackets
        if follower is None:
            return 0  # only such a broker resizes children at the venue
        ids = [child.client_order_id for child in bracket_children(parent, total, now)]
        if not all(i in self.book for i in ids if i in self.known_ids):
            return 0
        placed, resized = self.book.protect(parent, total, now)
        if not (placed or resized):
            return 0
        self._journal_children(
            placed, resized, now, OrderStatus.PENDING, "protects what of its entry filled"
        )
        follower.protect_filled(parent, total)
        return len(placed) + len(resized)

    def _apply_reconciled_fill(self, fill: Fill, status: FillStatus) -> None:
        """A fill the venue reports and the journal lacked: booked and journaled like any fill,
        under the status row ``status`` (``fill_statuses``), but not shown to the strategy (it
        has not started; it rebuilds from history)."""
        portfolio = self.portfolio
        trades_before = len(portfolio.trades)
        portfolio.apply(fill)
        closed = [
            (seq, portfolio.trades[seq]) for seq in range(trades_before, len(portfolio.trades))
        ]
        self.journal.record_fill(
            fill,
            portfolio.positions[fill.symbol],
            status.status,
            closed,
            reason=status.reason,
            venue_order_id=status.venue_order_id,
        )
        self.stats.fills += 1
        if fill.reason in _VENUE_CHANGES:
            self._changed_outside(fill, portfolio.positions[fill.symbol].quantity)

    def degrade(self, reason: str) -> None:
        """The account at the venue no longer matches the bot's (found while it runs, as the
        start-up reconciliation finds it at a restart): halted and Degraded, journaled, until
        a person who has looked resumes it."""
        if self.degraded_reason:
            return
        self.degraded_reason = reason
        self._halt_degraded(reason)
        self._state("degraded", reason)

    def _halt_degraded(self, reason: str) -> None:
        """The Degraded stop's halt, a holder of its own (also of a bot halted already): only
        a person's resume lifts it, never the operator's lifting of the spec's stop."""
        if not self.state.halt(reason, DEGRADED_HOLDER):
            self.state.join(DEGRADED_HOLDER, reason)

    def restore_halt(self, reason: str) -> None:
        """Re-enter a halt that was in force when the bot last stopped (no new event)."""
        self.state.halt(reason)

    def restore_halts(self, halts: Sequence[Halt]) -> None:
        """Re-enter the halts in force when the bot last stopped, each with its holder (no new
        event: ``trading_state.restored_halts``)."""
        for halt in halts:
            if not self.state.halt(halt.text, halt.holder):
                self.state.join(halt.holder, halt.text)

    def restore_clock(self, last_bar_ts: int) -> None:
        """Before its first bar, a restarted bot's clock is the close of the last bar its
        account saw (``CarriedState.last_bar_ts``), not 0: what happens until the first bar —
        the restore's own events, a person's reset, halt or resume, a lock a restored baseline
        takes — is stamped then. A lock reset stamped 0 made the next restart replay the whole
        equity and lock again; a risk check at 0 took 1970 for a new day."""
        if not self._now:
            self._now = last_bar_ts

    def restore_equity(
        self, timestamps: Sequence[int], equity: Sequence[float], resets: Mapping[str, int]
    ) -> None:
        """Continue from the account's journaled equity (oldest first), before the first bar:
        the equity peak and the day's start (the status's drawdown and today's P&L, their
        metrics and alerts, the risk context) are the account's, not the restart's; and each
        ``restores-equity`` plugin is shown it from the newest reset of its lock a person made
        (``resets``: plugin → bar time), so its day, week and peak survive the restart. What a
        person did at a time came after everything journaled at that time: the equity a reset
        took as its new start is the last snapshot at its stamp (``_replay_from``)."""
        if timestamps:
            self._start_equity = equity[-1]
            self._peak_equity = max(self._peak_equity, max(equity))
            # The last (UTC) day started at its first bar close, as ``run`` takes it.
            first = bisect.bisect_left(timestamps, timestamps[-1] // 86400 * 86400)
            self._new_day(timestamps[first], equity[first])
        for name, restorer in self.hooks.equity_restorers:
            start = _replay_from(timestamps, resets.get(name))
            shown_ts, shown = timestamps[start:], equity[start:]
            restorer.restore_equity(shown_ts, shown)
            self.journal.record_event(
                self._now,
                "risk_equity_restored",
                f"{name} rebuilt its baselines from {len(shown_ts)} equity snapshot(s) of "
                "earlier runs",
                {"plugin": name, "snapshots": len(shown_ts)},
            )
        self._refresh_tiers()  # a tier the baselines restored is journaled (and shown) now

    def restore_fills(self, fills: Sequence[tuple[Fill, float]], resets: Mapping[str, int]) -> None:
        """Show each ``restores-fills`` plugin the fills of earlier runs with the prices their
        orders were decided at (oldest first), from the newest reset of its lock a person made
        (``resets``: plugin → bar time), before the first bar: execution measured over a
        window survives the restart."""
        for name, restorer in self.hooks.fill_restorers:
            since = resets.get(name)
            shown = fills if since is None else [pair for pair in fills if pair[0].ts >= since]
            restorer.restore_fills(shown)
            self.journal.record_event(
                self._now,
                "risk_fills_restored",
                f"{name} took {len(shown)} fill(s) of earlier runs",
                {"plugin": name, "fills": len(shown)},
            )
        self._refresh_tiers()  # a tier the fills restored is journaled (and shown) now

    def restore_locks(
        self,
        locks: dict[str, tuple[str, int]],
        symbols: Mapping[str, frozenset[str] | None] | None = None,
    ) -> None:
        """Re-enter the risk locks the journal says are still in force (plugin → reason,
        since): the gate refuses new entries at once, and a plugin that declared
        ``restores-lock`` holds its lock again (its cooldown counts from ``since``). A lock of
        some symbols holds those it was journaled holding (``symbols``), whatever its plugin
        says after the restart."""
        names = {name for name, _ in self.risk}
        restorers = dict(self.hooks.lock_restorers)
        keepers = {name for name, _ in self.hooks.state_restorers}
        for name, (reason, since) in locks.items():
            # A lock of a plugin no longer in the chain still holds: a person must clear it.
            self.state.held[name] = (reason, since)
            if symbols is not None and name in symbols:
                self.state.restore_symbols(name, symbols[name])
            elif name not in restorers and name not in keepers:
                # Journaled without its symbols (an older runtime), by a plugin that keeps
                # nothing across a restart: it would say none; every symbol, until a reset.
                self.state.restore_symbols(name, None)
            if name in restorers:
                restorers[name].restore_lock(reason, since)
            note = "" if name in names else " (plugin no longer in spec.risk)"
            self.journal.record_event(
                self._now,
                "risk_lock_restored",
                f"{name} lock still holds after restart{note}: {reason}",
                {"plugin": name, "reason": reason, "since_ts": since},
            )
        self._refresh_tiers()

    def restore_states(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Hand each ``restores-state`` plugin the newest state earlier runs journaled for it
        (plugin → state), after the account was restored or reconciled and before the first
        bar. One whose ``restore_state`` raises is said, naming it, and starts as built: what
        every restart did before the capability (for ``exits``, a trail starting from the
        mark), rather than no bot at all watching the positions it holds."""
        for name, restorer in _state_keyed(self.hooks.state_restorers):
            state = states.get(name)
            if state is None:
                continue
            try:
                restorer.restore_state(state)
            except Exception as error:  # a state of an older release, a plugin's bug
                message = (
                    f"risk plugin {name} could not take back its state "
                    f"({type(error).__name__}: {error}): it starts without it"
                )
                log.error("%s: %s", self.config.bot_name, message)
                self._state("plugin_state_refused", message, {"plugin": name})
                continue
            self.journal.record_event(
                self._now,
                "plugin_state_restored",
                f"{name} took back its state of an earlier run",
                {"plugin": name},
            )
        # A restored lock of some symbols holds the ones its plugin's state says: said before
        # the restart; a symbol locked from here on is said as a new lock.
        self.state.settle_restored()

    def risk_states(self) -> list[tuple[str, bool, str, int]]:
        """(plugin, locked, reason, tier) for every risk plugin (and any restored lock of a
        plugin no longer in the chain); plugins without locks are unlocked, tier 0."""
        locks = self.state.locks()
        tiers = {name: reporter.tier() for name, reporter in self.hooks.tier_reporters}
        names = [name for name, _ in self.risk]
        names += [name for name in locks if name not in names]
        return [(name, name in locks, locks.get(name, ""), tiers.get(name, 0)) for name in names]

    def risk_tiers(self) -> dict[str, int]:
        return dict(self._tiers)

    def holds_risk_lock(self, plugin_name: str) -> bool:
        """Whether ``plugin_name`` holds a lock now (recorded, restored or newly reported)."""
        return plugin_name in self.state.locks()

    def reset_risk_lock(self, plugin_name: str, who: str, reason: str) -> tuple[bool, str]:
        """A person clears ``plugin_name``'s lock: (plugin found, refusal or ""). A plugin that
        holds no lock is refused and nothing is journaled: a reset there would do nothing but
        leave an audit record saying a lock was reset."""
        if plugin_name not in {name for name, _ in self.risk} | set(self.state.held):
            return False, ""
        if not self.holds_risk_lock(plugin_name):
            return True, f"{plugin_name} holds no lock"
        for name, holder in self.state.lock_holders:
            if name == plugin_name:
                refusal = holder.reset_lock()
                if refusal:
                    self._state(
                        "risk_lock_reset_refused",
                        f"{plugin_name} lock not reset for {who}: {refusal}",
                        {"plugin": plugin_name, "who": who, "reason": reason, "why": refusal},
                    )
                    return True, str(refusal)
        self.state.release(plugin_name)
        self._state(
            "risk_lock_reset",
            f"{plugin_name} lock reset by {who}: {reason}",
            {"plugin": plugin_name, "who": who, "reason": reason},
        )
        self._refresh_tiers()
        return True, ""

    def update_strategy_params(self, params: Any, who: str) -> None:
        """Swap the strategy's validated params model; the journal keeps which values took
        effect (all of them, defaults too: the manifest's no longer tell)."""
        self.strategy.update_params(params)
        values = params.model_dump(mode="json")
        data = {"who": who, "params": values}
        self._state("params_updated", f"strategy params updated by {who}", data)

    @contextmanager
    def between_bars(self) -> Iterator[None]:
        """Orders decided inside (an external signal's, a control call's: a halt's flatten, a
        close) are decided while the next bar forms, after the last bar's close, which is the
        engine's clock: they are created a second after that close, so a simulated venue
        works them from the next bar that opens after it, never at the forming bar's open, a
        price from before the decision. A market entry among them is sized at the broker's
        current price, not the last close (``_quote_entry``)."""
        before = self._between_bars
        self._between_bars = 1
        try:
            yield
        finally:
            self._between_bars = before
            self._quote = None  # the last order's: no later snapshot carries it

    def handle_signal(self, signal: Signal) -> tuple[bool, str, str]:
        """Hand an external signal to the strategy: (accepted, reason, client order id)."""
        if self.signals is None:
            return False, "the bot's strategy does not take external signals", ""
        # The kill switch comes first: a halted or paused bot takes no new entries at all.
        refusal = self.state.refusal()
        if refusal:
            self._state("signal_refused", f"signal refused: {refusal}")
            return False, refusal, ""
        held = self._strategy_closes.get(signal.symbol)
        if held is not None and held.then:
            # Held orders are in no book: the strategy could not tell this signal from one
            # against them (its ``close`` would drop them, answered accepted). Refused, it can
            # be sent again once the venue has answered.
            reason = (
                f"a signal's order for {signal.symbol} is held behind the strategy's close, which "
                "waits for the venue to confirm a cancel: send this one again once it has"
            )
            self._state("signal_refused", f"signal refused: {reason}")
            return False, reason, ""
        refused = self.signals.on_signal(signal)
        if refused:
            return False, str(refused), ""
        orders_before = self.stats.orders
        waiting = self._strategy_closes.get(signal.symbol)
        held_before = len(waiting.then) if waiting is not None else 0
        self.last_veto = None
        with self.between_bars():
            if self.tracer is None:
                self._process_intents()
            else:
                attributes = {"tradefleet.symbol": signal.symbol}
                with self.tracer.decision("external_signal", attributes, time.time_ns()):
                    self.tracer.signal(list(self.ctx.intents))
                    self._process_intents()
        if self.stats.orders == orders_before:
            waiting = self._strategy_closes.get(signal.symbol)
            if waiting is not None and len(waiting.then) > held_before:
                return (
                    True,
                    f"held behind the strategy's close of {signal.symbol}, which waits for the "
                    "venue to confirm a cancel: sent once it has",
                    "",
                )
            reason = self.last_veto.reason if self.last_veto is not None else "no order resulted"
            return False, reason, ""
        return True, "", self.last_order_id


class _TradesView(Sequence[Trade]):
    """Read-only, live view of the portfolio's closed trades (for ``reads-trades`` plugins)."""

    __slots__ = ("_trades",)

    def __init__(self, trades: list[Trade]) -> None:
        self._trades = trades

    def __len__(self) -> int:
        return len(self._trades)

    def __getitem__(self, index: Any) -> Any:
        return self._trades[index]


__all__ = ["Engine", "EngineConfig", "EngineListener", "RiskAction", "RiskHooks", "RunResult"]
