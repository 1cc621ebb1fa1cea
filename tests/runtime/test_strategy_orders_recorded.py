"""Every built-in strategy places exactly the orders it placed before its per-bar code was made
faster: each case's orders on the bundled EURUSD H1 2017 bars (every field, prices to the last
bit, status and filled quantity) and its final equity equal those recorded from the earlier
implementation in ``fixtures/strategy_orders_eurusd.json`` — its count, its first orders in
full and a SHA-256 of all of them (the whole list would be half a megabyte).

Prices of stops and targets come from indicator values (ATR, swing extremes, closes), so an
indicator whose values moved by one bit shows up here too. Regenerate the file only for a
change meant to alter trading: ``python -m tests.runtime.test_strategy_orders_recorded``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.test_indicators_reference import eurusd_bars
from tradefleet_runtime.sdk import build_strategy
from tradefleet_runtime.sdk.testing import run_strategy

RECORDED = Path(__file__).parent / "fixtures" / "strategy_orders_eurusd.json"

# Params that make each strategy trade often on a year of hourly EURUSD, through every branch
# its rule has (early exits, shorts off, failed/expired retests, several child mixes).
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "ema-cross": ("ema-cross", {"fast": 12, "slow": 48}),
    "confluence": (
        "indicator-confluence",
        {"stop_loss_pct": 0.005, "take_profit_pct": 0.01},
    ),
    "confluence-early-exit-long-only": (
        "indicator-confluence",
        {
            "threshold": 3,
            "early_exit_fraction": 0.5,
            "allow_short": False,
            "ema_period": 20,
            "macd_fast": 5,
            "macd_slow": 13,
            "macd_signal": 4,
        },
    ),
    "bos-retest-4h": ("bos-retest", {"higher_timeframe": "4h"}),
    "bos-retest-2h-tight": (
        "bos-retest",
        {
            "higher_timeframe": "2h",
            "swing_left": 1,
            "swing_right": 1,
            "retest_pips": 3,
            "expiry_bars": 6,
            "pip_sizes": {"EURUSD": 0.0001},
        },
    ),
    "fib-atr": ("fib-atr", {}),
    "fib-atr-fast": (
        "fib-atr",
        {"trend_period": 20, "swing_left": 2, "swing_right": 2, "levels": [0.236, 0.5, 0.786]},
    ),
    "ensemble": ("ensemble", {}),
    "ensemble-brackets": (
        "ensemble",
        {
            "children": [
                {"name": "ema-cross", "params": {"fast": 12, "slow": 48}},
                {"name": "ema-cross", "params": {"fast": 20, "slow": 100}, "confidence": 0.6},
                {"name": "indicator-confluence"},
                {"name": "bos-retest", "params": {"higher_timeframe": "4h"}},
            ],
            "quorum": 2,
            "min_confidence": 0.7,
            "stop_loss_pct": 0.004,
            "take_profit_pct": 0.008,
            "exit_without_quorum": True,
        },
    ),
}


SHOWN = 6  # orders recorded in full


def orders_of(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """A case's orders (every field as JSON: floats round-trip exactly) and final equity."""
    run = run_strategy(
        build_strategy(name, params), eurusd_bars(), quantity=10_000, capital=100_000
    )
    return {
        "orders": [
            [
                o.client_order_id,
                o.side.value,
                o.quantity,
                o.order_type.value,
                o.price,
                o.stop_loss,
                o.take_profit,
                o.reduce_only,
                o.parent_id,
                o.created_ts,
                o.tag,
                o.status.value,
                o.filled,
            ]
            for o in run.orders
        ],
        "equity": run.equity,
    }


def digest(orders: list[list[Any]]) -> str:
    return hashlib.sha256(json.dumps(orders, separators=(",", ":")).encode()).hexdigest()


def record(case: str) -> dict[str, Any]:
    run = orders_of(*CASES[case])
    orders = run["orders"]
    return {
        "count": len(orders),
        "first": orders[:SHOWN],
        "sha256": digest(orders),
        "equity": run["equity"],
    }


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    return data


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_strategy_places_the_recorded_orders(case: str, recorded: dict[str, Any]) -> None:
    expected = recorded[case]
    assert expected["count"] >= 20, "a case that barely trades proves little"
    actual = record(case)
    assert actual["first"] == expected["first"]
    assert actual["count"] == expected["count"]
    assert actual["equity"] == expected["equity"]
    assert actual["sha256"] == expected["sha256"]


def test_every_case_is_recorded(recorded: dict[str, Any]) -> None:
    assert sorted(recorded) == sorted(CASES)


if __name__ == "__main__":
    RECORDED.write_text(json.dumps({case: record(case) for case in CASES}, indent=1) + "\n")
