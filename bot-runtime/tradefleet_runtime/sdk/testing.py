"""The plugin author's testing kit: hand-made bars, a one-call run, and a risk plugin's judge.

Everything here goes through the real runtime, so a test says what a bot would do:
:func:`run_strategy` drives the strategy through the real :class:`~tradefleet_runtime.session.
BotSession` (warm-up, engine, risk chain) against the built-in ``paper`` broker, loaded by
discovery like any bot's broker, journaling into an in-memory journal; :func:`judge` asks a
risk plugin about hand-made intents with a :class:`~tradefleet_runtime.sdk.RiskContext` built
for you, and :func:`check_shrink_or_veto` applies the engine's own rule to each answer.

It loads no service code (gRPC, HTTP, metrics) and no Kubernetes client. Import it as
``tradefleet_runtime.sdk.testing``; it is not re-exported from ``tradefleet_runtime.sdk``.

::

    from tradefleet_runtime.sdk.testing import make_bars, run_strategy

    def test_buys_the_breakout():  # docs/writing-a-strategy.md's Breakout
        bars = make_bars([1, 1, 1, 2, 3])  # bars 0-2: warm-up; bar 3 closes above the channel
        run = run_strategy(Breakout(BreakoutParams(lookback=3)), bars, quantity=10)
        assert [fill.price for fill in run.fills] == [bars[4].open]  # the next bar's open
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, TypeAlias

from tradefleet_runtime.bar_columns import BarColumns
from tradefleet_runtime.capabilities import RiskLockHolder, TargetPositioner
from tradefleet_runtime.contracts import FeedRequest, RiskContext, RiskPlugin, Strategy
from tradefleet_runtime.engine import risk_chain
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Instrument,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Position,
    RiskAction,
    RiskDecision,
    Side,
    Trade,
)
from tradefleet_runtime.optimize.vector import plugin_params, run_plan, vector_terms
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.session import Bot, BotSession, RunOutcome
from tradefleet_runtime.spec.model import BotManifest
from tradefleet_runtime.timeframes import format_timeframe, parse_timeframe

#: Open time of the first bar :func:`make_bars` makes: 2024-01-01 00:00 UTC, a Monday midnight.
START = 1_704_067_200

#: The name the kit gives the bot it runs (journal rows, client order ids).
BOT_NAME = "strategy-under-test"

#: How the run's manifest names its data: the bars handed to :func:`run_strategy`.
BARS_SOURCE = "testing-kit-bars"

RiskEntry: TypeAlias = RiskPlugin | tuple[str, RiskPlugin]


# -- bars ------------------------------------------------------------------------------------


def _seconds(timeframe: str | int) -> int:
    return timeframe if isinstance(timeframe, int) else parse_timeframe(timeframe)


def _epoch(start: int | datetime) -> int:
    return int(start.timestamp()) if isinstance(start, datetime) else start


def make_bar(
    open: float,
    high: float,
    low: float,
    close: float,
    volume: float = 1.0,
    *,
    index: int = 0,
    symbol: str = "TEST",
    timeframe: str | int = "1h",
    start: int | datetime = START,
) -> Bar:
    """One bar with full OHLCV control; it opens ``index`` bars after ``start``.

    ``timeframe`` is a string (``"1h"``, ``"M5"``) or seconds; ``start`` is epoch seconds (UTC)
    or an aware ``datetime``. A bar whose high is below its open/close, or whose low is above
    them, is refused (``ValueError``): no venue prints one, and a test built on it proves nothing.

    >>> make_bar(1.10, 1.12, 1.09, 1.11, index=2).ts == START + 2 * 3600
    True
    """
    if high < max(open, close, low) or low > min(open, close):
        raise ValueError(f"impossible bar: open {open}, high {high}, low {low}, close {close}")
    seconds = _seconds(timeframe)
    ts = _epoch(start) + index * seconds
    return Bar(symbol, seconds, ts, float(open), float(high), float(low), float(close), volume)


def make_bars(
    closes: Iterable[float],
    *,
    symbol: str = "TEST",
    timeframe: str | int = "1h",
    start: int | datetime = START,
    volume: float = 1.0,
) -> list[Bar]:
    """Consecutive bars closing at ``closes``: each opens at the previous close (the first at
    its own close), and its high and low hug the open and close.

    So a market order sent on bar *i* fills at bar *i + 1*'s open, which is bar *i*'s close.

    >>> [(bar.open, bar.high, bar.low, bar.close) for bar in make_bars([10, 12, 11])]
    [(10.0, 10.0, 10.0, 10.0), (10.0, 12.0, 10.0, 12.0), (12.0, 12.0, 11.0, 11.0)]
    """
    bars: list[Bar] = []
    previous: float | None = None
    for index, close in enumerate(closes):
        open_ = close if previous is None else previous
        bars.append(
            make_bar(
                open_,
                max(open_, close),
                min(open_, close),
                close,
                volume,
                index=index,
                symbol=symbol,
                timeframe=timeframe,
                start=start,
            )
        )
        previous = close
    return bars


# -- what a run produced --------------------------------------------------------------------


class SentOrder(NamedTuple):
    """An order the engine sent to the broker, with its latest status.

    ``parent_id`` is set on the stop-loss/take-profit children of a bracket; ``filled`` is the
    quantity filled so far; ``reason`` says why it was rejected or cancelled.
    """

    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType
    price: float | None
    stop_loss: float | None
    take_profit: float | None
    reduce_only: bool
    parent_id: str | None
    created_ts: int
    tag: str
    status: OrderStatus
    filled: float
    reason: str


class Decision(NamedTuple):
    """One risk decision as journaled: which plugin (or ``engine.*`` rule) said what, and why.

    ``quantity_in`` is the order's size before the plugin (None: unsized), ``quantity`` the
    size the plugin answered (0 for a veto, None when it kept the size).
    """

    ts: int
    plugin: str
    symbol: str
    side: Side
    action: RiskAction
    quantity_in: float | None
    quantity: float | None
    reason: str
    client_order_id: str | None


class Event(NamedTuple):
    """A journaled event (``warmed_up``, ``order_rejected``, ``strategy`` from ``ctx.log``...)."""

    ts: int
    kind: str
    message: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class StrategyRun:
    """What :func:`run_strategy` produced, as the engine journaled it. Immutable.

    ``equity`` is the final equity (cash + positions at their last close); ``positions`` has
    every symbol of the run (flat ones with quantity 0, keeping their realized P&L);
    ``history_bars`` is how many bars the strategy saw as warm-up, and ``dropped_orders`` how
    many orders it asked for during them (dropped: history is never traded).
    """

    orders: tuple[SentOrder, ...]
    fills: tuple[Fill, ...]
    trades: tuple[Trade, ...]
    decisions: tuple[Decision, ...]
    equity: float
    events: tuple[Event, ...]
    positions: Mapping[str, Position]
    history_bars: int = 0
    dropped_orders: int = 0
    equity_curve: tuple[float, ...] = field(default=(), repr=False)

    @property
    def vetoes(self) -> tuple[Decision, ...]:
        """The decisions that vetoed an order (the plugin's reason says why)."""
        return tuple(d for d in self.decisions if d.action is RiskAction.VETO)

    def position(self, symbol: str) -> Position:
        """The final position in ``symbol`` (flat when it never traded)."""
        return self.positions.get(symbol, Position(symbol))

    def events_of(self, kind: str) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.kind == kind)


