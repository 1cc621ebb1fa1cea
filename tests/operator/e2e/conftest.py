"""End-to-end harness: kmock's Kubernetes emulator on localhost and the REAL kopf operator.

Each runs in its own thread with its own event loop (as ``kopf.testing.KopfRunner`` does), so
the tests are plain synchronous functions: they may block (gRPC calls to real runtimes, waits)
without stalling the API server or the operator.

:class:`Emulator` fills what kmock 0.8 leaves out and kopf or the operator need (see
``EMULATOR_GAPS.md``): uid, resourceVersion, generation and creationTimestamp; 409 on a stale
``resourceVersion``; namespaces taken from the URL on create; garbage collection by owner
reference; a log of write requests (to assert that a resync writes nothing); a Deployment or
claim whose quantities kube-apiserver cannot read refused 422; and injected failures (a create
that stores the object but answers 500, as a half-done create does; a write refused 422, as an
admission policy refuses it); a read of an object's metadata only (PartialObjectMetadata) answered
so, and every read of a Secret by the operator recorded with whether it asked for the metadata
only (``secret_reads``).
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import os
import re
import textwrap
import threading
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The status timer's interval is read when the handlers are imported.
os.environ.setdefault("TRADEFLEET_STATUS_INTERVAL", "1")

import aiohttp.web
import attrs
import jsonpatch
import kmock
import kopf
import yaml

import tradefleet_operator.handlers  # noqa: F401  (registers the handlers)
from tests.e2e.serve_process import ema_bot_manifest
from tests.operator.pruning import prune
from tradefleet_operator import crd

CRD = "tradefleet.io/v1alpha1/tradingbots"
NS = "trading"
WRITES = {"POST", "PATCH", "PUT", "DELETE"}
_versions = itertools.count(1000)


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator plus what kopf and the operator need of a real API server."""

    log: list[tuple[str, str]] = attrs.field(factory=list)  # (method, path) of every request
    #: plural → how many creates still store the object but answer 500.
    half_done_creates: dict[str, int] = attrs.field(factory=dict)
    #: Seconds before garbage is collected (a real controller-manager takes a while).
    gc_delay: float = 0.0
    #: RBAC as a real API server enforces it: (namespace or None for cluster-wide, apiGroup,
    #: resource, verb) granted to the operator; None: everything allowed.
    grants: set[tuple[str | None, str, str, str]] | None = None
    #: Requests refused by RBAC: (method, path, missing permission).
    forbidden: list[tuple[str, str, str]] = attrs.field(factory=list)
    #: plural → how many creates or patches are still refused 422 (an admission policy, a
    #: quota: a refusal the operator's own checks cannot foresee).
    refused_writes: dict[str, int] = attrs.field(factory=dict)
    #: Each GET of one Secret with the operator's token: (path, asked for its metadata only).
    secret_reads: list[tuple[str, bool]] = attrs.field(factory=list)

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        method = str(request.method.value if hasattr(request.method, "value") else request.method)
        method = method.upper()
        self.log.append((method, str(request.url.path)))
        # RBAC binds the operator's identity (the kubeconfig's token); the test's own requests
        # (it plays kubectl, with no token) are an admin's.
        if (request.headers or {}).get("Authorization"):
            refusal = self._refused(method, str(request.url.path), dict(request.params or {}))
            if refusal is not None:
                return refusal
        resource = request.resource
        data = request.data
        if (
            resource is not None
            and request.action == kmock.action.FETCH
            and request.name is not None
            and request.subresource is None
        ):
            partial = _PARTIAL in _header(request, "Accept")
            if resource.plural == "secrets" and _header(request, "Authorization"):
                self.secret_reads.append((str(request.url.path), partial))
            if partial:
                return self._metadata_only(resource, request.namespace, request.name)
        if resource is not None and isinstance(data, dict):
            refs = (data.get("metadata") or {}).get("ownerReferences") or []
            if sum(1 for ref in refs if ref.get("controller")) > 1:
                return aiohttp.web.json_response(
                    {"kind": "Status", "code": 422, "reason": "Invalid",
                     "message": "metadata.ownerReferences: Invalid value: []v1.OwnerReference"
                                "{...}: Only one reference can have Controller set to true"},
                    status=422,
                )  # fmt: skip
            if resource.plural == "tradingbots" and isinstance(data.get("status"), dict):
                data["status"] = prune(data["status"], STATUS_SCHEMA)
            if request.action in (kmock.action.CREATE, kmock.action.UPDATE):
                invalid = self._invalid(resource.plural, data)
                if invalid is not None:
                    return aiohttp.web.json_response(
                        {"kind": "Status", "code": 422, "reason": "Invalid", "message": invalid},
                        status=422,
                    )
            if request.action == kmock.action.CREATE:
                meta = data.setdefault("metadata", {})
                if not meta.get("name") and meta.get("generateName"):
                    meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
                if request.namespace and not meta.get("namespace"):
                    meta["namespace"] = request.namespace
                meta.setdefault("uid", str(uuid.uuid4()))
                meta["resourceVersion"] = str(next(_versions))
                meta["generation"] = 1
                now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
                meta.setdefault("creationTimestamp", now)
            elif request.action == kmock.action.UPDATE and request.name is not None:
                key = (resource, request.namespace, request.name)
                if key in self.objects and not self.objects[key].deleted:
                    current = self.objects[key].get("metadata", {})
                    meta = data.setdefault("metadata", {})
                    sent = meta.get("resourceVersion")
                    if sent is not None and sent != current.get("resourceVersion"):
                        return aiohttp.web.json_response(
                            {"kind": "Status", "code": 409, "reason": "Conflict",
                             "message": "the object has been modified"},
                            status=409,
                        )  # fmt: skip
                    meta["resourceVersion"] = str(next(_versions))
                    if request.subresource != "status" and "spec" in data:
                        meta["generation"] = int(current.get("generation") or 1) + 1
        if (
            resource is not None
            and isinstance(data, list)
            and request.action == kmock.action.UPDATE
            and request.name is not None
            and request.subresource == "status"
        ):
            # A status JSON patch bumps the version as any write does (kopf's `test` op comes
            # first, so it still tests the version it was sent against): the status timer's
            # writes are such patches, and one sent against an older version must then fail.
            # (Finalizer patches still keep it: EMULATOR_GAPS.md, item 5.)
            version = str(next(_versions))
            data.append({"op": "replace", "path": "/metadata/resourceVersion", "value": version})
        try:
            response = await super()._handle(request)
        except jsonpatch.JsonPatchTestFailed as failed:
            # A JSON patch whose `test` op fails (kopf tests metadata.resourceVersion) is
            # answered 422 by a real API server, and kopf then patches again on its next
            # cycle; the emulator's 500 made kopf resend the same stale patch for a minute.
            return aiohttp.web.json_response(
                {"kind": "Status", "code": 422, "reason": "Invalid", "message": str(failed)},
                status=422,
            )
        if resource is not None and request.action == kmock.action.CREATE:
            left = self.half_done_creates.get(resource.plural, 0)
            if left > 0 and response.status < 300:
                self.half_done_creates[resource.plural] = left - 1
                return aiohttp.web.json_response(
                    {"kind": "Status", "code": 500, "reason": "InternalError",
                     "message": "injected: stored, but the answer was lost"},
                    status=500,
                )  # fmt: skip
        if resource is not None and request.name is not None and method in ("DELETE", "PATCH"):
            if self.gc_delay:
                asyncio.get_running_loop().call_later(
                    self.gc_delay, lambda: asyncio.ensure_future(self._collect_garbage())
                )
            else:
                await self._collect_garbage()
        return response

    def _metadata_only(
        self, resource: Any, namespace: str | None, name: str
    ) -> aiohttp.web.StreamResponse:
        """The answer to a GET asking for ``as=PartialObjectMetadata``: the object's metadata
        alone (a Secret's data never in it), or 404, as kube-apiserver answers."""
        key = (resource, namespace, name)  # kmock's ObjectsArray has no .get()
        if key not in self.objects or self.objects[key].deleted:
            return aiohttp.web.json_response(
                {"kind": "Status", "code": 404, "reason": "NotFound",
                 "message": f'{resource.plural} "{name}" not found'},
                status=404,
            )  # fmt: skip
        return aiohttp.web.json_response(
            {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": dict(self.objects[key].raw.get("metadata") or {}),
            }
        )

    def _invalid(self, plural: str, data: dict[str, Any]) -> str | None:
        """Why a create or patch is refused 422: a quantity kube-apiserver cannot read, or a
        refusal injected (``refused_writes``)."""
        invalid = _invalid_quantities(plural, data)
        if invalid is None and self.refused_writes.get(plural, 0) > 0:
            self.refused_writes[plural] -= 1
            invalid = f"{plural}: injected: refused by an admission policy"
        return invalid

    def _refused(
        self, method: str, path: str, params: dict[str, str]
    ) -> aiohttp.web.StreamResponse | None:
        """403 for a request the granted rules do not allow, as a real API server answers."""
        if self.grants is None:
            return None
        match = RBAC_PATH.match(path)
        if match is None:
            return None  # discovery: allowed to every authenticated user
        group = "" if match["core"] else match["group"]
        resource = match["resource"] + (f"/{match['sub']}" if match["sub"] else "")
        if method == "GET":
            verb = "get" if match["name"] else ("watch" if params.get("watch") else "list")
        else:
            verb = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[method]
        namespace = match["namespace"]
        if (None, group, resource, verb) in self.grants or (
            namespace is not None and (namespace, group, resource, verb) in self.grants
        ):
            return None
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        self.forbidden.append((method, path, f"{group}/{resource}:{verb}"))
        message = (
            f'{resource} is forbidden: User "system:serviceaccount:tradefleet:tradefleet" '
            f'cannot {verb} resource "{resource}" in API group "{group}" {scope}'
        )
        return aiohttp.web.json_response(
            {"kind": "Status", "code": 403, "reason": "Forbidden", "message": message}, status=403
        )

    async def _collect_garbage(self) -> None:
        """Delete objects whose owners are gone (what kube-controller-manager's GC does)."""
        while True:
            alive = {
                obj.get("metadata", {}).get("uid")
                for _, obj in self.objects.items()
                if not obj.deleted
            }
            orphans = [
                (key, obj)
                for key, obj in self.objects.items()
                if not obj.deleted
                and obj.get("metadata", {}).get("ownerReferences")
                and not any(ref.get("uid") in alive for ref in obj["metadata"]["ownerReferences"])
            ]
            if not orphans:
                return
            for (resource, _, _), obj in orphans:
                raw = obj.raw
                obj.delete()
                await self._buses[resource].put({"type": "DELETED", "object": raw})


