"""A strategy's ``close`` never goes beside another order that would reduce the same position.

``ctx.close(symbol)`` cancels the symbol's working orders (but the position's stop-loss and
take-profit, kept until the close fills) and closes the position at market. A venue confirms
a cancel later than it is asked: a resting sell (the strategy's own exit) that fills before
its cancel lands, beside a close sent at once, closed twice what the bot held — the second
sale opened a short (on spot, which knows no reduce-only, it sold the account's other
coins). Now the close waits for the venue to confirm those cancels (or for the order to end
however it ends) and closes what is left then, never more than was held when the strategy
asked; an order decided meanwhile counts the waiting close as an exit on its way. A
flatten's close on its way is the flatten's: the strategy's close leaves it working and
closes only what it does not.

The venue is the paper broker whose cancels take effect only when the test answers them, as a
real venue's do (``SlowCancels``).
"""

from __future__ import annotations

from pathlib import Path

from tests.runtime.held_closes import HeldCloses, SpotSlowCancels, journaled_events
from tests.runtime.helpers import HOUR, Scripted, bar, start_test_run
from tests.runtime.test_flatten_waits_for_reducing_orders import (
    BARS,
    SYMBOL,
    _buy,
    _closes,
    _long_with_a_resting_sell,
    _slow_engine,
)
from tradefleet_plugins.strategies.external_signal import ExternalSignal
from tradefleet_plugins.strategies.external_signal_params import ExternalSignalParams
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderType
from tradefleet_runtime.service.api import Direction, Signal
from tradefleet_runtime.spec.model import Mode


