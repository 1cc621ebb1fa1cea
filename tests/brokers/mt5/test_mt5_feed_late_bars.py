"""A running live bot's late bars (``Engine._late_shown``, ``session.LateBars``) on the real
``mt5`` feed against the terminal emulator (review R47): a normal run trades every bar, several
symbols too; an IPC outage of a few minutes drops the bars that closed meanwhile (said once as
``bars_late``) and trades the newest; a market closed for a stretch trades the first bar back
under ``gap_policy: trade`` and no bar the feed filled in under ``fill`` — the last filled bar
came inside the feed's whole hold (``settle_s`` and two ``poll_s``), which counts only beyond
one timeframe."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.mt5.test_mt5_feed_clock import WINTER, _Server
from tests.runtime.risk_helpers import bot_with, manifest
from tradefleet_runtime.contracts import Strategy
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession

MINUTE = 60
IPC_TIMEOUT = (-10005, "IPC timeout")


class BuysEveryBar(Strategy):
    """Buys one unit of each symbol on every bar it is shown (warm-up 2)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.seen: list[tuple[str, int]] = []

    def warmup_bars(self) -> int:
        return 2

    def on_bar(self, bar: Bar) -> None:
        self.seen.append((bar.symbol, bar.ts))
        self.ctx.buy(bar.symbol, 1.0)


class Outage:
    """The terminal answers nothing (IPC timeout) while the true clock is in [start, end)."""

    def __init__(self, server: _Server, start: float, end: float) -> None:
        self.server, self.start, self.end = server, start, end
        term = server.term
        for name in ("copy_rates_from_pos", "symbol_info_tick"):
            setattr(term, name, self._failing(getattr(term, name)))
        original_error = term.last_error

        def last_error() -> Any:
            return IPC_TIMEOUT if self.down() else original_error()

        setattr(term, "last_error", last_error)  # noqa: B010 - a wrapper, typed loosely

    def down(self) -> bool:
        return self.start <= self.server.true_utc() < self.end

    def _failing(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any) -> Any:
            return None if self.down() else call(*args)

        return wrapped


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


@pytest.fixture
def server() -> Iterator[_Server]:
    made = _Server()
    yield made
    made.close()


def _run(
    registry: PluginRegistry,
    tmp: Path,
    server: _Server,
    symbols: tuple[str, ...],
    minutes: float,
) -> tuple[BuysEveryBar, list[int], list[dict[str, Any]], list[tuple[Bar, float]]]:
    """A paper bot on the mt5 feed, run for ``minutes`` of the emulator's clock; the
    strategy, the bar close of each order sent, the bars_late events, each bar handed over
    with the true UTC time it was."""
    for symbol in symbols:
        if symbol != "EURUSD":
            server.term.set_price(symbol, 1.3, 1.3001)
    server.history(10)
    for symbol in symbols:
        if symbol != "EURUSD":
            rows = [
                (server.start - (10 - k) * 60, 1.0 + k, 1.5 + k, 0.5 + k, 1.2 + k, 10)
                for k in range(10)
            ]
            server.term.load_rates(symbol, rows)
    # Every symbol ticks as the emulator's clock moves (the harness ticks EURUSD only).
    sleep = server.sleep

    def ticking(seconds: float) -> None:
        sleep(seconds)
        for symbol in symbols:
            if symbol != "EURUSD":
                server.term.set_price(symbol, 1.3 + server.price - 1.1, 1.3001)

    server.sleep = ticking  # type: ignore[method-assign]
    feed = server.feed(server_offset_s=WINTER)
    feed._sleep = ticking
    began = server.true_utc()
    request = server.request(*symbols, stop=lambda: server.true_utc() - began > minutes * 60)
    handed: list[tuple[Bar, float]] = []

    def bars() -> Iterator[Bar]:
        for bar in feed.bars(request):
            handed.append((bar, server.true_utc()))
            yield bar

    document: dict[str, Any] = manifest([], mode="paper", symbols=symbols)
    document["spec"]["market"]["timeframe"] = "1m"
    strategy = BuysEveryBar()
    bot = dataclasses.replace(bot_with(registry, document, strategy, tmp), market_clock=feed)
    journal = Journal(tmp / "journal.sqlite")
    session = BotSession(bot, journal, bars=bars())
    session.run_to_end()
    orders = [
        int(ts) for (ts,) in journal.query("SELECT created_ts FROM orders ORDER BY created_ts")
    ]
    late = [
        json.loads(data)
        for (data,) in journal.query("SELECT data FROM events WHERE kind = 'bars_late'")
    ]
    journal.close()
    return strategy, orders, late, handed


def test_a_normal_mt5_run_trades_every_bar(
    registry: PluginRegistry, tmp_path: Path, server: _Server
) -> None:
    _strategy, orders, late, handed = _run(registry, tmp_path, server, ("EURUSD",), 8)
    live = [bar for bar, _ in handed][2:]  # after the warm-up
    assert len(live) >= 7
    assert late == []
    # one order per live bar, decided at its close
    assert orders == [bar.ts + MINUTE for bar in live]


