"""A strategy's ``ctx.close`` keeps the position's stop-loss and take-profit until the close
fills (walkthrough W23; review R42): when a kept guard and the close both act on the position.

- A reduce-only order the venue lets go past flat (it checks reduce-only as an order is sent,
  not as it fills) has what it opened closed at market (``reduce_only_past_flat``): the close
  the venue held after the kept stop-loss filled first, or the stop-loss filling after the
  close before its cancel landed. Under a flatten its own rule did this; a strategy's close
  left the bot short what it never asked for.
- Held: in a backtest a gap through the kept stop at the close's open books one exit, one fee;
  a reversal's old guards never act on the new short (a gap, and slow cancels); a held close
  closed again is one close; a close refused for funds leaves the stop working, which then
  protects.

Paper venues from ``tests/runtime/held_closes.py``: the strategy's close held by the venue
(``HeldCloses``, tag "close") and let past flat; cancels answered when the test says
(``SlowCancels``); and the plain backtest paper broker.
"""

from __future__ import annotations

from pathlib import Path

from tests.runtime import held_closes
from tests.runtime.held_closes import (
    SlowCancels,
    bracket_entry,
    journaled_events,
    last_status,
    working_at,
)
from tests.runtime.helpers import HOUR, Action, Scripted, bar, flat_bars, run, start_test_run
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, Order, ReasonCode
from tradefleet_runtime.spec.model import Mode

SYMBOL = "TEST"
BARS = flat_bars([100.0] * 4)


class StrategyHeldCloses(held_closes.HeldCloses):
    close_tag = "close"


def _buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0, stop_loss=90.0, take_profit=110.0)


