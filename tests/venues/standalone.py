"""The command every fake venue's ``python -m tests.venues.<venue>`` runs.

Serves the fake until Ctrl-C / SIGTERM, printing its URL and credentials.  With ``--data``
the CSV's OHLCV rows (``open_time_ms,open,high,low,close,volume``) are replayed for the
market named by the venue's market option (``--symbol``, ``--pair``): all but the last
``--replay`` rows become history; one replayed row every ``--interval`` seconds.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol, TypeVar

from tests.venues import ccxt_wiring


class Fake(ccxt_wiring.Fake, Protocol):
    def advance(self, market: str, /) -> Any: ...


class Main(Protocol):
    def __call__(self, argv: list[str] | None = None) -> int: ...


F = TypeVar("F", bound=Fake)


def command(
    venue: str,
    make: Callable[..., F],
    port: int,
    market: str,
    default_market: str,
    load: Callable[[F, str, str, int], None],
) -> Main:
    """The ``main(argv)`` of ``python -m tests.venues.<venue>``: the fake is built with
    ``make(host=..., port=...)`` (default ``port``), ``load(fake, csv, market, replay)``
    queues a CSV for the ``--<market>`` option's market."""

    def main(argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(prog=f"python -m tests.venues.{venue}")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=port, help="0 picks a free port")
        parser.add_argument("--data", help="OHLCV CSV to replay")
        parser.add_argument(f"--{market}", dest="market", default=default_market)
        parser.add_argument(
            "--replay",
            type=int,
            default=0,
            help="rows kept back for live replay (default: none, all history)",
        )
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds between replayed rows"
        )
        args = parser.parse_args(argv)

        fake = make(host=args.host, port=args.port)
        if args.data:
            load(fake, args.data, args.market, args.replay)
        replaying = bool(args.data and args.replay)
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        fake.start()
        print(f"fake {venue} listening on {fake.url}", flush=True)
        print(f"api key: {fake.api_key}\nsecret:  {fake.secret}", flush=True)
        try:
            while not stop.wait(args.interval if replaying else 3600):
                if replaying:
                    fake.advance(args.market)
        finally:
            fake.stop()
            print(f"fake {venue} stopped", flush=True)
        return 0

    return main
