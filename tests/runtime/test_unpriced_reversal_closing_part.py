"""Between bars, a market reversal the broker cannot price still closes its position.

A market entry decided between bars (a signal, a control call, ``send_queued``) is sized at the
broker's current price (``Engine._quote_entry``); with none usable it is refused
(``engine.price``). A reversal (long 10, sell 25) was refused whole there: the position the
strategy wanted closed stayed open. Now only what it opens is refused: the closing part goes
reduce-only, without its bracket, sized on nothing — the shrink journaled and counted as
``engine.price``'s, the way the gate's cut is (``risk_driver.gate_cut``). Under a halt or a risk
lock the gate decides first, as at a bar (no price is asked for what it cuts to an exit), and a
pause still refuses the whole order.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.runtime.helpers import Scripted, flat_bars
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_driver import closing_cut, gate_cut, unpriced_cut
from tradefleet_runtime.engine.risk_snapshot import NO_CURRENT_PRICE, PRICE_OFF_CLOSE
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Order, OrderIntent, OrderType, RiskAction, RiskDecision, Side
from tradefleet_runtime.spec.model import Mode

CLOSE = 100.0
HOUR = 3600
_NO_PRICE = (
    "no current price to sell TEST from the broker (the last close, 100, is up to a bar old): a "
    "market entry is not sized on a stale price; send it again, or as a limit order"
)
_CUT = "; the sell of 25 cut to the 10 closing the TEST position, sent reduce-only"


class QuotingPaper(PaperBroker):
    """The paper broker answering ``market_price`` with ``quote`` (an exception is raised)."""

    def __init__(self) -> None:
        super().__init__(PaperBrokerParams.model_validate({}))
        self.quote: object = CLOSE
        self.asked: list[tuple[str, Side]] = []
        self.sent: list[Order] = []

    def market_price(self, symbol: str, side: Side) -> float | None:
        self.asked.append((symbol, side))
        if isinstance(self.quote, Exception):
            raise self.quote
        return self.quote  # type: ignore[return-value]  # a broker's wrong answers too

    def submit(self, order: Order) -> Any:
        self.sent.append(order)
        return super().submit(order)


def _engine(long: float = 10.0) -> tuple[Engine, QuotingPaper, Journal]:
    """A live bot on a quoting paper broker, long ``long`` TEST at 100 (0: flat), between two
    bars; nothing asked or sent yet as far as the test sees."""
    broker = QuotingPaper()
    broker.connect(BrokerContext("unpriced", Mode.BACKTEST, ("TEST",), "USD", 10_000.0))
    journal = Journal(":memory:")
    journal.start_run(
        run_id="test",
        bot="unpriced",
        mode="live",
        currency="USD",
        initial_capital=10_000.0,
        timeframe_s=HOUR,
        config_hash="x",
        manifest={},
    )
    actions = {0: lambda c, b: c.buy("TEST", long)} if long else {}
    config = EngineConfig("unpriced", "live", ("TEST",), HOUR, 10_000.0)
    engine = Engine(config, Scripted(actions), broker, journal, [])
    engine.run(flat_bars([CLOSE] * 3))
    assert engine.position("TEST").quantity == long
    broker.asked, broker.sent = [], []
    return engine, broker, journal


def _send(engine: Engine, *intents: tuple[float, dict[str, Any]]) -> None:
    """Queue market sells of each (quantity, keywords) between bars and send them."""
    with engine.between_bars():
        for quantity, keywords in intents:
            engine.ctx.sell("TEST", quantity, **keywords)
        engine.send_queued()


def _decisions(journal: Journal) -> list[tuple[Any, ...]]:
    """(plugin, action, quantity in, quantity out, reason, code) of every decision on a sell."""
    return [
        tuple(row)
        for row in journal.query(
            "SELECT plugin, action, quantity_in, quantity_out, reason, code FROM risk_decisions"
            " WHERE side = 'sell' ORDER BY id"
        )
    ]


def _sent(broker: QuotingPaper) -> list[tuple[Side, float, bool, float | None, float | None]]:
    return [(o.side, o.quantity, o.reduce_only, o.stop_loss, o.take_profit) for o in broker.sent]


def _after_next_bars(engine: Engine) -> list[float]:
    """Run two more bars; the position after each fill of the run, from the strategy's fills."""
    engine.run(flat_bars([CLOSE] * 5)[3:])
    held, after = 0.0, []
    strategy = engine.strategy
    assert isinstance(strategy, Scripted)
    for fill in strategy.fills:
        held += fill.quantity if fill.side is Side.BUY else -fill.quantity
        after.append(held)
    return after


def _events(journal: Journal, kind: str) -> list[str]:
    return [str(m) for (m,) in journal.query("SELECT message FROM events WHERE kind = ?", kind)]


