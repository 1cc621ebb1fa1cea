"""Admission: every example is accepted; every bad manifest is refused naming its field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from tradefleet_operator import admission
from tradefleet_runtime.capabilities import Capability
from tradefleet_runtime.errors import FieldError
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry, RegisteredPlugin

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "bots").glob("*.yaml"))
BAD = sorted(Path(__file__).with_name("bad_manifests").glob("*.yaml"))


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return admission.default_registry()


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def expectation(path: Path) -> tuple[str, str]:
    """The first line of a bad manifest: ``# expect: <field> | <part of the message>``."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), path
    field, _, message = first.removeprefix("# expect: ").partition(" | ")
    return field.strip(), message.strip()


def test_there_are_examples_and_bad_manifests() -> None:
    assert len(EXAMPLES) >= 3
    names = {path.stem for path in BAD}
    assert {
        "unknown-plugin", "bad-plugin-params", "live-without-confirmation",
        "live-without-credentials", "bad-timeframe", "duplicate-symbols", "unknown-field",
    } <= names  # fmt: skip


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_accepted(path: Path, registry: PluginRegistry) -> None:
    body = load(path)
    body["metadata"].update({"namespace": "default", "uid": "u", "resourceVersion": "1"})
    body["status"] = {"phase": "Running"}
    assert admission.validate_trading_bot(body, registry) == []
    admission.admit(body, registry)  # does not raise
    assert admission.admission_response([], uid="abc")["response"] == {
        "uid": "abc",
        "allowed": True,
    }


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_every_bad_manifest_is_refused_naming_its_field(
    path: Path, registry: PluginRegistry
) -> None:
    field, message = expectation(path)
    body = load(path)
    errors = admission.validate_trading_bot(body, registry)
    assert errors, f"{path.name} was accepted"
    fields = {error.field: error.message for error in errors}
    assert field in fields, errors
    assert message in fields[field]
    text = admission.admission_message(errors, body)
    assert f"{field}: " in text
    assert f"default/{body['metadata']['name']}" in text
    with pytest.raises(kopf.AdmissionError) as refused:
        admission.admit(body, registry)
    assert refused.value.code == 422
    assert field in str(refused.value)


def test_one_round_trip_names_every_wrong_field(registry: PluginRegistry) -> None:
    body = load(EXAMPLES[0])
    body["spec"]["market"]["timeframe"] = "7q"  # refused by the model
    body["spec"]["strategy"]["params"]["fast"] = -1  # refused by the plugin
    body["spec"]["risk"][0]["name"] = "no-such-sizer"  # unknown plugin
    errors = admission.validate_trading_bot(body, registry)
    assert {error.field for error in errors} == {
        "spec.market.timeframe",
        "spec.strategy.params.fast",
        "spec.risk[0].name",
    }
    response = admission.admission_response(errors, uid="u-1", body=body)["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    causes = [cause["field"] for cause in response["status"]["details"]["causes"]]
    assert causes == [error.field for error in errors]
    for error in errors:
        assert error.field in response["status"]["message"]


def test_live_with_a_paper_broker_names_the_broker_too(registry: PluginRegistry) -> None:
    body = load(next(path for path in BAD if path.stem == "live-without-confirmation"))
    fields = {error.field for error in admission.validate_trading_bot(body, registry)}
    assert fields == {"spec.liveConfirmation", "spec.broker.name"}
    body["spec"]["liveConfirmation"] = body["metadata"]["name"]
    errors = admission.validate_trading_bot(body, registry)
    assert [error.field for error in errors] == ["spec.broker.name"]
    assert "cannot serve mode live" in errors[0].message


def test_a_live_bot_on_the_csv_feed_is_refused_at_admission(
    registry: PluginRegistry,
) -> None:
    body = load(next(path for path in BAD if path.stem == "live-without-confirmation"))
    body["spec"]["liveConfirmation"] = body["metadata"]["name"]
    body["spec"]["broker"] = {
        "name": "ccxt",
        "params": {"exchange": "binance"},
        "credentialsSecret": {"name": "keys"},
    }
    body["spec"]["data"] = {"name": "csv", "params": {"path": "x.csv"}}
    fields = [error.field for error in admission.validate_trading_bot(body, registry)]
    assert fields == ["spec.data.params.live_rehearsal"]
    body["spec"]["data"]["params"]["live_rehearsal"] = True
    assert admission.validate_trading_bot(body, registry) == []


def test_not_a_mapping_and_wrong_kind(registry: PluginRegistry) -> None:
    body = load(EXAMPLES[0])
    body["kind"] = "TradingBots"
    assert [e.field for e in admission.validate_trading_bot(body, registry)] == ["kind"]
    body = load(EXAMPLES[0])
    body["spec"] = None
    assert admission.validate_trading_bot(body, registry)


# --- the broker's symbol hook ----------------------------------------------------------------


@dataclass(frozen=True)
class _SpecWithSymbols:
    """A broker PluginSpec declaring the ``knows-symbols`` capability."""

    inner: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def has(self, capability: Capability) -> bool:
        return capability is Capability.KNOWS_SYMBOLS or bool(self.inner.has(capability))

    @staticmethod
    def knows_symbol(params: Any, symbol: str) -> bool:
        if symbol == "BOOM":
            raise RuntimeError("instrument cache not loaded")
        return symbol in {"EURUSD", "GBPUSD"}


def test_symbols_are_checked_when_the_broker_can_say(registry: PluginRegistry) -> None:
    body = load(EXAMPLES[0])
    body["spec"]["market"]["symbols"] = ["EURUSD", "XAUUSD", "BOOM"]
    assert admission.validate_trading_bot(body, registry) == []  # paper knows any symbol

    key = (PluginKind.BROKER, "paper")
    patched = PluginRegistry(
        plugins={
            **registry.plugins,
            key: RegisteredPlugin(_SpecWithSymbols(registry.plugins[key].spec), "test"),  # type: ignore[arg-type]
        }
    )
    errors = admission.validate_trading_bot(body, patched)
    assert errors == [
        FieldError("spec.market.symbols[1]", "broker 'paper' does not know symbol 'XAUUSD'"),
        FieldError(
            "spec.market.symbols[2]",
            "broker 'paper' could not check symbol 'BOOM': instrument cache not loaded",
        ),
    ]
