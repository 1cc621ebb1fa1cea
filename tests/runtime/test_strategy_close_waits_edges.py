"""A strategy's close that waits for the venue's cancels, beside what else may close or grow
the same position (review R39).

- A resting sell larger than the position that fills before its cancel lands leaves a short:
  the close, once its wait ends, closes what is held on either side (it closed only the side
  it was asked for, and said "nothing is left").
- On spot, an entry the close cancelled that fills before its cancel lands has its own
  stop-loss and take-profit placed: the close waits for their cancels too before it goes (it
  went beside them, and the take-profit would have sold what the close sold: the double sale).
- A flatten (emergency, a risk plugin's, a refused stop-loss's) that starts while the close
  waits, a resume while both wait, a part fill of the waited order: one close, of what is
  held, never two.

The venue is the paper broker whose cancels take effect when the test answers them
(``SlowCancels``); a subclass whose ``closes_from_balance`` is True acts as spot.
"""

from __future__ import annotations

from pathlib import Path

from tests.runtime.held_closes import SlowCancels, SpotSlowCancels, journaled_events
from tests.runtime.helpers import HOUR, Action, Scripted, bar, flat_bars, start_test_run
from tests.runtime.test_flatten_waits_for_reducing_orders import (
    BARS,
    SYMBOL,
    _buy,
    _long_with_a_resting_sell,
    _slow_engine,
)
from tests.runtime.test_risk_flatten_keeps_stops import PLUGIN, Breaker
from tradefleet_runtime.brackets import STOP_LOSS_TAG
from tradefleet_runtime.capabilities import ActionKind
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    ReasonCode,
    Side,
)
from tradefleet_runtime.spec.model import Mode

LATER = flat_bars([100.0] * 8)


def _close(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close(SYMBOL)


def _rest_a_sell_of_two(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.sell(SYMBOL, 2.0, order_type=OrderType.LIMIT, price=120.0)


def _rest_a_bracketed_buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=95.0, stop_loss=85.0, take_profit=125.0)


def _sells(engine: Engine) -> list[Order]:
    return [o for o in engine.open_orders(SYMBOL) if o.side is Side.SELL]


def _sells_not_guards(engine: Engine) -> float:
    """What the working sells that are no bracket child have left to sell (the closes, a
    resting sell): never more than the long held."""
    return sum(o.quantity for o in _sells(engine) if o.parent_id is None)


def _tags_sent(engine: Engine) -> list[tuple[str, float]]:
    """The closes sent (tagged reduce-only sells; the strategy's resting sell has no tag)."""
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT tag, quantity FROM orders WHERE side = 'sell' AND parent_id IS NULL "
        "AND reduce_only = 1 AND tag != '' ORDER BY rowid"
    )
    return [(str(tag), float(quantity)) for tag, quantity in rows]


def _spot_engine(tmp_path: Path) -> tuple[Engine, SpotSlowCancels]:
    venue = SpotSlowCancels()
    venue.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    actions: dict[int, Action] = {0: _buy, 1: _rest_a_bracketed_buy, 2: _close}
    engine = Engine(config, Scripted(actions=actions), venue, journal, venue=venue)
    return engine, venue


def test_a_resting_sell_past_the_position_that_fills_first_leaves_no_short(
    tmp_path: Path,
) -> None:
    """Long 1, a resting sell of 2 at 120 (the strategy's reversal). The strategy closes: the
    close waits for the sell's cancel; the market trades through 120 before it lands, the sell
    fills whole: short 1. The strategy asked to be flat: the close, once the cancel's answer
    comes, buys the short back (it used to say nothing was left to close, and stay short)."""
    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: _rest_a_sell_of_two, 2: _close})
    engine.run(BARS[:3])
    assert journaled_events(engine, "close_waits")  # the close waits for the sell
    engine.run([bar(3, 100.0, 125.0, 100.0, 121.0)])  # the sell of 2 fills before the cancel
    assert engine.position(SYMBOL).quantity == -1.0
    venue.answer_cancels()
    engine.pump()
    engine.run([bar(i, 121.0, 121.0, 121.0, 121.0) for i in (4, 5, 6)])
    message, _data = journaled_events(engine, "close_waits")[-1]
    assert engine.position(SYMBOL).quantity == 0.0, (
        f"the strategy closed, and holds {engine.position(SYMBOL).quantity} ({message!r})"
    )


