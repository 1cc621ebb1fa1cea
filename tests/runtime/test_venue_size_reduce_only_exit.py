"""A reduce-only exit that is no bracket child takes the smaller size its venue reports unasked.

An MT5 netting account knows no reduce-only: the bot's exit rests as a plain pending order,
and MT5 cannot change a pending order's volume. When a person closes part of the position by
hand, the broker cuts the exit by re-placing it for what the position still holds against it
and reports it OPEN, its size noted for ``child_held``. The engine took that size only for
bracket children (``parent_id``): it kept the exit at its old quantity, journaled so, and a
restart then found the venue's smaller order against the journal's larger one. It takes the
size now — only ever smaller: an answer above what is left is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.runtime.helpers import HOUR, Scripted, bar, start_test_run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    CashFlow,
    Fill,
    OrderIntent,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)
from tradefleet_runtime.spec.model import Mode

STOP = 90.0


class CuttingVenue(PaperBroker):
    """A paper venue that, told ``cut``, reports an order OPEN unasked at the next bar with
    what it closes now noted for ``child_held`` (as the MT5 broker reports an exit it
    re-placed smaller)."""

    def __init__(self) -> None:
        super().__init__(PaperBrokerParams())
        self.held: dict[str, float] = {}
        self.due: list[OrderUpdate] = []

    def cut(self, client_order_id: str, held: float, said: str) -> None:
        self.held[client_order_id] = held
        self.due.append(OrderUpdate(client_order_id, OrderStatus.OPEN, 0, said))

    def child_held(self, client_order_id: str) -> float | None:
        return self.held.pop(client_order_id, None)

    def on_bar(self, bar: Bar) -> Sequence[Fill | OrderUpdate | CashFlow]:
        due, self.due = self.due, []
        return [*super().on_bar(bar), *due]


def _engine(journal: Journal) -> tuple[Engine, CuttingVenue]:
    venue = CuttingVenue()
    venue.connect(BrokerContext("bot", Mode.PAPER, ("TEST",), "USD", 10_000.0))
    start_test_run(journal, "run-1")
    exit_stop = OrderIntent("TEST", Side.SELL, 10.0, OrderType.STOP, STOP, reduce_only=True)
    strategy = Scripted({0: lambda c, b: c.buy("TEST", 10.0), 1: lambda c, b: c.submit(exit_stop)})
    config = EngineConfig("bot", "paper", ("TEST",), HOUR, 10_000.0, equity_chunk=1)
    return Engine(config, strategy, venue, journal), venue


def _exit_id(engine: Engine) -> str:
    (exit_order,) = [w.order for w in engine.book if w.order.reduce_only]
    assert exit_order.parent_id is None
    return exit_order.client_order_id


def test_a_reduce_only_exit_the_venue_cut_is_booked_and_journaled_at_its_new_size() -> None:
    journal = Journal(":memory:")
    engine, venue = _engine(journal)
    engine.run([bar(i, 100, 101, 99, 100) for i in range(3)])
    exit_id = _exit_id(engine)
    venue.cut(exit_id, 6.0, "cut from 10 to 6: position 7 holds 6 against it")
    engine.run([bar(3, 100, 101, 99, 100)])
    working = engine.book.get(exit_id)
    assert working is not None
    # Old code: 10.0 — the engine took a venue's size for bracket children only.
    assert working.order.quantity == 6.0
    ((quantity,),) = journal.query("SELECT quantity FROM orders WHERE client_order_id = ?", exit_id)
    assert quantity == 6.0
    reasons = [
        str(r)
        for (r,) in journal.query(
            "SELECT reason FROM order_updates WHERE client_order_id = ?", exit_id
        )
    ]
    assert any(r.startswith("resized from 10 to 6 at the venue: cut from") for r in reasons), (
        reasons
    )


def test_a_venue_size_above_what_is_left_of_a_reduce_only_exit_is_ignored() -> None:
    """Only a child grows back (its entry done); an exit that is no child only shrinks."""
    journal = Journal(":memory:")
    engine, venue = _engine(journal)
    engine.run([bar(i, 100, 101, 99, 100) for i in range(3)])
    exit_id = _exit_id(engine)
    venue.cut(exit_id, 12.0, "held 12")
    engine.run([bar(3, 100, 101, 99, 100)])
    working = engine.book.get(exit_id)
    assert working is not None and working.order.quantity == 10.0
    ((quantity,),) = journal.query("SELECT quantity FROM orders WHERE client_order_id = ?", exit_id)
    assert quantity == 10.0
