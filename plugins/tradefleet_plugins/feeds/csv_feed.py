"""``csv``: replays OHLCV bars from CSV files, checked row by row.

Refused, with the file and row named: unsorted or duplicate timestamps, missing or non-numeric
values (NaN included), non-positive prices, bars whose high/low do not contain the open and
close, and bytes that are not UTF-8 (a byte-order mark first, as Excel writes, is accepted).
Bars finer than the bot's timeframe are resampled to it. Gaps (missing bars) are counted and
handled by ``gap_policy``. A ``start``/``end`` window that holds no bar of a file is refused
naming the param and the file's first and last bar.

The bar size is the smallest step between rows, so one stray row would change it: one bar at
10:30 in hourly data made the file 30-minute bars, resampled. The time grid is the most common
step between rows; when the smallest step is not that one, rows whose time is off the grid's
phase (the remainder of their time divided by the grid that most rows share) are strays,
refused naming the first one, as long as they are at most 1% of the rows (or 3). More rows off
the grid are data of a finer or mixed bar size: the smallest step stays its bar size (30m bars
with most half hours missing still resample to 1h). Gaps never put a row off the grid.

A plain file (one row a line, fixed-width timestamps, numbers in the price columns) is read
in one pass of numpy's reader and checked with whole-array comparisons; anything else, and
any file with an error, is read row by row (:func:`read_csv_bars`), which names the row. The
checked columns are cached beside the file (``.NAME.tfcols.npz``, keyed by the file's hash
and the reading params), so a second run skips parsing; a stale or unreadable cache is rebuilt.
"""

from __future__ import annotations

import contextlib
import csv
import heapq
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import numpy as np

from tradefleet_plugins.feeds.csv_params import CsvFeedParams, GapPolicy, RowOrder
from tradefleet_plugins.feeds.csv_time import bound_time, detect_format, format_time, parse_time
from tradefleet_runtime.sdk import (
    Bar,
    BarAggregator,
    BarColumns,
    ColumnBars,
    DataError,
    FeedReport,
    FeedRequest,
    cached_columns,
    fast_csv_columns,
    format_timeframe,
)

_TIME_HEADERS = ("timestamp", "time", "date", "datetime", "open_time", "opentime")
_FIELD_HEADERS = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v", "volumefrom", "volume_base"),
}

_new_bar = tuple.__new__

# UTF-8; a byte-order mark first (Excel writes one) is no part of the header's first name.
_ENCODING = "utf-8-sig"

#: Rows off the grid of the others are refused as strays while they are at most this share of
#: the file (or this many); more is data of another bar size (see the module's docstring).
_STRAY_SHARE = 0.01
_STRAY_MIN = 3


def _lines(handle: Iterator[str], file: Path) -> Iterator[str]:
    """The file's lines; a byte that is not UTF-8 raises a DataError naming its row."""
    try:
        yield from handle
    except UnicodeDecodeError:
        raise _not_utf8(file) from None


def _not_utf8(file: Path) -> DataError:
    """The error naming the first row and byte of ``file`` that is not UTF-8.

    Found again in the bytes, line by line: the decoder's own position is within the chunk it
    was given. A line is split at the byte 0x0A, which no multi-byte UTF-8 character holds.
    """
    offset = 0
    with file.open("rb") as handle:
        for row, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return DataError(
                    f"{file}: row {row}: byte 0x{line[error.start]:02x} at offset "
                    f"{offset + error.start} is not UTF-8 (save the file as UTF-8)"
                )
            offset += len(line)
    return DataError(f"{file}: not UTF-8 (save the file as UTF-8)")


def _column(
    header: list[str], wanted: str, names: tuple[str, ...], override: str | None, file: Path
) -> int:
    lowered = [h.strip().lower() for h in header]
    if override is not None:
        if override.strip().lower() not in lowered:
            raise DataError(f"{file}: row 1: no column {override!r} (header: {', '.join(header)})")
        return lowered.index(override.strip().lower())
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise DataError(f"{file}: row 1: no {wanted} column (header: {', '.join(header)})")


