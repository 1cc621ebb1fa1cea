"""A running live bot judges each bar late at the market's time it came (``Engine._late_shown``,
``session.LateBars``), past what its feed holds a bar on purpose (``ReleaseSlack``; review
R44): the ccxt feed holds a timestamp up to ``late_s`` for a symbol whose candle is missing,
which on a 1m bot is a whole timeframe — a bar so held is on time, and traded. A run that ends
in a burst of late bars says them too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.risk_helpers import bot_with, manifest
from tradefleet_plugins.feeds.candle_stitch import CandleStitcher
from tradefleet_plugins.feeds.ccxt_feed_params import CcxtFeedParams
from tradefleet_plugins.feeds.csv_params import GapPolicy
from tradefleet_runtime.contracts import Strategy
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import FeedReport
from tradefleet_runtime.session import BotSession

MINUTE = 60
T0 = 1_717_000_000 // MINUTE * MINUTE
DEFAULTS = CcxtFeedParams(exchange="binance")
QUIET_AT = T0 + 2 * MINUTE  # ETH has no candle for this minute (no trade in it)


def _released_at() -> float:
    """When the real stitcher first releases BTC's candle of ``QUIET_AT`` (ETH never writes
    one), asked every ``poll_s`` from its close plus ``settle_s``: one timeframe late."""
    stitch = CandleStitcher(("BTC", "ETH"), MINUTE, GapPolicy.TRADE, FeedReport(), QUIET_AT)
    now = QUIET_AT + MINUTE + DEFAULTS.settle_s
    stitch.add("BTC", [[QUIET_AT * 1000, 100.0, 100.0, 100.0, 100.0, 1.0]], now)
    while not stitch.ready(now, DEFAULTS.late_s):
        now += DEFAULTS.poll_s
    return now


class FeedClock:
    """The market's time as a ccxt feed of ``symbols`` symbols tells it, with its slack."""

    def __init__(self, symbols: int) -> None:
        self.now: float | None = None
        self.symbols = symbols

    def market_time(self) -> float | None:
        return self.now

    def release_slack_s(self) -> float:
        waits = DEFAULTS.late_s if self.symbols > 1 else 0.0
        return DEFAULTS.settle_s + 2 * DEFAULTS.poll_s + waits


class BuysBtc(Strategy):
    def __init__(self, at: int | None = None) -> None:
        super().__init__(None)
        self.at = at

    def on_bar(self, bar: Bar) -> None:
        if bar.symbol == "BTC" and (self.at is None or bar.ts == self.at):
            self.ctx.buy("BTC", 0.01)


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


def _run(
    registry: PluginRegistry, tmp: Path, symbols: tuple[str, ...], strategy: Strategy, bars: Any
) -> tuple[BotSession, list[Any], list[Any]]:
    document: dict[str, Any] = manifest([], mode="paper", symbols=symbols)
    document["spec"]["market"]["timeframe"] = "1m"
    clock = bars.clock
    bot = dataclasses.replace(bot_with(registry, document, strategy, tmp), market_clock=clock)
    journal = Journal(tmp / "journal.sqlite")
    session = BotSession(bot, journal, bars=iter(bars))
    session.run_to_end()
    late = journal.query("SELECT data FROM events WHERE kind = 'bars_late'")
    orders = journal.query("SELECT created_ts FROM orders WHERE parent_id IS NULL")
    journal.close()
    return session, late, orders


class QuietMinute:
    """Five minutes of BTC and ETH, each timestamp reaching the bot when the feed releases it:
    ``settle_s`` after its close, but ETH's empty minute ``late_s`` after it."""

    def __init__(self) -> None:
        self.clock = FeedClock(2)

    def __iter__(self) -> Iterator[Bar]:
        for k in range(5):
            ts = T0 + k * MINUTE
            close = ts + MINUTE
            self.clock.now = _released_at() if ts == QUIET_AT else close + DEFAULTS.settle_s
            for symbol in ("BTC", "ETH"):
                if not (symbol == "ETH" and ts == QUIET_AT):
                    yield Bar(symbol, MINUTE, ts, 100.0, 100.0, 100.0, 100.0, 1.0)


def test_a_timestamp_the_feed_held_for_a_quiet_symbol_is_traded(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    assert _released_at() == QUIET_AT + MINUTE + DEFAULTS.late_s  # a whole timeframe late
    _, late, orders = _run(registry, tmp_path, ("BTC", "ETH"), BuysBtc(QUIET_AT), QuietMinute())
    assert len(orders) == 1, f"the buy on BTC's held bar was dropped as late: {late}"
    assert late == []


class BurstThenEnd:
    """Two minutes on time, then the venue is out and minutes 2-4 come in a burst at minute
    6 (10 s past its start); the run ends there."""

    def __init__(self) -> None:
        self.clock = FeedClock(1)

    def __iter__(self) -> Iterator[Bar]:
        for k in range(5):
            ts = T0 + k * MINUTE
            self.clock.now = ts + MINUTE + DEFAULTS.settle_s if k < 2 else T0 + 6 * MINUTE + 10
            yield Bar("BTC", MINUTE, ts, 100.0, 100.0, 100.0, 100.0, 1.0)


def test_late_bars_at_the_end_of_a_run_are_said(registry: PluginRegistry, tmp_path: Path) -> None:
    session, late, orders = _run(registry, tmp_path, ("BTC",), BuysBtc(), BurstThenEnd())
    assert session.engine is not None
    assert session.engine.stats.late_intents == 3 and len(orders) == 2
    assert len(late) == 1 and '"bars": 3' in str(late[0][0])
