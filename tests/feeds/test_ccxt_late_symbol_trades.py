"""A two-symbol 1m bot on the ccxt feed, one of whose symbols has stopped printing candles (a
pair halted for maintenance, a quiet market a venue writes no candle for), trades the other.

The candle stitcher releases a timestamp whose slow symbol has no candle once ``late_s``
(default 60 s) has passed after its close, when a newer 1m candle has closed too. Such a
timestamp did not close while the bot was down: ``split_history`` judges missed bars against
the market's time the restarted bot came back at, never the time a bar arrives, and a first
start misses none; had it judged each bar's arrival, this bot would trade nothing, exits
included, for as long as the symbol is silent.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import yaml

from tests.feeds.conftest import MINUTE_MS, T0_MS, Venue, binance_spot_venue  # noqa: F401
from tests.feeds.test_ccxt_restart_missed_candles import _candles, _manifest
from tests.venues.candle_replay import ReplayClock
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble, wall_clock
from tradefleet_runtime.spec import load_manifest


def test_a_silent_second_symbol_does_not_stop_the_bot_trading_the_first(
    binance_spot_venue: Venue,  # noqa: F811
    tmp_path: Path,
) -> None:
    venue = binance_spot_venue
    # BTC: the ema-cross script (crosses up at 14, down at 16, up at 18). ETH: flat candles up
    # to candle 9, then none (halted): the first live timestamp already lacks it.
    eth = [c for c in _candles(venue.ids[1]) if c.open_ms < T0_MS + 10 * MINUTE_MS]
    clock = ReplayClock(
        venue.fake.state.clock,
        venue.apply,
        sorted(_candles(venue.ids[0]) + eth, key=lambda c: c.open_ms),
        start_ms=T0_MS + 10 * MINUTE_MS + 5_000,  # a first start: candle 10 forming
    )
    path = _manifest(tmp_path, venue, 20)
    document = yaml.safe_load(path.read_text())
    document["spec"]["market"]["symbols"] = list(venue.symbols[:2])
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    bot = assemble(load_manifest(path), PluginRegistry.discover(), tmp_path)
    bot.feed.clock = clock  # type: ignore[union-attr]
    stop = threading.Event()
    journal = Journal(tmp_path / "bot.sqlite", durable=False)
    try:
        outcome = BotSession(
            bot, journal, pacer=wall_clock(0, stop), should_stop=stop.is_set
        ).run_to_end()
    finally:
        journal.close()
    assert outcome.status == "completed"
    with closing(sqlite3.connect(tmp_path / "bot.sqlite")) as db:
        orders = db.execute("SELECT symbol, tag FROM orders").fetchall()
        warmed = [m for (m,) in db.execute("SELECT message FROM events WHERE kind='warmed_up'")]
    assert (venue.symbols[0], "cross-up") in orders, (
        f"BTC's crosses were never traded on a first start: {orders}; warmed_up: {warmed}"
    )
