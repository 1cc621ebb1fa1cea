"""A live bot's stop policy cancels the working entry it adopted at a restart, and says only
what the venue confirmed.

`tradefleet serve` runs a `live` bot (`external-signal`, the `ccxt` broker) against the fake
Binance spot in this process. Its limit entry rests below the market; the process is SIGKILLed
and started again (start-up reconciliation adopts the entry), then SIGTERMed with the default
``onStop`` (``cancelOpenOrders: true``). The venue's broker answers a cancel later, as an event:
the stop waits for it, so the entry is cancelled at the venue and journaled so before the
process exits; a cancel the venue never answers is journaled as not confirmed, by id.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import test_live_ccxt_restart as restart
from tests.e2e.serve_process import ServeProcess
from tests.venues.binance.server import FakeBinance

SYMBOL = "BTC/USDT"
PRICE = 50_000.0
CANCEL_PATH = "/api/v3/order"


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    venue = FakeBinance().start()
    venue.add_account(restart.API_KEY, restart.API_SECRET, spot={"USDT": 100_000})
    venue.api_key = restart.API_KEY
    venue.set_price("BTCUSDT", PRICE, market="spot")
    try:
        yield venue
    finally:
        venue.stop()


def _venue_status(fake: FakeBinance, client_order_id: str) -> str:
    with fake.state.lock:
        statuses = [
            str(o.status) for o in fake.orders("spot") if o.client_order_id == client_order_id
        ]
    assert len(statuses) == 1, statuses
    return statuses[0]


def _journal_status(folder: Path, client_order_id: str) -> str | None:
    db = sqlite3.connect(folder / "journal.sqlite")
    try:
        row = db.execute(
            "SELECT status FROM order_updates WHERE client_order_id = ? ORDER BY id DESC",
            (client_order_id,),
        ).fetchone()
    finally:
        db.close()
    return None if row is None else str(row[0])


def _stopped_event(folder: Path) -> tuple[str, dict[str, Any]]:
    db = sqlite3.connect(folder / "journal.sqlite")
    try:
        rows = db.execute("SELECT message, data FROM events WHERE kind = 'stopped'").fetchall()
    finally:
        db.close()
    assert rows, "no stopped event"
    message, data = rows[-1]
    return str(message), json.loads(data or "{}")


def _adopted_resting_entry(
    folder: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> tuple[ServeProcess, str]:
    """A limit entry rests below the market; the bot is SIGKILLed and started again, and the
    restart adopts the entry from the venue: the running bot and the entry's id."""
    manifest = restart._bot(
        folder, fake, "limit", symbol=SYMBOL, exchange="binance", market_type="spot"
    )
    serve = restart._serve(folder, manifest, monkeypatch)
    order_id = restart._signal(serve, PRICE * 0.99, symbol=SYMBOL)
    serve.wait_for(lambda s: s.open_orders == 1)
    restart._until(lambda: _journal_status(folder, order_id) == "open")
    assert serve.process is not None
    serve.process.send_signal(signal.SIGKILL)
    serve.process.wait(10)
    serve.kill()
    again = restart._serve(folder, manifest, monkeypatch)
    again.wait_for(lambda s: s.open_orders == 1)
    assert _venue_status(fake, order_id) == "NEW"
    return again, order_id


def test_sigterm_cancels_the_entry_adopted_at_restart_at_the_venue_and_journals_it(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve, order_id = _adopted_resting_entry(tmp_path, fake, monkeypatch)

    assert serve.terminate() == 0

    # Cancelled at the venue before the process exited (not a request left in flight) ...
    assert _venue_status(fake, order_id) == "CANCELED"
    # ... and the journal holds the venue's word, as its stop event says.
    assert _journal_status(tmp_path, order_id) == "cancelled"
    message, data = _stopped_event(tmp_path)
    assert message.endswith("resting orders cancelled"), message
    assert data["cancel_unconfirmed"] == []
    assert data["open_orders"] == []


def test_a_cancel_the_venue_never_answers_is_journaled_as_not_confirmed(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve, order_id = _adopted_resting_entry(tmp_path, fake, monkeypatch)
    # Every cancel hangs past the stop's wait: the venue never confirms it.
    fake.faults.inject("timeout", path=CANCEL_PATH, method="DELETE", times=None, hold_s=30)

    assert serve.terminate() == 0

    assert _venue_status(fake, order_id) == "NEW"
    assert _journal_status(tmp_path, order_id) == "open"
    message, data = _stopped_event(tmp_path)
    assert "resting orders cancelled" not in message, message
    assert "NOT confirmed" in message and order_id in message, message
    assert data["cancel_unconfirmed"] == [order_id]
    assert data["open_orders"] == [order_id]
