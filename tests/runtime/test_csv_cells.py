"""The byte-level CSV cell reader: numbers exactly as ``float`` parses them, or no answer.

``read_plain_table`` must give, for every cell it answers, the very double ``float`` gives
(any decimal text, any width, exponents and signs included), keep the rows in file order
across its read blocks, and answer None for anything not plain (another number of fields, a
cell that is no number, undecodable bytes), so the caller reads such a file row by row.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradefleet_runtime import csv_cells
from tradefleet_runtime.csv_cells import read_plain_table

STAMP = "2024-01-02 03:04:05"


def _table(folder: Path, rows: list[str], header: str = "t,a,b\n", newline: str = "\n") -> Path:
    path = folder / "cells.csv"
    path.write_bytes((header + newline.join(rows) + newline).encode())
    return path


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


# Decimal texts of every shape a data file holds: plain, long, exponent, sign, a bare point.
_DECIMALS = st.one_of(
    st.floats(min_value=1e-12, max_value=1e12, allow_nan=False).map(repr),
    st.floats(min_value=1e-12, max_value=1e12, allow_nan=False).map(lambda x: f"{x:.6f}"),
    st.floats(min_value=1e-12, max_value=1e12, allow_nan=False).map(lambda x: f"{x:.17g}"),
    st.from_regex(r"\A[-+]?[0-9]{1,22}(\.[0-9]{0,22})?\Z"),
    st.from_regex(r"\A[0-9]{0,6}\.[0-9]{1,20}\Z"),
    st.from_regex(r"\A[0-9]{1,4}(\.[0-9]{1,4})?[eE][-+]?[0-9]{1,2}\Z"),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_DECIMALS, _DECIMALS), min_size=1, max_size=40))
def test_every_number_is_the_double_float_gives(
    tmp_path_factory: pytest.TempPathFactory, cells: list[tuple[str, str]]
) -> None:
    folder = tmp_path_factory.mktemp("cells")
    path = _table(folder, [f"{STAMP},{a},{b}" for a, b in cells])
    table = read_plain_table(path, 0, len(STAMP), [1, 2])
    assert table is not None
    for column, texts in ((1, [a for a, _ in cells]), (2, [b for _, b in cells])):
        got = table.numbers[column].tolist()
        assert [_bits(v) for v in got] == [_bits(float(t)) for t in texts], texts


def test_numbers_at_the_edge_of_the_exact_path_are_the_doubles_float_gives(
    tmp_path: Path,
) -> None:
    texts = [
        "999999999999999",  # 15 digits: the largest plain mantissa
        "99999999999999.9",  # 15 digits beside a point (16 bytes)
        "9999999999999999",  # 16 digits: handed to float
        "0.1",
        "0.30000000000000004",
        "1234567.890123456",
        "9007199254740993",  # 2**53 + 1: a double cannot hold it
        "1e-05",
        "+42.5",
        ".5",
        "7.",
        "0000000000000000000012.5",
        "-3.25",
    ]
    path = _table(tmp_path, [f"{STAMP},{t},1" for t in texts])
    table = read_plain_table(path, 0, len(STAMP), [1, 2])
    assert table is not None
    assert [_bits(v) for v in table.numbers[1].tolist()] == [_bits(float(t)) for t in texts]
    assert math.copysign(1.0, table.numbers[1][-1]) == -1.0


def test_rows_keep_file_order_across_read_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_cells, "_BLOCK", 97)  # a block ends mid-line again and again
    rows = [f"2024-01-02 03:{i // 60:02d}:{i % 60:02d},{i}.{i % 7},{i * 3}" for i in range(600)]
    path = _table(tmp_path, rows, newline="\r\n")
    table = read_plain_table(path, 0, len(STAMP), [1, 2])
    assert table is not None
    assert table.numbers[1].tolist() == [float(f"{i}.{i % 7}") for i in range(600)]
    assert table.numbers[2].tolist() == [float(i * 3) for i in range(600)]
    stamps = [bytes(row).decode() for row in table.text]
    assert stamps == [row.split(",")[0] for row in rows]


def test_a_byte_order_mark_empty_lines_and_no_last_newline_are_read(tmp_path: Path) -> None:
    path = tmp_path / "cells.csv"
    path.write_bytes(f"\ufefft,a,b\n{STAMP},1.5,2\n\n{STAMP},2.5,3".encode())
    table = read_plain_table(path, 0, len(STAMP), [1, 2])
    assert table is not None
    assert table.numbers[1].tolist() == [1.5, 2.5]
    assert table.numbers[2].tolist() == [2.0, 3.0]


def test_unused_columns_are_skipped(tmp_path: Path) -> None:
    path = _table(tmp_path, [f"x,{STAMP},note one,4.5", f"y,{STAMP},note two,5.5"], "s,t,n,v\n")
    table = read_plain_table(path, 1, len(STAMP), [3])
    assert table is not None
    assert table.numbers[3].tolist() == [4.5, 5.5]
    assert table.text.shape == (2, len(STAMP))


@pytest.mark.parametrize(
    "rows",
    [
        [f"{STAMP},1.5,2", f"{STAMP},1.5"],  # a field short
        [f"{STAMP},1.5,2", f"{STAMP},1.5,2,9"],  # a field more
        [f"{STAMP},1.5,2", f"{STAMP},1.5.1,2"],  # two points
        [f"{STAMP},1.5,2", f"{STAMP},1 5,2"],  # a space inside
        [f"{STAMP},1.5,2", f"{STAMP}, 1.5,2"],  # a space before
        [f"{STAMP},1.5,2", f"{STAMP},1_5,2"],  # float() would take it
        [f"{STAMP},1.5,2", f"{STAMP},nan,2"],
        [f"{STAMP},1.5,2", f"{STAMP},inf,2"],
        [f"{STAMP},1.5,2", f'{STAMP},"1.5",2'],  # quoted
        [f"{STAMP},1.5,2", f"{STAMP},,2"],  # empty
        [f"{STAMP},1.5,2", f"{STAMP}0,1.5,2"],  # a wider time cell
        [f"{STAMP},1.5,2", "2024-01-02 03:04:0,1.5,2"],  # a narrower one
        [f"{STAMP},1.5,2", f"{STAMP},-,2"],
        [f"{STAMP},1.5,2", f"{STAMP},1e,2"],
        [f"{STAMP},1.5,2", f"{STAMP},.,2"],  # float(".") refuses it too
        [f"{STAMP},1.5,2\r{STAMP},2.5,3"],  # a carriage return alone ends a line elsewhere
    ],
)
def test_anything_not_plain_has_no_answer(tmp_path: Path, rows: list[str]) -> None:
    assert read_plain_table(_table(tmp_path, rows), 0, len(STAMP), [1, 2]) is None


def test_undecodable_bytes_in_any_column_have_no_answer(tmp_path: Path) -> None:
    path = tmp_path / "cells.csv"
    path.write_bytes(b"t,a,n\n" + f"{STAMP},1.5,".encode() + b"caf\xe9\n")
    assert read_plain_table(path, 0, len(STAMP), [1]) is None


def test_text_beyond_ascii_in_another_column_is_read(tmp_path: Path) -> None:
    """Valid UTF-8 that is not ASCII (a note column) takes the decoding check, not the ASCII
    one, and the numbers are read as plain."""
    path = tmp_path / "cells.csv"
    path.write_bytes(b"t,a,n\n" + f"{STAMP},1.5,caf\u00e9\n".encode())
    table = read_plain_table(path, 0, len(STAMP), [1])
    assert table is not None and table.numbers[1].tolist() == [1.5]


def test_a_header_alone_has_no_answer(tmp_path: Path) -> None:
    path = tmp_path / "cells.csv"
    path.write_bytes(b"t,a,b\n")
    assert read_plain_table(path, 0, len(STAMP), [1, 2]) is None


def test_a_million_digits_of_noise_parse_as_float_does(tmp_path: Path) -> None:
    """Random doubles written as ``repr`` and as 6 decimals (what data files hold), many
    blocks' worth: the whole column equals ``float`` of each cell, bit for bit."""
    rng = np.random.default_rng(3)
    values = np.exp(rng.normal(3, 4, 150_000))
    texts = [repr(v) if i % 2 else f"{v:.6f}" for i, v in enumerate(values.tolist())]
    path = _table(tmp_path, [f"{STAMP},{t}" for t in texts], "t,a\n")
    table = read_plain_table(path, 0, len(STAMP), [1])
    assert table is not None
    expected = np.array([float(t) for t in texts])
    assert table.numbers[1].view(np.uint64).tolist() == expected.view(np.uint64).tolist()
