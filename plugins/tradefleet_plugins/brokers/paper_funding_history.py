"""A venue's history of funding rates for the paper broker (``funding_history``): the rows of a
CSV file checked into sorted arrays, and the funding times a held position owes between two
moments, each with its own rate.

Pure: the file's lines come in (``paper_funding_files`` opens the file, once per process per
version of it); nothing here reads a file or the clock.

A history is the venue's own list of funding times, not a grid: a venue that moved a symbol
from 8-hour to 4-hour funding pays twice as often from then on, and so does the history. What
it cannot say is the rate of a funding time outside it: the one an interval after its last
time (the interval of its last two rows) or before its first. :func:`next_funding_time` still
says when such a time falls, so that a position held there is found, and :func:`uncovered`
names it: the broker refuses to go on rather than charge 0 or a guess.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tradefleet_plugins.feeds.csv_time import format_time, parse_time
from tradefleet_runtime.sdk import DataError

#: The time column: the first of these a header holds (case-insensitive). Binance's monthly
#: files write ``calc_time``; a ccxt ``fetchFundingRateHistory`` dump ``timestamp``.
TIME_COLUMNS = ("calc_time", "timestamp", "time", "fundingTime")
#: The rate column, likewise: Binance's ``last_funding_rate``, ccxt's ``fundingRate``.
RATE_COLUMNS = ("last_funding_rate", "fundingRate", "funding_rate", "rate")
# The largest rate a history's row may hold, either way: 5 % an interval. Wider than the 1 % of
# ``funding_rate`` (a guess at the usual cost): venues cap some symbols' funding at 2-4 % an
# interval and a real history reaches it; beyond 5 % is a percent written as a fraction.
MAX_HISTORY_RATE = 0.05

# 9999-12-31 23:59:59 UTC: a later time is no date (and would overflow int64 as milliseconds).
_LATEST = 253_402_300_799


@dataclass(frozen=True)
class FundingHistory:
    """One symbol's funding times (epoch seconds, ascending, unique) and rates (a fraction of
    the notional per funding time, a long paying a positive one); two at least."""

    source: str  # the file, for messages
    times: npt.NDArray[np.int64]
    rates: npt.NDArray[np.float64]

    @property
    def first(self) -> int:
        return int(self.times[0])

    @property
    def last(self) -> int:
        return int(self.times[-1])


def parse_funding_history(lines: Iterable[str], source: str) -> FundingHistory:
    """The history in ``lines`` (a CSV file's, header first), checked: a DataError names
    ``source``, the row (1-based, the header is row 1) and the column of the first fault."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise DataError(f"{source}: row 1: the file is empty (a header row is needed)")
    time_at, time_name = _column(header, TIME_COLUMNS, "time", source)
    rate_at, rate_name = _column(header, RATE_COLUMNS, "rate", source)
    times: list[int] = []
    rates: list[float] = []
    rows: list[int] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line (a trailing one, most often)
        row = reader.line_num
        times.append(_time(_cell(cells, time_at, time_name, row, source), time_name, row, source))
        rates.append(_rate(_cell(cells, rate_at, rate_name, row, source), rate_name, row, source))
        rows.append(row)
    order = _time_order(times, rates, rows, time_name, source)
    if len(order) < 2:
        # One funding time says nothing of the interval after it: when the history ends.
        raise DataError(
            f"{source}: {len(order)} funding time(s): a history needs two at least (the "
            "interval between its last two times says when it ends)"
        )
    kept_times = np.array([times[i] for i in order], dtype=np.int64)
    kept_rates = np.array([rates[i] for i in order], dtype=np.float64)
    # Shared by every broker of the process that reads this file version: never written to.
    kept_times.flags.writeable = False
    kept_rates.flags.writeable = False
    return FundingHistory(source, kept_times, kept_rates)


def next_funding_time(history: FundingHistory, after: int) -> int:
    """The first funding time after ``after``: the history's own; before its first time or
    after its last, where the venue's next one falls at the interval of that end (a time the
    history has no rate for, which :func:`uncovered` names)."""
    times = history.times
    first, last = history.first, history.last
    if after >= last:
        step = last - int(times[-2])
        return last + ((after - last) // step + 1) * step
    if after < first:
        step = int(times[1]) - first
        # The latest ``first - k × step`` (k >= 0) still after ``after``.
        return first - ((first - after - 1) // step) * step
    return int(times[np.searchsorted(times, after, side="right")])


def uncovered(history: FundingHistory, due: int, opened: int) -> int | None:
    """The first funding time from ``due`` (one :func:`next_funding_time` gave) to ``opened``
    the history has no rate for; None when it prices every one of them."""
    first, last = history.first, history.last
    if due < first or due > last:
        return due
    beyond = last + (last - int(history.times[-2]))
    return beyond if opened >= beyond else None


def funding_due(history: FundingHistory, due: int, opened: int) -> tuple[list[int], list[float]]:
    """The history's funding times from ``due`` to ``opened``, both included, and their rates
    (Python numbers: they go into ``CashFlow``s and the journal)."""
    times = history.times
    start = int(np.searchsorted(times, due, side="left"))
    stop = int(np.searchsorted(times, opened, side="right"))
    return times[start:stop].tolist(), history.rates[start:stop].tolist()


def _column(header: list[str], names: tuple[str, ...], what: str, source: str) -> tuple[int, str]:
    """(index, name as written) of the first of ``names`` in ``header``."""
    lowered = [name.strip().lower() for name in header]
    for name in names:
        if name.lower() in lowered:
            at = lowered.index(name.lower())
            return at, header[at].strip()
    raise DataError(
        f"{source}: row 1: no funding {what} column: the header ({', '.join(header)}) names "
        f"none of {', '.join(names)}"
    )


def _cell(cells: list[str], at: int, name: str, row: int, source: str) -> str:
    text = cells[at].strip() if at < len(cells) else ""
    if not text:
        raise DataError(f"{source}: row {row}: {name}: no value")
    return text


def _time(text: str, name: str, row: int, source: str) -> int:
    """Epoch seconds of a time cell, by the csv feed's rules (digits over 10^11 are ms)."""
    try:
        ts = parse_time(text, None)
    except (ValueError, OverflowError):
        ts = -1
    if not 0 <= ts <= _LATEST:
        raise DataError(
            f"{source}: row {row}: {name}: {text!r} is not a time (epoch seconds or "
            "milliseconds, or ISO 8601)"
        )
    return ts


def _rate(text: str, name: str, row: int, source: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise DataError(f"{source}: row {row}: {name}: {text!r} is not a number") from None
    if not math.isfinite(rate):
        raise DataError(f"{source}: row {row}: {name}: {text!r} is not a finite number")
    if abs(rate) > MAX_HISTORY_RATE:
        # Beyond any venue's cap: a percent written as a fraction.
        raise DataError(
            f"{source}: row {row}: {name}: {rate:g} is beyond ±{MAX_HISTORY_RATE:g} an "
            "interval (a fraction of the notional: 0.0001 is 0.01 %; a percent written here?)"
        )
    return rate


def _time_order(
    times: list[int], rates: list[float], rows: list[int], name: str, source: str
) -> list[int]:
    """Indexes of the rows oldest first: as written, or reversed when the file runs newest
    first. A row repeating the one before (the same time and rate: files joined with an
    overlap) is kept once; the same time at another rate, or a row out of the file's order,
    is refused naming it."""
    kept = [0] if times else []
    direction = 0
    for i in range(1, len(times)):
        step = times[i] - times[i - 1]
        if step == 0:
            if rates[i] != rates[i - 1]:
                raise DataError(
                    f"{source}: row {rows[i]}: {name}: {_utc(times[i])} again (row "
                    f"{rows[i - 1]}) at another rate ({rates[i]!r}, not {rates[i - 1]!r})"
                )
            continue
        sign = 1 if step > 0 else -1
        if direction and sign != direction:
            raise DataError(
                f"{source}: row {rows[i]}: {name}: {_utc(times[i])} is out of order (row "
                f"{rows[i - 1]}: {_utc(times[i - 1])}): write the rows oldest or newest first"
            )
        direction = sign
        kept.append(i)
    return kept if direction >= 0 else kept[::-1]


def _utc(ts: int) -> str:
    return f"{format_time(ts)} UTC"
