"""A sizer's ``max_leverage`` cut leaves room for the costs of a reversal's closing part too.

A reversal closes the old position and opens the new one at the same open: ``ctx.close`` + an
entry (two orders), or one order crossing the position. The close's fee and slippage come out
of the equity before the paper broker checks what opens (``margin + fee <= equity``), so the
cap sizes what opens on the equity the sizer read less those costs
(``sizing.closing_room``): an entry at the cap is not refused for them, and the bot reverses
instead of ending flat. The vectorised sweep path sizes its turns the same way
(``tests/runtime/test_vector_path.py`` holds the two equal).
"""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tradefleet_plugins.risk.kelly import Kelly
from tradefleet_plugins.risk.kelly_params import KellyParams
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_plugins.risk.volatility_target import VolatilityTarget
from tradefleet_plugins.risk.volatility_target_params import VolatilityTargetParams
from tradefleet_runtime.cli import main
from tradefleet_runtime.model import Bar, Instrument, OrderIntent, Side
from tradefleet_runtime.optimize.worker import Task, evaluate
from tradefleet_runtime.sdk import RiskPlugin, Strategy, leverage_cap_quantity
from tradefleet_runtime.sdk.testing import StrategyRun, make_bars, risk_context, run_strategy

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "BTCUSD_H1_bitfinex_2017-2019.csv"
EQUITY = 10_000.0
FEE, SLIP = 0.0026, 0.001
COSTS = {"fee_bps": 26.0, "slippage_bps": 10.0}


def _room(closing: float, price: float, fee: float = FEE, slip: float = SLIP) -> float:
    """The close's costs, written out: its fill moved ``slip`` against the mark, and the fee
    on it at the worse side's price."""
    return closing * price * slip + closing * price * (1 + slip) * fee


def _cap(equity: float, price: float, leverage: float) -> float:
    """``q·p·(1+s)·(1/L + fee) <= equity``, solved for q (with the cap's 1e-12 of rounding)."""
    return equity / (price * (1 + SLIP) * (1 / leverage + FEE)) * (1 - 1e-12)


def test_the_cap_of_a_reversal_leaves_room_for_both_fills_fee_and_slippage() -> None:
    """Long 500 at 100 on 10,000 (5x): closing it slips 0.10% and pays 0.26% on 50,050 at
    most: 180.13 less equity for what opens, and the cap is taken on the rest."""
    room = _room(500.0, 100.0)
    assert room == pytest.approx(180.13, abs=1e-9)
    q = leverage_cap_quantity(EQUITY, 100.0, 5.0, FEE, SLIP, closing=500.0)
    assert q == pytest.approx(_cap(EQUITY - room, 100.0, 5.0), rel=1e-12)
    assert q < leverage_cap_quantity(EQUITY, 100.0, 5.0, FEE, SLIP)
    # A limit entry (no slippage of its own) closing behind a market exit: the close's slippage
    # still counts; a close with no costs leaves the cap as it was, to the bit.
    limit = leverage_cap_quantity(EQUITY, 100.0, 5.0, FEE, 0.0, 500.0, SLIP)
    assert limit == pytest.approx(
        (EQUITY - room) / (100.0 * (1 / 5 + FEE)) * (1 - 1e-12), rel=1e-12
    )
    assert leverage_cap_quantity(EQUITY, 7.0, 3.0, 0.0, 0.0, 500.0) == EQUITY * 3.0 / 7.0
    assert leverage_cap_quantity(EQUITY, 7.0, 3.0, FEE, SLIP, 0.0) == leverage_cap_quantity(
        EQUITY, 7.0, 3.0, FEE, SLIP
    )
    # Costs of closing more than the equity holds: nothing opens.
    assert leverage_cap_quantity(EQUITY, 100.0, 5.0, 0.5, 0.5, 500.0) == 0.0


def test_the_reversal_cap_fits_the_brokers_check_after_the_close() -> None:
    """The paper broker's arithmetic: the close fills first (cash moves by its proceeds and
    fee), then ``q·fill/L <= cash − q·fill·fee`` for what opens, whichever way it reverses."""
    rng = np.random.default_rng(18)
    for _ in range(20_000):
        equity, price = rng.uniform(100, 1e7), rng.uniform(1e-3, 1e5)
        fee, slip = rng.uniform(0, 0.01), rng.uniform(0, 0.01)
        leverage = float(rng.choice([1.0, 2.0, 5.0, 10.0, rng.uniform(1, 100)]))
        held = rng.uniform(0, leverage) * equity / price * rng.choice([1.0, -1.0])
        q = leverage_cap_quantity(equity, price, leverage, fee, slip, abs(held))
        if q == 0.0:  # the close's costs take all the equity: nothing may open
            assert _room(abs(held), price, fee, slip) >= equity
            continue
        cash = equity - held * price  # the position marked at ``price``
        if held > 0:  # sell to close, then buy
            out = price * (1 - slip)
            cash = cash + held * out - held * out * fee
            fill = price * (1 + slip)
        else:  # buy to close, then sell
            out = price * (1 + slip)
            cash = cash - -held * out - -held * out * fee
            fill = price * (1 - slip)
        case = (equity, price, fee, slip, leverage, held)
        assert q * fill / leverage <= cash - q * fill * fee, case


