"""The vectorised sweep path agrees with the event engine: same fills, fees, equity, trades.

Compared on the bundled real data (EURUSD 2017 has weekend gaps and 4,192 opens away from the
previous close; BTCUSD is newest first) and on synthetic data whose every open jumps away from
the previous close, so an evaluator filling at the signal bar's close would differ. The
optimiser falls back to the engine, saying why, for whatever the vectorised path cannot do.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradefleet_runtime.bar_columns import bar_columns
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Fill, Order, OrderIntent, OrderUpdate, Position, RiskDecision
from tradefleet_runtime.optimize.search import path_notes
from tradefleet_runtime.optimize.vector import VectorTerms, run_plan, vector_terms
from tradefleet_runtime.optimize.worker import Task, evaluate, feed_bars, with_params
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import parse_manifest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
HOUR = 3600


def _manifest(path: Path, symbol: str, **spec: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "vector-check"},
        "spec": {
            "mode": "backtest",
            "strategy": {"name": "ema-cross", "params": {"fast": 10, "slow": 30}},
            "market": {"symbols": [symbol], "timeframe": "1h"},
            "broker": {
                "name": "paper",
                "params": {"fee_bps": 10, "slippage_bps": 2, "leverage": 10},
            },
            "data": {"name": "csv", "params": {"path": str(path), "order": "any"}},
            "risk": [{"name": "fixed-size", "params": {"quantity": 3}}],
            "capital": {"currency": "USD", "initial": 1_000_000},
        },
    }
    document["spec"].update(spec)
    return document


class _Fills:
    """An engine listener keeping the fills."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []

    def on_order(self, order: Order, update: OrderUpdate) -> None: ...

    def on_fill(self, fill: Fill, order: Order | None, position: Position) -> None:
        self.fills.append(fill)

    def on_risk(
        self, plugin: str, intent: OrderIntent, decision: RiskDecision, order_id: str
    ) -> None: ...

    def on_state(self, kind: str, message: str) -> None: ...


def _engine_fills(document: dict[str, Any], params: dict[str, Any]) -> list[Fill]:
    registry = PluginRegistry.discover()
    bot = assemble(parse_manifest(with_params(document, params)), registry, ROOT)
    listener = _Fills()

    def prepare(engine: Any) -> None:
        engine.listener = listener

    journal = Journal(":memory:", batched=True)
    try:
        BotSession(bot, journal, prepare=prepare).run_to_end()
    finally:
        journal.close()
    return listener.fills


