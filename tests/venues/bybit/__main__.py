"""Standalone fake Bybit: ``python -m tests.venues.bybit --port 8081 [--data CSV]``.

Serves Bybit v5 linear until Ctrl-C / SIGTERM.  With ``--data`` the CSV's OHLCV rows
(``open_time_ms,open,high,low,close,volume``) are replayed for ``--symbol`` (all but
the last ``--replay`` rows become history; one replayed row every ``--interval`` s).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .server import FakeBybit, read_ohlcv_csv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.venues.bybit")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--data", help="OHLCV CSV to replay")
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--replay", type=int, default=0, help="rows kept back for live replay")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between replayed rows")
    args = parser.parse_args(argv)

    fake = FakeBybit(host=args.host, port=args.port)
    if args.data:
        rows = read_ohlcv_csv(args.data)
        fake.load_candles(args.symbol, rows, history=max(0, len(rows) - args.replay))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    fake.start()
    print(f"fake bybit listening on {fake.url}", flush=True)
    print(f"api key: {fake.api_key}\nsecret:  {fake.secret}", flush=True)
    try:
        while not stop.wait(args.interval if args.data and args.replay else 3600):
            if args.data and args.replay:
                fake.advance(args.symbol)
    finally:
        fake.stop()
        print("fake bybit stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
