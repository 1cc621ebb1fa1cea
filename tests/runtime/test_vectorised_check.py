"""An independent check of the whole engine on real data.

``ema-cross`` is run through the full stack (manifest → plugins → engine → paper broker →
journal) on the bundled EURUSD 2017 hourly bars, and its trades and final equity are
recomputed here with numpy, from the raw CSV, with the same fill rule (next bar's open, moved
by slippage against the taker) and the same fees. They must agree to 1e-6.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import parse_manifest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "EURUSD_H1_2017.csv"
FAST, SLOW = 12, 48
QUANTITY = 100_000.0
FEE_BPS, SLIPPAGE_BPS = 0.2, 0.3
CAPITAL = 100_000.0


def _load() -> tuple[np.ndarray, np.ndarray]:
    with DATA.open() as handle:
        rows = list(csv.DictReader(handle))
    return (
        np.array([float(r["Open"]) for r in rows]),
        np.array([float(r["Close"]) for r in rows]),
    )


def _ema(values: np.ndarray, period: int) -> np.ndarray:
    alpha = 2.0 / (period + 1)
    out = np.empty_like(values)
    out[0] = values[0]
    for i in range(1, values.size):  # the recursion itself; everything after is vectorised
        out[i] = out[i - 1] + alpha * (values[i] - out[i - 1])
    return out


def vectorised(allow_short: bool) -> tuple[int, float, np.ndarray]:
    opens, closes = _load()
    direction = np.sign(_ema(closes, FAST) - _ema(closes, SLOW))
    direction[: SLOW - 1] = 0  # warm-up: no direction before `slow` bars
    index = np.arange(direction.size)
    # Direction held before each bar: the last non-zero direction strictly before it.
    last_nonzero = np.where(direction != 0, index, -1)
    np.maximum.accumulate(last_nonzero, out=last_nonzero)
    previous_index = np.concatenate(([-1], last_nonzero[:-1]))
    previous = np.where(previous_index >= 0, direction[np.maximum(previous_index, 0)], 0)
    crosses = np.flatnonzero((direction != 0) & (previous != 0) & (direction != previous))
    crosses = crosses[crosses + 1 < direction.size]  # a signal on the last bar never fills
    side = direction[crosses]
    # Target position after each cross: +Q long; -Q short, or 0 when shorts are off.
    target = np.where(side > 0, QUANTITY, -QUANTITY if allow_short else 0.0)
    held = np.concatenate(([0.0], target[:-1]))
    traded = target - held
    slip = SLIPPAGE_BPS / 10_000
    price = opens[crosses + 1] * (1 + slip * np.sign(traded))
    fees = np.abs(traded) * price * FEE_BPS / 10_000
    cash = CAPITAL - np.sum(traded * price) - np.sum(fees)
    final_equity = cash + target[-1] * closes[-1]
    closed_trades = int(np.count_nonzero(held != 0))
    return closed_trades, float(final_equity), price


@pytest.mark.parametrize("allow_short", [True, False])
def test_engine_agrees_with_vectorised_computation(allow_short: bool, tmp_path: Path) -> None:
    manifest = parse_manifest(
        {
            "apiVersion": "tradefleet.io/v1alpha1",
            "kind": "TradingBot",
            "metadata": {"name": "vector-check"},
            "spec": {
                "mode": "backtest",
                "strategy": {
                    "name": "ema-cross",
                    "params": {"fast": FAST, "slow": SLOW, "allow_short": allow_short},
                },
                "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
                "broker": {
                    "name": "paper",
                    "params": {"fee_bps": FEE_BPS, "slippage_bps": SLIPPAGE_BPS, "leverage": 100},
                },
                "data": {"name": "csv", "params": {"path": str(DATA)}},
                "risk": [{"name": "fixed-size", "params": {"quantity": QUANTITY}}],
                "capital": {"currency": "USD", "initial": CAPITAL},
            },
        }
    )
    bot = assemble(manifest, PluginRegistry.discover(), ROOT)
    journal = Journal(tmp_path / "journal.sqlite")
    outcome = BotSession(bot, journal).run_to_end()
    fill_prices = [row[0] for row in journal.query("SELECT price FROM fills ORDER BY ts, rowid")]
    journal.close()

    trades, final_equity, prices = vectorised(allow_short)
    # ema-cross declares `slow` bars of warm-up: history, shown to it but never traded.
    assert (outcome.result.history_bars, outcome.result.bars) == (SLOW, 6225 - SLOW)
    assert len(outcome.result.trades) == trades
    assert trades > 50
    assert outcome.result.final_equity == pytest.approx(final_equity, abs=1e-6)
    # Every fill at the vectorised price (a reversal is two fills at one price).
    engine_prices = sorted(set(round(p, 12) for p in fill_prices))
    assert engine_prices == sorted(set(round(float(p), 12) for p in prices[np.abs(prices) > 0]))
