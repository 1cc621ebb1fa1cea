"""A native trailing stop (a risk plugin's MOVE_STOP) through the MT5 broker on the emulated
terminal, netting and hedging.

On MT5 a bracket's stop-loss is the position's SL attribute: the move is a TRADE_ACTION_SLTP
request on the position's ticket, answered "amended" as an event. A move the broker or the
terminal refuses (inside the symbol's stops level, a retcode) leaves the SL where it was.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.brokers.mt5.harness import Mt5Harness, live_engine, minute_bar, settle_and_pump
from tests.brokers.stop_movers import Mover
from tests.runtime.helpers import Action, Scripted
from tests.venues.mt5.constants import TRADE_ACTION_SLTP
from tests.venues.mt5.faults import UnknownOutcome
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import OrderType

SL, MOVED = 1.0950, 1.0980
MODES = ["netting", "hedging"]


def _bot(
    margin_mode: str, mover: Mover, stops_level: int = 0, **symbol: Any
) -> tuple[Mt5Harness, Engine]:
    """A live bot long 10,000 EURUSD at 1.1 with SL 1.0950 on the terminal's position;
    ``symbol``: more of the emulator's EURUSD fields (``held_stops_level``)."""
    venue = Mt5Harness.build(margin_mode, transport="direct")
    venue.symbols = ("EURUSD",)
    venue.terminal.update_symbol("EURUSD", trade_stops_level=stops_level, **symbol)
    venue.connect()
    buy: Action = lambda ctx, bar: ctx.buy("EURUSD", 10_000.0, stop_loss=SL)  # noqa: E731
    engine, journal = live_engine(venue, Scripted({0: buy}))
    # live_engine gives no hooks: the same engine with the mover as an acting risk plugin.
    config = EngineConfig(venue.bot, "live", ("EURUSD",), 60, 10_000.0)
    hooks = RiskHooks(bar_observers=(("trail", mover),), actors=(("trail", mover),))
    engine = Engine(config, engine.strategy, venue.broker, journal, venue=venue.broker, hooks=hooks)
    engine.run([minute_bar(0, 1.1)])
    for _ in range(3):
        settle_and_pump(engine, venue)
    [position] = venue.terminal.positions_get() or ()
    assert position.sl == SL
    return venue, engine


def _stop_price(engine: Engine) -> float | None:
    [stop] = [o for o in engine.open_orders() if o.order_type is OrderType.STOP]
    return stop.price


def _decisions(engine: Engine) -> list[tuple[Any, ...]]:
    journal: Journal = engine.journal  # type: ignore[assignment]
    return journal.query(
        "SELECT action, code, reason FROM risk_decisions WHERE plugin = 'trail' ORDER BY id"
    )


def _journaled_price(engine: Engine) -> float:
    journal: Journal = engine.journal  # type: ignore[assignment]
    [(price,)] = journal.query("SELECT price FROM orders WHERE tag = 'stop_loss'")
    return float(price)


def _move(engine: Engine, venue: Mt5Harness, close: float = 1.1) -> None:
    engine.run([minute_bar(1, close)])  # the plugin asks its move after this bar
    for _ in range(3):
        settle_and_pump(engine, venue)


@pytest.mark.parametrize("margin_mode", MODES)
def test_a_moved_stop_is_the_positions_sl_and_closes_it_there(margin_mode: str) -> None:
    venue, engine = _bot(margin_mode, Mover("EURUSD", {1: MOVED}))
    try:
        _move(engine, venue)
        [position] = venue.terminal.positions_get() or ()
        assert position.sl == MOVED
        assert _stop_price(engine) == pytest.approx(MOVED)
        assert _journaled_price(engine) == pytest.approx(MOVED)
        [(action, code, reason)] = _decisions(engine)
        assert (action, code) == ("approve", "trailing_stop")
        assert reason == f"stop moved from {SL:g} to {MOVED:g} by trail"

        # A fast fall through the moved SL (above the old one) closes the position there.
        venue.terminal.set_price("EURUSD", 1.0980)
        for _ in range(3):
            settle_and_pump(engine, venue)
        assert venue.terminal.positions_get() == ()
        [trade] = engine.portfolio.trades
        assert trade.exit_reason == "stop_loss" and trade.exit_price == pytest.approx(MOVED)
    finally:
        venue.close()


