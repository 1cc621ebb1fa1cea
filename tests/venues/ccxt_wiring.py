"""Pointing a real ccxt client at a fake venue, shared by every venue's ``fixtures``.

:func:`make_client` builds the client (rate limiting off, a short timeout, the fake's
credentials unless others are given), :func:`point_at` rewrites its ``urls['api']`` to the
fake and guards its ``fetch``: a URL outside the fake raises :class:`UnexpectedHost` before
any I/O, so nothing a test does can reach the internet.  :func:`serving` and
:func:`closing` are the bodies of the venues' pytest fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit


class UnexpectedHost(AssertionError):
    """ccxt tried to reach a host other than the fake."""


class Fake(Protocol):
    api_key: str
    secret: str

    @property
    def url(self) -> str: ...

    def start(self) -> Any: ...

    def stop(self) -> None: ...


F = TypeVar("F", bound=Fake)


def is_async(client: Any) -> bool:
    return type(client).__module__.startswith("ccxt.async_support")


def point_at(client: Any, base: str) -> None:
    """Rewrite every ``urls['api']`` entry to ``base`` (the fake's URL), keeping only the
    path (a ``{hostname}`` placeholder, as in Bybit's, goes with the host), and refuse any
    other host before I/O."""
    api = client.urls["api"]
    for name, value in list(api.items()):
        if isinstance(value, str):
            api[name] = base + urlsplit(value.replace("{hostname}", "hostname")).path
    original_fetch = client.fetch

    def check(url: str) -> None:
        if not url.startswith(base + "/"):
            raise UnexpectedHost(f"ccxt tried to reach {url!r}, outside the fake at {base}")

    if is_async(client):

        async def afetch(
            url: str, method: str = "GET", headers: Any = None, body: Any = None
        ) -> Any:
            check(url)
            return await original_fetch(url, method, headers, body)

        client.fetch = afetch
        return

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        check(url)
        return original_fetch(url, method, headers, body)

    client.fetch = fetch


def make_client(
    exchange_id: str,
    fake: Fake,
    async_: bool,
    api_key: str | None,
    secret: str | None,
    timeout_ms: int,
    options: dict[str, Any],
    config: dict[str, Any] | None,
    has: dict[str, Any] | None = None,
) -> Any:
    """A real ccxt ``exchange_id`` client (sync or async) with the fake's credentials
    (unless ``api_key``/``secret`` are given), rate limiting off, the timeout short,
    ``options`` and ``has`` as given and ``config`` laid over it all; not yet pointed at
    the fake (:func:`point_at`)."""
    if async_:
        import ccxt.async_support as ccxt_mod
    else:
        import ccxt as ccxt_mod
    cfg: dict[str, Any] = {
        "apiKey": api_key if api_key is not None else fake.api_key,
        "secret": secret if secret is not None else fake.secret,
        "enableRateLimit": False,
        "timeout": timeout_ms,
        "options": options,
    }
    if has is not None:
        cfg["has"] = has
    if async_:
        # ccxt sleeps timeout_on_exit (250 ms) in close() to let TLS sessions wind down;
        # there is no TLS to the fake
        cfg["timeout_on_exit"] = 0
    cfg.update(config or {})
    return getattr(ccxt_mod, exchange_id)(cfg)


def serving(fake: F) -> Iterator[F]:
    """A fixture's body: the fake started, then stopped."""
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


async def closing(client: Any) -> AsyncIterator[Any]:
    """An async fixture's body: the async client, then closed."""
    try:
        yield client
    finally:
        await client.close()
