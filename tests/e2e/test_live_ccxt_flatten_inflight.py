"""EmergencyStop(flatten) right after a signal's market entry leaves a live bot flat at the venue.

`tradefleet serve` runs a `live` bot (`external-signal`, the `ccxt` broker) against the fake
Binance USDⓈ-M (as in ``test_live_ccxt_halt_restart``). The signal's market buy fills at the
venue at once, but the bot hears of it only from the venue's trades, which answer late here:
the stop's flatten finds nothing held, its cancel of the entry comes too late, and the fill
arrives while the bot is halted. It is closed at market (its stop-loss and take-profit, which
the broker places on the fill, cancelled), and journaled as a further ``flattened`` event.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e import test_live_ccxt_halt_restart as halt_restart
from tests.e2e import test_live_ccxt_restart as restart
from tests.e2e.serve_process import control
from tests.venues.binance.server import FakeBinance
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

# The restart suite's Binance USDⓈ-M account (the fixture under its own name).
fake = restart.fake
_venue_position = halt_restart._venue_position


def _working_at_venue(fake: FakeBinance) -> list[str]:
    """The account's orders still working at the venue, conditional ones included."""
    with fake.state.lock:
        algos = [a.client_algo_id for a in fake.state.usdm.algo_orders.values() if a.is_open]
    return [o.client_order_id for o in fake.orders("usdm") if o.is_open] + algos


def _flattened(folder: Path) -> list[tuple[str, dict[str, object]]]:
    db = sqlite3.connect(folder / "journal.sqlite")
    try:
        rows = db.execute("SELECT message, data FROM events WHERE kind = 'flattened' ORDER BY id")
        return [(str(message), json.loads(data)) for message, data in rows]
    finally:
        db.close()


def test_a_market_entry_filled_after_the_flattens_cancel_is_closed_at_the_venue(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = restart._bot(tmp_path, fake, "market")
    serve = restart._serve(tmp_path, manifest, monkeypatch)
    # The venue's trades answer a second late: the stop comes before the bot hears the fill.
    fake.faults.inject(
        "latency", path="/fapi/v1/userTrades", method="GET", times=None, delay_ms=1000
    )
    entry = restart._signal(serve, restart.PRICE)
    request = pb.EmergencyStopRequest(reason="incident", flatten=True, actor="e2e")
    assert serve.stub().EmergencyStop(request, metadata=control()).halted
    fake.faults.clear()
    [(message, first)] = _flattened(tmp_path)
    assert first["closes"] == [], message  # the race: the flatten found nothing held

    restart._until(lambda: len(_flattened(tmp_path)) == 2)
    restart._until(lambda: _venue_position(fake) == 0.0 and not _working_at_venue(fake))
    status = serve.wait_for(lambda s: s.open_positions == 0 and s.open_orders == 0, timeout=15)
    assert status.halted and status.phase == pb.PHASE_HALTED
    assert serve.terminate() == 0

    assert _venue_position(fake) == 0.0 and not _working_at_venue(fake)
    _, late = _flattened(tmp_path)[1]
    assert late["late_fill"] == entry and late["left"] == []
    closes = late["closes"]
    assert isinstance(closes, list)
    [close] = closes
    statuses = restart._assert_journal_is_the_venue(tmp_path, fake)
    assert (statuses[entry], statuses[close]) == ("filled", "filled")
    # Placed by the broker on the fill, or withheld before: cancelled either way, never left.
    assert (statuses[f"{entry}-sl"], statuses[f"{entry}-tp"]) == ("cancelled", "cancelled")
