"""Pause, resume and emergency stop given while a bot waits for its venue at start.

There is no engine yet to carry them out (it is made once the broker connects), but a person,
or the operator's steering, who halts a bot during an exchange's maintenance must not find it
trading when the venue answers again. So each is taken now and carried out then:

- an emergency stop is journaled at once, as the engine journals one (``halted``): the start
  restores it as it restores a halt from before a restart, also when the pod restarts in the
  meantime. Its flatten, when asked for, is owed until done (``Journal.flatten_owed``): the
  session carries it out once the venue answers and the account is reconciled;
- an emergency stop given while another holder's halt is in force (a person's after a fleet
  stop's) is journaled as ``halt_joined``, and a resume aimed at one holder (the operator's,
  when the spec's stop goes: ``trading_state.resume_holder``) lifts that holder's halt alone
  (``halt_lifted``) while another's holds, as the engine does;
- a resume undoes a halt in force by journaling ``resumed`` (a newer, explicit resume) and
  clears a pause; an emergency stop given after it holds (the newest control event wins); a
  resume with ``pause_only`` (the operator undoing the pause it applied) clears the pause alone,
  one with ``halt_only`` (the operator lifting the spec's stop of a bot it keeps paused) the
  halt alone, and leaves the bot paused, pausing it when it was not (:func:`halt_only_pause`);
- a pause lives in the process, as every pause does: the engine, once open, is brought to
  the pause the commands left.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.trading_state import (
    JOINED_SUFFIX,
    Halt,
    halt_holder,
    resume_holder,
)

__all__ = ["HALT_ONLY_PAUSE_REASON", "HeldControl", "halt_only_pause"]

#: The pause a ``halt_only`` resume gives a bot it found not paused.
HALT_ONLY_PAUSE_REASON = "halt lifted alone (halt_only): the operator keeps the bot paused"


def halt_only_pause(paused: bool, pause_reason: str) -> str:
    """The pause a bot is left in by a ``halt_only`` resume: its own when it is paused; else
    one saying why. ``halt_only`` means "lift the halt, stay paused": the operator sends it for
    a bot whose spec pauses it, and a runtime that restarted after the operator's ``Pause`` (a
    pause lives in the process, the halt is journaled) is halted but not paused — lifting its
    halt alone would open it to entries until the operator's next ``Pause`` got through."""
    return pause_reason if paused and pause_reason else HALT_ONLY_PAUSE_REASON


class ControlJournal(Protocol):
    def record_event(
        self, ts: int, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None: ...


class HeldControl:
    """The control state of a bot that has no engine yet, and the steps owed to its engine."""

    def __init__(self, journal: ControlJournal, paused: bool, halts: Sequence[Halt]) -> None:
        """``halts``: the holders' halts the journal holds in force for this bot, as the start
        restores them (``trading_state.halts_in_force`` of the journal's readers given the
        bot's name: a halt lifted is not, nor another bot's sharing the file)."""
        self._journal = journal
        self._halts = list(halts)
        self.paused = paused  # the spec's pause, until a command changes it
        self.pause_reason = ""
        self._pause_by = ""  # who gave the pause in force (when a command gave it)
        self._resume_by: tuple[str, str] | None = None  # the last resume, (who, reason)
        self._resume_pause_only = False  # the last resume lifted a pause only

    @property
    def halted(self) -> bool:
        return bool(self._halts)

    @property
    def halt_reason(self) -> str:
        """Every holder's halt in force, as the engine says it (``TradingState``)."""
        return "; ".join(halt.text for halt in self._halts)

    def pause(self, who: str, reason: str) -> None:
        if not self.paused:
            self.paused, self.pause_reason, self._pause_by = True, reason, who

    def resume(
        self, who: str, reason: str, *, pause_only: bool = False, halt_only: bool = False
    ) -> None:
        """Undo a halt in force (journaled) and a pause; with ``pause_only``, the pause only;
        with ``halt_only``, the halt only. One aimed at a holder while another's halt holds
        (``resume_holder``) lifts that holder's halt alone, and nothing else changes."""
        target = resume_holder(who)
        others = [halt for halt in self._halts if halt.holder != target]
        if target is not None and others and not pause_only:
            if len(others) != len(self._halts):
                self._halts = others
                self._journal.record_event(
                    0,
                    "halt_lifted",
                    f"emergency stop of the {target} lifted by {who}: {reason}; still halted: "
                    f"{self.halt_reason}",
                    {"who": who, "reason": reason, "holder": target, "left": _holders(others)},
                )
            return
        if self._halts and not pause_only:
            self._journal.record_event(
                0, "resumed", f"resumed by {who}: {reason}", {"who": who, "reason": reason}
            )
            self._halts = []
        if halt_only:
            # The pause (and the resume that undid an earlier one) stay as they were; a bot
            # not paused is paused now (halt_only keeps a bot paused, see halt_only_pause).
            if not self.paused:
                self.pause(who, halt_only_pause(False, ""))
            return
        self._resume_pause_only = pause_only
        self.paused, self.pause_reason = False, ""
        self._resume_by = (who, reason)

    def halt(self, who: str, reason: str, *, flatten: bool = False) -> None:
        """Journal the emergency stop now. When one is already in force nothing changes, as
        with the engine's, but a flatten asked now is owed: journaled as a halt that still
        holds, with the flatten to do once the venue answers. A halt by a holder who holds
        none yet, while another's holds, is kept with it (journaled ``halt_joined``)."""
        holder = halt_holder(who)
        if self._halts and holder not in _holders(self._halts):
            text = f"emergency stop by {who}: {reason}"
            self._halts.append(Halt(holder, text))
            self._journal.record_event(
                0,
                "halt_joined",
                f"{text}{JOINED_SUFFIX}",
                {"who": who, "reason": reason, "holder": holder, "flatten": flatten},
            )
        if self._halts and not flatten:
            return
        self._journal.record_event(
            0,
            "halted",
            f"emergency stop by {who}: {reason}"
            + (" (to flatten once the venue answers)" if flatten else ""),
            {
                "who": who,
                "reason": reason,
                "flatten": flatten,
                "flatten_when_connected": flatten,
                "holder": holder,
            },
        )
        if not self._halts:
            self._halts = [Halt(holder, reason)]

    def apply(self, engine: Engine) -> None:
        """Bring the engine just opened to the pause these commands left. Halts are not
        replayed: each halt and each resume that undid one is journaled already, so the engine
        opened halted exactly when the newest of them is a halt. A resume given before a later
        halt must never undo that halt here (nor journal a ``resumed`` newer than it, which a
        later restart would read as the last word).

        A pause the commands cleared is cleared only on an engine that is not halted: clearing
        it there would clear the halt too (and a Degraded engine's halt only a person who has
        seen the mismatch the start found may clear). It then stays until the next resume."""
        if self.paused:
            engine.pause(self._pause_by or "spec", self.pause_reason or "paused before start")
        elif engine.paused and not engine.halted and not engine.degraded_reason:
            who, reason = self._resume_by or ("spec", "resumed before start")
            engine.resume(who, reason, pause_only=self._resume_pause_only)


def _holders(halts: Sequence[Halt]) -> list[str]:
    return [halt.holder for halt in halts]
