"""One bot's life, the same in every mode: assemble → restore → warm up → run → stop.

``tradefleet backtest``, ``tradefleet run`` and ``tradefleet serve`` all drive a bot through a
:class:`BotSession`, so the restore, warm-up, resume and stop rules hold everywhere; only the
pacer differs — instant for backtests, the wall clock (or a replay speed) for paper and live,
and the service's own pacer, which runs control commands while it waits.

- **Restore** (paper and live): the journal's earlier runs give the account, the working orders
  (re-armed under their own ids), every client order id ever sent (never sent again as new),
  the last bar handled, and a halt still in force. A backtest always starts afresh.
- **Warm-up and resume**: bars that are history — the strategy's ``warmup_bars()`` before the
  first tradable one, every bar an earlier run already handled, and, from a feed that tells
  the market's time (``tells-market-time``), every bar a newer one had closed after by the
  time the bot got it (it closed while the bot was down) — are shown to the strategy so it
  rebuilds its state, but the broker never sees them, no equity is recorded and the orders
  they prompt are dropped. A restarted bot therefore trades on from the newest closed bar
  instead of trading its history, or the hours it missed, again. Two things of the outage
  are not history (``Engine.catch_up``): a broker that is its own venue (the paper broker)
  works the orders that rested on its book before the restart over the bars that closed
  meanwhile, as the venue would have; and a higher timeframe's bar built from them that is
  still the newest of its series is traded, as a running bot would have.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, Protocol, cast

from pydantic import BaseModel

from tradefleet_runtime.accounting import apply_fill
from tradefleet_runtime.capabilities import (
    RESTORED_FILLS,
    AccountActor,
    AccountRestorer,
    BarObserver,
    BracketFollower,
    Capability,
    CashFlowReporter,
    EquityRestorer,
    FillObserver,
    FillRestorer,
    LeverageReporter,
    LockRestorer,
    MarketClock,
    OrderObserver,
    OrderRestorer,
    PositionRestorer,
    ReleaseSlack,
    RiskLockHolder,
    SignalReceiver,
    StateRestorer,
    TargetPositioner,
    TierReporter,
    TradeReader,
    VenueExecution,
)
from tradefleet_runtime.contracts import (
    Broker,
    BrokerContext,
    DataFeed,
    FeedRequest,
    RiskPlugin,
    Strategy,
)
from tradefleet_runtime.engine.engine import Engine, EngineConfig, EngineListener, RunResult
from tradefleet_runtime.engine.journal_port import JournalWriter
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.engine.trading_state import SPEC_STOP, halts_in_force
from tradefleet_runtime.errors import (
    DataError,
    FieldError,
    SpecError,
    StrategyError,
    StrategyRefused,
)
from tradefleet_runtime.journal.discarding import DiscardingJournal
from tradefleet_runtime.model import (
    Bar,
    CarriedState,
    CashFlow,
    Fill,
    Order,
    OrderIntent,
    OrderStatus,
    OrderUpdate,
    Position,
    RiskDecision,
    Trade,
)
from tradefleet_runtime.order_ids import bot_prefix, new_identity
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.reconcile import (
    ADOPTED_REASON,
    ReconcilePlan,
    plan_reconciliation,
    position_drift,
)
from tradefleet_runtime.report.metrics import Figures, compute_figures
from tradefleet_runtime.restart_spec_check import restart_refusals
from tradefleet_runtime.spec.checks import config_hash, plugin_context, validate_plugins
from tradefleet_runtime.spec.model import BotManifest, CapitalSpec, Mode
from tradefleet_runtime.tracing import configure_from_env

log = logging.getLogger("tradefleet.session")

# A live bot's positions differing from its venue's are read again after this long, the
# broker's events applied meanwhile: a fill on its way is not a drift (``_compare_positions``).
DRIFT_SETTLE_S = 2.0
# At a stop, the venue's answers to its policy (cancels, then the flatten's closes and the
# cancels of the positions' own SL/TP) are awaited this long in all, well within ``serve``'s
# grace period (25 s) — long enough for a venue whose polls take seconds (Kraken's rate
# limit); what is not confirmed by then is journaled as such, by id (``apply_stop_policy``).
STOP_CANCEL_WAIT_S = 15.0
STOP_CANCEL_POLL_S = 0.02

Pacer = Callable[[Iterable[Bar]], Iterator[Bar]]


@dataclass
class Bot:
    """A bot's plugin objects, built from a validated manifest, with their capabilities."""

    manifest: BotManifest
    strategy: Strategy
    broker: Broker
    feed: DataFeed | None
    risk: list[tuple[str, RiskPlugin]]
    base_dir: Path
    signals: SignalReceiver | None = None
    lock_holders: list[tuple[str, RiskLockHolder]] = field(default_factory=list)
    restorer: AccountRestorer | None = None
    # A broker that places bracket children itself (told the brackets it adopts at a restart).
    brackets: BracketFollower | None = None
    risk_hooks: RiskHooks = field(default_factory=RiskHooks)
    # A broker whose account lives at a venue (``venue-execution``, and no journal-restored
    # account): reconciled with the venue on every start before it trades.
    venue: VenueExecution | None = None
    # Any broker declaring ``venue-execution`` (the paper broker too): the engine drains its
    # events through it.
    executes: VenueExecution | None = None
    # The feed's bars come in real time (``live-feed``): pacers release them as they arrive.
    live_feed: bool = False
    # The strategy states its run as target positions (``target-positions``): a backtest or a
    # sweep may take the vectorised path (``vector_backtest``, ``optimize/vector.py``).
    planner: TargetPositioner | None = None
    # The broker knows its account's leverage (``knows-leverage``): risk plugins read it.
    leverage: LeverageReporter | None = None
    # A venue broker that reports funding and other payments outside fills
    # (``reports-cash-flows``): after a restart, those made while the bot was down are booked.
    cash_flows: CashFlowReporter | None = None
    # The feed tells the market's time (``tells-market-time``): a restarted bot's bars that
    # closed while it was down are history (``split_history``). Kept apart from ``feed``, which
    # the service wraps.
    market_clock: MarketClock | None = None

    @property
    def name(self) -> str:
        return self.manifest.metadata.name


