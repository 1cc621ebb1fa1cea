"""The operator reconciling a fleet of TradingBots applied at once.

Writes ``bench/results/operator.json``:
- ``bots``: how many TradingBots were applied at once;
- ``reconcile_all_s``: from the apply until every bot has its five objects (ConfigMap, Secret,
  PVC, headless Service, Deployment) and a ``status.phase``;
- ``rss_mb``: the operator process's peak resident memory during the run; ``rss_minimal_mb``:
  a minimal kopf operator's (``minimal_kopf_operator.py``: ConfigMap, Deployment, Service and a
  status timer per bot) reconciling the same bots against the same counterpart in the same run,
  and ``rss_ratio`` (goal: < 1.3);
- ``fleet_stop_s``: ``fleet stop`` of every bot (``fleet.stop_fleet``: per bot the direct
  ``EmergencyStop``, then the spec patch, every bot at once) until every runtime got its
  ``EmergencyStop`` call; ``fleet_stop_patched_s``: until the command returned;
- ``api_busy_s`` / ``api_share``: time the API counterpart spent serving requests, and its share
  of ``reconcile_all_s`` (so that the API is shown not to be the bottleneck);
- ``requests``: requests served by method; ``requests_per_bot``.

The operator runs as a real process (``python -m tradefleet_operator.main -A --standalone``)
against a lean in-process Kubernetes API (below): objects in dicts indexed by
(resource, namespace, name), merge and JSON patches, watch streams, status subresource,
finalizers. kmock's emulator is not used here because it scans every stored object on every
request. The bots' runtimes are one in-process gRPC server (``FakeRuntimes``) that answers
``GetStatus`` and counts ``EmergencyStop`` calls.

``python bench/bench_operator.py [BOTS]`` (default 1,000).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import grpc.aio
import jsonpatch
import psutil
from aiohttp import web

from tradefleet_operator.fleet import stop_fleet
from tradefleet_operator.kube_light import Credentials, LightKube
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "operator.json"
NAMESPACE = "fleet"
CHILDREN = (
    ("configmaps", "{}-config"),
    ("secrets", "{}-api-token"),
    ("persistentvolumeclaims", "{}-journal"),
    ("services", "{}"),
    ("deployments", "{}"),
)

# (group/version, plural) → (kind, namespaced, subresources)
RESOURCES: dict[tuple[str, str], tuple[str, bool, tuple[str, ...]]] = {
    ("v1", "configmaps"): ("ConfigMap", True, ()),
    ("v1", "secrets"): ("Secret", True, ()),
    ("v1", "services"): ("Service", True, ()),
    ("v1", "persistentvolumeclaims"): ("PersistentVolumeClaim", True, ()),
    ("v1", "events"): ("Event", True, ()),
    ("v1", "namespaces"): ("Namespace", False, ()),
    ("apps/v1", "deployments"): ("Deployment", True, ()),
    ("tradefleet.io/v1alpha1", "tradingbots"): ("TradingBot", True, ("status",)),
    ("apiextensions.k8s.io/v1", "customresourcedefinitions"): (
        "CustomResourceDefinition",
        False,
        (),
    ),
}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+)(?=/))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?"
    r"(?:/(?P<sub>status))?$"
)


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


class LeanApi:
    """Just enough of the Kubernetes API for kopf and the operator, with indexed storage."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = collections.defaultdict(
            dict
        )
        self.watchers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = collections.defaultdict(set)
        self.version = 1
        self.busy = 0.0
        self.counts: collections.Counter[str] = collections.Counter()
        self.writes: collections.Counter[str] = collections.Counter()
        self.events: collections.Counter[str] = collections.Counter()
        self.watching = asyncio.Event()

    def _stamp(self, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    def _emit(self, plural: str, kind: str, obj: dict[str, Any]) -> None:
        for queue in self.watchers[plural]:
            queue.put_nowait({"type": kind, "object": obj})

    def create(self, plural: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:6]
        meta.setdefault("namespace", namespace)
        key = (meta.get("namespace") or "", meta["name"])
        if plural == "events":  # counted, not kept
            self.events[str(obj.get("reason"))] += 1
            return obj
        if key in self.objects[plural]:
            raise web.HTTPConflict(
                text=json.dumps({"kind": "Status", "code": 409, "reason": "AlreadyExists"}),
                content_type="application/json",
            )
        meta["uid"] = str(uuid.uuid4())
        meta["generation"] = 1
        meta["creationTimestamp"] = "2026-01-01T00:00:00Z"
        self._stamp(obj)
        self.objects[plural][key] = obj
        self._emit(plural, "ADDED", obj)
        return obj

    def patch(
        self, plural: str, key: tuple[str, str], body: Any, json_patch: bool, status: bool
    ) -> dict[str, Any]:
        current = self.objects[plural].get(key)
        if current is None:
            raise web.HTTPNotFound(
                text=json.dumps({"kind": "Status", "code": 404, "reason": "NotFound"}),
                content_type="application/json",
            )
        try:
            if json_patch:
                new = jsonpatch.apply_patch(current, body, in_place=False)
            else:
                new = merge(current, body)
        except jsonpatch.JsonPatchTestFailed as error:
            raise web.HTTPUnprocessableEntity(
                text=json.dumps({"kind": "Status", "code": 422, "reason": "Invalid"}),
                content_type="application/json",
            ) from error
        if status:  # the status subresource changes nothing else
            new = dict(current, status=new.get("status"))
        elif new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        self._stamp(new)
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self.objects[plural][key]
            self._emit(plural, "DELETED", new)
        else:
            self.objects[plural][key] = new
            self._emit(plural, "MODIFIED", new)
        return new

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        self.counts[request.method] += 1
        if request.method != "GET":
            kind = re.sub(r"/namespaces/[^/]+", "", request.path)
            kind = re.sub(r"/bot-\d+[^/]*", "/*", kind)
            self.writes[f"{request.method} {kind}"] += 1
        try:
            return await self._route(request)
        finally:
            if request.query.get("watch") != "true":
                self.busy += time.perf_counter() - started

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if path == "/version":
            return web.json_response({"major": "1", "minor": "30", "gitVersion": "v1.30.0"})
        if path == "/api":
            return web.json_response({"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = sorted({gv for gv, _ in RESOURCES if gv != "v1"})
            return web.json_response(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [
                        {
                            "name": gv.split("/")[0],
                            "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                            "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]},
                        }
                        for gv in groups
                    ],
                }
            )
        discovery = re.fullmatch(r"/(?:api/(v1)|apis/([^/]+)/([^/]+))", path)
        if discovery and request.method == "GET":
            gv = "v1" if discovery.group(1) else f"{discovery.group(2)}/{discovery.group(3)}"
            resources = []
            for (group_version, plural), (kind, namespaced, subs) in RESOURCES.items():
                if group_version != gv:
                    continue
                for name in [plural, *(f"{plural}/{sub}" for sub in subs)]:
                    resources.append(
                        {"name": name, "kind": kind, "namespaced": namespaced, "verbs": VERBS,
                         "singularName": kind.lower()}
                    )  # fmt: skip
            return web.json_response(
                {"kind": "APIResourceList", "groupVersion": gv, "resources": resources}
            )
        match = _PATH.match(path)
        if match is None:
            raise web.HTTPNotFound()
        plural, name, namespace = match["plural"], match["name"], match["ns"]
        store = self.objects[plural]
        if request.method == "GET" and name is None:
            items = [obj for (ns, _), obj in store.items() if namespace is None or ns == namespace]
            if request.query.get("watch") == "true":
                return await self._watch(request, plural, namespace)
            return web.json_response(
                {"kind": "List", "metadata": {"resourceVersion": str(self.version)}, "items": items}
            )
        if request.method == "GET":
            found = store.get((namespace or "", name))
            if found is None:
                return web.json_response({"kind": "Status", "code": 404}, status=404)
            return web.json_response(found)
        if request.method == "POST":
            return web.json_response(self.create(plural, namespace or "", await request.json()))
        key = (namespace or "", name)
        if request.method == "PATCH":
            body = await request.json()
            json_patch = request.content_type == "application/json-patch+json"
            patched = self.patch(plural, key, body, json_patch, match["sub"] == "status")
            return web.json_response(patched)
        if request.method == "DELETE":
            obj = store.get(key)
            if obj is None:
                return web.json_response({"kind": "Status", "code": 404}, status=404)
            if obj["metadata"].get("finalizers"):
                return web.json_response(
                    self.patch(
                        plural, key, {"metadata": {"deletionTimestamp": "now"}}, False, False
                    )
                )
            del store[key]
            self._emit(plural, "DELETED", obj)
            return web.json_response(obj)
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST", "PATCH", "DELETE"])

    async def _watch(
        self, request: web.Request, plural: str, namespace: str | None
    ) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.watchers[plural].add(queue)
        if plural == "tradingbots":
            self.watching.set()
        try:
            while True:
                event = await queue.get()
                ns = event["object"]["metadata"].get("namespace")
                if namespace is None or ns == namespace:
                    await response.write(json.dumps(event).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.watchers[plural].discard(queue)
        return response


class FakeRuntimes(pb_grpc.RuntimeServiceServicer):
    """Every bot's runtime at one address, told apart by their tokens (the operator reads with
    a bot's read token and steers with its control token; both name the bot through its token
    Secret): answers GetStatus (halted once stopped) and records when each bot's first
    EmergencyStop arrived."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.stops = 0
        self.all_stopped = asyncio.Event()
        self.expected = 0
        self.stopped_at: list[float] = []
        self.halted: set[str] = set()
        self.secrets = secrets
        self.bots: dict[str, str] = {}  # "Bearer <token>" → the Secret's name
        self.scanned: set[tuple[str, str]] = set()  # Secrets already in ``bots``

    def token(self, context: Any) -> str:
        """The bot the call's token belongs to (either of its two tokens)."""
        header = str(dict(context.invocation_metadata()).get("authorization", ""))
        if header not in self.bots:
            for key, secret in self.secrets.items():
                if key in self.scanned:
                    continue
                self.scanned.add(key)
                for value in (secret.get("data") or {}).values():
                    self.bots["Bearer " + base64.b64decode(value).decode()] = key[1]
        return self.bots.get(header, header)

    async def GetStatus(self, request: Any, context: Any) -> pb.StatusSnapshot:  # type: ignore[override]
        if self.token(context) in self.halted:
            return pb.StatusSnapshot(
                bot="bench", mode="paper", phase=pb.PHASE_HALTED, halted=True, halt_reason="bench",
                equity=100_000.0, balance=100_000.0, currency="USD", broker_connected=True,
            )  # fmt: skip
        return pb.StatusSnapshot(
            bot="bench", mode="paper", phase=pb.PHASE_RUNNING, equity=100_000.0,
            balance=100_000.0, currency="USD", broker_connected=True, reconciled=True,
        )  # fmt: skip

    async def EmergencyStop(self, request: Any, context: Any) -> pb.StatusSnapshot:  # type: ignore[override]
        self.stops += 1
        token = self.token(context)
        if token not in self.halted:
            self.halted.add(token)
            self.stopped_at.append(time.perf_counter())
        if len(self.halted) >= self.expected:
            self.all_stopped.set()
        return pb.StatusSnapshot(
            bot="bench", mode="paper", phase=pb.PHASE_HALTED, halted=True,
            halt_reason=request.reason, currency="USD", broker_connected=True,
        )  # fmt: skip


def bot(index: int, address: str = "127.0.0.1:1") -> dict[str, Any]:
    return {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {
            "name": f"bot-{index:04d}",
            "namespace": NAMESPACE,
            "labels": {"team": "abc"[index % 3]},
            "annotations": {"tradefleet.io/runtime-address": address},
        },
        "spec": {
            "mode": "paper",
            "strategy": {"name": "ema-cross", "params": {"fast": 3 + index % 5, "slow": 20}},
            "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
            "broker": {"name": "paper"},
            "data": {"name": "csv", "params": {"path": "/data/EURUSD_H1_2017.csv"}},
            "risk": [{"name": "fixed-fractional", "params": {"risk_per_trade": 0.01}}],
        },
    }


def done(api: LeanApi, name: str) -> bool:
    found = api.objects["tradingbots"].get((NAMESPACE, name))
    if found is None or not (found.get("status") or {}).get("phase"):
        return False
    return all(
        (NAMESPACE, pattern.format(name)) in api.objects[plural] for plural, pattern in CHILDREN
    )


async def run(bots: int) -> dict[str, Any]:
    api = LeanApi()
    runtimes = FakeRuntimes(api.objects["secrets"])
    grpc_server = grpc.aio.server()
    pb_grpc.add_RuntimeServiceServicer_to_server(runtimes, grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    address = f"127.0.0.1:{grpc_port}"
    server = web.Server(api.handle)
    runner = web.ServerRunner(server, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    folder = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "bench",
                "clusters": [{"name": "bench", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "bench", "user": {"token": "bench"}}],
                "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
            }
        )
    )
    log = (folder / "operator.log").open("w")
    verbosity = os.environ.get("BENCH_OPERATOR_LOG", "--quiet")  # --verbose to debug
    command = [
        sys.executable, "-m", "tradefleet_operator.main", "-A", "--standalone", verbosity,
        "--liveness", "", "--metrics-port", "0", "--log-format", "plain",
    ]  # fmt: skip
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    operator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    process = psutil.Process(operator.pid)
    peak = 0
    try:
        await asyncio.wait_for(api.watching.wait(), 60)
        busy_before = api.busy
        names = [f"bot-{index:04d}" for index in range(bots)]
        started = time.perf_counter()
        for index in range(bots):  # kubectl apply of the whole fleet
            api.create("tradingbots", NAMESPACE, bot(index, address))
        pending = set(names)
        while pending:
            await asyncio.sleep(0.05)
            pending = {name for name in pending if not done(api, name)}
            peak = max(peak, process.memory_info().rss)
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"{len(pending)} bots not reconciled after 600 s")
        elapsed = time.perf_counter() - started
        busy = api.busy - busy_before
        cpu = process.cpu_times()
        operator_cpu = cpu.user + cpu.system
        for _ in range(20):  # the timers' first ticks and the settling writes
            await asyncio.sleep(0.1)
            peak = max(peak, process.memory_info().rss)

        # tradefleet fleet stop --selector team: every bot, patched at once; the operator fans
        # the EmergencyStop calls out.
        kube = LightKube(Credentials.from_kubeconfig(kubeconfig))
        runtimes.expected = bots
        stop_started = time.perf_counter()
        try:
            # Each bot: the direct EmergencyStop, then the spec patch (as the CLI does).
            results = await asyncio.to_thread(
                stop_fleet, kube, selector="team", namespace=NAMESPACE, reason="bench"
            )
            patched_s = time.perf_counter() - stop_started
            await asyncio.wait_for(runtimes.all_stopped.wait(), 120)
            fleet_stop_s = time.perf_counter() - stop_started
        finally:
            kube.close()
        assert len(results) == bots and not any(result.error for result in results)
        for _ in range(10):
            await asyncio.sleep(0.1)
            peak = max(peak, process.memory_info().rss)
    finally:
        operator.terminate()
        try:
            operator.wait(30)
        except subprocess.TimeoutExpired:
            operator.kill()
        log.close()
        await runner.cleanup()
        await grpc_server.stop(None)
    total = sum(api.counts.values())
    return {
        "bots": bots,
        "reconcile_all_s": round(elapsed, 2),
        "rss_mb": round(peak / 2**20, 1),
        "fleet_stop_s": round(fleet_stop_s, 2),
        "fleet_stop_patched_s": round(patched_s, 2),
        "fleet_stop_percentiles_s": {
            f"p{q}": round(
                runtimes.stopped_at[int(len(runtimes.stopped_at) * q / 100) - 1] - stop_started, 2
            )
            for q in (10, 50, 90, 100)
        },
        "api_busy_s": round(busy, 2),
        "api_share": round(busy / elapsed, 3),
        "operator_cpu_s": round(operator_cpu, 2),
        "requests": dict(api.counts),
        "requests_per_bot": round(total / bots, 1),
        "writes": dict(api.writes.most_common()),
        "events": dict(api.events.most_common()),
        "goal": {"reconcile_all_s": 60, "rss_mb": 300},
        "python": sys.version.split()[0],
    }


