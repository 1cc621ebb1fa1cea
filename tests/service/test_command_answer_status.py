"""A control command's answer is the bot's status after the command, never the one before.

The engine thread ran a command, handed its result to the caller's thread, and only then
published the new status; the caller answered with whatever status was published when it woke.
On a loaded machine an emergency stop could be answered "not halted" and a resume "still
halted" (``tests/e2e/test_serve_api.py::test_emergency_stop_survives_kill_9_and_restart`` failed
so in a fresh-clone CI run). The publishing is slowed here so the order decides, not the timing.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.service.paper_bots import at_first_bar, signals_bot
from tradefleet_runtime.journal import Journal


def test_an_emergency_stop_and_a_resume_answer_with_the_status_after_them(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    bot = signals_bot("answer-bot", journal, tmp_path)
    with at_first_bar(bot):
        published = bot._publish

        def slow_publish(force: bool = False) -> None:
            if force:
                time.sleep(0.3)  # the engine thread late to publish, as under load
            published(force)

        bot._publish = slow_publish  # type: ignore[method-assign]
        stopped = bot.emergency_stop("alice", "drill")
        assert stopped.halted, "an emergency stop was answered with the status before it"
        resumed = bot.resume("alice", "all clear")
        assert not resumed.halted, "a resume was answered with the status before it"
    journal.close()
