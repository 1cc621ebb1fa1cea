"""Assembling a bot from its manifest (plugins found, params validated) and running it."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tradefleet_runtime.contracts import (
    Broker,
    BrokerContext,
    DataFeed,
    FeedRequest,
    RiskPlugin,
    Strategy,
)
from tradefleet_runtime.engine.engine import Engine, EngineConfig, RunResult
from tradefleet_runtime.engine.recovery import load_carried_state
from tradefleet_runtime.errors import FieldError, SpecError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.report.metrics import Figures, compute_figures
from tradefleet_runtime.spec.checks import config_hash, validate_plugins
from tradefleet_runtime.spec.model import BotManifest, Mode
from tradefleet_runtime.tracing import configure_from_env

log = logging.getLogger("tradefleet.runner")


@dataclass
class Bot:
    """A bot's plugin objects, built from a validated manifest."""

    manifest: BotManifest
    strategy: Strategy
    broker: Broker
    feed: DataFeed | None
    risk: list[tuple[str, RiskPlugin]]
    base_dir: Path

    @property
    def name(self) -> str:
        return self.manifest.metadata.name


def assemble(
    manifest: BotManifest, registry: PluginRegistry, base_dir: Path, source: str = ""
) -> Bot:
    errors = validate_plugins(manifest, registry)
    if errors:
        raise SpecError(errors, source)
    spec = manifest.spec
    strategy = registry.build(
        PluginKind.STRATEGY, spec.strategy.name, spec.strategy.params, ["spec", "strategy"]
    )
    broker = registry.build(
        PluginKind.BROKER, spec.broker.name, spec.broker.params, ["spec", "broker"]
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
    return Bot(manifest, strategy, broker, feed, risk, base_dir)


@dataclass
class RunOutcome:
    result: RunResult
    figures: Figures


def build_engine(bot: Bot, journal: Journal) -> Engine:
    """The bot's engine, its broker connected."""
    spec = bot.manifest.spec
    config = EngineConfig(
        bot_name=bot.name,
        mode=spec.mode.value,
        symbols=tuple(spec.market.symbols),
        base_timeframe_s=spec.market.timeframe_s,
        initial_capital=spec.capital.initial,
        currency=spec.capital.currency,
        paused=spec.paused,
        # A backtest journals equity in chunks; a paper or live bot after every bar.
        equity_chunk=1024 if spec.mode is Mode.BACKTEST else 1,
    )
    bot.broker.connect(
        BrokerContext(
            bot_name=bot.name,
            mode=spec.mode,
            symbols=tuple(spec.market.symbols),
            currency=spec.capital.currency,
            initial_capital=spec.capital.initial,
            credentials_dir=_credentials_dir(),
        )
    )
    engine = Engine(config, bot.strategy, bot.broker, journal, bot.risk)
    engine.tracer = configure_from_env("tradefleet-runtime", bot.name)
    return engine


def _credentials_dir() -> Path | None:
    """Where the broker's credentials Secret is mounted (set by the operator's pod spec)."""
    folder = os.environ.get("TRADEFLEET_CREDENTIALS_DIR")
    return Path(folder) if folder else None


def start_journal(bot: Bot, journal: Journal) -> str:
    spec = bot.manifest.spec
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    journal.start_run(
        run_id=run_id,
        bot=bot.name,
        mode=spec.mode.value,
        currency=spec.capital.currency,
        initial_capital=spec.capital.initial,
        timeframe_s=spec.market.timeframe_s,
        config_hash=config_hash(bot.manifest),
        manifest=bot.manifest.model_dump(mode="json", by_alias=True, exclude_none=True),
    )
    return run_id


def feed_bars(bot: Bot) -> Iterator[Bar]:
    if bot.feed is None:
        raise SpecError([FieldError("spec.data", "this bot has no data feed")])
    spec = bot.manifest.spec
    request = FeedRequest(tuple(spec.market.symbols), spec.market.timeframe_s, bot.base_dir)
    return iter(bot.feed.bars(request))


def run_bars(
    bot: Bot,
    journal: Journal,
    bars: Iterable[Bar],
    should_stop: Callable[[], bool] | None = None,
) -> RunOutcome:
    """Run a bot over ``bars`` to the end (or until ``should_stop``), and report."""
    engine = build_engine(bot, journal)
    journal.record_event(
        0, "run_started", f"{bot.name} started in {bot.manifest.spec.mode.value} mode"
    )
    if bot.manifest.spec.mode is not Mode.BACKTEST:
        # A paper or live bot continues its account; a backtest always starts afresh.
        carried = load_carried_state(journal, bot.name)
        if carried is not None:
            log.warning("%s: %s", bot.name, engine.restore(carried))
    status = "failed"
    try:
        engine.run(bars, should_stop)
        status = "stopped" if should_stop is not None and should_stop() else "completed"
    finally:
        if status == "failed":
            journal.record_event(engine.now, "run_failed", "the run ended with an error")
            journal.finish_run("failed", {})
    if status == "stopped":
        apply_stop_policy(bot, engine)
    result = engine.finish(bot.feed.report() if bot.feed else None)
    figures = compute_figures(
        initial=result.initial_capital,
        timestamps=result.equity_ts,
        equity=result.equity,
        exposure=result.exposure,
        trades=result.trades,
        fees=result.fees,
    )
    if result.feed is not None and result.feed.gaps:
        journal.record_event(engine.now, "data_gaps", "; ".join(result.feed.notes))
    for position in result.open_positions:
        journal.record_event(
            engine.now,
            "open_position",
            f"{position.symbol}: {position.quantity:g} @ {position.average_price:g} still open",
        )
    journal.finish_run(status, figures.as_json())
    return RunOutcome(result, figures)


def apply_stop_policy(bot: Bot, engine: Engine) -> None:
    policy = bot.manifest.spec.on_stop
    if policy.cancel_open_orders:
        for order in list(engine.open_orders()):
            if order.parent_id is None:  # keep the protective SL/TP of open positions
                engine.cancel(order.client_order_id)
    if policy.flatten_positions:
        # Reduce-only market orders: a venue fills them at once; the paper broker would need a
        # next bar, so a stopped paper bot keeps its positions in the journal instead.
        for symbol in list(engine.portfolio.open_positions):
            engine.close(symbol, tag="stop-flatten")
        engine.send_queued()
    engine.journal.record_event(
        engine.now,
        "stopped",
        "stop requested: new entries stopped"
        + ("; resting orders cancelled" if policy.cancel_open_orders else ""),
        {"open_orders": [o.client_order_id for o in engine.open_orders()]},
    )


def paced(bars: Iterable[Bar], speed: float, stop: threading.Event) -> Iterator[Bar]:
    """Release each bar when it would have closed on a clock running ``speed``× real time.

    ``speed`` 0 releases bars as fast as they come (a feed that itself waits for the market).
    """
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
