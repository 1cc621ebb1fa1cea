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
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

FAULTS: tuple[str, ...] = (
    "accept_then_timeout",
    "timeout",
    "rate_limit",
    "ip_ban",
    "server_error",
    "partial_fill",
    "reject",
    "drop_connection",
    "accept_then_drop",
    "clock_skew",
    "latency",
)


@dataclass
class Fault:
    name: str
    path: str | None = None
    method: str | None = None
    times: int | None = 1
    params: dict[str, Any] = field(default_factory=dict)
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.path is not None and self.path != path:
            return False
        return self.method is None or self.method.upper() == method.upper()

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


class FaultInjector:
    """Thread-safe registry of pending faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.history: list[tuple[str, str, str]] = []  # (fault, method, path)

    def inject(
        self,
        name: str,
        *,
        path: str | None = None,
        method: str | None = None,
        times: int | None = 1,
        **params: Any,
    ) -> Fault:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        fault = Fault(name, path, method, times, dict(params))
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if not f.exhausted]

    def take(self, method: str, path: str, names: tuple[str, ...] | None = None) -> Fault | None:
        """Consume one hit of the first matching fault (optionally among ``names``)."""
        with self._lock:
            for fault in self._faults:
                if fault.exhausted or not fault.matches(method, path):
                    continue
                if names is not None and fault.name not in names:
                    continue
                fault.hits += 1
                self.history.append((fault.name, method, path))
                if fault.exhausted:
                    self._faults.remove(fault)
                return fault
        return None
