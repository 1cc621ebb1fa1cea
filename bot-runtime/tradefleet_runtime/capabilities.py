"""Optional abilities a plugin declares, so the runtime never has to guess them.

A plugin's descriptor lists its capabilities (``PluginSpec(capabilities={...})``). When the
plugin is loaded, the registry checks that the object really has each declared method with the
declared shape, and that it has no capability method it did not declare: a misspelt
``lock_reson`` or a forgotten declaration is an error naming the plugin and the method, not a
feature that silently never runs. The engine then calls a capability only through these
protocols, on the objects the registry vouched for.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from tradefleet_runtime.model import Fill
from tradefleet_runtime.signals import Signal


class Capability(StrEnum):
    """The optional abilities; each names the protocol a plugin must then satisfy."""

    TAKES_SIGNALS = "takes-signals"  # strategy: SignalReceiver
    RISK_LOCK = "risk-lock"  # risk plugin: RiskLockHolder (a lock only a person resets)
    RESTORES_ACCOUNT = "restores-account"  # broker: AccountRestorer
    KNOWS_SYMBOLS = "knows-symbols"  # any plugin's descriptor: SymbolChecker (admission)


@runtime_checkable
class SignalReceiver(Protocol):
    """A strategy that takes trade signals pushed from outside (webhook, ``SubmitSignal``)."""

    def on_signal(self, signal: Signal) -> str | None:
        """Queue the signal's orders on the context, or return why it is refused."""
        ...


@runtime_checkable
class RiskLockHolder(Protocol):
    """A risk plugin that can lock trading until a person resets it (``ResetRiskLock``)."""

    def lock_reason(self) -> str | None:
        """Why trading is locked, or None while unlocked."""
        ...

    def reset_lock(self) -> None:
        """A person cleared the lock (who and why are journaled by the engine)."""
        ...


@runtime_checkable
class AccountRestorer(Protocol):
    """A broker that rebuilds its account from the bot's journaled fills after a restart."""

    def restore_account(self, fills: Sequence[Fill]) -> None: ...


class SymbolChecker(Protocol):
    """Descriptor-level: whether a symbol can be traded with these (validated) params."""

    def __call__(self, params: Any, symbol: str) -> bool: ...


@dataclass(frozen=True)
class _Shape:
    """What a capability asks of a plugin object: method names and their positional arity."""

    kinds: frozenset[str]
    methods: tuple[tuple[str, int], ...]  # (name, positional parameters after self)


SHAPES: dict[Capability, _Shape] = {
    Capability.TAKES_SIGNALS: _Shape(frozenset({"strategy"}), (("on_signal", 1),)),
    Capability.RISK_LOCK: _Shape(frozenset({"risk"}), (("lock_reason", 0), ("reset_lock", 0))),
    Capability.RESTORES_ACCOUNT: _Shape(frozenset({"broker"}), (("restore_account", 1),)),
    Capability.KNOWS_SYMBOLS: _Shape(frozenset({"strategy", "risk", "broker", "data"}), ()),
}


def parse_capabilities(kind: str, names: Any) -> tuple[frozenset[Capability], list[str]]:
    """Declared capability names → capabilities, with an error for each unknown or misplaced."""
    found: set[Capability] = set()
    errors: list[str] = []
    for name in names or ():
        try:
            capability = Capability(name)
        except ValueError:
            known = ", ".join(c.value for c in Capability)
            errors.append(f"unknown capability {name!r} (known: {known})")
            continue
        if kind not in SHAPES[capability].kinds:
            errors.append(f"capability {capability.value!r} is not for {kind} plugins")
            continue
        found.add(capability)
    return frozenset(found), errors


def _arity_problem(method: Callable[..., Any], wanted: int) -> str:
    """Why ``method`` (bound) cannot be called with ``wanted`` positional arguments, or ""."""
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return ""
    try:
        signature.bind(*([None] * wanted))
    except TypeError:
        return f"takes {signature} but is called with {wanted} argument(s)"
    return ""


def check_object(kind: str, obj: object, declared: frozenset[Capability]) -> list[str]:
    """Problems with a built plugin object against its declared capabilities (empty: fine)."""
    problems: list[str] = []
    attributes = [name for name in dir(obj) if not name.startswith("__")]
    for capability, shape in SHAPES.items():
        if kind not in shape.kinds:
            continue
        for method_name, arity in shape.methods:
            method = getattr(obj, method_name, None)
            if capability in declared:
                if not callable(method):
                    near = difflib.get_close_matches(method_name, attributes, n=1)
                    hint = f" (found {near[0]!r}: misspelt?)" if near else ""
                    problems.append(
                        f"declares {capability.value!r} but has no method {method_name!r}{hint}"
                    )
                    continue
                problem = _arity_problem(method, arity)
                if problem:
                    problems.append(f"method {method_name!r} {problem}")
            elif callable(method):
                problems.append(
                    f"has method {method_name!r} but does not declare capability "
                    f"{capability.value!r} (add it to the descriptor's capabilities, or the "
                    "runtime will never call it)"
                )
    return problems


__all__ = [
    "SHAPES",
    "AccountRestorer",
    "Capability",
    "RiskLockHolder",
    "SignalReceiver",
    "SymbolChecker",
    "check_object",
    "parse_capabilities",
]
