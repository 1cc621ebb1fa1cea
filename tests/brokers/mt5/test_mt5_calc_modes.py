"""A symbol's calc mode decides how the terminal books its profit, and the bot must book the same:
the units in a lot are the contract size where MT5 pays price move × contract size (Forex, CFD,
stocks), tick value / tick size where it pays by the tick (futures, whose contract size plays
no part), and a mode the runtime cannot book (options, bonds, ...) is refused at start, naming
the manifest's field and the mode. It once booked an ES future (a 0.25 tick worth $12.50,
contract size 1) per contract size: +$4 where the terminal paid +$200."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    MINUTE,
    Mt5Harness,
    fills,
    gold_pro_symbols,
    settle_and_pump,
)
from tests.runtime.helpers import Scripted, start_test_run
from tests.venues.mt5 import MT5Terminal
from tests.venues.mt5 import constants as C
from tradefleet_plugins.brokers import mt5_requests as rq
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import Bar, Fill, PluginError, Side

COMMISSION = -3.5  # per lot per deal, as the probe that found the defect

# An E-mini S&P 500 future as an MT5 broker lists it: $12.50 a 0.25 tick ($50 a point), contract
# size 1 — the number the old conversion multiplied by.
ES: dict[str, Any] = {
    "bid": 5000.0,
    "ask": 5000.25,
    "digits": 2,
    "point": 0.01,
    "trade_tick_size": 0.25,
    "trade_tick_value": 12.5,
    "trade_contract_size": 1.0,
    "trade_calc_mode": C.SYMBOL_CALC_MODE_FUTURES,
    "volume_min": 1.0,
    "volume_step": 1.0,
    "volume_max": 100.0,
    "currency_base": "USD",
    "currency_margin": "USD",
    "currency_profit": "USD",
    "margin_initial": 1000.0,
    "swap_long": 0.0,
    "swap_short": 0.0,
}

# An exchange future whose contract size (10) is neither 1 nor its multiplier (25 a point).
FDAX: dict[str, Any] = {
    **ES,
    "bid": 20_000.0,
    "ask": 20_000.5,
    "trade_tick_size": 0.5,
    "trade_tick_value": 12.5,
    "trade_contract_size": 10.0,
    "trade_calc_mode": C.SYMBOL_CALC_MODE_EXCH_FUTURES,
}


def _contract_mode_symbol(mode: int) -> dict[str, Any]:
    """A symbol of a contract-size mode, priced in dollars: a tick of 0.01 on a contract of 100
    is worth $1, as the terminal states it."""
    return {
        **ES,
        "bid": 250.0,
        "ask": 250.02,
        "trade_tick_size": 0.01,
        "trade_tick_value": 1.0,
        "trade_contract_size": 100.0,
        "trade_calc_mode": mode,
        "volume_min": 0.01,
        "volume_step": 0.01,
        "volume_max": 100.0,
    }


def _harness(
    margin_mode: str, extra: dict[str, dict[str, Any]], symbols: tuple[str, ...]
) -> Mt5Harness:
    terminal = MT5Terminal(margin_mode=margin_mode, symbols=gold_pro_symbols())
    for name, spec in extra.items():
        terminal.add_symbol(name, **spec)
        terminal.update_symbol(name, commission_per_lot=COMMISSION)
    harness = Mt5Harness.build(venue=terminal)
    harness.symbols = symbols
    return harness


@pytest.fixture(params=["netting", "hedging"])
def futures(request: pytest.FixtureRequest, transport: str) -> Iterator[Mt5Harness]:
    harness = _harness(request.param, {"ES": ES, "FDAX": FDAX}, ("EURUSD", "ES", "FDAX"))
    harness.connect()
    yield harness
    harness.close()


def _balance(terminal: MT5Terminal) -> float:
    account = terminal.account_info()
    assert account is not None
    return float(account.balance)


def _cash(events: list[Fill]) -> float:
    """What the bot's fills move its cash by: sells in, buys out, fees out."""
    return sum(
        (f.quantity if f.side is Side.SELL else -f.quantity) * f.price - f.fee for f in events
    )


