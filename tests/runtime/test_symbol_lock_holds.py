"""A lock of some symbols holds each symbol it once said until a person resets it (W36).

The gate asked the plugin which symbols its lock held at every order and trusted the answer:
a plugin that said none any more (a bug, or one wanting its lock gone) let entries through,
its lock still journaled and shown; and a restored lock of a plugin that keeps nothing across
a restart held no symbol at all. The symbols are journaled with the lock and restored with it.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from tests.runtime.helpers import HOUR, Scripted, bar
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext, RiskContext, Strategy
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import OrderIntent, RiskDecision
from tradefleet_runtime.spec.model import Mode

SYMBOLS = ("A", "B")
BARS = [bar(i, 100, 100, 100, 100, symbol) for i in range(6) for symbol in SYMBOLS]


class SymbolLock:
    """Locks symbol A at once; ``forget`` makes it say it holds no symbol."""

    def __init__(self, forget: bool = False) -> None:
        self.forget = forget

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return RiskDecision.approve()

    def lock_reason(self) -> str | None:
        return "loss on A"

    def reset_lock(self) -> str | None:
        return None

    def locked_symbols(self) -> Collection[str] | None:
        return frozenset() if self.forget else frozenset({"A"})


def _engine(strategy: Strategy, lock: SymbolLock, journal: Journal, run: str) -> Engine:
    paper = PaperBroker(PaperBrokerParams())
    paper.connect(BrokerContext("sl", Mode.PAPER, SYMBOLS, "USD", 100_000.0))
    journal.start_run(
        run_id=run, bot="sl", mode="paper", currency="USD", initial_capital=100_000.0,
        timeframe_s=HOUR, config_hash="x", manifest={},
    )  # fmt: skip
    config = EngineConfig("sl", "paper", SYMBOLS, HOUR, 100_000.0)
    return Engine(
        config, strategy, paper, journal, [("symlock", lock)], lock_holders=[("symlock", lock)]
    )


def _sent(e: Engine) -> list[tuple[Any, ...]]:
    return e.journal.query("SELECT symbol, side FROM orders ORDER BY rowid")  # type: ignore[attr-defined, no-any-return]


def _forget(lock: SymbolLock) -> Any:
    def act(ctx: Any, b: Any) -> None:
        lock.forget = True

    return act


def test_a_symbol_its_lock_once_held_stays_locked_whatever_the_plugin_says() -> None:
    lock = SymbolLock()
    buy_a = lambda c, b: c.buy("A", 1)  # noqa: E731
    strategy = Scripted({2: buy_a, 6: _forget(lock), 8: buy_a, 9: lambda c, b: c.buy("B", 1)})
    e = _engine(strategy, lock, Journal(":memory:"), "run-1")
    e.run(BARS)
    assert _sent(e) == [("B", "buy")]  # B was never locked
    gated = e.journal.query(  # type: ignore[attr-defined]
        "SELECT symbol FROM risk_decisions WHERE plugin = 'engine.locked'"
    )
    assert gated == [("A",), ("A",)]


def test_a_restored_lock_holds_the_symbols_it_was_journaled_holding(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    first = Journal(path)
    _engine(Scripted(), SymbolLock(), first, "run-1").run(BARS[:2])
    first.close()
    # Restarted: the plugin keeps nothing across a restart (it would say no symbol now).
    journal = Journal(path)
    strategy = Scripted({0: lambda c, b: (c.buy("A", 1), c.buy("B", 1))})
    e = _engine(strategy, SymbolLock(forget=True), journal, "run-2")
    assert journal.risk_lock_symbols("sl") == {"symlock": frozenset({"A"})}
    e.restore_locks(journal.risk_locks("sl"), journal.risk_lock_symbols("sl"))
    e.run(BARS[2:])
    assert _sent(e) == [("B", "buy")]
    journal.close()


def test_a_restored_lock_journaled_without_its_symbols_holds_every_symbol() -> None:
    # An older runtime journaled no symbols; a plugin keeping nothing would say none: every
    # symbol is held until a person resets it.
    strategy = Scripted({0: lambda c, b: (c.buy("A", 1), c.buy("B", 1))})
    e = _engine(strategy, SymbolLock(forget=True), Journal(":memory:"), "run-2")
    e.restore_locks({"symlock": ("loss on A", 0)})
    e.run(BARS)
    assert _sent(e) == []