class _Reverse(Strategy):
    """Opens ``first`` (signed; None: an unsized long) at bar 3's close, then reverses at bar
    5's: ``ctx.close`` + an entry (unsized with a stop, or of ``second``), or, without the
    close, one order of ``second`` crossing the position."""

    def __init__(self, first: float | None, second: float | None, close: bool) -> None:
        super().__init__(None)
        self.first, self.second, self.close, self.seen = first, second, close, 0

    def on_bar(self, bar: Bar) -> None:
        ctx, symbol = self.ctx, bar.symbol
        if self.seen == 3:
            if self.first is None:
                ctx.buy(symbol, stop_loss=bar.close * 0.995, tag="open")
            elif self.first > 0:
                ctx.buy(symbol, self.first, tag="open")
            else:
                ctx.sell(symbol, -self.first, tag="open")
        if self.seen == 5:
            held = ctx.position(symbol).quantity
            if self.close:
                ctx.close(symbol, tag="close")
            side = ctx.sell if held > 0 else ctx.buy
            stop = bar.close * (1.005 if held > 0 else 0.995) if self.second is None else None
            side(symbol, self.second, stop_loss=stop, tag="entry")
        self.seen += 1


def _sizer(name: str) -> RiskPlugin:
    """Each sizer asking for far more than ``max_leverage`` 5 allows."""
    if name == "kelly":
        return Kelly(KellyParams(fallback_risk=0.05, max_risk=0.05, max_leverage=5.0))
    if name == "volatility-target":
        return VolatilityTarget(
            VolatilityTargetParams(risk_per_trade=0.05, atr_period=3, max_leverage=5.0)
        )
    return FixedFractional(FixedFractionalParams(risk_per_trade=0.05, max_leverage=5.0))


def _run(sizer: str, strategy: _Reverse) -> StrategyRun:
    # Flat at 100 with a small range (the ATR is ready by bar 3): each open is the last close.
    bars = make_bars([100.0, 100.2, 99.8, 100.0, 100.0, 100.0, 100.0, 100.0])
    plugin = _sizer(sizer)
    if isinstance(plugin, VolatilityTarget):
        for bar in bars:  # the testing kit hands bars to no risk plugin: readied here
            plugin.on_bar(bar)
    return run_strategy(
        strategy,
        bars,
        capital=EQUITY,
        broker_params={**COSTS, "leverage": 5.0},
        risk=[(sizer, plugin)],
        warmup=False,
    )


def _entry_fits(run: StrategyRun) -> float:
    """The entry filled (not refused): returns what the paper broker's margin check left,
    ``cash − fee + held·fill − |held after|·fill/5``, on the account the fills before it
    left (after a close: flat; an order crossing the position: still holding it)."""
    refused = [o.reason for o in run.orders if o.tag == "entry" and o.status == "rejected"]
    assert not refused, f"the reversal's entry was refused: {refused}"
    fills = list(run.fills)
    (at,) = [i for i, f in enumerate(fills) if f.reason == "entry"]
    entry, before = fills[at], fills[:at]
    sign = {Side.BUY: 1.0, Side.SELL: -1.0}
    cash = EQUITY - sum(sign[f.side] * f.quantity * f.price + f.fee for f in before)
    held = sum(sign[f.side] * f.quantity for f in before)
    after = held + sign[entry.side] * entry.quantity
    assert abs(after) > abs(held)  # it opens: the broker checks its margin
    left = cash - entry.fee + held * entry.price - abs(after) * entry.price / 5.0
    assert left >= 0.0
    return left


@pytest.mark.parametrize("sizer", ["fixed-fractional", "kelly", "volatility-target"])
@pytest.mark.parametrize("first", [None, -500.0], ids=["long-to-short", "short-to-long"])
def test_a_reversal_the_cap_sizes_behind_a_close_fills(sizer: str, first: float | None) -> None:
    """``ctx.close`` + an unsized entry at 5x: the entry fits what the close left."""
    run = _run(sizer, _Reverse(first, None, close=True))
    left = _entry_fits(run)
    if first is not None:  # a buy fills at the slipped price the cap assumed: no room wasted
        assert left < EQUITY * 1e-9
    decision = [d for d in run.decisions if d.plugin == sizer][-1]
    assert "and those of closing" in decision.reason, decision.reason


