#!/usr/bin/env python
"""Benchmark the brokers: submit → venue ack, and the venue reports with 1,000 open orders.

Run: ``python bench/bench_brokers.py [--orders N] [--out PATH]``

Writes ``bench/results/brokers.json`` with

* ``paper_submit_p50_ms`` / ``_p99_ms``: ``PaperBroker.submit`` (its answer is the ack);
* ``ccxt_submit_p50_ms`` / ``_p99_ms``: ``CcxtBroker.submit`` until the OPEN event with the
  venue's order id is drained, against the local fake Binance spot (ccxt's rate limiter on,
  as in production: the figure includes its spacing), one order at a time; the same for
  USDⓈ-M and Bybit under ``per_venue``;
* ``submit_call_p99_ms``: how long ``submit`` itself holds the engine thread (ccxt);
* ``venue_reports_1000_orders_s``: ``order_reports`` + ``fill_reports`` of a fresh broker
  with 1,000 open orders (and 100 fills) on the fake Binance spot;
* ``reconcile_1000_orders_s``: a restarted live bot's start-up (``BotSession.open``: connect,
  the venue's reports, the reconciliation plan, 1,000 working orders adopted and journaled)
  with 1,000 of its orders open on the fake Binance spot and in its journal.

Speed goals live here only; the tests never assert timings.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.venues.binance.fixtures import make_ccxt_binance  # noqa: E402
from tests.venues.binance.server import FakeBinance  # noqa: E402
from tests.venues.binance.state import default_spot_symbols  # noqa: E402
from tests.venues.bybit.server import FakeBybit  # noqa: E402
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker  # noqa: E402
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams  # noqa: E402
from tradefleet_plugins.brokers.paper import PaperBroker  # noqa: E402
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams  # noqa: E402
from tradefleet_runtime.sdk import (  # noqa: E402
    BrokerContext,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)

SYMBOL = "BTCUSDT"
GOALS = {
    "ccxt_submit_p99_ms": 250.0,
    "submit_call_p99_ms": 1.0,
    "venue_reports_1000_orders_s": 5.0,
    "reconcile_1000_orders_s": 10.0,
}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def bench_paper(orders: int) -> dict[str, float]:
    broker = PaperBroker(PaperBrokerParams())
    broker.connect(BrokerContext("bench", "paper", (SYMBOL,), "USDT", 1e9))
    times = []
    for i in range(orders):
        order = Order(f"p{i}", SYMBOL, Side.BUY, 0.01, OrderType.LIMIT, 40_000.0 + i % 100)
        start = time.perf_counter()
        update = broker.submit(order)
        times.append((time.perf_counter() - start) * 1000)
        assert update.status is OrderStatus.OPEN
    return {"p50_ms": _pct(times, 0.5), "p99_ms": _pct(times, 0.99)}


def _connect(
    fake: Any, exchange: str, market_type: str, credentials: Path
) -> tuple[CcxtBroker, threading.Event]:
    (credentials / "apiKey").write_text(fake.api_key)
    (credentials / "secret").write_text(fake.secret)
    woken = threading.Event()
    broker = CcxtBroker(
        CcxtBrokerParams(
            exchange=exchange,
            market_type=market_type,  # type: ignore[arg-type]
            api_url=fake.url,
            poll_interval_s=1.0,
        )
    )
    broker.connect(
        BrokerContext("bench", "live", (SYMBOL,), "USDT", 1e6, credentials, wake=woken.set)
    )
    return broker, woken


def bench_ccxt(fake: Any, exchange: str, market_type: str, orders: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        broker, woken = _connect(fake, exchange, market_type, Path(folder))
        acks, calls = [], []
        try:
            for i in range(orders):
                cid = f"b{exchange[:3]}{i}"
                order = Order(cid, SYMBOL, Side.BUY, 0.01, OrderType.LIMIT, 40_000.0 + i % 100)
                woken.clear()
                start = time.perf_counter()
                update = broker.submit(order)
                calls.append((time.perf_counter() - start) * 1000)
                assert update.status is OrderStatus.PENDING, update
                acked = False
                while not acked:
                    woken.wait(10)
                    woken.clear()
                    for event in broker.drain_events():
                        if isinstance(event, OrderUpdate) and event.client_order_id == cid:
                            assert event.status is OrderStatus.OPEN, event
                            acked = True
                acks.append((time.perf_counter() - start) * 1000)
        finally:
            broker.close()
    return {
        "p50_ms": _pct(acks, 0.5),
        "p99_ms": _pct(acks, 0.99),
        "call_p99_ms": _pct(calls, 0.99),
    }


def bench_reports(open_orders: int = 1000, fills: int = 100) -> dict[str, float]:
    # Binance allows 200 open orders a symbol by default; this account may hold more.
    symbols = [replace(s, max_num_orders=open_orders * 2) for s in default_spot_symbols()]
    fake = FakeBinance(spot_symbols=symbols).start()
    try:
        fake.set_price(SYMBOL, 50_000, market="spot")
        client = make_ccxt_binance(fake, timeout_ms=10_000)
        client.load_markets()
        prefix = "tf" + "0" * 6
        for i in range(fills):
            client.create_order(
                "BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": f"{prefix}f{i}"}
            )
        for i in range(open_orders):
            client.create_order(
                "BTC/USDT", "limit", "buy", 0.001, 30_000 + i, {"clientOrderId": f"{prefix}o{i}"}
            )
        since = int(time.time()) - 3600
        with tempfile.TemporaryDirectory() as folder:
            broker, _ = _connect(fake, "binance", "spot", Path(folder))
            try:
                best = float("inf")
                for _ in range(3):
                    start = time.perf_counter()
                    reports = broker.order_reports(since)
                    executions = broker.fill_reports(since)
                    best = min(best, time.perf_counter() - start)
                    assert len(reports) == open_orders + fills, len(reports)
                    assert len(executions) == fills, len(executions)
            finally:
                broker.close()
    finally:
        fake.stop()
    return {"seconds_best_of_3": round(best, 3)}


def bench_reconcile(open_orders: int = 1000) -> dict[str, float]:
    """A restarted live bot with ``open_orders`` working orders, at the venue and in its
    journal: how long its start-up takes, reconciliation included (best of 3)."""
    import os

    from tradefleet_runtime.journal import Journal
    from tradefleet_runtime.order_ids import new_identity
    from tradefleet_runtime.plugins.registry import PluginRegistry
    from tradefleet_runtime.sdk import bot_prefix, client_order_id
    from tradefleet_runtime.session import BotSession, assemble
    from tradefleet_runtime.spec.model import BotManifest

    symbols = [replace(s, max_num_orders=open_orders * 2) for s in default_spot_symbols()]
    fake = FakeBinance(spot_symbols=symbols).start()
    best = float("inf")
    adopted = 0
    try:
        fake.set_price(SYMBOL, 50_000, market="spot")
        client = make_ccxt_binance(fake, timeout_ms=10_000)
        client.load_markets()
        name = "bench-reconcile"
        # The identity its journal keeps (drawn once per journal): its orders' ids derive
        # from it, so the restarted bot knows them as its own.
        identity = new_identity(name, "default", "0be4c4")
        now = int(time.time())
        orders = [
            Order(
                client_order_id(bot_prefix(identity), now - 60, SYMBOL, i),
                SYMBOL,
                Side.BUY,
                0.001,
                OrderType.LIMIT,
                30_000.0 + i,
                created_ts=now - 60,
            )
            for i in range(open_orders)
        ]
        for order in orders:
            client.create_order(
                "BTC/USDT",
                "limit",
                "buy",
                order.quantity,
                order.price,
                {"clientOrderId": order.client_order_id},
            )
        manifest = BotManifest.model_validate(
            {
                "apiVersion": "tradefleet.io/v1alpha1",
                "kind": "TradingBot",
                "metadata": {"name": name},
                "spec": {
                    "mode": "live",
                    "liveConfirmation": name,
                    "strategy": {"name": "external-signal"},
                    "market": {"symbols": [SYMBOL], "timeframe": "1h"},
                    "broker": {
                        "name": "ccxt",
                        "credentialsSecret": {"name": "keys"},
                        "params": {"exchange": "binance", "api_url": fake.url},
                    },
                    "capital": {"currency": "USDT", "initial": 100000},
                },
            }
        )
        registry = PluginRegistry.discover()
        for _ in range(3):
            with tempfile.TemporaryDirectory() as folder:
                keys = Path(folder) / "keys"
                keys.mkdir()
                (keys / "apiKey").write_text(fake.api_key)
                (keys / "secret").write_text(fake.secret)
                os.environ["TRADEFLEET_CREDENTIALS_DIR"] = str(keys)
                journal = Journal(Path(folder) / "journal.sqlite")
                journal.start_run(
                    run_id="before",
                    bot=name,
                    mode="live",
                    currency="USDT",
                    initial_capital=100000.0,
                    timeframe_s=3600,
                    config_hash="",
                    manifest={},
                )
                journal.keep_bot_identity(name, identity)
                for order in orders:
                    journal.record_order(order, OrderStatus.PENDING, now - 60)
                    journal.update_order(order.client_order_id, OrderStatus.OPEN, now - 59)
                journal.flush()
                bot = assemble(manifest, registry, Path(folder))
                start = time.perf_counter()
                session = BotSession(bot, journal)
                session.open()
                best = min(best, time.perf_counter() - start)
                assert session.reconciliation is not None
                adopted = len(session.reconciliation.adopted)
                assert adopted == open_orders and not session.reconciliation.degraded
                bot.broker.close()
                journal.close()
    finally:
        fake.stop()
    return {"seconds_best_of_3": round(best, 3), "adopted": adopted}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "brokers.json"))
    args = parser.parse_args()
    paper = bench_paper(max(args.orders, 2000))
    per_venue: dict[str, dict[str, float]] = {}
    binance = FakeBinance().start()
    try:
        binance.set_price(SYMBOL, 50_000)
        per_venue["binance_spot"] = bench_ccxt(binance, "binance", "spot", args.orders)
        per_venue["binance_usdm"] = bench_ccxt(binance, "binanceusdm", "linear", args.orders)
    finally:
        binance.stop()
    bybit = FakeBybit().start()
    try:
        per_venue["bybit_linear"] = bench_ccxt(bybit, "bybit", "linear", args.orders)
    finally:
        bybit.stop()
    reports = bench_reports()
    reconcile = bench_reconcile()
    spot = per_venue["binance_spot"]
    result = {
        "benchmark": "brokers",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "goals": GOALS,
        "paper_submit_p50_ms": paper["p50_ms"],
        "paper_submit_p99_ms": paper["p99_ms"],
        "ccxt_submit_p50_ms": spot["p50_ms"],
        "ccxt_submit_p99_ms": spot["p99_ms"],
        "submit_call_p99_ms": max(v["call_p99_ms"] for v in per_venue.values()),
        "venue_reports_1000_orders_s": reports["seconds_best_of_3"],
        "reconcile_1000_orders_s": reconcile["seconds_best_of_3"],
        "per_venue": per_venue,
        "notes": "ccxt figures: one order at a time against the local fakes with ccxt's rate "
        "limiter on, as in production, so each includes the limiter's spacing for an order: "
        "Binance spot cost 0.2 x 50 ms, USDⓈ-M 4 x 50 ms, Bybit 2.5 x 20 ms (ccxt's own "
        "weights). Polls use a second client and never delay an order. Shared machine.",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "per_venue"}, indent=2))
    print(json.dumps(per_venue, indent=2))


if __name__ == "__main__":
    main()