# -- running a strategy ----------------------------------------------------------------------


@functools.cache
def _registry() -> PluginRegistry:
    """The installed plugins, discovered once per process (the paper broker and the sizer)."""
    return PluginRegistry.discover()


class _KitSession(BotSession):
    """A backtest session that may skip the strategy's warm-up (``warmup=False``)."""

    def __init__(self, bot: Bot, journal: Journal, bars: Sequence[Bar], warmup: bool) -> None:
        super().__init__(bot, journal, bars=bars)
        self._warmup = warmup

    def feed_request(self) -> FeedRequest:
        request = super().feed_request()
        return request if self._warmup else replace(request, warmup_bars=0)


def _symbols_of(bars: Sequence[Bar], symbols: Sequence[str] | None) -> tuple[str, ...]:
    if symbols is not None:
        return tuple(symbols)
    return tuple(dict.fromkeys(bar.symbol for bar in bars))


def _ordered(bars: Iterable[Bar], symbols: tuple[str, ...]) -> list[Bar]:
    """Bars in time order, bars of one timestamp in ``symbols`` order (what feeds promise)."""
    rank = {symbol: i for i, symbol in enumerate(symbols)}
    return sorted(bars, key=lambda bar: (bar.ts, rank.get(bar.symbol, len(rank))))


