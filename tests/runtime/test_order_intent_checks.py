"""Orders no venue could work are refused before the risk chain, naming the field.

A strategy's NaN (an indicator not warmed up), a stop on the wrong side of its entry, a
quantity that is not a positive number: each is refused by ``engine.order``, journaled and
counted as a veto, and never reaches the broker nor the ``orders`` table. An order type given
as its string value is the member; anything else is an error naming the argument.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import Scripted, bar, flat_bars, make_engine
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.engine.engine import Engine, RunResult
from tradefleet_runtime.journal.sqlite import _INSERT_ORDER, _insert_rows, _many_rows
from tradefleet_runtime.model import (
    Bar,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    ReasonCode,
    Side,
)
from tradefleet_runtime.spec.model import Mode

ROOT = Path(__file__).resolve().parents[2]
NAN = float("nan")
INF = float("inf")
# The order is sent at the close of bar 0 (100); bars 1-3 fall 60%: a working stop-loss at 95
# would have closed the position on bar 1.
BARS = flat_bars([100.0, 90.0, 60.0, 40.0])


def _run(action: Any, **kwargs: Any) -> tuple[Engine, RunResult, Scripted, list[Order]]:
    """Run ``action(ctx, bar)`` on the first bar; also the orders the broker was handed."""
    strategy = Scripted({0: action})
    engine = make_engine(strategy, **kwargs)
    sent: list[Order] = []
    submit = engine.broker.submit

    def spy(order: Order) -> Any:
        sent.append(order)
        return submit(order)

    engine.broker.submit = spy  # type: ignore[method-assign]
    engine.run(BARS)
    return engine, engine.finish(), strategy, sent


def _decisions(engine: Engine) -> list[tuple[Any, ...]]:
    return engine.journal.query(  # type: ignore[attr-defined, no-any-return]
        "SELECT plugin, action, reason FROM risk_decisions ORDER BY id"
    )


def _assert_refused(
    engine: Engine, result: RunResult, sent: list[Order], reason: str, code: str
) -> None:
    assert sent == []  # no broker (paper or live) is handed the order
    assert _decisions(engine) == [("engine.order", "veto", reason)]
    assert result.vetoes == {("engine.order", code): 1}
    assert result.veto_reasons[("engine.order", code)] == reason
    assert engine.journal.query("SELECT COUNT(*) FROM orders") == [(0,)]  # type: ignore[attr-defined]
    assert engine.journal.query("SELECT COUNT(*) FROM order_updates") == [(0,)]  # type: ignore[attr-defined]
    assert result.trades == []


@pytest.mark.parametrize(
    ("kwargs", "reason", "code"),
    [
        ({"stop_loss": NAN}, "stop_loss: nan is not a price", "invalid_stops"),
        ({"stop_loss": INF}, "stop_loss: inf is not a price", "invalid_stops"),
        ({"stop_loss": -INF}, "stop_loss: -inf is not a price", "invalid_stops"),
        ({"stop_loss": -5.0}, "stop_loss: must be positive, not -5", "invalid_stops"),
        ({"take_profit": NAN}, "take_profit: nan is not a price", "invalid_stops"),
        ({"take_profit": INF}, "take_profit: inf is not a price", "invalid_stops"),
        (
            {"order_type": OrderType.LIMIT, "price": NAN},
            "price: nan is not a price",
            "invalid_price",
        ),
        (
            {"order_type": OrderType.STOP, "price": INF},
            "price: inf is not a price",
            "invalid_price",
        ),
        (
            {"order_type": OrderType.LIMIT, "price": 0.0},
            "price: must be positive, not 0",
            "invalid_price",
        ),
        ({"order_type": OrderType.LIMIT}, "price: a limit order needs one", "invalid_price"),
        ({"order_type": OrderType.STOP}, "price: a stop order needs one", "invalid_price"),
    ],
)
def test_a_price_that_is_not_a_price_is_refused_naming_the_field(
    kwargs: dict[str, Any], reason: str, code: str
) -> None:
    engine, result, strategy, sent = _run(lambda ctx, b: ctx.buy("TEST", 10, **kwargs))
    _assert_refused(engine, result, sent, reason, code)
    assert strategy.fills == []


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [
        (NAN, "quantity: nan is not a quantity"),
        (INF, "quantity: inf is not a quantity"),
        (-1000.0, "quantity: must be positive, not -1000"),
        (0.0, "quantity: must be positive, not 0"),
        (0, "quantity: must be positive, not 0"),
        ("1000", "quantity: '1000' is not a number"),
        (True, "quantity: True is not a number"),
    ],
)
def test_a_quantity_that_is_not_a_positive_number_is_refused(quantity: Any, reason: str) -> None:
    # A sell is a side, not a sign: -1000 is no short.
    engine, result, strategy, sent = _run(lambda ctx, b: ctx.sell("TEST", quantity))
    _assert_refused(engine, result, sent, reason, "invalid_quantity")
    assert strategy.fills == []


def test_a_nan_stop_is_refused_before_the_sizer_which_is_not_blamed() -> None:
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.01))
    engine, result, _, sent = _run(
        lambda ctx, b: ctx.buy("TEST", stop_loss=NAN), risk=[("fixed-fractional", sizer)]
    )
    _assert_refused(engine, result, sent, "stop_loss: nan is not a price", "invalid_stops")


def test_a_finite_stop_still_protects_the_entry() -> None:
    """The refusal's counterpart: the same entry with a real stop is stopped out at 95."""
    _, result, strategy, _ = _run(lambda ctx, b: ctx.buy("TEST", 10, stop_loss=95.0))
    assert [f.reason for f in strategy.fills] == ["market", "stop_loss"]
    assert strategy.fills[1].price == 95.0
    assert result.vetoes == {}