def _check_equal(document: dict[str, Any], params: dict[str, Any], *, traded: bool = True) -> None:
    """Both paths give the same run; ``traded``: it fills at least one order (else none)."""
    vector = evaluate(Task(document, str(ROOT), params, detail=True))
    engine = evaluate(Task(document, str(ROOT), params, detail=True, vector=False))
    assert vector.path == "vector", vector.fallback
    assert engine.path == "engine"
    assert vector.history_bars == engine.history_bars
    assert vector.equity_ts == engine.equity_ts
    np.testing.assert_allclose(vector.equity, engine.equity, rtol=0, atol=1e-9)
    np.testing.assert_allclose(vector.exposure, engine.exposure, rtol=0, atol=1e-9)
    assert vector.fees == pytest.approx(engine.fees, abs=1e-9)
    assert len(vector.trades) == len(engine.trades)
    for ours, theirs in zip(vector.trades, engine.trades, strict=True):
        assert (
            ours.direction,
            ours.entry_ts,
            ours.exit_ts,
            ours.entry_reason,
            ours.exit_reason,
        ) == (
            theirs.direction,
            theirs.entry_ts,
            theirs.exit_ts,
            theirs.entry_reason,
            theirs.exit_reason,
        )
        assert ours.net_pnl == pytest.approx(theirs.net_pnl, abs=1e-9)
    assert vector.figures == pytest.approx(engine.figures, abs=1e-9)
    # Fill by fill: the bar, side, quantity, price and fee of each.
    fills = _engine_fills(document, params)
    registry = PluginRegistry.discover()
    bot = assemble(parse_manifest(with_params(document, params)), registry, ROOT)
    columns = bar_columns(feed_bars(document, str(ROOT)))
    plan = bot.strategy.target_positions(columns)  # type: ignore[attr-defined]
    spec = document["spec"]
    terms = vector_terms(
        (spec["market"]["symbols"][0],),
        ("paper", bot.broker.params.model_dump()),  # type: ignore[attr-defined]
        [(name, plugin.params.model_dump()) for name, plugin in bot.risk],  # type: ignore[attr-defined]
        initial_capital=spec["capital"]["initial"],
        timeframe_s=HOUR,
    )
    assert isinstance(terms, VectorTerms), terms
    run = run_plan(columns, plan, terms, bot.strategy.warmup_bars())
    assert not isinstance(run, str)
    assert len(fills) == run.fill_bar.size
    assert bool(fills) == traded
    assert [f.ts for f in fills] == columns.ts[run.fill_bar].tolist()
    assert [1.0 if f.side == "buy" else -1.0 for f in fills] == run.fill_side.tolist()
    np.testing.assert_allclose([f.quantity for f in fills], run.fill_quantity, rtol=0, atol=1e-9)
    np.testing.assert_allclose([f.price for f in fills], run.fill_price, rtol=0, atol=1e-9)
    np.testing.assert_allclose([f.fee for f in fills], run.fill_fee, rtol=0, atol=1e-9)
    # The order's tag, as the strategy tags a turn's orders (the report's exit reasons).
    assert [f.reason for f in fills] == run.fill_reason
    assert set(run.fill_reason) <= {"cross", "cross-up", "cross-down"}


# The sizers the vectorised path takes: a fixed size, and a share of equity at each turn
# (limited by the risk to the assumed stop in one, by the leverage cap in the other).
SIZERS: dict[str, list[dict[str, Any]]] = {
    "fixed-size": [{"name": "fixed-size", "params": {"quantity": 3}}],
    "fractional-by-risk": [
        {
            "name": "fixed-fractional",
            "params": {"risk_per_trade": 0.01, "default_stop_pct": 0.005, "max_leverage": 5},
        }
    ],
    "fractional-by-leverage": [
        {
            "name": "fixed-fractional",
            "params": {"risk_per_trade": 0.05, "default_stop_pct": 0.005, "max_leverage": 2},
        }
    ],
}


@pytest.mark.parametrize("sizer", sorted(SIZERS))
@pytest.mark.parametrize(
    "params",
    [
        {"fast": 10, "slow": 30},
        {"fast": 2, "slow": 3},
        {"fast": 5, "slow": 40, "allow_short": False},
    ],
    ids=["10-30", "2-3", "5-40-long-only"],
)
@pytest.mark.parametrize(
    ("name", "symbol"),
    [("EURUSD_H1_2017.csv", "EURUSD"), ("BTCUSD_H1_bitfinex_2017-2019.csv", "BTCUSD")],
)
def test_vector_path_equals_the_engine_on_bundled_data(
    name: str, symbol: str, params: dict[str, Any], sizer: str
) -> None:
    _check_equal(_manifest(DATA / name, symbol, risk=SIZERS[sizer]), params)


def test_fractional_sizes_follow_the_equity() -> None:
    # Not one size scaled: each entry is sized on the equity the trades before it left.
    document = _manifest(DATA / "EURUSD_H1_2017.csv", "EURUSD", risk=SIZERS["fractional-by-risk"])
    fills = _engine_fills(document, {"fast": 10, "slow": 30})
    sizes = {round(f.quantity, 6) for f in fills}
    assert len(sizes) > len(fills) // 4