#: What a client's ``Accept`` says to get an object's metadata only (kmock 0.8 ignores it and
#: answers the whole object: EMULATOR_GAPS.md, 19).
_PARTIAL = "as=PartialObjectMetadata"


def _header(request: Any, name: str) -> str:
    """A request header's value, its name matched in any case ("" when absent)."""
    headers = request.headers or {}
    return next((str(v) for k, v in headers.items() if str(k).lower() == name.lower()), "")


# kube-apiserver's resource quantity grammar (apimachinery's resource.ParseQuantity), written
# here apart from the operator's own (tradefleet_operator.quantity).
_QUANTITY = re.compile(
    r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)


def _invalid_quantities(plural: str, data: dict[str, Any]) -> str | None:
    """Why kube-apiserver refuses the quantities of a Deployment's containers or a claim's
    storage in a create or merge patch (``data``), as its 422 says it; None: no refusal. Only
    the grammar: kmock validates no built-in object (EMULATOR_GAPS.md, 18)."""
    found: list[tuple[str, Any]] = []
    spec = data.get("spec") or {}
    if plural == "deployments":
        pod = ((spec.get("template") or {}).get("spec")) or {}
        for i, container in enumerate(pod.get("containers") or []):
            for section, values in ((container.get("resources")) or {}).items():
                for name, value in (values or {}).items():
                    where = f"spec.template.spec.containers[{i}].resources.{section}[{name}]"
                    found.append((where, value))
    elif plural == "persistentvolumeclaims":
        requests = (spec.get("resources") or {}).get("requests") or {}
        if "storage" in requests:
            found.append(("spec.resources.requests[storage]", requests["storage"]))
    for where, value in found:
        if not _QUANTITY.match(str(value)):
            return (
                f'{plural} is invalid: {where}: Invalid value: "{value}": quantities must match '
                "the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            )
    return None


STATUS_SCHEMA = crd.status_schema()
RBAC_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<resource>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$"
)


