"""Small builders for engine tests: bars, a scripted strategy, and a one-call engine run."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.capabilities import BracketFollower
from tradefleet_runtime.contracts import BrokerContext, RiskPlugin, Strategy, StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig, RunResult
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, Fill, OrderUpdate
from tradefleet_runtime.spec.model import Mode

HOUR = 3600
T0 = 1_500_000_000 - (1_500_000_000 % 86400)  # a midnight, so day boundaries are clean


def bar(
    i: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    symbol: str = "TEST",
    tf: int = HOUR,
) -> Bar:
    return Bar(symbol, tf, T0 + i * tf, open_, high, low, close, 1.0)


def flat_bars(prices: Sequence[float], symbol: str = "TEST", tf: int = HOUR) -> list[Bar]:
    """Bars whose open is the previous close and whose high/low hug open and close."""
    bars = []
    previous = prices[0]
    for i, close in enumerate(prices):
        bars.append(bar(i, previous, max(previous, close), min(previous, close), close, symbol, tf))
        previous = close
    return bars


Action = Callable[[StrategyContext, Bar], None]


@dataclass
class Scripted(Strategy):
    """Runs ``actions[i]`` on the i-th bar it sees (per symbol-agnostic counter)."""

    actions: dict[int, Action] = field(default_factory=dict)
    seen: list[Bar] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    updates: list[OrderUpdate] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(None)

    def on_bar(self, bar: Bar) -> None:
        index = len(self.seen)
        self.seen.append(bar)
        action = self.actions.get(index)
        if action is not None:
            action(self.ctx, bar)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def on_order_update(self, update: OrderUpdate) -> None:
        self.updates.append(update)


def make_engine(
    strategy: Strategy,
    *,
    symbols: Sequence[str] = ("TEST",),
    capital: float = 10_000.0,
    broker: dict[str, Any] | None = None,
    risk: Iterable[tuple[str, RiskPlugin]] = (),
    journal: Journal | None = None,
    tf: int = HOUR,
    name: str = "test-bot",
) -> Engine:
    paper = PaperBroker(PaperBrokerParams.model_validate(broker or {}))
    paper.connect(BrokerContext(name, Mode.BACKTEST, tuple(symbols), "USD", capital))
    journal = journal or Journal(":memory:")
    journal.start_run(
        run_id="test",
        bot=name,
        mode="backtest",
        currency="USD",
        initial_capital=capital,
        timeframe_s=tf,
        config_hash="x",
        manifest={},
    )
    config = EngineConfig(name, "backtest", tuple(symbols), tf, capital)
    return Engine(config, strategy, paper, journal, list(risk))


def start_test_run(
    journal: Journal,
    run_id: str,
    bot: str = "bot",
    mode: str = "paper",
    timeframe_s: int = HOUR,
) -> None:
    """Start ``run_id`` of a test bot on 10,000 USD in ``journal``."""
    journal.start_run(
        run_id=run_id,
        bot=bot,
        mode=mode,
        currency="USD",
        initial_capital=10_000.0,
        timeframe_s=timeframe_s,
        config_hash="x",
        manifest={},
    )


def paper_engine(
    journal: Journal,
    run_id: str,
    strategy: Strategy,
    *,
    fee_bps: float = 0.0,
    hooks: RiskHooks | None = None,
    restores_account: bool = False,
) -> Engine:
    """A paper bot "bot" trading TEST on 10,000 USD, one run of a journal file (a restart is
    a second engine on the same file), equity journaled every bar as a paper bot's is."""
    broker = PaperBroker(PaperBrokerParams(fee_bps=fee_bps))
    broker.connect(BrokerContext("bot", Mode.PAPER, ("TEST",), "USD", 10_000.0))
    start_test_run(journal, run_id)
    config = EngineConfig("bot", "paper", ("TEST",), HOUR, 10_000.0, equity_chunk=1)
    restorer = broker if restores_account else None
    return Engine(config, strategy, broker, journal, restorer=restorer, hooks=hooks)


def run(strategy: Strategy, bars: Iterable[Bar], **kwargs: Any) -> tuple[Engine, RunResult]:
    engine = make_engine(strategy, **kwargs)
    engine.run(bars)
    return engine, engine.finish()


class Idle(Strategy):
    """A strategy that trades nothing: the engine acts only on what it restores."""


def live_restart(
    folder: Path, bot: str, venue: PaperBroker, brackets: BracketFollower | None = None
) -> tuple[Engine, Journal]:
    """A live bot ``bot`` trading BTCUSDT on 10,000 USD at its second run (``r2``, a durable
    journal in ``folder``), on ``venue`` (the paper broker's account, connected here): the
    engine a restart test restores from a reconciliation plan, and its journal (to close)."""
    venue.connect(BrokerContext(bot, Mode.PAPER, ("BTCUSDT",), "USD", 10_000.0))
    journal = Journal(folder / "journal.sqlite", durable=True)
    start_test_run(journal, "r2", bot=bot, mode="live")
    config = EngineConfig(bot, "live", ("BTCUSDT",), HOUR, 10_000.0)
    engine = Engine(config, Idle(None), venue, journal, venue=venue, brackets=brackets)
    return engine, journal
