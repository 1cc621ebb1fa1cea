"""The bot's trading state: paused, halted (the kill switch), and the risk plugins' locks.

Pure state with one rule, :meth:`TradingState.gate`: while halted, paused or locked, every order
that does not reduce a position is vetoed before any risk plugin sees it — except that under a
halt or a lock the driver lets an order past the position through as its closing part
(``risk_driver.gate_cut``). A halt is lifted only by an explicit resume; a risk lock only by a
person's reset (``ResetRiskLock``).

A halt has holders (:class:`Halt`): the spec's (the operator enforcing ``spec.emergencyStop``, a
fleet stop's direct call, the manifest's stop at start: :data:`SPEC_HOLDER`), a Degraded
reconciliation's, and each person who halted the bot. A resume aimed at one holder (the
operator's, when the spec's stop goes: :func:`resume_holder`) lifts that holder's halt only; the
bot stays halted while another holds it. A person's resume lifts every halt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tradefleet_runtime.capabilities import RiskLockHolder, SymbolLockHolder
from tradefleet_runtime.errors import RiskPluginError
from tradefleet_runtime.model import OrderIntent, RiskDecision


def restored_halt_reason(journaled: str) -> str:
    """The reason a halt in force when the bot last stopped is shown with after a start:
    ``journaled`` is its journaled message (``emergency stop by <who>: <reason>``)."""
    return f"restored after restart ({journaled})"


#: The holder of the halts the TradingBot's spec asks for: the operator's (it enforces
#: ``spec.emergencyStop``), a fleet stop's direct call (which writes the same stop into the
#: spec) and the start's halt from the manifest's ``spec.emergencyStop``.
SPEC_HOLDER = "spec"
#: Who the manifest's emergency stop is given by, at a start (``BotSession.open``).
SPEC_STOP = "spec.emergencyStop"
#: Who gives those halts: the actor each sends (``runtime_client.ACTOR``, ``fleet.ACTOR``) and
#: the start's own name for the manifest's stop (``session.py``).
SPEC_ACTORS = frozenset({"tradefleet-operator", "tradefleet-fleet", SPEC_STOP})
#: The holder of the halts people give the runtime directly (``tradefleet stop ADDRESS``): one
#: holder, as their resume (every halt) is one.
PERSON_HOLDER = "person"
#: The holder of a Degraded reconciliation's halt: only a person's resume lifts it.
DEGRADED_HOLDER = "degraded"
#: The holder of a halt whose giver is not known (a journal row that does not say it).
UNKNOWN_HOLDER = "unknown"
#: How a ``halt_joined`` row's message ends (the engine's and ``HeldControl``'s).
JOINED_SUFFIX = " (already halted)"


def _actor(who: str) -> str:
    """The actor in a ``who``: the gRPC API's reads ``<actor> (grpc, <scope>, <peer>)``."""
    return who.partition(" (")[0].strip()


def halt_holder(who: str) -> str:
    """Who holds a halt ``who`` gave: :data:`SPEC_HOLDER` for the spec's givers, else
    :data:`PERSON_HOLDER` (a second person's halt keeps the first's, as it always did)."""
    return SPEC_HOLDER if _actor(who) in SPEC_ACTORS else PERSON_HOLDER


def resume_holder(who: str) -> str | None:
    """The holder a resume by ``who`` is aimed at; None when it lifts every halt. The operator
    resumes because the spec's stop went (a fleet resume removes it): that lifts the spec's
    halts only, never a person's given meanwhile. A person's resume is explicit and newest: it
    lifts every halt, as it always did."""
    return SPEC_HOLDER if _actor(who) in SPEC_ACTORS else None


@dataclass(frozen=True, slots=True)
class Halt:
    """One holder's halt: ``text`` is how the status shows it (the reason given, or, for a
    halt given while another held the bot or restored after a restart, who gave it too)."""

    holder: str
    text: str


