"""The risk chain's one rule, as a pure function: plugins may only shrink or veto."""

from __future__ import annotations

import numbers
from typing import NamedTuple

from tradefleet_runtime.model import RiskAction, RiskDecision

_VETO = RiskAction.VETO  # a module name: an enum member read through its class costs ~0.3 µs
_INF = float("inf")

# Relative tolerance for "did not grow": sizers round, and floats wobble in the last bit.
_GROWTH_TOLERANCE = 1e-9


class Verdict(NamedTuple):
    """What the engine makes of one plugin's decision (a named tuple: it is made for every
    sizing or shrinking decision, on the order's path)."""

    quantity: float | None  # the order's size after this plugin; 0 means vetoed
    decision: RiskDecision  # what is journaled (a rule-breaking decision becomes a veto)
    fault: bool = False

    @property
    def vetoed(self) -> bool:
        return self.quantity is not None and self.quantity <= 0.0


def judge(plugin: str, quantity: float | None, decision: RiskDecision) -> Verdict:
    """Apply ``decision`` to an order of ``quantity`` (``None``: not sized yet)."""
    if not isinstance(decision, RiskDecision):
        kind = type(decision).__name__
        return _fault(f"{plugin} returned {kind}, not a decision")
    action = decision.action
    if action is _VETO:
        return Verdict(0.0, decision)
    if action.__class__ is not RiskAction:
        # "approve" as a plain string, built by hand: the engine journals a RiskAction.
        return _fault(f"{plugin} returned a decision whose action is {action!r}, not a RiskAction")
    proposed = decision.quantity
    if proposed is None:
        return Verdict(quantity, decision)
    if proposed.__class__ is not float and (
        isinstance(proposed, bool) or not isinstance(proposed, numbers.Real)
    ):
        # A True is no quantity of 1, nor a string or a complex number one.
        return _fault(f"{plugin} sized the order to {proposed!r}, which is not a number")
    if not 0.0 < proposed < _INF:  # NaN, not positive, or infinite
        return _fault(f"{plugin} sized the order to {proposed}")
    proposed = float(proposed)
    if quantity is not None and proposed > quantity * (1.0 + _GROWTH_TOLERANCE):
        return _fault(
            f"{plugin} tried to grow the order from {quantity:.10g} to {proposed:.10g}; "
            "risk plugins may only shrink or veto"
        )
    return Verdict(min(proposed, quantity) if quantity is not None else proposed, decision)


def _fault(reason: str) -> Verdict:
    return Verdict(0.0, RiskDecision.veto(reason, "plugin_fault"), True)


def round_down(quantity: float, step: float) -> float:
    """Round a quantity down to a lot step (never up: rounding must not grow an order)."""
    if step <= 0.0:
        return quantity
    steps = int(quantity / step + 1e-9)
    return round(steps * step, 12)