def assemble(
    manifest: BotManifest, registry: PluginRegistry, base_dir: Path, source: str = ""
) -> Bot:
    """Build every plugin of ``manifest`` (params validated, capabilities checked)."""
    errors = validate_plugins(manifest, registry)
    if errors:
        raise SpecError(errors, source)
    spec = manifest.spec
    strategy = registry.build(
        PluginKind.STRATEGY, spec.strategy.name, spec.strategy.params, ["spec", "strategy"]
    )
    # The broker's params are validated knowing the bot (a file it reads is relative to the
    # manifest's folder: ``plugin_context``).
    bot_context = plugin_context(
        spec.market.timeframe_s, spec.mode.value, spec.market.symbols, str(base_dir)
    )
    broker = registry.build(
        PluginKind.BROKER, spec.broker.name, spec.broker.params, ["spec", "broker"], bot=bot_context
    )
    feed = None
    if spec.data is not None:
        feed = registry.build(
            PluginKind.DATA_FEED, spec.data.name, spec.data.params, ["spec", "data"]
        )
    risk = [
        (ref.name, registry.build(PluginKind.RISK, ref.name, ref.params, ["spec", "risk", i]))
        for i, ref in enumerate(spec.risk)
    ]

    def declares(kind: PluginKind, name: str, capability: Capability) -> bool:
        return registry.get(kind, name).spec.has(capability)

    def risk_with(capability: Capability) -> list[tuple[str, Any]]:
        # The registry checked at build time that each such object has the capability's methods.
        return [(n, p) for n, p in risk if declares(PluginKind.RISK, n, capability)]

    hooks = RiskHooks(
        bar_observers=cast("list[tuple[str, BarObserver]]", risk_with(Capability.OBSERVES_BARS)),
        fill_observers=cast("list[tuple[str, FillObserver]]", risk_with(Capability.OBSERVES_FILLS)),
        order_observers=cast(
            "list[tuple[str, OrderObserver]]", risk_with(Capability.OBSERVES_ORDERS)
        ),
        trade_readers=cast("list[tuple[str, TradeReader]]", risk_with(Capability.READS_TRADES)),
        actors=cast("list[tuple[str, AccountActor]]", risk_with(Capability.ACTS_ON_ACCOUNT)),
        lock_restorers=cast("list[tuple[str, LockRestorer]]", risk_with(Capability.RESTORES_LOCK)),
        equity_restorers=cast(
            "list[tuple[str, EquityRestorer]]", risk_with(Capability.RESTORES_EQUITY)
        ),
        fill_restorers=cast("list[tuple[str, FillRestorer]]", risk_with(Capability.RESTORES_FILLS)),
        state_restorers=cast(
            "list[tuple[str, StateRestorer]]", risk_with(Capability.RESTORES_STATE)
        ),
        tier_reporters=cast("list[tuple[str, TierReporter]]", risk_with(Capability.REPORTS_TIER)),
        intent_only=frozenset(name for name, _ in risk_with(Capability.INTENT_ONLY)),
    )

    return Bot(
        manifest,
        strategy,
        broker,
        feed,
        risk,
        base_dir,
        signals=strategy
        if declares(PluginKind.STRATEGY, spec.strategy.name, Capability.TAKES_SIGNALS)
        else None,
        lock_holders=[
            (name, plugin)
            for name, plugin in risk
            if declares(PluginKind.RISK, name, Capability.RISK_LOCK)
        ],
        restorer=broker
        if declares(PluginKind.BROKER, spec.broker.name, Capability.RESTORES_ACCOUNT)
        else None,
        risk_hooks=hooks,
        brackets=cast("BracketFollower", broker)
        if declares(PluginKind.BROKER, spec.broker.name, Capability.FOLLOWS_BRACKETS)
        else None,
        venue=cast("VenueExecution", broker)
        if declares(PluginKind.BROKER, spec.broker.name, Capability.VENUE_EXECUTION)
        and not declares(PluginKind.BROKER, spec.broker.name, Capability.RESTORES_ACCOUNT)
        else None,
        executes=cast("VenueExecution", broker)
        if declares(PluginKind.BROKER, spec.broker.name, Capability.VENUE_EXECUTION)
        else None,
        live_feed=spec.data is not None
        and declares(PluginKind.DATA_FEED, spec.data.name, Capability.LIVE_FEED),
        planner=cast("TargetPositioner", strategy)
        if declares(PluginKind.STRATEGY, spec.strategy.name, Capability.TARGET_POSITIONS)
        else None,
        leverage=cast("LeverageReporter", broker)
        if declares(PluginKind.BROKER, spec.broker.name, Capability.KNOWS_LEVERAGE)
        else None,
        cash_flows=cast("CashFlowReporter", broker)
        if declares(PluginKind.BROKER, spec.broker.name, Capability.REPORTS_CASH_FLOWS)
        else None,
        market_clock=cast("MarketClock", feed)
        if spec.data is not None
        and declares(PluginKind.DATA_FEED, spec.data.name, Capability.TELLS_MARKET_TIME)
        else None,
    )


class RunJournal(JournalWriter, Protocol):
    """The journal a session runs on: the engine's writes, a run's start and end, and what
    earlier runs left (read by paper and live bots only). ``tradefleet_runtime.journal.Journal``
    (SQLite) is every bot's; an optimiser's trial runs on ``DiscardingJournal``."""

    def start_run(
        self,
        *,
        run_id: str,
        bot: str,
        mode: str,
        currency: str,
        initial_capital: float,
        timeframe_s: int,
        config_hash: str,
        manifest: dict[str, Any],
    ) -> None: ...

    def finish_run(self, status: str, summary: dict[str, Any]) -> None: ...

    def last_control_event(self, bot: str) -> tuple[str, str] | None: ...

    def halt_events(self, bot: str) -> list[tuple[str, str, dict[str, Any]]]: ...

    def flatten_owed(self, bot: str) -> tuple[str, str] | None: ...

    def flatten_in_force(self, bot: str) -> tuple[str, str] | None: ...

    def closes_owed(self, bot: str) -> dict[str, tuple[str, str | None]]: ...

    def strategy_closes_waiting(self, bot: str) -> dict[str, str]: ...

    def risk_locks(self, bot: str) -> dict[str, tuple[str, int]]: ...

    def risk_lock_symbols(self, bot: str) -> dict[str, frozenset[str] | None]: ...

    def account_terms(self, bot: str) -> tuple[str, float] | None: ...

    def params_left(self, bot: str) -> dict[str, Any] | None: ...

    def run_modes(self, bot: str) -> frozenset[str]: ...

    def bot_identity(self, bot: str) -> str | None: ...

    def keep_bot_identity(self, bot: str, identity: str) -> None: ...

    def record_bar_handled(self, close_ts: int) -> None:
        """A paper or live run handled every symbol's bar closing at ``close_ts``: a restart
        resumes after it (committed at once)."""
        ...

    def record_came_back(self, at: float, *, market: bool) -> None:
        """This run, a restart, came back at ``at``: the orders it sends before its first live
        bar were on the venue's book from then (committed at once). ``market``: ``at`` is the
        market's time; else the host's clock's, never trusted to work an order on a bar that
        closed while the bot was down (``came_back_of``)."""
        ...

    def came_back_of(self, bot: str, client_order_ids: Iterable[str]) -> dict[str, float | None]:
        """Of ``client_order_ids``: those an earlier run that was a restart sent, each with
        the market's time it was on the venue's book by (``record_came_back``); None when no
        run that journaled it came back at a market time (it rests from the first live bar)."""
        ...

    def carried_state(self, bot: str) -> CarriedState | None: ...

    def run_timeframe(self, bot: str) -> int | None:
        """The timeframe of the bot's latest earlier paper or live run (the runs
        ``carried_state`` reads); None when the journal holds none."""
        ...

    def account_equity(self, bot: str) -> tuple[Sequence[int], Sequence[float]]: ...

    def lock_resets(self, bot: str) -> dict[str, int]: ...

    def measured_fills(self, bot: str, limit: int) -> list[tuple[Fill, float]]: ...

    def plugin_states(self, bot: str) -> dict[str, dict[str, Any]]: ...


def cash_flows_since(state: CarriedState, missed: Sequence[Fill] = ()) -> int | None:
    """From when a restarted bot asks its venue for payments made while it was down: its last
    journaled one (the venue's ids tell the ones already booked), else its first fill, one the
    reconciliation found made while it was down included (no position, no funding); None for a
    bot that never filled (nothing can be owed to it). Never before its journal was brought to
    a release that books payments (``cash_flows_from``): the release before booked none, and
    the weeks of them a position held over an upgrade would land in one step, today, where a
    daily loss limit sees them."""
    if state.cash_flows:
        return max(flow.ts for flow in state.cash_flows)
    fills = [*state.fills, *missed]
    if fills:
        return max(min(fill.ts for fill in fills), state.cash_flows_from)
    return None


def positions_before(fills: Sequence[Fill], since: int) -> dict[str, Position]:
    """The open positions the journal's ``fills`` (oldest first) left before ``since``: those
    a venue's fill reports from ``since`` on are counted from (``restores-positions``), as the
    journaled fills among them were. A venue position adopted at an earlier start
    (``ADOPTED_REASON``) is no trade the venue lists: it counts whatever its time."""
    positions: dict[str, Position] = {}
    for fill in fills:
        if fill.ts < since or fill.reason == ADOPTED_REASON:
            apply_fill(positions.setdefault(fill.symbol, Position(fill.symbol)), fill)
    return {symbol: position for symbol, position in positions.items() if position.quantity}


# Why a run of each mode may not take over the account of the other's runs (the journal's).
_OTHER_ACCOUNT = {
    Mode.LIVE: "a live run would take over their simulated account; give the live bot a journal "
    "of its own (another --journal; in a cluster, a new journal volume)",
    Mode.PAPER: "a paper run would take over the venue's account in simulation while its real "
    "positions and orders stay at the venue; stop the live bot as you want its positions left "
    "(its stop policy), then give the paper bot a journal of its own (another --journal; in a "
    "cluster, a new journal volume)",
}


def _refuse_other_account(mode: Mode, modes: frozenset[str], name: str) -> None:
    """A journal carries one account: a paper bot's simulated one or a live bot's venue
    account. A live run on a journal of the bot's paper runs would hand the venue's account
    the simulated positions, cash and orders; a paper run on one of its live runs would
    restore the venue's fills and working orders into a simulated account while the real
    positions stay open at the venue (a bot switched between paper and live in place, its
    journal volume kept). Refused before anything is journaled or sent, naming ``spec.mode``;
    backtest runs are never carried, so they do not count."""
    other = sorted(modes - {mode.value, Mode.BACKTEST.value})
    if not other:
        return
    held = f"this journal holds {'/'.join(other)} runs of {name}"
    why = _OTHER_ACCOUNT[mode]
    message = (
        f"{mode.value}, but {held}, {why}" if mode is Mode.LIVE else f"{mode}, but {held}: {why}"
    )
    raise SpecError([FieldError("spec.mode", message)])


