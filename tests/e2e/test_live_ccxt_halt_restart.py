"""An emergency stop with flatten outlives a SIGKILL of a live bot on a real venue's API.

`tradefleet serve` runs a `live` bot against the fake Binance USDⓈ-M (as in
``test_live_ccxt_restart``). The bot holds a position with its stop-loss and take-profit at the
venue; EmergencyStop(flatten) cancels them and sends the close, which the venue holds unanswered
and unexecuted; the process is killed. The restarted bot is still halted and, once reconciled
with the venue, finishes the flatten: the position is not left open without its stop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import test_live_ccxt_restart as restart
from tests.e2e.serve_process import ServeProcess, control
from tests.venues.binance.server import FakeBinance
from tradefleet_runtime.api.v1 import runtime_pb2 as pb


@pytest.fixture(name="fake")
def _fake() -> Iterator[FakeBinance]:
    venue = FakeBinance().start()
    venue.add_account(restart.API_KEY, restart.API_SECRET, futures={"USDT": 1_000_000})
    venue.api_key = restart.API_KEY
    venue.set_price(restart.VENUE_SYMBOL, restart.PRICE, market="usdm")
    try:
        yield venue
    finally:
        venue.stop()


def _venue_position(fake: FakeBinance) -> float:
    with fake.state.lock:
        position = fake.account(restart.API_KEY).positions.get(restart.VENUE_SYMBOL)
        return float(position.amount) if position is not None else 0.0


def _events(folder: Path) -> list[str]:
    db = sqlite3.connect(folder / "journal.sqlite")
    try:
        return [str(kind) for (kind,) in db.execute("SELECT kind FROM events ORDER BY id")]
    finally:
        db.close()


def test_a_flatten_killed_while_the_venue_held_its_close_is_finished_after_the_restart(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = restart._bot(tmp_path, fake, "market")
    serve = restart._serve(tmp_path, manifest, monkeypatch)
    entry = restart._signal(serve, restart.PRICE)
    bracket = {f"{entry}-sl", f"{entry}-tp"}
    restart._until(lambda: bracket <= set(restart._venue_client_ids(fake)))
    restart._until(lambda: restart._journal(tmp_path)[1].get(f"{entry}-tp") == "open")
    assert _venue_position(fake) == pytest.approx(0.01)

    # The closing market order hangs at the venue, unexecuted; the bot dies meanwhile.
    fake.faults.inject("timeout", path="/fapi/v1/order", method="POST", hold_s=30)
    sent = len(fake.order_requests("usdm"))
    request = pb.EmergencyStopRequest(reason="incident", flatten=True, actor="e2e")
    assert serve.stub().EmergencyStop(request, metadata=control()).halted
    restart._until(lambda: len(fake.order_requests("usdm")) > sent)
    restart._kill(serve)
    fake.faults.clear()
    assert _venue_position(fake) == pytest.approx(0.01)  # still long, its stop cancelled

    again = ServeProcess(tmp_path, manifest, speed=1.0).start()
    try:
        status = again.wait_for(lambda s: s.reconciled and s.open_positions == 0, timeout=30)
        assert status.halted and status.phase == pb.PHASE_HALTED
        restart._until(lambda: _venue_position(fake) == 0.0)
    finally:
        assert again.terminate() == 0
    statuses = restart._assert_journal_is_the_venue(tmp_path, fake)
    closes = [i for i in statuses if i not in bracket and i != entry]
    # The first close never reached the venue (closed, not re-sent); the restart's filled.
    assert sorted(statuses[i] for i in closes) == ["cancelled", "filled"]
    kinds = _events(tmp_path)
    last_run = kinds[len(kinds) - 1 - kinds[::-1].index("run_started") :]
    assert last_run.index("reconciled") < last_run.index("flattened")
    assert "flattened for the emergency stop by" in again.output()
