"""A bracket's stop-loss that ends cancelled without the bot asking (a person at the venue)
while its position is open is said loudly: journaled, logged and on the event stream. The bot
neither places it again nor closes the position; its own cancels and a one-cancels-other
cancel after the take-profit filled say nothing. One that ends while the position's close is on
its way names that close (a venue ends a reduce-only stop with nothing left to reduce)."""

from __future__ import annotations

import logging

import pytest

from tests.runtime.helpers import Scripted, flat_bars, make_engine
from tradefleet_runtime.brackets import STOP_LOSS_TAG
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.model import Order, Side


def _bracketed() -> tuple[Engine, Order]:
    """An engine holding 1 TEST bought at 100 with its stop-loss (90) and take-profit (120)."""
    strategy = Scripted(
        {0: lambda ctx, _bar: ctx.buy("TEST", 1.0, stop_loss=90.0, take_profit=120.0)}
    )
    engine = make_engine(strategy)
    engine.run(iter(flat_bars([100.0, 100.0, 100.0])))
    assert engine.position("TEST").quantity == 1.0
    (stop,) = [o for o in engine.open_orders() if o.tag == STOP_LOSS_TAG]
    return engine, stop


def _events(engine: Engine, kind: str) -> list[str]:
    rows = engine.journal.query("SELECT message FROM events WHERE kind = ?", kind)  # type: ignore[attr-defined]
    return [str(message) for (message,) in rows]


def test_a_stop_loss_cancelled_by_someone_else_is_said_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine, stop = _bracketed()
    # Cancelled at the venue behind the bot's back: the broker reports it as it would from a
    # poll (a venue broker's drained event; the paper broker answers at once).
    update = engine.broker.cancel(stop.client_order_id)
    assert update is not None
    with caplog.at_level(logging.WARNING, logger="tradefleet.engine"):
        engine._on_order_update(update)
    (said,) = _events(engine, "stop_cancelled")
    assert stop.client_order_id in said and "runs without it" in said and "1 TEST" in said
    assert "cancelled outside the bot" in caplog.text
    # Nothing traded for it: the position stays, no new stop.
    assert engine.position("TEST").quantity == 1.0
    assert [o.side for o in engine.open_orders()] == [Side.SELL]  # the take-profit only


def test_the_bots_own_cancel_of_its_stop_says_nothing() -> None:
    engine, stop = _bracketed()
    engine.cancel(stop.client_order_id)
    assert stop.client_order_id not in {o.client_order_id for o in engine.open_orders()}
    assert _events(engine, "stop_cancelled") == []


def test_the_stop_cancelled_because_its_take_profit_filled_says_nothing() -> None:
    engine, _stop = _bracketed()
    engine.run(iter(flat_bars([100.0, 100.0, 100.0, 125.0, 125.0])[3:]))
    assert engine.position("TEST").quantity == 0.0 and not engine.open_orders()
    assert _events(engine, "stop_cancelled") == []


def test_a_stop_ended_while_the_positions_close_is_on_its_way_says_so() -> None:
    """Walkthrough W26: the close filled at the venue, its answer not heard yet, and the venue
    ended the reduce-only stop with nothing left to reduce. Said as what it may be — the close
    on its way, named — not as a position running bare; the event still comes, for a close
    that does not fill."""
    engine, stop = _bracketed()
    engine.ctx.close("TEST")
    engine.send_queued()  # between bars: the close works until the next bar's open
    [close] = [o for o in engine.open_orders() if o.reduce_only and o.parent_id is None]
    update = engine.broker.cancel(stop.client_order_id)
    assert update is not None
    engine._on_order_update(update)
    (said,) = _events(engine, "stop_cancelled")
    assert f"while the position's close {close.client_order_id} is on its way" in said
    assert "if that close does not fill" in said and "runs without it" not in said
