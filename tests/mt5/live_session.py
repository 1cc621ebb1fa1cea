"""A live MT5 bot run by the real ``BotSession`` (its start-up reconciliation, owed and waiting
closes resumed) on the emulated terminal, killed and restarted on the same journal.

Bars are driven by hand (``Bot.step``) so a test decides exactly when the broker's thread has
answered (``settle``) and when the engine has applied the answers (``pump``): a "kill" is the
journal closed and the broker's thread stopped at a chosen point, with no clean end of run.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    LOGIN,
    PASSWORD,
    SERVER,
    gold_pro_symbols,
    minute_bar,
    write_credentials,
)
from tests.runtime.helpers import Scripted
from tests.venues.mt5 import MT5Terminal
from tradefleet_plugins.brokers import mt5_broker
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

NAME = "mt5-eurusd"
MINUTE = 60
SL, TP = 1.0950, 1.1100
LOT = 10_000.0  # units: 0.1 lot of EURUSD


def terminal(margin_mode: str) -> MT5Terminal:
    term = MT5Terminal(margin_mode=margin_mode, symbols=gold_pro_symbols())
    assert term.initialize()
    term.set_price("EURUSD", 1.1000, 1.1001)
    return term


def _manifest(folder: Path) -> Path:
    write_credentials(folder / "keys", LOGIN, PASSWORD, SERVER)
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [f"{EMULATOR_T0 - (9 - i) * MINUTE},1.1,1.1,1.1,1.1,1" for i in range(10)]
    (folder / "eurusd.csv").write_text("\n".join(rows) + "\n")
    path = folder / "bot.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            apiVersion: tradefleet.io/v1alpha1
            kind: TradingBot
            metadata: {{name: {NAME}}}
            spec:
              mode: live
              liveConfirmation: {NAME}
              strategy: {{name: external-signal}}
              market: {{symbols: [EURUSD], timeframe: 1m}}
              broker:
                name: mt5
                credentialsSecret: {{name: {NAME}}}
                params:
                  terminal: mt5-terminal
                  poll_interval_s: 60
                  backoff_s: 0.01
                  max_backoff_s: 0.05
              data:
                name: csv
                params: {{path: {folder / "eurusd.csv"}, live_rehearsal: true}}
              capital: {{currency: USD, initial: 10000}}
            """
        )
    )
    return path


@dataclasses.dataclass
class Bot:
    """One run of the bot: its session, engine, journal and strategy."""

    session: BotSession
    engine: Engine
    journal: Journal
    strategy: Scripted
    term: MT5Terminal
    bar: int = 0

    @property
    def broker(self) -> Any:
        return self.session.bot.broker

    def settle(self) -> None:
        self.broker.settle(timeout=30.0)

    def pump(self, times: int = 3) -> None:
        for _ in range(times):
            self.settle()
            self.engine.pump()

    def step(self, price: float = 1.1, *, pump: bool = True) -> None:
        """Hand the strategy its next minute bar (then, by default, apply the answers)."""
        self.engine.run([minute_bar(self.bar, price)])
        self.bar += 1
        if pump:
            self.pump()

    def kill(self) -> None:
        """The process dies: no end of run journaled, the broker's thread gone, the terminal
        keeps whatever it holds."""
        self.broker.close()
        self.journal.close()
        # The broker's close let go of the terminal (``shutdown``); the terminal itself runs
        # on (the test reads it, a person trades on it).
        assert self.term.initialize()

    def stop(self) -> None:
        """A clean end (for the test's own teardown)."""
        self.session.close("stopped")
        self.broker.close()
        self.journal.close()

    # -- what the journal says ------------------------------------------------------------

    def statuses(self) -> dict[str, str]:
        return dict(self.journal.order_statuses())

    def reasons(self) -> dict[str, tuple[str, str]]:
        """This run's latest (status, reason) of each order."""
        rows = self.journal.query(
            "SELECT client_order_id, status, reason FROM order_status WHERE run_id = ?",
            self.journal.run_id,
        )
        return {str(i): (str(s), str(r)) for i, s, r in rows}

    def events(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        rows = self.journal.query(
            "SELECT message, data FROM events WHERE kind = ? ORDER BY id", kind
        )
        return [(str(m), json.loads(d) if d else {}) for m, d in rows]

    def all_events(self) -> list[tuple[str, str]]:
        rows = self.journal.query("SELECT kind, message FROM events ORDER BY id")
        return [(str(k), str(m)) for k, m in rows]

    def fills(self) -> list[tuple[str, str, float]]:
        rows = self.journal.query("SELECT fill_id, client_order_id, quantity FROM fills")
        return [(str(f), str(c), float(q)) for f, c, q in rows]


def start(
    folder: Path,
    term: MT5Terminal,
    monkeypatch: pytest.MonkeyPatch,
    actions: dict[int, Callable[..., None]] | None = None,
    *,
    first_bar: int = 0,
) -> Bot:
    """Open a session of the bot on ``term`` with the journal in ``folder`` (a restart when
    the journal holds an earlier run): connect, reconcile, resume what is owed."""
    monkeypatch.setattr(mt5_broker, "load_terminal", lambda spec: term)
    monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(folder / "keys"))
    path = folder / "bot.yaml"
    if not path.exists():
        _manifest(folder)
    built = assemble(load_manifest(path), PluginRegistry.discover(), folder)
    strategy = Scripted(dict(actions or {}))
    built = dataclasses.replace(built, strategy=strategy)
    journal = Journal(folder / "journal.sqlite", durable=True)
    clock_now = float(term.now.timestamp())
    session = BotSession(built, journal, clock=lambda: clock_now)
    engine = session.open()
    return Bot(session, engine, journal, strategy, term, bar=first_bar)


def held_volume(term: MT5Terminal) -> float:
    return round(sum(p.volume for p in term.positions_get() or ()), 8)


def hold_jobs(bot: Bot, monkeypatch: pytest.MonkeyPatch, let_through: int = 0) -> list[Any]:
    """From now on the broker's thread never runs what the engine hands it (submits, cancels),
    but the first ``let_through`` of them: the process dies before its I/O thread takes the
    others up. Returns the jobs held."""
    held: list[Any] = []
    passed: list[Any] = []
    original = bot.broker._queue

    def queue(job: Any, first: bool = False) -> None:
        if job.future is None and len(passed) < let_through:
            passed.append(job)
        elif job.future is None:
            held.append(job)
            return
        original(job, first)

    monkeypatch.setattr(bot.broker, "_queue", queue)
    return held


def bots_position(term: MT5Terminal) -> Any:
    """The bot's one open position at the terminal (magic not 0), or None."""
    mine = [p for p in term.positions_get() or () if p.magic != 0]
    assert len(mine) <= 1, mine
    return mine[0] if mine else None


def by_hand(term: MT5Terminal, side: int, volume: float, position: int = 0) -> None:
    """A person trades EURUSD in the terminal (magic 0); ``position``: close that ticket."""
    request: dict[str, Any] = {
        "action": term.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": volume,
        "type": side,
        "type_filling": term.ORDER_FILLING_IOC,
        "magic": 0,
        "comment": "by hand",
    }
    if position:
        request["position"] = position
    answer: Any = term.order_send(request)
    assert answer.retcode == term.TRADE_RETCODE_DONE, answer