def _round_trip(
    harness: Mt5Harness, symbol: str, quantity: float, close_bid: float
) -> tuple[list[Fill], float]:
    """Buy ``quantity`` units of ``symbol``, move its bid to ``close_bid``, sell them: the fills
    and the terminal's balance change."""
    terminal = harness.terminal
    before = _balance(terminal)
    events = fills(harness.submit(harness.order(Side.BUY, quantity, symbol=symbol)))
    terminal.set_price(symbol, close_bid)
    events += fills(harness.submit(harness.order(Side.SELL, quantity, symbol=symbol)))
    events += fills(harness.settle())
    return events, _balance(terminal) - before


# -- futures: a lot is tick value / tick size units -------------------------------------------


def test_an_es_round_trip_books_what_the_terminal_books(futures: Mt5Harness) -> None:
    """50 units (1 lot) bought at the ask 5000.25, sold at the bid 5004: 15 ticks × $12.50 =
    $187.50 less two $3.50 commissions at the terminal, and the same in the bot's cash."""
    events, terminal_change = _round_trip(futures, "ES", 50.0, 5004.0)
    assert [(f.side, f.quantity) for f in events] == [(Side.BUY, 50.0), (Side.SELL, 50.0)]
    assert [d.volume for d in futures.deals() if d.symbol == "ES"] == [1.0, 1.0]
    assert terminal_change == pytest.approx(180.5, abs=0.005)  # the emulator's own figure
    assert _cash(events) == pytest.approx(terminal_change, abs=0.005)


def test_an_exchange_future_ignores_its_contract_size(futures: Mt5Harness) -> None:
    """FDAX: $12.50 a 0.5 tick is 25 units a lot, not its contract size of 10. 2 lots (50
    units) bought at 20,000.5 and sold at 19,990 lose 21 ticks × $12.50 × 2 and 4 commissions."""
    events, terminal_change = _round_trip(futures, "FDAX", 50.0, 19_990.0)
    assert [d.volume for d in futures.deals() if d.symbol == "FDAX"] == [2.0, 2.0]
    assert terminal_change == pytest.approx(-539.0, abs=0.005)
    assert _cash(events) == pytest.approx(terminal_change, abs=0.005)


def test_a_futures_instrument_is_in_units_of_its_tick_value(futures: Mt5Harness) -> None:
    """The instrument's limits are whole lots of 50 units, and its contract size — the units a
    lot holds, which a signal in lots is multiplied by — is 50, not trade_contract_size."""
    es = futures.broker.instrument("ES")
    assert (es.lot_step, es.min_quantity, es.max_quantity) == (50.0, 50.0, 5_000.0)
    assert es.contract_size == 50.0
    fdax = futures.broker.instrument("FDAX")
    assert (fdax.lot_step, fdax.contract_size) == (25.0, 25.0)
    eurusd = futures.broker.instrument("EURUSD")  # unchanged: a lot is its contract size
    assert (eurusd.lot_step, eurusd.contract_size) == (1_000.0, 100_000.0)


def test_less_than_a_futures_lot_is_refused_in_units(futures: Mt5Harness) -> None:
    (update,) = futures.submit(futures.order(Side.BUY, 49.0, symbol="ES"))
    assert not isinstance(update, Fill)
    assert update.reason is not None and "(50 units)" in update.reason
    assert futures.terminal.calls.get("order_send", 0) == 0


def _es_bar(i: int, price: float) -> Bar:
    return Bar("ES", MINUTE, EMULATOR_T0 - 10 * MINUTE + i * MINUTE, price, price, price, price, 1)