def read_csv_bars(
    file: Path, params: CsvFeedParams, notes: list[str] | None = None
) -> tuple[list[tuple[int, float, float, float, float, float]], int]:
    """Rows of (ts, open, high, low, close, volume), oldest first, checked; and the bar size."""
    try:
        handle = file.open(newline="", encoding=_ENCODING)
    except OSError as error:
        raise DataError(f"{file}: cannot read: {error.strerror}") from None
    with handle:
        reader = csv.reader(_lines(handle, file))
        header = next(reader, None)
        if header is None:
            raise DataError(f"{file}: row 1: the file is empty")
        time_index, indices = _header_columns(header, params, file)
        rows: list[tuple[int, float, float, float, float, float]] = []
        lines: list[int] = []  # the file row of each bar, for error messages
        fmt = params.timestamp_format
        detected = False
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            try:
                cell = row[time_index]
                if fmt is None and not detected:
                    fmt = detect_format(cell)
                    detected = True
                ts = parse_time(cell, fmt)
            except (ValueError, IndexError) as error:
                raise DataError(f"{file}: row {line_no}: bad timestamp: {error}") from None
            values = []
            for field_name, index in zip(_FIELD_HEADERS, indices, strict=True):
                if index < 0:
                    values.append(0.0)
                    continue
                try:
                    value = float(row[index])
                except (ValueError, IndexError):
                    text = row[index] if index < len(row) else ""
                    raise DataError(
                        f"{file}: row {line_no}: {field_name} is not a number: {text!r}"
                    ) from None
                if math.isnan(value) or math.isinf(value):
                    raise DataError(f"{file}: row {line_no}: {field_name} is {value}")
                values.append(value)
            open_, high, low, close, volume = values
            if min(open_, high, low, close) <= 0:
                raise DataError(f"{file}: row {line_no}: prices must be positive")
            if high < max(open_, close, low) or low > min(open_, close):
                raise DataError(
                    f"{file}: row {line_no}: high/low ({high}, {low}) do not contain open and "
                    f"close ({open_}, {close})"
                )
            if volume < 0:
                raise DataError(f"{file}: row {line_no}: volume is negative")
            rows.append((ts, open_, high, low, close, volume))
            lines.append(line_no)
    if not rows:
        raise DataError(f"{file}: no bars")
    if params.order is RowOrder.ANY:
        falling = sum(1 for a, b in pairwise(rows) if b[0] < a[0])
        newest_first = falling * 2 > len(rows) - 1
        if newest_first:
            rows.reverse()
            lines.reverse()
            falling = len(rows) - 1 - falling
        if falling:
            ranked = sorted(range(len(rows)), key=lambda i: rows[i][0])
            rows = [rows[i] for i in ranked]
            lines = [lines[i] for i in ranked]
        if notes is not None and (falling or newest_first):
            order = "newest first" if newest_first else "oldest first"
            notes.append(f"{file.name}: {order}, {falling} row(s) out of time order, sorted")
    # Checked in the file's own order, so the row named is the first one that breaks it.
    direction = -1 if params.order is RowOrder.DESCENDING else 1
    for i in range(1, len(rows)):
        step = (rows[i][0] - rows[i - 1][0]) * direction
        if step == 0:
            raise DataError(
                f"{file}: row {lines[i]}: duplicate timestamp {_iso(rows[i][0])} "
                f"(same as row {lines[i - 1]})"
            )
        if step < 0:
            raise DataError(
                f"{file}: row {lines[i]}: timestamp {_iso(rows[i][0])} is out of order "
                f"(row {lines[i - 1]} has {_iso(rows[i - 1][0])}); the file must be sorted "
                f"{params.order.value} (see the order param)"
            )
    if params.order is RowOrder.DESCENDING:
        rows.reverse()
    step = min(rows[i][0] - rows[i - 1][0] for i in range(1, len(rows))) if len(rows) > 1 else 0
    return rows, step