def _close(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close(SYMBOL)


def _rest_a_sell_of_two(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.sell(SYMBOL, 2.0, order_type=OrderType.LIMIT, price=120.0)


def _close_and_sell_three(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close(SYMBOL)
    ctx.sell(SYMBOL, 3.0)


def test_the_close_waits_for_the_resting_sells_cancel_then_closes(tmp_path: Path) -> None:
    engine, venue, sell = _long_with_a_resting_sell(tmp_path)
    engine.strategy.actions[2] = _close  # type: ignore[attr-defined]
    engine.run(BARS[2:3])
    assert sell in venue.asked
    assert _closes(engine, "close") == []  # nothing sent beside the sell
    [(message, data)] = journaled_events(engine, "close_waits")
    assert data == {"symbol": SYMBOL, "waiting_for": [sell], "tag": "close"}
    assert "waits for the venue to confirm the cancel" in message

    venue.answer_cancels()
    engine.pump()
    [(close_id, quantity)] = _closes(engine, "close")
    assert quantity == 1.0
    # Sent between bars: worked from the next bar that opens after it (not the forming one's).
    engine.run([bar(i, 100.0, 100.0, 100.0, 100.0) for i in (3, 4)])
    assert engine.position(SYMBOL).quantity == 0.0
    # The position's stop-loss and take-profit worked until the close filled (walkthrough
    # W23: a close refused left it bare); then they protect nothing and are cancelled.
    guards = sorted(o.client_order_id for o in engine.open_orders())
    assert len(guards) == 2 and sorted(venue.asked) == guards
    venue.answer_cancels()
    engine.pump()
    assert not engine.open_orders()
    said = journaled_events(engine, "close_waits")[-1]
    assert said[1] == {"symbol": SYMBOL, "ended": [sell], "then": 0} and close_id in said[0]


def test_a_resting_sell_that_fills_before_its_cancel_lands_closes_alone(tmp_path: Path) -> None:
    """The venue fills the resting sell (the market trades through 120) before the cancel is
    heard. On the old code the close had gone at once beside it and filled first: the sell
    then opened a short of 1."""
    engine, venue, _sell = _long_with_a_resting_sell(tmp_path)
    engine.strategy.actions[2] = _close  # type: ignore[attr-defined]
    engine.run(BARS[2:3])
    engine.run([bar(3, 100.0, 125.0, 100.0, 121.0)])  # the sell fills; the cancel comes late
    venue.answer_cancels()
    engine.pump()
    engine.run([bar(4, 121.0, 121.0, 121.0, 121.0)])
    assert engine.position(SYMBOL).quantity == 0.0
    assert _closes(engine, "close") == []
    assert journaled_events(engine, "close_waits")[-1][1]["ended"]
    assert "nothing is left" in journaled_events(engine, "close_waits")[-1][0]


def test_a_close_asked_again_while_it_waits_is_still_one_close(tmp_path: Path) -> None:
    engine, venue, _sell = _long_with_a_resting_sell(tmp_path)
    engine.strategy.actions[2] = _close  # type: ignore[attr-defined]
    engine.strategy.actions[3] = _close  # type: ignore[attr-defined]
    engine.run(BARS[2:4])
    assert _closes(engine, "close") == []
    venue.answer_cancels()
    engine.pump()
    assert [q for _id, q in _closes(engine, "close")] == [1.0]
    engine.run([bar(i, 100.0, 100.0, 100.0, 100.0) for i in (4, 5)])
    assert engine.position(SYMBOL).quantity == 0.0


def _sells_after_the_first_bars(engine: Engine) -> list[tuple[str, float, str]]:
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT side, quantity, tag FROM orders WHERE parent_id IS NULL AND rowid > 4 "
        "ORDER BY rowid"
    )
    return [(str(side), float(quantity), str(tag)) for side, quantity, tag in rows]


def test_the_symbols_next_orders_go_after_the_close_in_their_order(tmp_path: Path) -> None:
    """``close`` + ``sell(3)`` reverses: the sell is held while the close waits and goes after
    it, so it opens all 3 (the close on its way closes the long). Sent before the close, it
    would have closed the long itself, and the close then had nothing to close: short 2."""
    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: _rest_a_sell_of_two})
    engine.run(BARS[:2])
    engine.strategy.actions[2] = _close_and_sell_three  # type: ignore[attr-defined]
    engine.run(BARS[2:3])
    assert _sells_after_the_first_bars(engine) == []  # both held
    venue.answer_cancels()
    engine.pump()
    assert _sells_after_the_first_bars(engine) == [("sell", 1.0, "close"), ("sell", 3.0, "")]
    engine.run([bar(i, 100.0, 100.0, 100.0, 100.0) for i in (3, 4)])
    assert engine.position(SYMBOL).quantity == -3.0
    assert journaled_events(engine, "close_waits")[-1][1]["then"] == 1


def test_an_order_held_behind_the_close_is_decided_when_it_goes(tmp_path: Path) -> None:
    """Halted, a reversal is cut to what the exits working do not close. Held behind the
    waiting close, ``sell(3)`` is decided once the close is on its way: nothing is left for
    it to close, so it is refused whole. Decided before the close went, it would have been cut
    to 1 and sent beside it: twice what was held, once both filled. The resting sell the close
    waits for is of 2 (a reversal, not reduce-only: no exit on its way either)."""
    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: _rest_a_sell_of_two})
    engine.run(BARS[:2])
    engine.halt("alice", "desk closed")
    engine.strategy.actions[2] = _close_and_sell_three  # type: ignore[attr-defined]
    engine.run(BARS[2:3])
    assert _sells_after_the_first_bars(engine) == []
    venue.answer_cancels()
    engine.pump()
    assert _sells_after_the_first_bars(engine) == [("sell", 1.0, "close")]
    [(plugin, action, reason)] = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT plugin, action, reason FROM risk_decisions WHERE quantity_in = 3.0"
    )
    assert (plugin, action) == ("engine.halted", "veto"), reason
    engine.run([bar(i, 100.0, 100.0, 100.0, 100.0) for i in (3, 4)])
    assert engine.position(SYMBOL).quantity == 0.0