def restored_halts(events: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[Halt]:
    """The halts in force at a start, from the journal's halt events since the newest resume
    (``Journal.halt_events``: ``halted``, ``halt_joined`` and ``halt_lifted`` rows, oldest
    first, as (kind, message, data)). Each holder's first halt is kept (as a live bot keeps
    it); ``halt_lifted`` drops its holder. A row without ``holder`` (an older runtime's) is
    its ``who``'s: a journal holding only the old single halt restores it as one holder."""
    halts: list[Halt] = []
    for kind, message, data in events:
        holder = data.get("holder")
        if not isinstance(holder, str) or not holder:
            who = data.get("who")
            holder = halt_holder(who) if isinstance(who, str) and who else UNKNOWN_HOLDER
        if kind == "halt_lifted":
            halts = [halt for halt in halts if halt.holder != holder]
        elif kind in ("halted", "halt_joined") and all(h.holder != holder for h in halts):
            # A joined halt as a ``halted`` one reads (the bot's own words for it, not the
            # journal's note that it was halted already): one form for every reader of it.
            text = message.removesuffix(JOINED_SUFFIX) if kind == "halt_joined" else message
            halts.append(Halt(holder, restored_halt_reason(text)))
    return halts


def halts_in_force(
    events: Sequence[tuple[str, str, Mapping[str, Any]]], control: tuple[str, str] | None
) -> list[Halt]:
    """The halts a start restores: those of the journal's halt events (:func:`restored_halts`
    of ``Journal.halt_events``; none when every one was lifted — the Degraded stop left by a
    lift is the start's reconciliation's to decide again). A journal that lists no halt events
    holds at most its newest control event (``control``, ``last_control_event``): its halt,
    as one holder of unknown giver."""
    if events:
        return restored_halts(events)
    if control is not None and control[0] == "halted":
        return [Halt(UNKNOWN_HOLDER, restored_halt_reason(control[1]))]
    return []


@dataclass
class TradingState:
    paused: bool = False
    pause_reason: str = ""
    # Kept equal to ``halts`` by every change (read them; a state made halted is one holder's).
    halted: bool = False
    # Every halt in force, the first first (one halt: its reason, as it always read).
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
    # Every holder's halt in force, the first given first (empty: not halted).
    halts: list[Halt] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.halted and not self.halts:
            self.halts = [Halt(UNKNOWN_HOLDER, self.halt_reason)]
        self._said()

    def _said(self) -> None:
        """``halted`` and ``halt_reason`` from ``halts``."""
        self.halted = bool(self.halts)
        self.halt_reason = "; ".join(halt.text for halt in self.halts)

    def holders(self) -> list[str]:
        return [halt.holder for halt in self.halts]

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
                symbols = self._locked_symbols(name, holder)
                if symbols is not None and (symbol is None or symbol not in symbols):
                    continue
                reason = bounded_reason(holder.lock_reason()) or reason
            named[name] = reason
        return named

    def _locked_symbols(self, name: str, holder: RiskLockHolder) -> frozenset[str] | None:
        """The symbols lock ``name`` holds (None: every one): those its plugin says now and
        those it was said (journaled) to hold — never fewer until a person resets it. Read
        from the plugin alone, a plugin that said no symbol any more let entries of a symbol
        it had locked through, its lock still journaled, with nobody having reset it; and a
        restored lock of a plugin that keeps no state held none."""
        now = _symbols_held(holder)
        if name not in self.said_symbols:
            return now
        said = self.said_symbols[name]
        return None if now is None or said is None else now | said

    def restore_symbols(self, name: str, symbols: frozenset[str] | None) -> None:
        """The symbols restored lock ``name`` held when last journaled (None: every one)."""
        self.said_symbols[name] = symbols

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
        taken: list[tuple[str, str]] = []
        for name, holder in self.lock_holders:
            try:
                taken += self._newly_locked(name, holder, now)
            except Exception as error:  # a lock it cannot tell ends the run, naming it
                raise RiskPluginError(name, "lock_reason", error) from error
        return taken

    def _newly_locked(self, name: str, holder: RiskLockHolder, now: int) -> list[tuple[str, str]]:
        """``newly_locked`` of one holder: its lock taken since last asked, or none."""
        symbols = _symbols_held(holder)
        if name in self.held:
            if not isinstance(holder, SymbolLockHolder):
                return []
            if name not in self.said_symbols:
                # Restored without the symbols said (a holder that keeps no state): the
                # ones it holds now were said before the restart.
                self.said_symbols[name] = symbols
                return []
            said = self.said_symbols[name]
            if said is None or (symbols is not None and symbols <= said):
                return []
            symbols = None if symbols is None else symbols | said
        reason = bounded_reason(holder.lock_reason())
        if not reason:
            return []
        since = self.held[name][1] if name in self.held else now
        self.held[name] = (reason, since)
        self.said_symbols[name] = symbols
        return [(name, reason)]

    def settle_restored(self) -> None:
        """After a restart restored the locks and the plugins' states: the symbols each
        restored lock holds now were said before it, and only a symbol locked from here on
        is new."""
        for name, holder in self.lock_holders:
            if name in self.held:
                # With those journaled (``restore_symbols``): a plugin keeping no state says none.
                self.said_symbols[name] = self._locked_symbols(name, holder)

    def release(self, name: str) -> None:
        self.held.pop(name, None)
        self.said_symbols.pop(name, None)

    def pause(self, reason: str) -> bool:
        if self.paused:
            return False
        self.paused, self.pause_reason = True, reason
        return True

    def resume(self) -> bool:
        """Clear a pause and every halt; False when there was neither."""
        if not self.paused and not self.halted:
            return False
        self.paused, self.pause_reason = False, ""
        self.halts = []
        self._said()
        return True

    def lift(self, holder: str) -> bool:
        """Drop ``holder``'s halt alone (the others stay); False when it held none."""
        kept = [halt for halt in self.halts if halt.holder != holder]
        lifted = len(kept) != len(self.halts)
        self.halts = kept
        self._said()
        return lifted

    def unpause(self) -> bool:
        """Clear a pause only (a halt stays); False when there was none."""
        if not self.paused:
            return False
        self.paused, self.pause_reason = False, ""
        return True

    def halt(self, reason: str, holder: str = UNKNOWN_HOLDER) -> bool:
        """Halt for ``holder``; False when already halted (then nothing changes: see
        :meth:`join`)."""
        if self.halted:
            return False
        self.halts = [Halt(holder, reason)]
        self._said()
        return True

    def join(self, holder: str, text: str) -> bool:
        """Add ``holder``'s halt to a bot already halted by another; False when not halted or
        when ``holder`` holds it already (its first halt is kept)."""
        if not self.halted or holder in self.holders():
            return False
        self.halts.append(Halt(holder, text))
        self._said()
        return True

    def locks(self) -> dict[str, str]:
        """Reason of every lock in force, by plugin (recorded, restored or newly reported)."""
        held = {name: reason for name, (reason, _) in self.held.items()}
        for name, holder in self.lock_holders:
            if name not in held or isinstance(holder, SymbolLockHolder):
                # A lock of some symbols says the ones it holds now (a symbol locked since
                # the lock was recorded included).
                reason = bounded_reason(holder.lock_reason())
                if reason:
                    held[name] = reason
        return held


# What of a plugin's lock reason is kept: it is journaled with the lock and in the decision of
# every order the lock refuses, and shown in the status (a plugin's 10 MB of text was, whole).
MAX_REASON = 2_000


def bounded_reason(reason: str | None) -> str | None:
    """``reason``, cut to ``MAX_REASON`` characters (saying how much more there was)."""
    if reason is None or len(reason) <= MAX_REASON:
        return reason
    return f"{reason[:MAX_REASON]}… ({len(reason) - MAX_REASON:,} more characters)"


def _symbols_held(holder: RiskLockHolder) -> frozenset[str] | None:
    """The symbols ``holder``'s lock holds now (None: every one, or not a symbol lock)."""
    if not isinstance(holder, SymbolLockHolder):
        return None
    symbols = holder.locked_symbols()
    return None if symbols is None else frozenset(symbols)


def _locked_reason(named: dict[str, str]) -> str:
    listed = "; ".join(f"{name}: {reason}" for name, reason in named.items())
    return f"risk lock in force until a person resets it ({listed})"
