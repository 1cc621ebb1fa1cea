#!/usr/bin/env python
"""Benchmark the fake Bybit v5 linear (tests/venues/bybit).

Run: ``python bench/bench_fake_bybit.py [--measured N] [--out PATH]``

Writes ``bench/results/fake_bybit.json`` with

* ``startup``: start() and stop() wall time of the server (ms, median / max of 20) and a
  cold start including imports;
* ``orders``: for 1,000 and 5,000 resting orders on BTCUSDT, the per-order latency of a
  signed ``POST /v5/order/create`` + ``POST /v5/order/cancel`` (by orderLinkId) over a
  keep-alive HTTP connection, the in-process ``BybitState.new_order`` cost, a price move
  that fills 100 resting orders and one page of ``/v5/order/realtime``;
* ``growth``: latency at 5,000 / latency at 1,000 resting orders (should be ~1: matching
  uses heaps and per-account indexes; nothing on the order path scans all orders).

The venue's own limit of 500 active orders per symbol is raised for the bench.
Speed goals live here only; the tests never assert timings.
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.venues.bybit.server import FakeBybit  # noqa: E402
from tests.venues.bybit.signing import sign  # noqa: E402
from tests.venues.bybit.state import BybitState  # noqa: E402

KEY = "benchKey0000000001"
SECRET = "benchSecret"
GOALS = {"startup_ms_median": 250.0, "growth_max": 1.5}
CREATE, CANCEL = "/v5/order/create", "/v5/order/cancel"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


_COLD_START = """
import time
t = time.perf_counter()
from tests.venues.bybit.server import FakeBybit
fake = FakeBybit().start()
print(time.perf_counter() - t)
fake.stop()
"""


def bench_startup(runs: int = 20) -> dict[str, Any]:
    starts: list[float] = []
    stops: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fake = FakeBybit().start()
        t1 = time.perf_counter()
        fake.stop()
        t2 = time.perf_counter()
        starts.append(t1 - t0)
        stops.append(t2 - t1)
    cold = subprocess.run(
        [sys.executable, "-c", _COLD_START], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {
        "runs": runs,
        "cold_start_ms_including_imports": _ms(float(cold.stdout.strip())),
        "start_ms_median": _ms(statistics.median(starts)),
        "start_ms_max": _ms(max(starts)),
        "stop_ms_median": _ms(statistics.median(stops)),
        "stop_ms_max": _ms(max(stops)),
    }


class Client:
    """Minimal signed keep-alive HTTP client (what ccxt sends, without ccxt's overhead)."""

    def __init__(self, fake: FakeBybit) -> None:
        self.conn = http.client.HTTPConnection(fake.host, fake.port, timeout=10)

    def call(self, method: str, path: str, params: dict[str, Any]) -> Any:
        ts, window = str(int(time.time() * 1000)), "60000"
        if method == "POST":
            payload = json.dumps(params)
            target = path
        else:
            payload = urlencode(params)
            target = f"{path}?{payload}"
        headers = {
            "X-BAPI-API-KEY": KEY,
            "X-BAPI-TIMESTAMP": ts,
            "X-BAPI-RECV-WINDOW": window,
            "X-BAPI-SIGN": sign(SECRET, ts, KEY, window, payload),
            "Content-Type": "application/json",
        }
        self.conn.request(
            method, target, body=payload if method == "POST" else None, headers=headers
        )
        resp = self.conn.getresponse()
        body = json.loads(resp.read())
        if resp.status != 200 or body["retCode"] != 0:
            raise RuntimeError(f"{method} {path} -> {resp.status} {body}")
        return body

    def close(self) -> None:
        self.conn.close()


def _bid(i: int) -> dict[str, str]:
    price = Decimal("40000") - Decimal(i % 5000) * Decimal("0.10")
    return {
        "category": "linear",
        "symbol": "BTCUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.003",
        "price": str(price),
    }


def _ask(i: int, prefix: str) -> dict[str, str]:
    return {
        "category": "linear",
        "symbol": "BTCUSDT",
        "side": "Sell",
        "orderType": "Limit",
        "qty": "0.003",
        "price": str(61_000 + i),
        "orderLinkId": f"{prefix}-{i}",
    }


def bench_engine(resting: int, samples: int = 3000, rounds: int = 3) -> float:
    """In-process ``BybitState.new_order`` cost (µs, best median of ``rounds``)."""
    best = float("inf")
    for _ in range(rounds):
        state = BybitState()
        state.instruments["BTCUSDT"].max_open_orders = resting + samples + 10
        acct = state.add_account(KEY, SECRET, 10**9)
        state.set_price("BTCUSDT", 50_000)
        for i in range(resting):
            state.new_order(acct, _bid(i))
        costs: list[float] = []
        for i in range(samples):
            params = _ask(i, "eng")
            t = time.perf_counter()
            state.new_order(acct, params)
            costs.append(time.perf_counter() - t)
            state.cancel(acct, {"symbol": "BTCUSDT", "orderLinkId": f"eng-{i}"})
        best = min(best, statistics.median(costs))
    return round(best * 1e6, 2)


def bench_orders(resting: int, measured: int) -> dict[str, Any]:
    fake = FakeBybit(default_account=False)
    fake.state.instruments["BTCUSDT"].max_open_orders = resting + measured + 200
    fake.add_account(KEY, SECRET, 10**9)
    fake.start()
    client = Client(fake)
    try:
        t0 = time.perf_counter()
        for i in range(resting):
            client.call("POST", CREATE, _bid(i))
        fill_time = time.perf_counter() - t0
        place: list[float] = []
        cancel: list[float] = []
        for i in range(measured):
            t = time.perf_counter()
            client.call("POST", CREATE, _ask(i, "bench"))
            place.append(time.perf_counter() - t)
            t = time.perf_counter()
            client.call(
                "POST",
                CANCEL,
                {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": f"bench-{i}"},
            )
            cancel.append(time.perf_counter() - t)
        assert fake.state.open_count[(KEY, "BTCUSDT")] == resting
        cross = Decimal("40000") - Decimal(99) * Decimal("0.10")
        t = time.perf_counter()
        fills = fake.set_price("BTCUSDT", cross)
        cross_time = time.perf_counter() - t
        t = time.perf_counter()
        client.call(
            "GET", "/v5/order/realtime", {"category": "linear", "symbol": "BTCUSDT", "limit": 50}
        )
        list_time = time.perf_counter() - t
    finally:
        client.close()
        fake.stop()
    return {
        "resting_orders": resting,
        "measured_orders": measured,
        "prefill_orders_per_s": round(resting / fill_time, 1),
        "place_ms_median": _ms(statistics.median(place)),
        "place_ms_p95": _ms(sorted(place)[int(len(place) * 0.95) - 1]),
        "cancel_ms_median": _ms(statistics.median(cancel)),
        "engine_new_order_us_median": bench_engine(resting),
        "price_move_filling_100_ms": _ms(cross_time),
        "fills_on_price_move": len(fills),
        "open_orders_page_of_50_ms": _ms(list_time),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--measured", type=int, default=400)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "fake_bybit.json"))
    args = parser.parse_args()
    startup = bench_startup()
    small = bench_orders(1000, args.measured)
    large = bench_orders(5000, args.measured)
    growth = {
        "place_latency_5000_vs_1000": round(large["place_ms_median"] / small["place_ms_median"], 3),
        "engine_cost_5000_vs_1000": round(
            large["engine_new_order_us_median"] / small["engine_new_order_us_median"], 3
        ),
    }
    result = {
        "benchmark": "fake_bybit",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "goals": GOALS,
        "startup": startup,
        "orders": {"linear_1000": small, "linear_5000": large},
        "growth": growth,
        "meets_goals": {
            "startup": startup["start_ms_median"] < GOALS["startup_ms_median"],
            "flat_latency": all(v < GOALS["growth_max"] for v in growth.values()),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