def test_one_percent_risk_on_es_risks_one_percent_at_the_terminal(futures: Mt5Harness) -> None:
    """fixed-fractional at 1% of $10,000 with a 2-point stop: $100 / $2 a unit = 50 units, one
    lot, which the terminal stops out for 2 points × $50 + the ask's tick + commissions; the
    engine's equity moves by what the terminal's balance moves (it once sized 50 lots)."""
    terminal = futures.terminal
    terminal.set_price("ES", 5000.0, 5000.0)
    balance_before = _balance(terminal)
    journal = Journal(":memory:")
    start_test_run(journal, "live", bot=futures.bot, mode="live", timeframe_s=MINUTE)
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.01, max_leverage=30))
    strategy = Scripted({0: lambda ctx, bar: ctx.buy("ES", stop_loss=4998.0)})
    config = EngineConfig(futures.bot, "live", ("ES",), MINUTE, 10_000.0)
    engine = Engine(
        config,
        strategy,
        futures.broker,
        journal,
        [("fixed-fractional", sizer)],
        venue=futures.broker,
    )
    engine.run([_es_bar(0, 5000.0)])
    settle_and_pump(engine, futures)
    (held,) = terminal.positions_get(symbol="ES") or ()
    assert held.volume == 1.0
    assert engine.portfolio.position("ES").quantity == 50.0
    terminal.set_price("ES", 4997.75, 4998.0)
    settle_and_pump(engine, futures)
    assert terminal.positions_get(symbol="ES") == ()
    terminal_change = _balance(terminal) - balance_before
    assert terminal_change == pytest.approx(-9 * 12.5 - 7.0, abs=0.005)
    assert engine.portfolio.equity() - 10_000.0 == pytest.approx(terminal_change, abs=0.005)


# -- every accepted mode books the terminal's money -------------------------------------------


@pytest.mark.parametrize(
    "mode",
    [
        C.SYMBOL_CALC_MODE_FOREX,
        C.SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE,
        C.SYMBOL_CALC_MODE_CFD,
        C.SYMBOL_CALC_MODE_CFDINDEX,
        C.SYMBOL_CALC_MODE_CFDLEVERAGE,
        C.SYMBOL_CALC_MODE_EXCH_STOCKS,
        C.SYMBOL_CALC_MODE_EXCH_STOCKS_MOEX,
    ],
)
def test_a_contract_size_mode_books_the_terminals_money(mode: int) -> None:
    """7 units = 0.07 lot of a contract of 100, bought at 250.02, sold at 253.10."""
    harness = _harness("hedging", {"XYZ": _contract_mode_symbol(mode)}, ("XYZ",))
    harness.connect()
    try:
        events, terminal_change = _round_trip(harness, "XYZ", 7.0, 253.10)
        assert [d.volume for d in harness.deals()] == [0.07, 0.07]
        assert terminal_change == pytest.approx(7 * 3.08 - 2 * 0.07 * 3.5, abs=0.011)
        assert _cash(events) == pytest.approx(terminal_change, abs=0.005)
    finally:
        harness.close()


# -- refused at start -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "name"),
    [
        (C.SYMBOL_CALC_MODE_EXCH_OPTIONS, "SYMBOL_CALC_MODE_EXCH_OPTIONS"),
        (C.SYMBOL_CALC_MODE_EXCH_OPTIONS_MARGIN, "SYMBOL_CALC_MODE_EXCH_OPTIONS_MARGIN"),
        (C.SYMBOL_CALC_MODE_EXCH_BONDS, "SYMBOL_CALC_MODE_EXCH_BONDS"),
        (C.SYMBOL_CALC_MODE_EXCH_BONDS_MOEX, "SYMBOL_CALC_MODE_EXCH_BONDS_MOEX"),
        (C.SYMBOL_CALC_MODE_SERV_COLLATERAL, "SYMBOL_CALC_MODE_SERV_COLLATERAL"),
        (35, "trade_calc_mode 35"),  # not in the MetaTrader5 package: not guessed at
    ],
)
def test_a_mode_the_runtime_cannot_book_is_refused_at_start(mode: int, name: str) -> None:
    harness = _harness("netting", {"BOND": {**ES, "trade_calc_mode": mode}}, ("EURUSD", "BOND"))
    with pytest.raises(PluginError) as refused:
        harness.connect()
    words = str(refused.value)
    assert words.startswith(f"spec.market.symbols[1]: BOND: {name}")
    assert "\n" not in words
    harness.close()
    assert harness.terminal.calls.get("order_send", 0) == 0


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        # A tick worth more when the price goes one way: a conversion rate, not a multiplier.
        ({"trade_tick_value_loss": 12.6}, "trade_tick_value_loss 12.6 differs"),
        (
            {"trade_tick_value": 0.0, "trade_tick_value_profit": 0.0, "trade_tick_value_loss": 0.0},
            "its tick value is 0",
        ),
    ],
)
def test_a_future_whose_tick_value_cannot_be_booked_is_refused(
    fields: dict[str, Any], words: str
) -> None:
    harness = _harness("netting", {"ES": {**ES, **fields}}, ("ES",))
    with pytest.raises(PluginError, match=r"^spec\.market\.symbols\[0\]: ES: ") as refused:
        harness.connect()
    assert "SYMBOL_CALC_MODE_FUTURES" in str(refused.value) and words in str(refused.value)
    harness.close()


