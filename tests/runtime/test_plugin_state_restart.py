"""A risk plugin's own state survives a restart (``restores-state``): the ``exits`` plugin's
best price since entry, its break-even arm and its native trail's last ask.

Before, a restarted ``exits`` rebuilt the best price as max(entry, mark): a long entered at
50,000 whose high since entry was 60,000 (``trailing_pct`` 0.05: exit at 57,000), restarted at
58,000, trailed from 58,000 (exit at 55,100) — loosened by 1,900 because a pod restarted.

The bot is a paper bot on `SharedVenue` (``test_reconcile``): an account that outlives each
bot life; a life ends killed (its journal closed, no stop policy).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from tests.plugin_hooks import registry_with, venue_plugins
from tests.runtime.test_reconcile import NAME, T0, SharedVenue
from tests.runtime.venue_view import paper_bot_manifest
from tradefleet_plugins.risk.exits import Exits
from tradefleet_runtime.capabilities import Capability
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderIntent, RiskDecision, Trade
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import NoParams, PluginKind, PluginSpec, Strategy, hookimpl
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

SYMBOL = "BTCUSDT"
HOUR = 3600


class BuyOnce(Strategy):
    """Buys 1 BTC at market with its stop-loss at 45,000 on the first bar, never again."""

    def on_bar(self, bar: Bar) -> None:
        if bar.ts == T0:
            self.ctx.buy(bar.symbol, 1, stop_loss=45_000.0)


def _bar(i: int, open_: float, high: float, low: float, close: float) -> Bar:
    return Bar(SYMBOL, HOUR, T0 + i * HOUR, open_, high, low, close, 10.0)


# Entered at bar 1's open (50,000); the high since entry is 60,000 (bar 2); bar 3 closes at
# 58,000, where the first life is killed. Bar 4 closes at 58,000 too; bar 5 at 56,500: below
# the 57,000 trail (5% behind 60,000), above the 55,100 one a restart at 58,000 made.
TRAIL_BARS = [
    _bar(0, 50_000, 50_000, 50_000, 50_000),
    _bar(1, 50_000, 52_000, 49_900, 52_000),
    _bar(2, 52_000, 60_000, 52_000, 59_000),
    _bar(3, 59_000, 59_500, 58_000, 58_000),
    _bar(4, 58_000, 58_000, 57_500, 58_000),
    _bar(5, 58_000, 58_000, 56_000, 56_500),
    _bar(6, 56_400, 56_500, 56_000, 56_200),
    _bar(7, 56_200, 56_300, 56_000, 56_100),
]
KILLED_AFTER = 4  # the first life handles bars 0-3


@pytest.fixture(autouse=True)
def _fresh_venue() -> Iterator[None]:
    SharedVenue.account = None
    SharedVenue.reachable.set()
    yield
    SharedVenue.account = None


class Broken:
    """A risk plugin declaring ``restores-state`` whose ``state``/``restore_state`` misbehave
    as ``mode`` says: ``unserialisable`` (a set in it), ``raises`` (saved_state() raises) or
    ``restore_raises``. It keeps a count of the bars it saw as its state otherwise."""

    mode: ClassVar[str] = ""
    restored: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, params: Any) -> None:
        self.bars = 0

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return RiskDecision.approve()

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1

    def saved_state(self) -> dict[str, Any]:
        if Broken.mode == "unserialisable":
            return {"seen": {1, 2}}
        if Broken.mode == "raises":
            raise RuntimeError("cannot tell")
        return {"bars": self.bars}

    def restore_state(self, state: dict[str, Any]) -> None:
        if Broken.mode == "restore_raises":
            raise ValueError("state of another version")
        Broken.restored.append(dict(state))
        self.bars = int(state["bars"])


def _hooks() -> SimpleNamespace:
    hooks = venue_plugins(("buyer", BuyOnce), ("shared-venue", SharedVenue))
    hooks.tradefleet_risk_plugins = hookimpl(
        lambda: [
            PluginSpec(
                kind=PluginKind.RISK,
                name="broken",
                version="1.0.0",
                factory=Broken,
                params=NoParams,
                capabilities=frozenset({Capability.OBSERVES_BARS, Capability.RESTORES_STATE}),
            )
        ]
    )
    return hooks


class Bot:
    """One bot's lives on one journal file and the shared venue."""

    def __init__(self, folder: Path, risk: list[dict[str, Any]], mode: str = "paper") -> None:
        folder.mkdir(exist_ok=True)
        self.folder = folder
        self.registry: PluginRegistry = registry_with(_hooks())
        # A backtest names a feed; the bars are the test's all the same.
        data = (
            {"data": {"name": "csv", "params": {"path": "unused.csv"}}} if mode != "paper" else {}
        )
        self.manifest = paper_bot_manifest(folder, NAME, "buyer", "shared-venue", risk=risk, **data)
        if mode != "paper":
            text = self.manifest.read_text().replace("mode: paper", f"mode: {mode}")
            self.manifest.write_text(text)

    def life(self, bars: list[Bar]) -> Engine:
        """Open (reconcile, restore), trade ``bars``, then die (no stop policy)."""
        bot = assemble(load_manifest(self.manifest), self.registry, self.folder)
        journal = Journal(self.folder / "journal.sqlite", durable=True)
        session = BotSession(bot, journal, bars=bars, stop_wait_s=0.2)
        session.open()
        assert session.run() == "completed"
        journal.close()
        assert session.engine is not None
        return session.engine

    def read(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        journal = Journal(self.folder / "journal.sqlite")
        try:
            return [tuple(row) for row in journal.query(sql, *args)]
        finally:
            journal.close()

    def trades(self) -> list[tuple[float, float, int, str]]:
        """(entry price, exit price, exit time, exit reason) of every closed trade."""
        return [
            (float(e), float(x), int(ts), str(reason))
            for e, x, ts, reason in self.read(
                "SELECT entry_price, exit_price, exit_ts, exit_reason FROM trades ORDER BY rowid"
            )
        ]


def _exits(**params: Any) -> list[dict[str, Any]]:
    return [{"name": "exits", "params": {"early_exit_fraction": 0, **params}}]


def test_a_restart_keeps_the_trail_where_the_best_price_put_it(tmp_path: Path) -> None:
    """The reproduction: killed at 58,000 after a high of 60,000, the restarted bot exits at
    the same price and bar as one that was never restarted."""
    unbroken = Bot(tmp_path / "unbroken", _exits(trailing_pct=0.05))
    unbroken.life(TRAIL_BARS)
    [(entry, exit_price, exit_ts, reason)] = unbroken.trades()
    # Bar 5 closed at 56,500, below 57,000: closed at bar 6's open.
    assert (entry, exit_price, exit_ts) == (50_000.0, 56_400.0, T0 + 6 * HOUR)
    assert reason == "risk:exits"

    SharedVenue.account = None  # another account for the restarted bot
    restarted = Bot(tmp_path / "restarted", _exits(trailing_pct=0.05))
    restarted.life(TRAIL_BARS[:KILLED_AFTER])
    assert restarted.trades() == []
    # The state the next life restores: the best price since entry, 60,000.
    [(data,)] = restarted.read(
        "SELECT data FROM events WHERE kind = 'plugin_state' ORDER BY id DESC LIMIT 1"
    )
    [saved] = json.loads(data)["state"]["trades"].values()
    assert json.loads(data)["plugin"] == "exits" and saved["best"] == 60_000.0

    restarted.life(TRAIL_BARS[KILLED_AFTER:])
    # Before: the trail restarted from 58,000 (exit at 55,100), and 56,500 closed nothing.
    assert restarted.trades() == unbroken.trades()


def test_the_break_even_arm_survives_a_restart(tmp_path: Path) -> None:
    """Entered at 50,000 with its stop at 45,000 (5,000 of risk), ``break_even_r`` 1: armed
    once a high since entry reached 55,000. Killed at 52,000, the restarted bot still closes at the
    entry; before, it restarted its best price at 52,000, disarmed."""
    bars = [
        _bar(0, 50_000, 50_000, 50_000, 50_000),
        _bar(1, 50_000, 51_000, 50_000, 51_000),  # entered at its open
        _bar(2, 51_000, 55_500, 51_000, 54_000),  # high 55,500: armed
        _bar(3, 54_000, 54_000, 52_000, 52_000),  # killed here
        _bar(4, 52_000, 52_000, 49_900, 49_950),  # back at the entry: break-even
        _bar(5, 49_900, 50_100, 49_800, 50_000),
        _bar(6, 50_000, 50_100, 49_900, 50_000),
    ]
    bot = Bot(tmp_path, _exits(break_even_r=1))
    bot.life(bars[:4])
    bot.life(bars[4:])
    assert bot.trades() == [(50_000.0, 49_900.0, T0 + 5 * HOUR, "risk:exits")]
    [(message,)] = bot.read("SELECT message FROM events WHERE kind = 'risk_action'")
    assert "back at the entry" in message


def test_a_backtest_journals_no_plugin_state(tmp_path: Path) -> None:
    """A backtest's risk plugins cost nothing more: no state asked, none journaled."""
    bot = Bot(tmp_path, _exits(trailing_pct=0.05), mode="backtest")
    engine = bot.life(TRAIL_BARS)
    assert bot.read("SELECT COUNT(*) FROM events WHERE kind = 'plugin_state'") == [(0,)]
    assert len(engine.portfolio.trades) == 1  # it traded and exited all the same
    paper = Bot(tmp_path / "paper", _exits(trailing_pct=0.05))
    SharedVenue.account = None
    paper.life(TRAIL_BARS)
    # The paper bot journals a state at each change only: the entry, then each new best.
    [(count,)] = paper.read("SELECT COUNT(*) FROM events WHERE kind = 'plugin_state'")
    assert 2 <= count <= len(TRAIL_BARS)


@pytest.mark.parametrize("mode", ["unserialisable", "raises"])
def test_a_state_that_cannot_be_journaled_is_said_once_and_the_bot_runs(
    tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Broken, "mode", mode)
    bot = Bot(tmp_path, [{"name": "broken"}, *_exits(trailing_pct=0.05)])
    with caplog.at_level(logging.ERROR, "tradefleet.engine"):
        engine = bot.life(TRAIL_BARS)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(said) == 1 and "broken" in said[0] and "state" in said[0]
    refused = bot.read("SELECT data FROM events WHERE kind = 'plugin_state_refused'")
    assert [json.loads(d)["plugin"] for (d,) in refused] == ["broken"]
    plugins = {
        json.loads(d)["plugin"]
        for (d,) in bot.read("SELECT data FROM events WHERE kind = 'plugin_state'")
    }
    assert plugins == {"exits"}  # the other plugin's state is journaled all the same
    assert engine.stats.bars == len(TRAIL_BARS)
    assert [t.exit_price for t in engine.portfolio.trades] == [56_400.0]


def test_a_restore_that_raises_is_said_and_the_bot_starts_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Broken, "restored", [])
    bot = Bot(tmp_path, [{"name": "broken"}])
    bot.life(TRAIL_BARS[:3])
    bot.life(TRAIL_BARS[3:5])  # restored as it left it
    assert Broken.restored == [{"bars": 3}]

    monkeypatch.setattr(Broken, "mode", "restore_raises")
    with caplog.at_level(logging.ERROR, "tradefleet.engine"):
        engine = bot.life(TRAIL_BARS[5:])
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(said) == 1 and "broken" in said[0] and "state of another version" in said[0]
    [(data,)] = bot.read("SELECT data FROM events WHERE kind = 'plugin_state_refused'")
    assert json.loads(data)["plugin"] == "broken"
    assert engine.stats.bars == 3  # it ran


def _trade_prices(trades: list[Trade]) -> list[float]:
    return [t.exit_price for t in trades]


def test_exits_declares_the_capability() -> None:
    registry = PluginRegistry.discover()
    assert registry.get(PluginKind.RISK, "exits").spec.has(Capability.RESTORES_STATE)
    assert callable(Exits.saved_state) and callable(Exits.restore_state)
