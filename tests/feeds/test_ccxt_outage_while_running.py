"""A running paper bot on the ``ccxt`` feed whose venue answers nothing for seven minutes
(walkthrough W28). The feed retries, and once the venue answers again it hands over every
candle that closed meanwhile, in a burst. A restart after the same outage shows them to the
strategy as history and trades the newest closed one (``session.split_history``); a running
bot does the same (``Engine._late_shown``): before, each was traded minutes after its close,
on prices that were gone, and nothing in the run's record said so.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.feeds.conftest import MINUTE_MS, T0_MS, Venue, _binance
from tests.feeds.test_ccxt_paper_bot import paper_bot_manifest
from tests.feeds.test_ccxt_restart_missed_candles import CLOSES, NEWEST, _candles, _minute
from tests.venues.candle_replay import ReplayClock
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import FeedRequest
from tradefleet_runtime.session import BotSession, assemble, wall_clock
from tradefleet_runtime.spec import load_manifest

OUTAGE_FROM = 12  # the venue fails from 5 s into minute 12 ...
BACK_AT = NEWEST + 1  # ... until 5 s after candle 18 closed (as the restart test's outage)


@pytest.fixture
def binance_spot_venue() -> Iterator[Venue]:
    yield from _binance("spot")


def _manifest(folder: Path, venue: Venue) -> Path:
    # A short backoff: the feed is back within seconds of the venue.
    return paper_bot_manifest(
        folder, venue, NEWEST + 1, "outage", (2, 3, False), backoff_s=1, backoff_max_s=4
    )


def _run_with_outage(folder: Path, venue: Venue) -> tuple[list[tuple[str, int]], Any]:
    fake = venue.fake
    phase = {"down": False, "back": False}
    holder: list[ReplayClock] = []

    def on_sleep(_: float) -> None:
        now = holder[0].venue_ms()
        if not phase["down"] and now >= T0_MS + OUTAGE_FROM * MINUTE_MS + 5_000:
            phase["down"] = True
            fake.faults.inject("server_error", status=503, times=None)
        elif phase["down"] and not phase["back"] and now >= T0_MS + BACK_AT * MINUTE_MS + 5_000:
            phase["back"] = True
            fake.faults.clear()

    clock = ReplayClock(
        fake.state.clock,
        venue.apply,
        _candles(venue.ids[0]),
        start_ms=T0_MS + 10 * MINUTE_MS + 5_000,  # candle 10 forming: 10 and 11 traded live
        on_sleep=on_sleep,
    )
    holder.append(clock)
    bot = assemble(load_manifest(_manifest(folder, venue)), PluginRegistry.discover(), folder)
    bot.feed.clock = clock  # type: ignore[union-attr]  # the feed's injectable clock
    stop = threading.Event()
    journal = Journal(folder / "bot.sqlite", durable=False)
    try:
        outcome = BotSession(
            bot, journal, pacer=wall_clock(0, stop), should_stop=stop.is_set
        ).run_to_end()
    finally:
        journal.close()
    assert outcome.status == "completed"
    assert phase == {"down": True, "back": True}, phase
    with closing(sqlite3.connect(folder / "bot.sqlite")) as db:
        orders = db.execute("SELECT tag, created_ts FROM orders ORDER BY created_ts").fetchall()
    return [(str(tag), int(ts)) for tag, ts in orders], outcome


def test_an_outage_while_running_trades_no_candle_that_closed_during_it(
    binance_spot_venue: Venue, tmp_path: Path
) -> None:
    assert len(CLOSES) == NEWEST + 2
    orders, outcome = _run_with_outage(tmp_path, binance_spot_venue)
    feed = outcome.result.feed
    assert feed is not None and feed.bars > 0
    # Candles 12..17 closed while the venue did not answer; the bot got them at ~19:05. A
    # restart after the same outage sends one order, for candle 18 (the restart test). A
    # running bot should do no worse: no order for the crosses of candles 14 and 16, decided
    # 5 and 3 minutes after their close.
    assert orders == [("cross-up", _minute(NEWEST + 1))], (
        f"orders decided on candles that closed during the outage, sent at ~minute {BACK_AT}: "
        f"{[(tag, (ts - T0_MS // 1000) // 60) for tag, ts in orders]} (tag, bar-close minute)"
    )


def test_an_outage_while_running_is_said_in_the_runs_record(
    binance_spot_venue: Venue, tmp_path: Path
) -> None:
    """Candles 12..17 came late: one ``bars_late`` event says so, with their closes."""
    _run_with_outage(tmp_path, binance_spot_venue)
    with closing(sqlite3.connect(tmp_path / "bot.sqlite")) as db:
        rows = db.execute("SELECT message, data FROM events WHERE kind = 'bars_late'").fetchall()
    [(message, data)] = rows
    said = json.loads(data)
    assert said["bars"] == 6, message
    assert (said["first_close"], said["last_close"]) == (_minute(13), _minute(18)), message
    assert "no order sent for them" in message


def test_the_feed_says_how_long_it_holds_a_candle_on_purpose(binance_spot_venue: Venue) -> None:
    """``ReleaseSlack``: a candle is asked for ``settle_s`` after its close and then every
    ``poll_s``; a bot of several symbols waits up to ``late_s`` for a missing one."""
    venue = binance_spot_venue
    clock = ReplayClock(
        venue.fake.state.clock, venue.apply, _candles(venue.ids[0]), start_ms=T0_MS + 10 * MINUTE_MS
    )
    feed = venue.feed(clock, settle_s=3, poll_s=2, late_s=45)
    assert feed.release_slack_s() == 3 + 2 * 2
    bars = feed.bars(FeedRequest(tuple(venue.symbols[:2]), 60, warmup_bars=1))
    next(bars)
    assert feed.release_slack_s() == 3 + 2 * 2 + 45
