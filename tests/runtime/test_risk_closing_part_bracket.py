"""A reversal the risk chain shrank to its closing part goes out without its bracket.

Shrunk to no more than it closes, the order is sent reduce-only (``closes_only``,
``test_risk_reducing_after_chain.py``); once it fills the account is flat, so the stop-loss and
take-profit it carried would be reduce-only children protecting nothing: shown as protection
of a position that does not exist, and on a venue left working where a later position of the
symbol could meet them. The engine sends such an order without them (``risk_driver.
drops_bracket``) and journals why (event ``bracket_dropped``). An order nothing shrank, and a
reversal still opening after its cut, keep their bracket as they had it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.runtime.helpers import Scripted, flat_bars, make_engine
from tests.runtime.risk_helpers import events
from tradefleet_plugins.risk.pre_trade import PreTrade
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.risk_driver import drops_bracket
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import OrderType

# Long 500 at 100 with its own bracket (95 / 110); the strategy then sells 1000 at the mark
# 100 with the bracket of the short it meant to open (105 / 90).
_LONG = {0: lambda c, b: c.buy("TEST", 500, stop_loss=95.0, take_profit=110.0)}
_WHY = "its stop-loss and take-profit dropped: the order only closes"


def _engine(journal: Journal, sell: Any, params: PreTradeParams | None = None) -> Engine:
    """The long on the first bar, ``sell`` on the fourth (03:00 UTC), under pre-trade with
    ``params`` (none: no rule)."""
    strategy = Scripted(_LONG | {3: sell})
    chain = [] if params is None else [("pre-trade", PreTrade(params))]
    return make_engine(strategy, capital=100_000.0, journal=journal, risk=chain)


# Entries until 01:30: the sell at 03:00 may open nothing, and goes as its closing part.
_HOURS = PreTradeParams(trading_hours=("00:00", "01:30"))


def _sells(journal: Journal) -> list[tuple[Any, ...]]:
    """The strategy's sells as journaled: (id, type, quantity, reduce_only, SL, TP)."""
    return [
        tuple(row)
        for row in journal.query(
            "SELECT client_order_id, order_type, quantity, reduce_only, stop_loss, take_profit"
            " FROM orders WHERE side = 'sell' AND parent_id IS NULL ORDER BY rowid"
        )
    ]


def _children_of(journal: Journal, parent_id: str) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in journal.query(
            "SELECT client_order_id, quantity FROM orders WHERE parent_id = ? ORDER BY rowid",
            parent_id,
        )
    ]


def test_drops_bracket_only_for_an_order_the_chain_made_an_exit() -> None:
    # (reduce-only as sent, reduce-only as the strategy asked, has a stop-loss or take-profit)
    assert drops_bracket(True, False, True)  # shrunk to its closing part
    assert not drops_bracket(False, False, True)  # an entry, or a reversal still opening
    assert not drops_bracket(True, True, True)  # an exit as asked: the strategy's own word
    assert not drops_bracket(True, False, False)  # no bracket to drop


def test_a_reversal_cut_to_its_closing_part_leaves_no_stop_loss_or_take_profit() -> None:
    """Outside pre-trade's trading hours the sell of 1000 is cut to the 500 that close the
    long. Once it fills the bot is flat with nothing working, and no child of it was ever
    placed."""
    journal = Journal(":memory:")
    sell = lambda c, b: c.sell("TEST", 1000, stop_loss=105.0, take_profit=90.0)  # noqa: E731
    engine = _engine(journal, sell, _HOURS)
    engine.run(flat_bars([100.0] * 6))
    ((order_id, kind, quantity, reduce_only, stop_loss, take_profit),) = _sells(journal)
    assert (kind, quantity, reduce_only) == ("market", 500.0, 1)
    assert engine.position("TEST").quantity == 0.0
    assert engine.open_orders("TEST") == []
    assert _children_of(journal, order_id) == []
    assert (stop_loss, take_profit) == (None, None)  # journaled, and so sent, without them
    ((message, _),) = events(journal, "bracket_dropped")
    assert message.startswith(f"{order_id}: {_WHY}")


@pytest.mark.parametrize(
    ("order_type", "price", "stops", "closes"),
    [
        (OrderType.LIMIT, 104.0, (108.0, 95.0), [101.0, 103.0, 105.0]),  # through 104 up
        (OrderType.STOP, 97.0, (101.0, 90.0), [99.0, 98.0, 96.0]),  # triggered at 97 down
    ],
)
def test_a_resting_order_cut_to_its_closing_part_fills_without_children(
    order_type: OrderType, price: float, stops: tuple[float, float], closes: list[float]
) -> None:
    """The children of a resting limit or stop attach on its fill: none for one cut to its
    closing part (the long's own stop-loss at 95 is never touched)."""
    journal = Journal(":memory:")
    stop_loss, take_profit = stops
    sell = lambda c, b: c.sell(  # noqa: E731
        "TEST", 1000, order_type=order_type, price=price, stop_loss=stop_loss,
        take_profit=take_profit,
    )  # fmt: skip
    engine = _engine(journal, sell, _HOURS)
    engine.run(flat_bars([100.0] * 4 + closes + closes[-1:] * 2))
    ((order_id, kind, quantity, reduce_only, stop_loss, take_profit),) = _sells(journal)
    assert (kind, quantity, reduce_only) == (order_type.value, 500.0, 1)
    fills = journal.query("SELECT quantity FROM fills WHERE client_order_id = ?", order_id)
    assert [row[0] for row in fills] == [500.0]  # it filled: the case of the children
    assert engine.position("TEST").quantity == 0.0
    assert engine.open_orders("TEST") == []
    assert _children_of(journal, order_id) == []
    assert (stop_loss, take_profit) == (None, None)
    assert [m.startswith(f"{order_id}: {_WHY}") for m, _ in events(journal, "bracket_dropped")] == [
        True
    ]


def test_a_reversal_still_opening_after_its_cut_keeps_its_bracket() -> None:
    """Cut to 800 (500 closes, 300 opens a short): an entry still, its bracket kept, the
    children sized as ever by what filled."""
    journal = Journal(":memory:")
    sell = lambda c, b: c.sell("TEST", 1000, stop_loss=105.0, take_profit=90.0)  # noqa: E731
    engine = _engine(journal, sell, PreTradeParams(max_order_quantity=800))
    engine.run(flat_bars([100.0] * 6))
    ((order_id, kind, quantity, reduce_only, stop_loss, take_profit),) = _sells(journal)
    assert (kind, quantity, reduce_only, stop_loss, take_profit) == (
        "market", 800.0, 0, 105.0, 90.0
    )  # fmt: skip
    assert engine.position("TEST").quantity == -300.0
    working = sorted((o.tag, o.quantity) for o in engine.open_orders("TEST"))
    assert working == [("stop_loss", 300.0), ("take_profit", 300.0)]
    assert len(_children_of(journal, order_id)) == 2
    assert events(journal, "bracket_dropped") == []


def test_a_reversal_nothing_shrank_keeps_its_bracket() -> None:
    journal = Journal(":memory:")
    sell = lambda c, b: c.sell("TEST", 1000, stop_loss=105.0, take_profit=90.0)  # noqa: E731
    engine = _engine(journal, sell)
    engine.run(flat_bars([100.0] * 6))
    ((order_id, _, quantity, reduce_only, stop_loss, take_profit),) = _sells(journal)
    assert (quantity, reduce_only, stop_loss, take_profit) == (1000.0, 0, 105.0, 90.0)
    assert engine.position("TEST").quantity == -500.0
    assert len(_children_of(journal, order_id)) == 2
    assert events(journal, "bracket_dropped") == []
