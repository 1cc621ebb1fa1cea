"""UpdateParams takes a value only in its param's JSON type: ``"12"`` for an integer or
``"0.02"`` for a stop-loss is a client's bug, refused by name with nothing applied, where
pydantic's lax mode converted it (``service/param_types.py``). What JSON cannot tell apart
stays accepted: ``1`` for a float, ``12.0`` for an integer (a Struct has only doubles)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import grpc
import pytest
from google.protobuf import struct_pb2
from pydantic import BaseModel, BeforeValidator, field_validator

from tests.service.fakes import no_leaked_server_threads  # noqa: F401
from tests.service.paper_bots import paper_controller, served_at_first_bar, short_eurusd
from tests.service.test_update_params import _manifest
from tradefleet_plugins.strategies.bos_retest_params import BosRetestParams
from tradefleet_plugins.strategies.ema_cross_params import EmaCrossParams
from tradefleet_plugins.strategies.external_signal_params import ExternalSignalParams
from tradefleet_plugins.strategies.fib_atr_params import FibAtrParams
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import PluginParams, parse_timeframe
from tradefleet_runtime.service.grpc_server import FIELD_METADATA
from tradefleet_runtime.service.param_types import TypeMismatch, type_mismatch
from tradefleet_runtime.spec.checks import config_hash

# -- through the gRPC API, on a running ema-cross bot (fast 3, slow 8) -------------------------


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return short_eurusd(tmp_path)


@pytest.fixture
def stub(journal: Journal, data: Path) -> Iterator[pb_grpc.RuntimeServiceStub]:
    """As ``test_update_params``'s: the bot at its first bar, behind its gRPC API."""
    controller = paper_controller(_manifest(data, {"fast": 3, "slow": 8}), journal)
    with served_at_first_bar(controller) as served:
        yield served


def _hash(stub: pb_grpc.RuntimeServiceStub) -> str:
    answer: str = stub.GetStatus(pb.GetStatusRequest(), timeout=10).config_hash
    return answer


def _refusal(stub: pb_grpc.RuntimeServiceStub, request: pb.UpdateParamsRequest) -> Any:
    with pytest.raises(grpc.RpcError) as refused:
        stub.UpdateParams(request, timeout=10)
    error: Any = refused.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    return error


def _struct(params: dict[str, Any]) -> pb.UpdateParamsRequest:
    struct = struct_pb2.Struct()
    struct.update(params)
    return pb.UpdateParamsRequest(params_struct=struct, actor="alice")


def _updates(journal: Journal) -> list[dict[str, Any]]:
    rows = journal.query("SELECT data FROM events WHERE kind = ? ORDER BY id", "params_updated")
    return [json.loads(raw)["params"] for (raw,) in rows]


_A_BOOLEAN = "expected a boolean (true or false)"


@pytest.mark.parametrize(
    ("params", "field", "said"),
    [
        ({"fast": "5"}, "params.fast", "expected an integer, got the string '5'"),
        (
            {"stop_loss_pct": "0.02"},
            "params.stop_loss_pct",
            "expected a number or null, got the string '0.02'",
        ),
        ({"allow_short": "false"}, "params.allow_short", f"{_A_BOOLEAN}, got the string 'false'"),
        ({"allow_short": 0}, "params.allow_short", f"{_A_BOOLEAN}, got the number 0"),
    ],
)
def test_a_value_of_another_json_type_is_refused_by_name_and_nothing_changes(
    stub: pb_grpc.RuntimeServiceStub,
    journal: Journal,
    params: dict[str, Any],
    field: str,
    said: str,
) -> None:
    """Regression: each of these was converted (fast 5, a 2% stop-loss, shorts off) and run."""
    before = _hash(stub)
    error = _refusal(stub, pb.UpdateParamsRequest(params_json=json.dumps(params), actor="al"))
    assert error.details() == f"{field}: {said} (strategy plugin 'ema-cross')"
    assert dict(error.trailing_metadata())[FIELD_METADATA] == field
    assert _hash(stub) == before
    assert _updates(journal) == []


def test_a_string_in_a_struct_is_refused_too(
    stub: pb_grpc.RuntimeServiceStub, journal: Journal
) -> None:
    error = _refusal(stub, _struct({"fast": "5", "slow": 10}))
    assert error.details().startswith("params.fast: expected an integer, got the string '5'")
    assert _updates(journal) == []


def test_one_wrong_value_refuses_the_whole_call(
    stub: pb_grpc.RuntimeServiceStub, journal: Journal
) -> None:
    """``slow`` is fine, ``fast`` is not: neither is applied."""
    before = _hash(stub)
    _refusal(stub, pb.UpdateParamsRequest(params_json='{"slow": 12, "fast": "4"}'))
    assert _hash(stub) == before
    assert _updates(journal) == []


