"""The operator bench's reconcile with the operator's Kubernetes requests over the official
``kubernetes_asyncio`` client instead of ``k8s_api.py`` (issue 18, item 6; ARCHITECTURE.md).

Runs ``bench_operator.run`` (operator part only, no minimal operator, results not written)
alternately with the thin client and with ``KubeApi.request`` replaced by one over
``kubernetes_asyncio``'s ``ApiClient.call_api`` (raw responses, no model deserialisation;
configured by its ``load_kube_config``), and prints rss_mb, reconcile_all_s and operator_cpu_s
of each run. kubernetes_asyncio is not a dependency: install it where this can import it
(``pip install --target DIR kubernetes-asyncio``; ``KUBE_ASYNCIO_PATH=DIR``).

``python bench/compare_kube_client.py [BOTS] [PAIRS]`` (default 1,000 bots, 2 pairs).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_operator

#: Run as the operator's entry point: KubeApi.request over kubernetes_asyncio, then main().
OFFICIAL_ENTRY = """
import json, os, sys
sys.path.append(os.environ.get("KUBE_ASYNCIO_PATH", ""))
import aiohttp
from kubernetes_asyncio import client, config
from tradefleet_operator import k8s_api
from tradefleet_operator.k8s_api import KubeError

async def request(self, method, path, *, body=None, params=None,
                  content_type="application/json"):
    api = getattr(self, "_official", None)
    if api is None:
        conf = client.Configuration()
        await config.load_kube_config(client_configuration=conf)
        conf.connection_pool_maxsize = self._connections
        api = self._official = client.ApiClient(conf)
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    try:
        response = await api.call_api(
            path, method, query_params=list((params or {}).items()), header_params=headers,
            body=body, auth_settings=["BearerToken"], _preload_content=False,
        )
        async with response:
            text = await response.text()
            self.requests += 1
            if response.status >= 400:
                try:
                    status = json.loads(text)
                    reason, message = status.get("reason", ""), status.get("message", text)
                except ValueError:
                    reason, message = response.reason or "", text
                raise KubeError(response.status, str(reason), str(message)[:500])
            return json.loads(text) if text else None
    except (aiohttp.ClientError, TimeoutError) as error:
        raise KubeError(0, type(error).__name__, str(error)) from error

k8s_api.KubeApi.request = request
sys.argv = ["tradefleet-operator", *sys.argv[1:]]
from tradefleet_operator.main import main
sys.exit(main())
"""


def main() -> None:
    bots = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    entry = Path(tempfile.mkdtemp(prefix="bench-kube-client-")) / "official_operator.py"
    entry.write_text(OFFICIAL_ENTRY)
    real = subprocess.Popen
    official = False

    class Popen(real):  # type: ignore[misc, type-arg]
        def __init__(self, command: list[str], *args: Any, **kwargs: Any) -> None:
            if official and command[1:3] == ["-m", "tradefleet_operator.main"]:
                command = [command[0], str(entry), *command[3:]]
            super().__init__(command, *args, **kwargs)

    bench_operator.subprocess.Popen = Popen  # type: ignore[misc]
    keys = ("rss_mb", "reconcile_all_s", "operator_cpu_s", "requests_per_bot")
    for _ in range(pairs):
        for official in (False, True):
            result = asyncio.run(bench_operator.run(bots))
            label = "kubernetes_asyncio" if official else "k8s_api (thin)"
            print(json.dumps({"client": label, **{key: result[key] for key in keys}}))
            sys.stdout.flush()
    os.unlink(entry)


if __name__ == "__main__":
    main()
