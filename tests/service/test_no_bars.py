"""A bot whose feed never delivers a bar is noticed: ``tradefleet_last_bar_age_seconds`` counts
from the moment its run began waiting for bars (not -1 for ever), and readiness fails after
three bar intervals (at least 10 s) — as for a feed that stopped. A bot still catching up its
warm-up history is getting bars and is not flagged; a backtest never is.

Three bots run side by side (one wait of the 10 s readiness floor for all of them), each on
bars handed to its controller: none at all, warm-up history coming slowly, none for a backtest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from tests.service.paper_bots import EURUSD, ROOT, paper_manifest
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import FeedRequest
from tradefleet_runtime.service.api import Phase
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import Mode

# 1h bars at 36,000× their pace: 0.1 s apart, so readiness' floor (10 s) is the threshold.
SPEED = 36_000.0
READINESS_FLOOR_S = 10.0
EMA = {"name": "ema-cross", "params": {"fast": 3, "slow": 40}}  # 40 bars of warm-up


def _history() -> list[Bar]:
    registry = PluginRegistry.discover()
    bot = assemble(paper_manifest("history", EMA), registry, ROOT)
    assert bot.feed is not None
    bars = iter(bot.feed.bars(FeedRequest(("EURUSD",), 3600, EURUSD.parent)))
    return [next(bars) for _ in range(40)]


def _age(controller: BotController) -> float:
    text = generate_latest(controller.metrics.registry).decode()
    [line] = [
        line for line in text.splitlines() if line.startswith("tradefleet_last_bar_age_seconds{")
    ]
    return float(line.rsplit(" ", 1)[1])


class _Bots:
    def __init__(self, folder: Path) -> None:
        self.done = threading.Event()
        self.registry = PluginRegistry.discover()
        self.journals: list[Journal] = []
        self.controllers: dict[str, BotController] = {}
        self.history = _history()

        def nothing() -> Iterator[Bar]:  # a feed that never delivers a bar
            self.done.wait()
            yield from ()

        def slow_history() -> Iterator[Bar]:  # warm-up bars, one every 0.4 s
            for bar in self.history:
                if self.done.wait(0.4):
                    return
                yield bar
            self.done.wait()

        self._add(folder, "deadfeed", "paper", nothing())
        self._add(folder, "warming", "paper", slow_history())
        self._add(folder, "backtest", "backtest", nothing())

    def _add(self, folder: Path, name: str, mode: str, bars: Iterator[Bar]) -> None:
        manifest = paper_manifest(name, EMA)
        manifest = manifest.model_copy(
            update={"spec": manifest.spec.model_copy(update={"mode": Mode(mode)})}
        )
        bot = assemble(manifest, self.registry, ROOT)
        journal = Journal(folder / f"{name}.sqlite", durable=True)
        self.journals.append(journal)
        self.controllers[name] = BotController(bot, journal, self.registry, speed=SPEED, bars=bars)

    def start(self) -> None:
        for controller in self.controllers.values():
            controller.start()
        deadline = time.monotonic() + 30
        while any(c.phase is not Phase.RUNNING for c in self.controllers.values()):
            assert time.monotonic() < deadline, {n: c.phase for n, c in self.controllers.items()}
            time.sleep(0.05)
        self.running_at = time.monotonic()

    def close(self) -> None:
        self.done.set()
        for controller in self.controllers.values():
            controller.stop()
        for controller in self.controllers.values():
            controller.wait(10)
        for journal in self.journals:
            journal.close()


@pytest.fixture(scope="module")
def bots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Bots]:
    bots = _Bots(tmp_path_factory.mktemp("nobars"))
    bots.start()
    try:
        time.sleep(1.0)
        bots.early = {name: _age(c) for name, c in bots.controllers.items()}
        time.sleep(max(0.0, bots.running_at + READINESS_FLOOR_S + 1.0 - time.monotonic()))
        bots.late = {name: _age(c) for name, c in bots.controllers.items()}
        bots.ready = {name: c.readiness() for name, c in bots.controllers.items()}
        bots.phases = {name: c.phase for name, c in bots.controllers.items()}
        yield bots
    finally:
        bots.close()


def test_a_feed_that_never_delivers_a_bar_ages_from_the_run_start(bots: _Bots) -> None:
    assert 0.5 <= bots.early["deadfeed"] < 5, bots.early
    assert bots.late["deadfeed"] >= READINESS_FLOOR_S, bots.late
    assert bots.phases["deadfeed"] is Phase.RUNNING
    ready, why = bots.ready["deadfeed"]
    assert not ready and why.startswith("no bar for"), why


def test_a_bot_catching_up_warm_up_history_is_not_flagged(bots: _Bots) -> None:
    ready, why = bots.ready["warming"]
    assert ready, why
    assert 0 <= bots.late["warming"] < 2, bots.late


def test_a_backtest_is_never_flagged_before_its_first_bar(bots: _Bots) -> None:
    assert bots.early["backtest"] == bots.late["backtest"] == -1
    ready, why = bots.ready["backtest"]
    assert ready, why
