"""Order latency of the ``mt5`` broker against the in-process terminal emulator.

Writes ``bench/results/mt5_brokers.json`` and adds its ``mt5_*`` figures to
``bench/results/brokers.json`` (``make bench`` runs this after ``bench_brokers.py``, which
writes that file afresh):
- ``mt5_submit_p50_ms`` / ``mt5_submit_p99_ms``: ``Broker.submit`` of a market order until its
  fill is ready for ``drain_events`` (the broker's wake call): the thread hop, building the
  request, ``order_send``, reading the deal back. The emulator answers at once, so this is the
  plugin's own cost; a real terminal adds its round trip to the trade server.
- ``mt5_submit_return_p50_us``: how long ``submit`` itself holds the engine thread.
- ``mt5_bridge_submit_p50_ms`` / ``mt5_bridge_submit_p99_ms``: the same, with the broker
  talking to the emulator through ``tradefleet mt5-bridge`` (the server in-process, gRPC on
  loopback, with a token): the bridge's cost per order (``mt5_bridge_calls_per_submit`` calls).
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.brokers.mt5.harness import gold_pro_symbols  # noqa: E402
from tests.venues.mt5 import MT5Terminal  # noqa: E402
from tradefleet_plugins.brokers.mt5_broker import Mt5Broker  # noqa: E402
from tradefleet_plugins.brokers.mt5_params import Mt5BrokerParams  # noqa: E402
from tradefleet_runtime.mt5_bridge.client import BridgeTerminal  # noqa: E402
from tradefleet_runtime.mt5_bridge.server import build_bridge_server  # noqa: E402
from tradefleet_runtime.sdk import BrokerContext, Fill, Order, Side  # noqa: E402
from tradefleet_runtime.service.auth import TokenAuth  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "mt5_brokers.json"
ORDERS = 2000
WARMUP = 100


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(module: Any) -> tuple[list[float], list[float]]:
    """Submit-to-fill (ms) and submit-return (us) of ORDERS market orders on ``module``."""
    broker = Mt5Broker(Mt5BrokerParams(poll_interval_s=60.0), module)
    ready = threading.Event()
    broker.connect(
        BrokerContext(
            bot_name="bench/mt5",
            mode="live",
            symbols=("EURUSD",),
            currency="USD",
            initial_capital=1e9,
            wake=ready.set,
        )
    )
    submit_ms: list[float] = []
    return_us: list[float] = []
    try:
        for k in range(WARMUP + ORDERS):
            side = Side.BUY if k % 2 else Side.SELL
            order = Order(f"tfbench{k:08d}", "EURUSD", side, 10_000.0)  # euros: 0.1 lot
            filled = False
            ready.clear()
            start = time.perf_counter()
            broker.submit(order)
            returned = time.perf_counter()
            while not filled:
                ready.wait(timeout=10.0)
                ready.clear()
                filled = any(isinstance(e, Fill) for e in broker.drain_events())
            done = time.perf_counter()
            if k >= WARMUP:
                submit_ms.append((done - start) * 1000.0)
                return_us.append((returned - start) * 1e6)
    finally:
        broker.close()
    return submit_ms, return_us


def terminal() -> MT5Terminal:
    return MT5Terminal(margin_mode="netting", symbols=gold_pro_symbols(), balance=1e9)


def main() -> None:
    submit_ms, return_us = measure(terminal())
    with tempfile.TemporaryDirectory(prefix="tf-bench-bridge-") as folder:
        (Path(folder) / "control.token").write_text("bench-token\n")
        endpoint = build_bridge_server(
            terminal(), address="127.0.0.1:0", auth=TokenAuth(folder)
        ).start()
        client = BridgeTerminal(
            f"127.0.0.1:{endpoint.port}", token_file=Path(folder) / "control.token"
        )
        try:
            bridge_ms, _ = measure(client)
            calls = endpoint.servicer.calls
        finally:
            client.close()
            endpoint.stop(0)
    figures = {
        "mt5_submit_p50_ms": round(percentile(submit_ms, 0.50), 3),
        "mt5_submit_p99_ms": round(percentile(submit_ms, 0.99), 3),
        "mt5_submit_return_p50_us": round(percentile(return_us, 0.50), 1),
        "mt5_bridge_submit_p50_ms": round(percentile(bridge_ms, 0.50), 3),
        "mt5_bridge_submit_p99_ms": round(percentile(bridge_ms, 0.99), 3),
        "mt5_bridge_calls_per_submit": round(calls / (WARMUP + ORDERS), 1),
        "orders": ORDERS,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    brokers = RESULTS.with_name("brokers.json")
    merged = json.loads(brokers.read_text()) if brokers.exists() else {"benchmark": "brokers"}
    merged.update({k: v for k, v in figures.items() if k.startswith("mt5_")})
    brokers.write_text(json.dumps(merged, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