# -- the engine, not halted ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quote", "reason", "code"),
    [
        (None, _NO_PRICE, NO_CURRENT_PRICE),
        (RuntimeError("venue down"), _NO_PRICE, NO_CURRENT_PRICE),
        (
            120.0,
            "the current price to sell TEST, 120, is 20.0% from its last close 100, more than "
            "10%: a bad price, or a market that ran away from what the order was decided on; a "
            "market entry is sized on neither (send it again once a bar closed there, or as a "
            "limit order)",
            PRICE_OFF_CLOSE,
        ),
    ],
    ids=["none", "raises", "off-close"],
)
def test_an_unpriced_reversal_sends_its_closing_part_reduce_only(
    quote: object, reason: str, code: str
) -> None:
    """Before: the whole sell of 25 was vetoed by ``engine.price`` and the long stayed open."""
    engine, broker, journal = _engine()
    broker.quote = quote
    _send(engine, (25.0, {}))
    assert broker.asked == [("TEST", Side.SELL)]
    assert _decisions(journal) == [("engine.price", "shrink", 25.0, 10.0, reason + _CUT, code)]
    assert _sent(broker) == [(Side.SELL, 10.0, True, None, None)]
    assert engine.stats.risk_decisions[("engine.price", "shrink")] == 1  # counted
    assert ("engine.price", "veto") not in engine.stats.risk_decisions
    assert not engine.stats.vetoes
    assert _after_next_bars(engine) == [10.0, 0.0]  # closed, never short


def test_an_unpriced_reversals_bracket_is_dropped_and_said() -> None:
    engine, broker, journal = _engine()
    broker.quote = None
    _send(engine, (25.0, {"stop_loss": 105.0, "take_profit": 90.0}))
    assert _sent(broker) == [(Side.SELL, 10.0, True, None, None)]
    [message] = _events(journal, "bracket_dropped")
    assert "its stop-loss and take-profit dropped: the order only closes" in message
    assert "the sell of 25 was cut to the 10 closing the TEST position" in message
    assert _after_next_bars(engine) == [10.0, 0.0]
    assert journal.query("SELECT COUNT(*) FROM orders WHERE parent_id IS NOT NULL") == [(0,)]
    assert not engine.open_orders("TEST")


def test_the_closing_part_is_what_working_exits_leave() -> None:
    """A resting reduce-only exit of 6 works: the sell of 25 goes as the 4 it leaves."""
    engine, broker, journal = _engine()
    broker.quote = None
    _send(engine, (6.0, {"order_type": OrderType.LIMIT, "price": 150.0}), (25.0, {}))
    cut = "; the sell of 25 cut to the 4 closing the TEST position, sent reduce-only"
    assert _decisions(journal)[-1] == (
        "engine.price",
        "shrink",
        25.0,
        4.0,
        _NO_PRICE + cut,
        NO_CURRENT_PRICE,
    )
    assert _sent(broker) == [(Side.SELL, 6.0, True, None, None), (Side.SELL, 4.0, True, None, None)]


def test_a_second_send_of_the_same_reversal_closes_nothing_twice() -> None:
    """The retry gets a new client order id (the bar's sequence goes on), so no id stops it:
    the working closing part does (``reducible`` nets it out), and the retry opens nothing
    unpriced — it is vetoed whole. A ``send_queued`` with nothing queued sends nothing."""
    engine, broker, journal = _engine()
    broker.quote = None
    _send(engine, (25.0, {}))
    _send(engine, (25.0, {}))
    with engine.between_bars():
        engine.send_queued()
    assert _sent(broker) == [(Side.SELL, 10.0, True, None, None)]
    assert [row[:4] for row in _decisions(journal)] == [
        ("engine.price", "shrink", 25.0, 10.0),
        ("engine.price", "veto", 25.0, 0.0),
    ]
    ids = [str(i) for (i,) in journal.query("SELECT client_order_id FROM risk_decisions")]
    assert len(set(ids)) == 2
    assert engine.stats.vetoes[("engine.price", NO_CURRENT_PRICE)] == 1
    assert _after_next_bars(engine) == [10.0, 0.0]


def test_a_reversal_with_a_usable_quote_is_sized_and_sent_whole_as_before() -> None:
    engine, broker, journal = _engine()
    broker.quote = 101.0
    _send(engine, (25.0, {}))
    assert broker.asked == [("TEST", Side.SELL)]
    assert _decisions(journal) == [
        (
            "engine.price",
            "approve",
            25.0,
            None,
            "sized at the current price to sell TEST, 101 (last close 100, 1.00% away)",
            "",
        )
    ]
    assert _sent(broker) == [(Side.SELL, 25.0, False, None, None)]
    assert _after_next_bars(engine) == [10.0, -15.0]


