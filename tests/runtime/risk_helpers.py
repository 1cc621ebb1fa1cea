"""Bots with real risk plugins (built and capability-checked by the registry) for risk tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tradefleet_runtime.contracts import Strategy
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import Bot, BotSession, assemble
from tradefleet_runtime.spec.load import parse_manifest


def manifest(
    risk: list[dict[str, Any]],
    *,
    mode: str = "backtest",
    symbols: tuple[str, ...] = ("TEST",),
    capital: float = 10_000.0,
    leverage: float = 10.0,
    name: str = "risk-bot",
) -> dict[str, Any]:
    return {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": name},
        "spec": {
            "mode": mode,
            "strategy": {"name": "ema-cross", "params": {"fast": 2, "slow": 3}},
            "market": {"symbols": list(symbols), "timeframe": "1h"},
            "broker": {"name": "paper", "params": {"leverage": leverage}},
            "data": {"name": "csv", "params": {"path": "unused.csv"}},
            "risk": risk,
            "capital": {"currency": "USD", "initial": capital},
        },
    }


def bot_with(
    registry: PluginRegistry, document: dict[str, Any], strategy: Strategy, base: Path
) -> Bot:
    """The manifest's bot, its risk chain built by the registry, with a scripted strategy."""
    bot = assemble(parse_manifest(document), registry, base)
    return dataclasses.replace(bot, strategy=strategy)


def earlier_run(path: Path) -> Journal:
    """A journal at ``path`` holding one earlier run of ``risk-bot`` (paper, hourly): what a
    restart finds, once the caller has journaled what it wants in it and closed it."""
    journal = Journal(path)
    journal.start_run(
        run_id="r1", bot="risk-bot", mode="paper", currency="USD", initial_capital=1e4,
        timeframe_s=3600, config_hash="x", manifest={},
    )  # fmt: skip
    return journal


def open_session(bot: Bot, journal_path: Path | str = ":memory:") -> BotSession:
    session = BotSession(bot, Journal(journal_path), bars=[])
    session.open()
    return session


def events(journal: Journal, kind: str) -> list[tuple[str, str]]:
    return [
        (str(m), str(d))
        for m, d in journal.query(
            "SELECT message, data FROM events WHERE kind = ? ORDER BY id", kind
        )
    ]
