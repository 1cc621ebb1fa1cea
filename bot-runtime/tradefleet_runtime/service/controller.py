"""The running bot behind the service's front ends.

One thread owns the engine. Bars are released to it on the wall clock (``speed``× real time for
a replayed feed); between bars, and while waiting for the next one, that thread runs the control
commands queued by the gRPC and HTTP threads. So engine state has a single writer, control calls
are applied between bars (never inside one), and reads are served from an immutable snapshot the
engine thread publishes.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.trading_state import SPEC_STOP, Halt, halt_holder, halts_in_force
from tradefleet_runtime.errors import (
    DataError,
    JournalError,
    PluginError,
    SpecError,
    StrategyError,
    StrategyRefused,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.journal.sqlite import SignalOrderUnknown
from tradefleet_runtime.model import (
    Bar,
    CashFlow,
    Fill,
    Order,
    OrderIntent,
    OrderStatus,
    OrderUpdate,
    Position,
    RiskDecision,
)
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.process_capability import slippage_bps
from tradefleet_runtime.service.api import (
    CloseRetrying,
    CloseStuck,
    ControlError,
    EventKind,
    NoAnswer,
    NotNow,
    OrderPage,
    OrderView,
    Phase,
    PluginInfo,
    PositionView,
    RiskPluginState,
    Signal,
    SignalConflict,
    SignalResult,
    StatusSnapshot,
    SymbolExposure,
    TradePage,
    TradeView,
    check_reason,
    halt_reason,
    signal_digest,
)
from tradefleet_runtime.service.bar_clock import BarClock, expected_interval
from tradefleet_runtime.service.events import EventHub, Subscription
from tradefleet_runtime.service.held_control import (
    HALT_ONLY_PAUSE_REASON,
    HeldControl,
    halt_only_pause,
)
from tradefleet_runtime.service.last_known import held_risk_locks, last_known_account
from tradefleet_runtime.service.metric_labels import bot_labels
from tradefleet_runtime.service.metrics import RuntimeMetrics
from tradefleet_runtime.service.param_types import type_mismatch
from tradefleet_runtime.service.quality import RollingQuality
from tradefleet_runtime.service.webhook import WebhookConfig
from tradefleet_runtime.session import STOP_CANCEL_WAIT_S, Bot, BotSession
from tradefleet_runtime.spec import Mode
from tradefleet_runtime.spec.checks import config_hash, plugin_context
from tradefleet_runtime.spec.model import BotSpec

log = logging.getLogger("tradefleet.service")

# What a bot is refused with at start, already saying what and where: logged as one line.
_REFUSALS = (SpecError, PluginError, StrategyRefused, DataError, JournalError)

T = TypeVar("T")
COMMAND_TIMEOUT_S = 10.0
SNAPSHOT_EVERY_S = 0.02
HEARTBEAT_S = 0.5
# Waits between tries of a venue that cannot be reached at start: doubling from the first.
VENUE_WAIT_FIRST_S = 2.0
VENUE_WAIT_MAX_S = 60.0
# How long before a webhook request a row under one of its former ids can have been written by
# the same request: the first attempt and the retry each reached the bot within the window of
# the request's timestamp (``tradefleet serve`` uses the default window).
FORMER_ID_MAX_AGE_S: float = 2 * WebhookConfig.replay_window_s


class BotController:
    """Implements :class:`~tradefleet_runtime.service.api.ControlPlane` for one bot."""

    def __init__(
        self,
        bot: Bot,
        journal: Journal,
        registry: PluginRegistry,
        *,
        speed: float = 1.0,
        metrics: RuntimeMetrics | None = None,
        bars: Iterable[Bar] | None = None,
        stop_wait_s: float = STOP_CANCEL_WAIT_S,
    ) -> None:
        self.bot = bot
        self.stop_wait_s = stop_wait_s
        self.journal = journal
        self.registry = registry
        self.speed = speed
        self.metrics = metrics or RuntimeMetrics(bot_labels(bot.manifest))
        self.hub = EventHub()
        self.quality = RollingQuality(bot.manifest.spec.quality)
        self._bars = bars
        self._config_hash = config_hash(bot.manifest)
        # The strategy's params as given (the manifest's, then each UpdateParams merged in):
        # what an UpdateParams naming some of them leaves the others at.
        self._params_in_force: dict[str, object] = dict(bot.manifest.spec.strategy.params)
        self._plugins = self._plugin_infos()
        self._commands: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"engine-{bot.name}", daemon=True)
        self.phase = Phase.STARTING
        self.heartbeat = time.monotonic()
        self.last_bar_wall = 0.0
        # What the no-bar age counts from, warm-up included (``bar_clock.py``).
        self.bar_clock = BarClock()
        self.feed_done = False
        self.broker_connected = False
        self.reconciled = False
        self.engine: Engine | None = None
        self.failure = ""  # why the bot failed, when its phase is Failed
        self.waiting = ""  # why it is still starting: the venue it waits for
        # The same without the attempt and the next wait, for the status: it changes only when
        # the error does (the operator patches the TradingBot's status on every change).
        self.waiting_for = ""
        # While it waits for the venue: the pauses, resumes and halts given meanwhile.
        self._held: HeldControl | None = None
        self._bar_arrival = 0.0
        self._decision_marks: dict[str, float] = {}
        self._trades_seen = 0
        self._bars_seen = 0
        self._last_published = 0.0
        # What the journal holds of the account, shown until the engine runs (read now, before
        # the run starts; a backtest always starts afresh).
        self._last_known = (
            last_known_account(journal, bot.name)
            if bot.manifest.spec.mode is not Mode.BACKTEST
            else None
        )
        # The risk locks the journal holds for the bot, which the start restores (a removed
        # plugin's too): shown from now, not only once the engine runs, since each vetoes
        # entries. Read once: only a reset clears one, and a reset needs the engine.
        self._held_locks = held_risk_locks(
            journal.risk_locks(bot.name) if bot.manifest.spec.mode is not Mode.BACKTEST else {},
            self._plugins,
        )
        # The halts the journal holds in force, which the start restores (``BotSession._restore``):
        # shown from now, as the locks are — a restarted halted bot said "not halted" until its
        # engine ran (an alert on the halt cleared and fired again, the TradingBot's status
        # written ``halted: false``). Read once: only a resume lifts one, given to the engine or,
        # while the bot waits for its venue, to ``HeldControl``, whose state then shows.
        self._held_halts: tuple[Halt, ...] = (
            _halts_at_start(bot.manifest.spec, journal, bot.name)
            if bot.manifest.spec.mode is not Mode.BACKTEST
            else ()
        )
        self._snapshot = self._starting_snapshot()
        self._stopped = threading.Event()
        self._pump_queued = threading.Event()
        # Signals this process handled whose outcome the journal could not take (its pending
        # row stays): the outcome, or None when not even that is known. A retry is answered
        # from here, never from orders the run journaled later (another alert's).
        self._unjournaled: dict[str, SignalResult | None] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        timeframe = self.bot.manifest.spec.market.timeframe_s
        interval = expected_interval(timeframe, self.speed, self.bot.live_feed) or timeframe
        self.metrics.watch(lambda: self._snapshot, self._bar_wall, interval)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current bar: no new entries, the stop policy applied, journal closed."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        session = BotSession(
            self.bar_clock.watching(self.bot),
            self.journal,
            bars=self.bar_clock.stamped(self._bars) if self._bars is not None else None,
            pacer=self._paced,
            should_stop=self._stop.is_set,
            prepare=self._prepare,
            wake=self._wake,
            idle=self._idle,
            connect_retry=self._wait_for_venue,
            stop_wait_s=self.stop_wait_s,
        )
        try:
            engine = session.open()
            # The status's execution quality continues from earlier runs, as the guard does.
            self.quality.restore(
                self.journal.measured_fills(self.bot.name, self.quality.spec.window),
                engine.portfolio.trades,
            )
            self._trades_seen = len(engine.portfolio.trades)
            if self._held is not None:
                self._held.apply(engine)
                self._held = None
            # Truthfully: a bot whose broker holds no account of its own (paper) is reconciled
            # by restoring its journal; a venue's only when the venue and journal agreed.
            plan = session.reconciliation
            self.reconciled = plan is None or not plan.degraded
            if self.bot.manifest.spec.mode is not Mode.BACKTEST:
                self.bar_clock.waiting()  # a feed that never delivers a bar is noticed too
            self.phase = Phase.RUNNING
            self._publish(force=True)
            status = session.run()
            self.feed_done = True
            if status == "completed":
                self.phase = Phase.STOPPED
                self.journal.record_event(engine.now, "data_ended", "the data feed ended")
                self._publish(force=True)
                self._serve_commands_until_stopped()
            self.phase = Phase.STOPPING
            self._drain_commands()
            session.close("stopped")
            self.phase = Phase.STOPPED
            self._publish(force=True)
            self._fail_pending()
        except ConnectionError as error:
            if session.engine is not None or not self._stop.is_set():
                self._failed(session, error)
            else:  # stopped while it waited for the venue: nothing ran, nothing failed
                log.warning("bot %s stopped while %s", self.bot.name, self.waiting)
                session.fail(error, status="stopped")
                self.phase = Phase.STOPPED
                self._publish(force=True)
                self._fail_pending()
        except Exception as error:
            self._failed(session, error)
        finally:
            self._stopped.set()

    def _failed(self, session: BotSession, error: Exception) -> None:
        if isinstance(error, _REFUSALS):
            # A refusal that names its field (credentials, a symbol, the account): one line
            # says it all; a traceback would bury it.
            log.error("bot %s failed: %s", self.bot.name, error)
        elif isinstance(error, StrategyError):
            # The plugin's own bug, named in one line (plugin, hook, bar); its traceback is
            # for the plugin's author, at debug level.
            log.error("bot %s failed: %s", self.bot.name, error)
            log.debug("bot %s: the strategy's traceback", self.bot.name, exc_info=error)
        else:
            log.exception("bot %s failed", self.bot.name)
        self.failure = f"{type(error).__name__}: {error}"
        if session.engine is None or self.phase is not Phase.RUNNING:
            session.fail(error)  # run() journals its own failures
        self.phase = Phase.FAILED
        self._publish(force=True)
        self._fail_pending()

    def _wait_for_venue(self, error: ConnectionError, attempt: int) -> bool:
        """The venue cannot be reached at start (an exchange's maintenance, a network
        partition): wait in phase Starting, not ready, and try again — doubling the wait up
        to ``VENUE_WAIT_MAX_S`` — until it answers or the bot is stopped (False). Exiting
        instead would put a whole fleet into crash-loop back-off and reconnect minutes late."""
        delay = min(VENUE_WAIT_FIRST_S * 2 ** (attempt - 1), VENUE_WAIT_MAX_S)
        delay *= 0.8 + 0.4 * random.random()  # a fleet does not retry in lockstep
        if self._held is None:
            # Each holder's halt in force (a person's kept apart from the fleet's; a lifted
            # one is not), as the start restores them (``BotSession._restore``).
            self._held = HeldControl(self.journal, self.bot.manifest.spec.paused, self._held_halts)
        self.waiting_for = f"waiting for the venue: {error}"
        # The status says what it waits for, and a halt still in force from before — before
        # readiness says it waits (whoever sees that it waits then sees the status too).
        self._publish(force=True)
        self.waiting = f"{self.waiting_for} (attempt {attempt}, next in {delay:.0f}s)"
        log.warning("bot %s: %s", self.bot.name, self.waiting)
        deadline = time.monotonic() + delay
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()  # alive: waiting is not being stuck
            # A command meanwhile is answered now, not left to time out until the venue
            # answers: a pause, resume or emergency stop is taken (``HeldControl``), anything
            # else is refused as "still starting".
            self._drain_commands()
            left = deadline - self.heartbeat
            if left <= 0:
                return True
            self._stop.wait(min(left, 0.2))
        return False

    def _prepare(self, engine: Engine) -> None:
        """Before anything is restored: time the broker and listen to the engine."""
        engine.broker = TimedBroker(engine.broker, self.metrics)
        self.engine = engine
        # connect() returned: the broker reached its venue (a venue broker says so itself
        # from now on, in every snapshot).
        self.broker_connected = True
        self.waiting = self.waiting_for = ""
        engine.listener = _Listener(self)

    def _paced(self, bars: Iterable[Bar]) -> Iterator[Bar]:
        start_wall: float | None = None
        first_close = 0
        if self.bot.live_feed:
            bars = self._feed_thread(bars)
        for bar in bars:
            if self._stop.is_set():
                return
            if self.speed > 0 and not self.bot.live_feed:
                if start_wall is None:
                    start_wall, first_close = time.monotonic(), bar.close_ts
                due = start_wall + (bar.close_ts - first_close) / self.speed
                while True:
                    self._drain_commands()
                    self.heartbeat = time.monotonic()
                    delay = due - self.heartbeat
                    if delay <= 0 or self._stop.is_set():
                        break
                    # The publish after the last bar may have been throttled away (a bar that
                    # came within SNAPSHOT_EVERY_S of the one before): while waiting for the
                    # next bar, which may be an hour away, the status must not stay behind.
                    self._publish()
                    self._wait_command(min(delay, HEARTBEAT_S))
                if self._stop.is_set():
                    return
            else:
                self._drain_commands()
                self.heartbeat = time.monotonic()
            self._bar_arrival = time.perf_counter()
            self.last_bar_wall = time.time()
            self._bars_seen += 1
            yield bar
            self._publish()

    def _feed_thread(self, bars: Iterable[Bar]) -> Iterator[Bar]:
        """A live feed's bars, fetched on a thread of their own.

        A live feed asks its venue over the network for every bar; on the engine thread a venue
        answering in five seconds would hold every control call (an emergency stop included)
        for five seconds. Here the feed blocks only its own thread; the engine thread waits for
        the next bar while serving commands and venue events, woken as soon as one arrives.
        """
        arrived: queue.Queue[Bar | BaseException | None] = queue.Queue(maxsize=256)

        def fetch() -> None:
            try:
                for bar in bars:
                    arrived.put(bar)
                    self._wake_for_bar()
                    if self._stop.is_set():
                        break
                arrived.put(None)
            except BaseException as error:  # handed to the engine thread, which fails the bot
                arrived.put(error)
            self._wake_for_bar()

        threading.Thread(target=fetch, name=f"feed-{self.bot.name}", daemon=True).start()
        while True:
            try:
                item = arrived.get_nowait()
            except queue.Empty:
                if self._stop.is_set():
                    return
                self.heartbeat = time.monotonic()
                if self.engine is not None:
                    self.engine.pump()
                self._publish()
                self._wait_command(HEARTBEAT_S)
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _wake_for_bar(self) -> None:
        """A bar arrived (feed thread): end the engine thread's wait for a command now."""
        self._commands.put((lambda: None, Future()))

    def _wake(self) -> None:
        """The broker has events (any thread): have the engine thread apply them now, once
        however many wakes arrive before it gets to them."""
        if self._pump_queued.is_set():
            return
        self._pump_queued.set()
        self._commands.put((self._pump, Future()))

    def _pump(self) -> int:
        self._pump_queued.clear()
        return self.engine.pump() if self.engine is not None else 0

    def _idle(self) -> None:
        """A live feed waits for its next bar: serve what has come in — on the engine thread
        only (a feed fetching on its own thread, see ``_feed_thread``, gets nothing here)."""
        if threading.current_thread() is not self._thread:
            return
        self.heartbeat = time.monotonic()
        self._drain_commands()
        if self.engine is not None:
            self.engine.pump()
            self._publish()

    def _serve_commands_until_stopped(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            self._wait_command(HEARTBEAT_S)

    # -- commands ----------------------------------------------------------------------------

    def _wait_command(self, timeout: float) -> None:
        try:
            command, future = self._commands.get(timeout=timeout)
        except queue.Empty:
            return
        self._execute(command, future)
        self._drain_commands()

    def _drain_commands(self) -> None:
        while True:
            try:
                command, future = self._commands.get_nowait()
            except queue.Empty:
                return
            self._execute(command, future)

    def _execute(self, command: Callable[[], Any], future: Future[Any]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        result: Any = None
        failure: BaseException | None = None
        try:
            # Commands run between bars: orders they decide (a halt's flatten, a close, a
            # signal's) are created after the last bar's close (``Engine.between_bars``).
            with self.engine.between_bars() if self.engine is not None else nullcontext():
                result = command()
        except BaseException as error:  # handed to the caller's thread
            failure = error
        try:
            # Published before the caller is answered: a command's answer is the status after
            # it (a resume's says whether the bot still is halted, an emergency stop's that it
            # is), never the one before, which the caller's thread would read while this one
            # had not yet published.
            self._publish(force=True)
        finally:
            if failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(result)

    def _fail_pending(self) -> None:
        while True:
            try:
                _command, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(NotNow("the bot has stopped"))

    def _call(self, command: Callable[[], T]) -> T:
        """Run ``command`` on the engine thread and return its result."""
        if self._stopped.is_set() or (self.engine is None and not self._thread.is_alive()):
            raise NotNow("the bot is not running")
        future: Future[T] = Future()
        self._commands.put((command, future))
        try:
            return future.result(timeout=COMMAND_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise NoAnswer("the bot did not answer in time") from None

    def _engine(self) -> Engine:
        if self.engine is None:
            raise NotNow("the bot is still starting")
        return self.engine

    def _engine_or_held(self) -> Engine | HeldControl:
        """Who takes a pause, resume or halt now: the engine, or — while the bot waits for its
        venue at start — the control held for it (``held_control.py``)."""
        if self.engine is None and self._held is not None:
            return self._held
        return self._engine_to_change()

    def _engine_to_change(self) -> Engine:
        """The engine, for a call that changes the bot (engine thread). Refused once the bot
        has stopped (its data ended; it still answers reads): nothing would trade what such a
        call sets up — a flatten's close order would never fill — so it is neither done nor
        journaled. (While Stopping, the commands queued before are still applied, as before.)"""
        if self.phase is Phase.STOPPED:
            raise NotNow("the bot has stopped (its data ended): it takes no more changes")
        return self._engine()

    # -- ControlPlane ------------------------------------------------------------------------

    def get_status(self) -> StatusSnapshot:
        return self._snapshot

    def list_positions(self) -> list[PositionView]:
        def read() -> list[PositionView]:
            engine = self._engine()
            marks = engine.portfolio.marks
            return [
                PositionView(
                    symbol=p.symbol,
                    quantity=p.quantity,
                    average_price=p.average_price,
                    mark=marks.get(p.symbol, p.average_price),
                    unrealized_pnl=p.unrealized_pnl(marks.get(p.symbol, p.average_price)),
                    realized_pnl=p.realized_pnl,
                    opened_ts=p.opened_ts,
                )
                for p in engine.portfolio.open_positions.values()
            ]

        return self._call(read)

    def list_orders(self, include_closed: bool = False) -> list[OrderView]:
        def read() -> list[OrderView]:
            engine = self._engine()
            if include_closed:
                return [_order_view(row) for row in self.journal.order_rows()]
            # The working orders alone are read: a long run journals tens of thousands.
            working = {o.client_order_id for o in engine.open_orders()}
            return [_order_view(row) for row in self.journal.order_rows(only=working)]

        return self._call(read)

    def list_order_page(self, page_size: int = 1000, page_token: str = "") -> OrderPage:
        if not 1 <= page_size <= 1000:
            raise ControlError("page_size must be between 1 and 1000", "page_size")

        def read() -> OrderPage:
            self._engine()
            run = self.journal.run_id
            start = _order_page_start(page_token, run)
            rows, more = self.journal.order_page(start, page_size)
            after = f"{start + page_size}@{run}" if more else ""
            return OrderPage(tuple(_order_view(row) for row in rows), after)

        return self._call(read)

    def list_trades(self, page_size: int = 100, page_token: str = "") -> TradePage:
        if not 1 <= page_size <= 1000:
            raise ControlError("page_size must be between 1 and 1000", "page_size")
        try:
            start = int(page_token) if page_token else 0
        except ValueError:
            raise ControlError("page_token is not one this server gave", "page_token") from None
        if start < 0:
            raise ControlError("page_token is not one this server gave", "page_token")

        def read() -> TradePage:
            engine = self._engine()
            trades = engine.portfolio.trades[start : start + page_size]
            views = tuple(
                TradeView(
                    seq=start + i,
                    symbol=t.symbol,
                    direction=t.direction,
                    quantity=t.quantity,
                    entry_ts=t.entry_ts,
                    exit_ts=t.exit_ts,
                    entry_price=t.entry_price,
                    exit_price=t.exit_price,
                    net_pnl=t.net_pnl,
                    fees=t.fees,
                    entry_reason=t.entry_reason,
                    exit_reason=t.exit_reason,
                    funding=t.funding,
                )
                for i, t in enumerate(trades)
            )
            stamps = sorted({t.entry_ts for t in views} | {t.exit_ts for t in views})
            views = with_order_ids(views, self.journal.fills_at(self.bot.name, stamps))
            more = start + page_size < len(engine.portfolio.trades)
            return TradePage(views, str(start + page_size) if more else "")

        return self._call(read)

    def pause(self, who: str, reason: str) -> StatusSnapshot:
        reason = check_reason(reason, "a pause")
        self._call(lambda: self._engine_or_held().pause(who, reason))
        return self._snapshot

    def resume(
        self, who: str, reason: str, *, pause_only: bool = False, halt_only: bool = False
    ) -> StatusSnapshot:
        reason = check_reason(reason, "a resume")
        if pause_only and halt_only:
            raise ControlError("pause_only and halt_only exclude each other", "halt_only")

        def resume() -> None:
            engine = self._engine_or_held()
            if isinstance(engine, HeldControl):
                engine.resume(who, reason, pause_only=pause_only, halt_only=halt_only)
                return
            if pause_only:
                # A pause only: a halt and a Degraded stop stay (the answer says so).
                engine.resume(who, reason, pause_only=True)
                return
            if halt_only and not engine.halted:
                # No halt to lift; the bot stays paused, or is paused now (halt_only means
                # "stay paused": the runtime may have lost the operator's Pause in a restart).
                if not engine.paused:
                    engine.pause(who, HALT_ONLY_PAUSE_REASON)
                return
            degraded = bool(engine.degraded_reason)
            kept = halt_only_pause(engine.paused, engine.pause_reason) if halt_only else None
            # A resume aimed at one holder (the operator's) lifts that holder's halt alone
            # while another's holds (a person's given after a fleet stop): the bot then stays
            # halted, and the answer says by whom (``Engine._lift``).
            engine.resume(who, reason)
            if degraded and not engine.degraded_reason:
                # A person looked at the venue and the journal and resumed: from now on the
                # bot trades on the account as it stands (journaled by the engine).
                self.reconciled = True
            if kept is not None:
                # The pause back at once (or a pause, when the runtime was halted but not
                # paused: a restart between the operator's Pause and this Resume loses the
                # pause, the halt is journaled), in this same command on the engine thread: no
                # bar, signal or venue event is handled between the two, so no entry is taken.
                engine.pause(who, kept)

        self._call(resume)
        return self._snapshot

    def emergency_stop(self, who: str, reason: str, flatten: bool = False) -> StatusSnapshot:
        reason = halt_reason(reason)
        self._call(lambda: self._engine_or_held().halt(who, reason, flatten=flatten))
        return self._snapshot

    def reset_risk_lock(self, plugin: str, who: str, reason: str) -> StatusSnapshot:
        reason = check_reason(reason, "resetting a risk lock")

        def reset() -> tuple[bool, bool, str]:
            engine = self._engine_to_change()
            held = engine.holds_risk_lock(plugin)  # asked first: a reset releases it
            found, refusal = engine.reset_risk_lock(plugin, who, reason)
            return found, held, refusal

        found, held, refusal = self._call(reset)
        if not found:
            names = ", ".join(name for name, _ in self._engine().risk) or "none"
            raise ControlError(f"no risk plugin {plugin!r} in this bot (it has: {names})", "plugin")
        if not held:  # the request is fine, the bot's state makes it moot (journaled nothing)
            raise NotNow(f"{plugin} holds no lock", "plugin")
        if refusal:
            raise ControlError(f"{plugin} lock not reset: {refusal}", "plugin")
        return self._snapshot

    def submit_signal(self, signal: Signal, former_ids: Sequence[str] = ()) -> SignalResult:
        """Hand a signal to the bot. ``signal_id`` is an idempotency key: a repeat of an id the
        journal knows (this run or an earlier one) with the same content returns the first
        outcome and does nothing else, so a sender may retry after a timeout without doubling
        an order; with other content it is refused (``SignalConflict``).

        ``former_ids``: the ids an older release journaled the same request under (the
        webhook's, before its ids changed). One journaled with the same content, by a run that
        can have written it within the webhook's window of this request, answers with its first
        outcome; they only ever answer, nothing is journaled under them.

        The id is journaled pending before the engine sees the signal, so a process killed
        between the signal's order and its outcome leaves a trace: a retry after the restart is
        answered with the order the journal holds, never sent again."""
        digest = signal_digest(signal)

        def handle() -> SignalResult:
            engine = self._engine()
            if signal.signal_id:
                first = self._first_outcome(signal.signal_id, digest)
                if first is None:
                    first = self._former_outcome(former_ids, digest, signal.received_at)
                if first is not None:
                    return first
            self._engine_to_change()  # a repeat is answered even when stopped; nothing new
            if signal.signal_id:
                self.journal.begin_signal(signal.signal_id, engine.now, digest)
            try:
                accepted, reason, order_id = engine.handle_signal(signal)
            except Exception:
                if signal.signal_id:
                    self._settle_failed_signal(signal.signal_id, engine.now, digest)
                raise
            if signal.signal_id:
                self._record_outcome(
                    signal.signal_id, engine.now, SignalResult(accepted, reason, order_id), digest
                )
            outcome = "accepted" if accepted else "refused"
            self.metrics.signals.labels(self.bot.name, outcome).inc()
            self.hub.publish(
                engine.now,
                EventKind.SIGNAL,
                f"signal {signal.direction} {signal.symbol} {outcome}"
                + (f": {reason}" if reason else ""),
                {"symbol": signal.symbol, "accepted": accepted},
            )
            return SignalResult(accepted, reason, order_id)

        self._bar_arrival = time.perf_counter()
        return self._call(handle)

    def _record_outcome(self, signal_id: str, now: int, result: SignalResult, digest: str) -> None:
        """Journal ``result`` as the outcome of ``signal_id``; when the journal fails, this
        process keeps it (a retry is answered with it) and the failure goes to the caller."""
        try:
            self.journal.record_signal(
                signal_id, now, result.accepted, result.reason, result.client_order_id, digest
            )
        except Exception:
            self._unjournaled[signal_id] = result
            raise
        self._unjournaled.pop(signal_id, None)

    def _settle_failed_signal(self, signal_id: str, now: int, digest: str) -> None:
        """The engine raised while handling ``signal_id``: its outcome is journaled now, from
        what the journal holds (an order it journaled went, or may have gone, to the venue;
        nothing else ran since), so a retry never sends it again. When the journal fails, this
        process keeps what it learnt (None: nothing), and a retry is answered from that."""
        result: SignalResult | None = None
        try:
            order_id = self.journal.pending_signal_order(signal_id) or ""
            reason = "" if order_id else "the bot failed while handling it; nothing was sent"
            result = SignalResult(bool(order_id), reason, order_id)
            self._record_outcome(signal_id, now, result, digest)
        except Exception:  # the journal itself failing: the pending row stays
            self._unjournaled[signal_id] = result
            log.exception("signal %s: its outcome could not be journaled", signal_id)

    def _first_outcome(self, signal_id: str, digest: str) -> SignalResult | None:
        """The journaled outcome of ``signal_id`` (None: a new id), when ``digest`` matches
        what was journaled with it. The id with other content is another signal, not a retry:
        answering it with the first outcome would claim success for a signal nothing trades.

        A signal journaled pending and never completed: when this process handled it (its
        outcome could not be journaled), answered with what the process kept
        (:meth:`_kept_outcome`); when the process died while the engine had it, with the order
        the journal holds for it, now recorded as its outcome; without one nothing was sent,
        and it is handled as new (None)."""
        first = self.journal.signal_outcome(signal_id)
        if first is None:
            return None
        journaled = self.journal.signal_digest(signal_id)
        if journaled and journaled != digest:  # '': journaled before digests, not comparable
            self.metrics.signals.labels(self.bot.name, "refused").inc()
            raise SignalConflict(signal_id)
        run = self.journal.pending_signal_run(signal_id)
        if run is not None and (run == self.journal.run_id or signal_id in self._unjournaled):
            # Handled by this process: never guessed from the run's orders, later ones being
            # other alerts' (the bot went on after the journal failed).
            first = self._kept_outcome(signal_id, digest)
        elif run is not None:
            pending = self._pending_order(signal_id)
            if not pending:
                return None
            log.warning(
                "signal %s was handed to the engine before a restart and led to order %s: "
                "answered with it, not sent again",
                signal_id,
                pending,
            )
            self.journal.record_signal(signal_id, self._engine().now, True, "", pending, digest)
            first = (True, "", pending)
        self.metrics.signals.labels(self.bot.name, "repeated").inc()
        return SignalResult(*first)

    def _kept_outcome(self, signal_id: str, digest: str) -> tuple[bool, str, str]:
        """The outcome this process kept for ``signal_id`` (:meth:`_record_outcome`), journaled
        now if the journal takes it; unknown (the engine failed and the journal with it):
        refused, pointing at the orders, never answered as new nor with another order."""
        result = self._unjournaled.get(signal_id)
        if result is None:
            raise _unknown_outcome(signal_id)
        try:
            self._record_outcome(signal_id, self._engine().now, result, digest)
        except Exception:  # still failing: the answer is known all the same
            log.warning("signal %s: its outcome still could not be journaled", signal_id)
        return result.accepted, result.reason, result.client_order_id

    def _pending_order(self, signal_id: str) -> str | None:
        """:meth:`Journal.pending_signal_order`; refused (:func:`_unknown_outcome`) when the
        journal cannot tell the signal's order from another alert's: never a guess."""
        try:
            return self.journal.pending_signal_order(signal_id)
        except SignalOrderUnknown:
            raise _unknown_outcome(signal_id) from None

    def _former_outcome(
        self, former_ids: Sequence[str], digest: str, received_at: float
    ) -> SignalResult | None:
        """The first outcome journaled under one of ``former_ids`` with this content (None:
        none). Another content under a former id is another alert (a sender reusing a nonce),
        not a conflict: former ids come from unsigned headers and identify nothing alone. So is
        a row written before this request's window (:func:`former_row_in_window`): the same
        text and a reused nonce, not a retry."""
        for former in former_ids:
            first = self.journal.signal_outcome(former)
            if first is None or self.journal.signal_digest(former) != digest:
                continue
            written_by = self.journal.signal_written_by(former)
            if not former_row_in_window(written_by, received_at or time.time()):
                continue
            if self.journal.pending_signal_run(former) is not None:
                # Left pending by a killed older release: answered with the order it led to;
                # none means nothing was sent, and this is a new signal.
                order = self._pending_order(former)
                if not order:
                    continue
                first = (True, "", order)
            log.warning("signal journaled by an older release as %s: answered with it", former)
            self.metrics.signals.labels(self.bot.name, "repeated").inc()
            return SignalResult(*first)
        return None

    def update_params(self, params: Mapping[str, object], who: str) -> StatusSnapshot:
        spec = self.bot.manifest.spec.strategy
        plugin = self.registry.get(PluginKind.STRATEGY, spec.name)
        # A change, not a replacement: a call naming `fast` alone kept nothing else — the
        # params it left out fell back to the plugin's defaults (a stop-loss among them).
        merged = {**self._params_in_force, **params}
        context = plugin_context(
            self.bot.manifest.spec.market.timeframe_s,
            self.bot.manifest.spec.mode.value,
            self.bot.manifest.spec.market.symbols,
        )
        try:
            validated = plugin.spec.params.model_validate(merged, context=context)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            # The field goes separately: the front ends put it before the message themselves.
            raise ControlError(
                f"{first['msg']} (strategy plugin {spec.name!r})", _params_field(first["loc"])
            ) from None
        # Lax validation took "12" for 12 above: a client's bug, which must not pass as a value
        # (param_types.py says what stays accepted: 1 for 1.0, 12.0 for 12).
        mismatch = type_mismatch(plugin.spec.params, params)
        if mismatch is not None:
            raise ControlError(
                f"{mismatch.message} (strategy plugin {spec.name!r})",
                _params_field(mismatch.path),
            )

        def apply() -> None:
            try:
                self._engine_to_change().update_strategy_params(validated, who)
            except ValueError as error:
                # The strategy refusing these params while running (ensemble's children are
                # fixed), as a ValueError out of ``on_start`` refuses them at a start: the
                # call's error, naming the field; nothing was journaled or changed.
                field, message = _refusal(error)
                raise ControlError(f"{message} (strategy plugin {spec.name!r})", field) from None
            # On the engine thread, before the snapshot this call answers with is published.
            self._config_hash = self._hash_with_params(validated)
            self._params_in_force = merged

        self._call(apply)
        return self._snapshot

    def _hash_with_params(self, params: BaseModel) -> str:
        """The config hash of the manifest with ``params`` as its strategy's params: the hash
        covers what is in force. Only the params the call set, as a manifest lists them, so
        a manifest with these params has the same hash."""
        manifest = self.bot.manifest
        values = params.model_dump(mode="json", by_alias=True, exclude_unset=True)
        strategy = manifest.spec.strategy.model_copy(update={"params": values})
        spec = manifest.spec.model_copy(update={"strategy": strategy})
        return config_hash(manifest.model_copy(update={"spec": spec}))

    def subscribe_events(
        self, max_queue: int = 1000, recent: int = 0, kinds: Collection[EventKind] = ()
    ) -> Subscription:
        return self.hub.subscribe(max_queue, recent, kinds)

    # -- snapshots ---------------------------------------------------------------------------

    def _plugin_infos(self) -> tuple[PluginInfo, ...]:
        spec = self.bot.manifest.spec
        refs = [(PluginKind.STRATEGY, spec.strategy.name), (PluginKind.BROKER, spec.broker.name)]
        if spec.data is not None:
            refs.append((PluginKind.DATA_FEED, spec.data.name))
        refs.extend((PluginKind.RISK, ref.name) for ref in spec.risk)
        infos = []
        for kind, name in refs:
            plugin = self.registry.get(kind, name)
            infos.append(PluginInfo(kind.value, name, plugin.spec.version))
        return tuple(infos)

    def _starting_snapshot(self) -> StatusSnapshot:
        """The status while no engine runs: the account as the journal last held it (marked
        ``last_known``), or on a first start the spec's capital with nothing open; the halts
        and risk locks the journal holds in force, which the engine restores."""
        spec = self.bot.manifest.spec
        held = self._held
        known = self._last_known
        capital = spec.capital.initial
        equity = known.equity if known else capital
        # The running bot's peak counts from the capital (``Engine.restore_equity``): a loss
        # before the first journaled snapshot (a fee, a fill before the first close) is part
        # of its drawdown, and must be of this one too.
        peak = max(known.peak_equity, capital) if known else capital
        return StatusSnapshot(
            bot=self.bot.name,
            mode=spec.mode.value,
            phase=self.phase,
            equity=equity,
            balance=known.balance if known else capital,
            currency=spec.capital.currency,
            pnl_today=equity - known.day_start_equity if known else 0.0,
            pnl_total=equity - capital,
            drawdown_pct=(peak - equity) / peak * 100.0 if peak > 0 else 0.0,
            open_positions=known.open_positions if known else 0,
            open_orders=known.open_orders if known else 0,
            halted=held.halted if held else bool(self._held_halts),
            halt_reason=held.halt_reason if held else "; ".join(h.text for h in self._held_halts),
            paused=held.paused if held else spec.paused,
            pause_reason=held.pause_reason if held else "",
            last_bar_ts=known.last_bar_ts if known else 0,
            config_hash=self._config_hash,
            plugins=self._plugins,
            broker_connected=self.broker_connected,
            reconciled=False,
            risk=self._held_locks,
            exposure=known.exposure if known else (),
            starting_reason=self.waiting_for if self.phase is Phase.STARTING else "",
            last_known=known is not None,
            closes_stuck=known.closes_stuck if known else (),
        )

    def _publish(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_published < SNAPSHOT_EVERY_S:
            return
        self._last_published = now
        engine = self.engine
        if engine is None or self.phase is Phase.STARTING:
            # Connected but still restoring (or reconciling): the engine's figures are not the
            # account's yet.
            self._snapshot = self._starting_snapshot()
            return
        portfolio = engine.portfolio
        equity = portfolio.equity()
        marks = portfolio.marks
        peak = max(engine.peak_equity, equity)
        versions = {info.name: info.version for info in self._plugins if info.kind == "risk"}
        phase = self.phase
        venue = self.bot.venue
        if venue is not None:
            self.broker_connected = venue.is_connected()
        if phase is Phase.RUNNING and engine.degraded_reason:
            phase = Phase.DEGRADED
        elif phase is Phase.RUNNING and engine.halted:
            phase = Phase.HALTED
        elif phase is Phase.RUNNING and engine.paused:
            phase = Phase.PAUSED
        self._snapshot = StatusSnapshot(
            bot=self.bot.name,
            mode=self.bot.manifest.spec.mode.value,
            phase=phase,
            equity=equity,
            balance=portfolio.cash,
            currency=self.bot.manifest.spec.capital.currency,
            pnl_today=equity - engine.day_start_equity,
            pnl_total=equity - engine.config.initial_capital,
            drawdown_pct=(peak - equity) / peak * 100.0 if peak > 0 else 0.0,
            open_positions=len(portfolio.open_positions),
            open_orders=len(engine.open_orders()),
            halted=engine.halted,
            halt_reason=engine.halt_reason,
            paused=engine.paused,
            pause_reason=engine.pause_reason,
            last_bar_ts=engine.now,
            config_hash=self._config_hash,
            plugins=self._plugins,
            risk=tuple(
                RiskPluginState(name, versions.get(name, ""), locked, reason, tier)
                for name, locked, reason, tier in engine.risk_states()
            ),
            quality=self.quality.figures(),
            broker_connected=self.broker_connected,
            # Degraded while it runs (a position changed by hand) is not reconciled either.
            reconciled=self.reconciled and not engine.degraded_reason,
            bars=self._bars_seen,
            exposure=tuple(
                SymbolExposure(
                    symbol,
                    position.quantity,
                    position.quantity * marks.get(symbol, position.average_price),
                )
                for symbol, position in portfolio.open_positions.items()
            ),
            closes_stuck=tuple(
                CloseStuck(symbol, code, held)
                for symbol, (code, held) in engine.closes_stuck().items()
            ),
            closes_retrying=tuple(
                CloseRetrying(symbol, *close) for symbol, close in engine.closes_retrying().items()
            ),
        )

    # -- readiness ---------------------------------------------------------------------------

    def health(self) -> tuple[bool, str]:
        """Liveness: the engine thread is alive and its loop not stuck."""
        if self._thread.ident is None:
            # Not started yet: serve binds its ports (HTTP, with this probe) before the run.
            return True, "starting"
        if not self._thread.is_alive():
            if self.phase is Phase.STOPPED:
                return True, "stopped"
            return False, f"engine thread ended ({self.phase.value})"
        age = time.monotonic() - self.heartbeat
        if age > 30:
            return False, f"engine loop silent for {age:.0f}s"
        return True, "ok"

    def _bar_wall(self) -> float:
        """Wall time the no-bar age counts from: the latest bar (warm-up history included)
        or, none yet, the run's start of waiting for bars; 0 while none is awaited
        (``bar_clock.py``)."""
        return max(self.last_bar_wall, self.bar_clock.since())

    def readiness(self) -> tuple[bool, str]:
        """Ready: broker connected, reconciled, and data flowing."""
        if self.phase is Phase.STARTING and self.waiting:
            return False, self.waiting
        if self.phase in (Phase.STARTING, Phase.FAILED, Phase.STOPPING, Phase.STOPPED):
            return False, f"phase {self.phase.value}"
        if not self.broker_connected:
            return False, "broker not connected"
        if not self.reconciled:
            return False, "not reconciled with the broker"
        engine = self.engine
        # Degraded while running (a drift found at a bar): no longer reconciled, as the status
        # says; one read of a str the engine thread replaces whole.
        degraded = engine.degraded_reason if engine is not None else ""
        if degraded:
            return False, f"degraded: {degraded}"
        since = self._bar_wall()
        timeframe = self.bot.manifest.spec.market.timeframe_s
        expected = expected_interval(timeframe, self.speed, self.bot.live_feed)
        if since and expected > 0:
            age = time.time() - since
            if age > max(3 * expected, 10.0):
                return False, f"no bar for {age:.0f}s"
        return True, "ok"


def former_row_in_window(written_by: float | None, received_at: float) -> bool:
    """Whether a row under a former id, written no later than ``written_by`` (wall clock;
    None: its run may be writing still), can be the same request as one received at
    ``received_at``: written at most :data:`FORMER_ID_MAX_AGE_S` before it. Exact, from the
    runs' wall-clock times; the row's ``ts`` is the engine's bar time, not when it was
    written."""
    return written_by is None or written_by >= received_at - FORMER_ID_MAX_AGE_S


def _unknown_outcome(signal_id: str) -> NotNow:
    """A signal handled, whose order the bot cannot name for sure: refused (409 at the
    webhook), never handled again nor answered with another alert's order."""
    return NotNow(
        f"signal {signal_id!r} was handled but its outcome could not be journaled; "
        "it is not sent again: check `tradefleet orders` for what it placed",
        "signal_id",
    )


def _refusal(error: ValueError) -> tuple[str, str]:
    """(field, message) of a strategy's refusal: a ``SpecError``'s first wrong field (a child
    strategy's params), else ``params`` and the error's words."""
    if isinstance(error, SpecError) and error.errors:
        first = error.errors[0]
        return first.field, first.message
    return "params", str(error)


def _params_field(path: Sequence[str | int]) -> str:
    """A place inside the strategy's params as UpdateParams' refusals name it: ``params.fast``."""
    return ".".join(["params", *(str(part) for part in path)])


def _order_page_start(token: str, run: str) -> int:
    """Where the page ``token`` starts in ``run``'s orders (0: the first page). A token is the
    next page's offset and the run it counts in: a token of another run (the bot restarted
    between two pages) would list the new run's orders from a place that means nothing."""
    if not token:
        return 0
    offset, _, of_run = token.partition("@")
    if not offset.isdigit() or not of_run:
        raise ControlError("page_token is not one this server gave", "page_token")
    if of_run != run:
        raise ControlError(
            "page_token is of an earlier run (the bot restarted): list again from the first page",
            "page_token",
        )
    return int(offset)


def _order_view(row: Sequence[Any]) -> OrderView:
    """An order as ``Journal.order_rows`` gives it."""
    return OrderView(
        client_order_id=row[0],
        symbol=row[1],
        side=row[2],
        order_type=row[3],
        quantity=row[4],
        filled=row[5],
        price=row[6],
        status=row[7],
        reduce_only=bool(row[8]),
        parent_id=row[9],
        created_ts=row[10],
        tag=row[11],
        stop_loss=row[12],
        take_profit=row[13],
        reference_price=row[14],
        fees=row[15],
        average_fill_price=row[16],
        status_reason=row[17],
        venue_order_id=row[18],
    )


def with_order_ids(
    trades: Sequence[TradeView], fills: Iterable[Sequence[Any]]
) -> tuple[TradeView, ...]:
    """``trades`` with the client order ids of their opening and closing fills, found among
    ``fills`` (symbol, bar time, side, reason, client order id: ``Journal.fills_at``).

    The portfolio books a trade from fills without keeping their orders; its opening fill is
    the one at ``entry_ts`` on its side with its ``entry_reason``, its closing one at
    ``exit_ts`` on the other side with its ``exit_reason``. Where fills of two orders match
    (two alike in one bar), the id stays None: no id rather than a guess."""
    orders: dict[tuple[str, int, str, str], set[str]] = {}
    for symbol, ts, side, reason, order_id in fills:
        orders.setdefault((symbol, ts, side, reason), set()).add(order_id)

    def sole(key: tuple[str, int, str, str]) -> str | None:
        found = orders.get(key, ())
        return next(iter(found)) if len(found) == 1 else None

    result = []
    for trade in trades:
        opening, closing = ("buy", "sell") if trade.direction > 0 else ("sell", "buy")
        result.append(
            replace(
                trade,
                entry_order_id=sole((trade.symbol, trade.entry_ts, opening, trade.entry_reason)),
                exit_order_id=sole((trade.symbol, trade.exit_ts, closing, trade.exit_reason)),
            )
        )
    return tuple(result)


class TimedBroker:
    """Times a broker's order calls and counts their failures, for the broker metrics."""

    def __init__(self, broker: Any, metrics: RuntimeMetrics) -> None:
        self._broker = broker
        self._latency = metrics.broker_latency
        self._errors = metrics.broker_errors
        self._bot = metrics.bot

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)

    def _timed(self, operation: str, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return call()
        except Exception:
            self._errors.labels(self._bot, operation).inc()
            raise
        finally:
            self._latency.labels(self._bot, operation).observe(time.perf_counter() - started)

    def submit(self, order: Order) -> OrderUpdate:
        update = self._timed("submit", lambda: self._broker.submit(order))
        if update.status is OrderStatus.REJECTED:
            self._errors.labels(self._bot, "submit_rejected").inc()
        return update  # type: ignore[no-any-return]

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        return self._timed("cancel", lambda: self._broker.cancel(client_order_id))  # type: ignore[no-any-return]

    def on_bar(self, bar: Bar) -> Any:
        return self._broker.on_bar(bar)


def _halts_at_start(spec: BotSpec, journal: Journal, bot: str) -> tuple[Halt, ...]:
    """The halts the start restores (``BotSession.open``): those the journal holds in force,
    else the spec's emergency stop (the operator's kill switch, applied when the journal holds
    no halt: a first start, an ephemeral journal), in the engine's words for it."""
    halts = halts_in_force(journal.halt_events(bot), journal.last_control_event(bot))
    stop = spec.emergency_stop
    if not halts and stop is not None:
        halts = [Halt(halt_holder(SPEC_STOP), " ".join(stop.reason.split()))]
    return tuple(halts)


class _Listener:
    """Engine events → metrics, quality samples and the event stream (engine thread)."""

    def __init__(self, controller: BotController) -> None:
        self.c = controller
        self.bot = controller.bot.name
        # A label's values are bounded (``metric_labels``): a venue's fill or order in a symbol
        # the spec does not list (a person's trade) is counted under ``other``.
        self._symbol = controller.metrics.labels.symbol

    def on_order(self, order: Order, update: OrderUpdate) -> None:
        c = self.c
        c.metrics.orders.labels(self.bot, self._symbol(order.symbol), update.status.value).inc()
        if update.status is OrderStatus.OPEN and order.parent_id is None:
            engine = c.engine
            mark = engine.portfolio.marks.get(order.symbol) if engine is not None else None
            if mark:
                c._decision_marks[order.client_order_id] = order.price or mark
            if c._bar_arrival:
                elapsed = time.perf_counter() - c._bar_arrival
                c.metrics.bar_to_order.labels(self.bot).observe(elapsed)
                c.quality.add("bar_to_order_ms", elapsed * 1000.0)
            if order.stop_loss is not None and order.take_profit is not None and mark:
                entry = order.price or mark
                risk = abs(entry - order.stop_loss)
                if risk > 0:
                    c.quality.add("reward_risk", abs(order.take_profit - entry) / risk)
        c.hub.publish(
            # When the status changed (a fill, a cancel), not when the order was made: the
            # journal's update row has this time too.
            update.ts or order.created_ts,
            EventKind.ORDER,
            f"{order.side} {order.quantity:.10g} {order.symbol} {order.order_type}: {update.status}"
            + (f" ({update.reason})" if update.reason else ""),
            {
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "status": update.status.value,
            },
        )

    def on_fill(self, fill: Fill, order: Order | None, position: Position) -> None:
        c = self.c
        symbol = self._symbol(fill.symbol)  # bounded: the spec's symbols, else ``other``
        c.metrics.fills.labels(self.bot, symbol, fill.side.value).inc()
        c.metrics.fees.labels(self.bot, symbol, c.metrics.labels.currency).inc(fill.fee)
        reference = c._decision_marks.pop(fill.client_order_id, None)
        if order is not None and order.parent_id is not None:
            reference = order.price
        if reference:
            slippage = slippage_bps(fill.side, fill.price, reference)
            c.metrics.slippage.labels(self.bot, symbol).observe(slippage)
            c.quality.add("slippage_bps", slippage)
        engine = c.engine
        if engine is not None:
            trades = engine.portfolio.trades
            for trade in trades[c._trades_seen :]:
                c.quality.add("win_rate", 1.0 if trade.net_pnl > 0 else 0.0)
            c._trades_seen = len(trades)
        c.hub.publish(
            fill.ts,
            EventKind.FILL,
            f"filled {fill.side} {fill.quantity:.10g} {fill.symbol} @ {fill.price:.10g}",
            {
                "client_order_id": fill.client_order_id,
                "symbol": fill.symbol,
                "price": fill.price,
                "quantity": fill.quantity,
                "position": position.quantity,
            },
        )

    def on_risk(
        self, plugin: str, intent: OrderIntent, decision: RiskDecision, order_id: str
    ) -> None:
        c = self.c
        action = decision.action.value
        reason = c.metrics.reason_label(plugin, decision.code, action)
        c.metrics.risk_decisions.labels(self.bot, plugin, action, reason).inc()
        if decision.action.value != "approve":
            c.hub.publish(
                c.engine.now if c.engine else 0,
                EventKind.RISK,
                f"{plugin} {action} {intent.side} {intent.symbol}: {decision.reason}",
                # The order id links the event to the journal's decision and to ListOrders;
                # the code is the word the metrics count the decision by.
                {
                    "plugin": plugin,
                    "action": action,
                    "symbol": intent.symbol,
                    "code": decision.code,
                    "client_order_id": order_id,
                },
            )

    def on_state(self, kind: str, message: str) -> None:
        c = self.c
        c.hub.publish(c.engine.now if c.engine else 0, EventKind.STATE, message, {"state": kind})

    def on_cash_flow(self, flow: CashFlow, booked: bool) -> None:
        c = self.c
        if booked:
            currency = c.metrics.labels.currency
            symbol = c.metrics.labels.symbol(flow.symbol)
            if flow.amount < 0.0:
                c.metrics.funding_paid.labels(self.bot, symbol, currency).inc(-flow.amount)
            else:
                c.metrics.funding_received.labels(self.bot, symbol, currency).inc(flow.amount)
        c.hub.publish(
            flow.ts,
            EventKind.STATE,
            f"{flow.kind} {flow.amount:+,.8g} {flow.currency} for {flow.symbol}"
            + ("" if booked else " (not booked: another currency than the account's)"),
            {
                "state": "cash_flow",
                "kind": flow.kind,
                "flow_id": flow.flow_id,
                "symbol": flow.symbol,
                "amount": flow.amount,
                "currency": flow.currency,
                "booked": booked,
            },
        )
