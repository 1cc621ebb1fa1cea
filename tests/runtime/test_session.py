"""One bot session for every mode: warm-up honoured and restarts resumed the same everywhere.

`tradefleet backtest`, `tradefleet run` and `tradefleet serve` (its controller) each drive the bot
through `BotSession`; these tests go through each entry point, not around it.
"""

from __future__ import annotations

import gc
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from tradefleet_runtime import cli
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar, NoParams, PluginKind, PluginSpec, Strategy, hookimpl
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import load_manifest

WARMUP = 5
HOUR = 3600
T0 = 1_500_000_000 - (1_500_000_000 % 86400)
BARS = 40


class Eager(Strategy):
    """Asks to flip its position on every bar it sees; says it needs WARMUP bars first."""

    def warmup_bars(self) -> int:
        return WARMUP

    def on_start(self, ctx: Any) -> None:
        self.seen = 0

    def on_bar(self, bar: Bar) -> None:
        self.seen += 1
        if self.ctx.position(bar.symbol).quantity > 0:
            self.ctx.sell(bar.symbol, 2)
        else:
            self.ctx.buy(bar.symbol, 1)


HOOKS = SimpleNamespace(
    tradefleet_strategies=hookimpl(
        lambda: [
            PluginSpec(
                kind=PluginKind.STRATEGY,
                name="eager",
                version="1.0.0",
                factory=lambda params: Eager(params),
                params=NoParams,
            )
        ]
    )
)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> PluginRegistry:
    """The installed plugins plus `eager`, for every entry point that discovers plugins."""
    installed = PluginRegistry.discover()
    extra = PluginRegistry.from_modules(HOOKS)
    installed.plugins.update(extra.plugins)
    monkeypatch.setattr(PluginRegistry, "discover", classmethod(lambda cls, **_: installed))
    return installed


def _write_data(folder: Path) -> Path:
    path = folder / "bars.csv"
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(BARS):
        price = 100.0 + (i % 7)
        lines.append(f"{T0 + i * HOUR},{price},{price + 1},{price - 1},{price + 0.5},10")
    path.write_text("\n".join(lines) + "\n")
    return path


def _manifest(folder: Path, mode: str) -> Path:
    data = _write_data(folder)
    manifest = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "eager-bot"},
        "spec": {
            "mode": mode,
            "strategy": {"name": "eager"},
            "market": {"symbols": ["TEST"], "timeframe": "1h"},
            "broker": {"name": "paper", "params": {}},
            "data": {"name": "csv", "params": {"path": str(data)}},
            "capital": {"currency": "USD", "initial": 100000},
        },
    }
    path = folder / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def _first_order_ts(journal_path: Path) -> int:
    db = sqlite3.connect(journal_path)
    try:
        return int(db.execute("SELECT MIN(created_ts) FROM orders").fetchone()[0])
    finally:
        db.close()


def _events(journal_path: Path, kind: str) -> list[str]:
    db = sqlite3.connect(journal_path)
    try:
        return [r[0] for r in db.execute("SELECT message FROM events WHERE kind = ?", (kind,))]
    finally:
        db.close()


# The first order may be asked for at the close of the bar after the warm-up bars.
FIRST_TRADABLE_CLOSE = T0 + (WARMUP + 1) * HOUR


def test_backtest_honours_warmup(tmp_path: Path, registry: PluginRegistry) -> None:
    journal = tmp_path / "bt.sqlite"
    manifest = _manifest(tmp_path, "backtest")
    assert cli.main(["backtest", str(manifest), "--journal", str(journal), "--json"]) == 0
    assert _first_order_ts(journal) == FIRST_TRADABLE_CLOSE
    assert "5 bar(s) of history" in _events(journal, "warmed_up")[0]


def test_paper_run_honours_warmup(tmp_path: Path, registry: PluginRegistry) -> None:
    journal = tmp_path / "run.sqlite"
    manifest = _manifest(tmp_path, "paper")
    assert cli.main(["run", str(manifest), "--journal", str(journal), "--speed", "0"]) == 0
    assert _first_order_ts(journal) == FIRST_TRADABLE_CLOSE


def _serve(manifest: Path, journal_path: Path, registry: PluginRegistry, bars: int) -> None:
    """The service's controller trading ``bars`` bars (after any history), then stopped."""
    bot = assemble(load_manifest(manifest), registry, manifest.parent)
    assert bot.feed is not None
    journal = Journal(journal_path, durable=True)
    controller = BotController(bot, journal, registry, speed=0)

    def limited(source: Iterator[Bar]) -> Iterator[Bar]:
        # The pacer sees only the bars to trade (history goes straight to the strategy).
        for count, bar in enumerate(source, 1):
            yield bar
            if count == bars:
                break
        controller.stop()

    original = controller._paced
    controller._paced = lambda stream: original(limited(iter(stream)))  # type: ignore[method-assign]
    controller.start()
    assert controller.wait(30)
    journal.close()
    assert controller.phase.value == "Stopped", controller.failure


