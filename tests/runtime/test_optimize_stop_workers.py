"""A search that ends (Ctrl-C, SIGTERM, an error) kills its pool's workers at once — by this
process's own children started since the pool, not the executor's private ``_processes`` — and
no other child of this process.

The workers were found through ``ProcessPoolExecutor._processes``, a private attribute another
Python may rename or drop. They are now the ``multiprocessing.active_children()`` that were not
there before the pool was made; a child the program had before is left running.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path

import pytest

from tests.runtime.test_optimize_sigterm import _alive, _wait_for
from tradefleet_runtime.optimize.search import executor

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; workers fork")


class _Ended(Exception):
    pass


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def test_leaving_the_pool_by_an_error_kills_its_busy_workers_and_no_other_child() -> None:
    context = multiprocessing.get_context("fork")
    bystander = context.Process(target=time.sleep, args=(60,))  # a child from before the pool
    bystander.start()
    try:
        before = _children(os.getpid())
        started = time.monotonic()
        with pytest.raises(_Ended), executor(2) as pool:
            workers = _children(os.getpid()) - before
            assert len(workers) == 2
            # A trial of a long run on each worker: shut down plainly, leaving would wait.
            busy = [pool.submit(time.sleep, 60) for _ in range(2)]
            assert _wait_for(lambda: all(f.running() for f in busy), 10)
            raise _Ended
        assert time.monotonic() - started < 20  # not the trials' 60 seconds
        assert _wait_for(lambda: not any(_alive(pid) for pid in workers), 10), workers
        assert bystander.is_alive()
    finally:
        bystander.kill()
        bystander.join()