def _gapped_csv(folder: Path, seed: int, count: int = 1500) -> Path:
    """A random walk whose every open jumps away from the previous close, with missing hours."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, count)))
    jump = rng.normal(0, 0.01, count)
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(jump)  # never the previous close
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.002, count)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, count)))
    steps = np.where(rng.random(count) < 0.05, rng.integers(2, 30, count), 1)
    ts = 1_600_000_000 - 1_600_000_000 % HOUR + np.cumsum(steps) * HOUR
    path = folder / f"gapped-{seed}.csv"
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [
        f"{t},{o!r},{h!r},{lo!r},{c!r},1"
        for t, o, h, lo, c in zip(
            ts.tolist(), open_.tolist(), high.tolist(), low.tolist(), close.tolist(), strict=True
        )
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("sizer", sorted(SIZERS))
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("params", [{"fast": 3, "slow": 8}, {"fast": 12, "slow": 26}])
def test_vector_path_equals_the_engine_on_gapped_data(
    tmp_path: Path, seed: int, params: dict[str, Any], sizer: str
) -> None:
    document = _manifest(_gapped_csv(tmp_path, seed), "SYN", risk=SIZERS[sizer])
    _check_equal(document, params)


def _head(path: Path, bars: int) -> Path:
    """A copy of the CSV file ``path`` with its first ``bars`` bars only."""
    lines = path.read_text().splitlines()
    head = path.with_name(f"{path.stem}-{bars}.csv")
    head.write_text("\n".join(lines[: bars + 1]) + "\n")
    return head


@pytest.mark.parametrize("sizer", sorted(SIZERS))
@pytest.mark.parametrize(
    ("bars", "traded"),
    [
        (lambda first: 30 - 1, False),  # shorter than the warm-up (slow = 30)
        (lambda first: first, False),  # no trade: the first entry is after the data
        (lambda first: first + 1, False),  # the first entry decided at the last bar
        (lambda first: first + 2, True),  # the only fill at the last bar's open
        (lambda first: first + 3, True),  # the only trade at the very end
    ],
    ids=["short", "no-trade", "decided-at-the-last-bar", "filled-at-the-last-bar", "at-the-end"],
)
def test_vector_path_equals_the_engine_with_few_or_no_trades(
    tmp_path: Path, sizer: str, bars: Callable[[int], int], traded: bool
) -> None:
    # A plan that never turns after warm-up has no turn to index (it raised IndexError and
    # ended the whole optimisation); it is the engine's 0-trade run, as are runs whose only
    # trade is at the very end of the data.
    params = {"fast": 10, "slow": 30}
    whole = _manifest(_gapped_csv(tmp_path, 4), "SYN", risk=SIZERS[sizer])
    registry = PluginRegistry.discover()
    bot = assemble(parse_manifest(with_params(whole, params)), registry, ROOT)
    columns = bar_columns(feed_bars(whole, str(ROOT)))
    plan = bot.strategy.target_positions(columns)  # type: ignore[attr-defined]
    first = int(np.flatnonzero(np.asarray(plan.target))[0])  # the plan is causal: cut it there
    assert first > 30
    path = _head(Path(whole["spec"]["data"]["params"]["path"]), bars(first))
    _check_equal(_manifest(path, "SYN", risk=SIZERS[sizer]), params, traded=traded)


def test_next_open_fills_differ_from_fills_at_the_signal_close(tmp_path: Path) -> None:
    # The synthetic data is there to catch a close-filling evaluator: check it would.
    document = _manifest(_gapped_csv(tmp_path, 1), "SYN")
    columns = bar_columns(feed_bars(document, str(ROOT)))
    assert np.count_nonzero(columns.open[1:] != columns.close[:-1]) == len(columns) - 1


@pytest.mark.parametrize("sizer", sorted(SIZERS))
def test_vector_path_on_a_window_equals_the_engine(sizer: str) -> None:
    document = _manifest(DATA / "EURUSD_H1_2017.csv", "EURUSD", risk=SIZERS[sizer])
    from tradefleet_runtime.optimize.worker import Window, load_timeline

    timeline = load_timeline(document, str(ROOT))
    window = Window(1000, 3000)
    params = {"fast": 4, "slow": 15}
    vector = evaluate(Task(document, str(ROOT), params, window, timeline, detail=True))
    engine = evaluate(
        Task(document, str(ROOT), params, window, timeline, detail=True, vector=False)
    )
    assert vector.path == "vector", vector.fallback
    assert vector.seen == engine.seen
    assert vector.equity_ts == engine.equity_ts
    np.testing.assert_allclose(vector.equity, engine.equity, rtol=0, atol=1e-9)
    assert len(vector.trades) == len(engine.trades) > 0
    assert [t.quantity for t in vector.trades] == pytest.approx(
        [t.quantity for t in engine.trades], abs=1e-9
    )


def _with(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    changed["spec"].update(changes)
    return changed


BASE = _manifest(DATA / "EURUSD_H1_2017.csv", "EURUSD")


@pytest.mark.parametrize(
    ("document", "params", "reason"),
    [
        (
            _with(
                BASE,
                risk=[
                    {"name": "fixed-size", "params": {"quantity": 3}},
                    {"name": "pre-trade", "params": {"max_order_quantity": 10}},
                ],
            ),
            {},
            "risk chain fixed-size, pre-trade",
        ),
        (
            _with(BASE, risk=[{"name": "kelly", "params": {}}]),
            {},
            "risk chain kelly",
        ),
        (
            _with(
                BASE,
                capital={"currency": "USD", "initial": 1_000},
                risk=[
                    {
                        "name": "fixed-fractional",
                        "params": {"risk_per_trade": 0.2, "default_stop_pct": 0.001},
                    }
                ],
                broker={
                    "name": "paper",
                    "params": {"fee_bps": 10, "slippage_bps": 2, "leverage": 1},
                },
            ),
            {},
            "would be refused for margin",
        ),
        (BASE, {"stop_loss_pct": 0.01}, "cannot state these params as target positions"),
        (
            _with(BASE, risk=[{"name": "fixed-size", "params": {"quantity": 100_000_000}}]),
            {},
            "would be refused for margin",
        ),
    ],
    ids=["two-risk-plugins", "other-sizer", "fractional-margin", "brackets", "margin"],
)
def test_unsupported_bots_fall_back_to_the_engine_saying_why(
    document: dict[str, Any], params: dict[str, Any], reason: str
) -> None:
    asked = evaluate(Task(document, str(ROOT), params, detail=True))
    engine = evaluate(Task(document, str(ROOT), params, detail=True, vector=False))
    assert asked.path == "engine"
    assert reason in asked.fallback
    assert asked.figures == engine.figures


def test_vector_terms_refuse_what_they_cannot_price() -> None:
    def terms(**kw: Any) -> VectorTerms | str:
        base: dict[str, Any] = {
            "symbols": ("X",),
            "broker": ("paper", {"fee_bps": 1.0}),
            "risk": [("fixed-size", {"quantity": 2.0, "per_symbol": {}})],
        }
        base.update(kw)
        return vector_terms(
            base["symbols"], base["broker"], base["risk"], initial_capital=1.0, timeframe_s=60
        )

    assert isinstance(terms(), VectorTerms)
    assert "2 symbols" in str(terms(symbols=("X", "Y")))
    assert "broker 'ccxt'" in str(terms(broker=("ccxt", {})))
    limits = {"default_instrument": {"lot_step": 0.1, "tick_size": 0.0}}
    assert "instrument limits" in str(terms(broker=("paper", limits)))
    per_symbol = terms(risk=[("fixed-size", {"quantity": 2.0, "per_symbol": {"X": 5.0}})])
    assert isinstance(per_symbol, VectorTerms)
    assert per_symbol.quantity == 5.0


def test_optimiser_notes_name_the_path() -> None:
    from collections import Counter

    notes = path_notes(Counter({("vector", ""): 7, ("engine", "risk chain kelly"): 2}))
    assert notes == [
        "2 trial(s) evaluated by the event engine: risk chain kelly",
        "7 trial(s) evaluated by the vectorised path",
    ]
