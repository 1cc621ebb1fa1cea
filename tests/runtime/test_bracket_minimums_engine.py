"""The engine's order path and a bracket's children at the venue's minimums.

Before it leaves, an entry whose stop-loss or take-profit the venue would refuse once it filled
is refused (``engine.instrument``, journaled and counted): the children close what the position
will hold — less a fee the broker says its venue keeps in the coin bought (``CoinFees``) — and
are valued at their own prices. A position left bare anyway (the venue refused its stop-loss)
is closed as a flatten closes: a close refused in turn is never silent — below the minimum it
is a close stuck for a person (``closes_stuck``), told what to do; refused by the venue for a
passing reason it is sent again; and a restart says it again.

The venue is the paper broker (``SYMBOL`` with a minimum notional of 95), whose stop-losses a
subclass refuses as a venue does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.held_closes import journaled_events
from tests.runtime.helpers import HOUR, Action, Scripted, bar, flat_bars, start_test_run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.brackets import STOP_LOSS_TAG
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Order,
    OrderStatus,
    OrderUpdate,
    ReasonCode,
    Side,
)
from tradefleet_runtime.spec.model import Mode

SYMBOL = "TEST"
MINIMUM = {"instruments": {SYMBOL: {"min_notional": 95.0, "lot_step": 0.01}}}
ADVICE = "below the venue's minimum notional 95: close at the venue by hand or add to the position"


class CoinFeeVenue(PaperBroker):
    """The paper venue keeping ``rate`` of a buy in the coin bought (as Binance spot does)."""

    def __init__(self, rate: float) -> None:
        super().__init__(PaperBrokerParams.model_validate(MINIMUM))
        self.rate = rate

    def coin_fee_rate(self, symbol: str) -> float:
        return self.rate


class RefusesStops(PaperBroker):
    """The paper venue refusing every bracket's stop-loss as a venue does ("would immediately
    trigger"), answered as an event; its take-profit works. ``answer`` answers the bot's closes
    of the refused stops' positions: None lets them through, a code refuses them."""

    def __init__(self) -> None:
        super().__init__(PaperBrokerParams.model_validate(MINIMUM))
        self.answer: ReasonCode | None = None
        self.closes: list[str] = []

    def _work(self, order: Order) -> None:
        if order.tag == STOP_LOSS_TAG and order.parent_id is not None:
            self._queued.append(
                OrderUpdate(
                    order.client_order_id,
                    OrderStatus.REJECTED,
                    self._now,
                    "Order would immediately trigger.",
                    code=ReasonCode.INVALID_STOPS,
                )
            )
            return
        super()._work(order)

    def submit(self, order: Order) -> OrderUpdate:
        if order.tag != "stop-refused":
            return super().submit(order)
        self.closes.append(order.client_order_id)
        if self.answer is None:
            return super().submit(order)
        return OrderUpdate(
            order.client_order_id,
            OrderStatus.REJECTED,
            order.created_ts,
            "the venue said no",
            code=self.answer,
        )


def _engine(path: Path, broker: PaperBroker, actions: dict[int, Action]) -> Engine:
    broker.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(path)
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    return Engine(config, Scripted(actions=actions), broker, journal, venue=broker)


def _buy(stop: float, quantity: float = 1.0) -> Action:
    def buy(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.buy(SYMBOL, quantity, stop_loss=stop, take_profit=110.0)

    return buy


def _vetoes(engine: Engine) -> list[tuple[str, str, str]]:
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT plugin, code, reason FROM risk_decisions WHERE action = 'veto' ORDER BY id"
    )
    return [(str(plugin), str(code), str(reason)) for plugin, code, reason in rows]


def _orders(engine: Engine) -> int:
    [(count,)] = engine.journal.query("SELECT COUNT(*) FROM orders")  # type: ignore[attr-defined]
    return int(count)


def test_an_entry_whose_stop_is_under_the_minimum_never_leaves(tmp_path: Path) -> None:
    """1 at 100 is over the minimum of 95; its stop-loss at 90 (1 × 90) is not."""
    engine = _engine(
        tmp_path / "j.sqlite",
        PaperBroker(PaperBrokerParams.model_validate(MINIMUM)),
        {0: _buy(90.0)},
    )
    engine.run(flat_bars([100.0] * 3))
    assert engine.position(SYMBOL).quantity == 0.0
    assert _orders(engine) == 0
    assert engine.stats.vetoes == {("engine.instrument", "below_min_notional"): 1}
    assert _vetoes(engine) == [
        (
            "engine.instrument",
            "below_min_notional",
            "its stop-loss at 90 could not be placed once the entry fills: notional 90 "
            "(1 × 90) is below TEST's minimum notional 95",
        )
    ]


def test_an_entry_whose_children_pass_trades_as_before(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path / "j.sqlite",
        PaperBroker(PaperBrokerParams.model_validate(MINIMUM)),
        {0: _buy(96.0)},
    )
    engine.run(flat_bars([100.0] * 3))
    assert engine.position(SYMBOL).quantity == 1.0
    assert sorted(o.tag for o in engine.open_orders()) == ["stop_loss", "take_profit"]
    assert _vetoes(engine) == []


