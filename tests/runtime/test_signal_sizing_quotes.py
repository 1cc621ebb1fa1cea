"""A market entry decided between bars (a webhook signal's) is sized and risk-checked at the
broker's current price (``quotes-prices``), not at the last bar's close, which is up to a bar
old: sized on a close 700 below the market with its stop 1,000 under the fill, the stop looked
300 away and the order risked 3.3 times what ``risk_per_trade`` allows.

The engine here trades ``external-signal`` with ``fixed-fractional`` (1% of 100,000) on the paper
broker, given a ``market_price`` whose answer each test sets; its config says ``live``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.runtime.helpers import Scripted, flat_bars
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_plugins.strategies.external_signal import ExternalSignal
from tradefleet_plugins.strategies.external_signal_params import ExternalSignalParams
from tradefleet_runtime.capabilities import Capability, PriceQuoter, check_object
from tradefleet_runtime.contracts import BrokerContext, Strategy
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_snapshot import (
    NO_CURRENT_PRICE,
    PRICE_OFF_CLOSE,
    QUOTE_MAX_MOVE,
    quoted_mark,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Order, Side
from tradefleet_runtime.service.api import Direction, Signal
from tradefleet_runtime.spec.model import Mode

CLOSE, MARKET, STOP = 50_000.0, 50_700.0, 49_700.0
CAPITAL, RISK = 100_000.0, 0.01
HOUR = 3600


class QuotingPaper(PaperBroker):
    """The paper broker, answering ``market_price`` with ``quote`` (an exception is raised)."""

    quote: object = MARKET

    def __init__(self) -> None:
        super().__init__(PaperBrokerParams.model_validate({}))
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


class RecordingPaper(PaperBroker):
    """The paper broker without ``market_price`` (a broker quoting no price)."""

    def __init__(self) -> None:
        super().__init__(PaperBrokerParams.model_validate({}))
        self.sent: list[Order] = []

    def submit(self, order: Order) -> Any:
        self.sent.append(order)
        return super().submit(order)


def _engine(
    broker: PaperBroker, mode: str = "live", strategy: Strategy | None = None, **params: Any
) -> tuple[Engine, Journal]:
    broker.connect(BrokerContext("quotes", Mode.BACKTEST, ("TEST",), "USD", CAPITAL))
    journal = Journal(":memory:")
    journal.start_run(
        run_id="test",
        bot="quotes",
        mode=mode,
        currency="USD",
        initial_capital=CAPITAL,
        timeframe_s=HOUR,
        config_hash="x",
        manifest={},
    )
    if strategy is None:
        settings = {"entry_order": "market", "max_entry_deviation_pct": 3, **params}
        strategy = ExternalSignal(ExternalSignalParams.model_validate(settings))
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=RISK, max_leverage=5))
    config = EngineConfig("quotes", mode, ("TEST",), HOUR, CAPITAL)
    engine = Engine(config, strategy, broker, journal, [("fixed-fractional", sizer)])
    if isinstance(strategy, ExternalSignal):
        engine.signals = strategy  # it declares takes-signals
    engine.run(flat_bars([CLOSE] * 3))  # the last close, the bot's mark: 50,000
    return engine, journal


def _buy(entry: float = MARKET) -> Signal:
    return Signal("TEST", Direction.BUY, entry=entry, stop_loss=STOP, take_profit=entry + 3_000)


def _decisions(journal: Journal, plugin: str) -> list[tuple[str, str, str]]:
    rows = journal._db.execute(
        "SELECT action, reason, code FROM risk_decisions WHERE plugin = ?", (plugin,)
    )
    return [(str(a), str(r), str(c)) for a, r, c in rows]


def test_a_signals_market_entry_is_sized_at_the_brokers_current_price() -> None:
    broker = QuotingPaper()
    engine, journal = _engine(broker)
    accepted, reason, order_id = engine.handle_signal(_buy())
    assert accepted, reason
    [order] = broker.sent
    assert broker.asked == [("TEST", Side.BUY)]
    # 1% of 100,000 over the 1,000 from the market to the stop: 1, not 1,000 / 300 = 3.33.
    assert order.quantity == pytest.approx(RISK * CAPITAL / (MARKET - STOP))
    [(action, why, _)] = _decisions(journal, "engine.price")
    assert action == "approve"
    assert "sized at the current price to buy TEST, 50700 (last close 50000, 1.40% away)" in why
    # The price the order was decided at, journaled with it (what slippage is measured from).
    [decided] = journal._db.execute(
        "SELECT reference_price FROM orders WHERE client_order_id = ?", (order_id,)
    ).fetchone()
    assert decided == MARKET
    # The bars' mark and the account's equity keep the close.
    assert engine.portfolio.marks["TEST"] == CLOSE
    assert engine.equity == CAPITAL


@pytest.mark.parametrize(
    "quote",
    [None, float("nan"), 0.0, -1.0, "50700", True, RuntimeError("venue down")],
    ids=["none", "nan", "zero", "negative", "text", "bool", "raises"],
)
def test_a_market_entry_without_a_usable_current_price_is_refused(quote: object) -> None:
    broker = QuotingPaper()
    broker.quote = quote
    engine, journal = _engine(broker)
    accepted, reason, _ = engine.handle_signal(_buy())
    assert not accepted
    assert "no current price to buy TEST from the broker" in reason
    assert "the last close, 50000, is up to a bar old" in reason
    assert broker.sent == []
    [(action, why, code)] = _decisions(journal, "engine.price")
    assert (action, why, code) == ("veto", reason, NO_CURRENT_PRICE)
    assert _decisions(journal, "fixed-fractional") == []  # refused before any sizing


def test_a_current_price_far_from_the_last_close_refuses_the_market_entry() -> None:
    broker = QuotingPaper()
    broker.quote = CLOSE * (1 + QUOTE_MAX_MOVE) + 100  # 10.2% up: a bad tick or a runaway
    engine, journal = _engine(broker)
    accepted, reason, _ = engine.handle_signal(_buy())
    assert not accepted
    assert reason.startswith("the current price to buy TEST, 55100, is 10.2% from its last ")
    assert broker.sent == []
    assert _decisions(journal, "engine.price")[0][2] == PRICE_OFF_CLOSE


def test_a_stop_loss_above_the_current_price_is_refused_for_a_buy() -> None:
    """The order's own checks read the same mark: a buy's stop-loss above where the market
    stands now would trigger at once."""
    broker = QuotingPaper()
    broker.quote = 49_600.0
    engine, _ = _engine(broker)
    accepted, reason, _ = engine.handle_signal(_buy(entry=50_000.0))
    assert not accepted
    assert "stop_loss: 49700 is not below the mark 49600" in reason
    assert broker.sent == []


@pytest.mark.parametrize("how", ["close", "sell"])
def test_an_exit_decided_between_bars_is_never_refused_for_want_of_a_price(how: str) -> None:
    """Nothing is sized on an exit's price, and no exit may be refused: neither a close (made
    reduce-only) nor a plain sell of what is held (made reduce-only by the risk driver)."""
    broker = QuotingPaper()
    engine, _ = _engine(broker)
    assert engine.handle_signal(_buy())[0]
    engine.run(flat_bars([CLOSE] * 5)[3:])  # the entry fills at the next bar's open
    held = engine.position("TEST").quantity
    assert held > 0
    broker.quote, broker.asked, broker.sent = None, [], []
    with engine.between_bars():  # a control call, or a strategy's order on a signal
        if how == "close":
            engine.close("TEST", tag="by-hand")
        else:
            engine.ctx.sell("TEST", held, tag="by-hand")
        engine.send_queued()
    [close] = broker.sent
    assert (close.side, close.quantity, close.reduce_only) == (Side.SELL, held, True)
    assert broker.asked == []


def test_a_limit_entry_between_bars_is_sized_at_its_own_price_without_asking() -> None:
    broker = QuotingPaper()
    broker.quote = None
    engine, _ = _engine(broker, entry_order="limit")
    accepted, reason, _ = engine.handle_signal(_buy())
    assert accepted, reason
    [order] = broker.sent
    assert order.quantity == pytest.approx(RISK * CAPITAL / (MARKET - STOP))
    assert broker.asked == []


def test_orders_decided_at_a_bar_are_not_quoted() -> None:
    """The bar's own close is the price a bar's order is decided at: no broker is asked."""
    broker = QuotingPaper()
    broker.quote = None
    strategy = Scripted(
        {3: lambda ctx, bar: ctx.buy("TEST", None, stop_loss=STOP)}  # sized by the sizer
    )
    engine, _ = _engine(broker, strategy=strategy)
    engine.run(flat_bars([CLOSE] * 5)[3:])
    [order] = broker.sent
    assert order.quantity == pytest.approx(RISK * CAPITAL / (CLOSE - STOP))
    assert broker.asked == []


def test_a_live_broker_that_quotes_no_price_sizes_on_the_last_close_and_says_so() -> None:
    broker = RecordingPaper()
    assert not isinstance(broker, PriceQuoter)
    engine, journal = _engine(broker)
    accepted, reason, _ = engine.handle_signal(_buy())
    assert accepted, reason
    [order] = broker.sent
    assert order.quantity == pytest.approx(RISK * CAPITAL / (CLOSE - STOP))
    [(action, why, _)] = _decisions(journal, "engine.price")
    assert action == "approve"
    assert why.startswith("judged at TEST's last close, 50000 (")
    assert why.endswith("): the broker quotes no current price")


def test_a_paper_bot_decides_between_bars_on_the_last_close_as_a_backtest_does() -> None:
    """A paper bot's order decided between bars fills at the next bar's open, which no price
    now tells: the close is its price, unsaid, as at a bar."""
    broker = RecordingPaper()
    engine, journal = _engine(broker, mode="paper")
    assert engine.handle_signal(_buy())[0]
    [order] = broker.sent
    assert order.quantity == pytest.approx(RISK * CAPITAL / (CLOSE - STOP))
    assert _decisions(journal, "engine.price") == []


# -- quoted_mark, the rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quote", "close", "mark", "code"),
    [
        (50_700.0, 50_000.0, 50_700.0, ""),
        (45_000.0, 50_000.0, 45_000.0, ""),  # 10% down: at the bound, taken
        (55_000.0, 50_000.0, 55_000.0, ""),
        (55_001.0, 50_000.0, None, PRICE_OFF_CLOSE),
        (44_999.0, 50_000.0, None, PRICE_OFF_CLOSE),
        (50_700, 50_000.0, 50_700.0, ""),  # an int is a price
        (50_700.0, None, 50_700.0, ""),  # no bar yet: nothing to hold it against
        (50_700.0, float("nan"), 50_700.0, ""),
        (None, 50_000.0, None, NO_CURRENT_PRICE),
        (float("inf"), 50_000.0, None, NO_CURRENT_PRICE),
        (None, None, None, NO_CURRENT_PRICE),
    ],
)
def test_quoted_mark_takes_a_positive_price_near_the_last_close(
    quote: object, close: float | None, mark: float | None, code: str
) -> None:
    got, reason, got_code = quoted_mark("BTC", Side.SELL, quote, close)
    assert (got, got_code) == (mark, code)
    assert "BTC" in reason and "to sell" in reason
    if mark is not None:
        assert isinstance(got, float) and math.isfinite(got)


def test_quoted_marks_refusal_says_both_prices() -> None:
    _, reason, _ = quoted_mark("BTC", Side.BUY, 60_000.0, 50_000.0)
    assert reason.startswith("the current price to buy BTC, 60000, is 20.0% from its last close")
    assert "50000, more than 10%" in reason
    _, reason, _ = quoted_mark("BTC", Side.BUY, None, None)
    assert "no bar has closed yet" in reason


# -- the capability ----------------------------------------------------------------------------


def test_a_broker_with_market_price_must_declare_quotes_prices() -> None:
    """Else the engine, which asks any broker that has it, would use a method the registry
    never vouched for; declared, its shape is checked."""
    broker = _Quotes()
    [undeclared] = check_object("broker", broker, frozenset())
    assert "'market_price'" in undeclared and "'quotes-prices'" in undeclared
    assert check_object("broker", broker, frozenset({Capability.QUOTES_PRICES})) == []
    wrong = check_object("broker", _NoSide(), frozenset({Capability.QUOTES_PRICES}))
    assert wrong and "'market_price'" in wrong[0]


class _NoSide:
    def market_price(self, symbol: str) -> float | None:
        return None


class _Quotes:
    def market_price(self, symbol: str, side: Side) -> float | None:
        return None
