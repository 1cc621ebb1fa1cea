"""pytest fixtures and the ccxt helper for the fake Binance.

Use from a ``conftest.py``::

    from tests.venues.binance.fixtures import *  # noqa: F403

Fixtures: ``fake_binance`` (a started :class:`FakeBinance`, stopped afterwards),
``binance_spot`` / ``binance_usdm`` (sync ccxt clients) and
``binance_spot_async`` / ``binance_usdm_async`` (async ccxt clients, closed
afterwards).  :func:`make_ccxt_binance` builds a client for any fake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.venues.ccxt_wiring import UnexpectedHost, closing, make_client, point_at, serving

from .server import FakeBinance

__all__ = [
    "REAL_HOSTS",
    "UnexpectedHost",
    "binance_spot",
    "binance_spot_async",
    "binance_usdm",
    "binance_usdm_async",
    "fake_binance",
    "make_ccxt_binance",
    "point_at_fake",
]

# path prefix on the fake -> the real host ccxt would have used
REAL_HOSTS: tuple[tuple[str, str], ...] = (
    ("/api/", "https://api.binance.com"),
    ("/sapi/", "https://api.binance.com"),
    ("/fapi/", "https://fapi.binance.com"),
    ("/futures/", "https://fapi.binance.com"),
    ("/dapi/", "https://dapi.binance.com"),
    ("/eapi/", "https://eapi.binance.com"),
    ("/papi/", "https://papi.binance.com"),
)


def point_at_fake(client: Any, fake: FakeBinance) -> None:
    """Rewrite every ``urls['api']`` entry to the fake, keeping the path.

    ccxt chooses the market-specific error map (``exceptions['spot']`` vs
    ``exceptions['linear']``) from the request URL's host in
    ``get_exceptions_by_url``; the fake lives on 127.0.0.1, so the URL is mapped
    back to the real host for that lookup only.  Every ``fetch`` is also guarded:
    a URL outside the fake raises :class:`UnexpectedHost` before any I/O.
    """
    point_at(client, fake.url)
    base = fake.url
    original_lookup = client.get_exceptions_by_url

    def get_exceptions_by_url(url: str | None, exact_or_broad: str) -> dict[str, Any]:
        if url is not None and url.startswith(base):
            rest = url[len(base) :]
            for prefix, host in REAL_HOSTS:
                if rest.startswith(prefix):
                    url = host + rest
                    break
        result: dict[str, Any] = original_lookup(url, exact_or_broad)
        return result

    client.get_exceptions_by_url = get_exceptions_by_url


def make_ccxt_binance(
    fake: FakeBinance,
    futures: bool = False,
    async_: bool = False,
    *,
    api_key: str | None = None,
    secret: str | None = None,
    timeout_ms: int = 3000,
    options: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> Any:
    """Return a real ccxt ``binance`` / ``binanceusdm`` client wired to ``fake``.

    Currency, margin-pair and sapi discovery are switched off; ``fetchMarkets``
    only loads spot (``futures=False``) or linear (``futures=True``) markets;
    rate limiting is off; the timeout is short so fault tests stay fast.
    """
    exchange_id = "binanceusdm" if futures else "binance"
    opts: dict[str, Any] = {
        "fetchCurrencies": False,
        "fetchMargins": False,
        "fetchMarkets": {"types": ["linear"] if futures else ["spot"]},
        "defaultType": "swap" if futures else "spot",
        "warnOnFetchOpenOrdersWithoutSymbol": False,
        "adjustForTimeDifference": False,
        "recvWindow": 5000,
    }
    opts.update(options or {})
    client = make_client(exchange_id, fake, async_, api_key, secret, timeout_ms, opts, config)
    point_at_fake(client, fake)
    return client


@pytest.fixture
def fake_binance() -> Iterator[FakeBinance]:
    yield from serving(FakeBinance())


@pytest.fixture
def binance_spot(fake_binance: FakeBinance) -> Any:
    return make_ccxt_binance(fake_binance)


@pytest.fixture
def binance_usdm(fake_binance: FakeBinance) -> Any:
    return make_ccxt_binance(fake_binance, futures=True)


@pytest.fixture
async def binance_spot_async(fake_binance: FakeBinance) -> AsyncIterator[Any]:
    async for client in closing(make_ccxt_binance(fake_binance, async_=True)):
        yield client


@pytest.fixture
async def binance_usdm_async(fake_binance: FakeBinance) -> AsyncIterator[Any]:
    async for client in closing(make_ccxt_binance(fake_binance, futures=True, async_=True)):
        yield client
