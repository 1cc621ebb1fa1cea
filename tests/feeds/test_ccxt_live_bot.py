"""A live bot end to end: the ``ccxt`` feed and the ``ccxt`` broker against one fake venue.

A `live` TradingBot (its confirmation, a credentials Secret mounted as files) trades a few
hundred one-minute candles through the real session: signals → orders on the venue → fills
→ journal. Afterwards the journal and the venue agree fill for fill, and no client order id was
ever placed twice. The venue's clock is the test's (``ReplayClock``), as for the paper bot.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.feeds.conftest import MINUTE_MS, Venue, _binance, _bybit
from tests.feeds.test_ccxt_paper_bot import WARMUP, _iso
from tests.venues.candle_replay import ReplayClock, wave
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble, wall_clock
from tradefleet_runtime.spec import load_manifest

LIVE = 200
# The replay starts at the real time (a venue's clock and the bot's agree, as they do live:
# signed requests carry the local time, and a venue refuses one too far from its own).
T0_MS = (int(time.time()) // 60 - 100) * MINUTE_MS
START_MS = T0_MS + 100 * MINUTE_MS + 5_000


@pytest.fixture(params=["binance-usdm", "bybit"])
def live_venue(request: pytest.FixtureRequest) -> Iterator[Venue]:
    yield from (_binance("usdm") if request.param == "binance-usdm" else _bybit())


def _manifest(folder: Path, venue: Venue) -> Path:
    name = f"ccxt-live-{venue.name}"
    connection = {"exchange": venue.exchange, "market_type": venue.market_type}
    connection["api_url"] = venue.fake.url
    manifest: dict[str, Any] = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": name},
        "spec": {
            "mode": "live",
            "liveConfirmation": name,
            "strategy": {
                "name": "ema-cross",
                "params": {"fast": 8, "slow": WARMUP, "allow_short": True},
            },
            "market": {"symbols": [venue.symbols[0]], "timeframe": "1m"},
            "broker": {
                "name": "ccxt",
                "credentialsSecret": {"name": f"{name}-keys"},
                "params": {**connection, "poll_interval_s": 0.05, "timeout_ms": 2000},
            },
            "data": {
                "name": "ccxt",
                "params": {
                    **connection,
                    "rate_limit_ms": 1,
                    "settle_s": 1,
                    "end": _iso(T0_MS + (100 + LIVE) * MINUTE_MS),
                },
            },
            "risk": [{"name": "fixed-size", "params": {"quantity": 0.01}}],
            "capital": {"currency": "USDT", "initial": 100000},
        },
    }
    path = folder / "bot.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def _venue_fills(venue: Venue) -> list[str]:
    fake = venue.fake
    with fake.state.lock:
        if venue.name == "bybit":
            return [x.exec_id for x in fake.state.executions[fake.api_key]]
        return [
            str(t.id)
            for (account, _symbol), trades in fake.state.usdm.trades.items()
            if account == fake.api_key
            for t in trades
        ]


def _venue_client_ids(venue: Venue) -> list[str]:
    if venue.name == "bybit":
        return [o.link_id for o in venue.fake.orders() if o.link_id]
    return [o.client_order_id for o in venue.fake.orders("usdm")]


def test_a_live_bot_trades_hundreds_of_candles_with_real_orders_on_the_venue(
    live_venue: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue = live_venue
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "apiKey").write_text(venue.fake.api_key)
    (keys / "secret").write_text(venue.fake.secret)
    monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(keys))  # as the operator mounts it

    # Market time is replayed faster than real time; the venue checks signatures on the real.
    venue.fake.signing_clock = lambda: time.time_ns() // 1_000_000
    candles = wave(venue.ids[0], T0_MS, 100 + LIVE + 20)
    clock = ReplayClock(venue.fake.state.clock, venue.apply, candles, start_ms=START_MS)
    bot = assemble(load_manifest(_manifest(tmp_path, venue)), PluginRegistry.discover(), tmp_path)
    assert bot.venue is not None, "a real venue's account: reconciled, never restored"
    bot.feed.clock = clock  # type: ignore[union-attr]

    stop = threading.Event()
    journal_path = tmp_path / "bot.sqlite"
    journal = Journal(journal_path, durable=False)
    try:
        session = BotSession(bot, journal, pacer=wall_clock(0, stop), should_stop=stop.is_set)
        engine = session.open()
        assert session.reconciliation is not None and not session.reconciliation.degraded
        assert session.run() == "completed"
        # The last orders' answers may still be on their way: let them land, then close.
        deadline = time.monotonic() + 10
        while engine.open_orders() and time.monotonic() < deadline:
            engine.pump()
            time.sleep(0.05)
        engine.pump()
        outcome = session.close("completed")
    finally:
        bot.broker.close()
        journal.close()

    db = sqlite3.connect(journal_path)
    try:
        journal_fills = [r[0] for r in db.execute("SELECT fill_id FROM fills")]
        trades = db.execute("SELECT COUNT(*) FROM trades").fetchone()[0]
        venue_ids = {r[0] for r in db.execute("SELECT venue_order_id FROM order_updates")}
    finally:
        db.close()
    assert trades >= 3, trades
    # Journal = venue: every execution once, nothing missing, nothing invented.
    assert Counter(journal_fills) == Counter(_venue_fills(venue))
    client_ids = Counter(_venue_client_ids(venue))
    assert client_ids and max(client_ids.values()) == 1
    assert venue_ids - {None}, "acks carried the venue's order ids"
    assert outcome.result.fills == len(journal_fills)
