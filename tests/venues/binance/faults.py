"""Fault injection, each fault reproducible by name.

Usage from a test::

    fake.faults.inject("accept_then_timeout", path="/api/v3/order", method="POST")
    fake.faults.inject("server_error", status=503, times=3)
    fake.faults.inject("partial_fill", fraction=0.4)
    fake.faults.inject("clock_skew", offset_ms=-30_000, times=None)  # until cleared

``path`` (exact request path) and ``method`` narrow which requests a fault hits;
``times`` is how many matching requests it affects (``None`` = until
``clear()``).  Faults are consumed first-in first-out.

Fault names (see :data:`FAULTS`):

``accept_then_timeout``
    the request is executed (an order really is created) but the response never
    comes: the server holds the connection until the client gives up.
``timeout``
    the server holds the connection *without* executing the request.
``rate_limit``
    HTTP 429 with ``Retry-After`` and ``{"code":-1003,...}``; nothing executed.
``ip_ban``
    HTTP 418 with ``Retry-After`` and ``{"code":-1003,"msg":"Way too much request
    weight used; IP banned until ..."}``; nothing executed.
``server_error``
    HTTP ``status`` (500/502/503/504, default 503) with an HTML body, as Binance's
    edge returns it; ``json_code=-1001`` sends Binance's JSON body instead.
    ``times=N`` gives a burst of N consecutive errors.
``partial_fill``
    the next matching order fills only ``fraction`` (default 0.5) of its quantity
    and stays ``PARTIALLY_FILLED``; the rest fills on later price moves.
``reject``
    respond with ``{"code": code, "msg": msg}`` and HTTP ``status`` (default 400)
    without executing.
``drop_connection``
    close the socket mid-request (before executing).
``accept_then_drop``
    execute the request, then close the socket without a response.
``clock_skew``
    the server clock is shifted by ``offset_ms`` for matching requests, so a
    client timestamp falls outside ``recvWindow`` (-1021).
``latency``
    delay the response by ``delay_ms``.
``funding_unavailable``
    the funding history is unavailable: a GET /fapi/v1/income that would return funding
    rows (incomeType FUNDING_FEE, or none) gets HTTP ``status`` (default 503) with the edge's
    HTML page (``json_code`` for Binance's JSON body instead), as ``server_error`` does;
    no other request consumes it.  ccxt raises ExchangeNotAvailable.
"""

from __future__ import annotations

from tests.venues.fault_registry import COMMON_FAULTS, Fault, FaultRegistry

FAULTS: tuple[str, ...] = (*COMMON_FAULTS, "ip_ban", "funding_unavailable")


class FaultInjector(FaultRegistry):
    """The faults this venue's fake can inject (:data:`FAULTS`)."""

    known = FAULTS


__all__ = ["FAULTS", "Fault", "FaultInjector"]
