"""pytest fixtures and the ccxt helper for the fake Kraken.

Use from a ``conftest.py``::

    from tests.venues.kraken.fixtures import fake_kraken, kraken, kraken_async  # noqa: F401

Fixtures: ``fake_kraken`` (a started :class:`FakeKraken`, stopped afterwards),
``kraken`` (sync ccxt client) and ``kraken_async`` (async ccxt client, closed
afterwards).  :func:`make_ccxt_kraken` builds a client for any fake;
:func:`replay_apply` lets the shared ``tests/venues/candle_replay.ReplayClock`` play
candles on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.venues.candle_replay import Apply
from tests.venues.ccxt_wiring import UnexpectedHost, closing, make_client, point_at, serving

from .server import FakeKraken
from .state import Candle

__all__ = [
    "UnexpectedHost",
    "fake_kraken",
    "kraken",
    "kraken_async",
    "make_ccxt_kraken",
    "point_at_fake",
    "replay_apply",
]


def point_at_fake(client: Any, fake: FakeKraken) -> None:
    """Rewrite every ``urls['api']`` entry (``public``, ``private`` and the ``zendesk``
    help-centre one) to the fake, keeping the path, and refuse any other host before I/O."""
    point_at(client, fake.url)


def make_ccxt_kraken(
    fake: FakeKraken,
    async_: bool = False,
    *,
    api_key: str | None = None,
    secret: str | None = None,
    timeout_ms: int = 3000,
    options: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    currencies: bool = False,
) -> Any:
    """Return a real ccxt ``kraken`` client wired to ``fake``.

    ``load_markets`` then calls ``AssetPairs`` only (``currencies=True`` keeps ccxt's
    ``fetchCurrencies``, one ``Assets`` call more, also served); rate limiting is off and
    the timeout short so fault tests stay fast.
    """
    opts = {"adjustForTimeDifference": False, **(options or {})}
    has = None if currencies else {"fetchCurrencies": False}
    client = make_client("kraken", fake, async_, api_key, secret, timeout_ms, opts, config, has)
    point_at_fake(client, fake)
    return client


def replay_apply(fake: FakeKraken) -> Apply:
    """Record candles on a FakeKraken, for ``candle_replay.ReplayClock(fake.state.clock, ...)``
    (the script's symbols are Kraken pair ids or altnames)."""

    def apply(
        pair: str, ms: int, o: Decimal, h: Decimal, low: Decimal, c: Decimal, v: Decimal
    ) -> None:
        with fake.state.lock:
            fake.state.apply_candle(pair, Candle(ms, o, h, low, c, v))

    return apply


@pytest.fixture
def fake_kraken() -> Iterator[FakeKraken]:
    yield from serving(FakeKraken())


@pytest.fixture
def kraken(fake_kraken: FakeKraken) -> Any:
    return make_ccxt_kraken(fake_kraken)


@pytest.fixture
async def kraken_async(fake_kraken: FakeKraken) -> AsyncIterator[Any]:
    async for client in closing(make_ccxt_kraken(fake_kraken, async_=True)):
        yield client
