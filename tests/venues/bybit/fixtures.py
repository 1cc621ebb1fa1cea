"""pytest fixtures and the ccxt helper for the fake Bybit.

Use from a ``conftest.py``::

    from tests.venues.bybit.fixtures import bybit, bybit_async, fake_bybit  # noqa: F401

Fixtures: ``fake_bybit`` (a started :class:`FakeBybit`, stopped afterwards),
``bybit`` (sync ccxt client) and ``bybit_async`` (async ccxt client, closed
afterwards).  :func:`make_ccxt_bybit` builds a client for any fake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.venues.ccxt_wiring import UnexpectedHost, closing, make_client, point_at, serving

from .server import FakeBybit

__all__ = [
    "UnexpectedHost",
    "bybit",
    "bybit_async",
    "fake_bybit",
    "make_ccxt_bybit",
    "point_at_fake",
]


def point_at_fake(client: Any, fake: FakeBybit) -> None:
    """Rewrite every ``urls['api']`` entry to the fake and refuse any other host.

    Bybit's ``urls['api']`` values carry a ``{hostname}`` placeholder
    (``https://api.{hostname}``); only the path (empty) is kept, so every call
    goes to ``fake.url + '/' + path``.  ccxt's Bybit error map is not chosen by
    host, so no host mapping is needed (unlike Binance).
    """
    point_at(client, fake.url)


def make_ccxt_bybit(
    fake: FakeBybit,
    async_: bool = False,
    *,
    api_key: str | None = None,
    secret: str | None = None,
    timeout_ms: int = 3000,
    options: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> Any:
    """Return a real ccxt ``bybit`` client wired to ``fake``.

    Only linear markets are loaded (``fetchMarkets.types=['linear']``), currency
    discovery (a private ``/v5/asset/coin/query-info`` call) is off, rate limiting is
    off and the timeout short so fault tests stay fast.  The unified-account probe
    (``/v5/user/query-api`` + ``/v5/account/info``) is left to ccxt: the fake
    answers it as a UTA 2.0 account.
    """
    opts: dict[str, Any] = {
        "fetchMarkets": {"types": ["linear"]},
        "defaultType": "swap",
        "defaultSubType": "linear",
        "adjustForTimeDifference": False,
        "recvWindow": 5000,
    }
    opts.update(options or {})
    has = {"fetchCurrencies": False}
    client = make_client("bybit", fake, async_, api_key, secret, timeout_ms, opts, config, has)
    point_at_fake(client, fake)
    return client


@pytest.fixture
def fake_bybit() -> Iterator[FakeBybit]:
    yield from serving(FakeBybit())


@pytest.fixture
def bybit(fake_bybit: FakeBybit) -> Any:
    return make_ccxt_bybit(fake_bybit)


@pytest.fixture
async def bybit_async(fake_bybit: FakeBybit) -> AsyncIterator[Any]:
    async for client in closing(make_ccxt_bybit(fake_bybit, async_=True)):
        yield client
