"""Execution-quality capability indices (Cp, Cpk) against the spec's limits."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Fill, Order, OrderStatus, Position, Side, Trade
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.process_capability import capability_indices as capability
from tradefleet_runtime.service.api import Phase
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.service.quality import RollingQuality
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.spec.model import QualityLimit, QualitySpec

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "EURUSD_H1_2017.csv"


def test_two_sided_capability_matches_the_textbook_formulas() -> None:
    samples = [9.0, 10.0, 11.0, 10.0, 10.0]
    count, mean, sigma, cp, cpk = capability(samples, lower=7.0, upper=16.0)
    expected_sigma = math.sqrt(sum((x - 10.0) ** 2 for x in samples) / 4)
    assert (count, mean) == (5, 10.0)
    assert sigma == pytest.approx(expected_sigma)
    assert cp == pytest.approx(9.0 / (6 * expected_sigma))
    assert cpk == pytest.approx(min(16.0 - 10.0, 10.0 - 7.0) / (3 * expected_sigma))


def test_one_sided_limits_give_cpk_only() -> None:
    _, mean, sigma, cp, cpk = capability([1.0, 2.0, 3.0], lower=None, upper=5.0)
    assert cp is None
    assert cpk == pytest.approx((5.0 - mean) / (3 * sigma))


def test_no_limits_or_no_spread_give_no_indices() -> None:
    assert capability([1.0, 2.0], None, None)[3:] == (None, None)
    assert capability([2.0, 2.0, 2.0], 0.0, 5.0)[3:] == (None, None)
    assert capability([], 0.0, 1.0) == (0, 0.0, 0.0, None, None)


def test_rolling_window_forgets_old_samples_and_waits_for_enough() -> None:
    spec = QualitySpec(window=5, min_samples=3, slippage_bps=QualityLimit(max=5.0))
    quality = RollingQuality(spec)
    quality.add("slippage_bps", 100.0)
    for value in (1.0, 2.0):
        quality.add("slippage_bps", value)
    early = {f.name: f for f in quality.figures()}["slippage_bps"]
    assert early.cpk is not None  # 3 samples: enough
    for value in (1.0, 2.0, 1.0, 2.0, 1.0):
        quality.add("slippage_bps", value)
    figure = {f.name: f for f in quality.figures()}["slippage_bps"]
    assert figure.samples == 5 and figure.mean == pytest.approx(1.4)  # the 100 bp fell out
    assert figure.cpk is not None and figure.cpk > early.cpk
    quality.add("slippage_bps", float("nan"))  # ignored, never poisons the window
    assert {f.name: f for f in quality.figures()}["slippage_bps"].samples == 5


def test_a_restart_continues_the_window_from_the_journaled_fills_and_trades() -> None:
    """Before, the status's figures (and the TradefleetExecutionQualityLow alert on them) went
    quiet after every restart until ``min_samples`` new fills came."""
    spec = QualitySpec(
        window=5, min_samples=3, slippage_bps=QualityLimit(max=5.0), win_rate=QualityLimit(min=0.2)
    )
    quality = RollingQuality(spec)
    fills = [
        (Fill(f"o{k}", "X", side, 1.0, price, 0.0, k, f"f{k}"), 100.0)
        for k, (side, price) in enumerate(
            [(Side.BUY, 100.02), (Side.SELL, 99.99), (Side.BUY, 100.01), (Side.SELL, 100.0)]
        )
    ]
    fills.append((Fill("o9", "X", Side.BUY, 1.0, 100.0, 0.0, 9, "f9"), 0.0))  # no reference
    trades = [Trade("X", 1, 1.0, k, k + 1, 100.0, 100.0 + pnl, pnl, 0.0) for k, pnl in
              enumerate([5.0, -1.0, 2.0, 3.0, -4.0, 1.0])]  # fmt: skip
    quality.restore(fills, trades)
    figures = {f.name: f for f in quality.figures()}
    # A buy 2 bp higher, a sell 1 bp lower, ...: worse for the bot is positive.
    assert figures["slippage_bps"].samples == 4
    assert figures["slippage_bps"].mean == pytest.approx((2.0 + 1.0 + 1.0 + 0.0) / 4, abs=1e-6)
    # The last 5 trades of 6 (the window): -1, 2, 3, -4, 1.
    assert figures["win_rate"].samples == 5 and figures["win_rate"].mean == pytest.approx(0.6)


def test_a_restarted_bot_reports_the_quality_of_its_earlier_fills(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    earlier = Journal(path)
    earlier.start_run(
        run_id="r1", bot="quality-bot", mode="paper", currency="USD", initial_capital=1e5,
        timeframe_s=3600, config_hash="x", manifest={},
    )  # fmt: skip
    for k in range(2):  # a round trip: bought 1 bp higher, sold 3 bp lower than decided
        side, price = (Side.BUY, 1.0501) if k == 0 else (Side.SELL, 1.0497)
        earlier.record_order(Order(f"o{k}", "EURUSD", side, 1000.0), OrderStatus.PENDING, k,
                             "", 1.05)  # fmt: skip
        earlier.record_fill(Fill(f"o{k}", "EURUSD", side, 1000.0, price, 0.0, k, f"f{k}"),
                            Position("EURUSD"), OrderStatus.FILLED)  # fmt: skip
    earlier.close()
    manifest = parse_manifest(
        {
            "apiVersion": "tradefleet.io/v1alpha1",
            "kind": "TradingBot",
            "metadata": {"name": "quality-bot"},
            "spec": {
                "mode": "paper",
                "strategy": {"name": "ema-cross", "params": {"fast": 5, "slow": 20}},
                "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
                "broker": {"name": "paper"},
                "data": {"name": "csv", "params": {"path": str(DATA), "gap_policy": "trade"}},
                "risk": [{"name": "fixed-size", "params": {"quantity": 1000}}],
                "quality": {"window": 5, "min_samples": 2, "slippage_bps": {"max": 5}},
            },
        }
    )
    registry = PluginRegistry.discover()
    controller = BotController(assemble(manifest, registry, ROOT), Journal(path), registry,
                               speed=0.0001)  # fmt: skip
    controller.start()
    try:
        deadline = time.monotonic() + 20
        while controller.get_status().phase is not Phase.RUNNING:
            assert time.monotonic() < deadline, controller.failure
            time.sleep(0.02)
        figures = {f.name: f for f in controller.get_status().quality}
        assert figures["slippage_bps"].samples >= 2
        first_two = controller.quality._samples["slippage_bps"]
        assert list(first_two)[:2] == pytest.approx([1.0 / 1.05, 3.0 / 1.05], rel=1e-6)
    finally:
        controller.stop()
