"""Quantities are units of the base asset everywhere in the runtime — the same in backtest, paper
and live — and the MT5 broker converts to and from the terminal's lots at its own boundary:
the engine's money is the terminal's money, a sizer's 1% risk is 1% at the terminal, a symbol
whose profit the engine would book in the wrong currency is refused at start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    Mt5Harness,
    gold_pro_symbols,
    live_engine,
    minute_bar,
    settle_and_pump,
)
from tests.runtime.helpers import Scripted
from tests.venues.mt5 import MT5Terminal
from tradefleet_plugins.brokers import mt5_reports
from tradefleet_plugins.brokers.mt5_requests import (
    SymbolSpec,
    round_volume,
    to_lots,
    to_units,
    unit_limits,
    volume_problem,
)
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_plugins.strategies.external_signal import ExternalSignal
from tradefleet_plugins.strategies.external_signal_params import ExternalSignalParams
from tradefleet_runtime.sdk import (
    BrokerContext,
    Direction,
    Instrument,
    PluginError,
    ReasonCode,
    Signal,
    limit_problem,
)

ROOT = Path(__file__).resolve().parents[3]

EURUSD = SymbolSpec("EURUSD", 5, 1e-5, 1e-5, 0.01, 500.0, 0.01, 0, 3, 2, 100_000.0, "USD")
GOLD = SymbolSpec("GOLD.pro", 2, 0.01, 0.01, 0.01, 100.0, 0.01, 50, 3, 2, 100.0, "USD")
US500 = SymbolSpec("US500", 2, 0.01, 0.25, 0.1, 100.0, 0.1, 0, 2, 3, 1.0, "USD")


def _terminal(margin_mode: str, commission_per_lot: float = 0.0) -> MT5Terminal:
    symbols = gold_pro_symbols()
    symbols["EURUSD"]["commission_per_lot"] = commission_per_lot
    return MT5Terminal(margin_mode=margin_mode, symbols=symbols)


@pytest.fixture(params=["netting", "hedging"])
def venue(request: pytest.FixtureRequest, transport: str) -> Iterator[Mt5Harness]:
    # A commission, so the engine's equity is compared with the terminal's balance fees and all.
    harness = Mt5Harness.build(
        venue=_terminal(request.param, commission_per_lot=-3.5), transport=transport
    )
    harness.symbols = ("EURUSD",)
    harness.connect()
    yield harness
    harness.close()


# -- money: the engine books what the terminal books ------------------------------------------


def test_a_one_lot_stop_out_moves_the_engines_equity_as_the_terminals_balance(
    venue: Mt5Harness,
) -> None:
    """100,000 euros (1 lot) bought at the ask 1.10010, stopped out at the bid 1.09400: 61
    pips × 100,000 = $610 and two $3.50 commissions at the terminal, and the same in the
    engine's account, to the cent (it once booked $0.006, a lot taken for one euro)."""
    balance_before = float(venue.terminal.account_info().balance)
    strategy = Scripted({0: lambda ctx, bar: ctx.buy("EURUSD", 100_000.0, stop_loss=1.0950)})
    engine, _journal = live_engine(venue, strategy)
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    (held,) = venue.terminal.positions_get()
    assert held.volume == 1.0  # one lot at the terminal
    assert engine.portfolio.position("EURUSD").quantity == 100_000.0
    venue.terminal.set_price("EURUSD", 1.0940)
    settle_and_pump(engine, venue)
    assert venue.terminal.positions_get() == ()
    assert engine.portfolio.position("EURUSD").quantity == 0.0
    terminal_change = float(venue.terminal.account_info().balance) - balance_before
    engine_change = engine.portfolio.equity() - 10_000.0
    assert terminal_change == pytest.approx(-617.0, abs=0.005)  # the emulator's own figure
    assert engine_change == pytest.approx(terminal_change, abs=0.005)
    (trade,) = engine.portfolio.trades
    assert trade.exit_reason == "stop_loss"


