"""Fault injection by name for the fake Bybit.

Copied (the generic registry only) from ``tests/venues/binance/faults.py``, whose
``FaultInjector`` checks names against Binance's list; the Binance fake is not
edited.  Usage from a test::

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
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

FAULTS: tuple[str, ...] = (
    "accept_then_timeout",
    "timeout",
    "rate_limit",
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
