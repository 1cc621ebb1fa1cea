"""A moved stop is booked at the price the venue says it holds (``OrderUpdate.price`` on the
broker's "amended" answer), not at the price the bot asked: the book, the journal and a
restart's re-armed stop all follow the venue. Differences are said; an unusable price falls
back to the asked one, said once."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.stop_movers import Mover
from tests.runtime.helpers import HOUR, Scripted, bar, paper_engine, start_test_run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import InstrumentParams, PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.engine.stop_moves import StopHeld, stop_held
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Order, OrderType, OrderUpdate
from tradefleet_runtime.spec.model import Mode

ASKED = 95.0
BOT_TICK = 0.01


# -- the pure rule ---------------------------------------------------------------------------


def test_the_venues_price_is_the_booking() -> None:
    # No word from the venue: the asked price, nothing to say (brokers before 1.16).
    assert stop_held(95.0, None, 90.0, True, 0.01) == StopHeld(95.0)
    # Within half a tick: the same price, booked as the venue says it, unsaid.
    assert stop_held(95.0, 95.004, 90.0, True, 0.01) == StopHeld(95.004)
    # No tick: relative 1e-9.
    assert stop_held(95.0, 95.0 + 1e-8, 90.0, True, 0.0) == StopHeld(95.0 + 1e-8)
    differs = stop_held(95.0, 94.75, 90.0, True, 0.01)
    assert differs == StopHeld(94.75, differs="the venue holds 94.75 where 95 was asked")
    assert stop_held(95.0, 94.9, 90.0, True, 0.0).differs  # no tick: 1e-9 relative
    # More digits than :g's six: a BTC price is shown whole.
    assert stop_held(104_123.5, 104_123.45, 1.0, True, 0.01).differs == (
        "the venue holds 104123.45 where 104123.5 was asked"
    )


def test_a_venue_price_looser_than_the_old_stop_is_booked_and_said_as_wrong_way() -> None:
    held = stop_held(95.0, 89.5, 90.0, True, 0.01)
    assert held.price == 89.5 and held.differs and not held.unusable
    assert held.looser == (
        "the venue holds 89.5 where 95 was asked, looser than the stop 90 it replaced: the "
        "venue moved it the wrong way; booked as the venue holds it"
    )
    # The venue leaving the old stop as it was is no move, not a looser one.
    assert not stop_held(95.0, 90.0, 90.0, True, 0.01).looser
    # A short's stop is looser above.
    assert stop_held(105.0, 110.5, 110.0, False, 0.01).looser
    assert not stop_held(105.0, 105.25, 110.0, False, 0.01).looser


@pytest.mark.parametrize("venue", [math.nan, math.inf, -math.inf, 0.0, -95.0])
def test_a_venue_price_that_is_no_number_falls_back_to_the_asked(venue: float) -> None:
    held = stop_held(95.0, venue, 90.0, True, 0.01)
    assert held.price == 95.0 and not held.differs and not held.looser
    assert "OrderUpdate.price" in held.unusable and "booked the asked 95" in held.unusable


# -- through the engine ----------------------------------------------------------------------


class HoldingBroker(PaperBroker):
    """A venue that holds a moved stop at ``hold(asked)`` and says so in its answer
    (``OrderUpdate.price``): ``said`` is what its answer says it holds (by default what it
    holds; a broken broker may say something else)."""

    def __init__(
        self,
        hold: Callable[[float], float],
        said: Callable[[float], float | None] | None = None,
    ) -> None:
        instrument = InstrumentParams(tick_size=BOT_TICK)
        super().__init__(PaperBrokerParams(default_instrument=instrument))
        self.hold = hold
        self.said = said

    def amend(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> OrderUpdate | None:
        assert price is not None
        held = self.hold(price)
        answer = super().amend(client_order_id, quantity, held)
        assert answer is not None and answer.reason == "amended", answer
        return answer._replace(price=held if self.said is None else self.said(held))


def _engine(journal: Journal, broker: HoldingBroker, prices: dict[int, float]) -> Engine:
    broker.connect(BrokerContext("bot", Mode.PAPER, ("TEST",), "USD", 10_000.0))
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", ("TEST",), HOUR, 10_000.0, equity_chunk=1)
    mover = Mover("TEST", prices)
    hooks = RiskHooks(bar_observers=(("trail", mover),), actors=(("trail", mover),))
    buy = Scripted({0: lambda c, b: c.buy("TEST", 10, stop_loss=90.0)})
    return Engine(config, buy, broker, journal, hooks=hooks)


# Entry at 100 (bar 1's open); the marks stay above 100, so a move to 95 or 96 is allowed.
BARS = [
    bar(0, 100, 100, 100, 100),
    bar(1, 100, 104, 100, 104),
    bar(2, 104, 104, 102, 104),
    bar(3, 104, 105, 103, 104),
]


def _stop(engine: Engine) -> Order:
    [stop] = [o for o in engine.open_orders("TEST") if o.order_type is OrderType.STOP]
    return stop


def _query(journal: Journal, sql: str) -> list[tuple[Any, ...]]:
    return journal.query(sql)


def _events(journal: Journal, kind: str) -> list[str]:
    rows = _query(journal, f"SELECT message FROM events WHERE kind = '{kind}' ORDER BY id")
    return [str(message) for (message,) in rows]


def test_the_stop_is_booked_and_journaled_at_the_venues_price(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    # A venue on a 0.25 tick (the bot's is 0.01) holding 95's move a tick down; 94.9 as asked.
    broker = HoldingBroker(lambda asked: 94.75 if asked == ASKED else asked)
    engine = _engine(journal, broker, {2: ASKED, 3: 94.9})
    engine.run(BARS[:3])
    stop = _stop(engine)
    assert stop.price == 94.75  # the book: what the venue holds, not the 95 asked
    [(price,)] = _query(journal, "SELECT price FROM orders WHERE tag = 'stop_loss'")
    assert price == 94.75
    [(reason,)] = _query(
        journal, "SELECT reason FROM order_updates WHERE reason LIKE 'stop moved%'"
    )
    assert reason == "stop moved from 90 to 94.75 by trail (95 asked)"
    [(action, code, decided)] = _query(
        journal, "SELECT action, code, reason FROM risk_decisions WHERE plugin = 'trail'"
    )
    assert (action, code, decided) == ("approve", "trailing_stop", reason)
    assert _events(journal, "stop_move_venue_price") == [
        f"{stop.client_order_id}: the venue holds 94.75 where 95 was asked"
    ]
    assert _events(journal, "stop_move_wrong_way") == []
    # The next move is judged against what the venue holds: 94.9 tightens 94.75 (against
    # the 95 asked it would be refused as no tightening).
    engine.run(BARS[3:])
    assert _stop(engine).price == 94.9


def test_a_restart_re_arms_the_venues_price(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    first = Journal(path, durable=True)
    engine = _engine(first, HoldingBroker(lambda asked: 94.75), {2: ASKED})
    engine.run(BARS[:3])
    first.close()  # the process dies here

    second = Journal(path, durable=True)
    restarted = paper_engine(second, "run-2", Scripted(), restores_account=True)
    carried = second.carried_state("bot")
    assert carried is not None
    restarted.restore(carried)
    assert _stop(restarted).price == 94.75  # not the 95 asked
    # The re-armed stop works at 94.75: a fall to 94.8 leaves the position open.
    restarted.run([bar(3, 104, 104, 94.8, 95)])
    assert restarted.position("TEST").quantity == 10
    second.close()


def test_a_venue_price_within_half_a_tick_is_booked_unsaid(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    engine = _engine(journal, HoldingBroker(lambda asked: asked + 0.004), {2: ASKED})
    engine.run(BARS[:3])
    assert _stop(engine).price == pytest.approx(95.004)
    assert _events(journal, "stop_move_venue_price") == []
    [(reason,)] = _query(
        journal, "SELECT reason FROM order_updates WHERE reason LIKE 'stop moved%'"
    )
    assert reason == "stop moved from 90 to 95.004 by trail"


def test_a_venue_moving_the_stop_the_wrong_way_is_booked_and_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    engine = _engine(journal, HoldingBroker(lambda asked: 89.5), {2: ASKED})
    with caplog.at_level("WARNING", logger="tradefleet.engine"):
        engine.run(BARS[:3])
    stop = _stop(engine)
    assert stop.price == 89.5  # the venue holds it: the bot does not fight it
    [(price,)] = _query(journal, "SELECT price FROM orders WHERE tag = 'stop_loss'")
    assert price == 89.5
    [warned] = _events(journal, "stop_move_wrong_way")
    assert warned == (
        f"{stop.client_order_id}: the venue holds 89.5 where 95 was asked, looser than the "
        "stop 90 it replaced: the venue moved it the wrong way; booked as the venue holds it"
    )
    assert warned in caplog.text
    assert _events(journal, "stop_move_venue_price") == []  # said once, as the warning


@pytest.mark.parametrize("said", [math.nan, math.inf, 0.0, -1.0])
def test_an_unusable_venue_price_falls_back_to_the_asked_said_once(
    tmp_path: Path, said: float, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    broker = HoldingBroker(lambda asked: asked, said=lambda _held: said)
    engine = _engine(journal, broker, {2: ASKED, 3: 96.0})
    with caplog.at_level("WARNING", logger="tradefleet.engine"):
        engine.run(BARS)
    assert _stop(engine).price == 96.0  # both moves booked at the asked prices
    [(price,)] = _query(journal, "SELECT price FROM orders WHERE tag = 'stop_loss'")
    assert price == 96.0
    reasons = _query(
        journal, "SELECT reason FROM order_updates WHERE reason LIKE 'stop moved%' ORDER BY id"
    )
    assert [r for (r,) in reasons] == [
        "stop moved from 90 to 95 by trail",
        "stop moved from 95 to 96 by trail",
    ]
    [unusable] = _events(journal, "stop_move_price_unusable")  # two moves, said once
    assert f"OrderUpdate.price {said!r}" in unusable and "booked the asked 95" in unusable
    assert unusable in caplog.text
    assert _events(journal, "stop_move_venue_price") == []
