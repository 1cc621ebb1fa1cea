"""A person's halt given after a fleet stop survives that fleet's resume (kmock's emulator, the
real operator, a real runtime): the fleet resume lifts its own stop, the operator resumes the
runtime for the spec, the runtime keeps the person's halt (it keeps each halt's holder), and
the fleet resume's report says the bot is left halted. The person's own resume lifts it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.serve_process import ServeProcess, control, ema_bot_manifest
from tests.operator.e2e.conftest import NS, Cluster, Operator, bot_manifest
from tests.operator.e2e.test_runtime import token_secret
from tradefleet_runtime import cli
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

NAME = "btc-desk"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ServeProcess]:
    serve = ServeProcess(tmp_path, ema_bot_manifest(NAME), speed=3600).start()
    try:
        yield serve
    finally:
        serve.kill()


def _halt_reason(cluster: Cluster) -> str:
    status = (cluster.bot(NAME) or {}).get("status") or {}
    return str(status.get("haltReason") or "") if status.get("halted") else ""


def test_a_persons_halt_after_a_fleet_stop_is_left_by_the_fleet_resume(
    cluster: Cluster,
    operator: Operator,
    runtime: ServeProcess,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster.create(token_secret(NAME))
    address = f"127.0.0.1:{runtime.grpc_port}"
    cluster.apply_bot(bot_manifest(NAME, address=address, labels={"team": "a"}))
    cluster.wait(
        lambda: ((cluster.bot(NAME) or {}).get("status") or {}).get("phase") == "Running",
        message="running",
    )
    assert cli.main(["fleet", "stop", "-l", "team=a", "--reason", "desk drill", "-n", NS]) == 0
    runtime.wait_for(lambda s: s.halted, timeout=10, every=0.05)
    # A person's own emergency stop of this bot (``tradefleet stop ADDRESS``).
    stub = runtime.stub()
    request = pb.EmergencyStopRequest(reason="fills look wrong", actor="alice@desk")
    stub.EmergencyStop(request, metadata=control(), timeout=10)
    # The status timer reports both halts (the fleet resume reads the bot's status).
    cluster.wait(lambda: "alice@desk" in _halt_reason(cluster), message="status names alice")
    capsys.readouterr()

    assert cli.main(["fleet", "resume", "-l", "team=a", "-n", NS]) == 0
    out = capsys.readouterr().out
    assert f"{NS}/{NAME}: left halted (its runtime is halted (" in out, out
    assert "a person resumes it (tradefleet resume" in out, out
    assert "0 of 1 bots resumed; 1 left halted" in out, out
    assert (cluster.bot(NAME) or {})["spec"].get("emergencyStop") is None

    # The operator resumed the runtime for the spec (its control says Running) ...
    cluster.wait(
        lambda: (
            (((cluster.bot(NAME) or {}).get("status") or {}).get("control") or {}).get("applied")
            == "Running"
        ),
        message="the operator's resume",
    )
    # ... and the runtime stays halted, by the person's halt alone.
    held = runtime.wait_for(lambda s: "desk drill" not in s.halt_reason, timeout=10)
    assert held.halted and held.halt_reason.startswith("emergency stop by alice@desk (grpc")
    assert held.halt_reason.endswith(": fills look wrong")

    # The person's resume (no holder: every halt) lifts it.
    resume = pb.ResumeRequest(reason="fills checked", actor="alice@desk")
    assert not stub.Resume(resume, metadata=control(), timeout=10).halted
    runtime.wait_for(lambda s: not s.halted and s.phase == pb.PHASE_RUNNING, timeout=10)