def test_a_plain_entry_without_a_usable_quote_is_still_vetoed_whole() -> None:
    engine, broker, journal = _engine(long=0.0)
    broker.quote = None
    _send(engine, (25.0, {}))
    assert broker.asked == [("TEST", Side.SELL)]
    assert _decisions(journal) == [("engine.price", "veto", 25.0, 0.0, _NO_PRICE, NO_CURRENT_PRICE)]
    assert broker.sent == []
    assert engine.stats.vetoes[("engine.price", NO_CURRENT_PRICE)] == 1


def test_a_malformed_unpriced_reversal_is_vetoed_whole() -> None:
    """Nothing is cut from an order no venue could work: a NaN quantity would make a NaN cut."""
    engine, broker, journal = _engine()
    broker.quote = None
    _send(engine, (float("nan"), {}))
    assert broker.sent == []
    [(plugin, action, *_)] = _decisions(journal)
    assert (plugin, action) == ("engine.price", "veto")


# -- under a halt, a lock, a pause ---------------------------------------------------------------


def _halt(engine: Engine) -> tuple[str, str]:
    engine.halt("test", "kill switch")
    return "engine.halted", "bot is halted: kill switch"


def _lock(engine: Engine) -> tuple[str, str]:
    engine.state.held["probation"] = ("hibernating", 0)  # a lock of every symbol
    return "engine.locked", "risk lock in force until a person resets it (probation: hibernating)"


@pytest.mark.parametrize("stop", [_halt, _lock], ids=["halted", "locked"])
@pytest.mark.parametrize("quote", [None, 101.0], ids=["no-quote", "quote"])
def test_a_halted_or_locked_reversal_between_bars_closes_as_at_a_bar(
    stop: Any, quote: float | None
) -> None:
    """The gate cuts it to its closing part, an exit, which no price is asked for. Before: it
    was priced first, and with no price the closing part was refused with the rest."""
    engine, broker, journal = _engine()
    rule, why = stop(engine)
    broker.quote = quote
    _send(engine, (25.0, {"stop_loss": 105.0}))
    assert broker.asked == []
    [(plugin, action, quantity_in, quantity_out, reason, _)] = _decisions(journal)
    assert (plugin, action, quantity_in, quantity_out) == (rule, "shrink", 25.0, 10.0)
    assert reason == why + _CUT
    assert _sent(broker) == [(Side.SELL, 10.0, True, None, None)]
    assert len(_events(journal, "bracket_dropped")) == 1
    assert engine.stats.risk_decisions[(rule, "shrink")] == 1


@pytest.mark.parametrize("quote", [None, 101.0], ids=["no-quote", "quote"])
def test_a_paused_bot_still_refuses_the_whole_reversal_between_bars(quote: float | None) -> None:
    """The price's cut never sends past a pause what the pause refuses."""
    engine, broker, journal = _engine()
    engine.pause("test", "by hand")
    broker.quote = quote
    _send(engine, (25.0, {}))
    assert broker.sent == []
    assert [row[:4] for row in _decisions(journal)] == [("engine.paused", "veto", 25.0, 0.0)]
    assert engine.position("TEST").quantity == 10.0


# -- the decisions (pure) ------------------------------------------------------------------------


def test_closing_cut_is_the_gates_arithmetic_for_any_refusal() -> None:
    sell = OrderIntent("TEST", Side.SELL, 25.0)
    veto = RiskDecision.veto("no price", NO_CURRENT_PRICE)
    assert closing_cut(veto, sell, 10.0) == RiskDecision.shrink(
        10.0, "no price" + _CUT, NO_CURRENT_PRICE
    )
    assert closing_cut(veto, sell, 0.0) is None  # opens, or working exits close it all
    assert closing_cut(veto, sell._replace(quantity=None), 10.0) is None  # a sizer's to size
    halted = RiskDecision.veto("bot is halted: x", "halted")
    assert gate_cut("engine.halted", halted, sell, 10.0) == closing_cut(halted, sell, 10.0)
    assert gate_cut("engine.paused", halted, sell, 10.0) is None


def test_unpriced_cut_cuts_only_an_order_a_venue_could_work() -> None:
    veto = RiskDecision.veto("no price", NO_CURRENT_PRICE)
    sell = OrderIntent("TEST", Side.SELL, 25.0, stop_loss=105.0, take_profit=90.0)
    cut = unpriced_cut(veto, sell, 10.0, CLOSE)
    assert cut is not None and (cut.action, cut.quantity) == (RiskAction.SHRINK, 10.0)
    assert unpriced_cut(veto, sell._replace(quantity=float("nan")), 10.0, CLOSE) is None
    assert unpriced_cut(veto, sell._replace(quantity=-5.0), 10.0, CLOSE) is None
    # A sell's stop-loss below the mark: refused whole, as at a bar (``engine.order``).
    assert unpriced_cut(veto, sell._replace(stop_loss=95.0), 10.0, CLOSE) is None
    assert unpriced_cut(veto, sell, 0.0, CLOSE) is None