def test_on_spot_a_late_entrys_exits_are_waited_for_before_the_close_goes(
    tmp_path: Path,
) -> None:
    """Spot: long 1 with its stop-loss and take-profit, and a resting bracketed buy of 1 at
    95. The strategy closes: the guards' and the buy's cancels are asked; the close waits for
    the guards. The buy fills before its cancel lands (the docs: "an entry whose cancel came
    too late included") and its own stop-loss and take-profit are placed. The guards' cancels
    land: the close cancels the new entry's exits and waits for those cancels too, then
    closes the 2 held (it used to go beside the new take-profit, whose cancel nobody asked:
    on spot nothing caps either sale, 3 sold of the 2 held)."""
    engine, venue = _spot_engine(tmp_path)
    engine.run(BARS[:3])
    [(_message, data)] = journaled_events(engine, "close_waits")
    assert len(data["waiting_for"]) == 2  # type: ignore[arg-type]  # the guards
    engine.run([bar(3, 100.0, 100.0, 94.0, 96.0)])  # the buy fills at 95; the stop at 90 holds
    assert engine.position(SYMBOL).quantity == 2.0
    venue.answer_cancels()
    engine.pump()
    assert [o for o in _sells(engine) if o.tag == "close"] == []  # waits for the new exits
    assert journaled_events(engine, "close_waits")[-1][1]["waiting_for"] == sorted(venue.asked)
    venue.answer_cancels()
    engine.pump()
    [close] = [o for o in _sells(engine) if o.tag == "close"]
    assert close.quantity == 2.0
    beside = sorted(
        o.client_order_id
        for o in _sells(engine)
        if o is not close and o.client_order_id not in venue.asked
    )
    assert beside == [], (
        f"the close of {close.quantity:g} went with {beside} working beside it, their cancel "
        f"never asked, on spot (held {engine.position(SYMBOL).quantity:g})"
    )


def test_an_emergency_flatten_while_the_close_waits_sends_one_close(tmp_path: Path) -> None:
    engine, venue, _sell = _long_with_a_resting_sell(tmp_path)
    engine.strategy.actions[2] = _close  # type: ignore[attr-defined]
    engine.run(BARS[2:3])
    engine.halt("alice", "incident", flatten=True)
    venue.answer_cancels()
    engine.pump()
    assert _sells_not_guards(engine) == 1.0
    assert _tags_sent(engine) == [("emergency-flatten", 1.0)]
    assert "nothing is left" in journaled_events(engine, "close_waits")[-1][0]
    engine.run(LATER[3:5])
    assert engine.position(SYMBOL).quantity == 0.0


def test_a_resume_while_both_wait_leaves_the_strategys_close_alone(tmp_path: Path) -> None:
    engine, venue, _sell = _long_with_a_resting_sell(tmp_path)
    engine.strategy.actions[2] = _close  # type: ignore[attr-defined]
    engine.run(BARS[2:3])
    engine.halt("alice", "incident", flatten=True)
    engine.resume("alice", "false alarm")
    venue.answer_cancels()
    engine.pump()
    assert _tags_sent(engine) == [("close", 1.0)]
    engine.run(LATER[3:5])
    assert engine.position(SYMBOL).quantity == 0.0


def test_a_risk_plugins_flatten_while_the_close_waits_sends_one_close(tmp_path: Path) -> None:
    def rest_a_sell(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.sell(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=120.0)

    venue = SlowCancels()
    venue.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    breaker = Breaker()
    engine = Engine(
        config,
        Scripted(actions={0: _buy, 1: rest_a_sell, 2: _close}),
        venue,
        journal,
        [(PLUGIN, breaker)],
        venue=venue,
        hooks=RiskHooks(actors=[(PLUGIN, breaker)]),
    )
    engine.run(BARS[:3])
    breaker.ask(ActionKind.FLATTEN, SYMBOL)
    engine.run(LATER[3:4])
    assert _tags_sent(engine) == []  # both wait for the sell
    venue.answer_cancels()
    engine.pump()
    assert _tags_sent(engine) == [(f"risk:{PLUGIN}", 1.0)]
    engine.run(LATER[4:6])
    assert engine.position(SYMBOL).quantity == 0.0


def test_a_stop_refused_while_the_close_waits_sends_one_close(tmp_path: Path) -> None:
    engine, venue, _sell = _long_with_a_resting_sell(tmp_path)
    [stop] = [o.client_order_id for o in engine.open_orders(SYMBOL) if o.tag == STOP_LOSS_TAG]
    engine.strategy.actions[2] = _close  # type: ignore[attr-defined]
    engine.run(BARS[2:3])
    refused = OrderUpdate(
        stop, OrderStatus.REJECTED, BARS[2].ts, "crossed", code=ReasonCode.INVALID_PRICE
    )
    venue._queued.append(refused)
    engine.pump()
    venue.answer_cancels()
    engine.pump()
    assert _tags_sent(engine) == [("stop-refused", 1.0)]
    assert _sells_not_guards(engine) <= engine.position(SYMBOL).quantity


def test_a_waited_sell_part_filled_then_cancelled_closes_the_rest(tmp_path: Path) -> None:
    engine, venue, sell = _long_with_a_resting_sell(tmp_path)
    engine.strategy.actions[2] = _close  # type: ignore[attr-defined]
    engine.run(BARS[2:3])
    venue._queued.append(Fill(sell, SYMBOL, Side.SELL, 0.4, 120.0, 0.0, BARS[2].ts, "part"))
    engine.pump()
    assert _tags_sent(engine) == []
    venue.answer_cancels()
    engine.pump()
    [(tag, quantity)] = _tags_sent(engine)
    assert tag == "close" and abs(quantity - 0.6) < 1e-12
    engine.run(LATER[3:5])
    assert engine.position(SYMBOL).quantity == 0.0