@pytest.mark.parametrize("close", [True, False], ids=["behind-a-close", "crossing"])
def test_a_sized_reversal_is_cut_to_fit_with_its_closing_costs(close: bool) -> None:
    """Short 20, then a buy of 600 (6x equity) sent whole or behind ``ctx.close``: what it
    opens is cut so that it fits after the closing part's fee and slippage."""
    run = _run("fixed-fractional", _Reverse(-20.0, 600.0, close=close))
    left = _entry_fits(run)
    assert left < EQUITY * 1e-9


def test_an_unsized_entry_sized_on_a_context_with_a_close_working() -> None:
    """The sizer reads the close from ``closable``: long 500 at 100, all of it closing."""
    sizer = _sizer("fixed-fractional")
    instrument = Instrument("X", taker_fee=FEE, slippage=SLIP)
    intent = OrderIntent("X", Side.SELL, None, stop_loss=100.5)
    held, marks = {"X": 500.0}, {"X": 100.0}
    closing = risk_context(
        "X", positions=held, marks=marks, instrument=instrument, closable={"X": 0}
    )
    behind = sizer.check(intent, closing)
    alone = sizer.check(
        intent, risk_context("X", positions=held, marks=marks, instrument=instrument)
    )
    assert behind.quantity == pytest.approx(_cap(EQUITY - _room(500.0, 100.0), 100.0, 5.0))
    assert alone.quantity == pytest.approx(_cap(EQUITY, 100.0, 5.0))


def test_a_reversal_at_max_leverage_on_the_bundled_perpetual_is_not_refused(
    tmp_path: Path,
) -> None:
    """Paper at leverage 5, fixed-fractional at max_leverage 5, ema-cross with shorts on the
    bundled BTC hours: every reversal's entry is sized at the cap, none is refused for margin.
    Without the closing room 8 of them were ("insufficient margin"), the bot ending flat.
    No funding: a funding payment settled at the fill's open is not a cost of the order, and
    the sizer is told none."""
    manifest = tmp_path / "perp.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""
            apiVersion: tradefleet.io/v1alpha1
            kind: TradingBot
            metadata: {{name: btc-perp}}
            spec:
              mode: backtest
              strategy:
                name: ema-cross
                params: {{fast: 24, slow: 96, allow_short: true, stop_loss_pct: 0.02}}
              market: {{symbols: [BTC/USDT:USDT], timeframe: 4h}}
              broker:
                name: paper
                params: {{fee_bps: 5.5, slippage_bps: 2, leverage: 5}}
              data:
                name: csv
                params: {{path: {DATA}, order: any}}
              risk:
                - name: fixed-fractional
                  params: {{risk_per_trade: 0.2, max_leverage: 5}}
              capital: {{currency: USDT, initial: 10000}}
            """
        )
    )
    journal = tmp_path / "bt.sqlite"
    assert main(["backtest", str(manifest), "--journal", str(journal)]) == 0
    db = sqlite3.connect(journal)
    try:
        refused = db.execute(
            "SELECT e.message FROM events e WHERE e.kind = 'order_rejected' "
            "AND e.message LIKE '%insufficient margin%'"
        ).fetchall()
        reversals = db.execute(
            "SELECT COUNT(*) FROM risk_decisions WHERE reason LIKE '%capped by max_leverage%' "
            "AND reason LIKE '%and those of closing%'"
        ).fetchone()[0]
    finally:
        db.close()
    assert not refused, f"{len(refused)} entries sized within max_leverage 5 refused: {refused}"
    assert reversals > 0  # the cap, with a close ahead, sized the reversals' entries


def test_the_vectorised_path_sizes_reversals_at_the_cap_as_the_engine_does() -> None:
    """The same perpetual without brackets or liquidation: the vectorised sweep path takes the
    run (it left it to the engine, a reversal's entry being over the margin) and agrees."""
    document = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "perp-vector"},
        "spec": {
            "mode": "backtest",
            "strategy": {
                "name": "ema-cross",
                "params": {"fast": 24, "slow": 96, "allow_short": True},
            },
            "market": {"symbols": ["BTC/USDT:USDT"], "timeframe": "4h"},
            "broker": {
                "name": "paper",
                "params": {
                    "fee_bps": 5.5,
                    "slippage_bps": 2,
                    "leverage": 5,
                    "maintenance_margin_rate": 0,
                },
            },
            "data": {"name": "csv", "params": {"path": str(DATA), "order": "any"}},
            "risk": [
                {"name": "fixed-fractional", "params": {"risk_per_trade": 0.2, "max_leverage": 5}}
            ],
            "capital": {"currency": "USDT", "initial": 10_000},
        },
    }
    vector = evaluate(Task(document, str(ROOT), {}, detail=True))
    engine = evaluate(Task(document, str(ROOT), {}, detail=True, vector=False))
    assert vector.path == "vector", vector.fallback
    assert len(vector.trades) == len(engine.trades) > 10
    np.testing.assert_allclose(vector.equity, engine.equity, rtol=0, atol=1e-9)
    assert vector.fees == pytest.approx(engine.fees, abs=1e-9)