def _sent_sltp(venue: Mt5Harness, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The TRADE_ACTION_SLTP requests the broker sends from now on."""
    terminal = venue.terminal
    send = terminal.order_send
    sent: list[dict[str, Any]] = []

    def recording(request: dict[str, Any]) -> Any:
        if request.get("action") == TRADE_ACTION_SLTP:
            sent.append(dict(request))
        return send(request)

    monkeypatch.setattr(terminal, "order_send", recording)
    return sent


def _refused_and_still_protected(engine: Engine, venue: Mt5Harness, words: str) -> None:
    [position] = venue.terminal.positions_get() or ()
    assert position.sl == SL
    assert _stop_price(engine) == SL and _journaled_price(engine) == SL
    [(action, code, reason)] = _decisions(engine)
    assert (action, code) == ("veto", "stop_move_refused_by_broker")
    assert words in reason, reason
    assert engine.stats.vetoes[("trail", "stop_move_refused_by_broker")] == 1
    journal: Journal = engine.journal  # type: ignore[assignment]
    statuses = dict(journal.order_statuses())
    assert statuses[_stop_id(engine)] == "open"
    # The old SL still closes the position.
    venue.terminal.set_price("EURUSD", 1.0940)
    for _ in range(3):
        settle_and_pump(engine, venue)
    assert venue.terminal.positions_get() == ()
    [trade] = engine.portfolio.trades
    assert trade.exit_reason == "stop_loss" and trade.exit_price == pytest.approx(1.0940)


def _stop_id(engine: Engine) -> str:
    [stop] = [o for o in engine.open_orders() if o.order_type is OrderType.STOP]
    return stop.client_order_id


@pytest.mark.parametrize("margin_mode", MODES)
def test_a_move_inside_the_stops_level_is_refused_and_the_sl_stays(
    margin_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 points (0.0005) of stops level: 1.0999 is 0.0001 under the bid; the broker names the
    level and sends nothing."""
    venue, engine = _bot(margin_mode, Mover("EURUSD", {1: 1.0999}), stops_level=50)
    try:
        sent = _sent_sltp(venue, monkeypatch)
        _move(engine, venue)
        assert sent == []
        _refused_and_still_protected(engine, venue, "amend refused")
    finally:
        venue.close()


@pytest.mark.parametrize("margin_mode", MODES)
@pytest.mark.parametrize("fault", [10016, 10021, UnknownOutcome(10031, executed=False)], ids=str)
def test_a_move_the_terminal_refuses_is_refused_and_the_sl_stays(
    margin_mode: str, fault: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue, engine = _bot(margin_mode, Mover("EURUSD", {1: MOVED}))
    try:
        sent = _sent_sltp(venue, monkeypatch)
        venue.terminal.faults.script("order_send", [fault])
        _move(engine, venue)
        assert [r["sl"] for r in sent] == [MOVED]
        _refused_and_still_protected(engine, venue, "amend refused")
    finally:
        venue.close()


@pytest.mark.parametrize("margin_mode", MODES)
@pytest.mark.parametrize("retcode", [10012, 10031])
def test_a_move_whose_answer_is_lost_after_it_landed_is_booked(
    margin_mode: str, retcode: int
) -> None:
    """The terminal moved the SL but its answer was lost (a timeout after it executed): the
    broker reads the position again, finds the new SL and says amended. Before, it said
    refused and the bot's book and journal kept 1.0950 while the position's SL was 1.0980."""
    venue, engine = _bot(margin_mode, Mover("EURUSD", {1: MOVED}))
    try:
        venue.terminal.faults.script("order_send", [UnknownOutcome(retcode, executed=True)])
        _move(engine, venue)
        [position] = venue.terminal.positions_get() or ()
        assert position.sl == MOVED
        assert _stop_price(engine) == pytest.approx(MOVED)
        assert _journaled_price(engine) == pytest.approx(MOVED)
        [(action, code, _reason)] = _decisions(engine)
        assert (action, code) == ("approve", "trailing_stop")
    finally:
        venue.close()
