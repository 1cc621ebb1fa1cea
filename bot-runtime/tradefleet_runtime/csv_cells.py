"""A plain CSV file's cells, split and parsed by whole-array operations on its bytes.

numpy's ``loadtxt`` decodes the file to text and parses each number in its C loop; on a
million rows of OHLCV that was 0.92 s of a 1.0 s read. Here the file is read in blocks of
bytes, lines and fields are found by locating every newline and delimiter at once, and a
decimal cell is parsed by column arithmetic over its digits.

A number is parsed exactly as Python's ``float`` parses it (correctly rounded): a cell of at
most 15 digits and one optional point is an integer mantissa below 2**53 and a power of ten up
to 10**22, both exact doubles, so their quotient is one IEEE division — the correctly rounded
value (Clinger's fast path). Any other cell (an exponent, a sign ``+``, more digits) is given to
``float`` one by one after a strict pattern check. Anything else — a line with another number
of fields, a cell the pattern refuses, an undecodable timestamp width — answers None, and the
caller reads the file another way; this module never decides what an error says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["PlainTable", "read_plain_table"]

Floats = npt.NDArray[np.float64]
Bytes = npt.NDArray[np.uint8]
Ints = npt.NDArray[np.int64]

# Bytes of the file parsed at a time (whole lines): about 64k OHLCV rows, so a million-row file
# never lives at once as bytes and the work arrays stay a few MB.
_BLOCK = 1 << 22
_BOM = b"\xef\xbb\xbf"
_NEWLINE, _RETURN, _DOT, _MINUS = 10, 13, 46, 45
# The cells handed to ``float`` one by one: a plain decimal, with an optional sign and
# exponent — no spaces, underscores, "inf" or "nan", which ``float`` would also take.
_DECIMAL = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_FAST_DIGITS = 15  # 10**15 < 2**53: such a mantissa is an exact double
_POWERS = 10.0 ** np.arange(23)  # 10**0 .. 10**22, each an exact double
_WEIGHTS = 10 ** np.arange(_FAST_DIGITS + 1, dtype=np.int64)  # 10**0 .. 10**15
_FLOAT_WEIGHTS = _WEIGHTS.astype(np.float64)
_TENS = 10 ** np.arange(_FAST_DIGITS + 2, dtype=np.int64)


class PlainTable:
    """The parsed columns of a plain table: one fixed-width text column's cells as rows of
    bytes, and number columns as floats, all in file order."""

    __slots__ = ("numbers", "text")

    def __init__(self, text: Bytes, numbers: dict[int, Floats]) -> None:
        self.text = text
        self.numbers = numbers


def read_plain_table(
    file: Path, text_column: int, text_width: int, number_columns: Sequence[int]
) -> PlainTable | None:
    """The data rows of ``file`` (its first line is a header; a UTF-8 byte-order mark before it
    is no part of it), or None when the file is not plain: every line must hold the same
    number of ``,``-separated fields, ``text_column``'s cell exactly ``text_width`` bytes, and
    each of ``number_columns`` a decimal number. Empty lines are skipped; a line may end in
    ``\\r\\n``."""
    texts: list[Bytes] = []
    numbers: dict[int, list[Floats]] = {column: [] for column in number_columns}
    fields: int | None = None
    with file.open("rb") as stream:
        header = stream.readline(_BLOCK)
        if not header.endswith(b"\n"):
            return None
        carry = b""
        while True:
            block = stream.read(_BLOCK)
            data = carry + block
            if not block:
                if data and not data.endswith(b"\n"):
                    data += b"\n"  # a last line without its newline
                carry = b""
            else:
                cut = data.rfind(b"\n") + 1
                data, carry = data[:cut], data[cut:]
            if data:
                part = _parse_block(data, fields, text_column, text_width, number_columns)
                if part is None:
                    return None
                fields, text, values = part
                texts.append(text)
                for column, column_values in zip(number_columns, values, strict=True):
                    numbers[column].append(column_values)
            if not block:
                break
    if not texts:
        return None
    return PlainTable(
        np.concatenate(texts),
        {column: np.concatenate(parts) for column, parts in numbers.items()},
    )


def _parse_block(
    data: bytes,
    fields: int | None,
    text_column: int,
    text_width: int,
    number_columns: Sequence[int],
) -> tuple[int, Bytes, list[Floats]] | None:
    """One block of whole lines: (fields per line, the text cells, each number column)."""
    # Undecodable bytes in any column are the row reader's to name. ASCII is UTF-8, and telling
    # it is a tenth of decoding: most files are ASCII, and only others are decoded to check.
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == _NEWLINE)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    returns = (ends > starts) & (buf[ends - 1] == _RETURN)
    if np.count_nonzero(buf == _RETURN) != np.count_nonzero(returns):
        return None  # a carriage return that ends no line is a line end of its own elsewhere
    ends = ends - returns
    kept = ends > starts
    if not kept.all():
        starts, ends = starts[kept], ends[kept]  # empty lines
    if not starts.size:
        return (
            (fields or 0),
            np.empty((0, text_width), np.uint8),
            [np.empty(0) for _ in number_columns],
        )
    delimiters = np.flatnonzero(buf == ord(","))
    per_line = delimiters.size // starts.size
    if fields is None:
        fields = per_line + 1
    if per_line + 1 != fields or per_line * starts.size != delimiters.size:
        return None
    if max(text_column, *number_columns) >= fields:
        return None
    grid = delimiters.reshape(starts.size, per_line)
    # Each line's delimiters lie inside it: the first after its start, the last before its end.
    if per_line and ((grid[:, 0] < starts).any() or (grid[:, -1] >= ends).any()):
        return None

    def cell(column: int) -> tuple[Ints, Ints]:
        first = starts if column == 0 else grid[:, column - 1] + 1
        last = ends if column == fields - 1 else grid[:, column]
        return first, last

    first, last = cell(text_column)
    if ((last - first) != text_width).any():
        return None
    text = sliding_window_view(buf, text_width)[first]
    values = []
    for column in number_columns:
        parsed = _decimals(buf, data, *cell(column))
        if parsed is None:
            return None
        values.append(parsed)
    return fields, text, values


def _digit_sum(digits: Bytes, width: int) -> Ints:
    """Each row's digits as one integer (a row of ``width`` digits, most significant first).

    Below 16 digits the sum is below 2**53, so the BLAS product of doubles is exact (every
    partial sum an integer a double holds) and a third of the cost of numpy's integer product.
    """
    if width < _FAST_DIGITS + 1:
        sums: Ints = (digits.astype(np.float64) @ _FLOAT_WEIGHTS[width - 1 :: -1]).astype(np.int64)
        return sums
    exact: Ints = digits.astype(np.int64) @ _WEIGHTS[width - 1 :: -1]
    return exact


def _decimals(buf: Bytes, data: bytes, first: Ints, last: Ints) -> Floats | None:
    """The numbers in the cells ``first:last`` of the block ``buf`` (``data``'s bytes), as
    ``float`` parses them; None when a cell is not a decimal number.

    Cells are parsed a width at a time (a column holds few widths), so a cell's bytes are a
    plain row of a matrix: its digits times their powers of ten give an integer ``S`` in which
    the digits left of the point weigh ten times too much; the point's own byte counts 0."""
    lengths = last - first
    values: Floats = np.empty(lengths.size, dtype=np.float64)
    slow: list[Ints] = []
    for width in np.flatnonzero(np.bincount(lengths)).tolist():
        rows = np.flatnonzero(lengths == width)
        if not 0 < width <= _FAST_DIGITS + 1:
            slow.append(rows)
            continue
        chars = sliding_window_view(buf, width)[first[rows]]  # each row a copy of one cell
        digits = chars - np.uint8(48)  # wraps below "0": anything but a digit is above 9
        other = digits > 9
        point = other.argmax(axis=1)  # the first byte that is no digit (0 when none)
        index = np.arange(rows.size)
        has_point = other[index, point]
        plain = ~has_point | (chars[index, point] == _DOT)
        if width == 1:
            plain &= ~has_point  # a point alone is no number
        if width == _FAST_DIGITS + 1:
            plain &= has_point  # 16 bytes hold 15 digits only beside a point
        if np.count_nonzero(other) != np.count_nonzero(has_point):
            plain &= other.sum(axis=1) <= 1  # a second point, a sign, an exponent …
        whole = _digit_sum(np.where(other, np.uint8(0), digits), width)
        places = np.where(has_point, width - 1 - point, 0)  # digits after the point
        below = whole % _TENS[places + 1]
        mantissa = (whole - below) // 10 + below
        mantissa = np.where(has_point, mantissa, whole)
        values[rows] = mantissa.astype(np.float64) / _POWERS[places]
        if not plain.all():
            slow.append(rows[~plain])
    for rows in slow:
        for row in rows.tolist():
            text = data[int(first[row]) : int(last[row])]
            if not _DECIMAL.fullmatch(text):
                return None
            values[row] = float(text)
    return values
