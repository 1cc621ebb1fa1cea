"""A paper bot on the ``ccxt`` feed of the fake Binance, stopped and started again minutes
later: the candles that closed while it was down go to the strategy as history only, and the
newest closed candle is traded, as a running bot would have (a little late).

The venue's clock is the test's (``ReplayClock``), one clock over both lives: the outage is a
jump of the venue's time between them, during which its candles are played.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.feeds.conftest import MINUTE_MS, T0_MS, Venue
from tests.feeds.test_ccxt_paper_bot import paper_bot_manifest
from tests.venues.candle_replay import ReplayClock, ScriptCandle
from tradefleet_plugins.feeds.ccxt_feed import CcxtFeed
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import FeedRequest
from tradefleet_runtime.session import BotSession, assemble, wall_clock
from tradefleet_runtime.spec import load_manifest

# One close per one-minute candle. Life 1 handles candles 10 and 11 (flat: no cross). Down
# from 12 to 18: ema-cross (2/3) takes its first direction at 12 (down: not a cross), crosses
# up at 14 and down at 16, and up again at 18, the newest candle closed at the restart.
CLOSES = [50_000.0] * 12 + [47_500.0, 47_500.0, 55_000.0, 55_000.0, 45_000.0]
CLOSES += [45_000.0, 57_500.0, 57_500.0]
FIRST_LIFE_END = 12  # the feed ends before the candle opening at this minute
NEWEST = 18  # the newest candle closed when the bot comes back


def _minute(index: int) -> int:
    return (T0_MS + index * MINUTE_MS) // 1000


def _candles(symbol: str) -> list[ScriptCandle]:
    out = []
    for i, close in enumerate(CLOSES):
        open_ = CLOSES[i - 1] if i else close
        high, low = max(open_, close), min(open_, close)
        out.append(ScriptCandle(symbol, T0_MS + i * MINUTE_MS, open_, high, low, close))
    return out


def _manifest(folder: Path, venue: Venue, end_minute: int) -> Path:
    return paper_bot_manifest(folder, venue, end_minute, "ccxt-restart", (2, 3, False))


def _life(folder: Path, venue: Venue, clock: ReplayClock, end_minute: int) -> str:
    bot = assemble(
        load_manifest(_manifest(folder, venue, end_minute)), PluginRegistry.discover(), folder
    )
    bot.feed.clock = clock  # type: ignore[union-attr]  # the feed's injectable clock
    stop = threading.Event()
    journal = Journal(folder / "bot.sqlite", durable=False)
    try:
        outcome = BotSession(
            bot, journal, pacer=wall_clock(0, stop), should_stop=stop.is_set
        ).run_to_end()
    finally:
        journal.close()
    return outcome.status


def _last_run(folder: Path) -> tuple[list[tuple[str, int]], list[str]]:
    """The orders (tag, created_ts) and ``warmed_up`` messages of the newest run."""
    with closing(sqlite3.connect(folder / "bot.sqlite")) as db:
        (run_id,) = db.execute(
            "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        orders = db.execute(
            "SELECT tag, created_ts FROM orders WHERE run_id = ? ORDER BY created_ts", (run_id,)
        ).fetchall()
        warmed = db.execute(
            "SELECT message FROM events WHERE run_id = ? AND kind = 'warmed_up'", (run_id,)
        ).fetchall()
    return [(str(tag), int(ts)) for tag, ts in orders], [str(m) for (m,) in warmed]


def _without_a_time_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """The venue tells no time, as Bitstamp, Gemini or Bitfinex (ccxt's ``has['fetchTime']``
    false): the feed decides a close by the host's clock there, and so is a restart's outage
    judged. Told nothing, the restarted bot traded the crosses of candles 14 and 16 as well,
    one after another at the prices of its restart."""
    make_client = CcxtFeed._make_client

    def without_time(feed: CcxtFeed) -> Any:
        client = make_client(feed)
        client.has = {**client.has, "fetchTime": False}  # this client's, not the class's
        return client

    monkeypatch.setattr(CcxtFeed, "_make_client", without_time)


@pytest.mark.parametrize("tells_time", [True, False], ids=["fetch_time", "no_time_endpoint"])
def test_a_restarted_bot_trades_only_the_newest_closed_candle_of_its_outage(
    binance_spot_venue: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tells_time: bool
) -> None:
    venue = binance_spot_venue
    if not tells_time:
        _without_a_time_endpoint(monkeypatch)
    clock = ReplayClock(
        venue.fake.state.clock,
        venue.apply,
        _candles(venue.ids[0]),
        start_ms=T0_MS + 10 * MINUTE_MS + 5_000,  # candle 10 forming
    )
    assert _life(tmp_path, venue, clock, FIRST_LIFE_END) == "completed"
    orders, _ = _last_run(tmp_path)
    assert orders == [], "flat candles: no cross"

    # Down for seven minutes: back 5 s after candle 18 closed on the venue's clock.
    clock.sleep((T0_MS + (NEWEST + 1) * MINUTE_MS + 5_000) / 1000 - clock.time())
    assert _life(tmp_path, venue, clock, NEWEST + 1) == "completed"

    orders, warmed = _last_run(tmp_path)
    # The crosses of candles 14 (up) and 16 (down) closed while the bot was down: no order
    # for them. Candle 18 is the newest closed one: its cross is traded.
    assert orders == [("cross-up", _minute(NEWEST + 1))], orders
    (message,) = warmed
    assert "6 bar(s) closed while the bot was down" in message, message
    assert "history only" in message


def test_the_feed_tells_the_venues_time_not_the_hosts(binance_spot_venue: Venue) -> None:
    venue = binance_spot_venue
    venue.fake.state.clock.offset_ms = -45_000  # the venue's clock 45 s behind this host's
    clock = ReplayClock(
        venue.fake.state.clock,
        venue.apply,
        _candles(venue.ids[0]),
        start_ms=T0_MS + 10 * MINUTE_MS + 50_000,
    )
    feed = venue.feed(clock)
    assert feed.market_time() is None  # the stream has not read the venue's time yet
    next(feed.bars(FeedRequest(venue.symbols[:1], 60, warmup_bars=3)))
    told = feed.market_time()
    assert told is not None
    venue_now = clock.venue_ms() / 1000
    # The venue's time, never ahead of it (its reading is taken as made after the answer).
    assert venue_now - 1.0 <= told <= venue_now
    assert abs(told - clock.time()) > 40  # not the host's
