"""Standalone fake Binance: ``python -m tests.venues.binance --port 8080 [--data CSV]``.

Serves spot (``/api/v3``) and USDⓈ-M (``/fapi``) until Ctrl-C / SIGTERM.  With
``--data`` the CSV's OHLCV rows are replayed for ``--symbol`` (all but the last
``--replay`` rows become history; one replayed row every ``--interval`` seconds).  The
command itself is shared: ``tests/venues/standalone.py``.
"""

from __future__ import annotations

import sys

from tests.venues import standalone

from .server import FakeBinance
from .state import read_ohlcv_csv


def _load(fake: FakeBinance, path: str, symbol: str, replay: int) -> None:
    rows = len(read_ohlcv_csv(path))
    fake.load_csv(path, symbol, history=max(0, rows - replay))


main = standalone.command("binance", FakeBinance, 8080, "symbol", "BTCUSDT", _load)

if __name__ == "__main__":
    sys.exit(main())
