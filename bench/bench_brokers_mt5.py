"""Order latency of the ``mt5`` broker against the in-process terminal emulator.

Writes ``bench/results/mt5_brokers.json`` (the lead merges it into ``brokers.json``):
- ``mt5_submit_p50_ms`` / ``mt5_submit_p99_ms``: ``Broker.submit`` of a market order until its
  fill is ready for ``drain_events`` (the broker's wake call): the thread hop, building the
  request, ``order_send``, reading the deal back. The emulator answers at once, so this is the
  plugin's own cost; a real terminal adds its round trip to the trade server.
- ``mt5_submit_return_p50_us``: how long ``submit`` itself holds the engine thread.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.brokers.mt5.harness import gold_pro_symbols  # noqa: E402
from tests.venues.mt5 import MT5Terminal  # noqa: E402
from tradefleet_plugins.brokers.mt5_broker import Mt5Broker  # noqa: E402
from tradefleet_plugins.brokers.mt5_params import Mt5BrokerParams  # noqa: E402
from tradefleet_runtime.sdk import BrokerContext, Fill, Order, Side  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "mt5_brokers.json"
ORDERS = 2000
WARMUP = 100


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    term = MT5Terminal(margin_mode="netting", symbols=gold_pro_symbols(), balance=1e9)
    broker = Mt5Broker(Mt5BrokerParams(poll_interval_s=60.0), term)
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
            order = Order(f"tfbench{k:08d}", "EURUSD", Side.BUY if k % 2 else Side.SELL, 0.1)
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
    figures = {
        "mt5_submit_p50_ms": round(percentile(submit_ms, 0.50), 3),
        "mt5_submit_p99_ms": round(percentile(submit_ms, 0.99), 3),
        "mt5_submit_return_p50_us": round(percentile(return_us, 0.50), 1),
        "orders": ORDERS,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
