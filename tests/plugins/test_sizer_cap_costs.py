"""A sizer's ``max_leverage`` cut leaves room for the costs of the fill it sizes.

The paper broker fills a market entry at the next open moved ``slippage_bps`` against the bot,
charges ``fee_bps`` on it, and refuses a fill whose margin plus fee is over the equity. An
entry sized at exactly ``max_leverage`` × equity at the last close is over by those costs:
the cut counts the fill's taker fee and slippage, which the broker states on its instrument
(``Instrument.taker_fee``, ``Instrument.slippage``), so that the entry fits. A market that gaps
past the slippage before the fill can still refuse it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradefleet_plugins.risk.kelly import Kelly
from tradefleet_plugins.risk.kelly_params import KellyParams
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_plugins.risk.volatility_target import VolatilityTarget
from tradefleet_plugins.risk.volatility_target_params import VolatilityTargetParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import Bar, Instrument, OrderIntent, OrderType, Side
from tradefleet_runtime.optimize.worker import Task, evaluate
from tradefleet_runtime.sdk import RiskPlugin, Strategy, leverage_cap_quantity
from tradefleet_runtime.sdk.testing import StrategyRun, make_bars, run_strategy

ROOT = Path(__file__).resolve().parents[2]
EQUITY = 10_000.0
# A Kraken spot account as examples/bots/btcusd-ema-cross.yaml rehearses it.
KRAKEN = {"fee_bps": 26.0, "slippage_bps": 10.0}


class _EnterOnce(Strategy):
    """One entry at the close of bar ``at``: unsized with a stop 0.5% below (the sizer sizes
    it), or of ``quantity`` (the sizer only cuts it)."""

    def __init__(self, at: int, quantity: float | None = None) -> None:
        super().__init__(None)
        self.at, self.quantity, self.seen = at, quantity, 0

    def on_bar(self, bar: Bar) -> None:
        if self.seen == self.at:
            stop = bar.close * 0.995 if self.quantity is None else None
            self.ctx.buy(bar.symbol, self.quantity, stop_loss=stop, tag="entry")
        self.seen += 1


def _sizers(max_leverage: float) -> dict[str, RiskPlugin]:
    """The three sizers, each asking for far more than ``max_leverage`` allows."""
    return {
        "fixed-fractional": FixedFractional(
            FixedFractionalParams(risk_per_trade=0.05, max_leverage=max_leverage)
        ),
        "kelly": Kelly(KellyParams(fallback_risk=0.05, max_risk=0.05, max_leverage=max_leverage)),
        "volatility-target": VolatilityTarget(
            VolatilityTargetParams(risk_per_trade=0.05, atr_period=3, max_leverage=max_leverage)
        ),
    }


def _run(sizer: str, leverage: float, quantity: float | None = None, at: int = 5) -> StrategyRun:
    # Flat at 100 with a small range (the ATR is ready by bar 3): the next open is the close.
    bars = make_bars([100.0, 100.2, 99.8, 100.0, 100.2, 100.0, 100.0, 100.0])
    plugin = _sizers(leverage)[sizer]
    if isinstance(plugin, VolatilityTarget):
        # The testing kit hands bars to no risk plugin (``observes-bars`` is the session's):
        # its ATR is readied on the same bars here, before the run.
        for bar in bars:
            plugin.on_bar(bar)
    return run_strategy(
        _EnterOnce(at, quantity),
        bars,
        capital=EQUITY,
        broker_params={**KRAKEN, "leverage": leverage},
        risk=[(sizer, plugin)],
        warmup=False,
    )


def _entry_fill_fits(run: StrategyRun, leverage: float) -> None:
    refused = [o for o in run.orders if o.tag == "entry" and o.status == "rejected"]
    assert not refused, (
        f"the entry the cap sized was refused whole: {[o.reason for o in refused]}; the cap "
        "left no room for its fill's fee and slippage"
    )
    (fill,) = [f for f in run.fills if f.reason == "entry"]
    # Margin plus fee at most the equity (the broker's check), and the room used, not wasted.
    spent = fill.quantity * fill.price / leverage + fill.fee
    assert EQUITY * (1 - 1e-9) < spent <= EQUITY


@pytest.mark.parametrize("sizer", ["fixed-fractional", "kelly", "volatility-target"])
def test_a_spot_entry_the_leverage_cap_sizes_is_cut_to_fit_not_refused(sizer: str) -> None:
    """Equity 10,000 on a 1x account; the risk asks for 100,000 of the coin: cut to what the
    fill at 100.10 plus its 0.26% fee leaves, 99.64 units, not 100."""
    run = _run(sizer, 1.0)
    _entry_fill_fits(run, 1.0)
    (fill,) = [f for f in run.fills if f.reason == "entry"]
    assert fill.quantity == pytest.approx(EQUITY / (100.0 * 1.001 * 1.0026), rel=1e-9)


@pytest.mark.parametrize("sizer", ["fixed-fractional", "kelly", "volatility-target"])
def test_a_leveraged_entry_the_cap_sizes_fits_the_margin_with_its_fee(sizer: str) -> None:
    """At 5x the fee is paid out of equity, not on margin: q·p·(1/5 + fee) fits."""
    run = _run(sizer, 5.0)
    _entry_fill_fits(run, 5.0)


def test_an_order_that_came_sized_is_cut_to_fit_its_costs_not_refused() -> None:
    """A strategy's 500 units (5x equity) on a 1x account: cut to fit, and it fills."""
    run = _run("fixed-fractional", 1.0, quantity=500.0)
    _entry_fill_fits(run, 1.0)
    (decision,) = [d for d in run.decisions if d.action == "shrink"]
    assert "over max_leverage 1: 500 -> 99.6" in decision.reason, decision.reason