async def minimal_run(bots: int) -> dict[str, Any]:
    """A minimal kopf operator (``bench/minimal_kopf_operator.py``) against a fresh lean API,
    the same bots, in the same run: its peak RSS is the yardstick (issue 19, item 6)."""
    api = LeanApi()
    runner = web.ServerRunner(web.Server(api.handle), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    folder = Path(tempfile.mkdtemp(prefix="bench-minimal-"))
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "bench",
                "clusters": [{"name": "bench", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "bench", "user": {"token": "bench"}}],
                "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
            }
        )
    )
    log = (folder / "operator.log").open("w")
    operator = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "minimal_kopf_operator.py")],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )  # fmt: skip
    process = psutil.Process(operator.pid)
    peak = 0
    try:
        await asyncio.wait_for(api.watching.wait(), 60)
        started = time.perf_counter()
        for index in range(bots):
            api.create("tradingbots", NAMESPACE, bot(index))
        names = {f"bot-{index:04d}" for index in range(bots)}

        def finished(name: str) -> bool:
            found = api.objects["tradingbots"].get((NAMESPACE, name)) or {}
            return bool((found.get("status") or {}).get("phase")) and all(
                (NAMESPACE, pattern.format(name)) in api.objects[plural]
                for plural, pattern in CHILDREN
                if plural in ("configmaps", "services", "deployments")
            )

        while names:
            await asyncio.sleep(0.05)
            names = {name for name in names if not finished(name)}
            peak = max(peak, process.memory_info().rss)
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"minimal operator: {len(names)} bots not reconciled")
        elapsed = time.perf_counter() - started
        for _ in range(40):  # as long as the real operator is watched after its reconcile
            await asyncio.sleep(0.1)
            peak = max(peak, process.memory_info().rss)
    finally:
        operator.terminate()
        try:
            operator.wait(30)
        except subprocess.TimeoutExpired:
            operator.kill()
        log.close()
        await runner.cleanup()
    return {"rss_minimal_mb": round(peak / 2**20, 1), "reconcile_all_minimal_s": round(elapsed, 2)}


def main() -> None:
    bots = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    result = asyncio.run(run(bots))
    result.update(asyncio.run(minimal_run(bots)))
    result["rss_ratio"] = round(result["rss_mb"] / result["rss_minimal_mb"], 2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # bench_fleet.py adds its keys (real runtimes) to the same file: keep them.
    merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    merged.update(result)
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
