"""The paper broker's funding-history files read (the I/O; the checks are
``paper_funding_history``'s, pure).

A file is parsed once per process per version of it (its path, size and modification time):
an optimiser's trials, which each build a broker, read it once, and a file
rewritten between two runs is read again. A file with holes (rows missing inside it) is said
then, once, as a warning: a run that holds nothing over them never meets them otherwise.
"""

from __future__ import annotations

import functools
import logging
import stat
from collections.abc import Mapping
from pathlib import Path

from tradefleet_plugins.brokers.paper_funding_history import (
    FundingHistory,
    describe_holes,
    other_market,
    parse_funding_history,
)
from tradefleet_runtime.sdk import DataError

log = logging.getLogger(__name__)

_FIELD = "spec.broker.params.funding_history"
# UTF-8; a byte-order mark first (Excel writes one) is no part of the header's first name.
_ENCODING = "utf-8-sig"


def load_funding_histories(files: Mapping[str, str], base: Path) -> dict[str, FundingHistory]:
    """Each symbol's history, its path resolved against ``base``; a DataError names the param
    (``funding_history.<symbol>``), the resolved file and, for its content, the row and
    column."""
    return {symbol: _load(symbol, (base / path).resolve()) for symbol, path in files.items()}


def _load(symbol: str, file: Path) -> FundingHistory:
    field = f"{_FIELD}.{symbol}"
    try:
        info = file.stat()
    except FileNotFoundError:
        raise DataError(f"{field}: {file}: no such file") from None
    except OSError as error:
        raise DataError(f"{field}: {file}: cannot be read ({error.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        # A FIFO would block and a device be read for ever: refused before it is opened.
        raise DataError(f"{field}: {file} is not a regular file (a device, FIFO or directory)")
    try:
        history = _parsed(str(file), info.st_mtime_ns, info.st_size)
    except DataError as error:
        raise DataError(f"{field}: {error}") from None
    other = other_market(history, symbol)
    if other is not None:
        # A copied path pays another market's rates without a word: refused, naming both.
        raise DataError(
            f"{field}: {file}: its rows are the funding history of {other}, not {symbol} "
            "(its symbol column); give the file of this symbol"
        )
    return history


@functools.lru_cache(maxsize=64)
def _parsed(file: str, mtime_ns: int, size: int) -> FundingHistory:
    """The history in ``file`` as it was at ``mtime_ns`` and ``size`` (the cache's key: a
    rewritten file is another entry). Errors are not cached: a fixed file is read again."""
    try:
        with open(file, encoding=_ENCODING, newline="") as handle:
            history = parse_funding_history(handle, file)
    except UnicodeDecodeError:
        raise DataError(f"{file}: not UTF-8 (save the file as UTF-8)") from None
    except OSError as error:
        raise DataError(f"{file}: cannot be read ({error.strerror})") from None
    holes = describe_holes(history)
    if holes is not None:
        # Here, in the cached read: said once per file version, not once per broker built.
        log.warning("%s", holes)
    return history