def _refuse_new_terms(terms: tuple[str, float] | None, capital: CapitalSpec, name: str) -> None:
    """A restarted bot continues the account its journal keeps: its fills, positions and
    equity history are in the currency and on the capital its earlier runs were given. A
    spec.capital changed since would rebuild that account on other terms without a word: a
    currency relabels the same figures (USD read as EUR); a capital moves the cash under the
    open positions (100,000 to 5,000 left a position of ten times the equity) while the
    risk limits measured from the journaled equity (peak, day start) read the difference as
    a loss or a gain. Refused before anything is journaled, naming the field."""
    if terms is None:
        return
    currency, initial = terms
    fix = (
        "set it back, or give the bot a new journal to start a new account (another "
        "--journal; in a cluster, a new journal volume)"
    )
    if capital.currency != currency:
        raise SpecError(
            [
                FieldError(
                    "spec.capital.currency",
                    f"{capital.currency}, but the journal keeps {name}'s account in {currency} "
                    f"(its earlier runs); {fix}",
                )
            ]
        )
    if not math.isclose(capital.initial, initial, rel_tol=1e-12, abs_tol=1e-9):
        raise SpecError(
            [
                FieldError(
                    "spec.capital.initial",
                    f"{capital.initial:,.2f} {currency}, but the journal keeps {name}'s account "
                    f"on a capital of {initial:,.2f} {currency} (its earlier runs: positions, "
                    f"cash and the equity its risk limits measure from); {fix}",
                )
            ]
        )


def _refuse_unreachable_holdings(bot: Bot, journal: RunJournal, earlier: CarriedState) -> None:
    """An edited spec.market that cannot trade what the journal's account holds (a held symbol
    no longer listed; another timeframe off its boundary: ``restart_spec_check``) is refused
    before anything is journaled, sent or cancelled, naming the field: a refused start leaves
    no run on the new spec (whose timeframe the next start would take for the journal's), and
    a venue's own SL/TP keep working meanwhile."""
    market = bot.manifest.spec.market
    refusals = restart_refusals(
        earlier, journal.run_timeframe(bot.name), market.symbols, market.timeframe_s
    )
    if refusals:
        raise SpecError(refusals)


def live_identity(bot: Bot, journal: RunJournal) -> str:
    """The identity a live bot's order ids and venue tags derive from, kept in its journal.

    A new journal draws one (``order_ids.new_identity``): two bots of one name — in two
    namespaces, or a manifest copied onto the same account — never send the same ids, nor
    take each other's orders and fills for their own. A journal that already holds the bot's
    live runs from before identities keeps the bare name: its orders at the venue carry the
    prefix the name gives, and a restart must still know them.
    """
    kept = journal.bot_identity(bot.name)
    if kept is None:
        legacy = Mode.LIVE.value in journal.run_modes(bot.name)
        namespace = bot.manifest.metadata.namespace
        kept = bot.name if legacy else new_identity(bot.name, namespace, secrets.token_hex(4))
        journal.keep_bot_identity(bot.name, kept)
    return kept


def start_journal_run(bot: Bot, journal: RunJournal) -> None:
    """Open the run's row in the journal: a new run id, the bot, its mode and manifest."""
    spec = bot.manifest.spec
    journal.start_run(
        run_id=time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6],
        bot=bot.name,
        mode=spec.mode.value,
        currency=spec.capital.currency,
        initial_capital=spec.capital.initial,
        timeframe_s=spec.market.timeframe_s,
        config_hash=config_hash(bot.manifest),
        manifest=bot.manifest.model_dump(mode="json", by_alias=True, exclude_none=True),
    )


def journal_warm_up(
    journal: RunJournal,
    now: int,
    bars: int,
    warmup: int,
    resumed_after: int,
    dropped: int,
    missed: MissedBars | None = None,
    decisions: int = 0,
) -> None:
    """Journal the history shown to the strategy before the run traded (``warmed_up``):
    ``bars`` of it, for a warm-up of ``warmup`` bars and a restart after ``resumed_after``;
    ``missed``: those of them that closed while the bot was down (``split_history``), and
    ``decisions`` the orders sent for the newest closed bar of a higher timeframe among them
    (``Engine.catch_up``)."""
    message = (
        f"{bars} bar(s) of history shown to the strategy "
        f"(warm-up {warmup}, resumed after {resumed_after})"
    )
    data: dict[str, Any] = {"bars": bars, "dropped_orders": dropped}
    if missed is not None and missed.bars:
        message += f"; {missed.said(decisions)}"
        data["missed_bars"] = missed.bars
        if decisions:
            data["missed_decisions"] = decisions
    journal.record_event(now, "warmed_up", message, data)


def journal_open_position(journal: RunJournal, now: int, position: Position) -> str:
    """Journal a position the run leaves open (its ``open_position`` event); the message."""
    message = (
        f"{position.symbol}: {position.quantity:+.10g} @ {position.average_price:.10g} still open"
    )
    journal.record_event(now, "open_position", message)
    return message


def finish_run(
    journal: RunJournal,
    now: int,
    result: RunResult,
    status: str,
    open_trades: tuple[Trade, ...] = (),
) -> RunOutcome:
    """The run's figures (positions left open counted as ``open_trades``), its data gaps and
    its end, journaled: what every run's close — the engine's or the vectorised path's — does
    last."""
    figures = compute_figures(
        initial=result.start_equity,
        timestamps=result.equity_ts,
        equity=result.equity,
        exposure=result.exposure,
        trades=[*result.trades, *open_trades],
        fees=result.fees,
    )
    if result.feed is not None and result.feed.gaps:
        journal.record_event(now, "data_gaps", "; ".join(result.feed.notes))
    journal.finish_run(status, figures.as_json())
    return RunOutcome(result, figures, status, open_trades)


@contextmanager
def _collector_frozen(frozen: bool) -> Iterator[None]:
    """Freeze what the garbage collector tracks for the block (a backtest's run), then thaw it.

    A backtest's set-up lives until its run ends: the plugins, and the bars when they were
    loaded up front (every trial of an optimisation shares them). Frozen, the collector stops
    walking them on each collection it makes for the run's own objects, which it still
    collects: 5% of a 300,000-bar run, measured A/B in one process. Thawed afterwards, so
    what the run left behind is collected as before.
    """
    if not frozen:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def instant(bars: Iterable[Bar]) -> Iterator[Bar]:
    """The backtest pacer: bars as fast as the feed gives them."""
    return iter(bars)


def wall_clock(speed: float, stop: threading.Event) -> Pacer:
    """A pacer releasing each bar when it would have closed on a clock ``speed``× real time.

    ``speed`` 0 releases bars as fast as they come (a feed that itself waits for the market).
    """

    def pace(bars: Iterable[Bar]) -> Iterator[Bar]:
        start_wall: float | None = None
        first_close = 0
        for bar in bars:
            if stop.is_set():
                return
            if speed > 0:
                if start_wall is None:
                    start_wall = time.monotonic()
                    first_close = bar.close_ts
                due = start_wall + (bar.close_ts - first_close) / speed
                delay = due - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    return
            yield bar

    return pace


@dataclass
class RunOutcome:
    result: RunResult
    figures: Figures
    status: str = "completed"  # completed (data ended), stopped, failed
    # A backtest's positions still open when it ended, as trades closed at their last mark
    # (``END_OF_DATA``, no exit fee): its figures count them, as its report does. Empty for
    # a paper or live run, whose positions carry over to the next start.
    open_trades: tuple[Trade, ...] = ()


def _account_leverage(bot: Bot) -> float:
    """The leverage risk plugins are told (``RiskContext.leverage``): the broker's, read once it
    is connected, or 1 when it cannot tell (an order's margin is then its whole notional, never
    less than the venue asks)."""
    if bot.leverage is None:
        return 1.0
    leverage = bot.leverage.account_leverage()
    if leverage is None or not math.isfinite(leverage) or leverage < 1.0:
        return 1.0
    return float(leverage)


def _credentials_dir() -> Path | None:
    """Where the broker's credentials Secret is mounted (set by the operator's pod spec)."""
    folder = os.environ.get("TRADEFLEET_CREDENTIALS_DIR")
    return Path(folder) if folder else None


