"""The CRD's status schema is generated from the status model and holds every key written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from tests.operator.pruning import prune
from tradefleet_operator import crd
from tradefleet_operator.names import Control, Phase
from tradefleet_operator.snapshot import RiskState, RuntimeSnapshot
from tradefleet_operator.status_mapping import (
    reachable_status,
    set_condition,
    status_changes,
    unreachable_status,
)
from tradefleet_operator.status_model import BotStatus, ControlStatus, RiskLockReset
from tradefleet_operator.steering import Steered

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-01-01T00:00:00Z"


def _paths(value: Any, path: str = "") -> set[str]:
    """Every key path of a JSON value, lists as ``[]`` (``riskLocks[].plugin``)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            found.add(f"{path}.{key}")
            found |= _paths(sub, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            found |= _paths(item, f"{path}[]")
    return found


def _every_status_the_operator_writes() -> list[BotStatus]:
    """A status from each way the handlers make one, with every optional part present."""
    locked = RiskState("daily-loss", locked=True, reason="-5%")
    snapshot = RuntimeSnapshot(
        phase=Phase.HALTED, equity=1.0, balance=1.0, currency="USD", pnl_today=1.0,
        pnl_total=1.0, drawdown_pct=1.0, open_positions=1, open_orders=1, last_bar_ts=1,
        halted=True, halt_reason="x", paused=True, pause_reason="y", broker_connected=True,
        config_hash="h", risk=(locked,),
    )  # fmt: skip
    reached = reachable_status(BotStatus(), snapshot, 2, NOW)
    steered = Steered(
        ControlStatus(applied=Control.HALTED, generation=2),
        RiskLockReset(request="a: b", result="done"),
    ).apply(reached)
    reconciled = steered.model_copy(
        update={
            "observed_generation": 2,
            "config_hash": "c",
            "symbols": "EURUSD,GBPUSD",
            "conditions": set_condition(steered.conditions, "Reconciled", True, "UpToDate",
                                        "ok", 2, NOW),
        }
    )  # fmt: skip
    lost = unreachable_status(reconciled, "UNAVAILABLE", 2, NOW)
    # A roll held for a missing credentials Secret (handlers.held_secret): the pod's Secret.
    held = reconciled.model_copy(update={"credentials_secret_in_use": "keys"})
    return [reached, steered, reconciled, lost, held]


def test_every_key_the_operator_writes_is_in_the_generated_status_schema() -> None:
    schema = crd.status_schema()
    known = {path for path, _ in crd.walk_schemas(schema)}
    written: set[str] = set()
    for status in _every_status_the_operator_writes():
        written |= _paths(status_changes({}, status))
    assert written - known == set(), "the API server would prune these"
    # Every field of the model is written by some path (no dead schema).
    assert {f".{key}" for key in BotStatus().wire()} <= written


def test_the_committed_crd_goes_stale_when_a_status_field_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert crd.stale_files(ROOT) == []

    class Grown(BotStatus):
        extra_field: str | None = Field(default=None, description="A field added later.")

    monkeypatch.setattr(crd, "BotStatus", Grown)
    assert "extraField" in crd.status_schema()["properties"]
    assert len(crd.stale_files(ROOT)) == len(crd.OUTPUTS)


def test_status_fields_the_api_server_pruned_are_kept_and_not_rewritten() -> None:
    """Issue 19, item 2: the server pruned control, currency, openOrders, pauseReason, paused,
    runtimeConfigHash and riskLockReset, so each bot was re-patched every tick. Through a
    pruning counterpart every written field survives, and writing the same status again
    sends nothing."""
    schema = crd.status_schema()
    for status in _every_status_the_operator_writes():
        written = status_changes({}, status)
        stored = prune(written, schema)
        assert stored == written, "the API server would drop some of these"
        assert status_changes(stored, status) == {}, "an unchanged bot would be re-patched"
    everything = _every_status_the_operator_writes()[2].wire()
    for field in ("control", "currency", "openOrders", "pauseReason", "paused",
                  "runtimeConfigHash", "riskLockReset", "symbols"):  # fmt: skip
        assert field in prune(everything, schema), field