def test_fixed_fractional_one_percent_with_a_20_pip_stop_sends_half_a_lot(
    venue: Mt5Harness,
) -> None:
    """1% of $10,000 is $100; a 20-pip stop loses $0.0020 a euro: 50,000 euros, 0.5 lot (it
    once asked for 49,999 "lots", refused only by volume_max)."""
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.01, max_leverage=30))
    strategy = Scripted({0: lambda ctx, bar: ctx.buy("EURUSD", stop_loss=1.0980)})
    engine, journal = live_engine(venue, strategy, risk=[("fixed-fractional", sizer)])
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    (sent,) = [o for o in venue.history_orders() if o.magic == venue.broker._magic]
    assert sent.volume_initial == 0.5
    assert engine.portfolio.position("EURUSD").quantity == 50_000.0
    (decision,) = journal.query(
        "SELECT action, quantity_out FROM risk_decisions WHERE plugin = 'fixed-fractional'"
    )
    assert decision[0] == "approve" and decision[1] == pytest.approx(50_000.0)


def test_the_live_examples_risk_chain_trades_on_mt5(venue: Mt5Harness) -> None:
    """examples/mt5/eurusd-mt5-bridge.yaml's chain (fixed-fractional, 0.5% risk, leverage 5) on
    an entry with ema-cross's 0.4% stop: $50 / (1.1 × 0.004) = 11,363 euros, 0.11 lot at the
    terminal (in lots it asked for 11,363 "lots" and every order was vetoed)."""
    from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry

    example = yaml.safe_load((ROOT / "examples" / "mt5" / "eurusd-mt5-bridge.yaml").read_text())
    registry = PluginRegistry.discover()
    chain = [
        (entry["name"], registry.build(PluginKind.RISK, entry["name"], entry["params"], ["risk"]))
        for entry in example["spec"]["risk"]
    ]
    strategy = Scripted({0: lambda ctx, bar: ctx.buy("EURUSD", stop_loss=1.1 * (1 - 0.004))})
    engine, _journal = live_engine(venue, strategy, risk=chain)
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    (sent,) = [o for o in venue.history_orders() if o.magic == venue.broker._magic]
    assert sent.volume_initial == 0.11
    assert engine.portfolio.position("EURUSD").quantity == 11_000.0


def test_a_signal_in_lots_is_sent_as_that_many_lots(venue: Mt5Harness) -> None:
    """An MT5 webhook sender writes ``"volume": 0.01`` (lots); with ``volume_unit: lots`` the
    strategy orders volume × 100,000 euros (0.07 lot: 7,000, exactly), which leave as 0.07
    lot."""
    strategy = ExternalSignal(ExternalSignalParams(volume_unit="lots"))  # type: ignore[arg-type]
    engine, _journal = live_engine(venue, strategy)
    engine.signals = strategy
    engine.run([minute_bar(0, 1.1)])
    signal = Signal(
        "EURUSD", Direction.BUY, entry=1.1001, stop_loss=1.0980, take_profit=1.1050, volume=0.07
    )
    accepted, reason, _ = engine.handle_signal(signal)
    assert accepted, reason
    settle_and_pump(engine, venue)
    (sent,) = [o for o in venue.history_orders() if o.magic == venue.broker._magic]
    assert sent.volume_initial == 0.07
    assert engine.portfolio.position("EURUSD").quantity == 7_000.0  # exactly, no float noise


def test_a_signal_in_units_is_the_orders_quantity(venue: Mt5Harness) -> None:
    strategy = ExternalSignal(ExternalSignalParams())  # volume_unit: units, the default
    engine, _journal = live_engine(venue, strategy)
    engine.signals = strategy
    engine.run([minute_bar(0, 1.1)])
    signal = Signal(
        "EURUSD", Direction.BUY, entry=1.1001, stop_loss=1.0980, take_profit=1.1050, volume=7000
    )
    assert engine.handle_signal(signal)[0]
    settle_and_pump(engine, venue)
    (sent,) = [o for o in venue.history_orders() if o.magic == venue.broker._magic]
    assert sent.volume_initial == 0.07


