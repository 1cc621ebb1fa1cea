"""The bot's trading state: paused, halted (the kill switch), and the risk plugins' locks.

Pure state with one rule, :meth:`TradingState.gate`: while halted or paused, every order that
does not reduce a position is vetoed before any risk plugin sees it. A halt is lifted only by
an explicit resume; a risk lock only by a person's reset (``ResetRiskLock``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tradefleet_runtime.capabilities import RiskLockHolder
from tradefleet_runtime.model import OrderIntent, RiskDecision


@dataclass
class TradingState:
    paused: bool = False
    pause_reason: str = ""
    halted: bool = False
    halt_reason: str = ""
    # Risk plugins that declared the ``risk-lock`` capability, by name, in chain order.
    lock_holders: Sequence[tuple[str, RiskLockHolder]] = field(default_factory=tuple)

    def gate(self, intent: OrderIntent) -> tuple[str, RiskDecision] | None:
        """(deciding rule, veto) for an intent the state refuses, or None to let it on."""
        if intent.reduce_only:
            return None
        if self.halted:
            return "engine.halted", RiskDecision.veto(
                f"bot is halted: {self.halt_reason}", "halted"
            )
        if self.paused:
            return "engine.paused", RiskDecision.veto("bot is paused", "paused")
        return None

    def refusal(self) -> str:
        """Why the bot takes no new entries now ("" when it does)."""
        if self.halted:
            return f"bot is halted: {self.halt_reason}"
        if self.paused:
            return "bot is paused"
        return ""

    def pause(self, reason: str) -> bool:
        if self.paused:
            return False
        self.paused, self.pause_reason = True, reason
        return True

    def resume(self) -> bool:
        """Clear a pause and a halt; False when there was neither."""
        if not self.paused and not self.halted:
            return False
        self.paused = self.halted = False
        self.pause_reason = self.halt_reason = ""
        return True

    def halt(self, reason: str) -> bool:
        if self.halted:
            return False
        self.halted, self.halt_reason = True, reason
        return True

    def locks(self) -> dict[str, str]:
        """Reason of every lock in force, by plugin."""
        held = {}
        for name, holder in self.lock_holders:
            reason = holder.lock_reason()
            if reason:
                held[name] = reason
        return held
