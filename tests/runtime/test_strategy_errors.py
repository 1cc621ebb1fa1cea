"""A strategy that raises is told in one line naming the plugin, the hook, the bar and the error.

Before, a bug in a strategy came out of `tradefleet backtest` as a 40-line traceback into the
runtime that named none of them; a paper bot that failed on a history bar failed again at every
restart saying no more. These tests go through the CLI, the session and the service's controller.
"""

from __future__ import annotations

import pickle
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import yaml
from pydantic import Field, ValidationInfo, field_validator

from tradefleet_runtime import cli
from tradefleet_runtime.errors import StrategyError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import (
    Bar,
    Fill,
    OrderType,
    OrderUpdate,
    PluginKind,
    PluginParams,
    PluginSpec,
    Strategy,
    Subscription,
    hookimpl,
)
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import load_manifest

HOUR = 3600
T0 = 1_500_000_000 - (1_500_000_000 % 86400)  # 2017-07-14 00:00 UTC
BARS = 30


class FaultyParams(PluginParams):
    where: str = Field(default="", description="the hook that raises")
    at: int = Field(default=5, ge=1, description="the bar (1-based) on_bar raises on")


class Faulty(Strategy):
    """Raises in the hook ``params.where`` names; buys on its 2nd bar with a stop-loss."""

    # Set by a test: on_bar raises on the bar opening at this time (0: never), whatever else.
    explode_ts: ClassVar[int] = 0

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        if params.where == "__init__":
            raise RuntimeError("boom in __init__")
        self.seen = 0

    def subscriptions(self, symbols: Any, base_timeframe_s: int) -> list[Subscription]:
        subs = [Subscription(s, base_timeframe_s) for s in symbols]
        if self.params.where == "higher":
            subs += [Subscription(s, 2 * base_timeframe_s) for s in symbols]
        return subs

    def on_start(self, ctx: Any) -> None:
        if self.params.where == "on_start":
            raise RuntimeError("boom in on_start")
        if self.params.where == "on_start_value":
            raise ValueError("fast must be below slow")

    def on_bar(self, bar: Bar) -> None:
        if bar.timeframe_s != self.ctx.base_timeframe_s:
            if self.params.where == "higher":
                raise ZeroDivisionError("boom on a higher bar")
            return
        self.seen += 1
        if bar.ts == type(self).explode_ts:
            raise ZeroDivisionError("boom in history")
        if self.seen == 2:
            self.ctx.buy(bar.symbol, 1, stop_loss=bar.close * 0.5, tag="entry")
        if self.seen == 3 and self.params.where == "on_order_update":
            self.ctx.buy(bar.symbol, 1, order_type=OrderType.LIMIT, price=1.0, tag="far")
        if self.seen == 4 and self.params.where == "on_order_update":
            for order in self.ctx.open_orders(bar.symbol):
                if order.tag == "far":
                    self.ctx.cancel(order.client_order_id)
        if self.params.where == "on_bar" and self.seen == self.params.at:
            raise ZeroDivisionError("boom in on_bar")

    def on_fill(self, fill: Fill) -> None:
        if self.params.where == "on_fill":
            raise KeyError("boom in on_fill")

    def on_order_update(self, update: OrderUpdate) -> None:
        if self.params.where == "on_order_update":
            raise LookupError("boom in on_order_update")


class KeyParams(PluginParams):
    fast: int = Field(default=10, ge=2, description="fast")
    slow: int = Field(default=30, description="slow")

    @field_validator("slow")
    @classmethod
    def _slow_above_fast(cls, value: int, info: ValidationInfo) -> int:
        # The bug the docs' advice invites: ``fast`` is missing from info.data when it failed.
        if value <= info.data["fast"]:
            raise ValueError("slow must be above fast")
        return value


HOOKS = SimpleNamespace(
    tradefleet_strategies=hookimpl(
        lambda: [
            PluginSpec(PluginKind.STRATEGY, "faulty", "1.0.0", Faulty, FaultyParams),
            PluginSpec(PluginKind.STRATEGY, "keyed", "1.0.0", Faulty, KeyParams),
        ]
    )
)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> PluginRegistry:
    installed = PluginRegistry.discover()
    installed.plugins.update(PluginRegistry.from_modules(HOOKS).plugins)
    monkeypatch.setattr(PluginRegistry, "discover", classmethod(lambda cls, **_: installed))
    monkeypatch.setattr(Faulty, "explode_ts", 0)
    return installed


