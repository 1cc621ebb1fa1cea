"""Risk capabilities: declared and checked at load; the engine calls them only when declared;
the whole built-in chain only ever shrinks or vetoes (property over random intent streams)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.runtime.helpers import Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tradefleet_runtime.capabilities import Capability, check_object, parse_capabilities
from tradefleet_runtime.model import Bar, OrderIntent, OrderType, Side
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


class Watcher:
    def __init__(self) -> None:
        self.bars: list[Bar] = []

    def check(self, intent: Any, ctx: Any) -> Any:
        raise AssertionError("not called in this test")

    def on_bar(self, bar: Bar) -> None:
        self.bars.append(bar)


def test_new_capabilities_are_for_risk_plugins_only() -> None:
    for name in ("observes-bars", "observes-fills", "observes-orders", "reads-trades",
                 "acts-on-account", "intent-only"):  # fmt: skip
        declared, errors = parse_capabilities("risk", [name])
        assert declared == {Capability(name)} and not errors
        assert parse_capabilities("strategy", [name])[1]


def test_a_method_without_its_declaration_or_the_reverse_is_refused() -> None:
    problems = check_object("risk", Watcher(), frozenset())
    assert any("'on_bar'" in p and "observes-bars" in p for p in problems)
    assert check_object("risk", Watcher(), frozenset({Capability.OBSERVES_BARS})) == []
    missing = check_object("risk", object(), frozenset({Capability.ACTS_ON_ACCOUNT}))
    assert any("account_actions" in p for p in missing)
    lock = check_object("risk", object(), frozenset({Capability.RESTORES_LOCK}))
    assert any("restore_lock" in p for p in lock)


def test_builtin_descriptors_declare_what_their_objects_do(registry: PluginRegistry) -> None:
    for name in ("circuit-breaker", "prop-firm", "pre-trade", "kelly", "volatility-target",
                 "probation", "quality-guard"):  # fmt: skip
        registry.build(PluginKind.RISK, name, {}, [])  # raises on a mismatch
    spec = registry.get(PluginKind.RISK, "volatility-target").spec
    assert spec.has(Capability.OBSERVES_BARS) and not spec.has(Capability.ACTS_ON_ACCOUNT)
    # Only a sizer that never reads the account may skip its snapshot.
    intent_only = {
        name
        for name in registry.names(PluginKind.RISK)
        if registry.get(PluginKind.RISK, name).spec.has(Capability.INTENT_ONLY)
    }
    assert intent_only == {"fixed-size"}


def test_bars_reach_only_declared_observers(registry: PluginRegistry, tmp_path: Path) -> None:
    strategy = Scripted()
    # fixed-size declares only that it reads the intent alone: no per-bar hooks at all, so
    # the per-bar loop skips them.
    plain = bot_with(registry, manifest([{"name": "fixed-size", "params": {"quantity": 1}}]),
                     strategy, tmp_path)  # fmt: skip
    hooks = dict(vars(plain.risk_hooks))
    assert hooks.pop("intent_only") == {"fixed-size"} and not any(hooks.values())
    watched = bot_with(registry, manifest([{"name": "volatility-target"}]), Scripted(), tmp_path)
    [(name, observer)] = watched.risk_hooks.bar_observers
    assert name == "volatility-target"
    session = open_session(watched)
    assert session.engine is not None
    session.engine.run(flat_bars([100, 101, 102]))
    assert observer._atr["TEST"]._count == 3  # type: ignore[attr-defined]


ALL = [
    {"name": "kelly", "params": {"min_trades": 1, "fallback_risk": 0.01, "max_leverage": 5}},
    {"name": "pre-trade", "params": {"price_band": 0.05, "max_order_quantity": 300}},
    {"name": "prop-firm", "params": {"require_stop": False}},
    {"name": "circuit-breaker"},
    {"name": "probation"},
    {"name": "quality-guard", "params": {"window": 5, "min_samples": 3}},
]
intents = st.lists(
    st.tuples(
        st.integers(0, 39),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.one_of(st.none(), st.floats(0.01, 5_000)),
        st.sampled_from([OrderType.MARKET, OrderType.LIMIT]),
        st.floats(0.8, 1.2),
        st.one_of(st.none(), st.floats(0.001, 0.1)),
        st.booleans(),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(stream=intents, moves=st.lists(st.floats(-0.03, 0.03), min_size=40, max_size=40))
def test_the_chain_never_grows_a_size_or_flips_a_side(
    registry: PluginRegistry, tmp_path: Path, stream: list[Any], moves: list[float]
) -> None:
    prices = [100.0]
    for move in moves:
        prices.append(max(1.0, prices[-1] * (1 + move)))
    asked: dict[int, list[OrderIntent]] = {}

    def submit(items: list[OrderIntent]):  # type: ignore[no-untyped-def]
        def act(ctx, bar):  # type: ignore[no-untyped-def]
            for item in items:
                ctx.submit(item)

        return act

    for index, side, quantity, kind, off, stop, reduce in stream:
        price = prices[index] * off if kind is OrderType.LIMIT else None
        stop_loss = None if stop is None else prices[index] * (1 - stop * side.sign)
        asked.setdefault(index, []).append(
            OrderIntent("TEST", side, quantity, kind, price, stop_loss, reduce_only=reduce)
        )
    strategy = Scripted({i: submit(items) for i, items in asked.items()})
    bot = bot_with(registry, manifest(ALL, capital=100_000.0), strategy, tmp_path)
    session = open_session(bot)
    assert session.engine is not None
    session.engine.run(flat_bars(prices))
    journal = session.journal
    rows = journal.query(
        "SELECT r.client_order_id, r.quantity_in, r.quantity_out, r.side, r.action"
        " FROM risk_decisions r ORDER BY r.id"
    )
    sent = {
        row[0]: (row[1], row[2])
        for row in journal.query("SELECT client_order_id, side, quantity FROM orders")
    }
    event(f"orders sent: {min(len(sent), 3)}")
    by_order: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_order.setdefault(str(row[0]), []).append(row)
    for order_id, decisions in by_order.items():
        sizes = [q_out if q_out else q_in for _, q_in, q_out, _, action in decisions
                 if action != "veto"]  # fmt: skip
        first_sized = next((s for s in sizes if s is not None), None)
        if order_id in sent and first_sized is not None:
            side, quantity = sent[order_id]
            assert side == decisions[0][3]  # never flipped
            assert quantity <= first_sized * (1 + 1e-9)  # never grown past the first size
        for _, q_in, q_out, _, action in decisions:
            if q_in is not None and q_out is not None and action != "veto":
                assert q_out <= q_in * (1 + 1e-9)


def test_history_bars_warm_up_bar_observers(registry: PluginRegistry, tmp_path: Path) -> None:
    bot = bot_with(registry, manifest([{"name": "volatility-target"}]), Scripted(), tmp_path)
    session = open_session(bot)
    assert session.engine is not None
    session.engine.catch_up(flat_bars([100.0] * 14))  # warm-up history: no broker, no orders
    [(_, observer)] = bot.risk_hooks.bar_observers
    assert observer._atr["TEST"].value is not None  # type: ignore[attr-defined]
