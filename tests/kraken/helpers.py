"""Small helpers shared by the fake-Kraken tests (the venue-independent ones live in
``tests/venues/venue_checks.py``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from tests.venues.kraken.fixtures import make_ccxt_kraken
from tests.venues.kraken.server import FakeKraken
from tests.venues.venue_checks import ASYNC_MODES, MODE_IDS, call, session

BTC = "BTC/USD"
ETH = "ETH/USD"
ADD = "/0/private/AddOrder"

__all__ = ["ADD", "ASYNC_MODES", "BTC", "ETH", "MODE_IDS", "call", "client"]


def client(fake: FakeKraken, async_: bool, **kwargs: Any) -> AbstractAsyncContextManager[Any]:
    return session(make_ccxt_kraken(fake, async_=async_, **kwargs), async_)
