"""Bars as columns (numpy arrays): a fast reader for plain CSV files and a columnar cache.

:func:`fast_csv_columns` reads a CSV file by whole-array operations on its bytes
(:mod:`tradefleet_runtime.csv_cells`: the time column as fixed-width bytes, the price columns
as floats, parsed exactly as Python's ``float`` parses them) and checks the values with
whole-array comparisons. It reads only the plain shape most data comes in — one
row a line, the same width of timestamp on every row, numbers only in the price columns — and
answers None for anything else (quotes, a bad cell, NaN, a high below the close …): the caller
then reads the file row by row, which names the file and the first row that is wrong. So the
fast path never decides what an error says; it only skips the per-row work when there is none.

The cache (:func:`load_cached`, :func:`store_cached`) keeps a file's checked columns beside it
(``.NAME.tfcols.npz``), keyed by a SHA-256 of the file's bytes, :data:`LOADER_VERSION` and the
caller's own reading options, so a second run skips parsing. A cache whose key differs (the
file changed, another loader version or options), or that cannot be read, is ignored and
rebuilt; it is written to a temporary file and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import gc
import hashlib
import inspect
import os
import tempfile
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tradefleet_runtime.csv_cells import read_plain_table
from tradefleet_runtime.model import Bar

#: Changes whenever what the reader or the cache produces changes: older caches are rebuilt.
#: 2: a UTF-8 byte-order mark (as Excel writes) is read as no part of the file's text.
LOADER_VERSION = 2

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

_make_bar = partial(tuple.__new__, Bar)


@dataclass(frozen=True)
class BarColumns:
    """OHLCV bars of one symbol as parallel arrays (epoch seconds; float prices)."""

    ts: Ints
    open: Floats
    high: Floats
    low: Floats
    close: Floats
    volume: Floats

    def __len__(self) -> int:
        return int(self.ts.size)

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, float, float, float, float, float]]) -> BarColumns:
        """Columns of ``(ts, open, high, low, close, volume)`` rows."""
        if not rows:
            empty = np.empty(0)
            return cls(np.empty(0, dtype=np.int64), empty, empty, empty, empty, empty)
        ts, o, h, low, c, v = zip(*rows, strict=True)
        return cls(
            np.array(ts, dtype=np.int64),
            np.array(o, dtype=np.float64),
            np.array(h, dtype=np.float64),
            np.array(low, dtype=np.float64),
            np.array(c, dtype=np.float64),
            np.array(v, dtype=np.float64),
        )

    def take(self, index: Any) -> BarColumns:
        """The rows ``index`` selects (a slice, a mask or an array of positions)."""
        return BarColumns(
            self.ts[index],
            self.open[index],
            self.high[index],
            self.low[index],
            self.close[index],
            self.volume[index],
        )

    def rows(self) -> Iterator[tuple[int, float, float, float, float, float]]:
        """``(ts, open, high, low, close, volume)`` as Python numbers, oldest first."""
        return zip(
            self.ts.tolist(),
            self.open.tolist(),
            self.high.tolist(),
            self.low.tolist(),
            self.close.tolist(),
            self.volume.tolist(),
            strict=True,
        )

    def bars(self, symbol: str, timeframe_s: int) -> list[Bar]:
        """One :class:`Bar` per row (built without per-field checks: the columns are checked).

        The garbage collector is paused meanwhile: a million new tuples would otherwise set off
        collections that scan them again and again (0.3 s instead of 1.1 s for 1M bars), and
        tuples of numbers and a string cannot form a cycle.
        """
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._bars(symbol, timeframe_s)
        finally:
            if paused:
                gc.enable()

    def _bars(self, symbol: str, timeframe_s: int) -> list[Bar]:
        return list(
            map(
                _make_bar,
                zip(
                    repeat(symbol),
                    repeat(timeframe_s),
                    self.ts.tolist(),
                    self.open.tolist(),
                    self.high.tolist(),
                    self.low.tolist(),
                    self.close.tolist(),
                    self.volume.tolist(),
                    strict=False,
                ),
            )
        )


class ColumnBars(Iterator[Bar]):
    """One symbol's bars made from its checked columns a chunk at a time as they are read: a
    million :class:`Bar` objects never live at once (about 250 MB), only the arrays (48 MB).

    A feed that holds its bars as columns returns this from ``bars()``; a backtest that can
    take the whole series at once (the vectorised path) reads :attr:`columns` instead of
    iterating, as long as nothing was read yet (:attr:`untouched`).
    """

    CHUNK = 65_536

    def __init__(self, columns: BarColumns, symbol: str, timeframe_s: int) -> None:
        self.columns = columns
        self.symbol = symbol
        self.timeframe_s = timeframe_s
        self._chunks = self._made()

    def __len__(self) -> int:
        return len(self.columns)

    def __iter__(self) -> Iterator[Bar]:
        # The generator itself, so that a loop over the bars makes no Python call per bar.
        return self._chunks

    def __next__(self) -> Bar:
        return next(self._chunks)

    @property
    def untouched(self) -> bool:
        """No bar was read yet: :attr:`columns` are still the whole series to come."""
        return inspect.getgeneratorstate(self._chunks) == inspect.GEN_CREATED

    def _made(self) -> Generator[Bar, None, None]:
        columns, chunk = self.columns, self.CHUNK
        for start in range(0, len(columns), chunk):
            yield from columns.take(slice(start, start + chunk)).bars(self.symbol, self.timeframe_s)


def bar_columns(bars: Sequence[Bar]) -> BarColumns:
    """Columns of ``bars`` (one symbol's, oldest first)."""
    return BarColumns.from_rows([bar[2:8] for bar in bars])


# -- the fast reader --------------------------------------------------------------------------

_WIDTHS = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}


