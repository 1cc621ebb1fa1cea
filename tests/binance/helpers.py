"""Small helpers shared by the fake-Binance tests (the venue-independent ones live in
``tests/venues/venue_checks.py``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from tests.venues.binance.fixtures import make_ccxt_binance
from tests.venues.binance.server import FakeBinance
from tests.venues.venue_checks import call, session

SPOT = "BTC/USDT"
PERP = "BTC/USDT:USDT"

# (futures, async_) combinations every ccxt-driven scenario runs under
MODES = [(False, False), (False, True), (True, False), (True, True)]
MODE_IDS = ["spot-sync", "spot-async", "usdm-sync", "usdm-async"]

__all__ = ["MODES", "MODE_IDS", "PERP", "SPOT", "call", "client", "order_path"]


def client(
    fake: FakeBinance, futures: bool, async_: bool, **kwargs: Any
) -> AbstractAsyncContextManager[Any]:
    return session(make_ccxt_binance(fake, futures=futures, async_=async_, **kwargs), async_)


def order_path(futures: bool) -> str:
    return "/fapi/v1/order" if futures else "/api/v3/order"
