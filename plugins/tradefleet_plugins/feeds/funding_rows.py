"""The decisions of ``tradefleet funding-history`` (``funding_download`` does the I/O): which
time window each request asks for, the venue's rows checked and de-duplicated, an existing
file merged with them, the rows written out, and the wait before a retry.

Pure: ccxt's answers and a file's lines come in; nothing here reads a file, the clock or the
network.

The pages. A request asks for ``[start, end]`` and at most ``limit`` rows, and venues do not
agree on *which* rows a range holding more than ``limit`` gives: Binance the oldest ("return
as startTime + limit"), Bybit the newest (ccxt's own Bybit pagination walks backwards from
endTime). Paging forward from the last row seen would silently drop the oldest rows of every
Bybit page. So each window is made too short to hold a full page: ``limit - 1`` intervals,
the shortest interval between the rows seen so far (an hour before any: no venue funds more
often). A page that still comes back full (the venue moved to a shorter interval) may have
been cut: the window is halved and asked again until a page is not full; then the next
window starts after it. A window that holds nothing before any row was seen (a ``--since``
before the symbol's listing) doubles the next one, up to a year.

Times are kept in epoch seconds, the paper broker's resolution (``paper_funding_history``
reads milliseconds and drops them): a venue's 08:00:00.003 and a file's 08:00 are one time.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from tradefleet_plugins.brokers.ccxt_errors import backoff_s
from tradefleet_plugins.brokers.paper_funding_history import (
    MAX_HISTORY_RATE,
    RATE_COLUMNS,
    TIME_COLUMNS,
    parse_funding_history,
)
from tradefleet_plugins.feeds.csv_time import format_time, parse_time
from tradefleet_runtime.sdk import DataError

#: The columns written: the two the paper broker reads (``paper_funding_history``'s
#: ``timestamp`` and ``fundingRate``), then where the rows came from, so that a later download
#: into the same file refuses another venue's or symbol's rows instead of mixing them.
HEADER = ("timestamp", "fundingRate", "exchange", "symbol")

#: The shortest funding interval of any venue (Binance and Bybit move symbols to 1-hour
#: funding at the extremes; none funds more often).
MIN_INTERVAL_MS = 3_600_000
#: The longest window asked for while nothing is found (before a symbol's listing).
MAX_SPAN_MS = 366 * 86_400_000

#: Rows a request may ask for, by ccxt exchange id (the venues' documented maxima: Binance
#: USDⓈ-M ``GET /fapi/v1/fundingRate`` 1000, Bybit ``GET /v5/market/funding/history`` 200).
PAGE_LIMITS: Mapping[str, int] = {"binanceusdm": 1000, "binance": 1000, "bybit": 200}
#: Any other venue's: small enough for most venues' maxima (a page cut shorter still is found
#: only when it comes back full).
DEFAULT_PAGE_LIMIT = 100

#: Retries of a request failing for a passing reason (network, 5xx, rate limit): backoff from
#: ``RETRY_BASE_S``, doubling up to ``RETRY_MAX_S``, ``ATTEMPTS`` tries in all (about a minute).
ATTEMPTS = 6
RETRY_BASE_S = 1.0
RETRY_MAX_S = 30.0
#: A venue asking for a longer pause (Binance's 418 ban) ends the command, saying until when:
#: a download has no reason to sit out a ban.
LONGEST_WAIT_S = 300.0


@dataclass(frozen=True)
class Window:
    """One request's range, epoch milliseconds, both ends included."""

    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class FileRow:
    """A row of an existing file: its row number (the header is row 1), time (epoch seconds),
    rate, and the exchange and symbol it names ("" where the file has no such column)."""

    row: int
    time_s: int
    rate: float
    exchange: str
    symbol: str


@dataclass(frozen=True)
class OutRow:
    time_s: int
    rate: float
    exchange: str
    symbol: str


@dataclass(frozen=True)
class Merged:
    """The rows to write, oldest first, and how many of them the file did not have."""

    rows: tuple[OutRow, ...]
    new: int


def page_limit(exchange: str) -> int:
    return PAGE_LIMITS.get(exchange, DEFAULT_PAGE_LIMIT)