def test_a_cfd_whose_tick_value_is_not_its_contract_size_is_refused() -> None:
    """A CFD pays price move × contract size; a terminal saying a 0.01 tick of a 100 contract
    is worth $2.50 books something else than the bot would."""
    spec = {**_contract_mode_symbol(C.SYMBOL_CALC_MODE_CFD), "trade_tick_value": 2.5}
    terminal = MT5Terminal(margin_mode="netting", symbols=gold_pro_symbols())
    terminal.add_symbol("CFDX", **spec)
    harness = Mt5Harness.build(venue=terminal)
    harness.symbols = ("EURUSD", "CFDX")
    with pytest.raises(PluginError, match=r"^spec\.market\.symbols\[1\]: CFDX: .*CFD.*2\.5"):
        harness.connect()
    harness.close()


def test_a_mapped_future_is_named_both_ways_when_refused() -> None:
    terminal = MT5Terminal(margin_mode="netting", symbols=gold_pro_symbols())
    terminal.update_symbol("GOLD.pro", trade_calc_mode=C.SYMBOL_CALC_MODE_EXCH_BONDS)
    harness = Mt5Harness.build(venue=terminal)
    with pytest.raises(PluginError, match=r"spec\.market\.symbols\[1\]: XAUUSD \(GOLD\.pro.*BONDS"):
        harness.connect()
    harness.close()


# -- pure -------------------------------------------------------------------------------------


def _spec(**fields: Any) -> rq.SymbolSpec:
    base = rq.SymbolSpec("ES", 2, 0.01, 0.25, 1.0, 100.0, 1.0, 0, 3, 2, 1.0, "USD")
    return base._replace(**fields)


@pytest.mark.parametrize(
    ("fields", "per_lot"),
    [
        ({"calc_mode": C.SYMBOL_CALC_MODE_FUTURES, "tick_value": 12.5}, 50.0),
        (
            {"calc_mode": C.SYMBOL_CALC_MODE_EXCH_FUTURES, "tick_value": 5.0, "tick_size": 0.01},
            500.0,
        ),
        ({"calc_mode": C.SYMBOL_CALC_MODE_FOREX, "contract_size": 100_000.0}, 100_000.0),
        (
            {
                "calc_mode": C.SYMBOL_CALC_MODE_CFDLEVERAGE,
                "contract_size": 100.0,
                "tick_value": 9.0,
            },
            100.0,
        ),
    ],
)
def test_units_per_lot_follow_the_calc_mode(fields: dict[str, Any], per_lot: float) -> None:
    spec = _spec(**fields)
    assert rq.units_per_lot(spec) == per_lot
    assert rq.to_units(3.0, spec) == 3 * per_lot
    assert rq.to_lots(3 * per_lot, spec) == 3.0


def test_a_futures_step_in_units_has_no_float_noise() -> None:
    """0.1 lot of a $5-per-0.01 future is 50 units, exactly; 0.3 - 0.1 lot is 100."""
    spec = _spec(
        calc_mode=C.SYMBOL_CALC_MODE_FUTURES,
        tick_value=5.0,
        tick_size=0.01,
        volume_step=0.1,
        volume_min=0.1,
    )
    assert rq.unit_limits(spec)[:2] == (50.0, 50.0)
    assert rq.to_units(0.3 - 0.1, spec) == 100.0
    assert rq.calc_mode_problem(spec) is None


def test_the_constants_are_the_packages() -> None:
    for number, name in rq.CALC_MODE_NAMES.items():
        assert getattr(C, name) == number