def test_a_second_close_drops_the_orders_held_behind_the_first(tmp_path: Path) -> None:
    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: _rest_a_sell_of_two})
    engine.run(BARS[:2])
    engine.strategy.actions[2] = _close_and_sell_three  # type: ignore[attr-defined]
    engine.strategy.actions[3] = _close  # type: ignore[attr-defined]
    engine.run(BARS[2:4])
    dropped = [d for _m, d in journaled_events(engine, "close_waits") if "dropped" in d]
    assert dropped == [{"symbol": SYMBOL, "dropped": 1}]
    venue.answer_cancels()
    engine.pump()
    assert _sells_after_the_first_bars(engine) == [("sell", 1.0, "close")]


class _HeldFlattenCloses(HeldCloses):
    close_tag = "emergency-flatten"


def test_a_flattens_close_on_its_way_is_left_to_it(tmp_path: Path) -> None:
    """An emergency flatten's close is on its way (the venue has not answered it) when the
    strategy closes too. The old code cancelled the flatten's close and sent its own: both
    filled when the cancel came late. Now the flatten's close keeps working and the strategy's
    close sends nothing (the flatten's covers the position)."""
    venue = _HeldFlattenCloses()
    venue.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    engine = Engine(config, Scripted(actions={0: _buy, 2: _close}), venue, journal, venue=venue)
    engine.run(BARS[:2])
    venue.hold = True
    assert engine.halt("alice", "incident", flatten=True)
    [flatten_close] = venue.closes_sent
    engine.run(BARS[2:3])
    assert flatten_close in {o.client_order_id for o in engine.open_orders()}
    assert _closes(engine, "close") == []
    venue.release()
    engine.pump()
    engine.run([bar(3, 100.0, 100.0, 100.0, 100.0)])
    assert engine.position(SYMBOL).quantity == 0.0


def test_with_no_order_to_wait_for_the_close_goes_at_once(tmp_path: Path) -> None:
    """The common case, and every backtest: the guards only (the paper venue caps reduce-only
    orders, so they need no wait), the close is sent in the same bar, as before."""
    engine, _venue = _slow_engine(tmp_path, {0: _buy, 1: _close})
    engine.run(BARS[:2])
    assert [q for _id, q in _closes(engine, "close")] == [1.0]
    assert journaled_events(engine, "close_waits") == []


def test_a_signals_order_held_behind_the_close_is_answered_accepted(tmp_path: Path) -> None:
    """``external-signal`` reverses on an opposite signal with ``close`` + the new entry. The
    close waits for the bracket's cancels (spot), the entry is held: the signal is accepted,
    saying so, with no order id yet; both go once the venue confirmed the cancels."""
    strategy = ExternalSignal(ExternalSignalParams.model_validate({"reverse_on_opposite": True}))
    venue = SpotSlowCancels()
    venue.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 100_000.0))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 100_000.0, equity_chunk=1)
    engine = Engine(config, strategy, venue, journal, venue=venue)
    engine.signals = strategy
    engine.run(BARS[:1])
    buy = Signal(SYMBOL, Direction.BUY, 100.0, stop_loss=90.0, take_profit=110.0, volume=1.0)
    assert engine.handle_signal(buy)[0]
    engine.run(BARS[1:3])
    assert engine.position(SYMBOL).quantity == 1.0
    sell = Signal(SYMBOL, Direction.SELL, 100.0, stop_loss=110.0, take_profit=90.0, volume=1.0)
    accepted, reason, order_id = engine.handle_signal(sell)
    assert accepted and order_id == ""
    assert reason.startswith(f"held behind the strategy's close of {SYMBOL}")
    venue.answer_cancels()
    engine.pump()
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT side, quantity, tag FROM orders WHERE parent_id IS NULL ORDER BY rowid"
    )
    assert [tuple(row) for row in rows] == [
        ("buy", 1.0, "signal"),
        ("sell", 1.0, "signal-reverse"),  # the close, then the entry it was held behind
        ("sell", 1.0, "signal"),
    ]
