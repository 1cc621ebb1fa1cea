"""Upgrading the operator leaves an unchanged bot alone: same ``bot.yaml``, same config hash.

A bot pinned to an older runtime (``spec.runtime.image``) must keep running across an operator
upgrade (docs/install.md, "Upgrading"). Its runtime refuses any field it does not know, and its
pod rolls when the ``tradefleet.io/config-hash`` annotation changes, so neither ``bot.yaml`` nor
the hash may move because a release added an optional field. Both carry only the fields off
their defaults (``tradefleet_runtime.spec.checks.spec_document``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field

from tradefleet_operator import objects
from tradefleet_operator.bot_api import TradingBot
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.spec.checks import config_hash as runtime_config_hash
from tradefleet_runtime.spec.checks import spec_document
from tradefleet_runtime.spec.model import (
    BotManifest,
    BotSpec,
    BrokerRef,
    JournalStorage,
    RuntimeSpec,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples/bots").glob("*.yaml")) + sorted(
    (ROOT / "manifests/examples").glob("*.yaml")
)
CRD = ROOT / "charts/tradefleet/crds/tradingbots.tradefleet.io.yaml"
PINNED = "ghcr.io/tradefleet/runtime:0.1.0"

# The config hash of each example's spec, pinned. An operator release that changes one rolls
# every such bot's pod on upgrade (and a pinned runtime with it): change these only with a
# release note saying so. A release that adds an optional field must leave them as they are.
PINNED_HASHES = {
    "examples/bots/btcusd-ema-cross.yaml": "749aecf9c6cbd9e1",
    "examples/bots/eurusd-ema-cross.yaml": "12f9d78c5c0d5136",
    "examples/bots/eurusd-paper.yaml": "28374992c15bade5",
    "manifests/examples/btcusd-ema-cross.yaml": "345348c355828118",
    "manifests/examples/eurusd-ema-cross.yaml": "b0e8f592f1045617",
    "manifests/examples/eurusd-paper.yaml": "d5f192f024dae38b",
    "pinned eurusd-paper": "6d3a418d73aedd13",
    "rich": "6bcb11fd73f2827d",
}


def _body(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(path.read_text())
    body["metadata"].update({"namespace": "trading", "uid": "u1", "generation": 1})
    return body


def _pinned() -> dict[str, Any]:
    """The example paper bot on an older runtime: the case the upgrade broke."""
    body = _body(ROOT / "examples/bots/eurusd-paper.yaml")
    body["spec"]["runtime"] = {"image": PINNED}
    return body


def _rich() -> dict[str, Any]:
    """A spec off its defaults in many places, nested models and lists included."""
    body = _pinned()
    body["spec"].update(
        {
            "mode": "live",
            "liveConfirmation": "eurusd-paper",
            "capital": {"currency": "EUR", "initial": 2500},
            "quality": {"window": 80, "slippageBps": {"max": 3.5}},
            "onStop": {"cancelOpenOrders": False, "flattenPositions": True},
        }
    )
    body["spec"]["broker"].update({"credentialsSecret": {"name": "keys"}})
    body["spec"]["runtime"].update(
        {
            "webhook": True,
            "webhookAllow": ["203.0.113.0/24"],
            "replaySpeed": 0,
            "journal": {"size": "5Gi", "storageClassName": "fast"},
            "imagePullSecrets": [{"name": "pull"}],
            "tolerations": [{"key": "trading", "operator": "Exists"}],
        }
    )
    return body


BODIES = {str(path.relative_to(ROOT)): _body(path) for path in EXAMPLES} | {
    "pinned eurusd-paper": _pinned(),
    "rich": _rich(),
}


def _bot(body: dict[str, Any]) -> TradingBot:
    return TradingBot.parse(copy.deepcopy(body))


def _bot_yaml(body: dict[str, Any]) -> dict[str, Any]:
    """``bot.yaml`` as the runtime reads it from the ConfigMap."""
    loaded: dict[str, Any] = yaml.safe_load(objects.render_config(objects.bot_config(_bot(body))))
    return loaded


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> set[tuple[str | int, ...]]:
    """Every mapping key of ``value``, as its path (list items by index)."""
    found: set[tuple[str | int, ...]] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            found.add((*prefix, key))
            found |= _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            found |= _paths(sub, (*prefix, index))
    return found


def _with_crd_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """What the API server stores of ``value``: each ``default:`` of the CRD's structural
    schema filled in where its field is absent and its parent object present, at every depth."""
    if isinstance(value, dict) and "properties" in schema:
        filled = dict(value)
        for key, sub in schema["properties"].items():
            if key not in filled and "default" in sub:
                filled[key] = copy.deepcopy(sub["default"])
            if key in filled:
                filled[key] = _with_crd_defaults(filled[key], sub)
        return filled
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_with_crd_defaults(item, schema["items"]) for item in value]
    return value


def _spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


# A later release that only adds optional fields, at three depths (a model in a model in the
# spec), each with a default as new fields come (a value, a list, a nested model).
class _LaterJournal(JournalStorage):
    compress: bool = Field(default=False)


class _LaterRuntime(RuntimeSpec):
    journal: _LaterJournal = Field(default_factory=_LaterJournal)
    webhook_rate_limit: list[str] = Field(default_factory=list)


class _LaterBroker(BrokerRef):
    sandbox: bool = Field(default=False)


class _LaterSpec(BotSpec):
    runtime: _LaterRuntime = Field(default_factory=_LaterRuntime)
    broker: _LaterBroker = Field(default_factory=lambda: _LaterBroker(name="paper"))
    notes: str = Field(default="")


class _LaterManifest(BotManifest):
    spec: _LaterSpec


@pytest.mark.parametrize("name", sorted(PINNED_HASHES))
def test_an_unchanged_spec_keeps_its_config_hash(name: str) -> None:
    assert objects.config_hash(_bot(BODIES[name])) == PINNED_HASHES[name]


@pytest.mark.parametrize("name", sorted(BODIES))
def test_bot_yaml_carries_only_what_the_spec_says(name: str) -> None:
    body = BODIES[name]
    document = _bot_yaml(body)
    written = _paths(body["spec"])
    # Nothing the user did not write: an older runtime reads it for any spec it could take.
    assert _paths(document["spec"]) <= written


def test_a_pinned_bot_gets_no_field_newer_than_its_spec() -> None:
    document = _bot_yaml(BODIES["pinned eurusd-paper"])
    assert document["spec"]["runtime"] == {"image": PINNED}
    assert "adoptVenuePositions" not in document["spec"]["broker"]


@pytest.mark.parametrize("name", sorted(BODIES))
def test_bot_yaml_loads_back_into_the_same_spec(name: str) -> None:
    bot = _bot(BODIES[name])
    loaded = parse_manifest(_bot_yaml(BODIES[name]))
    # Nothing is lost by leaving the defaults out: the runtime rebuilds them.
    assert loaded.spec == bot.spec
    assert loaded.metadata.name == bot.name
    # And the runtime reports the operator's hash (a bot neither paused nor halted).
    assert runtime_config_hash(loaded) == objects.config_hash(bot)


@pytest.mark.parametrize("name", sorted(BODIES))
def test_the_crd_defaults_the_api_server_fills_in_change_nothing(name: str) -> None:
    body = BODIES[name]
    stored = copy.deepcopy(body)
    stored["spec"] = _with_crd_defaults(body["spec"], _spec_schema())
    # webhookTrustForwardedFor has a CRD default: a stored pinned bot has it "set" although its
    # author never wrote it (so the fields the user set are not what bot.yaml may carry).
    if name.startswith("pinned"):
        assert stored["spec"]["runtime"]["webhookTrustForwardedFor"] is False
    assert _bot_yaml(stored) == _bot_yaml(body)
    assert objects.config_hash(_bot(stored)) == objects.config_hash(_bot(body))


@pytest.mark.parametrize("name", sorted(BODIES))
def test_a_release_that_adds_optional_fields_keeps_bot_yaml_and_hash(name: str) -> None:
    spec = copy.deepcopy(BODIES[name]["spec"])
    body: dict[str, Any] = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": BODIES[name]["metadata"]["name"]},
    }
    now = BotManifest.model_validate({**body, "spec": spec})
    later = _LaterManifest.model_validate({**body, "spec": spec})
    assert spec_document(later.spec) == spec_document(now.spec)
    assert runtime_config_hash(later) == runtime_config_hash(now)
    # This release's runtime (the older one, to that later operator) reads its document.
    assert parse_manifest({**body, "spec": spec_document(later.spec)}).spec == now.spec


def test_a_default_written_out_is_the_same_config() -> None:
    body = BODIES["pinned eurusd-paper"]
    explicit = copy.deepcopy(body)
    explicit["spec"]["runtime"].update({"webhookAllow": [], "replaySpeed": 1.0})
    explicit["spec"]["broker"]["adoptVenuePositions"] = False
    assert _bot_yaml(explicit) == _bot_yaml(body)
    assert objects.config_hash(_bot(explicit)) == objects.config_hash(_bot(body))


def test_a_changed_field_still_changes_the_hash_and_bot_yaml() -> None:
    body = BODIES["pinned eurusd-paper"]
    changed = copy.deepcopy(body)
    # Back to the default from a value off it, and off the default from it: both are changes.
    changed["spec"]["runtime"]["replaySpeed"] = 2.0
    assert objects.config_hash(_bot(changed)) != objects.config_hash(_bot(body))
    assert _bot_yaml(changed)["spec"]["runtime"]["replaySpeed"] == 2.0
    rich = BODIES["rich"]
    default_capital = copy.deepcopy(rich)
    default_capital["spec"]["capital"] = {"currency": "USD", "initial": 100000}
    assert objects.config_hash(_bot(default_capital)) != objects.config_hash(_bot(rich))
    assert "capital" not in _bot_yaml(default_capital)["spec"]
