"""A minimal kopf operator: the yardstick for the tradefleet operator's memory (bench).

For each TradingBot it creates a ConfigMap, a Deployment and a headless Service (a 409 is
fine: idempotent) and patches ``status.phase``; a timer patches the status every 10 s, as the
real operator's status timer does. Plain aiohttp, no client library, no spec model: what a
team would write in an afternoon. ``python bench/minimal_kopf_operator.py`` with ``KUBECONFIG``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import aiohttp
import kopf
import yaml

STATE: dict[str, Any] = {}


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_with_kubeconfig(settings=settings)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = 40
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    config = yaml.safe_load(open(os.environ["KUBECONFIG"]))  # noqa: SIM115
    server = config["clusters"][0]["cluster"]["server"].rstrip("/")
    STATE["server"] = server
    STATE["session"] = aiohttp.ClientSession(headers={"Authorization": "Bearer bench"})


async def _create(path: str, obj: dict[str, Any]) -> None:
    async with STATE["session"].post(
        STATE["server"] + path, data=json.dumps(obj), headers={"Content-Type": "application/json"}
    ) as response:
        if response.status >= 400 and response.status != 409:
            raise kopf.TemporaryError(f"{response.status} {path}", delay=2)


@kopf.on.resume("tradefleet.io", "v1alpha1", "tradingbots")
@kopf.on.create("tradefleet.io", "v1alpha1", "tradingbots")
async def reconcile(
    body: kopf.Body, name: str, namespace: str, patch: kopf.Patch, **_: Any
) -> None:
    labels = {"tradefleet.io/bot": name}
    children = [
        ("/api/v1/namespaces/{ns}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": f"{name}-config", "labels": labels},
         "data": {"bot.yaml": yaml.safe_dump(dict(body.spec))}}),
        ("/apis/apps/v1/namespaces/{ns}/deployments", {"apiVersion": "apps/v1",
         "kind": "Deployment", "metadata": {"name": name, "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                      {"name": "runtime", "image": "runtime:1"}]}}}}),
        ("/api/v1/namespaces/{ns}/services", {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": name, "labels": labels},
         "spec": {"clusterIP": "None", "selector": labels}}),
    ]  # fmt: skip
    for path, obj in children:
        kopf.adopt(obj, owner=body)
        await _create(path.format(ns=namespace), obj)
    patch.status["phase"] = "Pending"


@kopf.timer("tradefleet.io", "v1alpha1", "tradingbots", interval=10)
async def poll(patch: kopf.Patch, status: kopf.Status, **_: Any) -> None:
    if status.get("phase") != "Running":
        patch.status["phase"] = "Running"


if __name__ == "__main__":
    kopf.configure(quiet=True)
    kopf.run(clusterwide=True, standalone=True, liveness_endpoint=None)