def _data(folder: Path, bars: int = BARS) -> Path:
    path = folder / "bars.csv"
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(bars):
        price = 100.0 + (i % 5)
        lines.append(f"{T0 + i * HOUR},{price},{price + 1},{price - 1},{price + 0.5},10")
    path.write_text("\n".join(lines) + "\n")
    return path


def _manifest(
    folder: Path, mode: str = "backtest", name: str = "faulty", bars: int = BARS, **params: Any
) -> Path:
    manifest = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "faulty-bot"},
        "spec": {
            "mode": mode,
            "strategy": {"name": name, "params": params},
            "market": {"symbols": ["TEST"], "timeframe": "1h"},
            "broker": {"name": "paper", "params": {}},
            "data": {"name": "csv", "params": {"path": str(_data(folder, bars))}},
            "capital": {"currency": "USD", "initial": 100000},
        },
    }
    path = folder / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def _backtest(folder: Path, capsys: pytest.CaptureFixture[str], **params: Any) -> tuple[int, str]:
    manifest = _manifest(folder, **params)
    code = cli.main(["backtest", str(manifest), "--journal", str(folder / "j.sqlite")])
    return code, capsys.readouterr().err


def _error_line(stderr: str) -> str:
    """The one error the CLI printed (a narrow console wraps it: the spaces are joined)."""
    assert "Traceback" not in stderr
    text = " ".join(stderr.split())
    assert text.count("error: ") == 1, stderr
    start = text.index("error: ")
    end = text.find(" (--log-level debug shows the traceback)", start)
    return text[start:] if end < 0 else text[start:end]


def test_a_bug_in_on_bar_is_one_line_naming_plugin_hook_bar_and_error(
    tmp_path: Path, registry: PluginRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stderr = _backtest(tmp_path, capsys, where="on_bar", at=5)
    assert code == cli.EXIT_FAILURE
    # The 5th bar opens at 04:00 on the first day.
    assert _error_line(stderr) == (
        "error: strategy 'faulty' raised ZeroDivisionError in on_bar at the TEST 1h bar of"
        " 2017-07-14 04:00 UTC (open time): boom in on_bar"
    )


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("__init__", "strategy 'faulty' raised RuntimeError in __init__: boom in __init__"),
        ("on_start", "strategy 'faulty' raised RuntimeError in on_start: boom in on_start"),
        (
            "on_fill",
            # The entry asked for at the 2nd bar's close fills at the 3rd bar's open.
            "strategy 'faulty' raised KeyError in on_fill at the fill of buy 1 TEST @",
        ),
        (
            # Raised while on_bar cancels the limit order: the hook that raised is named.
            "on_order_update",
            "strategy 'faulty' raised LookupError in on_order_update at the cancelled update"
            " of order",
        ),
        (
            "higher",
            "strategy 'faulty' raised ZeroDivisionError in on_bar at the TEST 2h bar of"
            " 2017-07-14 00:00 UTC (open time): boom on a higher bar",
        ),
    ],
)
def test_each_hook_is_named(
    tmp_path: Path,
    registry: PluginRegistry,
    capsys: pytest.CaptureFixture[str],
    where: str,
    said: str,
) -> None:
    code, stderr = _backtest(tmp_path, capsys, where=where)
    assert code == cli.EXIT_FAILURE
    assert _error_line(stderr).startswith(f"error: {said}")