@pytest.mark.parametrize(
    ("side", "kwargs", "reason"),
    [
        # A market entry's stops are judged against the mark (100, the last close).
        (Side.BUY, {"stop_loss": 105.0}, "stop_loss: 105 is not below the mark 100, as a buy's"),
        (Side.BUY, {"stop_loss": 100.0}, "stop_loss: 100 is not below the mark 100, as a buy's"),
        (Side.BUY, {"take_profit": 95.0}, "take_profit: 95 is not above the mark 100, as a buy's"),
        (Side.SELL, {"stop_loss": 95.0}, "stop_loss: 95 is not above the mark 100, as a sell's"),
        (
            Side.SELL,
            {"take_profit": 105.0},
            "take_profit: 105 is not below the mark 100, as a sell's",
        ),
        # A limit entry's against its limit price: it fills there or better, not at the mark.
        (
            Side.BUY,
            {"order_type": OrderType.LIMIT, "price": 90.0, "stop_loss": 95.0},
            "stop_loss: 95 is not below the limit price 90, as a buy's",
        ),
        (
            Side.SELL,
            {"order_type": OrderType.LIMIT, "price": 110.0, "take_profit": 112.0},
            "take_profit: 112 is not below the limit price 110, as a sell's",
        ),
        # A stop entry's against its trigger: it fills there or worse.
        (
            Side.BUY,
            {"order_type": OrderType.STOP, "price": 105.0, "take_profit": 104.0},
            "take_profit: 104 is not above the trigger price 105, as a buy's",
        ),
        (
            Side.SELL,
            {"order_type": OrderType.STOP, "price": 95.0, "stop_loss": 94.0},
            "stop_loss: 94 is not above the trigger price 95, as a sell's",
        ),
    ],
)
def test_a_stop_on_the_wrong_side_of_its_entry_is_refused(
    side: Side, kwargs: dict[str, Any], reason: str
) -> None:
    def order(ctx: StrategyContext, b: Bar) -> None:
        (ctx.buy if side is Side.BUY else ctx.sell)("TEST", 10, **kwargs)

    engine, result, strategy, sent = _run(order)
    _assert_refused(engine, result, sent, f"{reason} must be", "invalid_stops")
    assert strategy.fills == []


@pytest.mark.parametrize(
    ("side", "kwargs"),
    [
        (Side.BUY, {"stop_loss": 95.0, "take_profit": 120.0}),
        (Side.SELL, {"stop_loss": 105.0, "take_profit": 80.0}),
        # Above the mark but below the trigger: right for a buy stop, which fills at 105 or up.
        (Side.BUY, {"order_type": OrderType.STOP, "price": 105.0, "stop_loss": 102.0}),
        # Below the mark but above the limit: right for a buy limit, which fills at 90 or down.
        (
            Side.BUY,
            {"order_type": OrderType.LIMIT, "price": 90.0, "stop_loss": 85.0, "take_profit": 97.0},
        ),
        (Side.SELL, {"order_type": OrderType.STOP, "price": 95.0, "stop_loss": 98.0}),
    ],
)
def test_stops_on_the_right_side_are_sent(side: Side, kwargs: dict[str, Any]) -> None:
    def order(ctx: StrategyContext, b: Bar) -> None:
        (ctx.buy if side is Side.BUY else ctx.sell)("TEST", 10, **kwargs)

    _, result, _, sent = _run(order)
    assert len(sent) == 1
    assert result.vetoes == {}


def test_the_wrong_side_check_needs_a_mark_for_a_market_entry() -> None:
    from tradefleet_runtime.engine.risk_driver import stops_problem

    # No mark (no bar seen, say): nothing to judge by; the venue will.
    assert stops_problem(OrderIntent("X", Side.BUY, 1.0, stop_loss=110.0), 0.0) is None
    assert stops_problem(OrderIntent("X", Side.BUY, 1.0, stop_loss=110.0), NAN) is None
    assert stops_problem(OrderIntent("X", Side.BUY, 1.0, stop_loss=90.0), 100.0) is None
    assert stops_problem(OrderIntent("X", Side.BUY, 1.0, stop_loss=110.0), 100.0) == (
        "invalid_stops",
        "stop_loss: 110 is not below the mark 100, as a buy's must be",
    )