class BotSession:
    """Owns one run of one bot. Call :meth:`open`, :meth:`run`, then :meth:`close`; or
    :meth:`run_to_end` for all three."""

    def __init__(
        self,
        bot: Bot,
        journal: RunJournal,
        *,
        bars: Iterable[Bar] | None = None,
        pacer: Pacer = instant,
        should_stop: Callable[[], bool] | None = None,
        prepare: Callable[[Engine], None] | None = None,
        wake: Callable[[], None] | None = None,
        idle: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
        connect_retry: Callable[[ConnectionError, int], bool] | None = None,
        stop_wait_s: float = STOP_CANCEL_WAIT_S,
    ) -> None:
        self.bot = bot
        self.journal = journal
        self.pacer = pacer
        # What the bot's order ids derive from (``live_identity``); empty: its name.
        self.identity = ""
        # The journal's carried state, once read at a live start (its first-run check).
        self._carried_read: tuple[CarriedState | None] | None = None
        self.should_stop = should_stop
        self._bars = bars
        self._prepare = prepare
        self.engine: Engine | None = None
        self.carried: CarriedState | None = None
        self.history_bars = 0  # bars shown to the strategy as warm-up or already handled
        # The runtime's hooks for a live venue and feed (the service wakes its engine thread
        # with the first and serves commands and venue events with the second).
        self._wake = wake
        self._idle = idle
        self._clock = clock
        # What start-up reconciliation found (None: the broker's account is the journal's).
        self.reconciliation: ReconcilePlan | None = None
        # A venue that cannot be reached when the bot starts (the broker's connect raises
        # ConnectionError): called with the error and the attempt, it waits and answers
        # whether to try again (False: the error ends the run). None: the first such error
        # ends it.
        self._connect_retry = connect_retry
        # How long the stop policy waits for the venue's answers (``apply_stop_policy``).
        self.stop_wait_s = stop_wait_s
        self._ended = False  # the run's failure is journaled (``fail``): once only

    @property
    def mode(self) -> Mode:
        return self.bot.manifest.spec.mode

    def open(self) -> Engine:
        """Start the journal's run and connect the broker (a backtest: the other way round),
        restore what earlier runs left."""
        bot, journal = self.bot, self.journal
        spec = bot.manifest.spec
        first_run = False
        if spec.mode is not Mode.BACKTEST:
            modes = journal.run_modes(bot.name)
            _refuse_other_account(spec.mode, modes, bot.name)
            if spec.mode is Mode.LIVE:
                self.identity = live_identity(bot, journal)
            # Decided before this run is journaled. An earlier run that left nothing (no
            # order, fill or bar: refused at connect, say) does not make this one a restart:
            # a bot restarted in a loop must be refused its capital check each time.
            earlier = None
            if modes - {Mode.BACKTEST.value}:
                earlier = journal.carried_state(bot.name)
                self._carried_read = (earlier,)  # what ``_restore`` reads again otherwise
            carries = earlier is not None and bool(
                earlier.fills or earlier.known_order_ids or earlier.last_bar_ts
            )
            first_run = spec.mode is Mode.LIVE and not carries
            if carries:
                _refuse_new_terms(journal.account_terms(bot.name), spec.capital, bot.name)
            if earlier is not None:
                _refuse_unreachable_holdings(bot, journal, earlier)
        context = BrokerContext(
            bot_name=bot.name,
            mode=spec.mode,
            symbols=tuple(spec.market.symbols),
            currency=spec.capital.currency,
            initial_capital=spec.capital.initial,
            credentials_dir=_credentials_dir(),
            wake=self._wake,
            identity=self.identity,
            first_run=first_run,
        )
        if spec.mode is Mode.BACKTEST:
            # A backtest its broker refuses (a symbol it lacks, capital in another currency)
            # is refused before the journal has a run of it, as the vectorised path refuses
            # it: none is left 'running', which the next run would call interrupted and
            # ``tradefleet report`` would show in place of the journal's last real one.
            self._connect(context)
            self._start_journal()
        else:
            self._start_journal()
            self._connect(context)
        config = EngineConfig(
            bot_name=bot.name,
            identity=self.identity,
            strategy_name=spec.strategy.name,
            mode=spec.mode.value,
            symbols=tuple(spec.market.symbols),
            base_timeframe_s=spec.market.timeframe_s,
            initial_capital=spec.capital.initial,
            currency=spec.capital.currency,
            paused=spec.paused,
            # A backtest journals equity in chunks; a paper or live bot after every bar, which
            # also marks the last bar it handled (where a restart resumes).
            equity_chunk=1024 if spec.mode is Mode.BACKTEST else 1,
        )
        engine = Engine(
            config,
            bot.strategy,
            bot.broker,
            journal,
            bot.risk,
            signals=bot.signals,
            lock_holders=bot.lock_holders,
            restorer=bot.restorer,
            venue=bot.executes,
            hooks=bot.risk_hooks,
            brackets=bot.brackets,
            leverage=_account_leverage(bot),
        )
        engine.tracer = configure_from_env("tradefleet-runtime", bot.name)
        self.engine = engine
        if self._prepare is not None:
            self._prepare(engine)
        # A paper or live run starts now (shown as such by `tradefleet events`); a backtest's
        # time is its bars', and it has none yet.
        started = 0 if spec.mode is Mode.BACKTEST else int(self._clock())
        journal.record_event(
            started, "run_started", f"{bot.name} started in {spec.mode.value} mode"
        )
        if spec.mode is not Mode.BACKTEST:
            if spec.emergency_stop is not None and spec.emergency_stop.flatten:
                # Its flatten closes every position (sent by the operator once the runtime
                # answers): the reconciliation must not close a part beside it.
                engine.expect_spec_flatten()
            # A paper or live bot continues its account; a backtest always starts afresh.
            self._restore(engine)
            self._say_params_reverted(journal.params_left(bot.name))
        try:
            engine.start()
        except Exception as error:
            # Journaled as the run's failure, not left 'running'.
            self.fail(error)
            # A ValueError out of on_start (or its subscriptions) is the strategy refusing
            # these params, as documented: a refusal, not a bug. Anything else it raised is a
            # StrategyError (naming the hook), raised as such.
            told = error.__cause__ if isinstance(error, StrategyError) else error
            if isinstance(told, ValueError) and not isinstance(told, DataError):
                name = spec.strategy.name
                hook = f" ({error.hook})" if isinstance(error, StrategyError) else ""
                raise StrategyRefused(
                    f"spec.strategy: {name} could not start{hook}: {told}"
                ) from error
            raise
        stop = spec.emergency_stop
        if stop is not None and spec.mode is not Mode.BACKTEST and not engine.halted:
            # The manifest says halted (the operator writes ``spec.emergencyStop`` into the
            # pod's bot.yaml): a pod that restarts before its halt was journaled, or on a journal
            # that is gone (ephemeral), must not trade until a resume. Journaled as any halt.
            engine.halt(SPEC_STOP, " ".join(stop.reason.split()))
        owed = journal.flatten_owed(bot.name) if spec.mode is not Mode.BACKTEST else None
        asked = journal.flatten_in_force(bot.name) if spec.mode is not Mode.BACKTEST else None
        if asked is not None:
            # The halt in force promised a flat account: an entry that fills from here on
            # (its cancel lost the race) is closed, as before the restart.
            engine.keep_flatten(*asked)
            if owed is None and engine.portfolio.open_positions:
                # Every close of the flatten filled, yet the reconciled account holds a
                # position: an entry filled after the flatten while the process was down.
                owed = asked
        if owed is not None:
            # An emergency stop with flatten was given while the venue could not be reached,
            # or its closes had not all filled: now that the venue answers (and the account is
            # reconciled), close what the bot holds.
            engine.flatten(*owed)
        closes = journal.closes_owed(bot.name) if spec.mode is not Mode.BACKTEST else {}
        if closes:
            # A risk plugin's or the stop policy's flatten an earlier run had not finished (its
            # close refused, unanswered, or never received): as the emergency's, after the
            # reconciliation and before the first bar (a position found flat owes nothing).
            closed = engine.resume_closes(closes)
            if closed:
                log.warning("%s: owed closes resumed: %s", bot.name, ", ".join(closed))
        waiting = (
            journal.strategy_closes_waiting(bot.name) if spec.mode is not Mode.BACKTEST else {}
        )
        if waiting:
            # The strategy's closes an earlier run held back for the venue's cancel answers
            # when it stopped: the strategy decided them, and their guards' cancels may have
            # landed meanwhile; asked again now, after the reconciliation and the owed closes.
            resumed = engine.resume_strategy_closes(waiting)
            if resumed:
                log.warning("%s: the strategy's closes resumed: %s", bot.name, ", ".join(resumed))
        return engine

    def _connect(self, context: BrokerContext) -> None:
        """Connect the broker; while its venue cannot be reached, try again as
        ``connect_retry`` says (anything else the broker raises — refused credentials, a bad
        symbol — ends the run at once: waiting would not change it)."""
        attempt = 0
        while True:
            try:
                self.bot.broker.connect(context)
                return
            except ConnectionError as error:
                attempt += 1
                if self._connect_retry is None or not self._connect_retry(error, attempt):
                    raise

    def _start_journal(self) -> None:
        start_journal_run(self.bot, self.journal)

    def _restore(self, engine: Engine) -> None:
        read = self._carried_read
        carried = read[0] if read is not None else self.journal.carried_state(self.bot.name)
        self.carried = carried
        if carried is not None:
            # First: everything until the first bar is stamped at the last bar's close, a
            # person's reset, halt or resume included (``Engine.restore_clock``).
            engine.restore_clock(carried.last_bar_ts)
            # Before any order this run sends at its start (a flatten or close owed, a
            # decision on a missed bar): when they reached the venue, for a later restart
            # handed the same missed bars (``MissedBars.rested_on``). The host's clock until
            # the feed tells the market's (``_came_back_journaled``), if it ever does: marked
            # as such, never trusted — a host clock behind the market's would let a later
            # restart fill these orders on a bar that closed before they were sent.
            self.journal.record_came_back(self._clock(), market=False)
        # Each holder's halt (the fleet's, a person's given after it), so that a resume aimed
        # at one still lifts that one alone. One lifted is not in force, even when its
        # ``halted`` row is the newest halt or resume: a Degraded stop it was lifted beside is
        # never journaled as a halt, and the reconciliation of this start decides it again.
        name = self.bot.name
        halts = halts_in_force(
            self.journal.halt_events(name), self.journal.last_control_event(name)
        )
        if halts:
            engine.restore_halts(halts)
            self.journal.record_event(engine.now, "halt_restored", "the emergency stop still holds")
        # The account's past equity, before the locks (a restored lock is the last word on a
        # plugin's state); a first start has none.
        timestamps, equity = self.journal.account_equity(self.bot.name)
        if timestamps:
            engine.restore_equity(timestamps, equity, self.journal.lock_resets(name))
        locks = self.journal.risk_locks(name)
        if locks:
            # A risk lock outlives the process: only a person's ResetRiskLock clears it.
            engine.restore_locks(locks, self.journal.risk_lock_symbols(name))
        measured = (
            self.journal.measured_fills(self.bot.name, RESTORED_FILLS)
            if engine.hooks.fill_restorers
            else []
        )
        if measured:
            # After the locks: a plugin that holds one again takes them, measuring from the
            # reset a person makes.
            engine.restore_fills(measured, self.journal.lock_resets(name))
        if self.bot.venue is not None:
            self._reconcile(engine, self.bot.venue, carried)
        elif carried is not None:
            summary = engine.restore(carried)
            if engine.listener is None:  # a listener (the trade log of run and serve) says it
                log.warning("%s: %s", self.bot.name, summary)
        if engine.hooks.state_restorers:
            # Once the account is the one the bot trades on (restored, or reconciled with the
            # venue): a plugin keeps only the state that fits its positions as they are now.
            engine.restore_states(self.journal.plugin_states(self.bot.name))
        if halts:
            # Only now are the working orders known (adopted from the venue, or re-armed): an
            # entry the halt's cancel never reached (the process died first) would otherwise
            # fill while the bot says it is halted.
            cancelled = engine.enforce_restored_halt()
            if cancelled:
                log.warning("%s: the emergency stop holds: cancelled %s", self.bot.name, cancelled)

    def _say_params_reverted(self, left: dict[str, Any] | None) -> None:
        """An UpdateParams lasts as long as its process: a restart runs the manifest's params.
        When the run before changed them, say so where a person sees it, with both sets: the
        bot trades on other params than the ones it ended with."""
        if left is None:
            return
        running = getattr(self.bot.strategy, "params", None)
        now = running.model_dump(mode="json") if isinstance(running, BaseModel) else None
        if now is None or now == left:
            return
        changed = sorted(key for key in set(left) | set(now) if left.get(key) != now.get(key))
        differences = ", ".join(f"{k} {left.get(k)!r} -> {now.get(k)!r}" for k in changed)
        message = (
            "strategy params changed by UpdateParams in the run before were not kept: the "
            f"manifest's run again ({differences}); change the manifest to keep a change"
        )
        log.warning("%s: %s", self.bot.name, message)
        self.journal.record_event(0, "params_reverted", message, {"left": left, "now": now})

    def _reconcile(
        self, engine: Engine, venue: VenueExecution, carried: CarriedState | None
    ) -> None:
        """Compare the journal with the venue before the first order (``reconcile.py``)."""
        spec = self.bot.manifest.spec
        state = carried or CarriedState(initial_capital=spec.capital.initial)
        now = int(self._clock())
        # Fills the bot may have missed: since its last journaled fill or the oldest order it
        # thought working (a week back for a bot with no journal: a lost volume).
        starts = [fill.ts for fill in state.fills[-1:]]
        starts += [order.created_ts for order, _ in state.working]
        starts += [order.created_ts for order in state.unacknowledged]
        since = min(starts) if starts else now - 7 * 86400
        working = {order.client_order_id: order for order, _ in state.working}
        working.update({order.client_order_id: order for order in state.unacknowledged})
        if isinstance(venue, PositionRestorer):  # only a broker declaring it loads with it
            # Before the venue's reports: the fills they list from ``since`` (those made while
            # the bot was down among them) are counted from the positions the journal held
            # before them, not from flat (a spot buy closing a short counts its whole amount).
            venue.restore_positions(positions_before(state.fills, since))
        if isinstance(venue, OrderRestorer):
            # Before the venue's reports too: what the venue cannot read back of the orders
            # the journal holds working (an MT5 split child's level a person moved on one
            # ticket: the child's own line firing is then its fill, not a change outside).
            venue.restore_orders(list(working.values()))
        plan = plan_reconciliation(
            prefix=bot_prefix(self.identity or self.bot.name),
            symbols=spec.market.symbols,
            journal_fills=state.fills,
            journal_working=working,
            known_order_ids=state.known_order_ids,
            venue_orders=venue.order_reports(since),
            venue_fills=venue.fill_reports(since),
            venue_positions=venue.position_reports(),
            now=now,
            tolerance=self._tolerance(engine),
            adopt_venue_positions=spec.broker.adopt_venue_positions,
            acknowledged={order.client_order_id for order, _ in state.working},
        )
        self.reconciliation = plan
        # Asked before the missed fills are booked: a payment goes in among them, in time order.
        flows = self._missed_cash_flows(state, plan.missed_fills)
        summary = engine.restore_from_venue(state, plan, now, flows)
        if isinstance(venue, PositionRestorer):  # only a broker declaring it loads with it
            # Before any bar or a flatten owed: the broker counts this run's fills from the
            # positions the bot books, not from flat (``restores-positions``).
            venue.restore_positions(dict(engine.portfolio.open_positions))
        if plan.degraded:
            log.error("%s: %s", self.bot.name, summary)
        else:
            log.warning("%s: %s", self.bot.name, summary)
        for note in plan.notes:
            self.journal.record_event(now, "reconcile_note", note)
        summary = engine.book_missed_cash_flows(flows)
        if summary:
            log.warning("%s: %s", self.bot.name, summary)

    def _missed_cash_flows(self, state: CarriedState, missed: Sequence[Fill]) -> Sequence[CashFlow]:
        """The venue's payments (funding, swaps) made while the bot was down, booked before it
        trades: its equity, and every limit measured on it, start from what the venue holds."""
        reporter = self.bot.cash_flows
        since = cash_flows_since(state, missed)
        if reporter is None or since is None:
            return ()
        return reporter.cash_flow_reports(since)

    def feed_request(self) -> FeedRequest:
        spec = self.bot.manifest.spec
        try:
            warmup = self.bot.strategy.warmup_bars()
        except Exception as error:
            raise StrategyError.of(spec.strategy.name, "warmup_bars", error) from error
        return FeedRequest(
            tuple(spec.market.symbols),
            spec.market.timeframe_s,
            self.bot.base_dir,
            warmup_bars=warmup,
            resume_after_ts=self.carried.last_bar_ts if self.carried is not None else 0,
            idle=self._idle,
            should_stop=self.should_stop,
        )

    def bars(self) -> Iterator[Bar]:
        if self._bars is not None:
            return iter(self._bars)
        if self.bot.feed is None:
            raise SpecError([FieldError("spec.data", "this bot has no data feed")])
        return iter(self.bot.feed.bars(self.feed_request()))

    def run(self) -> str:
        """Warm up, then trade until the bars end or ``should_stop``: "completed"/"stopped".

        On an error the run is journaled as failed (with the reason) and the error re-raised.
        """
        engine = self.engine if self.engine is not None else self.open()
        try:
            request = self.feed_request()
            bars = self.bars()
            clock = self.bot.market_clock
            missed = MissedBars()
            # A first start, or a feed without the market's time, misses nothing: no outage.
            restarted = clock is not None and request.resume_after_ts > 0
            history, live = split_history(
                bars,
                request.warmup_bars,
                request.resume_after_ts,
                _came_back_journaled(self.journal, clock.market_time)
                if clock is not None
                else None,
                missed,
            )
            if restarted:
                earlier = (o.client_order_id for o in engine.open_orders())
                missed.sent_back = self.journal.came_back_of(
                    self.bot.name, [i for i in earlier if i in engine.known_ids]
                )
            self.history_bars = engine.catch_up(history, missed if restarted else None)
            if missed.bars:
                said = missed.said(engine.stats.missed_decisions)
                log.warning("%s: %s", self.bot.name, said)
            if self.history_bars:
                journal_warm_up(
                    self.journal,
                    engine.now,
                    self.history_bars,
                    request.warmup_bars,
                    request.resume_after_ts,
                    engine.stats.warmup_intents,
                    missed,
                    engine.stats.missed_decisions,
                )
            released = self.pacer(live())
            late = None
            if clock is not None and self.mode is not Mode.BACKTEST:
                slack = int(clock.release_slack_s()) if isinstance(clock, ReleaseSlack) else 0
                late = LateBars(clock.market_time, slack)
                released = late.watch(released)
            if self.bot.venue is not None:
                released = self._watching_positions(engine, self.bot.venue, released)
            if self.mode is not Mode.BACKTEST:
                symbols = frozenset(self.bot.manifest.spec.market.symbols)
                released = _marking_handled(self.journal, engine, released, symbols)
            with _collector_frozen(self.mode is Mode.BACKTEST):
                engine.run(released, self.should_stop, late=late)
        except BaseException as error:
            self.fail(error)
            raise
        stopped = self.should_stop is not None and self.should_stop()
        return "stopped" if stopped else "completed"

    def _watching_positions(
        self, engine: Engine, venue: VenueExecution, bars: Iterator[Bar]
    ) -> Iterator[Bar]:
        """``bars``, each new timestamp's first after the bot's positions were compared with
        the venue's (``position_drift``, the start-up reconciliation's rules): a position
        closed or changed by hand while the bot runs halts it Degraded before it trades on the
        next bar, instead of trading on a position that is not there (found only at the next
        restart). A difference is read again after ``DRIFT_SETTLE_S`` with the broker's events
        applied, so a fill on its way to the bot is not taken for one; a venue that does not
        answer skips the comparison."""
        current = None
        for bar in bars:
            if bar.ts != current:
                current = bar.ts
                if not engine.degraded_reason:
                    self._compare_positions(engine, venue)
            yield bar

    def _tolerance(self, engine: Engine) -> float:
        """How far a venue's position may differ from the bot's and still agree: half the
        smallest lot step of the bot's symbols (a float's last bits otherwise)."""
        step = min(
            (engine.instrument(s).lot_step for s in self.bot.manifest.spec.market.symbols),
            default=0.0,
        )
        return step / 2 if step > 0 else 1e-9

    def _compare_positions(self, engine: Engine, venue: VenueExecution) -> None:
        symbols = self.bot.manifest.spec.market.symbols
        tolerance = self._tolerance(engine)
        drift: dict[str, tuple[float, float]] = {}
        for attempt in range(2):
            if attempt:
                time.sleep(DRIFT_SETTLE_S)
            engine.pump()
            held = {s: engine.portfolio.position(s).quantity for s in symbols}
            try:
                reports = venue.position_reports()
            except Exception as error:  # a venue that does not answer is not a difference
                log.warning("%s: positions not compared with the venue: %s", self.bot.name, error)
                return
            drift = position_drift(symbols, held, reports, tolerance)
            if not drift:
                return
        mismatches = "; ".join(
            f"{symbol}: the bot holds {have:+.10g}, the venue {venue_holds:+.10g}"
            for symbol, (have, venue_holds) in drift.items()
        )
        reason = (
            f"position drift: {mismatches} (changed outside the bot while it ran: by a person, "
            "or by another bot trading the symbol on this account — a bot needs its symbols' "
            "positions to itself)"
        )
        log.error("%s: %s", self.bot.name, reason)
        engine.degrade(reason)

    def fail(self, error: BaseException, status: str = "failed") -> None:
        """Journal the failure, naming it (best effort: the journal itself may be what failed).
        ``status`` "stopped": the run was stopped before it could start (the error says why
        it had not)."""
        if self._ended:
            return  # journaled where it happened (``open``, ``run``); a caller's second word
        self._ended = True
        reason = f"{type(error).__name__}: {error}"
        try:
            now = self.engine.now if self.engine is not None else 0
            if status == "failed":
                self.journal.record_event(now, "run_failed", f"the run failed: {reason}")
            else:
                self.journal.record_event(
                    now, "run_stopped", f"stopped before it started: {reason}"
                )
            self.journal.finish_run(status, {"error": reason})
        except Exception:
            log.exception("%s: could not journal the failure", self.bot.name)

    def close(self, status: str) -> RunOutcome:
        """Apply the stop policy (when stopped), finish the run and journal what it left."""
        engine = self.engine
        assert engine is not None, "close() before open()"
        journal = self.journal
        if status == "stopped":
            apply_stop_policy(self.bot, engine, self.stop_wait_s)
        for position in engine.portfolio.open_positions.values():
            message = journal_open_position(journal, engine.now, position)
            if status == "stopped":
                log.warning("%s: open position at shutdown: %s", self.bot.name, message)
        result = engine.finish(self.bot.feed.report() if self.bot.feed else None)
        open_trades: tuple[Trade, ...] = ()
        if self.mode is Mode.BACKTEST:
            ended = result.equity_ts[-1] if result.equity_ts else 0
            open_trades = tuple(engine.portfolio.end_of_data_trades(ended))
        return finish_run(journal, engine.now, result, status, open_trades)

    def run_to_end(self) -> RunOutcome:
        self.open()
        return self.close(self.run())


