"""Fault injection for :class:`~tests.venues.mt5.terminal.MT5Terminal`.

Every emulator owns one :class:`FaultPlan` (``term.faults``).  Faults are scripted per API
function, optionally per symbol, as a queue of *steps* consumed one per call:

``None``
    behave normally.
``int``
    for ``order_send``/``order_check``: return a result with this trade-server retcode and change
    nothing (``10004`` requote, ``10020`` prices changed, ``10021`` off quotes, ``10024`` too many
    requests, ``10012``/``10031`` unknown outcome where the order was *not* executed, ...).
    Two success codes are special for ``order_send``: ``10008`` (placed: a market order is
    accepted but only filled on the next tick) and ``10010`` (partial fill: half of the volume,
    rounded down to the volume step, is executed).
    For every other function: a ``RES_E_*`` code; the function returns ``None`` and
    ``last_error()`` returns that code with the real message.
:class:`UnknownOutcome`
    ``order_send`` returns ``retcode`` (10012 timeout / 10031 no connection by default) with
    ``order == deal == 0``; whether the request was really executed (visible in history) is
    ``executed``.
:class:`Disconnect`
    the call fails and the terminal stays disconnected until ``initialize()`` (``kind="ipc"``) or
    :meth:`FaultPlan.reconnect` (``kind="server"``).  ``executed=True`` on ``order_send`` means the
    request reached the server before the link broke.
:class:`CallError`
    the function returns ``None`` with ``last_error() == (code, message)``.
:class:`Delay`
    sleep this long (wall clock) before handling this one call.

Example::

    term.faults.script("order_send", [10004, 10004, None])      # two requotes, then normal
    term.faults.script("order_send", [UnknownOutcome(10012, executed=True)])
    term.faults.script("symbol_info_tick", [CallError(-10005)], symbol="EURUSD")
    term.faults.latency = 0.01                                   # every call sleeps 10 ms
    term.faults.throttle(max_requests=5, per_seconds=1.0)        # 10024 above 5 req/s
    term.faults.disconnect("ipc"); ...; term.initialize()       # terminal went away
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

DisconnectKind = Literal["ipc", "server"]


@dataclass(frozen=True)
class UnknownOutcome:
    """``order_send`` returns ``retcode`` without order/deal tickets; ``executed`` decides state."""

    retcode: int = 10012
    executed: bool = True


@dataclass(frozen=True)
class Disconnect:
    """Break the link. ``kind="ipc"``: terminal gone; ``kind="server"``: trade server lost."""

    kind: DisconnectKind = "ipc"
    code: int = -10004
    executed: bool = False


@dataclass(frozen=True)
class CallError:
    """Return ``None`` and set ``last_error()`` to ``(code, message)``."""

    code: int
    message: str | None = None


@dataclass(frozen=True)
class Delay:
    """Sleep ``seconds`` of wall-clock time before handling the call."""

    seconds: float


FaultStep = None | int | UnknownOutcome | Disconnect | CallError | Delay


class _Link(Protocol):
    def _fault_disconnect(self, kind: DisconnectKind) -> None: ...

    def _fault_reconnect(self, kind: DisconnectKind) -> None: ...

    def _clock_seconds(self) -> float: ...


class FaultPlan:
    """Scripted faults, latency and throttling of one emulator instance."""

    def __init__(self, link: _Link) -> None:
        self._link = link
        self._scripts: dict[tuple[str, str | None], deque[FaultStep]] = {}
        #: seconds slept (wall clock) at the start of every API call
        self.latency: float = 0.0
        #: per-function latency, overrides :attr:`latency`
        self.latency_by_function: dict[str, float] = {}
        self._throttle: tuple[int, float, frozenset[str]] | None = None
        self._throttle_log: deque[float] = deque()
        #: every step actually consumed, as ``(function, symbol, step)``, for assertions
        self.history: list[tuple[str, str | None, FaultStep]] = []

    # -- scripting -----------------------------------------------------------------------
    def script(
        self, function: str, steps: Iterable[FaultStep], *, symbol: str | None = None
    ) -> None:
        """Append ``steps`` to the queue of ``function`` (optionally only for ``symbol``)."""
        self._scripts.setdefault((function, symbol), deque()).extend(steps)

    def pending(self, function: str, *, symbol: str | None = None) -> int:
        """Number of scripted steps not yet consumed."""
        return len(self._scripts.get((function, symbol), ()))

    def clear(self) -> None:
        """Drop every script, latency and throttle."""
        self._scripts.clear()
        self.latency = 0.0
        self.latency_by_function.clear()
        self._throttle = None
        self._throttle_log.clear()

    def take(self, function: str, symbol: str | None) -> FaultStep:
        """Pop the next step for ``function``; a symbol-specific script wins over a global one."""
        for key in ((function, symbol), (function, None)) if symbol else ((function, None),):
            queue = self._scripts.get(key)
            if queue:
                step = queue.popleft()
                self.history.append((function, symbol, step))
                return step
        return None

    def latency_for(self, function: str) -> float:
        return self.latency_by_function.get(function, self.latency)

    # -- throttling ----------------------------------------------------------------------
    def throttle(
        self,
        max_requests: int,
        per_seconds: float = 1.0,
        functions: Iterable[str] = ("order_send",),
    ) -> None:
        """Answer 10024 (too many requests) above ``max_requests`` per ``per_seconds``.

        The window is measured on the emulator clock (``term.advance()``), not wall time, so
        tests stay deterministic.  Rejected requests do not count.
        """
        self._throttle = (max_requests, per_seconds, frozenset(functions))
        self._throttle_log.clear()

    def unthrottle(self) -> None:
        self._throttle = None
        self._throttle_log.clear()

    def throttled(self, function: str) -> bool:
        """Record a request of ``function``; True if it exceeds the configured rate."""
        if self._throttle is None or function not in self._throttle[2]:
            return False
        limit, window, _ = self._throttle
        now = self._link._clock_seconds()
        log = self._throttle_log
        while log and log[0] <= now - window:
            log.popleft()
        if len(log) >= limit:
            return True
        log.append(now)
        return False

    # -- connection ----------------------------------------------------------------------
    def disconnect(self, kind: DisconnectKind = "ipc") -> None:
        """``"ipc"``: every call returns None until ``initialize()``; ``"server"``: the terminal
        is up but lost its trade server (``terminal_info().connected`` is False, trade requests
        answer 10031) until :meth:`reconnect`."""
        self._link._fault_disconnect(kind)

    def reconnect(self, kind: DisconnectKind = "server") -> None:
        """Restore the trade-server link (``"server"``) or the IPC link (``"ipc"``)."""
        self._link._fault_reconnect(kind)
