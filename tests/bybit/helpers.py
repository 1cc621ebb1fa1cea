"""Small helpers shared by the fake-Bybit tests."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from tests.venues.bybit.fixtures import make_ccxt_bybit
from tests.venues.bybit.server import FakeBybit

PERP = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
CREATE = "/v5/order/create"

ASYNC_MODES = [False, True]
MODE_IDS = ["sync", "async"]


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a sync or async ccxt method and return its result."""
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


@asynccontextmanager
async def client(fake: FakeBybit, async_: bool, **kwargs: Any) -> AsyncIterator[Any]:
    ex = make_ccxt_bybit(fake, async_=async_, **kwargs)
    try:
        yield ex
    finally:
        if async_:
            await ex.close()