class LateBars:
    """Which bars of a running live bot came late (``Engine._late_shown``): after a newer bar of
    their series had closed, by ``bar_missed`` at the market's time each timestamp's bars came
    (``watch``), as a restart judges the bars that closed while it was down — give or take what
    the feed holds a bar back on purpose beyond one timeframe (``slack``, ``ReleaseSlack``).
    Only once a bar came on time: what a feed hands over first is the start's (a first start
    misses nothing; a restart's history was split already, its first live bar judged at the
    market's time it came back, so none is read for it)."""

    def __init__(self, market_time: Callable[[], float | None], slack: int) -> None:
        self._market_time = market_time
        self._slack = slack
        self._received: float | None = None
        self._caught_up = False

    def watch(self, bars: Iterator[Bar]) -> Iterator[Bar]:
        """``bars``, the market's time read as each timestamp's first bar comes."""
        current = None
        first = True
        for bar in bars:
            if bar[2] != current:
                current = bar[2]
                self._received = None if first else self._market_time()
                first = False
            yield bar

    def __call__(self, bar: Bar) -> bool:
        now = self._received
        beyond = max(self._slack - bar[1], 0)
        missed = bar_missed(bar[2] + bar[1] + beyond, bar[1], now)
        if now is not None and not missed:
            self._caught_up = True
        return missed and self._caught_up


