"""A sizer's ``max_leverage`` on an order that came sized credits as closing only what the
position still holds net of the exits already working (``RiskContext.closable``).

A reversal sent as ``close`` + an entry (external-signal's ``reverse_on_opposite``, ema-cross,
ensemble) has a reduce-only exit working for the whole position when the entry is decided: the
entry closes nothing, and all it asks opens. With 10,000 of equity, TEST at 100 and
``max_leverage: 1`` (100 units), long 100 then ``close`` + ``sell 300`` ends short 100 (1x), not
short 200.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_plugins.risk.sizing import sized_within_leverage
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Instrument, OrderIntent, Position, RiskAction, RiskContext, Side
from tradefleet_runtime.sdk.testing import risk_context

MARK = {"BTCUSDT": 50_000.0}
EQUITY = 10_000.0  # max_leverage 3: 0.6 BTC may open


def _fixed() -> FixedFractional:
    return FixedFractional(FixedFractionalParams(risk_per_trade=0.01, max_leverage=3.0))


def _context(closable: dict[str, float] | None) -> RiskContext:
    return risk_context(
        "BTCUSDT", equity=EQUITY, marks=MARK, positions={"BTCUSDT": 2.0}, closable=closable
    )


def test_a_reversal_sent_as_close_and_entry_opens_no_more_than_max_leverage(
    tmp_path: Path,
) -> None:
    registry = PluginRegistry.discover()

    def reverse(ctx, bar):  # type: ignore[no-untyped-def]
        ctx.close("TEST")
        ctx.sell("TEST", 300.0)

    strategy = Scripted({0: lambda c, b: c.buy("TEST", 100.0), 3: reverse})
    risk = [{"name": "fixed-fractional", "params": {"max_leverage": 1.0}}]
    document = manifest(risk, capital=10_000.0, leverage=10.0)
    session = open_session(bot_with(registry, document, strategy, tmp_path))
    engine = session.engine
    assert engine is not None
    engine.run(flat_bars([100.0] * 8))
    held = engine.portfolio.positions["TEST"].quantity
    assert held == pytest.approx(-100.0), f"short {-held:g} TEST, 1x equity is 100"
    notional = abs(held) * 100.0
    assert notional <= 1.0 * engine.equity + 1e-6


def test_an_entry_behind_an_exit_for_the_whole_position_opens_all_it_asks() -> None:
    """Long 2, an exit working for 2: a sell of 3 closes nothing, and 3 would open (7.5x):
    cut to 0.6, not to 2 + 0.6."""
    sell = OrderIntent("BTCUSDT", Side.SELL, 3.0)
    decision = _fixed().check(sell, _context({"BTCUSDT": 0.0}))
    assert decision.action is RiskAction.SHRINK and decision.quantity == pytest.approx(0.6)
    assert decision.reason.startswith("fixed-fractional: 3 BTCUSDT opened is 15.00x equity")


def test_a_position_partly_covered_by_an_exit_credits_only_what_is_left() -> None:
    """Long 2, an exit working for 1.5: of a sell of 3, 0.5 closes and 2.5 would open."""
    sell = OrderIntent("BTCUSDT", Side.SELL, 3.0)
    decision = _fixed().check(sell, _context({"BTCUSDT": 0.5}))
    assert decision.action is RiskAction.SHRINK and decision.quantity == pytest.approx(1.1)


def test_with_no_exit_working_the_whole_position_is_credited() -> None:
    """The test kit's default (no exit working), and a context built by hand without
    ``closable`` (None): the whole position closes, as before the field existed."""
    sell = OrderIntent("BTCUSDT", Side.SELL, 3.0)
    decision = _fixed().check(sell, _context(None))
    assert decision.action is RiskAction.SHRINK and decision.quantity == pytest.approx(2.6)
    by_hand = RiskContext(
        0, EQUITY, EQUITY, EQUITY, EQUITY,
        {"BTCUSDT": Position("BTCUSDT", 2.0, 50_000.0)}, dict(MARK), Instrument("BTCUSDT"),
    )  # fmt: skip
    assert by_hand.closable is None
    decision = sized_within_leverage(sell, by_hand, 3.0, "fixed-fractional")
    assert decision.quantity == pytest.approx(2.6)


@pytest.mark.parametrize(
    ("side", "quantity", "closable", "closing"),
    [
        (Side.SELL, 3.0, None, 2.0),  # not told: the whole position
        (Side.SELL, 1.0, None, 1.0),  # no more than the order
        (Side.SELL, 3.0, {"BTCUSDT": 0.5}, 0.5),
        (Side.SELL, 3.0, {}, 0.0),  # told, and nothing said of it: nothing is credited
        (Side.BUY, 3.0, None, 0.0),  # the position's own side adds
    ],
)
def test_closing_is_what_the_order_closes(
    side: Side, quantity: float, closable: dict[str, float] | None, closing: float
) -> None:
    ctx = RiskContext(
        0, EQUITY, EQUITY, EQUITY, EQUITY,
        {"BTCUSDT": Position("BTCUSDT", 2.0, 50_000.0)}, dict(MARK), Instrument("BTCUSDT"),
        closable=closable,
    )  # fmt: skip
    assert ctx.closing(OrderIntent("BTCUSDT", side, quantity), quantity) == closing
    flat = ctx._replace(positions={})
    assert flat.closing(OrderIntent("BTCUSDT", side, quantity), quantity) == 0.0
