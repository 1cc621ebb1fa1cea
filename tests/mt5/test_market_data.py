"""Symbols, ticks, bars, margin and profit calculation."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from tests.venues.mt5 import RATES_DTYPE, TICKS_DTYPE, MT5Terminal, SymbolInfo, Tick
from tests.venues.mt5 import constants as C


def _names(infos: tuple[SymbolInfo, ...] | None) -> set[str]:
    assert infos is not None
    return {s.name for s in infos}


def test_symbols_total_and_group_syntax(term: MT5Terminal) -> None:
    """symbols_get reference: group="*,!*USD*,!*EUR*" style filters -- comma-separated masks
    with '*', '!' excludes, conditions applied in order (includes first, then exclusions)."""
    assert term.symbols_total() == 6
    assert len(term.symbols_get()) == 6  # type: ignore[arg-type]
    assert _names(term.symbols_get(group="EUR*")) == {"EURUSD", "EURGBP"}
    assert _names(term.symbols_get(group="*USD*")) == {
        "EURUSD",
        "GBPUSD",
        "USDJPY",
        "XAUUSD",
    }
    assert _names(term.symbols_get(group="*,!*USD*")) == {"EURGBP", "US500"}
    assert _names(term.symbols_get(group="*USD*,!EUR*,!XAU*")) == {"GBPUSD", "USDJPY"}
    assert _names(term.symbols_get(group="EURUSD,US500")) == {"EURUSD", "US500"}
    # exclusions before inclusions are overridden by the later include
    assert _names(term.symbols_get(group="!EURUSD,*")) == _names(term.symbols_get())
    assert _names(term.symbols_get("EUR*")) == {"EURUSD", "EURGBP"}  # unnamed, as documented


def test_symbol_info_fields(term: MT5Terminal) -> None:
    """symbol_info reference / SymbolInfo: volume_min/max/step, trade_tick_size, digits,
    point, filling_mode mask, trade_exemode, stops level, bid/ask/spread; None for unknown."""
    info = term.symbol_info("EURUSD")
    assert isinstance(info, SymbolInfo)
    assert (info.digits, info.point, info.trade_tick_size) == (5, 1e-05, 1e-05)
    assert (info.volume_min, info.volume_max, info.volume_step) == (0.01, 500.0, 0.01)
    assert info.filling_mode == 3 and info.trade_exemode == C.SYMBOL_TRADE_EXECUTION_MARKET
    assert (info.bid, info.ask, info.spread) == (1.1, 1.1001, 10)
    assert info.trade_contract_size == 100000.0 and info.currency_profit == "USD"
    assert info._asdict()["name"] == "EURUSD"
    us500 = term.symbol_info("US500")
    assert us500 is not None and us500.trade_tick_size == 0.25 and us500.point == 0.01
    assert term.symbol_info("NOPE") is None
    assert term.last_error()[0] < 0


def test_symbol_select_and_ticks(term: MT5Terminal) -> None:
    """symbol_select / symbol_info_tick reference: Tick(time, bid, ask, last, volume,
    time_msc, flags, volume_real); a symbol must be selected in Market Watch for its tick."""
    assert term.symbol_info("GBPUSD").select is False  # type: ignore[union-attr]
    assert term.symbol_info_tick("GBPUSD") is None
    assert term.symbol_select("GBPUSD", True)
    tick = term.symbol_info_tick("GBPUSD")
    assert isinstance(tick, Tick) and tick.bid == 1.25 and tick.ask == 1.25012
    term.advance(5)
    term.set_price("EURUSD", 1.10123, 1.10130, last=1.10125, volume=3)
    tick = term.symbol_info_tick("EURUSD")
    assert tick is not None
    assert tick.time == int(term.now.timestamp()) and tick.time_msc == tick.time * 1000
    assert tick.flags & C.TICK_FLAG_BID and tick.flags & C.TICK_FLAG_ASK
    assert tick.flags & C.TICK_FLAG_LAST and tick.volume == 3
    assert term.symbol_select("GBPUSD", False)


def test_price_path_stepping(term: MT5Terminal) -> None:
    """Test control: a price path the test steps through (bids, or (bid, ask) pairs)."""
    term.set_path("EURUSD", [1.1001, (1.1002, 1.1004), 1.1003])
    assert term.step("EURUSD")
    assert term.symbol_info_tick("EURUSD").bid == 1.1001  # type: ignore[union-attr]
    assert term.step("EURUSD")
    assert term.symbol_info_tick("EURUSD").ask == 1.1004  # type: ignore[union-attr]
    assert not term.step("EURUSD")
    assert not term.step("EURUSD")
    assert term.symbol_info_tick("EURUSD").bid == 1.1003  # type: ignore[union-attr]


def test_copy_rates(term: MT5Terminal) -> None:
    """copy_rates_from / copy_rates_from_pos / copy_rates_range reference: numpy structured
    arrays (time, open, high, low, close, tick_volume, spread, real_volume), oldest first;
    start_pos 0 is the current bar; higher timeframes aggregate the minute bars."""
    t0 = int(term.now.timestamp())
    rows = [
        (
            t0 + 60 * i,
            1.1 + i * 1e-4,
            1.1 + i * 1e-4 + 5e-4,
            1.1 + i * 1e-4 - 5e-4,
            1.1 + (i + 1) * 1e-4,
        )
        for i in range(120)
    ]
    term.replay_rates("EURUSD", rows, spread=10)
    rates = term.copy_rates_from_pos("EURUSD", C.TIMEFRAME_M1, 0, 10)
    assert rates is not None and rates.dtype == RATES_DTYPE and len(rates) == 10
    assert rates["time"][-1] == t0 + 60 * 119
    assert np.all(np.diff(rates["time"]) == 60)
    last = rates[-1]
    assert abs(last["open"] - rows[-1][1]) < 1e-9 and abs(last["close"] - rows[-1][4]) < 1e-9
    assert abs(last["high"] - rows[-1][2]) < 1e-9 and last["tick_volume"] == 4
    assert last["spread"] == 10
    rng = term.copy_rates_range(
        "EURUSD", C.TIMEFRAME_M1, datetime.fromtimestamp(t0 + 600, UTC), t0 + 1199
    )
    assert rng is not None and len(rng) == 10 and rng["time"][0] == t0 + 600
    frm = term.copy_rates_from("EURUSD", C.TIMEFRAME_M1, t0 + 600, 5)
    assert frm is not None and list(frm["time"]) == [t0 + 60 * i for i in range(6, 11)]
    h1 = term.copy_rates_from_pos("EURUSD", C.TIMEFRAME_H1, 0, 5)
    assert h1 is not None and len(h1) == 2
    assert h1["tick_volume"][1] == 240 and abs(h1["open"][1] - rows[60][1]) < 1e-9
    assert term.copy_rates_from_pos("EURUSD", 999, 0, 5) is None


def test_load_rates_and_copy_ticks(term: MT5Terminal) -> None:
    """copy_ticks_from / copy_ticks_range reference (COPY_TICKS_ALL/INFO/TRADE) and seeded bar
    history for copy_rates_*."""
    t0 = int(term.now.timestamp()) - 3600
    term.load_rates("EURUSD", [(t0 + 60 * i, 1.0, 1.1, 0.9, 1.05, 7, 12, 0) for i in range(30)])
    assert len(term.copy_rates_range("EURUSD", C.TIMEFRAME_M1, t0, t0 + 1800)) == 30  # type: ignore[arg-type]
    start = term.now
    term.play("EURUSD", [1.1001, 1.1002, 1.1003])
    term.set_price("EURUSD", 1.1003, 1.1004, last=1.10035, volume=2)
    ticks = term.copy_ticks_from("EURUSD", start, 100, C.COPY_TICKS_ALL)
    assert ticks is not None and ticks.dtype == TICKS_DTYPE
    assert list(ticks["bid"][-4:]) == [1.1001, 1.1002, 1.1003, 1.1003]
    trade = term.copy_ticks_range("EURUSD", start, term.now, C.COPY_TICKS_TRADE)
    assert trade is not None and len(trade) == 1 and trade["last"][0] == 1.10035
    assert len(term.copy_ticks_from("EURUSD", start, 2, C.COPY_TICKS_ALL)) == 2  # type: ignore[arg-type]


def test_order_calc_margin_and_profit(term: MT5Terminal) -> None:
    """order_calc_margin / order_calc_profit reference, MQL5 margin formulas: Forex
    lots*contract/leverage (converted at the price when the profit currency is the deposit
    currency), CFD lots*contract*price*rate, CFD-leverage lots*contract*price/leverage; profit
    via tick value: (close-open)/tick_size*tick_value*lots."""
    assert term.order_calc_margin(C.ORDER_TYPE_BUY, "EURUSD", 1.0, 1.1) == 1100.0
    assert term.order_calc_margin(C.ORDER_TYPE_SELL, "USDJPY", 1.0, 150.0) == 1000.0
    assert term.order_calc_margin(C.ORDER_TYPE_BUY, "XAUUSD", 1.0, 2650.0) == 2650.0
    assert term.order_calc_margin(C.ORDER_TYPE_BUY, "US500", 1.0, 5900.0) == 295.0
    assert term.order_calc_profit(C.ORDER_TYPE_BUY, "EURUSD", 1.0, 1.1, 1.1010) == 100.0
    assert term.order_calc_profit(C.ORDER_TYPE_SELL, "EURUSD", 0.5, 1.1, 1.1010) == -50.0
    assert term.order_calc_profit(C.ORDER_TYPE_BUY, "US500", 2.0, 5900.0, 5901.0) == 2.0
    assert term.order_calc_margin(C.ORDER_TYPE_BUY, "NOPE", 1.0, 1.0) is None
