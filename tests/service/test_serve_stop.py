"""``tradefleet serve`` stopped (SIGTERM) while its live data feed's venue is down.

The ccxt feed retries a venue that does not answer without end (``max_retries`` unset): a stop
must still end the run within the grace period, exit 0 and journal the run as stopped. And if
the engine really does not stop in time, the process exits 1 but the run is journaled as
ended all the same, never left ``running``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from tests.e2e.serve_process import CONTROL_TOKEN, READ_TOKEN

# A feed whose waits never hear the stop: the engine thread cannot stop in time.
DEAF_FEED = textwrap.dedent(
    """
    import sys
    from tradefleet_plugins.feeds import ccxt_feed
    ccxt_feed.CcxtFeed._check_stop = lambda self: None
    from tradefleet_runtime.launcher import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _closed_port() -> int:
    """A local port nothing listens on: every request is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dead_feed_bot(folder: Path) -> Path:
    manifest = folder / "bot.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""
            apiVersion: tradefleet.io/v1alpha1
            kind: TradingBot
            metadata: {{name: deadfeed}}
            spec:
              mode: paper
              strategy: {{name: ema-cross, params: {{fast: 12, slow: 48}}}}
              market: {{symbols: [BTCUSDT], timeframe: 1m}}
              broker: {{name: paper}}
              data:
                name: ccxt
                params:
                  exchange: binance
                  api_url: "http://127.0.0.1:{_closed_port()}"
                  backoff_s: 0.5
                  backoff_max_s: 30
              risk: [{{name: fixed-size, params: {{quantity: 0.01}}}}]
              capital: {{currency: USDT, initial: 10000}}
            """
        )
    )
    auth = folder / "auth"
    auth.mkdir()
    (auth / "control.token").write_text(CONTROL_TOKEN)
    (auth / "read.token").write_text(READ_TOKEN)
    return manifest


def _serve_until_retrying(
    folder: Path, grace: int, *, deaf: bool = False
) -> tuple[subprocess.Popen[str], list[str], Path]:
    manifest = _dead_feed_bot(folder)
    journal = folder / "journal.sqlite"
    args = [
        "serve", str(manifest), "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0",
        "--auth-dir", str(folder / "auth"), "--journal", str(journal), "--grace", str(grace),
    ]  # fmt: skip
    command = (
        [sys.executable, "-c", DEAF_FEED, *args]
        if deaf
        else [str(Path(sys.executable).parent / "tradefleet"), *args]
    )
    process = subprocess.Popen(
        command,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    retrying = threading.Event()

    def read(stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)
            if "load_markets failed" in line:
                retrying.set()

    threading.Thread(target=read, args=(process.stdout,), daemon=True).start()
    threading.Thread(target=read, args=(process.stderr,), daemon=True).start()
    if not retrying.wait(60):
        process.kill()
        raise AssertionError("the feed never retried:\n" + "".join(lines))
    time.sleep(1.0)  # inside the backoff's wait now (at least 0.25 s)
    return process, lines, journal


def _runs(journal: Path) -> list[tuple[str, float | None, str | None]]:
    with sqlite3.connect(journal) as db:
        return db.execute("SELECT status, ended_at, summary FROM runs").fetchall()


def test_sigterm_while_the_feed_retries_a_dead_venue_stops_within_the_grace_period(
    tmp_path: Path,
) -> None:
    process, lines, journal = _serve_until_retrying(tmp_path, grace=10)
    try:
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
        took = time.monotonic() - sent
    finally:
        process.kill()
    time.sleep(0.1)
    output = "".join(lines)
    assert code == 0, output
    assert took < 8, f"stopped after {took:.1f}s"
    assert "did not stop within the grace period" not in output
    [(status, ended_at, _summary)] = _runs(journal)
    assert status == "stopped" and ended_at is not None


def test_an_engine_that_does_not_stop_in_time_still_ends_its_run_in_the_journal(
    tmp_path: Path,
) -> None:
    process, lines, journal = _serve_until_retrying(tmp_path, grace=3, deaf=True)
    try:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    finally:
        process.kill()
    time.sleep(0.1)
    output = "".join(lines)
    assert code == 1, output
    assert "the engine did not stop within the grace period" in output
    [(status, ended_at, summary)] = _runs(journal)
    assert status == "stopped" and ended_at is not None
    assert "did not stop within the grace period" in json.loads(summary)["error"]
    with sqlite3.connect(journal) as db:
        events = db.execute("SELECT kind, message FROM events").fetchall()
    assert ("run_stopped", "stopped: the engine did not stop within the grace period") in events
