#!/usr/bin/env python
"""Benchmark the fake Binance (tests/venues/binance).

Run: ``python bench/bench_fake_binance.py [--measured N] [--out PATH]``

Writes ``bench/results/fake_binance.json`` with

* ``startup``: start() and stop() wall time of the server (ms, median / max of 20);
* ``orders``: for 1,000 and 5,000 resting orders on one symbol (spot and USDⓈ-M),
  the per-order latency of signed ``POST /order`` + ``DELETE /order`` over a
  keep-alive HTTP connection, the in-process ``Engine.new_order`` cost, and the cost
  of a price move that fills 100 resting orders;
* ``growth``: latency at 5,000 / latency at 1,000 resting orders (should be ~1:
  matching uses heaps and per-account indexes, nothing scans all orders).

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

from tests.venues.binance.server import FakeBinance  # noqa: E402
from tests.venues.binance.signing import sign  # noqa: E402
from tests.venues.binance.state import BinanceState  # noqa: E402

KEY = "benchKey0000000000000000000000000000000000000000000000000000001"
SECRET = "benchSecret"
GOALS = {"startup_ms_median": 250.0, "growth_max": 1.5}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


_COLD_START = """
import time
t = time.perf_counter()
from tests.venues.binance.server import FakeBinance
fake = FakeBinance().start()
print(time.perf_counter() - t)
fake.stop()
"""


def bench_startup(runs: int = 20) -> dict[str, Any]:
    starts: list[float] = []
    stops: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fake = FakeBinance().start()
        t1 = time.perf_counter()
        fake.stop()
        t2 = time.perf_counter()
        starts.append(t1 - t0)
        stops.append(t2 - t1)
    cold = subprocess.run(
        [sys.executable, "-c", _COLD_START],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
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

    def __init__(self, fake: FakeBinance) -> None:
        self.conn = http.client.HTTPConnection(fake.host, fake.port, timeout=10)

    def call(self, method: str, path: str, params: dict[str, Any]) -> Any:
        params = {**params, "timestamp": int(time.time() * 1000), "recvWindow": 60_000}
        query = urlencode(params)
        query += "&signature=" + sign(SECRET, query)
        headers = {"X-MBX-APIKEY": KEY}
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            self.conn.request(method, path, body=query, headers=headers)
        else:
            self.conn.request(method, f"{path}?{query}", headers=headers)
        resp = self.conn.getresponse()
        body = json.loads(resp.read())
        if resp.status != 200:
            raise RuntimeError(f"{method} {path} -> {resp.status} {body}")
        return body

    def close(self) -> None:
        self.conn.close()


def bench_engine(resting: int, futures: bool, samples: int = 3000, rounds: int = 3) -> float:
    """In-process ``Engine.new_order`` cost (µs, best median of ``rounds``) with ``resting``
    orders on the book: place + cancel a non-crossing order ``samples`` times."""
    best = float("inf")
    for _ in range(rounds):
        state = BinanceState()
        state.add_account(KEY, SECRET, spot={"USDT": 10**9, "BTC": 10**4}, futures={"USDT": 10**9})
        engine = state.usdm if futures else state.spot
        engine.symbols["BTCUSDT"].max_num_orders = resting + samples + 10
        engine.set_price("BTCUSDT", Decimal(50_000))
        acct = state.accounts[KEY]
        qty = "0.003" if futures else "0.001"
        for i in range(resting):
            price = Decimal("40000") - Decimal(i % 5000) * Decimal("0.10")
            engine.new_order(
                acct,
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": qty,
                    "price": str(price),
                },
            )
        costs: list[float] = []
        for i in range(samples):
            params = {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": qty,
                "price": str(61_000 + i),
                "newClientOrderId": f"eng-{i}",
            }
            t = time.perf_counter()
            engine.new_order(acct, params)
            costs.append(time.perf_counter() - t)
            engine.cancel_order(acct, {"symbol": "BTCUSDT", "origClientOrderId": f"eng-{i}"})
        best = min(best, statistics.median(costs))
    return round(best * 1e6, 2)


def bench_orders(resting: int, measured: int, futures: bool) -> dict[str, Any]:
    fake = FakeBinance(default_account=False)
    engine = fake.state.usdm if futures else fake.state.spot
    engine.symbols["BTCUSDT"].max_num_orders = resting + measured + 200
    fake.add_account(KEY, SECRET, spot={"USDT": 10**9, "BTC": 10**4}, futures={"USDT": 10**9})
    fake.set_price("BTCUSDT", 50_000)
    path = "/fapi/v1/order" if futures else "/api/v3/order"
    qty = "0.003" if futures else "0.001"
    fake.start()
    client = Client(fake)
    try:
        t0 = time.perf_counter()
        for i in range(resting):
            price = Decimal("40000") - Decimal(i % 5000) * Decimal("0.10")
            client.call(
                "POST",
                path,
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": qty,
                    "price": str(price),
                },
            )
        fill_time = time.perf_counter() - t0
        place: list[float] = []
        cancel: list[float] = []
        for i in range(measured):
            params = {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": qty,
                "price": str(60_000 + i),
                "newClientOrderId": f"bench-{i}",
            }
            t = time.perf_counter()
            client.call("POST", path, params)
            place.append(time.perf_counter() - t)
            t = time.perf_counter()
            client.call("DELETE", path, {"symbol": "BTCUSDT", "origClientOrderId": f"bench-{i}"})
            cancel.append(time.perf_counter() - t)
        assert len(engine.list_open(fake.account(KEY), "BTCUSDT")) == resting
        # a price move that fills the 100 highest resting bids
        cross = Decimal("40000") - Decimal(99) * Decimal("0.10")
        t = time.perf_counter()
        fills = fake.set_price("BTCUSDT", cross, market="usdm" if futures else "spot")
        cross_time = time.perf_counter() - t
        t = time.perf_counter()
        client.call("GET", path.replace("/order", "/openOrders"), {"symbol": "BTCUSDT"})
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
        "engine_new_order_us_median": bench_engine(resting, futures),
        "price_move_filling_100_ms": _ms(cross_time),
        "fills_on_price_move": len(fills),
        "open_orders_listing_ms": _ms(list_time),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--measured", type=int, default=400)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "fake_binance.json"))
    args = parser.parse_args()
    startup = bench_startup()
    orders: dict[str, dict[str, Any]] = {}
    growth: dict[str, float] = {}
    for market, futures in (("spot", False), ("usdm", True)):
        small = bench_orders(1000, args.measured, futures)
        large = bench_orders(5000, args.measured, futures)
        orders[f"{market}_1000"] = small
        orders[f"{market}_5000"] = large
        growth[f"{market}_place_latency_5000_vs_1000"] = round(
            large["place_ms_median"] / small["place_ms_median"], 3
        )
        growth[f"{market}_engine_cost_5000_vs_1000"] = round(
            large["engine_new_order_us_median"] / small["engine_new_order_us_median"], 3
        )
    result = {
        "benchmark": "fake_binance",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "goals": GOALS,
        "startup": startup,
        "orders": orders,
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
