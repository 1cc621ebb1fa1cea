"""The contracts between the engine and its plugins.

The engine calls a bot's chosen plugin objects directly through these types on every bar:
pluggy is only used to *find* plugins (see ``plugins.hookspecs``), because a hook call costs
about thirty plain method calls and the per-bar budget is about one microsecond.

A strategy subclasses ``Strategy``; risk plugins, brokers and data feeds satisfy the
``RiskPlugin``, ``Broker`` and ``DataFeed`` protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

from tradefleet_runtime.indicators import DEFAULT_HISTORY, BarHistory, Indicator, IndicatorBook
from tradefleet_runtime.model import (
    Accrual,
    Bar,
    CashFlow,
    Fill,
    Instrument,
    Order,
    OrderIntent,
    OrderType,
    OrderUpdate,
    Position,
    RiskDecision,
    Side,
)
from tradefleet_runtime.timeframes import parse_timeframe

if TYPE_CHECKING:
    from tradefleet_runtime.spec.model import Mode

AnyIndicator = TypeVar("AnyIndicator", bound=Indicator)


class PluginParams(BaseModel):
    """Base of every plugin's params model. Unknown params are refused, values are frozen.

    A plugin's JSON Schema is ``Params.model_json_schema()``: write ``Field(description=...)``
    on each param, and ``ge``/``le`` bounds where a value has a sane range. Every number is
    finite and ``true``/``false`` never stand for one, without a word in the subclass.
    """

    # Params are finite numbers (an inf or nan size, fee or limit breaks every figure made from
    # it), and `true` is not read as 1: one setting here for every plugin's params. A model's
    # validator is built when it first validates (defer_build): discovery imports every
    # plugin's params module, and building all of them cost each process ~70 ms at start.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)

    # Imported in the class body, so that the check is the spec models' own and this file's
    # imports stay as they are.
    from tradefleet_runtime.spec.values import no_bools_as_numbers as _numbers

    def needs_size(self) -> str:
        """The param that, at these values, decides on the order's size, as a ``needs-size``
        plugin does (pre-trade's ``max_risk_per_trade`` shrinks an order to its risk): such a
        plugin placed before the chain's sizer is refused at load, naming its ``spec.risk[i]``
        and this param. "" (the default): none does. For a plugin that needs the size only
        under some settings, since a capability cannot depend on params."""
        return ""


class NoParams(PluginParams):
    """For plugins that take no params."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A bar series a strategy wants: a symbol at a timeframe (≥ the bot's base timeframe)."""

    symbol: str
    timeframe_s: int


class StrategyContext(Protocol):
    """What a strategy may see and do. The engine implements it; strategies only use it."""

    @property
    def now(self) -> int:
        """Current time (UTC epoch seconds): the close time of the bar being handled."""
        ...

    @property
    def symbols(self) -> Sequence[str]: ...

    @property
    def base_timeframe_s(self) -> int: ...

    @property
    def equity(self) -> float: ...

    @property
    def cash(self) -> float: ...

    def position(self, symbol: str) -> Position:
        """The bot's net position in ``symbol`` (quantity 0 when flat)."""
        ...

    def instrument(self, symbol: str) -> Instrument: ...

    def submit(self, intent: OrderIntent) -> None:
        """Queue an order intent; it passes the risk chain when the strategy returns."""
        ...

    def buy(
        self,
        symbol: str,
        quantity: float | None = None,
        *,
        order_type: OrderType = OrderType.MARKET,
        price: float | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        tag: str = "",
    ) -> None: ...

    def sell(
        self,
        symbol: str,
        quantity: float | None = None,
        *,
        order_type: OrderType = OrderType.MARKET,
        price: float | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        tag: str = "",
    ) -> None: ...

    def close(self, symbol: str, tag: str = "") -> None:
        """Flatten ``symbol``: cancel its working orders and send a reduce-only market order."""
        ...

    def cancel(self, client_order_id: str) -> None: ...

    def open_orders(self, symbol: str | None = None) -> Sequence[Order]: ...

    def log(self, message: str, **fields: Any) -> None:
        """Record a strategy event in the journal (and the log)."""
        ...


class Strategy:
    """Base class of strategy plugins: override ``on_bar``; the rest is optional.

    The engine sets ``self.ctx`` before ``on_start``. A strategy sees a bar only after it
    closed, and its orders are filled on later bars: it cannot trade on a price it has not
    seen yet, nor see one it should not.
    """

    ctx: StrategyContext
    # Declared indicators and bar histories; None until the first declaration (then the engine
    # updates them before each on_bar; a strategy that declares nothing pays nothing).
    indicator_book: IndicatorBook | None = None

    def __init__(self, params: Any) -> None:
        self.params = params

    # -- indicators and history (declare in on_start: the engine then keeps them current) ----

    def _series_key(self, symbol: str, timeframe: str | int | None) -> tuple[str, int]:
        if timeframe is None:
            return symbol, self.ctx.base_timeframe_s
        return symbol, timeframe if isinstance(timeframe, int) else parse_timeframe(timeframe)

    def _book(self) -> IndicatorBook:
        # Made on the first declaration; once the bot started, the engine's ``bar_handler``
        # has sealed it (an empty one if nothing was declared), so a late one is refused.
        if self.indicator_book is None:
            self.indicator_book = IndicatorBook(type(self).__name__)
        return self.indicator_book

    def indicator(
        self, indicator: AnyIndicator, symbol: str, timeframe: str | int | None = None
    ) -> AnyIndicator:
        """Have the engine update ``indicator`` with every closed bar of ``symbol`` at
        ``timeframe`` (default: the base timeframe; a higher one must be in
        :meth:`subscriptions`) before this strategy's ``on_bar`` sees that bar. Returns it::

            self.ema = self.indicator(EMA(20), "EURUSD")   # in on_start; then self.ema[-1]
        """
        self._book().add(self._series_key(symbol, timeframe), indicator)
        return indicator

    def bars(
        self, symbol: str, timeframe: str | int | None = None, size: int = DEFAULT_HISTORY
    ) -> BarHistory:
        """The last ``size`` closed bars of ``symbol`` at ``timeframe``; ``[-1]`` is the bar
        being handled, ``[-2]`` the one before. Declare it in ``on_start`` and keep it."""
        return self._book().history(self._series_key(symbol, timeframe), size)

    def subscriptions(self, symbols: Sequence[str], base_timeframe_s: int) -> list[Subscription]:
        """The bar series this strategy wants. Default: every symbol at the base timeframe.

        Ask for higher timeframes here; the engine aggregates them from the base bars and
        hands each one over when it has closed.
        """
        return [Subscription(symbol, base_timeframe_s) for symbol in symbols]

    def warmup_bars(self) -> int:
        """How many base bars the strategy needs before its signals mean anything.

        Default: enough for every declared indicator to have a value (0 without any).
        """
        book = self.indicator_book
        return book.warmup_bars(self.ctx.base_timeframe_s) if book is not None else 0

    def on_start(self, ctx: StrategyContext) -> None:
        """Called once before the first bar."""

    def on_bar(self, bar: Bar) -> None:
        """Called for every closed bar of every subscribed series, oldest first."""
        raise NotImplementedError

    def on_fill(self, fill: Fill) -> None:
        """Called after one of the bot's orders was (partly) filled."""

    def on_order_update(self, update: OrderUpdate) -> None:
        """Called when an order is rejected or cancelled."""

    def on_stop(self) -> None:
        """Called once after the last bar."""

    def update_params(self, params: Any) -> None:
        """Take new, already validated params while running (``UpdateParams``).

        The default swaps ``self.params`` and calls :meth:`on_params_changed`; state built from
        bars (indicators, positions) is kept.
        """
        self.params = params
        self.on_params_changed()

    def on_params_changed(self) -> None:
        """Recompute what depends on params (periods, thresholds)."""


class RiskContext(NamedTuple):
    """The account state a risk plugin decides on (a snapshot: it never changes under it)."""

    ts: int
    equity: float
    cash: float
    start_of_day_equity: float
    peak_equity: float
    positions: dict[str, Position]
    marks: dict[str, float]
    instrument: Instrument
    # Protective stops working for each open position: (quantity left, stop price) of every
    # reduce-only stop order on its closing side (bracket stop-losses), in the order the venue
    # holds them, so a rule can bound what open positions may still lose.
    stops: dict[str, tuple[tuple[float, float], ...]] = {}  # noqa: RUF012 (never mutated)
    # The bot's leverage at its venue (margin = exposure / leverage).
    leverage: float = 1.0
    # The account's capital when the bot first started (spec.capital.initial).
    initial_equity: float = 0.0
    # Entry orders working and not yet (wholly) filled — those sent on earlier bars and those
    # the chain let through earlier in this very bar —, each with the quantity still to fill
    # (``Order.quantity``): every order that is not reduce-only, bracket children aside. What
    # they may add to the account's risk and exposure counts before they fill.
    entries: tuple[Order, ...] = ()
    # How much of each open position an order on its closing side may still close: the
    # quantity held, less what the exits already working on that side will close (a
    # ``ctx.close`` sent earlier, in this bar too; a bracket's stop and take-profit are not
    # counted: they guard the position rather than close it). 0 when exits cover it all. The
    # engine gives it for every open position; None: not told (a context built by hand), and
    # ``closing`` takes the whole position. A reversal sent as ``close`` + an entry closes
    # nothing with the entry, and a cap on what an order opens must not credit it.
    closable: Mapping[str, float] | None = None
    # The fills a restart booked that the venue made while the bot was down (reconciled, at
    # their own times): in ``equity`` and ``positions``, never shown to a plugin as fills, and
    # booked before the bars that closed meanwhile are handed over — so a day that begins at
    # one of those closes, or at a later one, would start after them. A day starts without
    # what those of its own time added (``equity_made``): a stop filled after midnight while
    # the bot was down is the new day's loss. Empty but after such a restart.
    fills_while_down: tuple[Fill, ...] = ()

    def mark(self, symbol: str) -> float:
        return self.marks.get(symbol, 0.0)

    def closing(self, intent: OrderIntent, quantity: float) -> float:
        """How much of an order of ``quantity`` on ``intent``'s side closes its symbol's
        position (the rest opens or adds): none when the order is on the position's side or
        there is none; else at most what ``closable`` says is still to close. A cap on what
        an order opens (a sizer's ``max_leverage``, pre-trade's ``max_risk_per_trade``)
        credits this part as an exit, which no cap may cut."""
        symbol = intent.symbol
        held = self.positions.get(symbol)
        if held is None or held.quantity * intent.side.sign >= 0.0:
            return 0.0
        closable = self.closable
        left = abs(held.quantity) if closable is None else closable.get(symbol, 0.0)
        return min(quantity, left) if left > 0.0 else 0.0


@runtime_checkable
class RiskPlugin(Protocol):
    """Decides about each order intent; may only shrink or veto it.

    The engine enforces that: a decision that grows an order, or sizes one that already had
    a size, is treated as a veto and journaled as a plugin fault.
    """

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision: ...


@dataclass(frozen=True, slots=True)
class BrokerContext:
    """What a broker is told when the bot starts."""

    bot_name: str
    mode: Mode
    symbols: tuple[str, ...]
    currency: str
    initial_capital: float
    credentials_dir: Path | None = None
    # A broker with the ``venue-execution`` capability calls this (from any thread, cheaply,
    # never holding a lock the engine might need) when it has events for ``drain_events``:
    # the runtime then wakes the engine thread to apply them, between bars.
    wake: Callable[[], None] | None = None
    # What the bot's order ids and venue tags (an MT5 magic number) derive from: a live bot's
    # identity kept in its journal (``order_ids.new_identity``); empty: the bot's name.
    identity: str = ""
    # True on a live bot's first run (its journal holds no earlier run of the bot that left
    # anything: an order, a fill or a bar): a venue broker then refuses to start when
    # ``initial_capital`` is more than the account holds in ``currency`` (sizing on money the
    # account does not have multiplies every trade's risk). False (the default) on a restart,
    # whose equity has legitimately moved away from the capital, and for paper or backtest.
    first_run: bool = False

    @property
    def identity_seed(self) -> str:
        """The bot's identity, or its name where it has none: what ``bot_prefix`` takes."""
        return self.identity or self.bot_name


@runtime_checkable
class Broker(Protocol):
    """An account at a venue (real or simulated). Paper, ccxt and MT5 brokers implement it.

    ``client_order_id`` is the identity of an order: submitting an id the broker already
    knows must never create a second order.
    """

    def connect(self, ctx: BrokerContext) -> None: ...

    def instrument(self, symbol: str) -> Instrument: ...

    def submit(self, order: Order) -> OrderUpdate:
        """Send an order. Returns its status: OPEN (working), REJECTED with a reason and a
        ``ReasonCode``, or — for a broker whose venue answers later (``venue-execution``) —
        PENDING, the answer following as an event. An id the broker already knows is refused
        with ``ReasonCode.DUPLICATE_CLIENT_ID`` and never becomes a second order."""
        ...

    def cancel(self, client_order_id: str) -> OrderUpdate | None: ...

    def on_bar(self, bar: Bar) -> Sequence[Fill | OrderUpdate | CashFlow | Accrual]:
        """A base bar closed. Simulated brokers match working orders against it (and the paper
        broker settles the funding it simulates, as ``CashFlow``s); live ones return the fills
        and updates they saw since the last call (and, declaring ``reports-accruals``, the
        venue's ``Accrual``s)."""
        ...

    def open_orders(self) -> Sequence[Order]: ...

    def positions(self) -> dict[str, Position]: ...

    def balance(self) -> float: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """What the engine asks a data feed for."""

    symbols: tuple[str, ...]
    timeframe_s: int
    base_dir: Path = field(default_factory=Path.cwd)
    # A live feed sends this many bars of history first (the strategy's warm-up) ...
    warmup_bars: int = 0
    # ... and then every bar closing after this time (0: none handled yet). A restarted bot
    # has handled bars up to here; a replaying feed may start anywhere before it.
    resume_after_ts: int = 0
    # A live feed waiting for the next bar calls this at least every quarter second (on the
    # engine thread, between bars): the runtime serves control calls and the broker's events
    # meanwhile, so a bar that is an hour away never delays an emergency stop.
    idle: Callable[[], None] | None = None
    # True once the bot is asked to stop (SIGTERM, the operator): a live feed checks it in
    # every wait — for a bar, or before retrying a venue that does not answer — and then ends
    # its bars, so a bot stops within its grace period even while its venue is down.
    should_stop: Callable[[], bool] | None = None


@dataclass(slots=True)
class FeedReport:
    """What a feed found in its data: counted, so that reports can say it."""

    bars: int = 0
    gaps: int = 0
    missing_bars: int = 0
    filled_bars: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class DataFeed(Protocol):
    """A source of closed bars, oldest first; bars of one timestamp in ``symbols`` order."""

    def bars(self, request: FeedRequest) -> Iterator[Bar]: ...

    def report(self) -> FeedReport: ...


__all__ = [
    "Bar",
    "Broker",
    "BrokerContext",
    "DataFeed",
    "FeedReport",
    "FeedRequest",
    "Fill",
    "Instrument",
    "NoParams",
    "Order",
    "OrderIntent",
    "OrderType",
    "OrderUpdate",
    "PluginParams",
    "Position",
    "RiskContext",
    "RiskDecision",
    "RiskPlugin",
    "Side",
    "Strategy",
    "StrategyContext",
    "Subscription",
]