def _header_columns(header: list[str], params: CsvFeedParams, file: Path) -> tuple[int, list[int]]:
    """The time column and the value columns of ``header`` (-1: the file has no volume)."""
    time_index = _column(header, "time", _TIME_HEADERS, params.timestamp_column, file)
    indices = []
    for field_name, names in _FIELD_HEADERS.items():
        override = params.columns.get(field_name)
        if (
            field_name == "volume"
            and override is None
            and not any(h.strip().lower() in names for h in header)
        ):
            indices.append(-1)
            continue
        indices.append(_column(header, field_name, names, override, file))
    return time_index, indices


def _header_and_sample(file: Path, params: CsvFeedParams) -> tuple[int, list[int], str | None]:
    """The time column, the value columns (-1: no volume) and the first row's time cell."""
    with file.open(newline="", encoding=_ENCODING) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{file}: row 1: the file is empty")
        time_index, indices = _header_columns(header, params, file)
        for row in reader:
            if row and any(cell.strip() for cell in row):
                return time_index, indices, row[time_index] if time_index < len(row) else None
    return time_index, indices, None


def _read_columns(file: Path, params: CsvFeedParams, notes: list[str]) -> BarColumns:
    """The file's checked bars as columns, oldest first (row by row when not plain)."""
    time_index, indices, sample = 0, list[int](), None
    with contextlib.suppress(OSError, UnicodeError, csv.Error):  # read row by row: it says why
        time_index, indices, sample = _header_and_sample(file, params)
    columns = None
    if sample is not None:
        fmt = params.timestamp_format
        if fmt is None:
            fmt = detect_format(sample)
        if fmt is not None or sample.strip().isdigit():
            columns = fast_csv_columns(file, time_index, indices, sample, fmt)
    if columns is not None:
        columns = _ordered(columns, file, params, notes)
    if columns is None:
        rows, _ = read_csv_bars(file, params, notes)
        columns = BarColumns.from_rows(rows)
    return columns


def _ordered(
    columns: BarColumns, file: Path, params: CsvFeedParams, notes: list[str]
) -> BarColumns | None:
    """``columns`` oldest first as ``params.order`` says, or None when the order is broken (a
    duplicate, a row out of order): the row-by-row reader then names the row."""
    count = len(columns)
    local: list[str] = []
    if params.order is RowOrder.ANY:
        falling = int(np.count_nonzero(np.diff(columns.ts) < 0))
        newest_first = falling * 2 > count - 1
        if newest_first:
            columns = columns.take(slice(None, None, -1))
            falling = count - 1 - falling
        if falling:
            columns = columns.take(np.argsort(columns.ts, kind="stable"))
        if falling or newest_first:
            order = "newest first" if newest_first else "oldest first"
            local.append(f"{file.name}: {order}, {falling} row(s) out of time order, sorted")
    direction = -1 if params.order is RowOrder.DESCENDING else 1
    if (np.diff(columns.ts) * direction <= 0).any():
        return None
    if params.order is RowOrder.DESCENDING:
        columns = columns.take(slice(None, None, -1))
    notes.extend(local)
    return columns


def _reading_options(params: CsvFeedParams) -> str:
    """What the cached columns depend on besides the file's bytes."""
    return repr(
        (
            params.order.value,
            params.timestamp_column,
            params.timestamp_format,
            sorted(params.columns.items()),
        )
    )


