"""A live bot killed while it waits for its next candle resumes after the bar it handled: it
never hands that bar to the strategy again.

Found in a walkthrough of docs/live-crypto.md and docs/operations.md ("Disruptions", item 3):
a 1m ema-cross bot on the fake Binance spot bought 0.08333 BTC at a cross and was killed (-9)
25 s later. At its restart it bought 0.08328 BTC more (``cross-up``, a new client id), cancelled
the first entry's OCO stop-loss and take-profit, and held 0.16643 BTC with a stop for 0.08319.

Why: the engine journals a bar's equity snapshot (what a restart read the last handled bar
from) only when the next bar comes, so for a whole bar the journal said the bar was not handled.
The restart gave it to the strategy again; the id check (``order_known``) holds when the
strategy repeats its intents, but it now saw the position it had opened: ``ctx.close`` cancelled
the bracket and took the known id (skipped), and the buy took the next id, new, and was sent.
Now each handled bar is marked in the journal when the engine asks for the next one
(``Journal.record_bar_handled``).

The crash is simulated as in tests/runtime/test_halt_after_crash.py: the process dies (a
BaseException out of the feed) while it waits for the next bar, then the journal is closed.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.brokers.harness import BOT, SYMBOL, VenueHarness, harness_for
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

HOUR = 3600


class _Killed(BaseException):
    """SIGKILL while the bot waits for its next candle."""


def _manifest(folder: Path, harness: VenueHarness) -> Path:
    (folder / "btc.csv").write_text("timestamp,open,high,low,close,volume\n")
    path = folder / "bot.yaml"
    path.write_text(
        f"""
apiVersion: tradefleet.io/v1alpha1
kind: TradingBot
metadata: {{name: {BOT}}}
spec:
  mode: live
  liveConfirmation: {BOT}
  strategy:
    name: ema-cross
    params: {{fast: 2, slow: 3, allow_short: false, stop_loss_pct: 0.02}}
  market: {{symbols: ["{SYMBOL}"], timeframe: 1h}}
  broker:
    name: ccxt
    credentialsSecret: {{name: {BOT}-keys}}
    params:
      exchange: binance
      market_type: spot
      api_url: {harness.fake.url}
      poll_interval_s: 0.05
      timeout_ms: 1500
      rate_limit_ms: 10
  data: {{name: csv, params: {{path: {folder / "btc.csv"}, live_rehearsal: true}}}}
  risk:
    - name: fixed-size
      params: {{quantity: 0.01}}
  capital: {{currency: USDT, initial: 10000}}
"""
    )
    return path


def _drain(session: BotSession) -> None:
    """The bot's market orders filled, their fills applied and the brackets placed."""
    engine = session.engine
    assert engine is not None
    deadline = time.monotonic() + 10.0
    while True:
        engine.pump()
        engine.send_queued()
        entries = [o for o in engine.open_orders() if not o.reduce_only]
        if not entries:
            return
        assert time.monotonic() < deadline, "an order did not fill"
        time.sleep(0.02)


def _life(folder: Path, harness: VenueHarness, bars: list[Bar], killed: bool) -> float:
    """One life of the bot on ``bars``; ``killed``: it dies waiting for the bar after them."""
    bot = assemble(load_manifest(_manifest(folder, harness)), PluginRegistry.discover(), folder)
    journal = Journal(folder / "bot.sqlite", durable=True)
    session = BotSession(bot, journal, bars=bars, should_stop=threading.Event().is_set)

    def pace(released: Iterable[Bar]) -> Iterator[Bar]:
        for bar in released:
            _drain(session)
            yield bar
        _drain(session)
        time.sleep(0.5)  # the brackets' acks
        _drain(session)
        if killed:
            raise _Killed

    session.pacer = pace
    try:
        engine = session.open()
        try:
            session.run()
        except _Killed:
            return engine.position(SYMBOL).quantity
        session.close("completed")
        return engine.position(SYMBOL).quantity
    finally:
        bot.broker.close()
        journal.close()


