"""UpdateParams on a real bot leaves a trace: the status's config hash follows the params in
force, the journal's ``params_updated`` event holds the new values, and a refused value names
its field once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.service.fakes import no_leaked_server_threads  # noqa: F401
from tests.service.paper_bots import (
    paper_controller,
    paper_manifest,
    served_at_first_bar,
    short_eurusd,
    wait_for_a_bar,
)
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.grpc_server import FIELD_METADATA
from tradefleet_runtime.spec.checks import config_hash


def _manifest(data: Path, params: dict[str, Any]) -> Any:
    return paper_manifest("params-bot", {"name": "ema-cross", "params": params}, data)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return short_eurusd(tmp_path)


@pytest.fixture
def stub(journal: Journal, data: Path) -> Iterator[pb_grpc.RuntimeServiceStub]:
    """The bot at its first bar (the next an hour of wall clock away), behind its gRPC API."""
    controller = paper_controller(_manifest(data, {"fast": 3, "slow": 8}), journal)
    with served_at_first_bar(controller) as served:
        yield served


def _update(stub: pb_grpc.RuntimeServiceStub, params: dict[str, Any]) -> pb.StatusSnapshot:
    request = pb.UpdateParamsRequest(params_json=json.dumps(params), actor="alice")
    answer: pb.StatusSnapshot = stub.UpdateParams(request, timeout=10)
    return answer


def test_the_config_hash_follows_the_params_in_force_and_the_journal_keeps_them(
    stub: pb_grpc.RuntimeServiceStub, journal: Journal, data: Path
) -> None:
    started = stub.GetStatus(pb.GetStatusRequest(), timeout=10).config_hash
    assert started == config_hash(_manifest(data, {"fast": 3, "slow": 8}))

    answer = _update(stub, {"fast": 4, "slow": 10})
    # The hash of the manifest that would start the bot with these params: a rollout of it
    # shows the same hash, anything else a different one.
    changed = config_hash(_manifest(data, {"fast": 4, "slow": 10}))
    assert answer.config_hash == changed != started
    assert stub.GetStatus(pb.GetStatusRequest(), timeout=10).config_hash == changed

    ((message, raw),) = journal.query(
        "SELECT message, data FROM events WHERE kind = ?", "params_updated"
    )
    assert "alice" in message
    event = json.loads(raw)
    assert event["who"].startswith("alice")
    assert event["params"]["fast"] == 4 and event["params"]["slow"] == 10
    assert "allow_short" in event["params"]  # every value in force, defaults too

    assert _update(stub, {"fast": 3, "slow": 8}).config_hash == started


def test_a_refused_param_names_its_field_once(stub: pb_grpc.RuntimeServiceStub) -> None:
    """Regression: ``params.fast: params.fast: Input should be…``."""
    before = stub.GetStatus(pb.GetStatusRequest(), timeout=10).config_hash
    with pytest.raises(grpc.RpcError) as refused:
        _update(stub, {"fast": "quick", "slow": 8})
    error: Any = refused.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = str(error.details())
    assert details.startswith("params.fast: Input should be a valid integer"), details
    assert details.count("params.fast") == 1
    assert details.endswith("(strategy plugin 'ema-cross')")
    assert dict(error.trailing_metadata())[FIELD_METADATA] == "params.fast"
    assert stub.GetStatus(pb.GetStatusRequest(), timeout=10).config_hash == before


def test_an_update_changes_the_params_it_names_and_keeps_the_others(
    stub: pb_grpc.RuntimeServiceStub, journal: Journal, data: Path
) -> None:
    """Regression: a call naming `fast` alone reset every other param to the plugin's default
    (slow 8 became 30; a stop-loss given in the manifest was dropped). Each call merges into
    the params in force, and the whole is checked against the params model: `fast` above the
    `slow` in force is refused."""
    answer = _update(stub, {"fast": 4})
    assert answer.config_hash == config_hash(_manifest(data, {"fast": 4, "slow": 8}))
    answer = _update(stub, {"slow": 12})  # the fast of the call before stays
    assert answer.config_hash == config_hash(_manifest(data, {"fast": 4, "slow": 12}))
    events = [
        json.loads(raw)["params"]
        for (raw,) in journal.query(
            "SELECT data FROM events WHERE kind = ? ORDER BY id", "params_updated"
        )
    ]
    assert [(p["fast"], p["slow"]) for p in events] == [(4, 8), (4, 12)]
    with pytest.raises(grpc.RpcError) as refused:
        _update(stub, {"fast": 20})  # above slow 12 in force
    error: Any = refused.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


def _run_until_a_bar(journal: Journal, data: Path, update: dict[str, Any] | None) -> None:
    controller = paper_controller(_manifest(data, {"fast": 3, "slow": 8}), journal)
    controller.start()
    try:
        wait_for_a_bar(controller)
        if update is not None:
            controller.update_params(update, "alice")
    finally:
        controller.stop()
        controller.wait(20)


def test_a_restart_says_an_update_of_the_run_before_was_not_kept(
    journal: Journal, data: Path
) -> None:
    """An UpdateParams lasts as long as its process: the restarted bot runs the manifest's
    params again, and says so (journaled, logged) with what changed back, not silently."""
    _run_until_a_bar(journal, data, {"fast": 4})
    _run_until_a_bar(journal, data, None)
    ((message, raw),) = journal.query(
        "SELECT message, data FROM events WHERE kind = ?", "params_reverted"
    )
    assert "fast 4 -> 3" in message and "change the manifest" in message
    assert json.loads(raw)["left"]["fast"] == 4 and json.loads(raw)["now"]["fast"] == 3
    _run_until_a_bar(journal, data, None)  # the run before changed nothing: nothing to say
    assert len(journal.query("SELECT 1 FROM events WHERE kind = ?", "params_reverted")) == 1