def test_several_mt5_symbols_trade_every_bar(
    registry: PluginRegistry, tmp_path: Path, server: _Server
) -> None:
    symbols = ("EURUSD", "GBPUSD", "XAUUSD")
    _strategy, orders, late, handed = _run(registry, tmp_path, server, symbols, 8)
    live = [bar for bar, _ in handed][2 * len(symbols) :]
    assert len(live) >= 7 * len(symbols)
    assert late == []
    assert len(orders) == len(live)


def test_an_ipc_outage_drops_the_bars_it_held_back_and_trades_the_newest(
    registry: PluginRegistry, tmp_path: Path, server: _Server
) -> None:
    began = server.true_utc()
    # The terminal answers nothing from 3.5 to 7.5 minutes into the run.
    Outage(server, began + 3.5 * MINUTE, began + 7.5 * MINUTE)
    _strategy, orders, late, handed = _run(registry, tmp_path, server, ("EURUSD",), 11)
    back = began + 7.5 * MINUTE
    after = [(bar, when) for bar, when in handed if when >= back]
    # the burst: bars that closed during the outage, then one a minute
    burst = [bar for bar, when in after if when < back + 30]
    assert len(burst) >= 3, [b.ts for b in burst]
    newest = burst[-1]
    traded = set(orders)
    # the newest closed bar of the burst is traded; the ones before it are not
    assert newest.ts + MINUTE in traded
    assert not any(bar.ts + MINUTE in traded for bar in burst[:-1])
    # every bar handed over on time before and after the outage is traded
    on_time = [bar for bar, when in handed if when - (bar.ts + MINUTE) < 10]
    missing = [bar.ts for bar in on_time[2:] if bar.ts + MINUTE not in traded]
    assert missing == []
    assert len(late) == 1 and late[0]["bars"] == len(burst) - 1


def _weekend_run(
    registry: PluginRegistry,
    tmp: Path,
    server: _Server,
    gap_policy: str,
    closed_min: int,
    poll_s: float = 30.0,
) -> tuple[BuysEveryBar, list[int], list[dict[str, Any]], list[tuple[Bar, float]]]:
    """Two minutes of trading, the market closed ``closed_min`` minutes (no tick), then
    four minutes of trading again (poll_s 30 by default keeps a long stretch cheap)."""
    server.history(10)
    began = server.true_utc()
    sleep = server.sleep

    def market(seconds: float) -> None:
        t = server.true_utc() - began
        closed = 2 * MINUTE + 5 <= t < (2 + closed_min) * MINUTE + 5
        server.tick_every = None if closed else 0.25
        sleep(seconds)

    feed = server.feed(server_offset_s=WINTER, gap_policy=gap_policy, poll_s=poll_s)
    feed._sleep = market
    stop_at = (closed_min + 7) * MINUTE
    request = server.request(stop=lambda: server.true_utc() - began > stop_at)
    handed: list[tuple[Bar, float]] = []

    def bars() -> Iterator[Bar]:
        for bar in feed.bars(request):
            handed.append((bar, server.true_utc()))
            yield bar

    document: dict[str, Any] = manifest([], mode="paper", symbols=("EURUSD",))
    document["spec"]["market"]["timeframe"] = "1m"
    strategy = BuysEveryBar()
    bot = dataclasses.replace(bot_with(registry, document, strategy, tmp), market_clock=feed)
    journal = Journal(tmp / "journal.sqlite")
    BotSession(bot, journal, bars=bars()).run_to_end()
    orders = [int(ts) for (ts,) in journal.query("SELECT created_ts FROM orders")]
    late = [
        json.loads(data)
        for (data,) in journal.query("SELECT data FROM events WHERE kind = 'bars_late'")
    ]
    journal.close()
    return strategy, orders, late, handed


def test_a_closed_market_with_gap_policy_trade_trades_the_first_bar_back(
    registry: PluginRegistry, tmp_path: Path, server: _Server
) -> None:
    _, orders, late, handed = _weekend_run(registry, tmp_path, server, "trade", 60)
    gap = [(a, b) for (a, _), (b, _) in itertools.pairwise(handed) if b.ts - a.ts > MINUTE]
    assert len(gap) == 1  # the closed stretch
    first_back = gap[0][1]
    assert first_back.ts + MINUTE in set(orders)
    assert late == []


@pytest.mark.parametrize(("closed_min", "poll_s"), [(60, 30.0), (10, 1.0)])
def test_a_closed_market_with_gap_policy_fill_trades_no_filled_bar(
    registry: PluginRegistry, tmp_path: Path, server: _Server, closed_min: int, poll_s: float
) -> None:
    """The bars the feed fills in for the closed stretch come with the first real bar after
    it, each after a newer bar had closed: none should be traded (its price is the last one
    before the close)."""
    _, orders, late, handed = _weekend_run(registry, tmp_path, server, "fill", closed_min, poll_s)
    filled = [bar for bar, _ in handed if bar.volume == 0.0]
    assert len(filled) >= closed_min - 2
    traded_filled = [bar.ts for bar in filled if bar.ts + MINUTE in set(orders)]
    assert traded_filled == [], (
        f"an order decided on a filled bar (close {filled[-1].close}) was sent; "
        f"bars_late said {late}"
    )