def test_a_bot_killed_before_its_next_candle_does_not_enter_twice_at_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = (int(time.time()) // HOUR - 8) * HOUR
    closes = [50_000.0, 50_000.0, 50_000.0, 49_000.0, 51_000.0]  # a cross up at the last bar
    bars = [Bar(SYMBOL, HOUR, start + i * HOUR, c, c, c, c, 1.0) for i, c in enumerate(closes)]
    with harness_for("binance-spot", tmp_path, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(harness.credentials))
        harness.broker.close()  # the bot brings its own broker
        first = _life(tmp_path, harness, bars, killed=True)
        assert first > 0.0, "the cross-up bar opened the position"
        buys_before = _market_buys(harness)
        assert len(buys_before) == 1
        second = _life(tmp_path, harness, bars, killed=False)
        buys = _market_buys(harness)
        # The cross-up bar was handled before the kill: its buy must not go out again.
        assert buys == buys_before, f"a second entry was sent at the restart: {buys}"
        assert second == pytest.approx(first)
        stops = [
            o
            for o in harness.fake.orders("spot")
            if o.client_order_id.endswith("-sl") and o.status in ("NEW", "PARTIALLY_FILLED")
        ]
        assert sum(float(o.orig_qty) for o in stops) == pytest.approx(second), (
            "the position must keep a stop-loss for all of it at the venue"
        )


def _market_buys(harness: VenueHarness) -> list[str]:
    return [
        str(r.params.get("newClientOrderId"))
        for r in harness.fake.order_requests("spot")
        if r.params.get("side") == "BUY" and r.params.get("type") == "MARKET"
    ]


# --- the journal's mark, alone ------------------------------------------------------------------


def _run(journal: Journal, run_id: str) -> None:
    journal.start_run(
        run_id=run_id,
        bot=BOT,
        mode="live",
        currency="USDT",
        initial_capital=1000.0,
        timeframe_s=HOUR,
        config_hash="h",
        manifest={},
    )


def test_a_restart_resumes_after_the_last_timestamp_marked_handled(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    try:
        _run(journal, "r1")
        stamps, zeros = array("q", [HOUR, 2 * HOUR]), array("d", [0.0, 0.0])
        journal.record_equity(stamps, array("d", [1.0, 1.0]), zeros)
        journal.record_bar_handled(3 * HOUR)  # handled; its snapshot waits for the next one
        _run(journal, "r2")
        journal.record_bar_handled(HOUR)  # an older mark of a later run moves nothing back
    finally:
        journal.close()
    restarted = Journal(tmp_path / "j.sqlite", durable=True)
    try:
        _run(restarted, "r3")
        restarted.record_bar_handled(9 * HOUR)  # the run's own: not an earlier one's
        state = restarted.carried_state(BOT)
        assert state is not None and state.last_bar_ts == 3 * HOUR
    finally:
        restarted.close()


def test_each_handled_bar_is_marked_and_a_bar_the_bot_stopped_before_is_not(
    tmp_path: Path,
) -> None:
    """Through a paper session: the marks follow the bars the engine handled; the bar at which
    ``should_stop`` ended the run (a new timestamp's first) was never handled."""
    bars = [Bar(SYMBOL, HOUR, i * HOUR, 1.0, 1.0, 1.0, 1.0, 1.0) for i in range(1, 12)]
    manifest = tmp_path / "paper.yaml"
    manifest.write_text(_paper_manifest(tmp_path))
    bot = assemble(load_manifest(manifest), PluginRegistry.discover(), tmp_path)
    journal = Journal(tmp_path / "paper.sqlite", durable=True)
    marks: list[int] = []
    seen: list[int] = []
    record = journal.record_bar_handled

    def marked(close_ts: int) -> None:
        marks.append(close_ts)
        record(close_ts)

    journal.record_bar_handled = marked  # type: ignore[method-assign]
    stop = threading.Event()

    def pace(released: Iterable[Bar]) -> Iterator[Bar]:
        for bar in released:
            seen.append(bar.ts)
            if len(seen) == 4:
                stop.set()  # the engine stops at this bar, a new timestamp, before handling it
            yield bar

    session = BotSession(bot, journal, bars=bars, should_stop=stop.is_set)
    session.pacer = pace
    try:
        session.open()
        assert session.run() == "stopped"
        session.close("stopped")
    finally:
        journal.close()
    handled = [ts + HOUR for ts in seen[:3]]
    assert marks == handled


def test_a_backtest_marks_nothing(tmp_path: Path) -> None:
    """A backtest restarts from its first bar: it pays no write a bar for a mark."""
    (tmp_path / "bars.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(f"{i * HOUR},1,1,1,1,1\n" for i in range(1, 12))
    )
    manifest = _paper_manifest(tmp_path).replace("mode: paper", "mode: backtest")
    manifest += f"  data: {{name: csv, params: {{path: {tmp_path / 'bars.csv'}}}}}\n"
    (tmp_path / "bt.yaml").write_text(manifest)
    bot = assemble(load_manifest(tmp_path / "bt.yaml"), PluginRegistry.discover(), tmp_path)
    journal = Journal(tmp_path / "bt.sqlite")
    try:
        session = BotSession(bot, journal)
        session.close(session.run())
        assert journal.query("SELECT COUNT(*) FROM equity_chunks")[0][0] > 0
        assert journal.query("SELECT key FROM meta WHERE key LIKE 'bar_handled:%'") == []
    finally:
        journal.close()


def _paper_manifest(folder: Path) -> str:
    return f"""
apiVersion: tradefleet.io/v1alpha1
kind: TradingBot
metadata: {{name: {BOT}}}
spec:
  mode: paper
  strategy: {{name: ema-cross, params: {{fast: 2, slow: 3}}}}
  market: {{symbols: ["{SYMBOL}"], timeframe: 1h}}
  broker: {{name: paper}}
  capital: {{currency: USDT, initial: 10000}}
"""