def _timeframe_of(bars: Sequence[Bar]) -> int:
    timeframes = {bar.timeframe_s for bar in bars}
    if len(timeframes) != 1:
        raise ValueError(f"bars of one base timeframe expected, got {sorted(timeframes)} seconds")
    return timeframes.pop()


def _risk_chain(risk: Iterable[RiskEntry], quantity: float | None) -> list[tuple[str, RiskPlugin]]:
    """Name each risk plugin (its class name unless given) and put the ``quantity`` sizer first."""
    chain: list[tuple[str, RiskPlugin]] = []
    if quantity is not None:
        sizer = _registry().build(
            PluginKind.RISK, "fixed-size", {"quantity": quantity}, ["quantity"]
        )
        chain.append(("fixed-size", sizer))
    for entry in risk:
        chain.append(entry if isinstance(entry, tuple) else (type(entry).__name__, entry))
    return chain


def _manifest(symbols: tuple[str, ...], timeframe_s: int, capital: float) -> BotManifest:
    return BotManifest.model_validate(
        {
            "apiVersion": "tradefleet.io/v1alpha1",
            "kind": "TradingBot",
            "metadata": {"name": BOT_NAME},
            "spec": {
                "mode": "backtest",
                "strategy": {"name": BOT_NAME},
                "market": {"symbols": list(symbols), "timeframe": format_timeframe(timeframe_s)},
                # The session reads the bars given to run_strategy; this only names them.
                "data": {"name": BARS_SOURCE},
                "capital": {"initial": capital},
            },
        }
    )


def run_strategy(
    strategy: Strategy,
    bars: Iterable[Bar],
    *,
    symbols: Sequence[str] | None = None,
    capital: float = 10_000.0,
    broker_params: Mapping[str, Any] | None = None,
    risk: Iterable[RiskEntry] = (),
    quantity: float | None = None,
    warmup: bool = True,
) -> StrategyRun:
    """Backtest ``strategy`` on ``bars`` exactly as a bot would, and return what happened.

    The bars go through the real session and engine: the first ``strategy.warmup_bars()``
    timestamps are warm-up (the strategy sees them, its orders are dropped and counted in
    ``dropped_orders``; ``warmup=False`` trades from the first bar), then each bar is matched
    by the real ``paper`` broker (``broker_params``: its params, e.g. ``{"fee_bps": 1}``)
    before the strategy sees it, so an order sent on bar *i* fills on bar *i + 1* at the
    earliest. ``symbols`` defaults to the bars' symbols in order of appearance; bars may come
    in any order (they are sorted by time).

    ``risk`` is the bot's risk chain, in order: plugin objects (named by their class) or
    ``(name, plugin)`` pairs. An order the strategy leaves unsized (``ctx.buy(symbol)``) needs a
    sizer: without one the engine vetoes it (a decision by ``engine.sizing``, reason code
    ``unsized``). ``quantity=`` is the shortcut: the built-in ``fixed-size`` sizer with that
    quantity, first in the chain.

    >>> from tradefleet_runtime.sdk import Strategy
    >>> class BuyOnce(Strategy):
    ...     def on_bar(self, bar):
    ...         if not self.ctx.position(bar.symbol).quantity and not self.ctx.open_orders():
    ...             self.ctx.buy(bar.symbol, 2.0)
    >>> run = run_strategy(BuyOnce(None), make_bars([10, 11, 12]))
    >>> [(fill.quantity, fill.price) for fill in run.fills], run.equity
    ([(2.0, 10.0)], 10004.0)
    """
    given = list(bars)
    if not given:
        raise ValueError("run_strategy needs at least one bar")
    chosen = _symbols_of(given, symbols)
    ordered = _ordered(given, chosen)
    timeframe_s = _timeframe_of(ordered)
    registry = _registry()
    broker = registry.build(PluginKind.BROKER, "paper", dict(broker_params or {}), ["broker"])
    chain = _risk_chain(risk, quantity)
    bot = Bot(
        manifest=_manifest(chosen, timeframe_s, capital),
        strategy=strategy,
        broker=broker,
        feed=None,
        risk=chain,
        base_dir=Path.cwd(),
        lock_holders=[(n, p) for n, p in chain if isinstance(p, RiskLockHolder)],
    )
    journal = _RecordingJournal()
    try:
        session = _KitSession(bot, journal, ordered, warmup)
        engine = session.open()
        outcome = session.close(session.run())
        return journal.result(outcome, engine, chosen, session.history_bars)
    finally:
        journal.close()