def test_a_plain_order_has_no_problem() -> None:
    from tradefleet_runtime.engine.risk_driver import intent_problem

    assert intent_problem(OrderIntent("X", Side.BUY)) is None  # unsized: the sizer's
    assert intent_problem(OrderIntent("X", Side.SELL, 3, OrderType.LIMIT, 1.5)) is None


def test_an_exit_with_a_nan_quantity_is_refused_too() -> None:
    """No exit is let through on a quantity that means nothing (a halted bot's included)."""
    engine, result, _, sent = _run(
        lambda ctx, b: ctx.submit(OrderIntent("TEST", Side.SELL, NAN, reduce_only=True))
    )
    _assert_refused(engine, result, sent, "quantity: nan is not a quantity", "invalid_quantity")


# -- the SDK boundary: enums ---------------------------------------------------------------


def test_an_order_type_given_as_its_string_value_is_that_type() -> None:
    _, result, strategy, sent = _run(
        lambda ctx, b: ctx.buy("TEST", 10, order_type="limit", price=95.0)
    )
    assert [o.order_type for o in sent] == [OrderType.LIMIT]
    assert type(sent[0].order_type) is OrderType
    assert [f.reason for f in strategy.fills] == ["limit"]
    assert result.vetoes == {}


def test_a_submitted_intent_with_string_enums_is_normalised() -> None:
    _, _, strategy, sent = _run(
        lambda ctx, b: ctx.submit(OrderIntent("TEST", "sell", 10, "market"))  # type: ignore[arg-type]
    )
    assert [(type(o.side), type(o.order_type)) for o in sent] == [(Side, OrderType)]
    assert [f.side for f in strategy.fills] == [Side.SELL]


@pytest.mark.parametrize(
    ("call", "error", "argument"),
    [
        (lambda ctx: ctx.buy("TEST", 1, order_type="limt", price=1.0), ValueError, "order_type"),
        (lambda ctx: ctx.sell("TEST", 1, order_type=3), TypeError, "order_type"),
        (lambda ctx: ctx.submit(OrderIntent("TEST", "long", 1)), ValueError, "side"),  # type: ignore[arg-type]
        (lambda ctx: ctx.submit(OrderIntent("TEST", None, 1)), TypeError, "side"),  # type: ignore[arg-type]
        (
            lambda ctx: ctx.submit(OrderIntent("TEST", Side.BUY, 1, "twap")),  # type: ignore[arg-type]
            ValueError,
            "order_type",
        ),
    ],
)
def test_a_wrong_enum_is_an_error_naming_the_argument(
    call: Any, error: type[Exception], argument: str
) -> None:
    engine = make_engine(Scripted())
    with pytest.raises(error, match=f"^{argument}: "):
        call(engine.ctx)
    assert engine.ctx.intents == []


# -- the paper broker: a venue refuses what no engine should have sent ---------------------


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (Order("o", "TEST", Side.BUY, 1.0, OrderType.LIMIT, NAN), ReasonCode.INVALID_PRICE),
        (Order("o", "TEST", Side.BUY, 1.0, OrderType.STOP, INF), ReasonCode.INVALID_PRICE),
        (Order("o", "TEST", Side.BUY, INF), ReasonCode.INVALID_QUANTITY),
        (Order("o", "TEST", Side.BUY, 1.0, stop_loss=NAN), ReasonCode.INVALID_STOPS),
        (Order("o", "TEST", Side.BUY, 1.0, take_profit=-INF), ReasonCode.INVALID_STOPS),
    ],
)
def test_the_paper_broker_rejects_non_finite_figures(order: Order, code: ReasonCode) -> None:
    broker = PaperBroker(PaperBrokerParams())
    broker.connect(BrokerContext("b", Mode.BACKTEST, ("TEST",), "USD", 10_000.0))
    update = broker.submit(order)
    assert (update.status, update.code) == (OrderStatus.REJECTED, code)
    assert broker.on_bar(bar(0, 100, 100, 100, 100)) == ()  # nothing rests


# -- the journal: an order row is never silently dropped -------------------------------------


def _order_row(order_id: str, quantity: float | None) -> tuple[Any, ...]:
    return ("r", order_id, "X", "buy", "market", quantity, None, None, None, 0, None, 0, "", None)


@pytest.mark.parametrize("many", [1, 200])
def test_the_order_insert_ignores_a_duplicate_but_not_a_missing_quantity(many: int) -> None:
    assert _many_rows(_INSERT_ORDER) is not None  # a backtest's batches stay many-row inserts
    schema = (ROOT / "bot-runtime/tradefleet_runtime/journal/schema.sql").read_text()
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.executescript(schema)
        rows = [_order_row(f"o{i}", 1.0) for i in range(many)]
        _insert_rows(db, _INSERT_ORDER, [*rows, _order_row("o0", 2.0)])  # the same order again
        assert db.execute("SELECT COUNT(*), SUM(quantity) FROM orders").fetchone() == (
            many,
            float(many),
        )
        with pytest.raises(sqlite3.IntegrityError, match="quantity"):
            _insert_rows(db, _INSERT_ORDER, [*rows, _order_row("bad", NAN)])  # NaN binds NULL
