"""Small helpers shared by the fake-Bybit tests (the venue-independent ones live in
``tests/venues/venue_checks.py``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from tests.venues.bybit.fixtures import make_ccxt_bybit
from tests.venues.bybit.server import FakeBybit
from tests.venues.venue_checks import ASYNC_MODES, MODE_IDS, call, session

PERP = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
CREATE = "/v5/order/create"

__all__ = ["ASYNC_MODES", "CREATE", "ETH", "MODE_IDS", "PERP", "call", "client"]


def client(fake: FakeBybit, async_: bool, **kwargs: Any) -> AbstractAsyncContextManager[Any]:
    return session(make_ccxt_bybit(fake, async_=async_, **kwargs), async_)
