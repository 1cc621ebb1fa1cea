"""A run that died without ending (SIGKILL) is marked interrupted when the bot's next run
starts: it stayed 'running' for ever, and its report said nothing of the kill."""

from __future__ import annotations

from pathlib import Path

from tests.runtime.helpers import start_test_run
from tradefleet_runtime.journal import Journal


def test_a_run_left_running_is_interrupted_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path, durable=True)
    start_test_run(journal, "killed")  # never finished: the process died
    start_test_run(journal, "other-bot", bot="other")  # another bot's run is its own
    journal.close()
    journal = Journal(path, durable=True)
    try:
        start_test_run(journal, "next")
        status = {run.run_id: (run.status, run.summary) for run in journal.runs()}
        assert status["killed"] == (
            "interrupted",
            {"error": "the process ended without ending the run"},
        )
        assert status["other-bot"][0] == "running"
        assert status["next"] == ("running", None)
        journal.finish_run("completed", {})
        assert {run.run_id: run.status for run in journal.runs()}["next"] == "completed"
    finally:
        journal.close()
