"""A trade's reasons are its orders' tags, through the real engine and paper broker: the
report's exit-reason groups tell a strategy's exits from the runtime's emergency flatten.

(The report's grouping itself is tested on hand-made trades in ``test_report_figures.py``;
this is the path that feeds it.)
"""

from __future__ import annotations

from tests.runtime.helpers import Scripted, flat_bars, make_engine
from tradefleet_runtime.brackets import OUTSIDE_TAG
from tradefleet_runtime.model import OrderType
from tradefleet_runtime.report.metrics import OUTSIDE, RISK, SIGNAL, UNKNOWN, exit_kind


def test_tagged_market_orders_name_their_trades_entries_and_exits() -> None:
    strategy = Scripted(
        actions={
            1: lambda ctx, bar: ctx.buy(bar.symbol, 1.0, tag="breakout"),
            4: lambda ctx, bar: ctx.close(bar.symbol, tag="trail"),
            6: lambda ctx, bar: ctx.sell(bar.symbol, 1.0),  # untagged: its type
            9: lambda ctx, bar: ctx.buy(bar.symbol, 2.0, tag="breakout"),  # reverses
        }
    )
    engine = make_engine(strategy)
    bars = flat_bars([100.0 + i for i in range(14)])
    engine.run(bars[:8])
    engine.run(bars[8:12])
    assert engine.halt("an operator", "venue outage", flatten=True)
    engine.run(bars[12:])
    result = engine.finish()

    reasons = [(t.entry_reason, t.exit_reason) for t in result.trades]
    assert reasons == [
        ("breakout", "trail"),
        ("market", "breakout"),
        ("breakout", "emergency-flatten"),
    ]
    assert [exit_kind(exit_) for _, exit_ in reasons] == [SIGNAL, SIGNAL, RISK]


def test_the_runtimes_own_exits_are_risk_exits() -> None:
    """The kill switch's flatten, the stop policy's, the market exit of a position whose
    stop-loss the venue refused, and that of an entry's part filled after its bracket ended:
    none is the strategy's signal."""
    runtime_exits = ("emergency-flatten", "stop-flatten", "stop-refused", "bracket-spent")
    assert {r: exit_kind(r) for r in runtime_exits} == dict.fromkeys(runtime_exits, RISK)


def test_a_close_made_at_the_venue_by_someone_else_is_its_own_kind() -> None:
    """A position a person closed in the terminal (booked by the broker as an outside fill) is
    neither the strategy's signal nor the bot's risk exit."""
    assert exit_kind(OUTSIDE_TAG) == OUTSIDE != exit_kind("close")


def test_a_flatten_asked_of_a_bot_already_halted_is_done() -> None:
    """Halted first (positions kept), then asked to flatten: the flatten is done at once — a
    person must not have to resume, letting the strategy trade, to get it — and journaled."""
    strategy = Scripted(
        actions={
            1: lambda ctx, bar: ctx.buy(bar.symbol, 2.0, tag="breakout"),
            2: lambda ctx, bar: ctx.buy(bar.symbol, 1.0, order_type=OrderType.LIMIT, price=50.0),
        }
    )
    engine = make_engine(strategy)
    bars = flat_bars([100.0 + i for i in range(8)])
    engine.run(bars[:4])
    assert engine.position("TEST").quantity == 2.0 and engine.open_orders()
    assert engine.halt("an operator", "venue outage")
    assert engine.position("TEST").quantity == 2.0  # a halt alone keeps the position
    assert not engine.halt("an operator", "flatten it too", flatten=True)  # already halted
    # Asked again before the close filled (a fleet stop's direct call, then the operator's):
    # the close on its way stays, and no second one is sent.
    assert not engine.halt("the operator", "spec.emergencyStop", flatten=True)
    engine.run(bars[4:6])
    assert engine.position("TEST").quantity == 0.0
    assert not engine.open_orders()
    assert engine.halted and engine.halt_reason == "venue outage"
    kinds = [row[0] for row in engine.journal.query("SELECT kind FROM events ORDER BY id")]
    assert kinds.count("halted") == 1 and kinds.count("flattened") == 2
    assert not engine.halt("an operator", "again")  # a second halt without flatten: nothing
    engine.run(bars[6:])
    assert engine.stats.orders == 3  # the entry, the resting limit, the one close


def test_an_exit_without_a_recorded_reason_is_unknown_not_the_strategys() -> None:
    """Trades of a journal from before reasons were kept come out of its migration with ''.
    Called "signal" they would all read as the strategy's own exits, stops and targets
    included."""
    assert exit_kind("") == UNKNOWN != exit_kind("market") == SIGNAL
