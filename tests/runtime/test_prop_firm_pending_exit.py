"""prop-firm with an exit already working: a position being closed is at risk only for what its
exit leaves of it.

``close`` sends a reduce-only market exit that fills at the next bar, the position's stops kept
working until it has (walkthrough W23: a close refused left the position bare). Counted whole,
the position looked unprotected: at that very close prop-firm asked a cut of it (whose orders
were then cancelled, "no position to reduce": 19 misleading ``risk_action`` events in a year's
backtest) and vetoed the entry the strategy sent with the exit (a reversal), as if the closing
position were still there to lose; its stops, still working, were charged to the reversal as
stops of the symbol an entry adds to (``stops_left``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import HOUR, T0, Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tradefleet_plugins.risk.prop_firm import PropFirm
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import (
    Fill,
    Instrument,
    OrderIntent,
    OrderType,
    Position,
    RiskAction,
    Side,
)
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import ActionKind

MIDNIGHT = T0 + 24 * HOUR
# A 0.5% daily limit: the day starting at 100,000 leaves 500 of room above its floor.
# Without fill costs: the arithmetic here is the exits' (test_prop_firm_costs.py has costs).
NO_COSTS = {"fee_bps": 0.0, "slippage_bps": 0.0}
TIGHT = PropFirmParams(timezone="UTC", max_daily_loss=0.005, **NO_COSTS)


def ctx(ts: int, quantity: float, stops: tuple[tuple[float, float], ...] = ()) -> RiskContext:
    """X held at 100, marked at 100; no stop: 2% of 100 a unit is assumed at risk."""
    positions = {"X": Position("X", quantity, 100.0)} if quantity else {}
    return RiskContext(
        ts=ts,
        equity=100_000.0,
        cash=100_000.0 - quantity * 100.0,  # the engine's: a position is paid for in cash
        start_of_day_equity=100_000.0,
        peak_equity=100_000.0,
        positions=positions,
        marks={"X": 100.0},
        instrument=Instrument("X"),
        stops={"X": stops} if stops else {},
        initial_equity=100_000.0,
    )


def exit_order(quantity: float, order_type: OrderType = OrderType.MARKET) -> OrderIntent:
    price = 101.0 if order_type is OrderType.LIMIT else None
    return OrderIntent("X", Side.SELL, quantity, order_type, price, reduce_only=True, tag="close")


def cut(actions: list[object]) -> float:
    assert len(actions) == 1
    action = actions[0]
    assert getattr(action, "kind", None) is ActionKind.REDUCE
    return float(getattr(action, "fraction", 0.0))


def test_a_position_its_exit_closes_whole_is_not_cut() -> None:
    plugin = PropFirm(TIGHT)
    assert plugin.check(exit_order(1000), ctx(MIDNIGHT, 1000)).action is RiskAction.APPROVE
    assert plugin.account_actions(ctx(MIDNIGHT, 1000)) == []


def test_only_what_the_exit_leaves_counts_at_risk() -> None:
    """1,000 held, an exit of 600 working: the 400 left risk 800 against 500 of room. The cut
    (a share of the position as it stands) need only bring what is left to 250: 15%, not the
    75% the whole 1,000 unprotected asked."""
    plugin = PropFirm(TIGHT)
    plugin.check(exit_order(600), ctx(MIDNIGHT, 1000))
    share = cut(list(plugin.account_actions(ctx(MIDNIGHT, 1000))))
    assert share == pytest.approx(0.15, rel=1e-4)


def test_without_an_exit_the_whole_position_is_cut_as_before() -> None:
    plugin = PropFirm(TIGHT)
    assert cut(list(plugin.account_actions(ctx(MIDNIGHT, 1000)))) == pytest.approx(0.75, rel=1e-4)


def test_a_limit_exit_covers_nothing_and_an_exit_counts_only_at_its_close() -> None:
    """A resting limit caps no loss. A market exit fills by the next close: a position still
    there then (the venue refused the exit) is at risk whole again."""
    plugin = PropFirm(TIGHT)
    plugin.check(exit_order(1000, OrderType.LIMIT), ctx(MIDNIGHT, 1000))
    assert cut(list(plugin.account_actions(ctx(MIDNIGHT, 1000)))) == pytest.approx(0.75, rel=1e-4)

    plugin = PropFirm(TIGHT)
    plugin.check(exit_order(1000), ctx(MIDNIGHT, 1000))
    assert plugin.account_actions(ctx(MIDNIGHT, 1000)) == []
    later = cut(list(plugin.account_actions(ctx(MIDNIGHT + HOUR, 1000))))
    assert later == pytest.approx(0.75, rel=1e-4)


def test_an_exit_that_filled_is_not_counted_again_against_what_is_left() -> None:
    """A live venue reports the exit's fill between bars (the engine still at the close): the
    position shrank by it, and the exit covers nothing more of the 400 left."""
    plugin = PropFirm(TIGHT)
    plugin.check(exit_order(600), ctx(MIDNIGHT, 1000))
    plugin.on_fill(Fill("o1", "X", Side.SELL, 600, 100.0, 0.0, MIDNIGHT + 5, "f1", "close"))
    # 400 left, all of it at risk (800 against 500 of room): a cut of 1 - 500 / 800.
    share = cut(list(plugin.account_actions(ctx(MIDNIGHT, 400))))
    assert share == pytest.approx(1 - 500 / 800, rel=1e-4)


def test_the_cuts_own_orders_are_the_share_asked_not_an_exit_besides_it() -> None:
    """The cut's reduce-only orders pass ``check`` like any exit. Counted as exits on top of
    the share already asked, the next bar of the same close would find the positions covered
    twice over and ask nothing of a wider risk."""
    plugin = PropFirm(TIGHT)
    first = cut(list(plugin.account_actions(ctx(MIDNIGHT, 1000))))
    plugin.check(exit_order(1000 * first), ctx(MIDNIGHT, 1000))  # the cut's own order
    assert plugin.account_actions(ctx(MIDNIGHT, 1000)) == []
    # 500 more held at the same close (a fill reported between bars): 3,000 at risk.
    more = cut(list(plugin.account_actions(ctx(MIDNIGHT, 1500))))
    assert more == pytest.approx(1 - 500 / 3000 - first, rel=1e-4)


# -- through the engine: the strategy closes at the close a cut would be asked at ------------


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


def test_closing_and_reversing_asks_no_cut_and_the_reversal_passes(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """10,000 bought at 100, stopped at 99.6: 4,000 at risk of the day's 5,000. Three bars on
    the strategy closes it (its stop working until the close fills) and sells 10,000 stopped at
    100.4. Counted whole the closing long risked 20,000 unprotected: a 75% cut was asked, its
    order cancelled with nothing to reduce, and the sell vetoed; its stop counted beside the
    close vetoed the sell too."""

    def reverse(context, bar):  # type: ignore[no-untyped-def]
        context.close("TEST")
        context.sell("TEST", 10_000, stop_loss=100.4)

    strategy = Scripted(
        {0: lambda c, b: c.buy("TEST", 10_000, stop_loss=99.6), 3: reverse},
    )
    document = manifest(
        [{"name": "prop-firm", "params": {"timezone": "UTC", **NO_COSTS}}],
        capital=100_000.0,
        leverage=100.0,
    )
    session = open_session(bot_with(registry, document, strategy, tmp_path))
    engine = session.engine
    assert engine is not None
    engine.run(flat_bars([100.0] * 6))
    engine.finish()
    journal: Any = engine.journal  # the SQLite journal (``query``), behind the writer port
    actions = journal.query("SELECT message FROM events WHERE kind = 'risk_action'")
    assert actions == []
    decisions = journal.query(
        "SELECT side, action FROM risk_decisions WHERE plugin = 'prop-firm' ORDER BY id"
    )
    assert [tuple(d) for d in decisions] == [
        ("buy", "approve"),
        ("sell", "approve"),  # the close
        ("sell", "approve"),  # the reversal
    ]
    assert engine.portfolio.open_positions["TEST"].quantity == -10_000