def test_a_value_error_at_start_is_still_the_strategy_refusing_its_params(
    tmp_path: Path, registry: PluginRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stderr = _backtest(tmp_path, capsys, where="on_start_value")
    assert code == cli.EXIT_USAGE
    assert _error_line(stderr) == (
        "error: spec.strategy: faulty could not start (on_start): fast must be below slow"
    )


def test_a_params_validator_that_raises_names_the_field_the_plugin_and_the_validator(
    tmp_path: Path, registry: PluginRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path, name="keyed", fast=1, slow=5)
    code = cli.main(["backtest", str(manifest), "--journal", str(tmp_path / "j.sqlite")])
    stderr = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert "Traceback" not in stderr
    assert (
        "spec.strategy.params: the params validator _slow_above_fast raised KeyError: 'fast'"
        " (strategy plugin 'keyed'" in " ".join(stderr.split())
    )


def test_the_traceback_is_there_at_debug_level(
    tmp_path: Path, registry: PluginRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path, where="on_bar")
    argv = ["--log-level", "debug", "--log-format", "text", "backtest", str(manifest)]
    code = cli.main([*argv, "--journal", str(tmp_path / "j.sqlite")])
    stderr = capsys.readouterr().err
    assert code == cli.EXIT_FAILURE
    assert 'raise ZeroDivisionError("boom in on_bar")' in stderr  # the plugin's own line


def test_the_error_pickles_whole_and_names_a_trial() -> None:
    # An optimiser's worker hands it across a process pool; the search adds the trial.
    error = StrategyError.of("faulty", "on_bar", KeyError("x"), "the TEST 1h bar of ...")
    copied = pickle.loads(pickle.dumps(error.in_context("trial 3 (fast=10)")))
    assert type(copied) is StrategyError
    assert str(copied) == (
        "trial 3 (fast=10): strategy 'faulty' raised KeyError in on_bar at the TEST 1h bar"
        " of ...: 'x'"
    )
    assert (copied.plugin, copied.hook, copied.kind) == ("faulty", "on_bar", "KeyError")


def _run_status(journal: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(journal)
    try:
        return [
            (r[0], r[1])
            for r in db.execute(
                "SELECT runs.status, events.message FROM runs JOIN events USING (run_id)"
                " WHERE events.kind = 'run_failed' ORDER BY runs.started_at"
            )
        ]
    finally:
        db.close()


def _left(journal_path: Path) -> tuple[list[tuple[str, float]], list[str]]:
    """The positions (from the fills) and the working orders' tags a next start takes over."""
    journal = Journal(journal_path, read_only=True)
    try:
        state = journal.carried_state("faulty-bot")
    finally:
        journal.close()
    assert state is not None
    held: dict[str, float] = {}
    for fill in state.fills:
        held[fill.symbol] = held.get(fill.symbol, 0.0) + fill.quantity * fill.side.sign
    positions = [(symbol, quantity) for symbol, quantity in held.items() if quantity]
    return positions, [order.tag for order, _ in state.working]


def test_a_paper_bot_fails_keeping_its_position_and_stop_and_fails_again_at_the_same_bar(
    tmp_path: Path, registry: PluginRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path, mode="paper", where="on_bar", at=10)
    journal = tmp_path / "paper.sqlite"
    argv = ["run", str(manifest), "--journal", str(journal), "--speed", "0", "--no-progress"]
    said = (
        "strategy 'faulty' raised ZeroDivisionError in on_bar at the TEST 1h bar of"
        " 2017-07-14 09:00 UTC (open time): boom in on_bar"
    )
    for _ in range(2):  # a restart replays the 9 bars handled and fails on the 10th again
        assert cli.main(argv) == cli.EXIT_FAILURE
        assert _error_line(capsys.readouterr().err) == f"error: {said}"
    failures = _run_status(journal)
    assert failures == [("failed", f"the run failed: StrategyError: {said}")] * 2
    # Nothing was closed or cancelled for it: the position's stop-loss still works.
    assert _left(journal) == ([("TEST", 1.0)], ["stop_loss"])


def test_a_bot_failing_on_a_history_bar_says_so_in_its_status(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    """A bug hit by a bar the first run handled is hit again by the replay at every start:
    the controller's status (phase Failed, its failure) names the bar and says it was
    history, instead of a bare exception."""
    journal_path = tmp_path / "serve.sqlite"
    manifest = _manifest(tmp_path, mode="paper", bars=12)

    def serve() -> BotController:
        bot = assemble(load_manifest(manifest), registry, manifest.parent)
        journal = Journal(journal_path, durable=True)
        controller = BotController(bot, journal, registry, speed=0)
        controller.start()
        deadline = time.monotonic() + 30
        # Until the data ended (the first run handles all 12 bars) or the bot failed.
        while not controller.feed_done and controller.phase.value != "Failed":
            assert time.monotonic() < deadline, controller.phase
            time.sleep(0.01)
        controller.stop()
        assert controller.wait(30)
        journal.close()
        return controller

    first = serve()
    assert first.phase.value == "Stopped", first.failure
    # The strategy's new code raises on the 7th bar, which the first run handled.
    Faulty.explode_ts = T0 + 6 * HOUR
    manifest = _manifest(tmp_path, mode="paper", bars=20)
    second = serve()
    assert second.phase.value == "Failed"
    assert second.failure == (
        "StrategyError: strategy 'faulty' raised ZeroDivisionError in on_bar at the TEST 1h"
        " bar of 2017-07-14 06:00 UTC (open time), a history bar replayed at start (warm-up"
        " or already handled): boom in history"
    )