class _RecordingJournal(Journal):
    """An in-memory journal that also keeps what the engine wrote to it, as values.

    The kit reads a run back from these writes (the engine's journal protocol), never by SQL:
    SQL lives only in the journal package.
    """

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.orders: dict[str, SentOrder] = {}
        self.fills: list[Fill] = []
        self.decisions: list[Decision] = []
        self.events: list[Event] = []

    def record_order(
        self,
        order: Order,
        status: OrderStatus,
        ts: int,
        reason: str = "",
        mark: float | None = None,
    ) -> None:
        super().record_order(order, status, ts, reason, mark)
        self.orders[order.client_order_id] = SentOrder(
            order.client_order_id,
            order.symbol,
            order.side,
            order.quantity,
            order.order_type,
            order.price,
            order.stop_loss,
            order.take_profit,
            order.reduce_only,
            order.parent_id,
            order.created_ts,
            order.tag,
            status,
            0.0,
            reason,
        )

    def update_order(
        self,
        client_order_id: str,
        status: OrderStatus,
        ts: int,
        reason: str = "",
        venue_order_id: str | None = None,
    ) -> None:
        super().update_order(client_order_id, status, ts, reason, venue_order_id)
        self._set_status(client_order_id, status, reason)

    def record_fill(
        self,
        fill: Fill,
        position: Position,
        order_status: OrderStatus,
        trades: Iterable[tuple[int, Trade]] = (),
        *,
        reason: str = "",
        venue_order_id: str | None = None,
    ) -> None:
        super().record_fill(
            fill, position, order_status, trades, reason=reason, venue_order_id=venue_order_id
        )
        self.fills.append(fill)
        self._set_status(fill.client_order_id, order_status, reason, fill.quantity)

    def _set_status(
        self, order_id: str, status: OrderStatus, reason: str, filled: float = 0.0
    ) -> None:
        order = self.orders.get(order_id)
        if order is not None:
            self.orders[order_id] = order._replace(
                status=status, reason=reason, filled=order.filled + filled
            )

    def record_risk(
        self,
        *,
        ts: int,
        plugin: str,
        symbol: str,
        side: str,
        decision: RiskDecision,
        quantity_in: float | None,
        client_order_id: str | None = None,
    ) -> None:
        super().record_risk(
            ts=ts,
            plugin=plugin,
            symbol=symbol,
            side=side,
            decision=decision,
            quantity_in=quantity_in,
            client_order_id=client_order_id,
        )
        self.decisions.append(
            Decision(
                ts,
                plugin,
                symbol,
                Side(side),
                decision.action,
                quantity_in,
                decision.quantity,
                decision.reason,
                client_order_id,
            )
        )

    def record_event(
        self, ts: int, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        super().record_event(ts, kind, message, data)
        self.events.append(Event(ts, kind, message, MappingProxyType(dict(data or {}))))

    def result(
        self, outcome: RunOutcome, engine: Engine, symbols: Sequence[str], history_bars: int
    ) -> StrategyRun:
        """The run, as the engine journaled it, with the account it left."""
        positions = engine.portfolio.positions
        return StrategyRun(
            orders=tuple(self.orders.values()),
            fills=tuple(self.fills),
            trades=tuple(outcome.result.trades),
            decisions=tuple(self.decisions),
            equity=outcome.result.final_equity,
            events=tuple(self.events),
            positions=MappingProxyType(
                {symbol: replace(positions.get(symbol, Position(symbol))) for symbol in symbols}
            ),
            history_bars=history_bars,
            dropped_orders=engine.stats.warmup_intents,
            equity_curve=tuple(outcome.result.equity),
        )


# -- judging a risk plugin -------------------------------------------------------------------


def _position(symbol: str, held: Position | float, marks: Mapping[str, float]) -> Position:
    if isinstance(held, Position):
        return replace(held)
    return Position(symbol, float(held), marks.get(symbol, 0.0))


def risk_context(
    symbol: str,
    *,
    equity: float = 10_000.0,
    cash: float | None = None,
    positions: Mapping[str, Position | float] | None = None,
    marks: Mapping[str, float] | None = None,
    instrument: Instrument | None = None,
    ts: int = START,
    start_of_day_equity: float | None = None,
    peak_equity: float | None = None,
    closable: Mapping[str, float] | None = None,
    fills_while_down: tuple[Fill, ...] = (),
) -> RiskContext:
    """The :class:`RiskContext` the engine would hand a risk plugin for an order in ``symbol``.

    ``positions`` maps a symbol to a :class:`Position` or just a signed quantity (held at its
    mark); ``cash`` defaults to ``equity``, the day's start and the peak equity to ``equity``;
    ``instrument`` defaults to one without rounding or limits. Give ``marks`` (last closes) when
    the plugin prices orders: a sizer without a mark has no price to size from. ``closable``
    (``RiskContext.closable``) defaults to the whole of each position, as when no exit is
    working; give less for a position an exit (``ctx.close``) is already closing.
    ``fills_while_down`` (``RiskContext.fills_while_down``): the fills a restart booked that
    the venue made while the bot was down.
    """
    prices = dict(marks or {})
    held = {s: _position(s, quantity, prices) for s, quantity in (positions or {}).items()}
    left = {s: abs(p.quantity) for s, p in held.items() if p.quantity}
    return RiskContext(
        ts=ts,
        equity=equity,
        cash=equity if cash is None else cash,
        start_of_day_equity=equity if start_of_day_equity is None else start_of_day_equity,
        peak_equity=equity if peak_equity is None else peak_equity,
        positions=held,
        marks=prices,
        instrument=instrument if instrument is not None else Instrument(symbol),
        closable=left if closable is None else {**left, **closable},
        fills_while_down=fills_while_down,
    )


def _intents(intents: OrderIntent | Iterable[OrderIntent]) -> list[OrderIntent]:
    return [intents] if isinstance(intents, OrderIntent) else list(intents)


def judge(
    risk_plugin: RiskPlugin,
    intents: OrderIntent | Iterable[OrderIntent],
    *,
    equity: float = 10_000.0,
    cash: float | None = None,
    positions: Mapping[str, Position | float] | None = None,
    marks: Mapping[str, float] | None = None,
    instrument: Instrument | None = None,
    ts: int = START,
    start_of_day_equity: float | None = None,
    peak_equity: float | None = None,
) -> list[RiskDecision]:
    """Ask ``risk_plugin`` about each intent, as the engine would; return its raw answers.

    Each intent gets its own context (see :func:`risk_context` for the keywords), all from the
    same account state. An exception from the plugin propagates (the engine would veto the
    order as a plugin fault); to see what the engine makes of each answer, use
    :func:`check_shrink_or_veto`.

    >>> from tradefleet_runtime.sdk import OrderIntent, RiskDecision, Side
    >>> class MaxTwo:
    ...     def check(self, intent, ctx):
    ...         if intent.quantity is not None and intent.quantity > 2:
    ...             return RiskDecision.shrink(2, "at most 2")
    ...         return RiskDecision.approve()
    >>> [d.action.value for d in judge(MaxTwo(), [OrderIntent("TEST", Side.BUY, 5.0)])]
    ['shrink']
    """

    def context_for(symbol: str) -> RiskContext:
        return risk_context(
            symbol,
            equity=equity,
            cash=cash,
            positions=positions,
            marks=marks,
            instrument=instrument,
            ts=ts,
            start_of_day_equity=start_of_day_equity,
            peak_equity=peak_equity,
        )

    return [risk_plugin.check(intent, context_for(intent.symbol)) for intent in _intents(intents)]


@dataclass(frozen=True)
class Verdict:
    """What the engine makes of a risk plugin's answer about one intent.

    ``answer`` is what the plugin returned; ``decision`` what the engine journals (a
    rule-breaking answer becomes a veto with code ``plugin_fault``, and ``fault`` is set);
    ``quantity`` is the order's size after the plugin (0: vetoed; None: still unsized).
    """

    intent: OrderIntent
    answer: RiskDecision
    decision: RiskDecision
    quantity: float | None
    fault: bool

    @property
    def vetoed(self) -> bool:
        return self.quantity is not None and self.quantity <= 0.0


def check_shrink_or_veto(
    risk_plugin: RiskPlugin,
    intents: OrderIntent | Iterable[OrderIntent],
    *,
    name: str | None = None,
    equity: float = 10_000.0,
    cash: float | None = None,
    positions: Mapping[str, Position | float] | None = None,
    marks: Mapping[str, float] | None = None,
    instrument: Instrument | None = None,
    ts: int = START,
    start_of_day_equity: float | None = None,
    peak_equity: float | None = None,
) -> list[Verdict]:
    """Judge each intent (keywords as :func:`judge`) and apply the engine's rule to each answer.

    The rule (``engine.risk_chain.judge``): a risk plugin may approve, shrink or veto, and may
    size an unsized order; an answer that grows a sized order, or sizes one to zero, NaN or
    less, is turned into a veto and counted as the plugin's fault. Assert ``not v.fault`` for
    every verdict to prove a plugin keeps the rule.

    >>> from tradefleet_runtime.sdk import OrderIntent, RiskDecision, Side
    >>> class Doubler:
    ...     def check(self, intent, ctx):
    ...         return RiskDecision.approve(intent.quantity * 2)
    >>> verdict, = check_shrink_or_veto(Doubler(), OrderIntent("TEST", Side.BUY, 1.0))
    >>> verdict.vetoed, verdict.fault, verdict.decision.code
    (True, True, 'plugin_fault')
    """
    label = name or type(risk_plugin).__name__
    listed = _intents(intents)
    answers = judge(
        risk_plugin,
        listed,
        equity=equity,
        cash=cash,
        positions=positions,
        marks=marks,
        instrument=instrument,
        ts=ts,
        start_of_day_equity=start_of_day_equity,
        peak_equity=peak_equity,
    )
    verdicts = []
    for intent, answer in zip(listed, answers, strict=True):
        ruled = risk_chain.judge(label, intent.quantity, answer)
        verdicts.append(Verdict(intent, answer, ruled.decision, ruled.quantity, ruled.fault))
    return verdicts


# -- proving a target-positions plan -----------------------------------------------------------


def check_target_plan(
    strategy: Strategy,
    bars: Iterable[Bar],
    *,
    quantity: float = 1.0,
    capital: float = 10_000.0,
    broker_params: Mapping[str, Any] | None = None,
    rel_tol: float = 1e-9,
) -> StrategyRun:
    """Prove that ``strategy``'s ``target_positions`` plan trades exactly as its ``on_bar``.

    A strategy that declares ``target-positions`` is backtested and swept by the vectorised
    path whenever a bot allows it (``docs/optimize.md``), so its plan must be its ``on_bar``:
    each change of target a market order closing what is held (tagged ``close_tag``), then one
    opening the new target (``buy_tag``/``sell_tag``), flat during warm-up. This runs both on
    the same bars of one symbol — the event engine through :func:`run_strategy` with the
    ``fixed-size`` sizer of ``quantity``, the plan through the vectorised path's own
    ``run_plan`` — and compares their fills (side, quantity, price, fee, time, reason), the
    equity after every traded bar and the closed trades, to ``rel_tol``.

    Returns the engine's run. Raises ``AssertionError`` naming the first difference (or why the
    vectorised path refused the plan), and ``ValueError`` when there is nothing to compare: the
    strategy offers no plan (no ``target_positions``, or None for these params), or the bars or
    broker params are beyond the vectorised path (several symbols, instrument limits).

    >>> import numpy as np
    >>> from tradefleet_runtime.sdk import Strategy, TargetPlan
    >>> class AlwaysLong(Strategy):
    ...     def on_bar(self, bar):
    ...         if not self.ctx.position(bar.symbol).quantity and not self.ctx.open_orders():
    ...             self.ctx.buy(bar.symbol, tag="in")
    ...     def target_positions(self, columns):
    ...         return TargetPlan(np.ones(len(columns)), buy_tag="in")
    >>> run = check_target_plan(AlwaysLong(None), make_bars([10, 11, 12, 13]))
    >>> [(fill.price, fill.reason) for fill in run.fills]
    [(10.0, 'in')]
    """
    given = list(bars)
    symbols = _symbols_of(given, None)
    if len(symbols) != 1:
        raise ValueError(f"bars of one symbol expected, got {', '.join(symbols) or 'none'}")
    if not isinstance(strategy, TargetPositioner):
        raise ValueError(f"{type(strategy).__name__} has no target_positions")
    ordered = _ordered(given, symbols)
    timeframe_s = _timeframe_of(ordered)
    columns = BarColumns.from_rows(
        [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in ordered]
    )
    # Asked first, of a strategy that has not run: as the optimiser and the CLI ask it.
    plan = strategy.target_positions(columns)
    if plan is None:
        raise ValueError(f"{type(strategy).__name__} offers no plan for these params")
    broker = _registry().build(PluginKind.BROKER, "paper", dict(broker_params or {}), ["broker"])
    terms = vector_terms(
        symbols,
        ("paper", plugin_params(broker)),
        [("fixed-size", {"quantity": quantity})],
        initial_capital=capital,
        timeframe_s=timeframe_s,
    )
    if isinstance(terms, str):
        raise ValueError(f"the vectorised path cannot run these terms: {terms}")
    planned = run_plan(columns, plan, terms, strategy.warmup_bars())
    if isinstance(planned, str):
        raise AssertionError(f"the vectorised path refused the plan: {planned}")
    run = run_strategy(
        strategy, ordered, capital=capital, broker_params=broker_params, quantity=quantity
    )
    _same_fills(run.fills, planned, columns, rel_tol)
    _same_numbers("equity after bar", run.equity_curve, planned.equity.tolist(), rel_tol)
    trades = planned.trade_list()
    if run.position(symbols[0]).quantity:
        trades = trades[:-1]  # the position held at the end: not a closed trade
    if len(run.trades) != len(trades):
        raise AssertionError(f"on_bar closed {len(run.trades)} trades, the plan {len(trades)}")
    for k, (mine, theirs) in enumerate(zip(run.trades, trades, strict=True)):
        for name in (column.name for column in fields(Trade)):
            _same(f"trade {k}: {name}", getattr(mine, name), getattr(theirs, name), rel_tol)
    return run


def _same_fills(fills: Sequence[Fill], planned: Any, columns: BarColumns, rel_tol: float) -> None:
    if len(fills) != planned.fill_bar.size:
        raise AssertionError(
            f"on_bar's orders filled {len(fills)} times, the plan's {planned.fill_bar.size}"
        )
    stamps = columns.ts[planned.fill_bar].tolist()
    for k, fill in enumerate(fills):
        side = Side.BUY if planned.fill_side[k] > 0 else Side.SELL
        _same(f"fill {k}: side", fill.side, side, rel_tol)
        _same(f"fill {k}: time", fill.ts, stamps[k], rel_tol)
        _same(f"fill {k}: quantity", fill.quantity, float(planned.fill_quantity[k]), rel_tol)
        _same(f"fill {k}: price", fill.price, float(planned.fill_price[k]), rel_tol)
        _same(f"fill {k}: fee", fill.fee, float(planned.fill_fee[k]), rel_tol)
        _same(f"fill {k}: reason", fill.reason, planned.fill_reason[k], rel_tol)


def _same_numbers(
    what: str, mine: Sequence[float], theirs: Sequence[float], rel_tol: float
) -> None:
    if len(mine) != len(theirs):
        raise AssertionError(f"{what}: {len(mine)} bars on_bar, {len(theirs)} the plan")
    for k, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        _same(f"{what} {k}", a, b, rel_tol)


def _same(what: str, mine: Any, theirs: Any, rel_tol: float) -> None:
    if isinstance(mine, float) or isinstance(theirs, float):
        if math.isclose(float(mine), float(theirs), rel_tol=rel_tol, abs_tol=rel_tol):
            return
    elif mine == theirs:
        return
    raise AssertionError(f"{what}: {mine!r} by on_bar, {theirs!r} by the plan")


__all__ = [
    "BARS_SOURCE",
    "BOT_NAME",
    "START",
    "Decision",
    "Event",
    "SentOrder",
    "StrategyRun",
    "Verdict",
    "check_shrink_or_veto",
    "check_target_plan",
    "judge",
    "make_bar",
    "make_bars",
    "risk_context",
    "run_strategy",
]
