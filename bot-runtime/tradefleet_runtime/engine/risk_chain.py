"""The risk chain's one rule, as a pure function: plugins may only shrink or veto."""

from __future__ import annotations

from typing import NamedTuple

from tradefleet_runtime.model import RiskAction, RiskDecision

_VETO = RiskAction.VETO  # a module name: an enum member read through its class costs ~0.3 µs

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
    if decision.action is _VETO:
        return Verdict(0.0, decision)
    proposed = decision.quantity
    if proposed is None:
        return Verdict(quantity, decision)
    if proposed != proposed or proposed <= 0.0:  # NaN or not positive
        return _fault(f"{plugin} sized the order to {proposed}")
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
