"""The HTTP plumbing every fake venue shares.

:class:`HttpFake` serves a venue's handlers with aiohttp on ``host:port`` from a background
thread with its own event loop (so sync and async ccxt clients in the test thread can both
reach it), records every request (``requests``; unknown endpoints also in ``unhandled``) and
applies the faults of a :class:`~tests.venues.fault_registry.FaultRegistry` around a handler:

* before it, :data:`PRE_FAULTS`: ``clock_skew`` (shifts the server clock the handler sees),
  ``latency`` (delays), ``timeout`` (held, then dropped), ``drop_connection`` (dropped) and
  the ones the venue answers in its own wire shape (:meth:`HttpFake.fault_response`);
* after it, :data:`POST_FAULTS`: ``accept_then_timeout`` / ``accept_then_drop`` (executed,
  then held and dropped, or dropped at once).

A venue's fake subclasses it, names itself (``venue``: thread ``fake-<venue>``, messages
``fake <venue> ...``) and writes ``_dispatch`` (routing, signing, state, its envelope).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from aiohttp import web

from .fault_registry import Fault, FaultRegistry

log = logging.getLogger(__name__)

Params = dict[str, str]

PRE_FAULTS: tuple[str, ...] = (
    "timeout",
    "rate_limit",
    "server_error",
    "reject",
    "drop_connection",
    "latency",
    "clock_skew",
)
POST_FAULTS: tuple[str, ...] = ("accept_then_timeout", "accept_then_drop")


@dataclass
class RequestRecord:
    method: str
    path: str
    params: Params
    status: int = 0  # -1: a fault held or dropped it
    # when the request arrived (monotonic): rate-limit tests check the gaps
    at: float = field(default_factory=time.monotonic)


R = TypeVar("R", bound=RequestRecord)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")),
        status=status,
        content_type="application/json",
        headers=headers,
    )


_HTML_5XX = {
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out",
}


def html_5xx(status: int) -> web.Response:
    """The nginx-style HTML error page an exchange's edge answers a 5xx with."""
    title = _HTML_5XX.get(status, f"{status} Error")
    return web.Response(
        status=status,
        content_type="text/html",
        text=f"<html><head><title>{title}</title></head><body>"
        f"<center><h1>{title}</h1></center></body></html>",
    )


def flatten(value: Any) -> str:
    """A JSON body value as the string a query parameter would carry."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class HttpFake(Generic[R]):
    """A venue's HTTP server in a background thread, with request records and faults."""

    venue: ClassVar[str]  # "binance", "bybit", "kraken"
    pre_fault_names: ClassVar[tuple[str, ...]] = PRE_FAULTS

    def __init__(self, faults: FaultRegistry, host: str, port: int) -> None:
        self.faults = faults
        self.host = host
        self.port = port
        self.requests: list[R] = []
        self.unhandled: list[R] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._hanging: set[asyncio.Task[Any]] = set()

    # -- lifecycle --------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        if self._thread is not None:
            return self
        self._ready.clear()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, name=f"fake-{self.venue}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"fake {self.venue} did not start")
        if self._start_error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError(f"fake {self.venue} failed to start") from self._start_error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._start_error = exc
            loop.run_until_complete(self._shutdown())
            loop.close()
            self._loop = None
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _serve(self) -> None:
        runner = web.AppRunner(
            self.make_app(),
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=0.2,
        )
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        for task in list(self._hanging):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests and faults ----------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def record(self, record: R) -> R:
        self.requests.append(record)
        return record

    def not_found(self, record: R) -> None:
        """Record a request for an endpoint the fake does not serve (answered with 404)."""
        self.unhandled.append(record)
        record.status = 404
        log.warning("fake %s: no such endpoint %s %s (404)", self.venue, record.method, record.path)

    async def apply_pre_faults(
        self, request: web.Request, record: R
    ) -> tuple[int, web.StreamResponse | None]:
        """Apply the pending faults due before the handler: (clock skew in ms, the answer of a
        fault that answers instead of the handler, if one does)."""
        skew = 0
        names = self.pre_fault_names
        while (fault := self.faults.take(record.method, record.path, names)) is not None:
            # each kind of fault applies at most once per request
            names = tuple(n for n in names if n != fault.name)
            if fault.name == "clock_skew":
                skew += int(fault.params.get("offset_ms", 60_000))
            elif fault.name == "latency":
                await asyncio.sleep(float(fault.params.get("delay_ms", 500)) / 1000)
            else:
                record.status = -1
                if fault.name == "timeout":
                    await self.hang(float(fault.params.get("hold_s", 30)))
                    await self.drop(request)
                if fault.name == "drop_connection":
                    await self.drop(request)
                return skew, self.fault_response(fault)
        return skew, None

    def fault_response(self, fault: Fault) -> web.StreamResponse:
        """The venue's answer for a fault that answers before executing (``rate_limit``,
        ``server_error``, ``reject``, ...)."""
        raise NotImplementedError

    async def apply_post_faults(self, request: web.Request, record: R) -> None:
        """Apply ``accept_then_timeout`` / ``accept_then_drop`` once the handler has run."""
        post = self.faults.take(record.method, record.path, POST_FAULTS)
        if post is not None:
            record.status = -1
            if post.name == "accept_then_timeout":
                await self.hang(float(post.params.get("hold_s", 30)))
            await self.drop(request)

    async def hang(self, seconds: float) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._hanging.add(task)
        try:
            await asyncio.sleep(seconds)
        finally:
            if task is not None:
                self._hanging.discard(task)

    async def drop(self, request: web.Request) -> None:
        transport = request.transport
        if transport is not None:
            transport.abort()
        # the handler is cancelled once aiohttp notices the lost connection
        await asyncio.sleep(5)
        raise ConnectionResetError("dropped by fault")
