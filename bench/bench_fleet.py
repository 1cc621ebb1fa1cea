"""A fleet stop across real runtimes: ``tradefleet fleet stop`` against ≥ 50 ``tradefleet serve``.

Adds to ``bench/results/operator.json`` (keys of ``bench_operator.py`` are kept):

- ``fleet_runtimes`` / ``fleet_selected``: real paper runtimes (``tradefleet serve``, EURUSD
  replay, loopback) and how many of them the selector matched;
- ``status_visible_p50_s`` / ``status_visible_p90_s`` / ``status_visible_max_s``: from a runtime
  listening (the TradingBots were applied *before*, so the operator first met a runtime that
  was not there — its gRPC channel in reconnect backoff) to its equity in ``.status``;
- ``fleet_stop_p50_s`` / ``fleet_stop_max_s``: from the command's start (``python -m
  tradefleet_operator.fleet stop``, a fresh process: its imports count) until each selected
  runtime reported the halt (its ``StreamEvents`` state event); ``fleet_stop_first_call_ms``:
  when the command sent its first ``EmergencyStop``, from the interpreter's start;
  ``fleet_stop_paths``: how the command says each bot was halted;
- ``halts_reversed``: state changes of a halted bot before the resume (must be 0), and
  ``unselected_halted`` (must be 0);
- ``fleet_resume_p50_s`` / ``fleet_resume_max_s``: ``fleet resume`` until each runtime resumed
  (the operator's change handler: not the status timer).

The operator is the real process (``tradefleet_operator.main``, status interval 10 s) against
the lean in-process API of ``bench_operator.py``, served from its own thread.

``python bench/bench_fleet.py [RUNTIMES]`` (default 50).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_operator import NAMESPACE, RESULTS, LeanApi

from tests.e2e.serve_process import (
    CONTROL_TOKEN,
    READ_TOKEN,
    ServeProcess,
    control,
    ema_bot_manifest,
)
from tradefleet_operator.settings import MANAGED_BY
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc

UNSELECTED_EVERY = 10  # every 10th bot is team b: the selector must leave it trading


_next_port = iter(range(21000 + os.getpid() % 4000, 32000))


def free_port() -> int:
    """A free port below the ephemeral range (the runtimes' HTTP ports, bound to port 0, take
    theirs from it: a port picked there could be taken before its runtime binds it)."""
    for port in _next_port:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class ApiThread:
    """The lean API on its own loop and thread; ``call`` runs a function on that loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.api: LeanApi | None = None
        self.port = 0
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.loop.run_forever()

    async def _start(self) -> None:
        self.api = LeanApi()
        runner = web.ServerRunner(web.Server(self.api.handle), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()

    def call(self, fn: Any) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


def bot_manifest(name: str, port: int, team: str) -> dict[str, Any]:
    import yaml

    bot: dict[str, Any] = yaml.safe_load(ema_bot_manifest(name))
    bot["metadata"].update(
        {
            "namespace": NAMESPACE,
            "labels": {"team": team},
            "annotations": {"tradefleet.io/runtime-address": f"127.0.0.1:{port}"},
        }
    )
    return bot


def token_secret(name: str) -> dict[str, Any]:
    tokens = {"control.token": CONTROL_TOKEN, "read.token": READ_TOKEN}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"{name}-api-token",
            "namespace": NAMESPACE,
            # made for the bot: labelled as its child (an unlabelled one is not adopted)
            "labels": {"tradefleet.io/bot": name, "app.kubernetes.io/managed-by": MANAGED_BY},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in tokens.items()},
    }


