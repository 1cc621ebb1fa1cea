"""Pause, resume and emergency stop given while a bot waits for its venue at start.

There is no engine yet to carry them out (it is made once the broker connects), but a person,
or the operator's steering, who halts a bot during an exchange's maintenance must not find it
trading when the venue answers again. So each is taken now and carried out then:

- an emergency stop is journaled at once, as the engine journals one (``halted``): the start
  restores it as it restores a halt from before a restart, also when the pod restarts in the
  meantime. Its flatten, when asked for, is owed until done (``Journal.flatten_owed``): the
  session carries it out once the venue answers and the account is reconciled;
- a resume undoes a halt in force by journaling ``resumed`` (a newer, explicit resume) and
  clears a pause;
- a pause lives in the process, as every pause does, and is applied when the engine opens.
"""

from __future__ import annotations

from typing import Any, Protocol

from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.trading_state import restored_halt_reason

__all__ = ["HeldControl"]


class ControlJournal(Protocol):
    def last_control_event(self) -> tuple[str, str] | None: ...

    def record_event(
        self, ts: int, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None: ...


class HeldControl:
    """The control state of a bot that has no engine yet, and the steps owed to its engine."""

    def __init__(self, journal: ControlJournal, paused: bool) -> None:
        self._journal = journal
        control = journal.last_control_event()
        # As the start will word the halt it restores (``BotSession._restore``).
        in_force = control is not None and control[0] == "halted"
        self.halt_reason = restored_halt_reason(control[1]) if control and in_force else ""
        self.paused = paused  # the spec's pause, until a command changes it
        self.pause_reason = ""
        self._steps: list[tuple[str, str, str]] = []

    @property
    def halted(self) -> bool:
        return bool(self.halt_reason)

    def pause(self, who: str, reason: str) -> None:
        if not self.paused:
            self.paused, self.pause_reason = True, reason
            self._steps.append(("pause", who, reason))

    def resume(self, who: str, reason: str) -> None:
        if self.halt_reason:
            self._journal.record_event(
                0, "resumed", f"resumed by {who}: {reason}", {"who": who, "reason": reason}
            )
            self.halt_reason = ""
        self.paused, self.pause_reason = False, ""
        self._steps.append(("resume", who, reason))

    def halt(self, who: str, reason: str, *, flatten: bool = False) -> None:
        """Journal the emergency stop now. When one is already in force nothing changes, as
        with the engine's, but a flatten asked now is owed: journaled as a halt that still
        holds, with the flatten to do once the venue answers."""
        if self.halt_reason and not flatten:
            return
        self._journal.record_event(
            0,
            "halted",
            f"emergency stop by {who}: {reason}"
            + (" (to flatten once the venue answers)" if flatten else ""),
            {"who": who, "reason": reason, "flatten": flatten, "flatten_when_connected": flatten},
        )
        self.halt_reason = self.halt_reason or reason

    def apply(self, engine: Engine) -> None:
        """Carry out the pauses and resumes owed, in order, on the engine just opened. A resume
        never clears a Degraded engine's halt: it was given before anyone could see the
        mismatch the start found, and only a person who has looked may clear that."""
        for kind, who, reason in self._steps:
            if kind == "pause":
                engine.pause(who, reason)
            elif not engine.degraded_reason:
                engine.resume(who, reason)
