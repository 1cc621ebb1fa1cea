"""``tradefleet optimize`` throughput: an ema-cross grid on the bundled EURUSD 2017 hourly bars.

Writes ``bench/results/optimize.json``:
- ``optimize_trials_per_s``: trials per second at ``--jobs 2`` (the figure the issue tracks);
- ``trials_per_s_jobs1`` and ``trials_per_s_jobs2``: the same 120-point grid in this process
  alone, and on a pool of two worker processes; each the best of ``REPEATS`` runs, each run
  timed from the pool's creation to its shutdown, so starting the workers and each worker's
  read of the CSV file are inside the time;
- ``speedup_jobs2``: their ratio (at least 1.7 on two cores was asked when a trial took 40 ms
  on the event engine; the bundled bot's trials now take the vectorised path, a few ms each,
  and this one process asking and telling Optuna for every trial is then the limit);
- ``search_*``: the same, timed from the first trial asked to the last told (the pool running);
- ``engine_trials_per_s_jobs1``: the same grid evaluated in this process by the event engine
  (``Task(vector=False)``), as any trial whose strategy or risk chain the vectorised path cannot
  take is (the grid above goes by the vectorised path); best of ``REPEATS``;
- ``machine_speedup_2_processes``: in the same run, what two processes gain over one on a bare
  Python loop — the ceiling the machine allowed at that moment (it is shared);
- ``load_before`` / ``load_after``: the 1-minute load average, since the machine is shared.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

from tradefleet_runtime.optimize import worker
from tradefleet_runtime.optimize.search import SearchConfig, executor, run_search
from tradefleet_runtime.optimize.space import parse_space

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "examples" / "bots" / "eurusd-ema-cross.yaml"
# 10 x 12 = 120 points, every one valid (slow > fast).
SPACE = {"fast": {"int": [4, 40, 4]}, "slow": {"int": [48, 224, 16]}}
REPEATS = 5
RESULTS = Path(__file__).parent / "results" / "optimize.json"


def run_once(jobs: int, folder: Path, repeat: int) -> tuple[float, float]:
    """(trials/s of the whole command, pool start included; trials/s once the pool runs)."""
    manifest = yaml.safe_load(MANIFEST.read_text())
    worker._BARS.clear()  # every run reads the data afresh
    config = SearchConfig(
        manifest=manifest,
        base_dir=str(MANIFEST.parent),
        space=parse_space(SPACE),
        study_path=folder / f"jobs{jobs}-{repeat}.jsonl",
        study_name="bench",
        sampler="grid",
    )
    started = time.perf_counter()
    with executor(jobs, manifest, str(MANIFEST.parent)) as pool:
        result = run_search(config, pool, jobs=jobs)
    total = time.perf_counter() - started
    assert result.complete == 120, result
    return result.complete / total, result.trials_per_s


def engine_run() -> float:
    """Trials/s of the grid by the event engine, one after another in this process."""
    manifest = yaml.safe_load(MANIFEST.read_text())
    points = [
        {"fast": fast, "slow": slow} for fast in range(4, 41, 4) for slow in range(48, 225, 16)
    ]
    worker.evaluate(worker.Task(manifest, str(MANIFEST.parent), points[0], vector=False))
    started = time.perf_counter()  # the bars are read once, above, as a pool's worker does
    for params in points:
        evaluation = worker.evaluate(
            worker.Task(manifest, str(MANIFEST.parent), params, vector=False)
        )
        assert evaluation.path == "engine", evaluation
    return len(points) / (time.perf_counter() - started)


def _spin(count: int) -> int:
    total = 0
    for i in range(count):
        total += i
    return total


def machine_speedup() -> float:
    """What two processes gain over one on a pure-Python loop right now: the ceiling here."""
    work = [2_000_000] * 8
    started = time.perf_counter()
    for count in work:
        _spin(count)
    one = time.perf_counter() - started
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        pool.submit(int).result()
        started = time.perf_counter()
        list(pool.map(_spin, work))
        two = time.perf_counter() - started
    return one / two


def main() -> int:
    load_before = os.getloadavg()[0]
    best: dict[int, list[float]] = {1: [0.0, 0.0], 2: [0.0, 0.0]}
    ceilings = []
    engine = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(REPEATS):
            # Interleaved, so a neighbour's burst of load hurts both settings alike.
            for jobs in (1, 2):
                total, search = run_once(jobs, Path(tmp), repeat)
                best[jobs] = [max(best[jobs][0], total), max(best[jobs][1], search)]
            ceilings.append(machine_speedup())
            engine = max(engine, engine_run())
    (one, one_search), (two, two_search) = best[1], best[2]
    figures = {
        "optimize_trials_per_s": round(two, 2),
        "trials_per_s_jobs1": round(one, 2),
        "trials_per_s_jobs2": round(two, 2),
        "speedup_jobs2": round(two / one, 3),
        "search_trials_per_s_jobs1": round(one_search, 2),
        "search_trials_per_s_jobs2": round(two_search, 2),
        "search_speedup_jobs2": round(two_search / one_search, 3),
        "engine_trials_per_s_jobs1": round(engine, 2),
        "machine_speedup_2_processes": round(max(ceilings), 3),
        "grid_points": 120,
        "bars_per_trial": 6225,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