# -- the instrument and the terminal's records, in units ----------------------------------------


def test_the_instrument_is_in_units_and_keeps_the_contract_size(netting: Mt5Harness) -> None:
    eurusd = netting.broker.instrument("EURUSD")
    assert (eurusd.lot_step, eurusd.min_quantity, eurusd.max_quantity) == (
        1_000.0,
        1_000.0,
        50_000_000.0,
    )
    assert (eurusd.tick_size, eurusd.contract_size) == (1e-5, 100_000.0)
    gold = netting.broker.instrument("XAUUSD")
    assert (gold.lot_step, gold.min_quantity, gold.max_quantity) == (1.0, 1.0, 10_000.0)
    assert gold.contract_size == 100.0
    index = netting.broker.instrument("US500")
    assert (index.lot_step, index.min_quantity, index.max_quantity) == (0.1, 0.1, 100.0)


def test_reports_read_back_in_units(hedging: Mt5Harness) -> None:
    """Deals, orders and positions the terminal holds in lots are the bot's units in every
    report start-up reconciliation reads (two positions of 0.1 and 0.2 lot: 0.3 lot is 30,000,
    not 30,000.000000000004)."""
    first, second = hedging.order(quantity=10_000.0), hedging.order(quantity=20_000.0)
    hedging.submit(first)
    hedging.submit(second)
    gold = hedging.order(symbol="XAUUSD", quantity=7.0, stop_loss=2600.0)
    hedging.submit(gold)
    assert [d.volume for d in hedging.deals()] == [0.1, 0.2, 0.07]
    positions = {p.symbol: p.quantity for p in hedging.broker.position_reports()}
    assert positions == {"EURUSD": 30_000.0, "XAUUSD": 7.0}
    assert {s: p.quantity for s, p in hedging.broker.positions().items()} == positions
    fills = {f.client_order_id: f.quantity for f in hedging.broker.fill_reports(0)}
    assert fills == {
        first.client_order_id: 10_000.0,
        second.client_order_id: 20_000.0,
        gold.client_order_id: 7.0,
    }
    reports = {r.client_order_id: r for r in hedging.broker.order_reports(0)}
    gold_report = reports[gold.client_order_id]
    assert (gold_report.quantity, gold_report.filled_quantity) == (7.0, 7.0)
    assert reports[f"{gold.client_order_id}-sl"].quantity == 7.0


# -- profit currency: refused, not booked in the wrong currency --------------------------------


def test_a_symbol_whose_profit_is_not_in_the_accounts_currency_is_refused_at_start() -> None:
    """USDJPY pays its profit in yen; the engine would book yen as dollars on this USD account.
    Refused at connect, naming the manifest's field, the symbol and both currencies."""
    harness = Mt5Harness.netting()
    harness.symbols = ("EURUSD", "USDJPY")
    with pytest.raises(PluginError) as refused:
        harness.connect()
    words = str(refused.value)
    assert words.startswith("spec.market.symbols[1]: USDJPY ")
    assert "JPY" in words and "USD" in words and "does not convert profit currencies" in words
    assert "\n" not in words
    harness.close()
    assert harness.venue.calls.get("order_send", 0) == 0


def test_a_mapped_symbol_is_named_both_ways_when_refused() -> None:
    terminal = _terminal("netting")
    terminal.update_symbol("GOLD.pro", currency_profit="EUR")
    harness = Mt5Harness.build(venue=terminal)
    with pytest.raises(PluginError, match=r"spec\.market\.symbols\[1\]: XAUUSD \(GOLD\.pro"):
        harness.connect()
    harness.close()


