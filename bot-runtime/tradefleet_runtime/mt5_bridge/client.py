"""The bridge client: the ``MetaTrader5`` package's functions and constants, served by a
``tradefleet mt5-bridge`` over gRPC.

``BridgeTerminal`` has the package's surface, so the mt5 plugins cannot tell it from the
package: every function (``order_send``, ``positions_get`` ...) with the same arguments and
answers (named tuples with the same attributes and ``_asdict()``, numpy rate arrays), the
constants (``ORDER_TYPE_BUY`` ...), and ``last_error()``, which answers the error the bridge
read right after this client's last call.

A bridge that cannot be reached, breaks off mid-call or refuses the token answers like a
terminal that went away: the function returns None and ``last_error()`` an IPC code
(-10001 .. -10005). The plugin then does what it does for a lost terminal: ``initialize``
again with backoff and, for an order that was being sent, reconcile before anything else. A
bridge restart is covered by that path unchanged.

The bearer token is read from ``token_file`` (a mounted Secret) and re-read when the file
changes, so a rotated token is used without a restart. Neither the token nor any argument
(``initialize``/``login`` carry the account's password) is logged or put in an error.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from tradefleet_runtime.api.v1 import mt5_bridge_pb2 as pb
from tradefleet_runtime.api.v1 import mt5_bridge_pb2_grpc as pb_grpc
from tradefleet_runtime.mt5_bridge import codec
from tradefleet_runtime.mt5_bridge.functions import (
    FUNCTIONS,
    IPC_CONNECT_FAILED,
    IPC_RECEIVE_FAILED,
    IPC_TIMEOUT,
)
from tradefleet_runtime.mt5_bridge.server import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

_SUCCESS = (1, "Success")


@dataclass(frozen=True)
class BridgeTls:
    """TLS towards the bridge: ``ca`` verifies it (None: the system's roots); ``server_name``
    overrides the name checked in its certificate (a bridge reached by IP)."""

    ca: Path | None = None
    server_name: str | None = None


class _TokenSource:
    """The token file, re-read when ``stat`` of its resolved path says it changed (a
    Kubernetes Secret update swaps a symlink)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._key: tuple[object, ...] | None = None
        self._value: str | None = None
        self._lock = threading.Lock()

    def value(self) -> str | None:
        if self.path is None:
            return None
        with self._lock:
            try:
                resolved = os.path.realpath(self.path)
                st = os.stat(resolved)
                key = (resolved, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                if key != self._key:
                    self._value = Path(resolved).read_text(encoding="utf-8").strip() or None
                    self._key = key
            except OSError:
                self._key, self._value = None, None
            return self._value


class BridgeTerminal:
    """The ``MetaTrader5`` module surface over a bridge at ``address`` (``host:port``)."""

    def __init__(
        self,
        address: str,
        *,
        token_file: Path | str | None = None,
        tls: BridgeTls | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._token = _TokenSource(Path(token_file) if token_file is not None else None)
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # a restarted bridge (a sidecar, a Windows service) is found again within seconds,
            # not after gRPC's default backoff of up to two minutes
            ("grpc.initial_reconnect_backoff_ms", 250),
            ("grpc.min_reconnect_backoff_ms", 250),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        if tls is None:
            self._channel = grpc.insecure_channel(address, options)
        else:
            if tls.server_name:
                options.append(("grpc.ssl_target_name_override", tls.server_name))
            root = tls.ca.read_bytes() if tls.ca is not None else None
            credentials = grpc.ssl_channel_credentials(root_certificates=root)
            self._channel = grpc.secure_channel(address, credentials, options)
        self._stub = pb_grpc.Mt5BridgeServiceStub(self._channel)
        self._error: tuple[int, str] = _SUCCESS
        self._constants: dict[str, int] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BridgeTerminal({self.address!r})"

    # -- the package's surface ---------------------------------------------------------------

    def last_error(self) -> tuple[int, str]:
        return self._error

    def __getattr__(self, name: str) -> Any:
        if name in FUNCTIONS:
            return lambda *args, **kwargs: self.call(name, *args, **kwargs)
        if name.isupper() and not name.startswith("_"):
            constants = self.constants()
            if name in constants:
                return constants[name]
        raise AttributeError(f"MetaTrader5 has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        known = set(super().__dir__()) | FUNCTIONS
        if self._constants is not None:
            known |= set(self._constants)
        return sorted(known)

    # -- the wire ----------------------------------------------------------------------------

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        token = self._token.value()
        return (("authorization", f"Bearer {token}"),) if token else ()

    def call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``function`` at the bridge; None (and an IPC code in ``last_error``) when the
        bridge cannot answer."""
        request = pb.Mt5CallRequest(
            function=function,
            args=[codec.encode(value) for value in args],
            kwargs=codec.encode_entries(kwargs),
        )
        with self._lock:
            try:
                answer = self._stub.Call(request, timeout=self.timeout_s, metadata=self._metadata())
            except grpc.RpcError as error:
                self._error = self._lost(function, error)
                return None
            self._error = (int(answer.error_code), answer.error_message)
        return codec.decode(answer.result)

    def constants(self) -> dict[str, int]:
        """The package's constants, asked of the bridge once."""
        if self._constants is None:
            try:
                answer = self._stub.Constants(
                    pb.Mt5ConstantsRequest(), timeout=self.timeout_s, metadata=self._metadata()
                )
            except grpc.RpcError as error:
                code, message = self._lost("constants", error)
                raise ConnectionError(f"MetaTrader5 constants: {message} ({code})") from None
            self._constants = dict(answer.values)
        return self._constants

    def _lost(self, function: str, error: grpc.RpcError) -> tuple[int, str]:
        status = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        if status is grpc.StatusCode.UNAUTHENTICATED or status is grpc.StatusCode.PERMISSION_DENIED:
            # a rotation seen by the bridge before this pod, or a wrong Secret: retried with the
            # plugin's backoff (the file is re-read each call), never a reason to trade blind
            where = self._token.path if self._token.path is not None else "no token file"
            log.warning("mt5 bridge %s refused the token from %s", self.address, where)
            return IPC_CONNECT_FAILED, f"mt5 bridge refused the token ({status.name})"
        if status is grpc.StatusCode.INVALID_ARGUMENT:
            detail = error.details() if isinstance(error, grpc.Call) else ""
            raise TypeError(f"mt5 bridge: {detail}") from None
        log.info("mt5 bridge %s: %s during %s", self.address, status.name, function)
        if status is grpc.StatusCode.UNAVAILABLE:
            return IPC_CONNECT_FAILED, f"mt5 bridge unreachable ({status.name})"
        if status is grpc.StatusCode.DEADLINE_EXCEEDED:
            return IPC_TIMEOUT, "mt5 bridge timed out"
        return IPC_RECEIVE_FAILED, f"mt5 bridge broke off ({status.name})"

    def close(self) -> None:
        self._channel.close()


def connect(
    address: str,
    *,
    token_file: Path | str | None = None,
    ca_file: Path | str | None = None,
    server_name: str | None = None,
    tls: bool = False,
    timeout_s: float = 30.0,
) -> BridgeTerminal:
    """A bridge client (the factory the mt5 plugins name): TLS when ``tls`` or ``ca_file``."""
    secure = tls or ca_file is not None
    return BridgeTerminal(
        address,
        token_file=token_file,
        tls=BridgeTls(Path(ca_file) if ca_file else None, server_name) if secure else None,
        timeout_s=timeout_s,
    )


__all__ = ["BridgeTerminal", "BridgeTls", "connect"]
