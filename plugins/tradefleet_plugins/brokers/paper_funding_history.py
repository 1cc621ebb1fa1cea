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

Nor can it say the rate of a funding time missing inside it: a row lost from the file (a month
not downloaded, a join that dropped a line). Such a hole is told from a schedule change by the
gaps around it: the gap between two rows is a hole when it is at least ``HOLE_FACTOR`` (1.5)
times the gap before it and the gap after it (at the file's first or last gap, the one
neighbour it has; a file of one gap has none). 8h, 8h, 4h, 4h (a venue moving to 4-hour
funding) and 4h, 4h, 8h, 8h (back) have none; 8h, 8h, 16h, 8h has one. The venue's times in a
hole are taken to follow the row before it at the smaller of the two neighbouring intervals
(16:00 in a hole from 08:00 to 00:00 at 8 hours; the more of them, the fewer a position can
hold unseen): :func:`next_funding_time` gives them and :func:`uncovered` names them, as it names
a time outside the file. The rule cannot see a hole as long as its neighbour gap (8h, 16h,
16h, 8h: two rows lost a row apart reads as a move to 16-hour funding and back), nor a row lost
where the venue also changed its interval by as much; and it takes a venue's change at the
file's first or last gap (8h, 4h, 4h) for a hole: with one neighbour the two look alike, and
a refusal (the user adds a row) is the safer of the two mistakes.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tradefleet_plugins.feeds.csv_time import format_time, parse_time
from tradefleet_runtime.sdk import DataError

#: The time column: the first of these a header holds (case-insensitive). Binance's monthly
#: files write ``calc_time``; a ccxt ``fetchFundingRateHistory`` dump ``timestamp``.
TIME_COLUMNS = ("calc_time", "timestamp", "time", "fundingTime")
#: The rate column, likewise: Binance's ``last_funding_rate``, ccxt's ``fundingRate``.
RATE_COLUMNS = ("last_funding_rate", "fundingRate", "funding_rate", "rate")
#: The market a row is of, when a file says (``tradefleet funding-history`` writes it).
SYMBOL_COLUMN = "symbol"
# The largest rate a history's row may hold, either way: 5 % an interval. Wider than the 1 % of
# ``funding_rate`` (a guess at the usual cost): venues cap some symbols' funding at 2-4 % an
# interval and a real history reaches it; beyond 5 % is a percent written as a fraction.
MAX_HISTORY_RATE = 0.05

#: A gap between two rows is a hole (rows missing) when it is at least this many times the gap
#: on each side of it. A lost row doubles a gap; a venue's own schedule change makes one gap
#: differ from the one before it only (a hole has both its neighbours shorter). 1.5, not 2:
#: venues' times are not to the second, and a lost row beside a shorter interval (8h, 12h, 4h)
#: is still found.
HOLE_FACTOR = 1.5

# 9999-12-31 23:59:59 UTC: a later time is no date (and would overflow int64 as milliseconds).
_LATEST = 253_402_300_799