def _fields(fmt: str, width: int) -> list[tuple[str, int, int]] | None:
    """(directive or literal, start, width) of a strptime format on a ``width``-wide cell; None
    for a directive this reader does not know (the caller then parses row by row)."""
    out: list[tuple[str, int, int]] = []
    position = 0
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char == "%":
            if i + 1 >= len(fmt):
                return None
            directive = fmt[i + 1]
            if directive in _WIDTHS:
                size = _WIDTHS[directive]
            elif directive == "f" and i + 2 == len(fmt):
                size = width - position  # the fraction runs to the end of the cell
                if not 1 <= size <= 6:
                    return None
            else:
                return None
            out.append((directive, position, size))
            position += size
            i += 2
        else:
            out.append(("=" + char, position, 1))  # a literal character
            position += 1
            i += 1
    return out if position == width else None


def _number(digits: npt.NDArray[np.uint8], start: int, size: int) -> Ints | None:
    """The decimal number in columns ``start:start+size`` of ``digits`` (bytes minus "0")."""
    block = digits[:, start : start + size]
    if (block > 9).any():
        return None
    wide = np.int64 if size > 9 else np.int32
    value: npt.NDArray[np.signedinteger[Any]] = block[:, 0].astype(wide)
    for k in range(1, size):
        value = value * 10 + block[:, k]
    return value.astype(np.int64)


def _month_starts(first: int, last: int) -> tuple[Ints, Ints]:
    """Days since 1970-01-01 of the first of each month ``first..last`` (months since year 0),
    and each month's length: a small table, looked up instead of computing per row."""
    months = np.arange(first, last + 2, dtype=np.int64)
    year, month = months // 12, months % 12 + 1
    y = year - (month <= 2)  # H. Hinnant's days_from_civil
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5
    starts = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return starts[:-1], np.diff(starts)