def test_serve_honours_warmup(tmp_path: Path, registry: PluginRegistry) -> None:
    journal = tmp_path / "serve.sqlite"
    _serve(_manifest(tmp_path, "paper"), journal, registry, BARS)
    assert _first_order_ts(journal) == FIRST_TRADABLE_CLOSE


def test_restore_is_the_same_in_paper_run_and_serve(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    """A journal left by serving 12 bars after warm-up, restarted once by `tradefleet run` and
    once by `tradefleet serve`: the same restore, resume point and orders after it."""
    manifest = _manifest(tmp_path, "paper")
    first = tmp_path / "first.sqlite"
    _serve(manifest, first, registry, 12)
    by_run, by_serve = tmp_path / "by-run.sqlite", tmp_path / "by-serve.sqlite"
    shutil.copy(first, by_run)
    shutil.copy(first, by_serve)
    assert cli.main(["run", str(manifest), "--journal", str(by_run), "--speed", "0"]) == 0
    _serve(manifest, by_serve, registry, BARS)

    def after_restart(path: Path) -> tuple[Any, ...]:
        db = sqlite3.connect(path)
        try:
            runs = [r[0] for r in db.execute("SELECT run_id FROM runs ORDER BY started_at")]
            second = runs[1]
            restored = db.execute(
                "SELECT message FROM events WHERE run_id = ? AND kind = 'restored'", (second,)
            ).fetchall()
            orders = db.execute(
                "SELECT client_order_id, side, quantity, created_ts FROM orders"
                " WHERE run_id = ? AND parent_id IS NULL ORDER BY created_ts, client_order_id",
                (second,),
            ).fetchall()
            fills = db.execute(
                "SELECT client_order_id, price, quantity FROM fills WHERE run_id = ?"
                " ORDER BY ts, fill_id",
                (second,),
            ).fetchall()
            first_equity = db.execute(
                "SELECT MIN(first_ts) FROM equity_chunks WHERE run_id = ?", (second,)
            ).fetchone()[0]
            return restored, orders, fills, first_equity
        finally:
            db.close()

    restored, orders, fills, first_equity = after_restart(by_run)
    assert (restored, orders, fills, first_equity) == after_restart(by_serve)
    assert len(restored) == 1 and "1 earlier run(s)" in restored[0][0]
    # Resumed after the last bar handled (warm-up + 12): nothing before it is traded again.
    resumed = T0 + (WARMUP + 12 + 1) * HOUR
    assert first_equity == resumed
    # An exit still working at the stop (the buy closing the short, sent at the last bar: an
    # order that only reduces is reduce-only, and the stop policy leaves exits working) is
    # re-armed under its own id and time; every order the second run decided itself is at or
    # after the resume point.
    db = sqlite3.connect(first)
    try:
        sent_before = {row[0] for row in db.execute("SELECT client_order_id FROM orders")}
    finally:
        db.close()
    decided = [o for o in orders if o[0] not in sent_before]
    assert decided and min(o[3] for o in decided) == resumed
    assert all(o[3] < resumed for o in orders if o[0] in sent_before)


def _probe_freezing(monkeypatch: pytest.MonkeyPatch, fail_at: int = 0) -> list[int]:
    """Record the collector's frozen-object count on each bar `eager` sees (raising on bar
    ``fail_at`` when given)."""
    seen: list[int] = []
    on_bar = Eager.on_bar

    def probed(self: Eager, bar: Bar) -> None:
        seen.append(gc.get_freeze_count())
        if len(seen) == fail_at:
            raise RuntimeError("probe: a strategy that breaks mid-run")
        on_bar(self, bar)

    monkeypatch.setattr(Eager, "on_bar", probed)
    return seen


def test_a_backtest_runs_with_its_set_up_frozen_and_thaws_it_after(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _probe_freezing(monkeypatch)
    before = gc.get_freeze_count()
    manifest = _manifest(tmp_path, "backtest")
    assert cli.main(["backtest", str(manifest), "--journal", str(tmp_path / "j.sqlite")]) == 0
    traded = seen[WARMUP:]  # the warm-up bars are shown before the run proper
    assert traded and all(count > before for count in traded)
    assert gc.get_freeze_count() == before


def test_a_failed_backtest_thaws_the_collector_too(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _probe_freezing(monkeypatch, fail_at=WARMUP + 3)
    before = gc.get_freeze_count()
    manifest = _manifest(tmp_path, "backtest")
    # The strategy's error is one line and a failure exit, not a raw RuntimeError.
    assert (
        cli.main(["backtest", str(manifest), "--journal", str(tmp_path / "j.sqlite")])
        == cli.EXIT_FAILURE
    )
    assert seen[-1] > before  # it failed inside the frozen run
    assert gc.get_freeze_count() == before


def test_a_paper_run_never_freezes_the_collector(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _probe_freezing(monkeypatch)
    before = gc.get_freeze_count()
    manifest = _manifest(tmp_path, "paper")
    journal = tmp_path / "run.sqlite"
    assert cli.main(["run", str(manifest), "--journal", str(journal), "--speed", "0"]) == 0
    assert seen and set(seen) == {before}
