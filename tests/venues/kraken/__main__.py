"""Standalone fake Kraken: ``python -m tests.venues.kraken --port 8082 [--data CSV]``.

Serves Kraken spot REST until Ctrl-C / SIGTERM.  With ``--data`` the CSV's OHLCV rows
(``open_time_ms,open,high,low,close,volume``) are replayed for ``--pair`` (all but the
last ``--replay`` rows become history; one replayed row every ``--interval`` s).  The
command itself is shared: ``tests/venues/standalone.py``.
"""

from __future__ import annotations

import sys

from tests.venues import standalone

from .server import FakeKraken, read_ohlcv_csv


def _load(fake: FakeKraken, path: str, pair: str, replay: int) -> None:
    rows = read_ohlcv_csv(path)
    fake.load_candles(pair, rows, history=max(0, len(rows) - replay))


main = standalone.command("kraken", FakeKraken, 8082, "pair", "XXBTZUSD", _load)

if __name__ == "__main__":
    sys.exit(main())
