"""Bearer-token auth and TLS for the bot's gRPC API.

Tokens live in files in one directory, normally a mounted Kubernetes Secret:

- ``control.token``: may call every RPC;
- ``read.token``: may call the read-only RPCs (``GetStatus``, ``ListPositions``, ``ListOrders``,
  ``ListTrades``, ``StreamEvents``).

A client sends ``authorization: Bearer <token>`` metadata. A missing or wrong token ends the call
with ``UNAUTHENTICATED``; the read token on a control RPC with ``PERMISSION_DENIED``. The health
service (``grpc.health.v1.Health``) and server reflection need no token, so probes and
``grpcurl list`` work without a secret.

The files are re-read when they change, checked at most once per ``refresh_interval`` seconds with
a ``stat`` of the *resolved* path: Kubernetes updates a mounted Secret by swapping the ``..data``
symlink, so the resolved path (or its inode, size or mtime) changes and a rotated token takes
effect without a restart. A missing or empty file means that scope has no valid token. Leading
and trailing whitespace (the newline ``echo`` adds) is not part of a token.

Token values are never logged and never put into error messages; tokens are compared with
:func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hmac
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import grpc

from tradefleet_runtime.api.conventions import CONTROL_TOKEN_FILE, READ_TOKEN_FILE

log = logging.getLogger(__name__)

SERVICE = "tradefleet.v1.RuntimeService"

#: RPCs the read token may call; every other RPC of any service needs the control token.
READ_ONLY_METHODS = frozenset(
    f"/{SERVICE}/{name}"
    for name in ("GetStatus", "ListPositions", "ListOrders", "ListTrades", "StreamEvents")
)
#: Services that need no token at all.
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

_TRequest = TypeVar("_TRequest")
_TResponse = TypeVar("_TResponse")


class Scope(StrEnum):
    READ = "read"
    CONTROL = "control"


class _TokenFile:
    """One token file, re-read when ``stat`` of its resolved path says it changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: tuple[object, ...] | None = None
        self.value: bytes | None = None

    def refresh(self) -> None:
        try:
            resolved = os.path.realpath(self.path)
            st = os.stat(resolved)
        except OSError:
            if self._key is not None:
                log.warning("token file %s disappeared: that scope now has no token", self.path)
            self._key, self.value = None, None
            return
        key = (resolved, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key == self._key:
            return
        try:
            value = Path(resolved).read_bytes().strip()
        except OSError as error:
            log.warning("cannot read token file %s: %s", self.path, error.strerror)
            self._key, self.value = None, None
            return
        if self._key is not None or self.value is not None:
            log.info("token file %s changed; reloaded", self.path)
        self._key, self.value = key, (value or None)


class TokenAuth(grpc.ServerInterceptor):
    """A server interceptor checking bearer tokens read from ``directory``.

    ``refresh_interval``: the files are stat'ed at most this often (seconds); 0 checks on every
    call. ``clock`` is for tests.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        refresh_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Path(directory)
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._files = {
            Scope.CONTROL: _TokenFile(self.directory / CONTROL_TOKEN_FILE),
            Scope.READ: _TokenFile(self.directory / READ_TOKEN_FILE),
        }
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._refresh(force=True)
        if all(file.value is None for file in self._files.values()):
            log.warning("no token in %s: every authenticated call will be refused", directory)

    def _refresh(self, force: bool = False) -> None:
        with self._lock:
            now = self._clock()
            if (
                not force
                and self._checked_at is not None
                and now - self._checked_at < self.refresh_interval
            ):
                return
            self._checked_at = now
            for file in self._files.values():
                file.refresh()

    def scope_of(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Scope | None:
        """The scope the call's bearer token grants, or ``None`` without a valid token."""
        presented = _bearer(metadata)
        if presented is None:
            return None
        self._refresh()
        # compare against both, whatever matches, so timing says nothing about which one exists
        matches = {
            scope: file.value is not None and hmac.compare_digest(presented, file.value)
            for scope, file in self._files.items()
        }
        if matches[Scope.CONTROL]:
            return Scope.CONTROL
        if matches[Scope.READ]:
            return Scope.READ
        return None

    def authorize(
        self, method: str, metadata: Iterable[tuple[str, str | bytes]] | None
    ) -> tuple[grpc.StatusCode, str] | None:
        """``None`` when the call may go ahead, else the status code and a message."""
        if method.startswith(OPEN_SERVICES):
            return None
        if _bearer(metadata) is None:
            return grpc.StatusCode.UNAUTHENTICATED, "missing bearer token (authorization metadata)"
        scope = self.scope_of(metadata)
        if scope is None:
            return grpc.StatusCode.UNAUTHENTICATED, "invalid token"
        if scope is Scope.READ and method not in READ_ONLY_METHODS:
            name = method.rsplit("/", 1)[-1]
            return (
                grpc.StatusCode.PERMISSION_DENIED,
                f"the read token may not call {name}; it needs the control token",
            )
        return None

    def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], grpc.RpcMethodHandler[_TRequest, _TResponse] | None
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_TRequest, _TResponse] | None:
        method = handler_call_details.method
        denied = self.authorize(method, handler_call_details.invocation_metadata)
        handler = continuation(handler_call_details)
        if denied is None or handler is None:
            return handler
        return _denying_handler(handler, method, *denied)


