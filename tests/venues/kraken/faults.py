"""Fault injection by name for the fake Kraken.

The registry is shared with the other fakes (``tests/venues/fault_registry.py``); this module
names Kraken's faults and what each does on its wire.  Usage from a test::

    fake.faults.inject("accept_then_timeout", path="/0/private/AddOrder")
    fake.faults.inject("server_error", status=502, times=3)
    fake.faults.inject("partial_fill", fraction=0.4)
    fake.faults.inject("reject", error="EOrder:Insufficient funds")

``path`` (exact request path) and ``method`` narrow which requests a fault hits;
``times`` is how many matching requests it affects (``None`` = until ``clear()``).

``accept_then_timeout``  executed (the order exists), the response never comes (``hold_s``).
``timeout``              held without executing.
``rate_limit``           ``{"error": ["EAPI:Rate limit exceeded"]}`` with HTTP 200 (``error``
                         picks another string, e.g. "EOrder:Rate limit exceeded"); ``status=429``
                         sends a bare HTTP 429 from the edge instead.
``server_error``         HTTP ``status`` (default 503) with Cloudflare's HTML page;
                         ``error="EService:Unavailable"`` sends Kraken's JSON with HTTP 200.
``partial_fill``         the next AddOrder fills only ``fraction`` (default 0.5) now; the rest
                         fills on a later price move or ``fake.fill_partials()``.
``reject``               ``{"error": [error]}`` without executing.
``drop_connection``      socket closed before executing.
``accept_then_drop``     executed, then the socket is closed without a response.
``latency``              response delayed by ``delay_ms``.
``clock_skew``           the server clock ``Time`` answers is shifted by ``offset_ms`` (default
                         60,000) for the requests it hits.  Nothing is refused for it: Kraken's
                         nonce is a per-key counter, never compared with the clock (the
                         Binance/Bybit meaning, a timestamp outside the receive window, does
                         not exist on Kraken; the nonce refusal is driven by two clients on
                         one key instead, see tests/kraken/test_faults.py).
"""

from __future__ import annotations

from tests.venues.fault_registry import COMMON_FAULTS, Fault, FaultRegistry

FAULTS: tuple[str, ...] = COMMON_FAULTS


class FaultInjector(FaultRegistry):
    """The faults this venue's fake can inject (:data:`FAULTS`)."""

    known = FAULTS


__all__ = ["FAULTS", "Fault", "FaultInjector"]