@dataclass(frozen=True)
class FundingHistory:
    """One symbol's funding times (epoch seconds, ascending, unique) and rates (a fraction of
    the notional per funding time, a long paying a positive one); two at least."""

    source: str  # the file, for messages
    times: npt.NDArray[np.int64]
    rates: npt.NDArray[np.float64]
    # The markets its rows name (a ``symbol`` column, as ``tradefleet funding-history``
    # writes; empty without one): whose history it is (``other_market``).
    symbols: frozenset[str] = frozenset()
    # The holes (rows missing), derived from ``times`` (see the module's docstring), ascending:
    # each one's row before and after it, and the interval its missing times are taken at.
    hole_starts: npt.NDArray[np.int64] = field(init=False, repr=False, compare=False)
    hole_ends: npt.NDArray[np.int64] = field(init=False, repr=False, compare=False)
    hole_steps: npt.NDArray[np.int64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived here, not passed in: a history's holes can never disagree with its times.
        starts, ends, steps = find_holes(self.times)
        object.__setattr__(self, "hole_starts", starts)
        object.__setattr__(self, "hole_ends", ends)
        object.__setattr__(self, "hole_steps", steps)

    @property
    def first(self) -> int:
        return int(self.times[0])

    @property
    def last(self) -> int:
        return int(self.times[-1])

    @property
    def holes(self) -> list[tuple[int, int]]:
        """(row before, row after) of each hole, oldest first."""
        return list(zip(self.hole_starts.tolist(), self.hole_ends.tolist(), strict=True))


def find_holes(
    times: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(rows before, rows after, intervals) of the holes of ascending ``times``: each gap at
    least ``HOLE_FACTOR`` times the gap before it and the gap after it (where there is one),
    and the smaller of those neighbouring gaps."""
    gaps = np.diff(times)
    count = len(gaps)
    wide = np.ones(count, dtype=bool)
    if count > 1:
        wide[1:] &= gaps[1:] >= HOLE_FACTOR * gaps[:-1]  # than the gap before
        wide[:-1] &= gaps[:-1] >= HOLE_FACTOR * gaps[1:]  # than the gap after
    else:
        wide[:] = False  # one gap: no neighbour to tell a hole from the interval
    at = np.flatnonzero(wide)
    before = gaps[np.maximum(at - 1, 0)]
    after = gaps[np.minimum(at + 1, count - 1)]
    # At the first gap ``before`` is the gap itself (and at the last ``after``), never the
    # smaller: the neighbour it has gives the interval.
    steps = np.where(at == 0, after, np.where(at == count - 1, before, np.minimum(before, after)))
    arrays = (times[at], times[at + 1], steps.astype(np.int64))
    for array in arrays:
        array.flags.writeable = False  # shared, as the times are
    return arrays


def describe_holes(history: FundingHistory) -> str | None:
    """The warning a history with holes is read with (None without): the file, how many, the
    first, and what it means for a run."""
    count = len(history.hole_starts)
    if not count:
        return None
    start, end = int(history.hole_starts[0]), int(history.hole_ends[0])
    step = int(history.hole_steps[0])
    return (
        f"{history.source}: {count} hole(s) in the funding history (rows missing), the first "
        f"from {_utc(start)} to {_utc(end)}: {_hours(end - start)} without a row where the "
        f"rows around it are {_hours(step)} apart. A position held over a hole fails the run; "
        "add the venue's missing rows to the file (download them again)"
    )


def hole_around(history: FundingHistory, ts: int) -> tuple[int, int] | None:
    """(row before, row after) of the hole ``ts`` lies strictly inside; None when none."""
    starts = history.hole_starts
    if not len(starts):
        return None
    i = int(np.searchsorted(starts, ts, side="left")) - 1
    if i < 0 or ts >= int(history.hole_ends[i]):
        return None
    return int(starts[i]), int(history.hole_ends[i])


def parse_funding_history(lines: Iterable[str], source: str) -> FundingHistory:
    """The history in ``lines`` (a CSV file's, header first), checked: a DataError names
    ``source``, the row (1-based, the header is row 1) and the column of the first fault."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise DataError(f"{source}: row 1: the file is empty (a header row is needed)")
    time_at, time_name = _column(header, TIME_COLUMNS, "time", source)
    rate_at, rate_name = _column(header, RATE_COLUMNS, "rate", source)
    symbol_at = _optional_column(header, SYMBOL_COLUMN)
    times: list[int] = []
    rates: list[float] = []
    rows: list[int] = []
    symbols: set[str] = set()
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line (a trailing one, most often)
        row = reader.line_num
        times.append(_time(_cell(cells, time_at, time_name, row, source), time_name, row, source))
        rates.append(_rate(_cell(cells, rate_at, rate_name, row, source), rate_name, row, source))
        rows.append(row)
        if symbol_at is not None and symbol_at < len(cells) and cells[symbol_at].strip():
            symbols.add(cells[symbol_at].strip())
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
    return FundingHistory(source, kept_times, kept_rates, frozenset(symbols))


def other_market(history: FundingHistory, symbol: str) -> str | None:
    """A market ``history``'s rows name that is surely not ``symbol`` (None: every row may
    name it, or the file names none). Refused only when sure: the bot may name its market by
    ccxt's unified symbol (``BTC/USDT:USDT``) or by the venue's own id (``BTC-USDT-SWAP``,
    ``PF_XBTUSD``, ``BTCUSD_PERP``), and the rows of ``tradefleet funding-history`` name the
    unified one whichever it was given (see :func:`_may_be_same_market`)."""
    for named in sorted(history.symbols):
        if not _may_be_same_market(named, symbol):
            return named
    return None


# A base some venues spell otherwise in their ids (Kraken: XBTUSD, PF_XBTUSD; XDGUSD). Only
# widens what is taken: an alias missing here refuses a file of the bot's own market.
_BASE_ALIASES = {"BTC": ("XBT",), "XBT": ("BTC",), "DOGE": ("XDG",), "XDG": ("DOGE",)}


def _may_be_same_market(one: str, other: str) -> bool:
    """False only when ``one`` and ``other`` surely name two markets.

    Two unified names (``BASE/QUOTE[:SETTLE]``): the same base and quote, and the same
    settlement currency when both name one (``BTC/USD:BTC``, Kraken's inverse perpetual, is
    not ``BTC/USD:USD``, its linear one; ``BTC/USDT`` may be either spelling of a
    perpetual). A unified name and a venue id: a part of the id is the base (or its alias)
    and the quote run together, or parts are the base and then the quote
    (:func:`_id_may_name`; ``PF_XBTUSD`` is ``BTC/USD:USD``'s id, or
    ``BTC/USD:BTC``'s neighbour ``PI_XBTUSD``: an id cannot say the settlement). Two ids: the
    same letters and digits (``BTC-USDT`` is ``BTCUSDT``)."""
    first, second = _unified(one), _unified(other)
    if first is not None and second is not None:
        return _same_unified(first, second)
    if first is not None:
        return _id_may_name(other, first)
    if second is not None:
        return _id_may_name(one, second)
    return _letters(one) == _letters(other)


def _unified(name: str) -> tuple[str, str, str] | None:
    """(base, quote, settle: "" when not named) of a ccxt unified name; None for a venue id
    (no ``/``). The settle part keeps a dated future's expiry (``USDT-240628``): another
    market than the perpetual."""
    if "/" not in name:
        return None
    pair, _, settle = name.partition(":")
    base, _, quote = pair.partition("/")
    return _letters(base), _letters(quote), settle.strip().upper()


def _same_unified(first: tuple[str, str, str], second: tuple[str, str, str]) -> bool:
    (base, quote, settle), (base2, quote2, settle2) = first, second
    if quote != quote2 or (settle and settle2 and settle != settle2):
        return False
    return base == base2 or base2 in _BASE_ALIASES.get(base, ())


def _id_may_name(venue_id: str, unified: tuple[str, str, str]) -> bool:
    """Whether ``venue_id`` (as written: its separators split it) may name the unified name's
    market, by whole parts, never a substring (``BTCUSDT`` does not name ``BTC/USD``, whose
    quote is only the start of ``USDT``): a part is the base (or its alias) and the quote run
    together, maybe with a contract's suffix (``BTCUSDT``, ``PF_XBTUSD``, ``BTCUSD_PERP``,
    KuCoin's ``XBTUSDTM``, ``BTCUSDT240628``); or a part is the base and a later one the quote
    (``BTC-USDT-SWAP``); or a part is the base and the others only say a contract
    (Deribit's ``BTC-PERPETUAL``, which names no quote: it cannot be told apart)."""
    base, quote, _ = unified
    parts = [part for part in _PARTS.split(venue_id.upper()) if part]
    spellings = (base, *_BASE_ALIASES.get(base, ()))
    for part in parts:
        for spelling in spellings:
            pair = spelling + quote
            rest = part[len(pair) :]
            if part.startswith(pair) and (rest in _CONTRACT_SUFFIXES or rest.isdigit()):
                return True
    for at, part in enumerate(parts):
        if part in spellings:
            others = parts[:at] + parts[at + 1 :]
            if quote in parts[at + 1 :] or (others and set(others) <= _CONTRACT_WORDS):
                return True
    return False


# What a contract id adds to its base and quote: nothing, KuCoin's perpetual "M", "PERP".
_CONTRACT_SUFFIXES = frozenset({"", "M", "PERP"})
# Parts of an id that only say it is a contract.
_CONTRACT_WORDS = frozenset({"PERP", "PERPETUAL", "SWAP", "FUTURES", "FUTURE"})
_PARTS = re.compile(r"[^A-Z0-9]+")


def _letters(name: str) -> str:
    """A name's letters and digits, upper-cased: its separators and case are spelling."""
    return "".join(ch for ch in name if ch.isalnum()).upper()


def next_funding_time(history: FundingHistory, after: int) -> int:
    """The first funding time after ``after``: the history's own; before its first time or
    after its last, where the venue's next one falls at the interval of that end; in a hole,
    where the venue's would fall at the hole's interval (times the history has no rate for,
    which :func:`uncovered` names)."""
    times = history.times
    first, last = history.first, history.last
    if after >= last:
        step = last - int(times[-2])
        return last + ((after - last) // step + 1) * step
    if after < first:
        step = int(times[1]) - first
        # The latest ``first - k × step`` (k >= 0) still after ``after``.
        return first - ((first - after - 1) // step) * step
    following = int(times[np.searchsorted(times, after, side="right")])
    if not len(history.hole_starts):
        return following
    return min(following, _next_in_hole(history, after))


def _next_in_hole(history: FundingHistory, after: int) -> int:
    """The first of the venue's times in a hole after ``after`` (``after`` inside the
    history), or the hole's end; ``_LATEST`` when ``after`` is in no hole."""
    starts = history.hole_starts
    i = int(np.searchsorted(starts, after, side="right")) - 1
    if i < 0:
        return _LATEST
    start, end, step = int(starts[i]), int(history.hole_ends[i]), int(history.hole_steps[i])
    if after >= end:
        return _LATEST
    return min(start + ((after - start) // step + 1) * step, end)


def uncovered(history: FundingHistory, due: int, opened: int) -> int | None:
    """The first funding time from ``due`` (one :func:`next_funding_time` gave) to ``opened``
    the history has no rate for (outside it, or in a hole); None when it prices every one of
    them."""
    first, last = history.first, history.last
    if due < first or due > last:
        return due
    starts = history.hole_starts
    if len(starts):
        if hole_around(history, due) is not None:
            return due  # a time in a hole (a history's own time is never inside one)
        # ``due`` is a row: the holes after it are those starting at or after it.
        i = int(np.searchsorted(starts, due, side="left"))
        if i < len(starts):
            missing = int(starts[i]) + int(history.hole_steps[i])
            if missing <= opened:
                return missing
    beyond = last + (last - int(history.times[-2]))
    return beyond if opened >= beyond else None


def funding_due(history: FundingHistory, due: int, opened: int) -> tuple[list[int], list[float]]:
    """The history's funding times from ``due`` to ``opened``, both included, and their rates
    (Python numbers: they go into ``CashFlow``s and the journal)."""
    times = history.times
    start = int(np.searchsorted(times, due, side="left"))
    stop = int(np.searchsorted(times, opened, side="right"))
    return times[start:stop].tolist(), history.rates[start:stop].tolist()


def _optional_column(header: list[str], name: str) -> int | None:
    lowered = [cell.strip().lower() for cell in header]
    return lowered.index(name) if name in lowered else None


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
            f"{source}: row {row}: {name}: {rate:.10g} is beyond ±{MAX_HISTORY_RATE:.10g} an "
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


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:.10g} hours"
