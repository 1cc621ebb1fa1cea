"""A paper bot on the ``ccxt`` feed, end to end: a manifest with ``data: ccxt`` and ``broker:
paper`` run through the real session against a fake venue playing a few hundred candles.

The venue's clock is the test's (``ReplayClock``): the feed waits for each candle to close as
it would live, but a minute passes in the time a sleep takes to move the fake's clock.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.feeds.conftest import MINUTE_MS, T0_MS, Venue, _binance
from tests.venues.candle_replay import ReplayClock, wave
from tradefleet_plugins.feeds import ccxt_feed
from tradefleet_runtime import cli
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble, wall_clock
from tradefleet_runtime.spec import load_manifest

WARMUP = 30  # ema-cross's slow period: the strategy's warm-up
LIVE = 300  # candles traded after the warm-up
START_MS = T0_MS + 100 * MINUTE_MS + 5_000  # candle 100 is forming when the bot starts


def _manifest(folder: Path, venue: Venue) -> Path:
    # The feed ends before the candle opening at T0 + 400 min.
    return paper_bot_manifest(
        folder, venue, 100 + LIVE, f"ccxt-paper-{venue.name}", (8, WARMUP, True)
    )


def paper_bot_manifest(
    folder: Path,
    venue: Venue,
    end_minute: int,
    name: str,
    ema: tuple[int, int, bool],
    **feed: Any,
) -> Path:
    """A paper ema-cross bot (``ema``: fast, slow, allow_short) of 0.1 on ``venue``'s first
    symbol, 1m candles from its ccxt feed up to ``end_minute`` after ``T0_MS``; ``feed``: more
    of the feed's params."""
    fast, slow, allow_short = ema
    manifest: dict[str, Any] = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": name},
        "spec": {
            "mode": "paper",
            "strategy": {
                "name": "ema-cross",
                "params": {"fast": fast, "slow": slow, "allow_short": allow_short},
            },
            "market": {"symbols": [venue.symbols[0]], "timeframe": "1m"},
            "broker": {"name": "paper", "params": {"fee_bps": 4, "slippage_bps": 1}},
            "data": {
                "name": "ccxt",
                "params": {
                    "exchange": venue.exchange,
                    "market_type": venue.market_type,
                    "api_url": venue.fake.url,
                    "rate_limit_ms": 1,
                    "settle_s": 1,
                    "end": _iso(T0_MS + end_minute * MINUTE_MS),
                    **feed,
                },
            },
            "risk": [{"name": "fixed-size", "params": {"quantity": 0.1}}],
            "capital": {"currency": "USDT", "initial": 100000},
        },
    }
    path = folder / "bot.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.mark.parametrize("which", ["binance_spot_venue", "bybit_venue"])
def test_a_paper_bot_trades_hundreds_of_live_candles_from_the_ccxt_feed(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    venue: Venue = request.getfixturevalue(which)
    candles = wave(venue.ids[0], T0_MS, 100 + LIVE + 20)
    clock = ReplayClock(venue.fake.state.clock, venue.apply, candles, start_ms=START_MS)
    manifest_path = _manifest(tmp_path, venue)
    bot = assemble(load_manifest(manifest_path), PluginRegistry.discover(), tmp_path)
    bot.feed.clock = clock  # type: ignore[union-attr]  # the feed's injectable clock

    stop = threading.Event()
    journal_path = tmp_path / "bot.sqlite"
    journal = Journal(journal_path, durable=False)
    try:
        outcome = BotSession(
            bot, journal, pacer=wall_clock(0, stop), should_stop=stop.is_set
        ).run_to_end()
    finally:
        journal.close()

    assert outcome.status == "completed"  # the feed ended at `end`
    feed = outcome.result.feed
    assert feed is not None
    assert (feed.bars, feed.gaps) == (WARMUP + LIVE, 0)
    assert feed.first_ts == (T0_MS + (100 - WARMUP) * MINUTE_MS) // 1000
    assert feed.last_ts == (T0_MS + (100 + LIVE - 1) * MINUTE_MS) // 1000
    # The venue's clock reached the last candle's close: every candle was waited for live.
    assert clock.venue_ms() >= T0_MS + (100 + LIVE) * MINUTE_MS

    db = sqlite3.connect(journal_path)
    try:
        fills = db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
        trades = db.execute("SELECT COUNT(*) FROM trades").fetchone()[0]
        events = {r[0] for r in db.execute("SELECT kind FROM events")}
    finally:
        db.close()
    assert trades >= 4 and fills >= 2 * trades - 1, (trades, fills)
    print(f"{venue.name}: {LIVE} live candles, {trades} trades, {fills} fills")
    assert len(outcome.result.equity_ts) == LIVE  # one equity mark per traded candle
    assert "warmed_up" in events
    assert outcome.result.equity_ts[-1] == feed.last_ts + 60


def test_tradefleet_run_paper_trades_the_ccxt_feed_of_the_fake_usdm_futures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same through the command line: ``tradefleet run --speed 0`` (the feed waits for
    the market itself). The feed is built inside the command, so its default clock is the
    replay clock here."""
    started = _binance("usdm")  # held: the fake stops when the generator closes
    venue = next(started)
    try:
        candles = wave(venue.ids[0], T0_MS, 100 + LIVE + 20)
        clock = ReplayClock(venue.fake.state.clock, venue.apply, candles, start_ms=START_MS)
        monkeypatch.setattr(ccxt_feed, "SystemClock", lambda: clock)
        manifest = _manifest(tmp_path, venue)
        journal_path = tmp_path / "run.sqlite"
        argv = ["run", str(manifest), "--speed", "0", "--journal", str(journal_path)]
        assert cli.main([*argv, "--no-progress"]) == 0
    finally:
        started.close()
    out = capsys.readouterr().out
    assert "paper trading BTC/USDT:USDT" in out
    journal = Journal(journal_path)
    try:
        (run,) = journal.runs()
        trades = journal.trades(run.run_id)
    finally:
        journal.close()
    assert len(trades) >= 4
    assert clock.venue_ms() >= T0_MS + (100 + LIVE) * MINUTE_MS


def test_the_documented_manifest_builds(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "live-data.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "btc-paper.yaml"
    path.write_text(block)
    bot = assemble(load_manifest(path), PluginRegistry.discover(), tmp_path)
    assert type(bot.feed).__name__ == "CcxtFeed"
    assert bot.feed.client.id == "binance"  # type: ignore[union-attr]
