"""The fault registry every fake venue shares: faults injected by name, consumed in order.

Each venue's ``faults`` module lists its fault names and documents what each does on that
venue's wire; the registry only matches requests to pending faults.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

# The faults every fake venue can inject (a venue may add its own, e.g. Binance's ``ip_ban``);
# each venue's ``faults`` module documents what each does on its wire.
COMMON_FAULTS: tuple[str, ...] = (
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


class FaultRegistry:
    """Thread-safe registry of pending faults; a venue's subclass names its faults in ``known``."""

    known: tuple[str, ...] = ()

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
        if name not in self.known:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(self.known)}")
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