def _declare(emulator: Emulator) -> None:
    with warnings.catch_warnings():  # kmock 0.8 reads its bundle with a deprecated call
        warnings.simplefilter("ignore", DeprecationWarning)
        emulator.resources.load_bundled()
    emulator.resources[CRD] = kmock.ResourceInfo(
        kind="TradingBot",
        singular="tradingbot",
        namespaced=True,
        verbs={"get", "list", "watch", "create", "patch", "update", "delete"},
        shortnames={"tb"},
        subresources={"status"},
    )


class Cluster:
    """The emulator served over HTTP from its own thread; a small sync client to drive it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.emulator: Emulator | None = None
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kmock", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with Emulator() as emulator, kmock.Server(emulator) as server:
            _declare(emulator)
            self.emulator = emulator
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def start(self) -> Cluster:
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("the emulator did not start")
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the emulator's loop (reads of its state must not race its writes)."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    # --- HTTP, as kubectl would -------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, merge: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        kind = "application/merge-patch+json" if merge else "application/json"
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": kind}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            if error.code == 404 and method == "GET":
                return None
            raise
        return json.loads(text) if text else None

    def bot_path(self, name: str = "", namespace: str = NS) -> str:
        path = f"/apis/tradefleet.io/v1alpha1/namespaces/{namespace}/tradingbots"
        return f"{path}/{name}" if name else path

    def apply_bot(self, bot: dict[str, Any]) -> Any:
        return self.request("POST", self.bot_path(namespace=bot["metadata"]["namespace"]), bot)

    def bot(self, name: str, namespace: str = NS) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.request("GET", self.bot_path(name, namespace))
        return found

    def patch_bot(self, name: str, patch: dict[str, Any], namespace: str = NS) -> Any:
        return self.request("PATCH", self.bot_path(name, namespace), patch, merge=True)

    def delete_bot(self, name: str, namespace: str = NS) -> Any:
        return self.request("DELETE", self.bot_path(name, namespace))

    def get(self, api_version: str, plural: str, name: str, namespace: str = NS) -> Any:
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        return self.request("GET", f"{prefix}/namespaces/{namespace}/{plural}/{name}")

    def create(self, obj: dict[str, Any]) -> Any:
        api_version, namespace = obj["apiVersion"], obj["metadata"]["namespace"]
        plural = {"ConfigMap": "configmaps", "Secret": "secrets"}[obj["kind"]]
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        return self.request("POST", f"{prefix}/namespaces/{namespace}/{plural}", obj)

    def writes(self, *, events: bool = False) -> list[tuple[str, str]]:
        assert self.emulator is not None
        emulator = self.emulator
        found: list[tuple[str, str]] = self.call(lambda: list(emulator.log))
        return [w for w in found if w[0] in WRITES and (events or "/events" not in w[1])]

    def requests(self) -> list[tuple[str, str]]:
        assert self.emulator is not None
        emulator = self.emulator
        found: list[tuple[str, str]] = self.call(lambda: list(emulator.log))
        return found

    def events(self, name: str) -> list[dict[str, Any]]:
        assert self.emulator is not None
        emulator = self.emulator

        def collect() -> list[dict[str, Any]]:
            return [
                obj.raw
                for (resource, _, _), obj in emulator.objects.items()
                if resource.plural == "events"
                and (obj.raw.get("involvedObject") or {}).get("name") == name
            ]

        found: list[dict[str, Any]] = self.call(collect)
        return found

    def wait(self, what: Callable[[], Any], timeout: float = 15.0, message: str = "") -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = what()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError(f"not within {timeout}s: {message} (last: {last!r})")


class Operator:
    """The real operator (every registered kopf handler) in its own thread and event loop."""

    def __init__(self, *, namespaces: list[str] | None = None, **options: Any) -> None:
        """``namespaces``: serve these (as ``-n`` does: the operator turns kopf's namespace
        scanning off itself); None: every namespace (scanning off here: kmock cannot list
        namespaces)."""
        self.namespaces = namespaces
        if namespaces:
            options["namespaced"] = True
        self.options = {"stop_timeout": 3.0, "rpc_timeout": 1.0, **options}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="operator", daemon=True)
        self.error: BaseException | None = None
        self.memo = kopf.Memo(options=self.options)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        settings = kopf.OperatorSettings()
        if not self.namespaces:
            settings.scanning.disabled = True
        try:
            loop.run_until_complete(
                kopf.operator(
                    clusterwide=not self.namespaces,
                    namespaces=self.namespaces or (),
                    standalone=True,
                    settings=settings,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                    memo=self.memo,
                )
            )
        except BaseException as error:  # reported by stop()
            self.error = error
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def start(self) -> Operator:
        self._thread.start()
        if not self._ready.wait(15):
            raise AssertionError(f"the operator did not start: {self.error!r}")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(20)
        assert not self._thread.is_alive(), "the operator did not stop"
        if self.error is not None:
            raise self.error


def write_kubeconfig(folder: Path, url: str) -> Path:
    config = folder / "kubeconfig"
    config.write_text(
        textwrap.dedent(
            f"""
            apiVersion: v1
            kind: Config
            current-context: emulator
            clusters: [{{name: emulator, cluster: {{server: "{url}"}}}}]
            users: [{{name: tester, user: {{token: test-token}}}}]
            contexts:
              - {{name: emulator, context: {{cluster: emulator, user: tester, namespace: {NS}}}}}
            """
        )
    )
    return config


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    running = Cluster().start()
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path, running.url)))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def operator(cluster: Cluster) -> Iterator[Operator]:
    running = Operator().start()
    try:
        yield running
    finally:
        running.stop()


def bot_manifest(
    name: str,
    *,
    address: str = "127.0.0.1:1",
    labels: dict[str, str] | None = None,
    namespace: str = NS,
    fast: int = 3,
) -> dict[str, Any]:
    """A paper TradingBot (ema-cross on EURUSD H1) whose runtime is reached at ``address``."""
    bot: dict[str, Any] = yaml.safe_load(ema_bot_manifest(name, fast=fast, flatten_on_stop=True))
    bot["metadata"]["namespace"] = namespace
    bot["metadata"]["annotations"] = {"tradefleet.io/runtime-address": address}
    if labels:
        bot["metadata"]["labels"] = labels
    return bot