def read_csv_columns(
    file: Path, params: CsvFeedParams, notes: list[str] | None = None
) -> tuple[BarColumns, int]:
    """The file's checked bars as columns, oldest first, and the bar size (cached, see above)."""
    try:
        columns, found = cached_columns(
            file, _reading_options(params), lambda found: _read_columns(file, params, found)
        )
    except OSError as error:
        raise DataError(f"{file}: cannot read: {error.strerror}") from None
    if notes is not None:
        notes.extend(found)
    stray = stray_rows(columns.ts)
    if stray is not None:
        raise _off_grid(file, params, columns.ts, *stray)
    step = int(np.diff(columns.ts).min()) if len(columns) > 1 else 0
    return columns, step


def stray_rows(ts: np.ndarray[tuple[int], np.dtype[np.int64]]) -> tuple[int, int, int] | None:
    """(position of the first row off the grid of the others, the grid, how many rows are
    off it), or None when every row is on it or the data is not of one grid (module docs).

    The grid is the most common step between rows, the phase the remainder of a time divided
    by it that most rows have. The bar size is the smallest step, so one bar at 10:30 in hourly
    data made the whole file 30-minute bars (resampled, said only in a note).
    """
    if ts.size < 3:
        return None
    steps = np.diff(ts)
    smallest = steps.min()
    if np.count_nonzero(steps == smallest) * 2 > steps.size:
        return None  # most files: the smallest step is most steps, so it is the grid
    values, counts = np.unique(steps, return_counts=True)
    grid = int(values[np.argmax(counts)])
    if grid == smallest:
        return None
    phase = ts % grid
    values, counts = np.unique(phase, return_counts=True)
    off = np.flatnonzero(phase != values[np.argmax(counts)])
    if not 0 < off.size <= max(_STRAY_MIN, _STRAY_SHARE * ts.size):
        return None  # finer or mixed data: the smallest step is its bar size, as always
    return int(off[0]), grid, int(off.size)


def _off_grid(
    file: Path,
    params: CsvFeedParams,
    ts: np.ndarray[tuple[int], np.dtype[np.int64]],
    first: int,
    grid: int,
    count: int,
) -> DataError:
    """The error naming the first row off the file's grid (see :func:`stray_rows`)."""
    stamp = int(ts[first])
    row = _row_of(file, params, stamp)
    where = f"row {row}: " if row is not None else ""
    smallest = int(np.diff(ts).min())
    return DataError(
        f"{file}: {where}timestamp {format_time(stamp)} is off the {format_timeframe(grid)} "
        f"grid of the other rows: correct or remove it ({count} of {ts.size} rows are off "
        f"it; read as they are, the file would be {format_timeframe(smallest)} bars)"
    )


def _row_of(file: Path, params: CsvFeedParams, stamp: int) -> int | None:
    """The file row of the bar at ``stamp`` (numbered as :func:`read_csv_bars` does), found
    again for an error message: the columns do not keep their rows."""
    with file.open(newline="", encoding=_ENCODING) as handle:
        reader = csv.reader(_lines(handle, file))
        header = next(reader, None)
        if header is None:
            return None
        time_index, _ = _header_columns(header, params, file)
        fmt, detected = params.timestamp_format, params.timestamp_format is not None
        for line_no, row in enumerate(reader, start=2):
            if time_index >= len(row) or not row[time_index].strip():
                continue
            if not detected:
                fmt, detected = detect_format(row[time_index]), True
            with contextlib.suppress(ValueError):
                if parse_time(row[time_index], fmt) == stamp:
                    return line_no
    return None


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


