"""The bot's trading state: paused, halted (the kill switch), and the risk plugins' locks.

Pure state with one rule, :meth:`TradingState.gate`: while halted, paused or locked, every order
that does not reduce a position is vetoed before any risk plugin sees it — except that under a
halt or a lock the driver lets an order past the position through as its closing part
(``risk_driver.gate_cut``). A halt is lifted only by an explicit resume; a risk lock only by a
person's reset (``ResetRiskLock``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tradefleet_runtime.capabilities import RiskLockHolder, SymbolLockHolder
from tradefleet_runtime.model import OrderIntent, RiskDecision


def restored_halt_reason(journaled: str) -> str:
    """The reason a halt in force when the bot last stopped is shown with after a start:
    ``journaled`` is its journaled message (``emergency stop by <who>: <reason>``)."""
    return f"restored after restart ({journaled})"


@dataclass
class TradingState:
    paused: bool = False
    pause_reason: str = ""
    halted: bool = False
    halt_reason: str = ""
    # Risk plugins that declared the ``risk-lock`` capability, by name, in chain order.
    lock_holders: Sequence[tuple[str, RiskLockHolder]] = field(default_factory=tuple)
    # Locks in force, by plugin: (reason, bar time it was taken). The engine records a lock
    # here when a holder reports one (and journals it), or when a restart restores one; while
    # any is held, the gate refuses every order that does not reduce a position, whatever the
    # plugin does after (a ``SymbolLockHolder``'s: on the symbols it holds). Only ``release``
    # (a person's reset) removes one.
    held: dict[str, tuple[str, int]] = field(default_factory=dict)
    # The symbols each held lock of a ``SymbolLockHolder`` held when it was last said (None:
    # every one): a symbol it holds beyond them is a lock taken since, said as the first was.
    said_symbols: dict[str, frozenset[str] | None] = field(default_factory=dict)

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
        if self.held:
            named = self._holding(intent.symbol)
            if named:
                return "engine.locked", RiskDecision.veto(_locked_reason(named), "risk_locked")
        return None

    def _holding(self, symbol: str | None) -> dict[str, str]:
        """The locks in force that hold ``symbol`` (None: that hold every symbol), by plugin,
        with their reasons now: a lock of some symbols only names the ones it holds now."""
        holders = dict(self.lock_holders)
        named: dict[str, str] = {}
        for name, (reason, _) in self.held.items():
            holder = holders.get(name)  # None: a restored lock of a plugin no longer in spec
            if isinstance(holder, SymbolLockHolder):
                symbols = holder.locked_symbols()
                if symbols is not None and (symbol is None or symbol not in symbols):
                    continue
                reason = holder.lock_reason() or reason
            named[name] = reason
        return named

    def refusal(self) -> str:
        """Why the bot takes no new entries now ("" when it does)."""
        if self.halted:
            return f"bot is halted: {self.halt_reason}"
        if self.paused:
            return "bot is paused"
        if self.held:
            # A lock of some symbols only leaves the bot taking entries on the others: their
            # orders meet it at the gate.
            named = self._holding(None)
            return _locked_reason(named) if named else ""
        return ""

    def newly_locked(self, now: int) -> list[tuple[str, str]]:
        """Ask every holder; record and return the (plugin, reason) of locks taken since: a
        lock newly held, or a held lock of some symbols that now holds one more (its reason
        then names every symbol it holds; the lock is still held since it was first taken)."""
        taken = []
        for name, holder in self.lock_holders:
            symbols = _symbols_held(holder)
            if name in self.held:
                if not isinstance(holder, SymbolLockHolder):
                    continue
                if name not in self.said_symbols:
                    # Restored without the symbols said (a holder that keeps no state): the
                    # ones it holds now were said before the restart.
                    self.said_symbols[name] = symbols
                    continue
                said = self.said_symbols[name]
                if said is None or (symbols is not None and symbols <= said):
                    continue
            reason = holder.lock_reason()
            if reason:
                since = self.held[name][1] if name in self.held else now
                self.held[name] = (reason, since)
                self.said_symbols[name] = symbols
                taken.append((name, reason))
        return taken

    def settle_restored(self) -> None:
        """After a restart restored the locks and the plugins' states: the symbols each
        restored lock holds now were said before it, and only a symbol locked from here on
        is new."""
        for name, holder in self.lock_holders:
            if name in self.held:
                self.said_symbols[name] = _symbols_held(holder)

    def release(self, name: str) -> None:
        self.held.pop(name, None)
        self.said_symbols.pop(name, None)

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

    def unpause(self) -> bool:
        """Clear a pause only (a halt stays); False when there was none."""
        if not self.paused:
            return False
        self.paused, self.pause_reason = False, ""
        return True

    def halt(self, reason: str) -> bool:
        if self.halted:
            return False
        self.halted, self.halt_reason = True, reason
        return True

    def locks(self) -> dict[str, str]:
        """Reason of every lock in force, by plugin (recorded, restored or newly reported)."""
        held = {name: reason for name, (reason, _) in self.held.items()}
        for name, holder in self.lock_holders:
            if name not in held or isinstance(holder, SymbolLockHolder):
                # A lock of some symbols says the ones it holds now (a symbol locked since
                # the lock was recorded included).
                reason = holder.lock_reason()
                if reason:
                    held[name] = reason
        return held


def _symbols_held(holder: RiskLockHolder) -> frozenset[str] | None:
    """The symbols ``holder``'s lock holds now (None: every one, or not a symbol lock)."""
    if not isinstance(holder, SymbolLockHolder):
        return None
    symbols = holder.locked_symbols()
    return None if symbols is None else frozenset(symbols)


def _locked_reason(named: dict[str, str]) -> str:
    listed = "; ".join(f"{name}: {reason}" for name, reason in named.items())
    return f"risk lock in force until a person resets it ({listed})"
