"""What a reduce-only fill takes past flat is closed once per part (review R43).

Paper venues from ``tests/runtime/held_closes.py``, with fills a test hands over itself, in
parts: the strategy's close held by the venue then filled 0.6 + 0.4 after the kept stop-loss
sold the whole long; the kept stop-loss filling 0.5 + 0.5 after the close. Each part is closed
once, for what that part took past flat (0.6 then 0.4; 0.5 then 0.5), whether the first
past-flat close fills before the next part comes or not; flat at the end, nothing working.
"""

from __future__ import annotations

from pathlib import Path

from tests.runtime import held_closes
from tests.runtime.held_closes import AnsweredCancels, journaled_events, working_at
from tests.runtime.helpers import HOUR, Action, Scripted, bar, flat_bars, start_test_run
from tests.runtime.test_strategy_close_guards_kept import _buy, _close
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Fill, Order, Side
from tradefleet_runtime.spec.model import Mode

SYMBOL = "TEST"
BARS = flat_bars([100.0] * 4)


class StrategyHeldCloses(held_closes.HeldCloses):
    close_tag = "close"


class Parted(AnsweredCancels, StrategyHeldCloses):
    """Strategy closes held by the venue (``hold``), cancels answered when the test says, and
    fills the test hands over in parts (``fill_part``), booked into the paper account so the
    venue's own reduce-only check sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = []
        self.parts = 0

    def fill_part(self, order: Order, quantity: float, price: float, ts: int) -> None:
        self.parts += 1
        signed = quantity if order.side is Side.BUY else -quantity
        self._held[order.symbol] = self._held.get(order.symbol, 0.0) + signed
        self._queued.append(
            Fill(
                order.client_order_id,
                order.symbol,
                order.side,
                quantity,
                price,
                0.0,
                ts,
                f"part-{self.parts}",
                "market",
            )
        )

    def take_working(self, client_order_id: str) -> Order:
        """A working order the test fills by hand from now on (the venue no longer matches
        it itself)."""
        order = self._by_id[client_order_id]
        self._drop(order)
        return order


def _engine(tmp_path: Path, venue: Parted, actions: dict[int, Action]) -> Engine:
    venue.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    return Engine(config, Scripted(actions=actions), venue, journal, venue=venue)


def _past_flat_orders(engine: Engine) -> list[tuple[str, float]]:
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT side, quantity FROM orders WHERE tag = 'past-flat' ORDER BY rowid"
    )
    return [(str(side), round(float(quantity), 9)) for side, quantity in rows]


def _ts(i: int) -> int:
    return bar(i, 1, 1, 1, 1).ts


def _held_close_after_the_stop(tmp_path: Path) -> tuple[Engine, Parted, Order]:
    """Long 1 (SL 90); the strategy's close held by the venue; a bar through 90 fills the
    kept stop-loss: the engine is flat, the venue still holds the close."""
    venue = Parted()
    engine = _engine(tmp_path, venue, {0: _buy, 2: _close})
    engine.run(BARS[:2])
    venue.hold = True
    engine.run(BARS[2:3])
    [close] = venue.held
    engine.run([bar(3, 100.0, 100.0, 85.0, 88.0)])
    assert engine.position(SYMBOL).quantity == 0.0
    return engine, venue, close


def test_close_filled_in_two_parts_after_the_stop_is_closed_per_part(tmp_path: Path) -> None:
    """The stop sold the 1; the held close then fills 0.6 and 0.4 (reduce-only only at
    placement), both reported before the first past-flat close fills. Held: two closes, 0.6
    and 0.4 (one per part, never the whole again), and flat once they fill."""
    engine, venue, close = _held_close_after_the_stop(tmp_path)
    venue.fill_part(close, 0.6, 88.0, _ts(3) + 60)
    venue.fill_part(close, 0.4, 88.0, _ts(3) + 120)
    engine.pump()
    assert engine.position(SYMBOL).quantity == -1.0
    assert _past_flat_orders(engine) == [("buy", 0.6), ("buy", 0.4)]
    engine.run([bar(i, 88.0, 88.0, 88.0, 88.0) for i in (4, 5)])
    assert engine.position(SYMBOL).quantity == 0.0
    assert _past_flat_orders(engine) == [("buy", 0.6), ("buy", 0.4)]
    assert [d["quantity"] for _, d in journaled_events(engine, "reduce_only_past_flat")] == [
        0.6,
        0.4,
    ]
    assert not engine.open_orders() and not working_at(venue)


def test_close_part_after_the_first_past_flat_close_filled(tmp_path: Path) -> None:
    """As above, but the first past-flat close (0.6) fills before the close's second part
    (0.4) is reported: the second is closed for 0.4, not for what the position shows past
    the first's fill."""
    engine, venue, close = _held_close_after_the_stop(tmp_path)
    venue.fill_part(close, 0.6, 88.0, _ts(3) + 60)
    engine.pump()
    engine.run([bar(i, 88.0, 88.0, 88.0, 88.0) for i in (4, 5)])  # the 0.6 buy-back fills
    assert engine.position(SYMBOL).quantity == 0.0
    venue.fill_part(close, 0.4, 88.0, _ts(5) + 60)
    engine.pump()
    engine.run([bar(i, 88.0, 88.0, 88.0, 88.0) for i in (6, 7)])
    assert _past_flat_orders(engine) == [("buy", 0.6), ("buy", 0.4)]
    assert engine.position(SYMBOL).quantity == 0.0
    assert not engine.open_orders() and not working_at(venue)


def test_kept_stop_filled_in_parts_after_the_close(tmp_path: Path) -> None:
    """The close fills the 1 at bar 3's open; the kept stop-loss's cancel is not answered yet
    and the stop (reduce-only only at placement) fills 0.5 and 0.5. Held: closed 0.5 and 0.5,
    flat after."""
    venue = Parted()
    engine = _engine(tmp_path, venue, {0: _buy, 2: _close})
    engine.run(BARS[:3])
    engine.run([bar(3, 100.0, 100.0, 100.0, 100.0)])  # the close fills at the open
    assert engine.position(SYMBOL).quantity == 0.0
    [stop_id] = [o for o in working_at(venue) if o.endswith("-sl")]
    stop = venue.take_working(stop_id)
    venue.fill_part(stop, 0.5, 90.0, _ts(3) + 60)
    engine.pump()
    venue.fill_part(stop, 0.5, 90.0, _ts(3) + 120)
    engine.pump()
    venue.answer_cancels()
    engine.pump()
    engine.run([bar(i, 90.0, 90.0, 90.0, 90.0) for i in (4, 5)])
    assert _past_flat_orders(engine) == [("buy", 0.5), ("buy", 0.5)]
    assert engine.position(SYMBOL).quantity == 0.0
