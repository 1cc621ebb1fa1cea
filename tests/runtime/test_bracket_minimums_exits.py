"""The venue's minimum notional and the orders that reduce a position.

An exit is never refused: an order the risk driver made reduce-only is not held to the bracket
rule (``instruments.bracket_problem``) for the stop-loss or take-profit it carries, whose
children would close nothing once it closed the position.

Binance USDⓈ-M ("-4164 … (unless you choose reduce only)") and Bybit linear (closing orders are
exempt from the minimum notional value, not from the minimum size) take reduce-only orders below
their minimum notional: the broker says so (``ReduceOnlyMinimums``), and neither the engine nor
``ccxt_orders.create_args`` refuses such a close or a bracket's reduce-only child for its
notional; the minimum quantity still holds, and every other venue's minimum holds for all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers.harness import ORDER_PATH, VenueHarness, harness_for, wait_children_open
from tests.runtime.helpers import HOUR, Action, Scripted, flat_bars, start_test_run
from tradefleet_plugins.brokers.ccxt_orders import CreateArgs, Dialect, Refusal, create_args
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.brackets import bracket_children
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.instruments import ReduceOnlyMinimums, bracket_problem
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, Instrument, Order, OrderType, ReasonCode, Side
from tradefleet_runtime.spec.model import Mode

SYMBOL = "TEST"
MINIMUM = {"instruments": {SYMBOL: {"min_notional": 95.0, "lot_step": 0.01}}}
BTC = Instrument("BTCUSDT", 0.1, 0.001, 0.001, 1000.0, 100.0, quote_currency="USDT")
START = 1_700_000_000 // HOUR * HOUR


def _vetoes(journal: Journal) -> list[tuple[str, str]]:
    rows = journal.query("SELECT plugin, reason FROM risk_decisions WHERE action = 'veto'")
    return [(str(plugin), str(reason)) for plugin, reason in rows]


# -- an exit carrying a stop-loss or take-profit ----------------------------------------------


def test_a_sell_of_what_is_held_is_not_refused_for_its_take_profit(tmp_path: Path) -> None:
    """Holding 1 at 100 on a venue with a minimum notional of 95: ``sell(1, stop_loss=110,
    take_profit=90)`` is made reduce-only; its 90 take-profit (notional 90) used to veto it and
    the position stayed open."""

    def buy(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.buy(SYMBOL, 1.0)

    def sell(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.sell(SYMBOL, 1.0, stop_loss=110.0, take_profit=90.0)

    broker = PaperBroker(PaperBrokerParams.model_validate(MINIMUM))
    broker.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(tmp_path / "j.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0)
    engine = Engine(config, Scripted(actions={0: buy, 2: sell}), broker, journal, venue=broker)
    engine.run(flat_bars([100.0] * 5))
    vetoes = _vetoes(journal)
    journal.close()
    assert vetoes == []
    assert engine.portfolio.position(SYMBOL).quantity == 0.0


def test_an_entry_with_such_a_take_profit_is_still_refused(tmp_path: Path) -> None:
    """The same sell while flat opens a short: its children are checked as before."""

    def sell(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.sell(SYMBOL, 1.0, stop_loss=110.0, take_profit=90.0)

    broker = PaperBroker(PaperBrokerParams.model_validate(MINIMUM))
    broker.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(tmp_path / "j.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0)
    engine = Engine(config, Scripted(actions={0: sell}), broker, journal, venue=broker)
    engine.run(flat_bars([100.0] * 3))
    vetoes = _vetoes(journal)
    journal.close()
    assert [plugin for plugin, _ in vetoes] == ["engine.instrument"]
    assert vetoes[0][1].startswith("its take-profit at 90 could not be placed")


# -- venues taking reduce-only orders below their minimum notional ----------------------------


def test_reduce_only_children_are_held_to_the_minimum_quantity_alone() -> None:
    # 0.002 × 49,000 = 98, under the 100 minimum: refused unless the children are exempt.
    assert bracket_problem(BTC, Side.BUY, 0.002, 49_000.0, None) is not None
    assert bracket_problem(BTC, Side.BUY, 0.002, 49_000.0, None, reduce_only_exempt=True) is None
    tiny = BTC._replace(min_quantity=0.003)
    problem = bracket_problem(tiny, Side.BUY, 0.002, 49_000.0, None, reduce_only_exempt=True)
    assert problem is not None and problem[0] is ReasonCode.BELOW_MIN_QUANTITY


def test_the_venues_that_take_reduce_only_orders_below_the_minimum_notional() -> None:
    exempt = {d: d.reduce_only_below_min_notional for d in Dialect}
    assert exempt == {
        Dialect.BINANCE_SPOT: False,
        Dialect.BINANCE_USDM: True,
        Dialect.BYBIT: True,
        Dialect.KRAKEN: False,
    }


def _precision(step: float):  # type: ignore[no-untyped-def]
    def fn(_symbol: str, value: float) -> str:
        return f"{int(value / step + 1e-9) * step:.10f}"

    return fn


def _args(order: Order, dialect: Dialect) -> CreateArgs | Refusal:
    return create_args(order, "BTC/USDT:USDT", dialect, BTC, _precision(0.001), _precision(0.1))


@pytest.mark.parametrize("dialect", [Dialect.BINANCE_USDM, Dialect.BYBIT])
def test_a_reduce_only_order_below_the_minimum_notional_leaves(dialect: Dialect) -> None:
    """A close of 0.002 at a limit of 40,000 (80 USDT) and a bracket's stop-loss child at
    49,000 (98 USDT): the venue takes both; an entry of the same size is still refused."""
    close = Order(
        "tfabc1", "BTCUSDT", Side.SELL, 0.002, OrderType.LIMIT, 40_000.0, reduce_only=True
    )
    assert isinstance(_args(close, dialect), CreateArgs)
    stop, _ = bracket_children(
        Order("tfabc2", "BTCUSDT", Side.BUY, 0.002, stop_loss=49_000.0, take_profit=52_000.0),
        0.002,
        0,
    )
    assert isinstance(_args(stop, dialect), CreateArgs)
    entry = close._replace(reduce_only=False)
    refusal = _args(entry, dialect)
    assert isinstance(refusal, Refusal) and refusal.code is ReasonCode.BELOW_MIN_NOTIONAL
    small = close._replace(quantity=0.0005)  # below the minimum quantity: refused still
    assert isinstance(_args(small, dialect), Refusal)


def test_binance_spot_holds_every_order_to_the_minimum() -> None:
    close = Order(
        "tfabc1", "BTCUSDT", Side.SELL, 0.002, OrderType.LIMIT, 40_000.0, reduce_only=True
    )
    refusal = _args(close, Dialect.BINANCE_SPOT)
    assert isinstance(refusal, Refusal) and refusal.code is ReasonCode.BELOW_MIN_NOTIONAL


@pytest.fixture(name="usdm")
def _usdm(tmp_path: Path) -> Iterator[VenueHarness]:
    with harness_for("binance-usdm", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        yield harness


def _usdm_engine(usdm: VenueHarness, journal: Journal, actions: dict[int, Action]) -> Engine:
    start_test_run(journal, "run-1", mode="live")
    config = EngineConfig("bot", "live", (usdm.symbol,), HOUR, 10_000.0)
    return Engine(
        config,
        Scripted(actions=actions),
        usdm.broker,
        journal,
        venue=usdm.broker,
    )


def _bar(symbol: str, i: int, price: float) -> Bar:
    return Bar(symbol, HOUR, START + i * HOUR, price, price, price, price, 1.0)


def test_a_usdm_entry_at_the_minimum_is_not_refused_for_its_reduce_only_stop(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    """0.002 BTC at 50,000 (100 USDT, the minimum) with its stop-loss at 49,000 (a 98 USDT
    reduce-only stop, which the venue takes)."""
    symbol = usdm.symbol
    assert usdm.broker.instrument(symbol).min_notional == 100.0
    assert isinstance(usdm.broker, ReduceOnlyMinimums)

    def buy(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.buy(symbol, 0.002, order_type=OrderType.MARKET, stop_loss=49_000.0)

    journal = Journal(tmp_path / "j.sqlite")
    engine = _usdm_engine(usdm, journal, {0: buy})
    engine.run([_bar(symbol, 0, 50_000.0)])
    vetoes = _vetoes(journal)
    journal.close()
    assert vetoes == []


def test_a_usdm_close_below_the_minimum_notional_is_sent_and_fills(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    """Long 0.002 bought at 50,000; at 40,000 the close is worth 80 USDT, under the 100
    minimum. It used to be refused by the engine (a close stuck, "close at the venue by hand")
    although the venue takes a reduce-only order of any notional."""
    symbol = usdm.symbol
    journal = Journal(tmp_path / "j.sqlite")

    def buy(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.buy(symbol, 0.002)

    def close(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.close(symbol)

    engine = _usdm_engine(usdm, journal, {0: buy, 1: close})

    def held() -> float:
        engine.pump()
        return engine.portfolio.position(symbol).quantity

    def wait(want: float) -> None:
        deadline = time.monotonic() + 10.0
        while held() != pytest.approx(want):
            assert time.monotonic() < deadline, f"position {held()}, not {want}"
            time.sleep(0.05)

    def bars() -> Iterator[Bar]:
        yield _bar(symbol, 0, 50_000.0)
        wait(0.002)
        usdm.trade_through(40_000.0)
        yield _bar(symbol, 1, 40_000.0)

    engine.run(bars())
    wait(0.0)
    vetoes = _vetoes(journal)
    stuck = engine.closes_stuck()
    journal.close()
    assert vetoes == [] and stuck == {}


def test_a_usdm_first_part_below_the_minimum_notional_gets_its_stop_at_once(
    usdm: VenueHarness,
) -> None:
    """An entry's first part worth half the minimum notional at its stop: on Binance spot it
    waits for more of the entry (``test_ccxt_faults``); on USDⓈ-M its reduce-only children go
    at once, sized on what filled, and grow as the rest fills."""
    instrument = usdm.broker.instrument(usdm.symbol)
    stop_price = 48_000.0
    fraction = 0.5 * instrument.min_notional / (usdm.quantity * stop_price)
    usdm.fake.faults.inject(
        "partial_fill", path=ORDER_PATH["binance-usdm"], method="POST", fraction=fraction
    )
    entry = usdm.order(
        "tiny1",
        price=50_500.0,
        order_type=OrderType.LIMIT,
        stop_loss=stop_price,
        take_profit=52_000.0,
    )
    usdm.broker.submit(entry)
    usdm.wait_for(lambda _e: usdm.filled("tiny1") > 0.0)
    first = usdm.held("tiny1")
    assert first * stop_price < instrument.min_notional
    wait_children_open(usdm, usdm.broker, "tiny1", first)
    usdm.trade_through(50_400.0)
    usdm.wait_filled("tiny1")
    wait_children_open(usdm, usdm.broker, "tiny1", usdm.held("tiny1"))
    usdm.assert_venue_matches()
