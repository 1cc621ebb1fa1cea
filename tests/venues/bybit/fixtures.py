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
from urllib.parse import urlsplit

import pytest

from .server import FakeBybit

__all__ = [
    "UnexpectedHost",
    "bybit",
    "bybit_async",
    "fake_bybit",
    "make_ccxt_bybit",
    "point_at_fake",
]


class UnexpectedHost(AssertionError):
    """ccxt tried to reach a host other than the fake."""


def point_at_fake(client: Any, fake: FakeBybit) -> None:
    """Rewrite every ``urls['api']`` entry to the fake and refuse any other host.

    Bybit's ``urls['api']`` values carry a ``{hostname}`` placeholder
    (``https://api.{hostname}``); only the path (empty) is kept, so every call
    goes to ``fake.url + '/' + path``.  ccxt's Bybit error map is not chosen by
    host, so no host mapping is needed (unlike Binance).
    """
    api = client.urls["api"]
    for name, value in list(api.items()):
        if isinstance(value, str):
            api[name] = fake.url + urlsplit(value.replace("{hostname}", "bybit.com")).path
    base = fake.url
    original_fetch = client.fetch

    def check(url: str) -> None:
        if not url.startswith(base + "/"):
            raise UnexpectedHost(f"ccxt tried to reach {url!r}, outside the fake at {base}")

    if type(client).__module__.startswith("ccxt.async_support"):

        async def afetch(
            url: str, method: str = "GET", headers: Any = None, body: Any = None
        ) -> Any:
            check(url)
            return await original_fetch(url, method, headers, body)

        client.fetch = afetch
    else:

        def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
            check(url)
            return original_fetch(url, method, headers, body)

        client.fetch = fetch


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
    if async_:
        import ccxt.async_support as ccxt_mod
    else:
        import ccxt as ccxt_mod
    opts: dict[str, Any] = {
        "fetchMarkets": {"types": ["linear"]},
        "defaultType": "swap",
        "defaultSubType": "linear",
        "adjustForTimeDifference": False,
        "recvWindow": 5000,
    }
    opts.update(options or {})
    cfg: dict[str, Any] = {
        "apiKey": api_key if api_key is not None else fake.api_key,
        "secret": secret if secret is not None else fake.secret,
        "enableRateLimit": False,
        "timeout": timeout_ms,
        "options": opts,
        "has": {"fetchCurrencies": False},
    }
    if async_:
        cfg["timeout_on_exit"] = 0  # no TLS session to wind down
    cfg.update(config or {})
    client = ccxt_mod.bybit(cfg)
    point_at_fake(client, fake)
    return client


@pytest.fixture
def fake_bybit() -> Iterator[FakeBybit]:
    fake = FakeBybit()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def bybit(fake_bybit: FakeBybit) -> Any:
    return make_ccxt_bybit(fake_bybit)


@pytest.fixture
async def bybit_async(fake_bybit: FakeBybit) -> AsyncIterator[Any]:
    client = make_ccxt_bybit(fake_bybit, async_=True)
    try:
        yield client
    finally:
        await client.close()
