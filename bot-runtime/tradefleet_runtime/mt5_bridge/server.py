"""The bridge's gRPC server: one terminal's ``MetaTrader5`` functions, one call at a time.

``Mt5BridgeServicer`` answers ``Call`` by running the named function (from
:data:`~tradefleet_runtime.mt5_bridge.functions.FUNCTIONS` only) on the terminal module under
one lock, together with ``last_error()`` (the terminal serves one caller; an error code read
after another caller's call would be that call's). ``build_bridge_server`` adds the runtime's
token interceptor (:class:`~tradefleet_runtime.service.auth.TokenAuth`: the bearer token is the
``control.token`` of the auth folder, re-read when it changes, compared in constant time), TLS
(:class:`~tradefleet_runtime.service.auth.TlsFiles`, as ``tradefleet serve``) and the health
service.

Secrets: ``initialize``/``login`` carry the account's login, password and server. The bridge
logs function names only, never arguments; the words of those functions' errors are cleaned of
the values they were given; an exception from the terminal is reported by its type alone.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped, unused-ignore]

from tradefleet_runtime.api.v1 import mt5_bridge_pb2 as pb
from tradefleet_runtime.api.v1 import mt5_bridge_pb2_grpc as pb_grpc
from tradefleet_runtime.mt5_bridge import codec
from tradefleet_runtime.mt5_bridge.functions import FUNCTIONS, SECRET_FUNCTIONS, SECRET_KWARGS
from tradefleet_runtime.service.auth import TlsFiles, TokenAuth

log = logging.getLogger(__name__)

SERVICE_NAME = "tradefleet.v1.Mt5BridgeService"
#: Requests are small; answers (rates, history) may be large.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_REQUEST_BYTES = 1024 * 1024


def secrets_of(function: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    """The secret strings among a call's arguments (empty for a function without any)."""
    if function not in SECRET_FUNCTIONS:
        return []
    found = [str(kwargs[key]) for key in SECRET_KWARGS if kwargs.get(key) not in (None, "")]
    if function == "login" and args:
        found.append(str(args[0]))
    found += [str(value) for value in args[1:4] if isinstance(value, str | int) and value]
    return [secret for secret in found if secret]


def scrub(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "<hidden>")
    return text


class Mt5BridgeServicer(pb_grpc.Mt5BridgeServiceServicer):
    """Serves one terminal module (the ``MetaTrader5`` package, or anything with its
    functions and constants)."""

    def __init__(self, terminal: Any) -> None:
        self.terminal = terminal
        self._lock = threading.Lock()
        self.calls = 0

    def Call(self, request: pb.Mt5CallRequest, context: grpc.ServicerContext) -> pb.Mt5CallResponse:
        function = request.function
        if function not in FUNCTIONS or function == "last_error":
            # last_error comes with every answer; asking for it alone would read another
            # caller's error.
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"function: {function[:64]!r} is not a MetaTrader5 function the bridge serves",
            )
        try:
            args = tuple(codec.decode(value) for value in request.args)
            kwargs = codec.decode_entries(request.kwargs)
        except TypeError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{function}: {error}")
        secrets = secrets_of(function, args, kwargs)
        log.debug("mt5 bridge call %s", function)
        with self._lock:
            self.calls += 1
            try:
                result = getattr(self.terminal, function)(*args, **kwargs)
            except Exception as error:
                # the terminal's words may echo an argument: the type is enough to debug a
                # bad call, and never carries the account's secrets
                log.warning("mt5 bridge: %s raised %s", function, type(error).__name__)
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"{function}: the terminal refused the call ({type(error).__name__})",
                )
            code, message = self.terminal.last_error()
        try:
            answer = codec.encode(result)
        except TypeError as error:
            log.warning("mt5 bridge: %s answered a value the bridge cannot carry", function)
            context.abort(grpc.StatusCode.INTERNAL, f"{function}: {error}")
        return pb.Mt5CallResponse(
            result=answer, error_code=int(code), error_message=scrub(str(message), secrets)
        )

    def Constants(
        self, request: pb.Mt5ConstantsRequest, context: grpc.ServicerContext
    ) -> pb.Mt5ConstantsResponse:
        return pb.Mt5ConstantsResponse(values=constants_of(self.terminal))


def constants_of(terminal: Any) -> dict[str, int]:
    """The module's integer constants (upper-case names)."""
    found: dict[str, int] = {}
    for name in dir(terminal):
        if not name.isupper() or name.startswith("_"):
            continue
        value = getattr(terminal, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            found[name] = int(value)
    return found


@dataclass
class BridgeEndpoint:
    """A built (not yet started) bridge server."""

    server: grpc.Server
    servicer: Mt5BridgeServicer
    port: int
    executor: futures.ThreadPoolExecutor

    def start(self) -> BridgeEndpoint:
        self.server.start()
        return self

    def stop(self, grace: float | None = None) -> None:
        self.server.stop(grace).wait()
        self.executor.shutdown(wait=False, cancel_futures=True)


def build_bridge_server(
    terminal: Any,
    *,
    address: str,
    auth: TokenAuth | None,
    tls: TlsFiles | None = None,
    max_workers: int = 4,
) -> BridgeEndpoint:
    """A bridge server for ``terminal`` bound to ``address`` (``host:port``; port 0 picks one).
    ``auth`` None serves without tokens (development only: the caller says so)."""
    executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="mt5-bridge")
    server = grpc.server(
        executor,
        interceptors=[auth] if auth is not None else None,
        options=[
            ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    servicer = Mt5BridgeServicer(terminal)
    pb_grpc.add_Mt5BridgeServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if tls is not None:
        port = server.add_secure_port(address, tls.server_credentials())
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        executor.shutdown(wait=False)
        raise OSError(f"cannot bind the mt5 bridge to {address}")
    return BridgeEndpoint(server=server, servicer=servicer, port=port, executor=executor)


__all__ = [
    "SERVICE_NAME",
    "BridgeEndpoint",
    "Mt5BridgeServicer",
    "build_bridge_server",
    "constants_of",
    "scrub",
    "secrets_of",
]
