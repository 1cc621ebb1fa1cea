"""A small Kubernetes REST client over aiohttp, and label selectors.

:class:`KubeApi` creates, reads, merge-patches, lists and deletes objects: the operator uses it
for a bot's child objects and token Secret, the fleet command for TradingBots; whether a bot's
credentials Secret exists it learns from the Secret's metadata alone (:meth:`KubeApi.exists`),
never asking for its data. It takes its credentials from kopf's :class:`kopf.ConnectionInfo`
(service account or kubeconfig), so no Kubernetes client library is needed.

Not the official ``kubernetes_asyncio`` client, by measurement (issue 18, item 6; figures in
ARCHITECTURE.md, "The operator"): its import alone adds ~36 MB to the operator (the memory goal
at 1,000 bots is < 1.3x a minimal kopf operator), and the 1,000-bot bench with the requests
over its ``ApiClient`` used ~34 % more CPU and ~37 % more time to reconcile.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from tradefleet_operator.label_selectors import parse_selector, selector_matches
from tradefleet_operator.names import KIND, PLURAL

__all__ = ["KubeApi", "KubeError", "api_path", "object_path", "parse_selector", "selector_matches"]

if TYPE_CHECKING:
    import kopf

MERGE_PATCH = "application/merge-patch+json"
#: An object's metadata only (``meta.k8s.io/v1`` PartialObjectMetadata, kube-apiserver 1.15+):
#: how the operator learns that a credentials Secret exists without the API server ever sending
#: it the Secret's data. No fallback type is offered: a server that cannot answer so refuses
#: (406) rather than send the whole Secret.
PARTIAL_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


class KubeError(Exception):
    """A refused or failed API request: ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def temporary(self) -> bool:
        """Worth retrying: no answer, a conflict, throttling or a server error."""
        if self.status == 422 and "Only one reference can have Controller" in self.message:
            return True  # a child of an earlier bot not collected yet: adopt or wait (retry)
        return self.status in (0, 409, 429) or self.status >= 500


def api_path(
    api_version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """``/api/v1/namespaces/ns/configmaps/x`` or ``/apis/group/version/...``."""
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespace is not None:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name is not None:
        path += f"/{name}"
        if subresource is not None:
            path += f"/{subresource}"
    return path


#: Resource plural of each kind the operator manages.
PLURALS: dict[str, str] = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Deployment": "deployments",
    KIND: PLURAL,
}


def object_path(obj: Mapping[str, Any], *, with_name: bool = True) -> str:
    """The API path of a manifest (its collection when ``with_name`` is false)."""
    meta = obj.get("metadata", {})
    return api_path(
        str(obj["apiVersion"]),
        PLURALS[str(obj["kind"])],
        meta.get("namespace"),
        meta.get("name") if with_name else None,
    )


def _ssl_context(info: kopf.ConnectionInfo, folder: str) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    context = ssl.create_default_context()
    if info.ca_path:
        context.load_verify_locations(cafile=os.fsdecode(info.ca_path))
    elif info.ca_data:
        data = info.ca_data if isinstance(info.ca_data, bytes) else info.ca_data.encode()
        context.load_verify_locations(cadata=base64.b64decode(data).decode())
    if info.certificate_path or info.certificate_data:

        def pem_file(path: Any, data: str | bytes | None, name: str) -> str:
            if path:
                return os.fsdecode(path)
            assert data is not None
            raw = data if isinstance(data, bytes) else data.encode()
            target = os.path.join(folder, name)
            with open(target, "wb") as handle:
                handle.write(base64.b64decode(raw))
            return target

        cert = pem_file(info.certificate_path, info.certificate_data, "client.crt")
        key = pem_file(info.private_key_path, info.private_key_data, "client.key")
        context.load_cert_chain(cert, key)
    return context


def _failure(status: int, reason: str | None, text: str) -> KubeError:
    """The :class:`KubeError` of an answer ``status`` ≥ 400 (its ``Status`` object's reason
    and message when it is one)."""
    try:
        answer = json.loads(text)
        said, message = answer.get("reason", ""), answer.get("message", text)
    except (ValueError, AttributeError):
        said, message = reason or "", text
    return KubeError(status, str(said), str(message)[:500])


class KubeApi:
    """Create, read, merge-patch, list and delete Kubernetes objects over one HTTP session."""

    def __init__(self, info: kopf.ConnectionInfo, *, connections: int = 64) -> None:
        self.info = info
        self.server = info.server.rstrip("/")
        self._folder = tempfile.TemporaryDirectory(prefix="tradefleet-kube-")
        self._ssl = _ssl_context(info, self._folder.name)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0  # answered requests, for the operator's own accounting

    @classmethod
    def from_environment(cls, *, connections: int = 64) -> KubeApi:
        """Credentials of the pod's service account, else of the kubeconfig."""
        # Imported here: kopf is the ``operator`` extra; the fleet command needs it only for
        # reading credentials, when it runs.
        import kopf

        settings = kopf.OperatorSettings()
        info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
            settings=settings
        )
        if info is None:
            raise KubeError(0, "NoCredentials", "no service account and no kubeconfig found")
        return cls(info, connections=connections)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.info.token:
            headers["Authorization"] = f"{self.info.scheme or 'Bearer'} {self.info.token}"
        elif self.info.username and self.info.password:
            pair = f"{self.info.username}:{self.info.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=self._connections),
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=30),
                trust_env=self.info.trust_env,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._folder.cleanup()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            async with self.session().request(
                method, self.server + path, data=data, params=params, headers=headers
            ) as response:
                text = await response.text()
                self.requests += 1
                if response.status >= 400:
                    raise _failure(response.status, response.reason, text)
                return json.loads(text) if text else None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise KubeError(0, type(error).__name__, str(error)) from error

    async def exists(self, path: str) -> bool:
        """Whether the object at ``path`` exists, asked for its metadata only
        (:data:`PARTIAL_METADATA`): for a Secret, its data is never sent. The answer's body is
        read (so the connection is kept) and dropped, never parsed nor kept. Raises
        :class:`KubeError` for any answer but 200 and 404."""
        try:
            async with self.session().request(
                "GET", self.server + path, headers={"Accept": PARTIAL_METADATA}
            ) as response:
                self.requests += 1
                if response.status == 404:
                    return False
                if response.status >= 400:
                    raise _failure(response.status, response.reason, await response.text())
                await response.read()
                return True
        except (aiohttp.ClientError, TimeoutError) as error:
            raise KubeError(0, type(error).__name__, str(error)) from error

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object at ``path``, or ``None`` when it does not exist."""
        try:
            found: dict[str, Any] = await self.request("GET", path)
        except KubeError as error:
            if error.status == 404:
                return None
            raise
        return found

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = await self.request(
            "POST", object_path(obj, with_name=False), body=obj
        )
        return created

    async def patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (lists are replaced whole; ``None`` removes a key)."""
        patched: dict[str, Any] = await self.request(
            "PATCH", path, body=patch, content_type=MERGE_PATCH
        )
        return patched

    async def list(
        self, api_version: str, plural: str, namespace: str | None, selector: str = ""
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else None
        listing = await self.request("GET", api_path(api_version, plural, namespace), params=params)
        items: list[dict[str, Any]] = list(listing.get("items", []))
        # Filter here too: the same answer from a server that ignores the selector.
        return [item for item in items if selector_matches(selector, item)]

    async def delete(self, path: str) -> None:
        try:
            await self.request("DELETE", path)
        except KubeError as error:
            if error.status != 404:
                raise