def _ctx(instrument: Instrument, mark: float = 100.0) -> RiskContext:
    return RiskContext(0, EQUITY, EQUITY, EQUITY, EQUITY, {}, {"X": mark}, instrument)


def test_a_limit_entry_leaves_room_for_the_fee_and_no_slippage() -> None:
    """A limit fills at its price or better: only the fee needs room."""
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.2, max_leverage=1.0))
    costs = Instrument("X", taker_fee=0.0026, slippage=0.001)
    intent = OrderIntent("X", Side.BUY, None, OrderType.LIMIT, 100.0, stop_loss=99.5)
    decision = sizer.check(intent, _ctx(costs))
    assert decision.quantity == pytest.approx(EQUITY / (100.0 * 1.0026), rel=1e-9)
    market = sizer.check(intent._replace(order_type=OrderType.MARKET, price=None), _ctx(costs))
    assert market.quantity == pytest.approx(EQUITY / (100.0 * 1.001 * 1.0026), rel=1e-9)


def test_the_reason_names_the_costs_the_cap_left_room_for() -> None:
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.02, max_leverage=1.0))
    costs = Instrument("X", taker_fee=0.0026, slippage=0.001)
    decision = sizer.check(OrderIntent("X", Side.BUY, None, stop_loss=99.5), _ctx(costs))
    assert "notional with its fill's 0.26% fee and 0.10% slippage at most 1x equity" in (
        decision.reason
    ), decision.reason


def test_without_costs_the_cap_is_equity_times_leverage_over_the_price_to_the_bit() -> None:
    """No fee or slippage stated (a broker that does not say): the cut is as it always was."""
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.2, max_leverage=3.0))
    decision = sizer.check(OrderIntent("X", Side.BUY, None, stop_loss=99.5), _ctx(Instrument("X")))
    assert decision.quantity == EQUITY * 3.0 / 100.0
    assert leverage_cap_quantity(EQUITY, 7.0, 3.0) == EQUITY * 3.0 / 7.0


def test_a_blank_account_bounds_to_nothing() -> None:
    assert leverage_cap_quantity(float("nan"), 100.0, 1.0, 0.0026, 0.001) == 0.0
    assert leverage_cap_quantity(EQUITY, 0.0, 1.0, 0.0026, 0.001) == 0.0


def test_the_cap_fits_the_brokers_check_to_the_last_bit() -> None:
    """The broker checks ``q·fill/leverage <= cash - q·fill·fee`` in its own float operations;
    a quantity exact in real numbers went over by the last bit in about a quarter of cases."""
    rng = np.random.default_rng(7)
    for _ in range(20_000):
        equity, price = rng.uniform(100, 1e7), rng.uniform(1e-3, 1e5)
        fee, slip = rng.uniform(0, 0.01), rng.uniform(0, 0.01)
        leverage = float(rng.choice([1.0, 2.0, 3.0, 10.0, rng.uniform(1, 100)]))
        q = leverage_cap_quantity(equity, price, leverage, fee, slip)
        fill = price * (1.0 + slip)
        assert q * fill / leverage <= equity - q * fill * fee, (equity, price, fee, slip, leverage)


def _vector_document(**broker: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "cap-costs"},
        "spec": {
            "mode": "backtest",
            "strategy": {
                "name": "ema-cross",
                "params": {"fast": 10, "slow": 30, "allow_short": False},
            },
            "market": {"symbols": ["BTCUSD"], "timeframe": "1h"},
            "broker": {"name": "paper", "params": {**KRAKEN, "leverage": 1, **broker}},
            "data": {
                "name": "csv",
                "params": {
                    "path": str(ROOT / "data" / "BTCUSD_H1_bitfinex_2017-2019.csv"),
                    "order": "any",
                },
            },
            "risk": [
                {
                    "name": "fixed-fractional",
                    "params": {
                        "risk_per_trade": 0.02,
                        "default_stop_pct": 0.005,
                        "max_leverage": 1,
                    },
                }
            ],
            "capital": {"currency": "USD", "initial": 10_000},
        },
    }


def test_the_vectorised_path_sizes_the_capped_entries_as_the_engine_does() -> None:
    """The bundled spot example's sizing on the bundled BTC data: the vectorised sweep path
    leaves the same room (it refused the run to the engine, every capped entry being over
    the margin), and both paths fill the same entries."""
    document = _vector_document()
    vector = evaluate(Task(document, str(ROOT), {}, detail=True))
    engine = evaluate(Task(document, str(ROOT), {}, detail=True, vector=False))
    assert vector.path == "vector", vector.fallback
    assert len(vector.trades) == len(engine.trades) > 0
    np.testing.assert_allclose(vector.equity, engine.equity, rtol=0, atol=1e-9)
    assert vector.fees == pytest.approx(engine.fees, abs=1e-9)
