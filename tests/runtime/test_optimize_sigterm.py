"""SIGTERM ends `tradefleet optimize --jobs 2` as Ctrl-C does: exit 143, no worker left behind.

`kill PID` (or a pod's termination) reached only the search's process, which died at once; its
worker processes stayed alive, stuck waiting for trials that would never come.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runtime.test_optimize import ROOT, eurusd_manifest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; workers fork")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid ...": the command's name may hold spaces, not its last ")".
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(check: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(check) and check():
            return True
        time.sleep(0.05)
    return False


def test_sigterm_ends_the_search_and_its_workers(tmp_path: Path) -> None:
    bot, space, study = tmp_path / "bot.yaml", tmp_path / "space.yaml", tmp_path / "s.jsonl"
    bot.write_text(json.dumps(eurusd_manifest()))
    # Thousands of engine trials (a stop-loss keeps ema-cross off the vectorised path): far
    # more than run before the signal.
    space.write_text(
        json.dumps(
            {
                "fast": {"int": [5, 40]},
                "slow": {"int": [50, 400]},
                "stop_loss_pct": {"float": [0.01, 0.05, 0.01]},
            }
        )
    )
    argv = ["optimize", str(bot), "--space", str(space), "--sampler", "grid", "--jobs", "2"]
    argv += ["--study", str(study), "--no-progress"]
    code = f"import sys; from tradefleet_runtime import cli; sys.exit(cli.main({argv!r}))"
    # A file, not a pipe: workers left behind would hold a pipe open, and reading it would hang.
    err = tmp_path / "err.txt"
    with err.open("w") as stderr:
        search = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # the signal reaches this process alone, as `kill PID` does
        )
    workers: list[int] = []
    try:
        # Trials are running once the study file holds some (it is written twice a second).
        assert _wait_for(lambda: study.exists() and study.stat().st_size > 0, 60)
        workers = _children(search.pid)
        assert len(workers) >= 2
        os.kill(search.pid, signal.SIGTERM)
        code = search.wait(timeout=30)
        said = err.read_text()
        assert code == 128 + signal.SIGTERM, said
        assert "terminated: run the same command again to continue the study" in said
        assert "Traceback" not in said
        assert _wait_for(lambda: not any(_alive(pid) for pid in workers), 10), workers
    finally:
        if search.poll() is None:
            search.kill()  # this test's own process, should the assertions fail first
            search.wait()
        for pid in workers:  # this test's search's, should they outlive it (the defect)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


class _Stop(BaseException):
    pass


def test_a_signal_during_a_write_to_the_study_file_writes_no_line_twice(tmp_path: Path) -> None:
    # A signal between appending the buffered lines and counting them had the flush on leaving
    # append them again: the study no longer loaded (DuplicatedStudyError, a trial told twice).
    from tradefleet_runtime.optimize.search import BufferedJournalFile

    def stop(signum: int, frame: object) -> None:
        raise _Stop

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        backend = BufferedJournalFile(tmp_path / "s.jsonl", interval=1e9)
        written = backend._file.append_logs

        signals = [signal.SIGTERM]  # one, at the first write

        def signalled_after_writing(logs: list[dict[str, object]]) -> None:
            written(logs)
            while signals:
                os.kill(os.getpid(), signals.pop())  # handled here, between two steps
                time.sleep(0.01)

        backend._file.append_logs = signalled_after_writing  # type: ignore[method-assign]
        backend.append_logs([{"op_code": 0, "worker_id": "w", "study_name": "s"}])
        with pytest.raises(_Stop):
            backend.flush()
        backend.flush()  # as run_search's, on its way out
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 1
    assert signal.getsignal(signal.SIGTERM) is previous
