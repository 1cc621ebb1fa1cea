"""A trade's reasons are its orders' tags, through the real engine and paper broker: the
report's exit-reason groups tell a strategy's exits from the runtime's emergency flatten.

(The report's grouping itself is tested on hand-made trades in ``test_report_figures.py``;
this is the path that feeds it.)
"""

from __future__ import annotations

from tests.runtime.helpers import Scripted, flat_bars, make_engine
from tradefleet_runtime.report.metrics import RISK, SIGNAL, exit_kind


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
    """The kill switch's flatten, the stop policy's, and the market exit of a position whose
    stop-loss the venue refused: none is the strategy's signal."""
    assert {r: exit_kind(r) for r in ("emergency-flatten", "stop-flatten", "stop-refused")} == {
        "emergency-flatten": RISK,
        "stop-flatten": RISK,
        "stop-refused": RISK,
    }
