"""A venue that cannot be reached when a live bot starts is waited for, not crashed on.

The real ``tradefleet serve`` (ccxt broker) against the fake Binance USDⓈ-M answering 503 to
everything, as during an exchange's maintenance. The bot stays in phase Starting, alive and
not ready (``/readyz`` says what it waits for), tries again with a growing wait, and runs —
reconciled — once the venue answers. An emergency stop given meanwhile is taken, and the bot
starts halted. Exiting instead would put a fleet into Kubernetes'
crash-loop back-off and bring it back minutes after the venue. A refusal (wrong credentials)
is not waited out: the bot fails at once, saying why.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest

from tests.e2e.serve_process import ServeProcess, control
from tests.e2e.test_live_ccxt_restart import API_KEY, API_SECRET, _bot
from tests.e2e.test_live_ccxt_restart import fake as fake  # the fake Binance USDⓈ-M fixture
from tests.venues.binance.server import FakeBinance
from tradefleet_runtime.api.v1 import runtime_pb2 as pb


def _http(serve: ServeProcess, path: str) -> tuple[int, dict[str, object]]:
    url = f"http://127.0.0.1:{serve.http_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _until(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s")


def _start(folder: Path, manifest: str, monkeypatch: pytest.MonkeyPatch) -> ServeProcess:
    monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(folder / "keys"))
    return ServeProcess(folder, manifest, speed=1.0).start()


def test_a_venue_down_at_start_is_waited_for_then_the_bot_runs_reconciled(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _bot(tmp_path, fake, "market")
    fake.faults.inject("server_error", status=503, times=None)  # maintenance: every call
    serve = _start(tmp_path, manifest, monkeypatch)
    try:
        _until(lambda: "attempt 2" in serve.output(), 60)  # it tried again, it did not exit
        assert serve.process is not None and serve.process.poll() is None
        status = serve.wait_for(lambda s: True)
        assert status.phase == pb.PHASE_STARTING
        assert not status.broker_connected
        assert status.starting_reason.startswith("waiting for the venue: "), status
        assert "attempt" not in status.starting_reason  # the status changes with the error only
        code, ready = _http(serve, "/readyz")
        assert code == 503
        assert "waiting for the venue" in str(ready["reason"]), ready
        assert _http(serve, "/healthz")[0] == 200  # alive: no restart by the liveness probe
        # A person's emergency stop meanwhile is taken at once, not left to time out nor
        # refused: the bot must not trade when the venue is back.
        asked = time.monotonic()
        status = serve.stub().EmergencyStop(
            pb.EmergencyStopRequest(reason="drill"), metadata=control()
        )
        assert time.monotonic() - asked < 5
        assert status.halted and status.phase == pb.PHASE_STARTING
        # What needs the engine is refused at once, as a state (not an input) error.
        with pytest.raises(grpc.RpcError) as refused:
            serve.stub().ListPositions(pb.ListPositionsRequest(), metadata=control())
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "still starting" in str(refused.value.details())
        fake.faults.clear()  # the venue is back
        status = serve.wait_for(
            lambda s: s.phase == pb.PHASE_HALTED and s.reconciled and s.broker_connected,
            timeout=90,
        )
        assert status.halted and status.starting_reason == ""
        status = serve.stub().Resume(pb.ResumeRequest(reason="drill over"), metadata=control())
        assert status.phase == pb.PHASE_RUNNING and not status.halted
    finally:
        assert serve.terminate() == 0
    # Secrets stay out of what it said while it waited.
    for secret in (API_KEY, API_SECRET):
        assert secret not in serve.output()


def test_stopped_while_it_waits_the_bot_exits_cleanly(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _bot(tmp_path, fake, "market")
    fake.faults.inject("server_error", status=503, times=None)
    serve = _start(tmp_path, manifest, monkeypatch)
    _until(lambda: "waiting for the venue" in serve.output(), 60)
    assert serve.terminate() == 0
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        (status,) = db.execute("SELECT status FROM runs").fetchone()
    finally:
        db.close()
    assert status == "stopped"


def test_refused_credentials_are_not_waited_for(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _bot(tmp_path, fake, "market")
    (tmp_path / "keys" / "apiKey").write_text("NOTAKEY" + "0" * 57)
    serve = _start(tmp_path, manifest, monkeypatch)
    try:
        assert serve.process is not None
        assert serve.process.wait(60) == 1
    finally:
        serve.kill()
    assert "waiting for the venue" not in serve.output()
    assert "refused" in serve.output()