def _bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> bytes | None:
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip().encode("utf-8")
        return None
    return None


def _denying_handler(
    handler: grpc.RpcMethodHandler[_TRequest, _TResponse],
    method: str,
    code: grpc.StatusCode,
    message: str,
) -> grpc.RpcMethodHandler[_TRequest, _TResponse]:
    def deny(_request: Any, context: grpc.ServicerContext) -> Any:
        log.info("refused %s from %s: %s", method, context.peer(), code.name)
        context.abort(code, message)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(
            deny, handler.request_deserializer, handler.response_serializer
        )
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(
            deny, handler.request_deserializer, handler.response_serializer
        )
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            deny, handler.request_deserializer, handler.response_serializer
        )
    return grpc.unary_unary_rpc_method_handler(
        deny, handler.request_deserializer, handler.response_serializer
    )


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The server's certificate and key (PEM) and, for mutual TLS, the CA clients must be signed by.

    Read once, when the server is built (:meth:`server_credentials`); a renewed certificate takes
    a restart.
    """

    cert: Path
    key: Path
    ca: Path | None = None

    @classmethod
    def from_directory(cls, directory: Path | str) -> TlsFiles:
        """A Kubernetes TLS Secret's layout: ``tls.crt``, ``tls.key`` and optional ``ca.crt``."""
        root = Path(directory)
        ca = root / "ca.crt"
        return cls(cert=root / "tls.crt", key=root / "tls.key", ca=ca if ca.exists() else None)

    def server_credentials(self) -> grpc.ServerCredentials:
        """Credentials for ``server.add_secure_port``; with ``ca`` set, client certificates are
        required and checked against it.

        ``TlsError`` naming the file when one cannot be read or used: gRPC would take the files
        and then say only that it failed to bind the address, though the port is free."""
        cert = _read_tls_file(self.cert, "certificate")
        key = _read_tls_file(self.key, "key")
        _check_certificates(self.cert, cert, "certificate")
        _check_key(self.cert, self.key)
        if self.ca is None:
            return grpc.ssl_server_credentials([(key, cert)])
        ca = _read_tls_file(self.ca, "CA certificate")
        _check_certificates(self.ca, ca, "CA certificate")
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=True
        )


class TlsError(ValueError):
    """A TLS file the server cannot use: names the file and what is wrong with it, never what
    it holds (a key file's text is a secret)."""


def _read_tls_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TlsError(f"TLS {what} {path}: cannot read it ({error.strerror})") from None


def _check_certificates(path: Path, data: bytes, what: str) -> None:
    """``data`` holds at least one PEM certificate that OpenSSL parses."""
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # empty: no system CAs loaded
        context.load_verify_locations(cadata=data.decode("latin-1"))
    except (ssl.SSLError, ValueError):
        raise TlsError(f"TLS {what} {path}: not a PEM certificate") from None


def _check_key(cert: Path, key: Path) -> None:
    """``key`` is an unencrypted PEM private key, and the one of ``cert``'s first certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # The password callback stops OpenSSL from asking a terminal for an encrypted key's.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise TlsError(f"TLS key {key}: not the key of the certificate {cert}") from None
        raise TlsError(f"TLS key {key}: not an unencrypted PEM private key") from None