def _marking_handled(
    journal: RunJournal, engine: Engine, bars: Iterator[Bar], symbols: frozenset[str]
) -> Iterator[Bar]:
    """``bars``, each timestamp journaled as handled (``record_bar_handled``) once the engine
    asks for the bar after the last of ``symbols``' bars at it: it has then handled them all,
    and has not yet waited for the next candle — where a live bot spends its time, and where a
    kill finds it. A timestamp handled in part (killed, or a strategy failing, between two
    symbols' bars) is not marked: the restart hands the whole of it again, in the same order,
    so its orders get the ids they had (and are not sent twice), and no symbol's bar is
    skipped. A timestamp some symbol has no bar at is left to its equity snapshot, journaled
    when the next one begins. Paper and live runs only: a backtest restarts from the
    beginning.

    A marked timestamp's equity is snapshotted then too (``Engine.close_timestamp``), at its
    close: the fills a venue reports while the bot waits belong to the next close, not to
    this one (the day's start, and a restart's, would drop their loss). After the mark: a
    kill between the two leaves the timestamp handled, without its snapshot, as before."""
    current = None
    seen: set[str] = set()
    for bar in bars:
        if bar[2] != current:
            current = bar[2]
            seen = set()
        yield bar
        seen.add(bar[0])
        if seen >= symbols:
            journal.record_bar_handled(bar[2] + bar[1])
            engine.close_timestamp(bar[2])


