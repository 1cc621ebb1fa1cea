"""Standalone fake Bybit: ``python -m tests.venues.bybit --port 8081 [--data CSV]``.

Serves Bybit v5 linear until Ctrl-C / SIGTERM.  With ``--data`` the CSV's OHLCV rows
(``open_time_ms,open,high,low,close,volume``) are replayed for ``--symbol`` (all but
the last ``--replay`` rows become history; one replayed row every ``--interval`` s).  The
command itself is shared: ``tests/venues/standalone.py``.
"""

from __future__ import annotations

import sys

from tests.venues import standalone

from .server import FakeBybit, read_ohlcv_csv


def _load(fake: FakeBybit, path: str, symbol: str, replay: int) -> None:
    rows = read_ohlcv_csv(path)
    fake.load_candles(symbol, rows, history=max(0, len(rows) - replay))


main = standalone.command("bybit", FakeBybit, 8081, "symbol", "BTCUSDT", _load)

if __name__ == "__main__":
    sys.exit(main())