def _close(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close(SYMBOL)


def _reverse(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close(SYMBOL)
    ctx.sell(SYMBOL, 1.0, stop_loss=110.0, take_profit=70.0)


def _engine(
    tmp_path: Path, broker: held_closes.HeldCloses | SlowCancels, actions: dict[int, Action]
) -> Engine:
    broker.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    return Engine(config, Scripted(actions=actions), broker, journal, venue=broker)


def test_held_close_let_past_flat_after_the_kept_stop_filled_is_closed(
    tmp_path: Path,
) -> None:
    """Long 1, SL 90. The strategy closes; the venue holds the close (PENDING). The market
    falls through 90: the kept stop-loss sells the 1. The venue then takes the held close,
    checking reduce-only only as it was sent: it sells 1 more, a short of 1.

    What went past flat is closed at market, as a flatten's close in the same place is
    (``_close_late_entry``, tests/runtime/test_flatten_keeps_stops.py)."""
    venue = StrategyHeldCloses()
    engine = _engine(tmp_path, venue, {0: _buy, 2: _close})
    engine.run(BARS[:2])
    assert engine.position(SYMBOL).quantity == 1.0
    venue.hold = True
    venue.ignore_reduce_only = True
    engine.run(BARS[2:3])  # the strategy closes: held at the venue
    [close] = venue.closes_sent
    engine.run([bar(3, 100.0, 100.0, 85.0, 88.0)])  # through the kept stop-loss
    venue.release()
    engine.pump()
    engine.run([bar(4, 88.0, 88.0, 88.0, 88.0)])  # the held close fills past flat
    engine.run([bar(5, 88.0, 88.0, 88.0, 88.0)])
    engine.run([bar(6, 88.0, 88.0, 88.0, 88.0)])
    assert last_status(engine, close) == "filled"
    [(message, data)] = journaled_events(engine, "reduce_only_past_flat")
    assert data == {"client_order_id": close, "symbol": SYMBOL, "quantity": 1.0}
    assert "closing it at market" in message
    assert engine.position(SYMBOL).quantity == 0.0, (
        f"the strategy's close went past flat after the kept stop filled and nothing closed "
        f"it: position {engine.position(SYMBOL).quantity}, at the venue {venue.positions()}"
    )


class GuardsReducedAtPlacement(SlowCancels):
    """Cancels answered when the test says; the bracket children (placed by the venue at the
    entry's fill) are reduce-only only as placed: a trigger later fills whole, as on a venue
    whose reduce-only is checked when the order is sent."""

    def _open_bracket(self, parent: Order, quantity: float, bar: Bar, at_open: bool) -> None:
        super()._open_bracket(parent, quantity, bar, at_open)
        for working in self._working.values():
            for i, order in enumerate(working):
                if order.parent_id == parent.client_order_id and order.reduce_only:
                    plain = order._replace(reduce_only=False)
                    working[i] = plain
                    self._by_id[order.client_order_id] = plain


def test_kept_stop_filling_before_its_cancel_lands_after_the_close_is_closed(
    tmp_path: Path,
) -> None:
    """The close fills at the open; the engine then asks the kept guards' cancel (slow). The
    bar falls through 90 before the cancel lands and the stop sells 1 more where reduce-only
    is checked only at placement: short 1. A flatten closes such a fill again; the strategy's
    close must not leave the bot short what it never asked for."""
    venue = GuardsReducedAtPlacement()
    engine = _engine(tmp_path, venue, {0: _buy, 2: _close})
    engine.run(BARS[:2])
    entry = bracket_entry(engine)
    assert engine.position(SYMBOL).quantity == 1.0
    engine.run(BARS[2:3])
    venue.answer_cancels()  # whatever the close asked is answered before the next bar
    engine.pump()
    engine.run([bar(3, 100.0, 100.0, 85.0, 88.0)])  # close at 100, then down through 90
    venue.answer_cancels()
    engine.pump()
    engine.run([bar(4, 88.0, 88.0, 88.0, 88.0)])
    engine.run([bar(5, 88.0, 88.0, 88.0, 88.0)])
    statuses = (last_status(engine, f"{entry}-sl"), last_status(engine, f"{entry}-tp"))
    [(_, data)] = journaled_events(engine, "reduce_only_past_flat")
    assert data["client_order_id"] == f"{entry}-sl" and data["quantity"] == 1.0
    assert engine.position(SYMBOL).quantity == 0.0, (
        f"short after the close: {engine.position(SYMBOL).quantity}; guards {statuses}; "
        f"events {journaled_events(engine, 'flattened')}"
    )


def _trades_of(
    actions: dict[int, Action], bars: list[Bar]
) -> tuple[Engine, list[tuple[str, float, float, float]]]:
    engine, _result = run(Scripted(actions=actions), bars, broker={"fee_bps": 10.0})
    trades = [
        (t.exit_reason, t.quantity, t.exit_price, round(t.fees, 9)) for t in engine.portfolio.trades
    ]
    return engine, trades


def test_backtest_gap_through_the_stop_at_the_closes_open_books_one_exit(
    tmp_path: Path,
) -> None:
    """Backtest: the strategy closes at bar 2's close; bar 3 gaps open at 80, through the kept
    stop at 90. The close (a market order at the open) and the stop both trigger at the open:
    one exit, at the open, one fee, tagged the close; the stop and take-profit cancelled."""
    bars = [*BARS[:3], bar(3, 80.0, 82.0, 78.0, 81.0), bar(4, 81.0, 81.0, 81.0, 81.0)]
    engine, trades = _trades_of({0: _buy, 2: _close}, bars)
    assert engine.position(SYMBOL).quantity == 0.0
    assert len(trades) == 1, trades
    [(reason, quantity, price, fees)] = trades
    assert (reason, quantity, price) == ("close", 1.0, 80.0)
    assert fees == round(1.0 * 100.0 * 0.001 + 1.0 * 80.0 * 0.001, 9)
    assert engine.open_orders() == []
    fills = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT client_order_id FROM fills ORDER BY rowid"
    )
    assert len(fills) == 2  # the entry and the close: nothing twice


def test_backtest_reversal_with_a_gap_through_the_old_stop(tmp_path: Path) -> None:
    """Backtest reversal: ``close`` + ``sell(1)`` with its own SL/TP; bar 3 gaps open at 80,
    through the old long's kept stop at 90. The old stop must not sell on the new short: short
    exactly 1, the new short's stop and take-profit working, the old ones ended."""
    bars = [*BARS[:3], bar(3, 80.0, 82.0, 78.0, 81.0), bar(4, 81.0, 81.0, 81.0, 81.0)]
    engine, trades = _trades_of({0: _buy, 2: _reverse}, bars)
    assert engine.position(SYMBOL).quantity == -1.0
    assert [t[0] for t in trades] == ["close"]
    working = sorted((o.side.value, o.order_type.value, o.price) for o in engine.open_orders())
    assert working == [("buy", "limit", 70.0), ("buy", "stop", 110.0)]


def test_paper_reversal_with_slow_cancels_old_guards_never_act_on_the_short(
    tmp_path: Path,
) -> None:
    """Paper, cancels answered late: ``close`` + ``sell(1)`` (its own SL 110/TP 70). The close
    and the sell fill at bar 3's open (100), the old guards' cancels still unanswered; bar 3
    then trades up through the old take-profit at 110 and down through the old stop at 90.
    Reduce-only at the paper venue's fill: short exactly 1 whatever the old guards do."""
    venue = SlowCancels()
    engine = _engine(tmp_path, venue, {0: _buy, 2: _reverse})
    engine.run(BARS[:3])
    engine.run([bar(3, 100.0, 105.0, 95.0, 100.0)])
    assert engine.position(SYMBOL).quantity == -1.0
    engine.run([bar(4, 100.0, 109.0, 91.0, 100.0)])  # inside both old and new guards
    venue.answer_cancels()
    engine.pump()
    engine.run([bar(5, 100.0, 100.0, 100.0, 100.0)])
    assert engine.position(SYMBOL).quantity == -1.0
    assert not [w for w in working_at(venue) if not w.endswith(("-sl", "-tp"))]
    assert len(engine.open_orders()) == 2
    assert all(o.side.value == "buy" for o in engine.open_orders())


def test_held_close_then_closed_again_is_one_close(tmp_path: Path) -> None:
    """The venue holds the strategy's close (PENDING) and checks reduce-only only as it is
    sent; the strategy closes again at the next bar. One close reaches the venue: the
    second waits for the first's cancel; the first, released, closes the long; flat, never
    short, the kept guards then cancelled."""
    venue = StrategyHeldCloses()
    engine = _engine(tmp_path, venue, {0: _buy, 2: _close, 3: _close})
    engine.run(BARS[:2])
    entry = bracket_entry(engine)
    venue.hold = True
    venue.ignore_reduce_only = True
    engine.run(BARS[2:4])
    assert len(venue.closes_sent) == 1
    assert sorted(working_at(venue)) == [f"{entry}-sl", f"{entry}-tp"]  # guarded meanwhile
    venue.release()
    engine.pump()
    engine.run([bar(i, 100.0, 100.0, 100.0, 100.0) for i in (4, 5, 6)])
    assert len(venue.closes_sent) == 1, venue.closes_sent
    assert engine.position(SYMBOL).quantity == 0.0
    assert not engine.open_orders() and not working_at(venue)
    assert [t.exit_reason for t in engine.portfolio.trades] == ["close"]


def test_close_refused_for_funds_keeps_the_stop_which_then_protects(tmp_path: Path) -> None:
    """The venue refuses the strategy's close (insufficient funds). The position keeps its
    stop-loss and take-profit (working at the venue and in the book); a fall through 90 then
    stops it out at 90, one trade, not left bare. A later close of the flat position sends
    nothing."""
    venue = StrategyHeldCloses(refuse=ReasonCode.INSUFFICIENT_FUNDS)
    engine = _engine(tmp_path, venue, {0: _buy, 2: _close, 4: _close})
    engine.run(BARS[:2])
    entry = bracket_entry(engine)
    engine.run(BARS[2:3])
    [close] = venue.closes_sent
    assert last_status(engine, close) == "rejected"
    assert sorted(working_at(venue)) == [f"{entry}-sl", f"{entry}-tp"]
    assert sorted(o.client_order_id for o in engine.open_orders()) == [
        f"{entry}-sl",
        f"{entry}-tp",
    ]
    engine.run([bar(3, 100.0, 100.0, 85.0, 88.0)])
    engine.run([bar(i, 88.0, 88.0, 88.0, 88.0) for i in (4, 5)])
    assert engine.position(SYMBOL).quantity == 0.0
    assert len(venue.closes_sent) == 1
    [trade] = engine.portfolio.trades
    assert (trade.exit_reason, trade.exit_price) == ("stop_loss", 90.0)
    assert not engine.open_orders() and not working_at(venue)


def test_same_race_under_a_halts_flatten_ends_flat(tmp_path: Path) -> None:
    """The comparison: the same venue and bars, the position closed by an emergency flatten
    (which keeps the guards the same way) instead of the strategy's close: the stop's fill
    past flat is closed again and the bot ends flat."""
    venue = GuardsReducedAtPlacement()
    engine = _engine(tmp_path, venue, {0: _buy})
    engine.run(BARS[:2])
    engine.run(BARS[2:3])
    engine.halt("alice", "incident", flatten=True)
    venue.answer_cancels()
    engine.pump()
    engine.run([bar(3, 100.0, 100.0, 85.0, 88.0)])
    venue.answer_cancels()
    engine.pump()
    engine.run([bar(4, 88.0, 88.0, 88.0, 88.0)])
    venue.answer_cancels()
    engine.pump()
    engine.run([bar(5, 88.0, 88.0, 88.0, 88.0)])
    assert engine.position(SYMBOL).quantity == 0.0
