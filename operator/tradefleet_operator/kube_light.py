"""A blocking Kubernetes REST client on the standard library, for ``tradefleet fleet``.

An emergency stop must not wait for imports: this module needs only ``http.client``, ``ssl``
and (for a kubeconfig) ``yaml``, so the fleet command reaches the API server and the runtimes
about 150 ms after it starts instead of a second (kopf, aiohttp and the spec model are never
imported). Credentials: the pod's service account, else the kubeconfig's current context
(server, CA, token or token file, client certificate, basic auth). A kubeconfig that needs an
``exec`` or ``auth-provider`` plugin is refused with :class:`Unsupported`; the caller then
falls back to :class:`~.k8s_api.KubeApi` (kopf's login).

Each thread keeps its own keep-alive connection, so a thread pool can run requests at once.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import tempfile
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Credentials", "LightKube", "LightKubeError", "Unsupported"]

_SA = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class Unsupported(Exception):
    """The credentials need something this client does not do (exec plugins)."""


class LightKubeError(Exception):
    """A refused or failed request: ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    server: str
    namespace: str = "default"
    token: str | None = None
    ca_file: str | None = None
    ca_data: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = None
    insecure: bool = False

    @classmethod
    def from_environment(cls) -> Credentials:
        host, port = (
            os.environ.get("KUBERNETES_SERVICE_HOST"),
            os.environ.get("KUBERNETES_SERVICE_PORT", "443"),
        )
        if host and (_SA / "token").exists():
            namespace = (
                (_SA / "namespace").read_text().strip()
                if (_SA / "namespace").exists()
                else "default"
            )
            return cls(
                server=f"https://{host}:{port}",
                namespace=namespace,
                token=(_SA / "token").read_text().strip(),
                ca_file=str(_SA / "ca.crt"),
            )
        paths = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        return cls.from_kubeconfig(Path(paths.split(os.pathsep)[0]))

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Credentials:
        import yaml

        config = yaml.safe_load(path.read_text()) or {}

        def named(kind: str, name: str) -> dict[str, Any]:
            for item in config.get(kind) or ():
                if item.get("name") == name:
                    return dict(item.get(kind[:-1]) or {})
            raise Unsupported(f"kubeconfig {path}: no {kind[:-1]} named {name!r}")

        context = named("contexts", str(config.get("current-context") or ""))
        cluster = named("clusters", str(context.get("cluster") or ""))
        user = named("users", str(context.get("user") or "")) if context.get("user") else {}
        if "exec" in user or "auth-provider" in user:
            raise Unsupported("the kubeconfig's user needs an exec or auth-provider plugin")
        base = path.parent

        def file(value: Any) -> str | None:
            return str(base / str(value)) if value else None

        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = Path(str(file(user["tokenFile"]))).read_text().strip()
        return cls(
            server=str(cluster["server"]).rstrip("/"),
            namespace=str(context.get("namespace") or "default"),
            token=token,
            ca_file=file(cluster.get("certificate-authority")),
            ca_data=cluster.get("certificate-authority-data"),
            cert_file=_pem(user, "client-certificate", base),
            key_file=_pem(user, "client-key", base),
            username=user.get("username"),
            password=user.get("password"),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
        )


def _pem(user: Mapping[str, Any], key: str, base: Path) -> str | None:
    if user.get(key):
        return str(base / str(user[key]))
    data = user.get(f"{key}-data")
    if not data:
        return None
    with tempfile.NamedTemporaryFile(prefix="tradefleet-", suffix=".pem", delete=False) as handle:
        handle.write(base64.b64decode(data))
    return handle.name


class LightKube:
    """GET, LIST and merge-PATCH over ``http.client``; safe to use from many threads."""

    def __init__(self, credentials: Credentials, timeout: float = 10.0) -> None:
        self.credentials = credentials
        url = urllib.parse.urlsplit(credentials.server)
        self._https = url.scheme == "https"
        self._host = url.hostname or "localhost"
        self._port = url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")
        self._timeout = timeout
        self._local = threading.local()
        self._ssl = self._context() if self._https else None
        self.headers = {"Accept": "application/json"}
        if credentials.token:
            self.headers["Authorization"] = f"Bearer {credentials.token}"
        elif credentials.username and credentials.password:
            pair = f"{credentials.username}:{credentials.password}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()

    @classmethod
    def from_environment(cls) -> LightKube:
        return cls(Credentials.from_environment())

    @property
    def default_namespace(self) -> str:
        return self.credentials.namespace

    def _context(self) -> ssl.SSLContext:
        creds = self.credentials
        if creds.insecure:
            context = ssl._create_unverified_context()
        else:
            context = ssl.create_default_context(cafile=creds.ca_file)
            if creds.ca_data:
                context.load_verify_locations(cadata=base64.b64decode(creds.ca_data).decode())
        if creds.cert_file and creds.key_file:
            context.load_cert_chain(creds.cert_file, creds.key_file)
        return context

    def _connection(self) -> http.client.HTTPConnection:
        found: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if found is None:
            if self._https:
                found = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._ssl
                )
            else:
                found = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.connection = found
        return found

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        url = self._prefix + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            connection = self._connection()
            try:
                connection.request(method, url, body=data, headers=headers)
                response = connection.getresponse()
                text = response.read()
                break
            except (http.client.HTTPException, OSError) as error:
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise LightKubeError(0, type(error).__name__, str(error)) from error
        if response.status >= 400:
            try:
                status = json.loads(text)
                reason, message = str(status.get("reason", "")), str(status.get("message", ""))
            except ValueError:
                reason, message = response.reason, text.decode(errors="replace")
            raise LightKubeError(response.status, reason, message[:500])
        return json.loads(text) if text else None

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.request("GET", path)
        except LightKubeError as error:
            if error.status == 404:
                return None
            raise
        return found

    def list(self, path: str, selector: str = "") -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else None
        listing = self.request("GET", path, params=params) or {}
        return list(listing.get("items") or [])

    def merge_patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        patched: dict[str, Any] = self.request(
            "PATCH", path, patch, content_type="application/merge-patch+json"
        )
        return patched

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