def test_what_json_cannot_tell_apart_is_accepted(
    stub: pb_grpc.RuntimeServiceStub, journal: Journal, data: Path
) -> None:
    """A whole float for an integer (a Struct's every number is a double; JSON Schema calls
    4.0 an integer) and an integer for a float: the params in force are the ints and floats
    the model holds, and the config hash is the manifest's with them."""
    answer = stub.UpdateParams(
        pb.UpdateParamsRequest(params_json='{"fast": 4.0, "slow": 10, "take_profit_pct": 1}'),
        timeout=10,
    )
    assert answer.config_hash == config_hash(
        _manifest(data, {"fast": 4, "slow": 10, "take_profit_pct": 1.0})
    )
    stub.UpdateParams(_struct({"fast": 5.0, "stop_loss_pct": 0.02}), timeout=10)
    first, second = _updates(journal)
    assert (first["fast"], first["slow"], first["take_profit_pct"]) == (4, 10, 1.0)
    assert (second["fast"], second["stop_loss_pct"]) == (5, 0.02)
    assert type(second["fast"]) is int and type(first["take_profit_pct"]) is float


def test_a_fraction_for_an_integer_is_still_refused(stub: pb_grpc.RuntimeServiceStub) -> None:
    error = _refusal(stub, pb.UpdateParamsRequest(params_json='{"fast": 4.5}'))
    assert error.details().startswith("params.fast: Input should be a valid integer")


# -- the check itself, on the built-in strategies' params models -------------------------------


def _mismatch(model: type[BaseModel], in_force: dict[str, Any], call: dict[str, Any]) -> Any:
    model.model_validate({**in_force, **call})  # the lax validation: these all pass it
    return type_mismatch(model, call)


def test_a_value_inside_a_map_or_a_list_is_named_by_its_key_or_index() -> None:
    assert _mismatch(BosRetestParams, {}, {"pip_sizes": {"USDJPY": "0.01"}}) == TypeMismatch(
        ("pip_sizes", "USDJPY"), "expected a number, got the string '0.01'"
    )
    assert _mismatch(FibAtrParams, {}, {"levels": [0.5, "0.618"]}) == TypeMismatch(
        ("levels", 1), "expected a number, got the string '0.618'"
    )


def test_what_json_writes_as_a_string_or_a_list_stays_accepted() -> None:
    """Strict on JSON, not on Python values: an enum's value, a list for a tuple."""
    assert _mismatch(ExternalSignalParams, {}, {"entry_order": "limit"}) is None
    assert _mismatch(FibAtrParams, {}, {"levels": [0.5, 0.618]}) is None
    assert _mismatch(BosRetestParams, {}, {"higher_timeframe": "4h", "expiry_bars": 12.0}) is None
    assert _mismatch(EmaCrossParams, {}, {"stop_loss_pct": None, "take_profit_pct": 2}) is None


def test_only_the_callers_values_are_judged() -> None:
    """A manifest's quoted ``fast: "3"`` is in force (manifests convert): a call naming only
    ``slow`` is not refused for it, and ``slow`` is still checked against fast 3."""
    assert _mismatch(EmaCrossParams, {"fast": "3"}, {"slow": 9}) is None
    assert _mismatch(EmaCrossParams, {"fast": "3"}, {"slow": "9"}) == TypeMismatch(
        ("slow",), "expected an integer, got the string '9'"
    )


class _Either(BaseModel):
    level: float | list[float] = 0.0


def test_a_union_names_each_type_it_takes_and_a_long_string_is_cut() -> None:
    assert _mismatch(_Either, {}, {"level": "0.5"}) == TypeMismatch(
        ("level",), "expected a number or a list, got the string '0.5'"
    )
    # The deepest place: the list's item, not the list the float member refused.
    assert _mismatch(_Either, {}, {"level": [1, "2"]}) == TypeMismatch(
        ("level", 1), "expected a number, got the string '2'"
    )
    long = "0.02" + "0" * 100  # a 2% stop-loss to lax mode
    message = _mismatch(EmaCrossParams, {}, {"stop_loss_pct": long}).message
    assert message == f"expected a number or null, got the string '{long[:40]}…'"


class _Count(BaseModel):
    count: int = 0


def test_a_whole_float_is_an_integer_only_where_a_double_holds_every_integer() -> None:
    """As the Struct conversion: 2**53 - 1 is exact, 2**53 may be 2**53 + 1 rounded."""
    assert _mismatch(_Count, {}, {"count": float(2**53 - 1)}) is None
    assert _mismatch(_Count, {}, {"count": float(2**53)}) == TypeMismatch(
        ("count",), "expected an integer, got the number 9007199254740992.0"
    )


class _Converting(PluginParams):
    """A plugin that takes a duration as "1h" on purpose, for one field each way."""

    period_s: int = 3600
    window_s: Annotated[int, BeforeValidator(lambda value: _seconds(value))] = 60
    bars: int = 10

    @field_validator("period_s", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return _seconds(value)


def _seconds(value: object) -> object:
    return parse_timeframe(value) if isinstance(value, str) else value


def test_a_field_its_plugin_converts_on_purpose_is_not_judged() -> None:
    """The SDK's own before-validator (no booleans as numbers) only checks: ``bars`` is still
    judged."""
    assert _mismatch(_Converting, {}, {"period_s": "1h", "window_s": "1m"}) is None
    assert _mismatch(_Converting, {}, {"bars": "12"}) == TypeMismatch(
        ("bars",), "expected an integer, got the string '12'"
    )
