"""UpdateParams on an ensemble bot reaches its children: each child's params and confidence
change, the children being the same strategies in the same order. Before, the call was
journaled and hashed as in force while the running children kept their old params. A call
that changes which strategies vote, or gives a child params its model refuses, is refused
naming the field, and nothing changes."""

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
)
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.grpc_server import FIELD_METADATA


def _children(fast: int = 3, confidence: float = 0.8) -> list[dict[str, Any]]:
    return [
        {"name": "ema-cross", "params": {"fast": fast, "slow": 8}, "confidence": confidence},
        {"name": "ema-cross", "params": {"fast": 5, "slow": 13}, "confidence": 0.9},
    ]


PARAMS = {"children": _children(), "quorum": 2, "min_confidence": 0.7}


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[tuple[Any, pb_grpc.RuntimeServiceStub]]:
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    manifest = paper_manifest(
        "ensemble-bot", {"name": "ensemble", "params": PARAMS}, short_eurusd(tmp_path)
    )
    controller = paper_controller(manifest, journal)
    try:
        with served_at_first_bar(controller) as served:
            yield controller, served
    finally:
        journal.close()


def _update(stub: pb_grpc.RuntimeServiceStub, params: dict[str, Any]) -> pb.StatusSnapshot:
    request = pb.UpdateParamsRequest(params_json=json.dumps(params), actor="alice")
    answer: pb.StatusSnapshot = stub.UpdateParams(request, timeout=10)
    return answer


def _running(controller: Any) -> list[tuple[int, float]]:
    """(fast, confidence) of each running child, and the confidence its ballot counts."""
    ensemble = controller._engine().strategy
    ballots = [confidence for confidence, _ in ensemble._ballots]
    children = [(child.params.fast, confidence) for _, child, confidence in ensemble.children]
    assert [confidence for _, confidence in children] == ballots
    return children


def test_an_update_reaches_the_children(bot: tuple[Any, pb_grpc.RuntimeServiceStub]) -> None:
    controller, stub = bot
    assert _running(controller) == [(3, 0.8), (5, 0.9)]
    _update(stub, {"children": _children(fast=4, confidence=0.75)})
    assert _running(controller) == [(4, 0.75), (5, 0.9)]
    assert controller._engine().strategy.params.quorum == 2  # left as it was


@pytest.mark.parametrize(
    ("children", "field", "words"),
    [
        (
            [{"name": "ema-cross", "params": {"fast": 3, "slow": 8}, "confidence": 0.8}] * 3,
            "params",
            "the voting strategies cannot change while the bot runs",
        ),
        (
            [_children()[1], {"name": "macd", "params": {}}],
            "params",
            "the voting strategies cannot change while the bot runs",
        ),
        (
            [{"name": "ema-cross", "params": {"fast": "x", "slow": 8}}, _children()[1]],
            "params.children[0].params.fast",
            "",
        ),
    ],
)
def test_a_refused_update_changes_nothing(
    bot: tuple[Any, pb_grpc.RuntimeServiceStub],
    children: list[dict[str, Any]],
    field: str,
    words: str,
) -> None:
    controller, stub = bot
    before = stub.GetStatus(pb.GetStatusRequest(), timeout=10).config_hash
    with pytest.raises(grpc.RpcError) as refused:
        _update(stub, {"children": children})
    error: Any = refused.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert dict(error.trailing_metadata())[FIELD_METADATA] == field, error.details()
    assert words in str(error.details())
    assert stub.GetStatus(pb.GetStatusRequest(), timeout=10).config_hash == before
    assert _running(controller) == [(3, 0.8), (5, 0.9)]