@pytest.mark.parametrize(("rate", "sent"), [(0.0, True), (0.01, True), (0.02, False)])
def test_the_coin_fee_the_broker_tells_is_counted(tmp_path: Path, rate: float, sent: bool) -> None:
    """A stop-loss at 96: 0.99 held (1 less 1 %) × 96 = 95.04 passes; 0.98 × 96 = 94.08 not."""
    engine = _engine(tmp_path / "j.sqlite", CoinFeeVenue(rate), {0: _buy(96.0)})
    engine.run(flat_bars([100.0] * 2))
    assert engine.stats.orders == (1 if sent else 0)
    if not sent:
        [(_, code, reason)] = _vetoes(engine)
        assert code == "below_min_notional"
        assert "hold 0.98 (1 less the venue's 2% fee taken in the coin bought" in reason


def _bare(tmp_path: Path, close: float) -> tuple[Engine, RefusesStops]:
    """Long 1 bought at 100, its stop-loss at 96 refused by the venue, the bar closing at
    ``close`` when the refusal is heard: (engine, venue)."""
    venue = RefusesStops()
    engine = _engine(tmp_path / "j.sqlite", venue, {0: _buy(96.0)})
    engine.run([bar(0, 100.0, 100.0, 100.0, 100.0), bar(1, 100.0, 100.0, close, close)])
    assert engine.position(SYMBOL).quantity == 1.0
    return engine, venue


def test_a_bare_position_whose_close_is_under_the_minimum_is_a_close_stuck(
    tmp_path: Path,
) -> None:
    engine, venue = _bare(tmp_path, 94.0)
    engine.pump()  # the stop-loss's refusal: the close of 1 at 94 is under 95
    assert venue.closes == []
    assert engine.open_orders() == []  # its take-profit cancelled: nothing protects it
    assert engine.closes_stuck() == {SYMBOL: ("below_min_notional", 1.0)}
    [(refused, _)] = journaled_events(engine, "stop_refused")
    assert "the venue refused the stop-loss (Order would immediately trigger.)" in refused
    [(failed, data)] = journaled_events(engine, "flatten_failed")
    assert ADVICE in failed and "no stop-loss protects it" in failed
    assert data["by"] == "stop-refused"
    owed = engine.journal.closes_owed(engine.config.bot_name)  # type: ignore[attr-defined]
    assert owed == {SYMBOL: ("stop-refused", "below_min_notional")}
    engine.run([bar(2, 94.0, 94.0, 94.0, 94.0)])
    assert venue.closes == []  # not sent again
    assert engine.closes_stuck() == {SYMBOL: ("below_min_notional", 1.0)}


def test_a_person_adding_to_the_position_ends_the_stuck_close(tmp_path: Path) -> None:
    engine, _venue = _bare(tmp_path, 94.0)
    engine.pump()
    assert SYMBOL in engine.closes_stuck()
    more = Fill("outside-1", SYMBOL, Side.BUY, 1.0, 94.0, 0.0, engine.now, "outside-1")
    engine.portfolio.apply(more)
    assert engine.closes_stuck() == {}


def test_a_bare_position_over_the_minimum_is_closed(tmp_path: Path) -> None:
    engine, venue = _bare(tmp_path, 99.0)
    engine.pump()
    assert len(venue.closes) == 1
    engine.run([bar(2, 99.0, 99.0, 99.0, 99.0)])
    assert engine.position(SYMBOL).quantity == 0.0
    assert engine.closes_stuck() == {}
    assert engine.journal.closes_owed(engine.config.bot_name) == {}  # type: ignore[attr-defined]
    [trade] = engine.portfolio.trades
    assert trade.exit_reason == "stop-refused"


def test_a_close_the_venue_refuses_for_good_is_a_close_stuck(tmp_path: Path) -> None:
    engine, venue = _bare(tmp_path, 99.0)
    venue.answer = ReasonCode.VENUE_REJECTED
    engine.pump()
    assert len(venue.closes) == 1
    assert engine.closes_stuck() == {SYMBOL: ("venue_rejected", 1.0)}
    [(failed, _)] = journaled_events(engine, "flatten_failed")
    assert "tradefleet stop --flatten, or at the venue" in failed


def test_a_close_the_venue_refuses_for_a_passing_reason_is_sent_again(tmp_path: Path) -> None:
    engine, venue = _bare(tmp_path, 99.0)
    venue.answer = ReasonCode.VENUE_UNAVAILABLE
    engine.pump()
    assert engine.closes_stuck() == {}
    venue.answer = None
    engine.run([bar(2, 99.0, 99.0, 99.0, 99.0), bar(3, 99.0, 99.0, 99.0, 99.0)])
    assert len(venue.closes) == 2
    assert engine.position(SYMBOL).quantity == 0.0


def test_a_restart_says_the_stuck_close_again(tmp_path: Path) -> None:
    engine, _venue = _bare(tmp_path, 94.0)
    engine.pump()
    owed = engine.journal.closes_owed(engine.config.bot_name)  # type: ignore[attr-defined]
    later = _engine(tmp_path / "j2.sqlite", RefusesStops(), {})
    later.portfolio.apply(Fill("entry", SYMBOL, Side.BUY, 1.0, 100.0, 0.0, 0, "e-1"))
    assert later.resume_closes(owed) == []
    assert later.closes_stuck() == {SYMBOL: ("below_min_notional", 1.0)}
    [(message, _)] = journaled_events(later, "close_owed")
    assert message.startswith("the close after a refused stop-loss: ")
    assert ADVICE in message