def test_capital_in_another_currency_than_the_account_is_refused() -> None:
    harness = Mt5Harness.netting()
    with pytest.raises(PluginError, match=r"^spec\.capital\.currency: .*EUR.*USD"):
        harness.broker.connect(
            BrokerContext("default/eur-bot", "live", ("EURUSD",), "EUR", 10_000.0)
        )
    harness.close()


def test_symbols_paying_in_the_accounts_currency_connect() -> None:
    harness = Mt5Harness.netting()
    harness.symbols = ("EURUSD", "XAUUSD", "US500")
    harness.connect()
    try:
        assert harness.broker.is_connected()
    finally:
        harness.close()


# -- units <-> lots, pure ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "lots", "units"),
    [
        (EURUSD, 0.07, 7_000.0),
        (EURUSD, 0.3 - 0.1, 20_000.0),  # 0.19999999999999998 lot
        (EURUSD, 1.0, 100_000.0),
        (GOLD, 0.07, 7.0),
        (GOLD, 0.29, 29.0),  # 0.29 × 100 is 28.999999999999996
        (US500, 0.1 * 3, 0.3),  # 0.30000000000000004 lot of a contract of 1
        (US500, 0.7, 0.7),
    ],
)
def test_lots_become_units_without_float_noise(spec: SymbolSpec, lots: float, units: float) -> None:
    assert to_units(lots, spec) == units
    assert round_volume(to_lots(units, spec), spec) == pytest.approx(lots, abs=1e-12)


@given(st.sampled_from([EURUSD, GOLD, US500]), st.integers(min_value=1, max_value=5_000))
@example(EURUSD, 7)
@example(GOLD, 29)
def test_a_volume_on_the_step_survives_the_round_trip(spec: SymbolSpec, steps: int) -> None:
    lots = round(steps * spec.volume_step, 8)
    units = to_units(lots, spec)
    step_units = unit_limits(spec)[0]
    assert units == pytest.approx(steps * step_units, rel=1e-15)
    assert units == round(units, 8)  # no noise in the last digits
    assert round_volume(to_lots(units, spec), spec) == lots


def test_limits_are_named_in_units_and_lots() -> None:
    index = US500._replace(volume_step=0.01)  # volume_min 0.1 above the step
    below = volume_problem(round_volume(to_lots(0.05, index), index), index, 0.05)
    assert below is not None and below[0] is ReasonCode.BELOW_MIN_QUANTITY
    assert below[1] == "quantity 0.05 (0.05 lots) is below US500's volume_min 0.1 lots (0.1 units)"
    above = volume_problem(600.0, EURUSD, 60_000_000.0)
    assert above is not None
    assert above[1] == (
        "quantity 60000000 (600 lots) is above EURUSD's volume_max 500 lots (50000000 units)"
    )
    nothing = volume_problem(round_volume(to_lots(400.0, EURUSD), EURUSD), EURUSD, 400.0)
    assert nothing is not None and "(1000 units)" in nothing[1]


def test_pure_reports_convert_with_the_units_they_are_given() -> None:
    class Deal:
        type, reason, volume, price, commission, fee = 0, 0, 0.07, 1.1, -0.25, 0.0
        time, ticket, symbol = EMULATOR_T0, 9, "GOLD.pro"

    fill = mt5_reports.fill_from_deal(Deal(), "tf1", "XAUUSD", lambda _s, v: to_units(v, GOLD))
    assert fill is not None and fill.quantity == 7.0


def test_a_minimum_notional_is_quantity_times_price() -> None:
    """Quantities are units: 1,000 euros at 1.1 is $1,100 of notional, whatever a venue's lot
    holds (the contract size is information, not a multiplier)."""
    instrument = Instrument("EURUSD", min_notional=1_000.0, contract_size=100_000.0)
    assert limit_problem(instrument, 1_000.0, 1.1) is None
    small = limit_problem(instrument, 900.0, 1.1)
    assert small is not None and small[0] is ReasonCode.BELOW_MIN_NOTIONAL
    assert "notional 990 " in small[1]
