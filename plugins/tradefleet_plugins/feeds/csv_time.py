"""Timestamps of the ``csv`` feed: one grammar for a file's time column and for the ``start``
and ``end`` params, so that a bound the params accept is read the same way the feed reads it.

Kept apart from ``csv_feed`` because the params model (``csv_params``), which the feed
imports, checks ``start`` and ``end`` with it.
"""

from __future__ import annotations

from datetime import UTC, datetime

FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%d.%m.%Y %H:%M:%S.%f",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y.%m.%d %H:%M",
)


def parse_time(text: str, fmt: str | None) -> int:
    """UTC epoch seconds from a timestamp cell."""
    text = text.strip()
    if fmt:
        return int(datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp())
    if text.isdigit():
        value = int(text)
        return value // 1000 if value > 10**11 else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None:
        for candidate in FORMATS:
            try:
                parsed = datetime.strptime(text, candidate)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(f"unrecognised timestamp {text!r} (set timestamp_format)")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def detect_format(sample: str) -> str | None:
    """Pick the strptime format once, so 100k rows don't each try several."""
    sample = sample.strip()
    if sample.isdigit():
        return None
    for candidate in FORMATS:
        try:
            datetime.strptime(sample, candidate)
        except ValueError:
            continue
        return candidate
    return None


_ACCEPTED = "write ISO 8601 (2017-06-01 or 2017-06-01T12:00, UTC unless it names a zone)"


def bound_time(text: str) -> int:
    """Epoch seconds of a ``start``/``end`` param; ValueError saying what is accepted."""
    digits = text.strip()
    # "2017" or "20170601" would read as seconds after 1970 (a window of all the data, said
    # nowhere): epoch seconds since 1973 have 9 digits or more, so shorter ones are refused.
    if digits.isdigit() and len(digits) < 9:
        raise ValueError(f"{text!r} is ambiguous: {_ACCEPTED} or epoch seconds (10 digits)")
    try:
        ts = parse_time(text, None)
        datetime.fromtimestamp(ts, UTC)  # a date at all (not 10^15 seconds away)
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"{text!r} is not a time: {_ACCEPTED} or epoch seconds") from None
    return ts


def format_time(ts: int) -> str:
    """``ts`` as a UTC time for messages (seconds only when there are some)."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")