@dataclass
class MissedBars:
    """The bars a restarted bot was sent that closed while it was down (``bar_missed``),
    counted as ``split_history`` hands them over as history: once per bar time, whatever the
    number of symbols (a bar each). It is the ``Outage`` ``Engine.catch_up`` is told: which
    bars closed while the bot was down, and which bar of a higher timeframe built from them
    is still the newest of its series (traded)."""

    bars: int = 0
    first_close: int = 0  # the first and last of their close times (UTC epoch seconds)
    last_close: int = 0
    # The market's time when the bot came back (``split_history`` reads it once); None: not
    # read (a first start, a feed without market time), and nothing was missed.
    came_back: float | None = None
    # The orders working before the restart that an earlier restart sent, each with the
    # market's time they were on the venue's book by (``RunJournal.came_back_of``); None: not
    # known (that run came back at the host's clock's time), on the book from the first live bar.
    sent_back: dict[str, float | None] = field(default_factory=dict)

    def add(self, bar: Bar) -> None:
        close = bar[2] + bar[1]
        if self.bars and close == self.last_close:
            return  # another symbol's bar of the same time
        self.first_close = close if not self.bars else self.first_close
        self.last_close = close
        self.bars += 1

    def closed_while_down(self, bar: Bar) -> bool:
        """Whether ``bar`` (a base bar handed over as history) is one of them: they are
        history's last bars, from the first one counted on (each is counted before it is
        handed over)."""
        return self.bars > 0 and bar[2] + bar[1] >= self.first_close

    def still_newest(self, bar: Bar) -> bool:
        """Whether ``bar`` — of any series: a higher timeframe's, built from base bars that
        closed while the bot was down — was still the newest closed bar of its series when the
        bot came back (``bar_missed`` on its own timeframe): its decision is traded, a little
        late, as a running bot would have. A base bar counted here never is."""
        came_back = self.came_back
        return came_back is not None and not bar_missed(bar[2] + bar[1], bar[1], came_back)

    def rested_on(self, order: Order, bar: Bar) -> bool:
        """Whether ``order``, working before the restart, was on the venue's book by ``bar``,
        a base bar that closed while the bot was down (``Engine._work_missed``). One an
        earlier restart sent — a higher timeframe's decision, a close owed, all stamped with a
        bar time before that run came back — reached the venue when that run came back, and
        waited for its first live bar (``rested_since``); that run was killed before it
        handled one, or this restart would not be handed the bar again. A bracket child was
        put on the book by its entry's fill, at its own time, whichever run journaled it; any
        other order from its creation (the broker's rule). One whose sending run came back at a
        time only the host's clock told (``sent_back`` None) is on no such bar: it may fill
        later than the venue would have filled it, never before it was sent."""
        if order.parent_id is not None:
            return True
        order_id = order.client_order_id
        if order_id not in self.sent_back:
            return True
        back = self.sent_back[order_id]
        return back is not None and rested_since(bar, back)

    def said(self, decisions: int = 0) -> str:
        """What a person reads in the log and the ``warmed_up`` event; ``decisions``: the
        orders sent for the newest closed bar of a higher timeframe among them."""
        span = f"{_utc(self.first_close)} to {_utc(self.last_close)}"
        sent = (
            f"; {decisions} order(s) sent for the newest closed bar of a higher timeframe "
            "built from them, a little late"
            if decisions
            else ""
        )
        return (
            f"{self.bars} bar(s) closed while the bot was down (closes {span}): history only, "
            f"shown to the strategy, no order sent for them{sent}"
        )