def first_window(since_ms: int, until_ms: int, span_ms: int) -> Window | None:
    """The window of ``span_ms`` from ``since_ms`` (cut at ``until_ms``); None when
    ``since_ms`` is after ``until_ms``."""
    if since_ms > until_ms:
        return None
    return Window(since_ms, min(until_ms, since_ms + span_ms - 1))


def next_window(
    asked: Window, in_window: int, limit: int, until_ms: int, span_ms: int
) -> Window | None:
    """The window after a page that held ``in_window`` rows of ``asked``: the first half of
    ``asked`` again when the page was full (it may have been cut), else the ``span_ms`` after
    ``asked``; None when that starts after ``until_ms``."""
    if in_window >= limit and asked.end_ms > asked.start_ms:
        return Window(asked.start_ms, asked.start_ms + (asked.end_ms - asked.start_ms) // 2)
    return first_window(asked.end_ms + 1, until_ms, span_ms)


def first_span(limit: int) -> int:
    """The first window's length: fewer funding times than ``limit`` at one an hour."""
    return max(limit - 1, 1) * MIN_INTERVAL_MS


def next_span(kept: Iterable[int], asked: Window, in_window: int, limit: int) -> int:
    """The next window's length: ``limit - 1`` times the shortest gap between the ``kept``
    times (epoch seconds; an hour at least); twice ``asked`` (up to ``MAX_SPAN_MS``) while
    nothing was found."""
    times = sorted(kept)
    if len(times) >= 2:
        gap = min(b - a for a, b in itertools.pairwise(times)) * 1000
        return max(limit - 1, 1) * max(gap, MIN_INTERVAL_MS)
    if not times and not in_window:
        return min(2 * (asked.end_ms - asked.start_ms + 1), MAX_SPAN_MS)
    return first_span(limit)


def take_page(
    kept: Mapping[int, float],
    entries: Sequence[Mapping[str, object]],
    asked: Window,
    bounds: Window,
    source: str,
) -> tuple[dict[int, float], int]:
    """``kept`` (epoch seconds → rate) with a page of ccxt funding-rate entries added, and how
    many of the page's rows lie in ``asked``. Rows outside ``bounds`` (``--since`` to
    ``--until``) are left out; a time seen before at the same rate is kept once; at another
    rate, or a row without a time or a finite rate, is a DataError naming ``source``."""
    merged = dict(kept)
    in_window = 0
    for i, entry in enumerate(entries):
        at_ms = _entry_time(entry, i, source)
        if not bounds.start_ms <= at_ms <= bounds.end_ms:
            continue  # not asked for (the window lies within the bounds): not written
        if asked.start_ms <= at_ms <= asked.end_ms:
            in_window += 1
        rate = _entry_rate(entry, at_ms, source)
        at = at_ms // 1000
        before = merged.get(at)
        if before is not None and before != rate:
            raise DataError(
                f"{source}: the venue listed {_utc(at)} twice, at {_text(before)} and at "
                f"{_text(rate)}"
            )
        merged[at] = rate
    return merged, in_window


def _entry_time(entry: Mapping[str, object], i: int, source: str) -> int:
    """Epoch ms of one ccxt funding-rate entry, checked."""
    at = entry.get("timestamp")
    if not isinstance(at, int) or isinstance(at, bool) or at < 0:
        raise DataError(f"{source}: the venue's row {i + 1} of a page has no time ({at!r})")
    return at


def _entry_rate(entry: Mapping[str, object], at_ms: int, source: str) -> float:
    """The rate of one ccxt funding-rate entry, checked as the paper broker will."""
    rate = entry.get("fundingRate")
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not math.isfinite(rate):
        raise DataError(
            f"{source}: the venue's row at {_utc(at_ms // 1000)} has no funding rate ({rate!r})"
        )
    if abs(rate) > MAX_HISTORY_RATE:
        # The broker would refuse the file: said here, naming the venue's row.
        raise DataError(
            f"{source}: the venue's rate at {_utc(at_ms // 1000)}, {rate!r}, is beyond "
            f"±{MAX_HISTORY_RATE:.10g} an interval, which the paper broker refuses"
        )
    return float(rate)


def read_file(lines: Sequence[str], source: str) -> list[FileRow]:
    """The rows of an existing history file, in its order; a DataError (naming ``source``,
    the row and the column) when the paper broker would not read it as a funding history."""
    parse_funding_history(lines, source)  # the broker's own checks, first
    reader = csv.reader(lines)
    header = [name.strip().lower() for name in next(reader)]
    time_at = _required_column(header, TIME_COLUMNS)
    rate_at = _required_column(header, RATE_COLUMNS)
    exchange_at = _first_column(header, ("exchange",))
    symbol_at = _first_column(header, ("symbol",))
    rows: list[FileRow] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # as the broker skips them
        rows.append(
            FileRow(
                reader.line_num,
                parse_time(cells[time_at], None),
                float(cells[rate_at]),
                _cell(cells, exchange_at),
                _cell(cells, symbol_at),
            )
        )
    return rows


def _first_column(header: list[str], names: Iterable[str]) -> int | None:
    """The index of the first of ``names`` in ``header`` (lowered), as the broker picks its
    time and rate columns."""
    for name in names:
        if name.lower() in header:
            return header.index(name.lower())
    return None


def _required_column(header: list[str], names: Iterable[str]) -> int:
    at = _first_column(header, names)
    if at is None:  # the broker's checks refused such a header already
        raise DataError(f"no column of {', '.join(names)}")
    return at


def _cell(cells: list[str], at: int | None) -> str:
    return cells[at].strip() if at is not None and at < len(cells) else ""


def merge(
    existing: Sequence[FileRow],
    venue: Mapping[int, float],
    exchange: str,
    symbol: str,
    source: str,
) -> Merged:
    """The file's rows and the venue's, oldest first, each time once.

    Refused (DataError naming ``source`` and the row): a row naming another exchange or
    symbol, and a time the file holds at another rate than the venue lists. Rows of the file
    the venue did not list (older ones, or ones written by hand) are kept as they are.
    """
    rows: dict[int, OutRow] = {}
    for row in existing:
        _same_market(row, exchange, symbol, source)
        listed = venue.get(row.time_s)
        if listed is not None and listed != row.rate:
            raise DataError(
                f"{source}: row {row.row}: {_utc(row.time_s)} is at {_text(row.rate)} in the "
                f"file but at {_text(listed)} at {exchange}: not merged (the file is "
                "unchanged); is it another venue's history, or edited by hand?"
            )
        rows.setdefault(row.time_s, OutRow(row.time_s, row.rate, row.exchange, row.symbol))
    new = 0
    for at, rate in venue.items():
        if at not in rows:
            rows[at] = OutRow(at, rate, exchange, symbol)
            new += 1
    return Merged(tuple(rows[at] for at in sorted(rows)), new)


def _same_market(row: FileRow, exchange: str, symbol: str, source: str) -> None:
    for column, found, wanted in (
        ("exchange", row.exchange, exchange),
        ("symbol", row.symbol, symbol),
    ):
        if found and found != wanted:
            raise DataError(
                f"{source}: row {row.row}: {column}: {found!r}, not {wanted!r}: the file is "
                f"another market's history (not merged; the file is unchanged): write to "
                "another --out"
            )


def render(rows: Iterable[OutRow]) -> str:
    """The file's text: the header, then a row a line (times ISO 8601 UTC, rates as plain
    decimals)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow((iso_utc(row.time_s), _text(row.rate), row.exchange, row.symbol))
    return text.getvalue()


def iso_utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary(merged: Merged, exchange: str, symbol: str, out: str) -> str:
    """The command's one line: the rows, the first and last time, how many were new."""
    rows = merged.rows
    unchanged = "" if merged.new else " (the file is unchanged)"
    return (
        f"{exchange} {symbol}: {len(rows)} funding times in {out}, {_utc(rows[0].time_s)} to "
        f"{_utc(rows[-1].time_s)}, {merged.new} new{unchanged}"
    )


def retry_wait(attempt: int, asked_s: float | None, jitter: float) -> float:
    """Seconds before retry ``attempt`` (0 first): the backoff with jitter, or the venue's
    Retry-After when that is longer."""
    backoff = backoff_s(attempt, RETRY_BASE_S, RETRY_MAX_S, jitter)
    return backoff if asked_s is None else max(backoff, asked_s)


def _text(rate: float) -> str:
    """A rate as a plain decimal, as short as it reads back the same: 1e-05 is 0.00001."""
    return format(Decimal(repr(rate)), "f")


def _utc(ts: int) -> str:
    return f"{format_time(ts)} UTC"
