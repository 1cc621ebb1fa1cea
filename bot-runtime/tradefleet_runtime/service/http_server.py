"""The bot's HTTP side: ``/metrics``, ``/healthz``, ``/readyz`` and the signal webhook.

aiohttp on its own event loop in a background thread, so a slow scrape or a flood of webhook
requests never touches the engine's thread.

The port faces the internet (the webhook), so every connection is bounded (:class:`HttpLimits`,
defaults in :mod:`~tradefleet_runtime.service.limits`). aiohttp bounds header sizes and idle
keep-alive connections itself, but has no timeout for a request that arrives slowly: a client
sending its headers a byte a second, or stalling half-way through its body, would hold a
connection (and a file descriptor) for ever. So each connection gets a guard
(:class:`_GuardedProtocol` around aiohttp's own protocol) that closes it when

- its request headers are not complete ``header_timeout_s`` after its first byte,
- its request body is not complete ``body_timeout_s`` after its headers,
- it stays idle ``keepalive_timeout_s`` after a response,

and that answers ``503`` and closes any connection beyond ``max_connections``. While a handler
runs (the body read), the guard leaves the connection alone: handlers bound their own time (the
webhook waits at most ``submit_timeout_s`` for the bot).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tradefleet_runtime.service import limits
from tradefleet_runtime.service.controller import BotController

log = logging.getLogger(__name__)

_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 20\r\n\r\ntoo many connections"
)


@dataclass(frozen=True)
class HttpLimits:
    """Time and size limits of the HTTP server; invalid values raise ``ValueError``."""

    header_timeout_s: float = limits.HTTP_HEADER_TIMEOUT_S
    body_timeout_s: float = limits.HTTP_BODY_TIMEOUT_S
    keepalive_timeout_s: float = limits.HTTP_KEEPALIVE_TIMEOUT_S
    max_connections: int = limits.HTTP_MAX_CONNECTIONS
    max_body_bytes: int = limits.MAX_BODY_BYTES
    max_line_bytes: int = limits.HTTP_MAX_LINE_BYTES
    max_headers: int = limits.HTTP_MAX_HEADERS

    def __post_init__(self) -> None:
        for name in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        for name in ("max_connections", "max_body_bytes", "max_line_bytes", "max_headers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


def build_app(
    controller: BotController,
    add_routes: Callable[[web.Application], None] | None,
    *,
    max_body_bytes: int = limits.MAX_BODY_BYTES,
) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes)

    async def metrics(_request: web.Request) -> web.Response:
        body = generate_latest(controller.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_request: web.Request) -> web.Response:
        ok, reason = controller.health()
        return web.json_response({"ok": ok, "reason": reason}, status=200 if ok else 503)

    async def readyz(_request: web.Request) -> web.Response:
        ok, reason = controller.readiness()
        return web.json_response({"ready": ok, "reason": reason}, status=200 if ok else 503)

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if add_routes is not None:
        add_routes(app)
    return app


# --- the connection guard ---------------------------------------------------------------------


class _ConnectionGuard:
    """The deadline of one connection, moved along as its requests progress (event loop only).

    Phases: ``headers`` (timer from the first byte), ``body`` (timer from the end of the
    headers), ``handling`` (no timer), ``idle`` (keep-alive timer; the next byte starts
    ``headers`` again).
    """

    def __init__(
        self, transport: asyncio.Transport, limits_: HttpLimits, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.transport = transport
        self.limits = limits_
        self.loop = loop
        self.phase = "headers"
        self.handler_running = False
        self.body_pending = False
        self._timer: asyncio.TimerHandle | None = None
        self._arm(limits_.header_timeout_s, "headers")

    def _arm(self, delay: float, why: str) -> None:
        self.cancel()
        self._timer = self.loop.call_later(delay, self._expired, why)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self, why: str) -> None:
        self._timer = None
        if why == "idle" and not self.transport.get_write_buffer_size():
            self.transport.close()  # an orderly close of a quiet keep-alive connection
            return
        log.debug("http: closing a connection: %s not complete in time", why)
        self.transport.abort()  # a slow client: do not wait for it to read anything

    def data_received(self) -> None:
        if self.phase == "idle":  # the first byte of the next request
            self.phase = "headers"
            self._arm(self.limits.header_timeout_s, "headers")

    def request_started(self, content: Any) -> None:
        """The headers are in (called by the middleware); time the body until its end."""
        self.handler_running = True
        self.phase = "body"
        if content.is_eof():
            self._body_done()
            return
        self.body_pending = True
        self._arm(self.limits.body_timeout_s, "body")
        content.on_eof(self._body_done)

    def _body_done(self) -> None:
        self.body_pending = False
        if self.handler_running:
            self.phase = "handling"
            self.cancel()
        else:
            self._go_idle()

    def request_finished(self) -> None:
        self.handler_running = False
        if not self.body_pending:  # else the body deadline still bounds aiohttp's lingering read
            self._go_idle()

    def _go_idle(self) -> None:
        self.phase = "idle"
        self._arm(self.limits.keepalive_timeout_s, "idle")


class _GuardState:
    """The live guards of one server, by transport (event loop only)."""

    def __init__(self, limits_: HttpLimits) -> None:
        self.limits = limits_
        self.guards: dict[asyncio.BaseTransport, _ConnectionGuard] = {}

    def middleware(self) -> Any:
        """The aiohttp middleware that tells each connection's guard where its request is."""

        @web.middleware
        async def guard_requests(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            transport = request.transport
            guard = self.guards.get(transport) if transport is not None else None
            if guard is None:  # not one of our connections (a test client, say)
                return await handler(request)
            guard.request_started(request.content)
            try:
                return await handler(request)
            finally:
                guard.request_finished()

        return guard_requests


class _GuardedProtocol(asyncio.Protocol):
    """aiohttp's protocol for one connection, with a :class:`_ConnectionGuard` in front.

    Made lazily in ``connection_made``, so a connection refused for the connection limit never
    reaches aiohttp.
    """

    def __init__(self, make_inner: Callable[[], asyncio.Protocol], state: _GuardState) -> None:
        self._make_inner = make_inner
        self._state = state
        self._inner: asyncio.Protocol | None = None
        self._guard: _ConnectionGuard | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if len(self._state.guards) >= self._state.limits.max_connections:
            log.warning(
                "http: %d connections open; refusing another", self._state.limits.max_connections
            )
            transport.write(_BUSY_RESPONSE)
            transport.close()
            return
        self._guard = _ConnectionGuard(transport, self._state.limits, asyncio.get_running_loop())
        self._state.guards[transport] = self._guard
        self._inner = self._make_inner()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._state.guards.pop(self._guard.transport, None)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return  # a refused connection: its request is not read
        assert self._guard is not None
        self._guard.data_received()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class HttpServer:
    """Runs an aiohttp application on a thread of its own, with :class:`HttpLimits`."""

    def __init__(
        self, app: web.Application, host: str, port: int, limits_: HttpLimits | None = None
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.limits = limits_ or HttpLimits()
        self._state = _GuardState(self.limits)
        # outermost, so the guard sees every request, also those no route matches
        app.middlewares.insert(0, self._state.middleware())
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    @property
    def connections(self) -> int:
        """Connections open now (read from any thread: a racy but harmless len)."""
        return len(self._state.guards)

    def start(self) -> int:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self.port

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as error:  # reported to start()
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        limits_ = self.limits
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            keepalive_timeout=limits_.keepalive_timeout_s,
            max_line_size=limits_.max_line_bytes,
            max_field_size=limits_.max_line_bytes,
            max_headers=limits_.max_headers,
            lingering_time=min(limits_.body_timeout_s, 10.0),
        )
        await self._runner.setup()
        web_server = self._runner.server
        assert web_server is not None
        # Our own listening socket rather than web.TCPSite, so each connection's protocol is
        # aiohttp's wrapped in the guard (TCPSite hands the bare protocol to the loop).
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _GuardedProtocol(web_server, self._state), self.host, self.port
        )
        if self.port == 0 and self._server.sockets:
            self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def _stop() -> None:
            if self._server is not None:
                self._server.close()
            if self._runner is not None:
                await self._runner.cleanup()
            for guard in list(self._state.guards.values()):
                guard.cancel()
                guard.transport.abort()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
