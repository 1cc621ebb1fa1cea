"""Optional abilities are declared, checked when a plugin loads, and shown by `plugins list`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tradefleet_runtime.errors import PluginError
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import (
    CONTRACT_VERSION,
    Bar,
    Capability,
    Fill,
    NoParams,
    OrderIntent,
    PluginKind,
    PluginSpec,
    RiskContext,
    RiskDecision,
    Signal,
    Strategy,
    hookimpl,
)

BIN = Path(sys.executable).parent


class Quiet(Strategy):
    def on_bar(self, bar: Bar) -> None:
        pass


class Listens(Quiet):
    def on_signal(self, signal: Signal) -> str | None:
        return None


class Misspelt(Quiet):
    def on_signl(self, signal: Signal) -> str | None:  # the typo the check must catch
        return None


class WrongShape(Quiet):
    def on_signal(self) -> str | None:  # type: ignore[override]
        return None


class Locks:
    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return RiskDecision.approve()

    def lock_reason(self) -> str | None:
        return None

    def reset_lock(self) -> None:
        pass


class Restores:
    def restore_account(self, fills: Sequence[Fill]) -> None:
        pass


def _registry(*specs: PluginSpec) -> PluginRegistry:
    by_kind: dict[str, list[PluginSpec]] = {}
    for spec in specs:
        by_kind.setdefault(str(spec.kind), []).append(spec)
    hooks = SimpleNamespace(
        tradefleet_strategies=hookimpl(lambda: by_kind.get("strategy", [])),
        tradefleet_risk_plugins=hookimpl(lambda: by_kind.get("risk", [])),
        tradefleet_brokers=hookimpl(lambda: by_kind.get("broker", [])),
        tradefleet_data_feeds=hookimpl(lambda: by_kind.get("data", [])),
    )
    return PluginRegistry.from_modules(hooks)


def _spec(kind: PluginKind, name: str, factory: Any, *caps: Capability, **extra: Any) -> PluginSpec:
    return PluginSpec(
        kind=kind,
        name=name,
        version="1.0.0",
        factory=factory,
        params=NoParams,
        capabilities=frozenset(caps),
        **extra,
    )


def _build(registry: PluginRegistry, kind: PluginKind, name: str) -> Any:
    return registry.build(kind, name, {}, ["spec", "strategy"])


def test_a_declared_capability_that_is_implemented_loads() -> None:
    registry = _registry(
        _spec(PluginKind.STRATEGY, "listens", Listens, Capability.TAKES_SIGNALS),
        _spec(PluginKind.RISK, "locks", lambda p: Locks(), Capability.RISK_LOCK),
        _spec(PluginKind.BROKER, "restores", lambda p: Restores(), Capability.RESTORES_ACCOUNT),
    )
    assert isinstance(_build(registry, PluginKind.STRATEGY, "listens"), Listens)
    assert isinstance(_build(registry, PluginKind.RISK, "locks"), Locks)
    assert isinstance(_build(registry, PluginKind.BROKER, "restores"), Restores)


def test_a_misspelt_capability_method_is_refused_naming_plugin_and_method() -> None:
    registry = _registry(_spec(PluginKind.STRATEGY, "typo", Misspelt, Capability.TAKES_SIGNALS))
    with pytest.raises(PluginError) as refused:
        _build(registry, PluginKind.STRATEGY, "typo")
    message = str(refused.value)
    assert "'typo'" in message and "'on_signal'" in message and "'on_signl'" in message


def test_a_capability_method_of_the_wrong_shape_is_refused() -> None:
    registry = _registry(_spec(PluginKind.STRATEGY, "shape", WrongShape, Capability.TAKES_SIGNALS))
    with pytest.raises(PluginError, match=r"'shape'.*'on_signal'"):
        _build(registry, PluginKind.STRATEGY, "shape")


def test_an_undeclared_capability_method_is_refused_rather_than_never_called() -> None:
    registry = _registry(_spec(PluginKind.STRATEGY, "silent", Listens))
    with pytest.raises(PluginError, match=r"'silent'.*'on_signal'.*'takes-signals'"):
        _build(registry, PluginKind.STRATEGY, "silent")


def test_a_risk_lock_declared_but_half_implemented_is_refused() -> None:
    class HalfLock:
        def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
            return RiskDecision.approve()

        def lock_reason(self) -> str | None:
            return None

    registry = _registry(_spec(PluginKind.RISK, "half", lambda p: HalfLock(), Capability.RISK_LOCK))
    with pytest.raises(PluginError, match=r"'half'.*'reset_lock'"):
        _build(registry, PluginKind.RISK, "half")


def test_unknown_or_misplaced_capabilities_are_refused_at_discovery() -> None:
    registry = _registry(
        _spec(PluginKind.STRATEGY, "odd", Quiet, "takes-signal"),  # type: ignore[arg-type]
        _spec(PluginKind.STRATEGY, "misplaced", Quiet, Capability.RISK_LOCK),
    )
    with pytest.raises(PluginError, match="unknown capability 'takes-signal'"):
        registry.get(PluginKind.STRATEGY, "odd")
    with pytest.raises(PluginError, match="'risk-lock' is not for strategy plugins"):
        registry.get(PluginKind.STRATEGY, "misplaced")


def test_knows_symbol_must_be_declared_and_given_together() -> None:
    registry = _registry(
        _spec(PluginKind.BROKER, "undeclared", Restores, knows_symbol=lambda p, s: True),
        _spec(PluginKind.BROKER, "missing", Restores, Capability.KNOWS_SYMBOLS),
    )
    with pytest.raises(PluginError, match="does not declare the 'knows-symbols'"):
        registry.get(PluginKind.BROKER, "undeclared")
    with pytest.raises(PluginError, match="sets no knows_symbol"):
        registry.get(PluginKind.BROKER, "missing")


def test_a_plugin_for_another_contract_major_version_is_refused_naming_both() -> None:
    registry = _registry(
        PluginSpec(
            kind=PluginKind.STRATEGY,
            name="future",
            version="9.0.0",
            factory=Quiet,
            contract="2.0",
        )
    )
    with pytest.raises(PluginError) as refused:
        registry.get(PluginKind.STRATEGY, "future")
    message = str(refused.value)
    assert "'future'" in message and "2.0" in message and CONTRACT_VERSION in message


def test_a_minor_contract_version_difference_is_accepted() -> None:
    major = CONTRACT_VERSION.split(".")[0]
    registry = _registry(
        PluginSpec(
            kind=PluginKind.STRATEGY,
            name="minor",
            version="1.0.0",
            factory=Quiet,
            contract=f"{major}.99",
        )
    )
    assert registry.get(PluginKind.STRATEGY, "minor").name == "minor"


def test_plugins_list_json_shows_capabilities_and_contract() -> None:
    output = subprocess.run(
        [str(BIN / "tradefleet"), "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {(row["kind"], row["name"]): row for row in json.loads(output)}
    assert rows[("strategy", "external-signal")]["capabilities"] == ["takes-signals"]
    assert rows[("broker", "paper")]["capabilities"] == [
        "knows-leverage",
        "restores-account",
        "venue-execution",
    ]
    assert rows[("strategy", "ema-cross")]["capabilities"] == ["target-positions"]
    assert all(row["contract"] == CONTRACT_VERSION for row in rows.values())


def test_the_engine_discovers_no_capability_by_name() -> None:
    """No getattr/hasattr guessing of plugin abilities is left in the engine or the operator."""
    root = Path(__file__).resolve().parents[2]
    sources = [
        *sorted((root / "bot-runtime/tradefleet_runtime/engine").glob("*.py")),
        root / "bot-runtime/tradefleet_runtime/session.py",
        *sorted((root / "operator/tradefleet_operator").glob("*.py")),
    ]
    names = ("on_signal", "lock_reason", "reset_lock", "restore_account", "knows_symbol")
    for source in sources:
        text = source.read_text()
        for name in names:
            assert f'getattr(self.strategy, "{name}"' not in text
            for quote in ('"', "'"):
                assert f"getattr(plugin, {quote}{name}" not in text, source
                assert f", {quote}{name}{quote}, None)" not in text, (source, name)