class CsvFeed:
    """Replays CSV files as closed bars for the requested symbols and timeframe."""

    def __init__(self, params: CsvFeedParams) -> None:
        self.params = params
        self._report = FeedReport()

    def report(self) -> FeedReport:
        return self._report

    def _files(self, request: FeedRequest) -> dict[str, Path]:
        if self.params.path is not None:
            if len(request.symbols) != 1:
                raise DataError(
                    "spec.data.params.path: `path` serves one symbol; this bot trades "
                    f"{len(request.symbols)}: use `files` with one file per symbol"
                )
            files = {request.symbols[0]: self.params.path}
        else:
            missing = [s for s in request.symbols if s not in self.params.files]
            if missing:
                raise DataError(
                    f"spec.data.params.files: no file for {', '.join(missing)}, which "
                    "spec.market.symbols lists: give one file per symbol"
                )
            files = {s: self.params.files[s] for s in request.symbols}
        resolved = {s: (request.base_dir / p).resolve() for s, p in files.items()}
        for symbol, file in resolved.items():
            # A device or FIFO would be read forever (/dev/zero) or block: refuse it by field.
            try:
                absent = not file.exists()
                irregular = not absent and not file.is_file()
            except OSError:
                absent = irregular = False  # e.g. a name too long: reading it reports why
            where = "path" if self.params.path is not None else f"files.{symbol}"
            if absent:
                raise DataError(f"spec.data.params.{where}: {file}: no such file")
            if irregular:
                raise DataError(
                    f"spec.data.params.{where}: {file} is not a regular file "
                    "(a device, FIFO or directory)"
                )
        return resolved

    def _series(self, symbol: str, file: Path, request: FeedRequest) -> Sequence[Bar] | _ColumnBars:
        columns, step = read_csv_columns(file, self.params, self._report.notes)
        timeframe = request.timeframe_s
        if step and step > timeframe:
            raise DataError(
                f"{file}: bars are {format_timeframe(step)} apart, coarser than the bot's "
                f"timeframe {format_timeframe(timeframe)}"
            )
        start = None if self.params.start is None else bound_time(self.params.start)
        end = None if self.params.end is None else bound_time(self.params.end)
        first_ts, last_ts = int(columns.ts[0]), int(columns.ts[-1])
        bars: list[Bar] = []
        if step and step < timeframe:
            if timeframe % step:
                raise DataError(
                    f"{file}: {format_timeframe(step)} bars cannot be resampled to "
                    f"{format_timeframe(timeframe)}"
                )
            aggregator = BarAggregator(symbol, timeframe)
            for ts, o, h, low, c, v in columns.rows():
                before, after = aggregator.add(_new_bar(Bar, (symbol, step, ts, o, h, low, c, v)))
                bars.extend(b for b in (before, after) if b is not None)
            sizes = f"{format_timeframe(step)} bars to {format_timeframe(timeframe)}"
            self._report.notes.append(f"{symbol}: resampled {sizes}")
            if start is not None or end is not None:
                bars = [
                    b
                    for b in bars
                    if (start is None or b.ts >= start) and (end is None or b.ts < end)
                ]
                if not bars:
                    raise _empty_window(file, first_ts, last_ts, start, end)
            stamps = np.fromiter((b[2] for b in bars), dtype=np.int64, count=len(bars))
        else:
            if start is not None or end is not None:
                first = 0 if start is None else int(np.searchsorted(columns.ts, start, "left"))
                last = len(columns) if end is None else int(np.searchsorted(columns.ts, end))
                if first >= last:
                    raise _empty_window(file, first_ts, last_ts, start, end)
                columns = columns.take(slice(first, last))
            stamps = columns.ts
            return self._apply_gap_policy(
                symbol, file, _ColumnBars(columns, symbol, timeframe), timeframe, stamps
            )
        return self._apply_gap_policy(symbol, file, bars, timeframe, stamps)

    def _apply_gap_policy(
        self,
        symbol: str,
        file: Path,
        bars: Sequence[Bar] | _ColumnBars,
        timeframe: int,
        stamps: np.ndarray[tuple[int], np.dtype[np.int64]],
    ) -> Sequence[Bar] | _ColumnBars:
        distances = np.diff(stamps)
        gapped = np.flatnonzero(distances > timeframe)
        if not gapped.size:
            return bars  # the common case, decided without a loop over the bars
        if self.params.gap_policy is GapPolicy.TRADE:
            gaps = int(gapped.size)
            missing = int((distances[gapped] // timeframe - 1).sum())
            self._report.gaps += gaps
            self._report.missing_bars += missing
            self._report.notes.append(
                f"{symbol}: {gaps} gap(s), {missing} missing bar(s), policy trade"
            )
            return bars
        gaps = 0
        missing = 0
        out: list[Bar] = []
        policy = self.params.gap_policy
        for bar in bars:
            if out:
                previous = out[-1]
                distance = bar.ts - previous.ts
                if distance > timeframe:
                    gaps += 1
                    absent = distance // timeframe - 1
                    missing += absent
                    if policy is GapPolicy.FAIL:
                        raise DataError(
                            f"{file}: gap of {absent} bar(s) between {_iso(previous.ts)} and "
                            f"{_iso(bar.ts)} (gap_policy: fail)"
                        )
                    if policy is GapPolicy.FILL:
                        close = previous.close
                        for k in range(1, absent + 1):
                            ts = previous.ts + k * timeframe
                            out.append(
                                _new_bar(
                                    Bar, (symbol, timeframe, ts, close, close, close, close, 0.0)
                                )
                            )
                        self._report.filled_bars += absent
            out.append(bar)
        self._report.gaps += gaps
        self._report.missing_bars += missing
        if gaps:
            self._report.notes.append(
                f"{symbol}: {gaps} gap(s), {missing} missing bar(s), policy {policy.value}"
            )
        return out

    def bars(self, request: FeedRequest) -> Iterator[Bar]:
        series = [self._series(s, f, request) for s, f in self._files(request).items()]
        report = self._report
        report.bars = sum(len(s) for s in series)
        firsts = [_first_ts(s) for s in series if len(s)]
        lasts = [_last_ts(s) for s in series if len(s)]
        report.first_ts = min(firsts) if firsts else None
        report.last_ts = max(lasts) if lasts else None
        if len(series) == 1:
            only = series[0]
            if isinstance(only, _ColumnBars):
                # Whole columns too: a backtest that takes the series at once reads them.
                return ColumnBars(only.columns, only.symbol, only.timeframe)
            return iter(only)
        order = {symbol: i for i, symbol in enumerate(request.symbols)}
        return heapq.merge(*series, key=lambda bar: (bar.ts, order[bar.symbol]))


class _ColumnBars:
    """One symbol's checked columns, until they are read (as :class:`ColumnBars`)."""

    def __init__(self, columns: BarColumns, symbol: str, timeframe: int) -> None:
        self.columns = columns
        self.symbol = symbol
        self.timeframe = timeframe

    def __len__(self) -> int:
        return len(self.columns)

    def __iter__(self) -> Iterator[Bar]:
        return ColumnBars(self.columns, self.symbol, self.timeframe)


def _first_ts(series: Sequence[Bar] | _ColumnBars) -> int:
    if isinstance(series, _ColumnBars):
        return int(series.columns.ts[0])
    return series[0].ts


def _last_ts(series: Sequence[Bar] | _ColumnBars) -> int:
    if isinstance(series, _ColumnBars):
        return int(series.columns.ts[-1])
    return series[-1].ts


def _empty_window(
    file: Path, first: int, last: int, start: int | None, end: int | None
) -> DataError:
    """The error of a start/end window that holds none of ``file``'s bars (``first..last``):
    a backtest of no bars would report nothing happened, as if the strategy never traded."""
    data = f"{file} has bars from {_iso(first)} to {_iso(last)} UTC"
    if start is not None and start > last:
        return DataError(f"spec.data.params.start: {format_time(start)} is after the data ({data})")
    if end is not None and end <= first:
        return DataError(
            f"spec.data.params.end: {format_time(end)} is at or before the data's start ({data})"
        )
    return DataError(
        f"spec.data.params.start/end: no bar from {format_time(start or first)} to "
        f"{format_time(end or last)} ({data})"
    )
