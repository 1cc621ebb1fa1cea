"""Fault injection by name for the fake Bybit.

The registry is shared with the other fakes (``tests/venues/fault_registry.py``); this module
names Bybit's faults and what each does on its wire.  Usage from a test::

    fake.faults.inject("accept_then_timeout", path="/v5/order/create", method="POST")
    fake.faults.inject("server_error", status=503, times=3)
    fake.faults.inject("partial_fill", fraction=0.4)
    fake.faults.inject("clock_skew", offset_ms=-30_000, times=None)  # until cleared

``path`` (exact request path) and ``method`` narrow which requests a fault hits;
``times`` is how many matching requests it affects (``None`` = until ``clear()``).

``accept_then_timeout``  executed (the order exists), the response never comes.
``timeout``              held without executing.
``rate_limit``           retCode 10006 "Too many visits!" with ``X-Bapi-Limit*``
                         headers (HTTP 200); ``status=403`` gives the IP-level
                         "access too frequent" HTTP 403 instead.
``server_error``         HTTP ``status`` (default 503) with an HTML body from the
                         edge; ``json_code=10016`` sends Bybit's JSON instead.
``partial_fill``         the next order fills only ``fraction`` (default 0.5) now.
``reject``               ``{"retCode": code, "retMsg": msg}`` without executing.
``drop_connection``      socket closed before executing.
``accept_then_drop``     executed, then the socket is closed without a response.
``clock_skew``           server clock shifted by ``offset_ms`` (default 60,000).
``latency``              response delayed by ``delay_ms``.
``funding_unavailable``  the funding history is unavailable: a GET /v5/execution/list
                         that would return funding payments (execType Funding, or
                         none) gets HTTP ``status`` (default 503) with the edge's HTML
                         page (``json_code`` for Bybit's JSON), as ``server_error``
                         does; no other request consumes it (``fetch_my_trades`` sends
                         execType Trade).  ccxt raises ExchangeNotAvailable.
"""

from __future__ import annotations

from tests.venues.fault_registry import COMMON_FAULTS, Fault, FaultRegistry

FAULTS: tuple[str, ...] = (*COMMON_FAULTS, "funding_unavailable")


class FaultInjector(FaultRegistry):
    """The faults this venue's fake can inject (:data:`FAULTS`)."""

    known = FAULTS


__all__ = ["FAULTS", "Fault", "FaultInjector"]