def _utc(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def bar_missed(close_ts: int, timeframe_s: int, market_now: float | None) -> bool:
    """Whether a bar closing at ``close_ts`` closed while the bot was down: a newer bar of its
    timeframe had already closed at ``market_now``, the market's time when the bot got it
    (None: not known; the bar is traded). The newest closed bar is not missed: a bot back
    within one bar trades it, a little late, as a running bot would have. Judged on each
    series' own timeframe: a 4h bar is the newest until the next 4h bar closes, whatever
    number of its 1h bases closed since (``MissedBars.still_newest``)."""
    return market_now is not None and close_ts + timeframe_s <= market_now


def rested_since(bar: Bar, sent: float) -> bool:
    """Whether an order sent at the market's time ``sent`` by a restarted run, before its
    first live bar, was on the venue's book by ``bar``: ``bar`` was not yet missed then
    (``bar_missed``) — it is that run's first live bar or a later one, from which an order
    sent at a restart is worked, as a running bot's from the bar after its decision."""
    return not bar_missed(bar[2] + bar[1], bar[1], sent)


def _came_back_journaled(
    journal: RunJournal, market_time: Callable[[], float | None]
) -> Callable[[], float | None]:
    """``market_time``, its first answer journaled (``record_came_back``): the market's time a
    restarted bot came back, which ``split_history`` asks for before any bar that closed
    while the bot was down is worked or decided on, and so before any order sent for one."""
    told: list[float] = []

    def read() -> float | None:
        now = market_time()
        if now is not None and not told:
            told.append(now)
            journal.record_came_back(now, market=True)
        return now

    return read


def started_warmup(manifest: BotManifest, registry: PluginRegistry, base_dir: Path) -> int:
    """The warm-up ``manifest``'s strategy asks for once started, as its run will: the default
    (``Strategy.warmup_bars``) counts the indicators it declares in ``on_start``, so asked
    before that it says 0. Started on a bot of its own, with nothing run or journaled (its feed
    is never read): params its ``on_start`` refuses raise ``StrategyRefused`` here, as the run
    would — what a path that never starts the strategy (the vectorised one) asks first."""
    bot = assemble(manifest, registry, base_dir)
    BotSession(bot, DiscardingJournal(), bars=()).open()
    return bot.strategy.warmup_bars()


def split_history(
    bars: Iterator[Bar],
    warmup_timestamps: int,
    resume_after_ts: int,
    market_time: Callable[[], float | None] | None = None,
    missed: MissedBars | None = None,
) -> tuple[Iterator[Bar], Callable[[], Iterator[Bar]]]:
    """Split a bar stream at a timestamp boundary into history and the bars to trade.

    History is every bar until both ``warmup_timestamps`` timestamps were seen and the bars
    close after ``resume_after_ts`` — and, on a restart (``resume_after_ts`` > 0) with
    ``market_time`` (the feed's), are not missed (``bar_missed``) at the market's time the bot
    came back: all symbols' bars of a timestamp go one way, counted in ``missed``. Without it
    (a replaying feed has no market time) every bar after the resume point is traded. Call the
    second item only after the first is exhausted.
    """
    first_live: list[Bar] = []

    # The market's time when the restarted bot came back: read once, at the first timestamp
    # after the resume point it is known at. Judged against it and not the time each bar
    # arrives, so a bar a live feed releases late (a symbol waited for ``late_s``, a candle
    # settling) is never taken for one that closed while the bot was down, and a first start
    # (nothing handled yet) misses nothing.
    came_back: list[float] = []

    def history() -> Iterator[Bar]:
        seen = 0
        current: int | None = None
        passed = False  # the current timestamp closed while the bot was down
        for bar in bars:
            if bar[2] != current:
                if seen >= warmup_timestamps and bar.close_ts > resume_after_ts:
                    if resume_after_ts > 0 and market_time is not None and not came_back:
                        now = market_time()
                        if now is not None:
                            came_back.append(now)
                            if missed is not None:
                                missed.came_back = now
                    passed = bool(came_back) and bar_missed(bar.close_ts, bar[1], came_back[0])
                    if not passed:
                        first_live.append(bar)
                        return
                current = bar[2]
                seen += 1
            if passed and missed is not None:
                missed.add(bar)
            yield bar

    def live() -> Iterator[Bar]:
        return chain(first_live, bars)

    return history(), live


def apply_stop_policy(bot: Bot, engine: Engine, cancel_wait_s: float = STOP_CANCEL_WAIT_S) -> None:
    policy = bot.manifest.spec.on_stop
    deadline = time.monotonic() + cancel_wait_s
    asked: list[str] = []
    flattened: _StopFlatten | None = None
    ended: dict[str, OrderStatus] = {}
    watch = _EndWatch(engine.listener, ended)
    engine.listener = watch
    try:
        if policy.cancel_open_orders:
            for order in list(engine.open_orders()):
                # Only what could open or add to a position: the protective SL/TP of open
                # positions stay, and so does an exit on its way (a close sent just before the
                # stop, whose SL/TP the close already cancelled), or the position is left
                # unprotected.
                if order.parent_id is None and not order.reduce_only:
                    asked.append(order.client_order_id)
                    engine.cancel(order.client_order_id)
            if bot.executes is not None:  # its answers come as events: awaited
                _await_cancels(engine, asked, deadline)
        if policy.flatten_positions:
            flattened = _flatten_on_stop(bot, engine, watch, deadline)
            asked.extend(i for i in flattened.asked if i not in asked)
    finally:
        engine.listener = watch.inner
    message = "stop requested: new entries stopped"
    data: dict[str, Any] = {}
    if policy.cancel_open_orders or asked:
        message += "; " + _cancels_said(asked, ended, cancel_wait_s)
        data["cancel_unconfirmed"] = [i for i in asked if i not in ended]
    if flattened is not None and flattened.symbols:
        said, unfilled = _flatten_said(flattened, ended, cancel_wait_s)
        if flattened.held:
            log.error("%s: stop %s", bot.name, said)
        message += "; " + said
        data["flatten_unconfirmed"] = unfilled
        data["exits_kept"] = list(flattened.kept)
    data["open_orders"] = [o.client_order_id for o in engine.open_orders()]
    engine.journal.record_event(engine.now, "stopped", message, data)


@dataclass(frozen=True)
class _StopFlatten:
    """What the stop policy's flatten left at a venue, once its wait ended."""

    symbols: tuple[str, ...]  # the positions it closed
    closes: tuple[Order, ...]  # the orders it sent (the closes, and any sent again)
    asked: tuple[str, ...]  # the orders it asked to cancel (entries at once, SL/TP once flat)
    held: tuple[str, ...]  # the positions still open
    kept: tuple[str, ...]  # their stop-losses and take-profits, kept working
    bare: tuple[str, ...]  # the positions still open with none


def _flatten_on_stop(bot: Bot, engine: Engine, watch: _EndWatch, deadline: float) -> _StopFlatten:
    """Close every position at market, reduce-only, keeping each one's stop-loss and
    take-profit working until its close has filled (``Engine.flatten_on_stop``), and, at a
    venue, wait until ``deadline`` for its answers: each close's fill, then the cancels of the
    SL/TP it made useless (a stop left working would act on a later position). A close the
    venue refused or has not answered by then leaves its position with its SL/TP — the process
    exits with the position protected, never bare.

    The paper broker fills a market order at the next bar: a stopped paper bot keeps its
    positions, their closes and their SL/TP in the journal (the next run re-arms all three)."""
    symbols = tuple(sorted(engine.portfolio.open_positions))
    exits = engine.protective_exits(symbols)
    first = len(watch.sent)
    cancelled = engine.flatten_on_stop(symbols)
    if bot.venue is None:
        return _StopFlatten((), (), (), (), (), ())

    def busy() -> bool:
        return bool(engine.flatten_pending(symbols)) or any(i in engine.book for i in cancelled)

    _await_until(engine, busy, deadline)
    kept = engine.exits_kept(symbols)
    held = tuple(s for s in symbols if s in engine.portfolio.open_positions)
    return _StopFlatten(
        symbols,
        tuple(watch.sent[first:]),
        tuple(i for i in (*cancelled, *exits) if i not in kept),
        held,
        tuple(kept),
        tuple(s for s in held if not engine.exits_kept((s,))),
    )


def _flatten_said(
    flattened: _StopFlatten, ended: dict[str, OrderStatus], wait_s: float
) -> tuple[str, list[str]]:
    """What the journal may say of the stop's flatten — only what the venue confirmed — and the
    ids of the closes of positions still open that did not fill."""
    if not flattened.held:
        return "positions flattened", []
    unfilled = [
        o.client_order_id
        for o in flattened.closes
        if o.symbol in flattened.held and ended.get(o.client_order_id) is not OrderStatus.FILLED
    ]
    how = [f"{i} ({ended[i].value})" if i in ended else f"{i} (no answer)" for i in unfilled]
    said = (
        f"flatten NOT confirmed filled within {wait_s:.10g}s (the position may still be open at "
        f"the venue): {', '.join(how or flattened.held)}"
    )
    if flattened.kept:
        kept = ", ".join(flattened.kept)
        said += f"; the stop-loss/take-profit orders of what is held still protect it: {kept}"
    if flattened.bare:
        said += f"; NO stop-loss protects {', '.join(flattened.bare)}"
    return said, unfilled


class _EndWatch:
    """The engine's listener while a stop's cancels are awaited: notes the orders sent and how
    each order ended (cancelled, or filled before its cancel took), and passes everything on."""

    def __init__(self, inner: EngineListener | None, ended: dict[str, OrderStatus]) -> None:
        self.inner = inner
        self.ended = ended
        self.sent: list[Order] = []

    def on_order(self, order: Order, update: OrderUpdate) -> None:
        if update.status.is_final:
            self.ended[update.client_order_id] = update.status
        elif update.status is OrderStatus.PENDING:
            self.sent.append(order)  # decided and journaled; the broker has it next
        if self.inner is not None:
            self.inner.on_order(order, update)

    def on_fill(self, fill: Fill, order: Order | None, position: Position) -> None:
        if self.inner is not None:
            self.inner.on_fill(fill, order, position)

    def on_risk(
        self, plugin: str, intent: OrderIntent, decision: RiskDecision, order_id: str
    ) -> None:
        if self.inner is not None:
            self.inner.on_risk(plugin, intent, decision, order_id)

    def on_state(self, kind: str, message: str) -> None:
        if self.inner is not None:
            self.inner.on_state(kind, message)

    def on_cash_flow(self, flow: CashFlow, booked: bool) -> None:
        if self.inner is not None:
            self.inner.on_cash_flow(flow, booked)


def _await_cancels(engine: Engine, asked: Sequence[str], deadline: float) -> None:
    """Apply the broker's events until every order in ``asked`` has left the book or the
    ``deadline`` (monotonic) passed. A simulated broker answers a cancel at once; a venue's
    broker (``venue-execution``) answers later, as an event: until then the order may still
    work at the venue, and a run that ended without hearing it would claim a cancel nobody
    confirmed (and its process, exiting, could drop the request before it left)."""
    _await_until(engine, lambda: any(i in engine.book for i in asked), deadline)


def _await_until(engine: Engine, busy: Callable[[], bool], deadline: float) -> None:
    """Apply the broker's events while ``busy()`` and the ``deadline`` (monotonic) has not
    passed."""
    while busy() and time.monotonic() < deadline:
        if not engine.pump():
            time.sleep(STOP_CANCEL_POLL_S)


def _cancels_said(asked: Sequence[str], ended: dict[str, OrderStatus], wait_s: float) -> str:
    """What the journal may say of the stop's cancels: only what the broker confirmed."""
    cancelled = [i for i in asked if ended.get(i) is OrderStatus.CANCELLED]
    if len(cancelled) == len(asked):
        return "resting orders cancelled"
    parts = [f"{len(cancelled)} of {len(asked)} resting order(s) cancelled"]
    other = [f"{i} {ended[i].value}" for i in asked if i in ended and i not in cancelled]
    if other:
        parts.append("ended otherwise: " + ", ".join(other))
    unconfirmed = [i for i in asked if i not in ended]
    if unconfirmed:
        log.error(
            "cancel of %s not confirmed by the broker within %gs: it may still work at the venue",
            ", ".join(unconfirmed),
            wait_s,
        )
        parts.append(
            f"cancel NOT confirmed within {wait_s:.10g}s (may still work at the venue): "
            + ", ".join(unconfirmed)
        )
    return "; ".join(parts)