class StateWatch:
    """Every state event (pause, halt, resume) of one runtime, with its arrival time."""

    def __init__(self, serve: ServeProcess) -> None:
        self.events: list[tuple[float, str]] = []
        self._channel = grpc.insecure_channel(f"127.0.0.1:{serve.grpc_port}")
        stub = pb_grpc.RuntimeServiceStub(self._channel)
        self._stream = stub.StreamEvents(pb.StreamEventsRequest(), metadata=control())
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for event in self._stream:
                if event.kind == pb.EVENT_KIND_STATE:
                    self.events.append((time.monotonic(), event.message))
        except grpc.RpcError:
            pass

    def after(self, moment: float) -> list[tuple[float, str]]:
        return [item for item in self.events if item[0] >= moment]

    def close(self) -> None:
        self._stream.cancel()
        self._channel.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def run(count: int) -> dict[str, Any]:
    server = ApiThread()
    api = server.api
    assert api is not None
    folder = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "bench",
                "clusters": [
                    {"name": "bench", "cluster": {"server": f"http://127.0.0.1:{server.port}"}}
                ],
                "users": [{"name": "bench", "user": {"token": "bench"}}],
                "contexts": [
                    {
                        "name": "bench",
                        "context": {"cluster": "bench", "user": "bench", "namespace": NAMESPACE},
                    }
                ],
            }
        )
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    log = (folder / "operator.log").open("w")
    operator = subprocess.Popen(
        [
            sys.executable, "-m", "tradefleet_operator.main", "-A", "--standalone", "--quiet",
            "--liveness", "", "--metrics-port", "0", "--log-format", "plain",
            "--status-interval", "10",
        ],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    names = [f"fleet-{index:03d}" for index in range(count)]
    teams = {
        name: "b" if index % UNSELECTED_EVERY == 9 else "a" for index, name in enumerate(names)
    }
    ports = {name: free_port() for name in names}
    serves: dict[str, ServeProcess] = {}
    watches: dict[str, StateWatch] = {}
    try:
        deadline = time.monotonic() + 60
        while not server.call(lambda: api.watching.is_set()):
            if time.monotonic() > deadline:
                raise TimeoutError("the operator did not start watching")
            time.sleep(0.1)
        for name in names:  # kubectl apply, before any runtime listens
            server.call(lambda n=name: api.create("secrets", NAMESPACE, token_secret(n)))
            server.call(
                lambda n=name: api.create(
                    "tradingbots", NAMESPACE, bot_manifest(n, ports[n], teams[n])
                )
            )
        time.sleep(15)  # the operator meets runtimes that are not there yet (channels back off)

        def start(name: str) -> tuple[str, ServeProcess, float]:
            sub = folder / name
            sub.mkdir()
            serve = ServeProcess(
                sub,
                ema_bot_manifest(name),
                speed=600,
                extra=["--grpc", f"127.0.0.1:{ports[name]}"],
            ).start(timeout=180)
            return name, serve, time.monotonic()

        def status_of(name: str) -> dict[str, Any]:
            found = api.objects["tradingbots"].get((NAMESPACE, name)) or {}
            return dict(found.get("status") or {})

        visible: dict[str, float] = {}
        watching = threading.Event()

        def watch_statuses() -> None:  # from before the first runtime starts
            deadline = time.monotonic() + 400
            while len(visible) < count and time.monotonic() < deadline and not watching.is_set():
                statuses = server.call(lambda: {name: status_of(name) for name in names})
                now = time.monotonic()
                for name, status in statuses.items():
                    if name not in visible and status.get("currency") and status.get("phase"):
                        visible[name] = now
                time.sleep(0.1)

        poller = threading.Thread(target=watch_statuses, daemon=True)
        poller.start()
        listening: dict[str, float] = {}
        with ThreadPoolExecutor(max_workers=8) as pool:
            for name, serve, moment in pool.map(start, names):
                serves[name], listening[name] = serve, moment
        poller.join(180)
        watching.set()
        status_visible = [visible[name] - listening[name] for name in visible if name in listening]

        for name in names:
            watches[name] = StateWatch(serves[name])
        time.sleep(2)  # streams open; every runtime trading
        selected = [name for name in names if teams[name] == "a"]
        stop_started = time.monotonic()
        stop = subprocess.run(
            [
                sys.executable, "-m", "tradefleet_operator.fleet", "stop", "--selector", "team=a",
                "--reason", "bench fleet stop", "--timings",
            ],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        command_s = time.monotonic() - stop_started
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            watches[name].after(stop_started) for name in selected
        ):
            time.sleep(0.05)
        halted = {
            name: watches[name].after(stop_started)[0][0] - stop_started
            for name in selected
            if watches[name].after(stop_started)
        }
        time.sleep(15)  # more than one status interval: a stale timer tick must not resume
        resume_started = time.monotonic()
        reversed_ = sum(
            len([e for e in watches[name].after(stop_started) if e[0] < resume_started]) - 1
            for name in halted
        )
        unselected_halted = sum(
            1 for name in names if teams[name] == "b" and watches[name].after(stop_started)
        )
        resume = subprocess.run(
            [sys.executable, "-m", "tradefleet_operator.fleet", "resume", "--selector", "team=a"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            watches[name].after(resume_started) for name in selected
        ):
            time.sleep(0.05)
        resumed = [
            watches[name].after(resume_started)[0][0] - resume_started
            for name in selected
            if watches[name].after(resume_started)
        ]
        paths = {
            "direct": stop.stdout.count(": halted directly"),
            "direct_or_operator": stop.stdout.count(": halted (the direct call answered after"),
            "operator": stop.stdout.count(": spec patched: the operator halts it"),
        }
        first_ms = None
        for line in stop.stderr.splitlines():
            if line.startswith("first EmergencyStop sent"):
                first_ms = float(line.split()[3])
        print(stop.stderr, file=sys.stderr)
    finally:
        for watch in watches.values():
            watch.close()
        for serve in serves.values():
            serve.kill()
        operator.terminate()
        try:
            operator.wait(30)
        except subprocess.TimeoutExpired:
            operator.kill()
        log.close()
    return {
        "fleet_runtimes": count,
        "fleet_selected": len(selected),
        "status_visible_p50_s": round(statistics.median(status_visible), 2),
        "status_visible_p90_s": round(percentile(status_visible, 90), 2),
        "status_visible_max_s": round(max(status_visible), 2),
        "status_visible_count": len(status_visible),
        "fleet_stop_p50_s": round(statistics.median(halted.values()), 3),
        "fleet_stop_max_s": round(max(halted.values()), 3),
        "fleet_stop_halted": len(halted),
        "fleet_stop_command_s": round(command_s, 2),
        "fleet_stop_first_call_ms": first_ms,
        "fleet_stop_exit_code": stop.returncode,
        "fleet_stop_paths": paths,
        "halts_reversed": reversed_,
        "unselected_halted": unselected_halted,
        "fleet_resume_exit_code": resume.returncode,
        "fleet_resume_p50_s": round(statistics.median(resumed), 2) if resumed else None,
        "fleet_resume_max_s": round(max(resumed), 2) if resumed else None,
        "fleet_goal": {"fleet_stop_max_s": 1.0, "status_visible_p90_s": 20.0},
    }


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    result = run(count)
    merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    merged.update(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
