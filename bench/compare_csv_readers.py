"""The csv feed's reader against the compiled CSV readers a runtime could depend on instead
(issue 17, scope 5: "numpy, or pyarrow/polars if they earn their weight").

Writes the engine bench's 1,000,000-bar synthetic file, then reads it in fresh processes, each
timed by its own CPU (user + system, ``os.wait4``): the csv feed (``read_csv_columns``, its
cache removed first: parse, checks, cache written), pyarrow's ``pyarrow.csv.read_csv`` (one
thread, and its thread pool) and polars' ``read_csv`` (timestamps parsed by it, and left as
text), with the time to import each library beside it. Each compiled reader's columns must
equal the feed's to the bit (``bit_equal``). Neither library is a dependency: install them
where this can import them (``pip install --target DIR pyarrow polars``;
``CSV_READERS_PATH=DIR``); one that cannot be imported is reported missing.

``python bench/compare_csv_readers.py [BARS]`` (default 1,000,000) prints JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_engine

#: Run in a fresh process: time the import, then the read; compare with the feed's columns.
READER = """
import json, os, sys, time
sys.path.append(os.environ.get("CSV_READERS_PATH", ""))
import numpy as np
which, csv, reference = sys.argv[1], sys.argv[2], sys.argv[3]
names = ("open", "high", "low", "close", "volume")
started = time.process_time()
if which == "feed":
    from pathlib import Path
    from tradefleet_plugins.feeds.csv_feed import read_csv_columns
    from tradefleet_plugins.feeds.csv_params import CsvFeedParams
    from tradefleet_runtime.bar_columns import cache_path
    cache_path(Path(csv)).unlink(missing_ok=True)
    imported = time.process_time()
    columns, _ = read_csv_columns(Path(csv), CsvFeedParams(path=csv))
    arrays = [getattr(columns, name) for name in names]
    cache_path(Path(csv)).unlink(missing_ok=True)
elif which.startswith("pyarrow"):
    import pyarrow as pa
    import pyarrow.csv as pcsv
    imported = time.process_time()
    types = {"timestamp": pa.timestamp("s"), **{name: pa.float64() for name in names}}
    table = pcsv.read_csv(
        csv,
        read_options=pcsv.ReadOptions(use_threads=which == "pyarrow-threads"),
        convert_options=pcsv.ConvertOptions(column_types=types),
    )
    arrays = [table.column(name).to_numpy() for name in names]
else:
    import polars as pl
    imported = time.process_time()
    # "polars-text-time" leaves the timestamps as text (the feed's own parse would follow).
    stamp = pl.String if which == "polars-text-time" else pl.Datetime("ms")
    schema = {"timestamp": stamp, **{name: pl.Float64 for name in names}}
    frame = pl.read_csv(csv, schema=schema)  # its own threads, as pyarrow-threads
    arrays = [frame[name].to_numpy() for name in names]
    assert frame["timestamp"].null_count() == 0
read = time.process_time()
if which == "feed":
    np.save(reference, np.stack(arrays))
    equal = True
else:
    expected = np.load(reference)
    equal = all(
        np.array_equal(a.astype(np.float64).view(np.int64), e.view(np.int64))
        for a, e in zip(arrays, expected, strict=True)
    )
print(json.dumps({"import_s": imported - started, "read_s": read - imported, "bit_equal": equal}))
"""


def read_with(which: str, csv: Path, reference: Path) -> dict[str, object]:
    argv = [sys.executable, "-c", READER, which, str(csv), str(reference)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status):
            last = (err.read().strip().splitlines() or ["failed"])[-1]
            return {"missing": last} if "ModuleNotFoundError" in last else {"failed": last}
        figures: dict[str, object] = json.loads(out.read())
    figures["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}


def main() -> int:
    bars = int(sys.argv[1]) if len(sys.argv) > 1 else bench_engine.BARS
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "bars.csv"
        bench_engine.write_csv(bench_engine.synthetic(bars), csv)
        reference = Path(folder) / "feed.npy"
        results = {"bars": bars}
        for which in ("feed", "pyarrow", "pyarrow-threads", "polars", "polars-text-time"):
            results[which] = read_with(which, csv, reference)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
