"""Small helpers shared by the fake-Binance tests."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from tests.venues.binance.fixtures import make_ccxt_binance
from tests.venues.binance.server import FakeBinance

SPOT = "BTC/USDT"
PERP = "BTC/USDT:USDT"

# (futures, async_) combinations every ccxt-driven scenario runs under
MODES = [(False, False), (False, True), (True, False), (True, True)]
MODE_IDS = ["spot-sync", "spot-async", "usdm-sync", "usdm-async"]


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a sync or async ccxt method and return its result."""
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


@asynccontextmanager
async def client(
    fake: FakeBinance, futures: bool, async_: bool, **kwargs: Any
) -> AsyncIterator[Any]:
    ex = make_ccxt_binance(fake, futures=futures, async_=async_, **kwargs)
    try:
        yield ex
    finally:
        if async_:
            await ex.close()


def order_path(futures: bool) -> str:
    return "/fapi/v1/order" if futures else "/api/v3/order"
