"""The optimiser's bar cache (``worker.feed_bars``) keyed by the data
files the feed's params name, each with its size and modification time (``_files_read``).

Read again: a csv feed given ``files`` (one file per symbol: a dict, which ``_files_read``
once skipped, looking only at string params); a file rewritten to the same size whose
modification time is then set back (``cp -p``, ``rsync -t``, ``touch -r``, an unpacked
archive: the modification time is the writer's to set, the change time is not); an absolute
``path``; a ``path`` that is a symlink re-pointed to another file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tradefleet_runtime.optimize.worker import feed_bars

HOUR = 3600
T = 1_600_000_000 - 1_600_000_000 % HOUR


def _csv(path: Path, base: float, count: int = 50) -> Path:
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(count):
        price = f"{base + i % 7:.2f}"
        lines.append(f"{T + i * HOUR},{price},{price},{price},{price},1")
    path.write_text("\n".join(lines) + "\n")
    return path


def _manifest(data: dict[str, Any], symbols: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "cache-bot"},
        "spec": {
            "mode": "backtest",
            "strategy": {"name": "ema-cross", "params": {"fast": 5, "slow": 13}},
            "market": {"symbols": symbols, "timeframe": "1h"},
            "broker": {"name": "paper", "params": {}},
            "data": {"name": "csv", "params": data},
            "risk": [{"name": "fixed-size", "params": {"quantity": 1}}],
            "capital": {"currency": "USD", "initial": 100_000},
        },
    }


def _later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def _closes(bars: tuple[Any, ...], symbol: str) -> list[float]:
    return [bar[6] for bar in bars if bar[0] == symbol]


def test_a_changed_file_of_a_multi_symbol_csv_feed_is_read_again(tmp_path: Path) -> None:
    _csv(tmp_path / "a.csv", 100.0)
    _csv(tmp_path / "b.csv", 200.0)
    manifest = _manifest({"files": {"AAA": "a.csv", "BBB": "b.csv"}}, ["AAA", "BBB"])
    before = feed_bars(manifest, str(tmp_path))
    assert _closes(before, "BBB")[0] == 200.0
    _csv(tmp_path / "b.csv", 300.0)  # the data was rewritten
    _later(tmp_path / "b.csv")
    after = feed_bars(manifest, str(tmp_path))
    assert _closes(after, "BBB")[0] == 300.0, (
        "b.csv (a csv feed's `files`) changed, its size and time too; the optimiser's cache "
        "still hands the bars read before: trials and a resumed study's check run on old data"
    )


def test_a_file_rewritten_to_the_same_size_and_time_is_read_again(tmp_path: Path) -> None:
    csv = _csv(tmp_path / "bars.csv", 100.0)
    stat = csv.stat()
    manifest = _manifest({"path": "bars.csv"}, ["SYN"])
    assert _closes(feed_bars(manifest, str(tmp_path)), "SYN")[0] == 100.0
    _csv(csv, 500.0)  # same width: same size
    assert csv.stat().st_size == stat.st_size
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the writer kept the file's time
    assert _closes(feed_bars(manifest, str(tmp_path)), "SYN")[0] == 500.0, (
        "bars.csv holds other prices (same size, modification time set back, change time "
        "moved): the cache keyed by size and st_mtime hands the old bars"
    )


def test_an_absolute_path_is_read_again_once_changed(tmp_path: Path) -> None:
    csv = _csv(tmp_path / "bars.csv", 100.0)
    manifest = _manifest({"path": str(csv)}, ["SYN"])
    assert _closes(feed_bars(manifest, str(tmp_path / "elsewhere")), "SYN")[0] == 100.0
    _csv(csv, 300.0)
    _later(csv)
    assert _closes(feed_bars(manifest, str(tmp_path / "elsewhere")), "SYN")[0] == 300.0


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_a_symlink_pointed_at_another_file_is_read_again(tmp_path: Path) -> None:
    _csv(tmp_path / "june.csv", 100.0)
    _csv(tmp_path / "july.csv", 400.0, count=60)
    link = tmp_path / "latest.csv"
    link.symlink_to("june.csv")
    manifest = _manifest({"path": "latest.csv"}, ["SYN"])
    assert _closes(feed_bars(manifest, str(tmp_path)), "SYN")[0] == 100.0
    link.unlink()
    link.symlink_to("july.csv")
    assert _closes(feed_bars(manifest, str(tmp_path)), "SYN")[0] == 400.0
