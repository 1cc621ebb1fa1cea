"""A trial (``optimize.worker.evaluate``) runs on the data file as it is now: the bars a
process cached for a file are read again once it changed (its size or time of change), as
docs/optimize.md says a trial depends "on nothing but its arguments and the data files". The
cache was keyed by the feed's params and folder alone: the same task returned the old file's
figures, and a study resumed in that process was hashed on the old bars.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from tests.runtime.test_backtest_refused_at_connect import _bot
from tradefleet_runtime.optimize.worker import Task, evaluate


def test_a_trial_after_its_data_file_changed_runs_on_the_file_as_it_is(tmp_path: Path) -> None:
    document = yaml.safe_load(_bot(tmp_path, "SYN").read_text())
    task = Task(document, str(tmp_path), {})
    before = evaluate(task).figures
    csv = tmp_path / "bars.csv"
    header, *rows = csv.read_text().splitlines()
    halved = [header]
    for row in rows[150:]:  # the second half's moves halved around 100
        ts, *prices, volume = row.split(",")
        halved.append(",".join([ts, *(str(100 + (float(p) - 100) / 2) for p in prices), volume]))
    csv.write_text("\n".join([header, *rows[:150], *halved[1:]]) + "\n")
    stat = csv.stat()
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later change
    fresh = evaluate(Task(document, str(tmp_path), {}, reuse_bars=False, vector=False)).figures
    assert fresh != before  # the change does change the run
    assert evaluate(task).figures == fresh