def parse_time_cells(cells: npt.NDArray[np.uint8], fmt: str | None) -> Ints | None:
    """Epoch seconds (UTC) of fixed-width timestamp cells, one row of bytes each.

    ``fmt`` None: epoch seconds or milliseconds (digits only). Otherwise a strptime format of
    ``%Y %m %d %H %M %S`` (and a trailing ``%f``, dropped as the row-by-row parser drops it) and
    literal characters. None when any cell does not fit, or is out of range.
    """
    rows, width = cells.shape
    if fmt in _ISO_FORMATS and width == len(_ISO_FORMATS[fmt]):
        return _iso_seconds(cells, _ISO_FORMATS[fmt])
    digits = cells - np.uint8(48)  # wraps below "0": anything but a digit is then above 9
    if fmt is None:
        value = _number(digits, 0, width)
        if value is None or width > 18:
            return None
        out: Ints = np.where(value > 10**11, value // 1000, value)
        return out
    fields = _fields(fmt, width)
    if fields is None:
        return None
    parts: dict[str, Ints] = {}
    for directive, start, size in fields:
        if directive.startswith("="):
            if (cells[:, start] != ord(directive[1])).any():
                return None
            continue
        value = _number(digits, start, size)
        if value is None:
            return None
        parts[directive] = value
    zero = np.zeros(rows, dtype=np.int64)
    year = parts.get("Y")
    month = parts.get("m", zero + 1)
    day = parts.get("d", zero + 1)
    if year is None or ((month < 1) | (month > 12)).any():
        return None
    months = year * 12 + month - 1
    first, last = int(months.min()), int(months.max())
    if first < 1970 * 12 or last - first > 12 * 10_000:
        return None  # before 1970 a dropped fraction rounds the other way: row by row
    starts, lengths = _month_starts(first, last)
    index = months - first
    if ((day < 1) | (day > lengths[index])).any():
        return None
    hour, minute, second = parts.get("H", zero), parts.get("M", zero), parts.get("S", zero)
    if (hour > 23).any() or (minute > 59).any() or (second > 59).any():
        return None
    seconds: Ints = (starts[index] + day - 1) * 86400 + hour * 3600 + minute * 60 + second
    return seconds


# The ISO layouts numpy's own datetime parser reads (five times faster than the digit
# arithmetic above, which reads every other layout): each format's cell, "9" for a digit.
_ISO_FORMATS = {
    "%Y-%m-%d %H:%M:%S": "9999-99-99 99:99:99",
    "%Y-%m-%dT%H:%M:%S": "9999-99-99T99:99:99",
    "%Y-%m-%d %H:%M": "9999-99-99 99:99",
    "%Y-%m-%dT%H:%M": "9999-99-99T99:99",
    "%Y-%m-%d": "9999-99-99",
}


def _iso_seconds(cells: npt.NDArray[np.uint8], layout: str) -> Ints | None:
    """Epoch seconds of cells in an ISO ``layout``, or None as :func:`parse_time_cells` says.

    Every cell is first checked against the layout (a digit where it has one, its literal
    character elsewhere): numpy's parser alone would take more than strptime does (a sign, a
    time zone, "T" for " "). It then refuses what strptime refuses (a 30 February, hour 24,
    second 60) with a ValueError.
    """
    pattern = np.frombuffer(layout.encode(), dtype=np.uint8)
    digit = pattern == ord("9")
    # One pass: less "0" where a digit goes (wrapping below it), less the literal elsewhere;
    # then at most 9 where a digit goes, exactly 0 elsewhere.
    offset = np.where(digit, np.uint8(48), pattern).astype(np.uint8)
    limit = np.where(digit, np.uint8(9), np.uint8(0)).astype(np.uint8)
    packed = np.ascontiguousarray(cells)
    if (packed - offset > limit).any():
        return None
    text = packed.view(f"S{cells.shape[1]}").ravel()
    try:
        seconds: Ints = text.astype("datetime64[s]").view(np.int64)
    except ValueError:
        return None
    if seconds.size and int(seconds.min()) < 0:
        return None  # before 1970: the digit arithmetic's rule (row by row), kept alike
    return seconds


def fast_csv_columns(
    file: Path,
    time_index: int,
    value_indices: Sequence[int],
    sample: str,
    fmt: str | None,
) -> BarColumns | None:
    """The file's rows as columns in file order, values checked; None when the file is not in
    the plain shape read here or any value is wrong (read it row by row then: see the module).

    ``value_indices``: the columns of open, high, low, close and volume (-1: no volume column,
    read as 0). ``sample``: the first row's timestamp cell, whose width every row must have.
    """
    width = len(sample.encode("utf-8"))
    if width == 0 or sample != sample.strip():
        return None
    used = [time_index, *(i for i in value_indices if i >= 0)]
    if len(set(used)) != len(used):
        return None
    try:
        table = read_plain_table(file, time_index, width, [i for i in value_indices if i >= 0])
    except OSError:
        return None
    if table is None:
        return None
    cells = table.text
    ts = parse_time_cells(cells, fmt)
    if ts is None:
        return None
    o, h, low, c = (table.numbers[i] for i in value_indices[:4])
    volume_index = value_indices[4]
    v = table.numbers[volume_index] if volume_index >= 0 else np.zeros(ts.size, dtype=np.float64)
    values = np.stack((o, h, low, c, v))
    if not np.isfinite(values).all():
        return None
    if (values[:4] <= 0).any() or (v < 0).any():
        return None
    if (h < np.maximum(np.maximum(o, c), low)).any() or (low > np.minimum(o, c)).any():
        return None
    return BarColumns(ts, o, h, low, c, v)


# -- the cache --------------------------------------------------------------------------------


def cache_path(file: Path) -> Path:
    """Where the columns of ``file`` are cached: beside it, hidden."""
    return file.with_name(f".{file.name}.tfcols.npz")


def content_key(file: Path, options: str = "") -> str:
    """The cache key of ``file``: a hash of its bytes, the loader version and ``options``."""
    digest = hashlib.sha256(f"tradefleet-columns-{LOADER_VERSION}\n{options}\n".encode())
    with file.open("rb") as handle:
        for block in iter(partial(handle.read, 1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


_FIELDS = ("ts", "open", "high", "low", "close", "volume")


def load_cached(file: Path, key: str) -> tuple[BarColumns, list[str]] | None:
    """The cached columns and notes of ``file`` when the cache holds ``key``; else None (no
    cache, another key, or a cache that cannot be read: it is then rebuilt)."""
    path = cache_path(file)
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None
            arrays = [np.asarray(stored[name]) for name in _FIELDS]
            notes = [str(note) for note in stored["notes"].tolist()]
    except Exception:  # a missing, truncated or foreign file is only a cache miss
        return None
    ts, *prices = arrays
    sizes = {array.size for array in arrays}
    if ts.dtype != np.int64 or len(sizes) != 1 or any(p.dtype != np.float64 for p in prices):
        return None
    return BarColumns(ts, *prices), notes


def store_cached(file: Path, key: str, columns: BarColumns, notes: Sequence[str]) -> bool:
    """Write the cache of ``file`` (atomically); False when its folder is not writable."""
    path = cache_path(file)
    try:
        handle, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    except OSError:
        return False
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(
                out,
                key=np.array(key),
                notes=np.array(list(notes), dtype=str),
                **{name: getattr(columns, name) for name in _FIELDS},
            )
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
        return False
    return True


def cached_columns(
    file: Path, options: str, read: Callable[[list[str]], BarColumns]
) -> tuple[BarColumns, list[str]]:
    """``file``'s columns from its cache, or ``read(notes)`` (then cached) when stale."""
    key = content_key(file, options)
    hit = load_cached(file, key)
    if hit is not None:
        return hit
    notes: list[str] = []
    columns = read(notes)
    store_cached(file, key, columns, notes)
    return columns, notes


__all__ = [
    "LOADER_VERSION",
    "BarColumns",
    "bar_columns",
    "cache_path",
    "cached_columns",
    "content_key",
    "fast_csv_columns",
    "load_cached",
    "parse_time_cells",
    "store_cached",
]
