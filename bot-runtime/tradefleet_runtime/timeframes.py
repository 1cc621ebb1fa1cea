"""Timeframe strings (``1m``, ``5m``, ``1h``, ``4h``, ``1d``, ``1w``) and their lengths in seconds.

MT5-style names (``M1``, ``M5``, ``H1``, ``H4``, ``D1``, ``W1``) are accepted too, because users
coming from MetaTrader write them that way.
"""

from __future__ import annotations

import re

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CCXT_STYLE = re.compile(r"^(\d+)([smhdw])$")
_MT5_STYLE = re.compile(r"^([MHDW])(\d+)$")
_MT5_UNIT = {"M": "m", "H": "h", "D": "d", "W": "w"}

SECONDS_PER_YEAR = 365.25 * 86400
# The longest bar: 366 days. Longer ones mean a typo (and overflowed the journal's 64-bit
# integers once the count had twenty digits).
MAX_TIMEFRAME_S = 366 * 86400
# Digits of the count, checked before int() (Python refuses to convert over 4,300 digits).
_MAX_COUNT_DIGITS = 9
# What parse_timeframe accepts, as one pattern (for the CRD's schema).
TIMEFRAME_PATTERN = r"^([0-9]+[smhdw]|[MHDW][0-9]+)$"


def parse_timeframe(text: str) -> int:
    """Return the length of a timeframe in seconds, or raise ``ValueError`` naming the text."""
    match = _CCXT_STYLE.match(text)
    if match:
        digits, unit = match.group(1), match.group(2)
    else:
        mt5 = _MT5_STYLE.match(text)
        if not mt5:
            raise ValueError(
                f"unknown timeframe {_shown(text)}: use e.g. 1m, 5m, 15m, 1h, 4h, 1d "
                "(or M5, H1, D1)"
            )
        digits, unit = mt5.group(2), _MT5_UNIT[mt5.group(1)]
    too_long = f"timeframe {_shown(text)} is longer than {MAX_TIMEFRAME_S // 86400} days"
    if len(digits.lstrip("0")) > _MAX_COUNT_DIGITS:
        raise ValueError(too_long)
    count = int(digits.lstrip("0") or "0")
    if count <= 0:
        raise ValueError(f"timeframe {_shown(text)} must be a positive length")
    seconds = count * _UNIT_SECONDS[unit]
    if seconds > MAX_TIMEFRAME_S:
        raise ValueError(too_long)
    return seconds


def _shown(text: str) -> str:
    # A refused timeframe is quoted in the error; a huge one is cut, not printed whole.
    return repr(text) if len(text) <= 40 else f"{text[:20]!r}... ({len(text)} characters)"


def format_timeframe(seconds: int) -> str:
    """Return the canonical short name of a timeframe length (``3600`` → ``1h``)."""
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def bucket_start(ts: int, timeframe_s: int) -> int:
    """Start of the timeframe bucket holding ``ts`` (UTC epoch seconds).

    Weekly buckets start on Monday 00:00 UTC, as every venue and charting tool does; the epoch
    was a Thursday, hence the offset.
    """
    if timeframe_s % 604800 == 0:
        offset = 4 * 86400
        return ts - ((ts - offset) % timeframe_s)
    return ts - (ts % timeframe_s)
