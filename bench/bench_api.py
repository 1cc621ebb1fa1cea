"""Latency of a real ``tradefleet serve`` on loopback, and its memory.

Writes ``bench/results/api.json``:
- ``get_status_p50_ms`` / ``get_status_p99_ms``: gRPC GetStatus round trips (control token);
- ``webhook_to_order_p50_ms`` / ``webhook_to_order_p99_ms``: signed POST /webhook/signal until
  its answer, which the server sends after the order reached the broker (so this bounds the
  signal-to-order time from above);
- ``serve_rss_mb``: resident memory of a paper-mode ``tradefleet serve`` after replaying the
  whole BTC/USD file (17,583 bars) through ``ema-cross``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.serve_process import (  # noqa: E402
    HMAC_KEY,
    ServeProcess,
    control,
    signal_bot_manifest,
)
from tests.service.webhook_client import WEBHOOK_PATH, sign  # noqa: E402
from tradefleet_runtime.api.v1 import runtime_pb2 as pb  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "api.json"
STATUS_CALLS = 2000
SIGNALS = 300


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_latency(folder: Path) -> dict[str, float]:
    manifest = signal_bot_manifest(pyramiding=True)  # every signal adds a resting order
    serve = ServeProcess(folder, manifest, speed=60, extra=["--webhook-rate", "1000000"]).start()
    try:
        stub = serve.stub()
        serve.wait_for(lambda s: s.bars >= 1)
        for _ in range(100):  # warm-up
            stub.GetStatus(pb.GetStatusRequest(), metadata=control())
        status_ms = []
        for _ in range(STATUS_CALLS):
            started = time.perf_counter()
            stub.GetStatus(pb.GetStatusRequest(), metadata=control())
            status_ms.append((time.perf_counter() - started) * 1000)
        webhook_ms = []
        url = f"http://127.0.0.1:{serve.http_port}{WEBHOOK_PATH}"
        for i in range(SIGNALS):
            body = json.dumps(
                {
                    "symbol": "EURUSD",
                    "direction": "BUY",
                    "price_levels": {"entry": 1.025, "stop_loss": 1.015, "take_profit": 1.06},
                    "volume": 1000 + i,  # every body differs: no two are replays
                    "pattern_type": "bench",
                }
            ).encode()
            headers = {
                "Content-Type": "application/json",
                **sign(HMAC_KEY.encode(), body, int(time.time())),
            }
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 202, response.read()
            webhook_ms.append((time.perf_counter() - started) * 1000)
        orders = stub.ListOrders(pb.ListOrdersRequest(), metadata=control()).orders
        assert len(orders) == SIGNALS, len(orders)
    finally:
        serve.kill()
    return {
        "get_status_p50_ms": round(statistics.median(status_ms), 3),
        "get_status_p99_ms": round(percentile(status_ms, 0.99), 3),
        "webhook_to_order_p50_ms": round(statistics.median(webhook_ms), 3),
        "webhook_to_order_p99_ms": round(percentile(webhook_ms, 0.99), 3),
        "get_status_calls": STATUS_CALLS,
        "webhook_signals": SIGNALS,
    }


def bench_rss(folder: Path) -> dict[str, float]:
    manifest = textwrap.dedent(
        f"""
        apiVersion: tradefleet.io/v1alpha1
        kind: TradingBot
        metadata: {{name: rss-bot}}
        spec:
          mode: paper
          strategy: {{name: ema-cross, params: {{fast: 12, slow: 48}}}}
          market: {{symbols: [BTC/USD], timeframe: 1h}}
          broker: {{name: paper, params: {{fee_bps: 10}}}}
          data:
            name: csv
            params: {{path: {ROOT / "data" / "BTCUSD_H1_bitfinex_2017-2019.csv"}, order: any}}
          risk: [{{name: fixed-fractional, params: {{risk_per_trade: 0.01}}}}]
          capital: {{initial: 100000}}
        """
    )
    serve = ServeProcess(folder, manifest, speed=0).start()
    try:
        serve.wait_for(lambda s: s.phase == pb.PHASE_STOPPED, timeout=300, every=0.5)
        status = serve.stub().GetStatus(pb.GetStatusRequest(), metadata=control())
        assert serve.process is not None
        return {"serve_rss_mb": round(rss_mb(serve.process.pid), 1), "replayed_bars": status.bars}
    finally:
        serve.kill()


def main() -> int:
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        figures = {**bench_latency(Path(first)), **bench_rss(Path(second))}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
