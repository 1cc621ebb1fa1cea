"""Fault injection: requotes, unknown outcomes, disconnects, latency, throttling."""

from __future__ import annotations

import time

import pytest

from tests.mt5.helpers import EPOCH, FAR_FUTURE, market, send_ok
from tests.venues.mt5 import CallError, Delay, Disconnect, MT5Terminal, UnknownOutcome
from tests.venues.mt5 import constants as C

BUY, SELL = C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL


def test_requote_sequence_then_success(term: MT5Terminal) -> None:
    """Trade server return codes 10004 (requote), 10020 (prices changed), 10021 (no quotes):
    nothing is executed and the result carries the current bid/ask; the client retries with a
    fresh price.  The real module's Buy() helper retries on 10004/10021 itself."""
    term.faults.script("order_send", [10004, 10020, None])
    first = term.order_send(market("EURUSD", BUY, 0.1))
    assert first is not None and first.retcode == C.TRADE_RETCODE_REQUOTE
    assert (first.bid, first.ask) == (1.1, 1.1001) and first.order == first.deal == 0
    second = term.order_send(market("EURUSD", BUY, 0.1))
    assert second is not None and second.retcode == C.TRADE_RETCODE_PRICE_CHANGED
    assert term.positions_total() == 0
    send_ok(term, market("EURUSD", BUY, 0.1))
    assert term.faults.pending("order_send") == 0
    term.faults.script("order_send", [10004, 10021])
    result = term.Buy("EURUSD", 0.1)
    assert result is not None and result.retcode == C.TRADE_RETCODE_DONE
    assert term.calls["order_send"] == 6 and term.positions_total() == 2


@pytest.mark.parametrize("retcode", [C.TRADE_RETCODE_TIMEOUT, C.TRADE_RETCODE_CONNECTION])
@pytest.mark.parametrize("executed", [True, False])
def test_unknown_outcome_leaves_chosen_state(
    term: MT5Terminal, retcode: int, executed: bool
) -> None:
    """10012 (timeout) and 10031 (no connection): the outcome is unknown to the client -- the
    result has no order/deal ticket -- and the test decides whether the server executed the
    request; either way history tells the truth (found by magic/comment)."""
    term.faults.script("order_send", [UnknownOutcome(retcode, executed=executed)])
    result = term.order_send(market("EURUSD", BUY, 0.1, magic=77, comment="cid-123"))
    assert result is not None and result.retcode == retcode
    assert result.order == 0 and result.deal == 0
    deals = [d for d in term.history_deals_get(EPOCH, FAR_FUTURE) or () if d.magic == 77]
    orders = [o for o in term.history_orders_get(EPOCH, FAR_FUTURE) or () if o.magic == 77]
    if executed:
        assert [d.comment for d in deals] == ["cid-123"] and len(orders) == 1
        assert term.positions_total() == 1
    else:
        assert deals == [] and orders == [] and term.positions_total() == 0


def test_plain_int_unknown_outcome_is_not_executed(term: MT5Terminal) -> None:
    """A bare scripted 10031 returns the code and changes nothing."""
    term.faults.script("order_send", [C.TRADE_RETCODE_CONNECTION])
    result = term.order_send(market("EURUSD", BUY, 0.1))
    assert result is not None and result.retcode == C.TRADE_RETCODE_CONNECTION
    assert term.positions_total() == 0


def test_ipc_disconnect_and_reconnect(term: MT5Terminal) -> None:
    """last_error codes RES_E_INTERNAL_FAIL_*: when the terminal link breaks every call returns
    None with the IPC error until initialize() succeeds again; a request that reached the
    server before the break (executed=True) is visible after reconnecting."""
    term.faults.script(
        "order_send", [Disconnect("ipc", code=C.RES_E_INTERNAL_FAIL_RECEIVE, executed=True)]
    )
    assert term.order_send(market("EURUSD", BUY, 0.1, comment="lost-ack")) is None
    assert term.last_error() == (-10002, "IPC recv failed")
    assert term.positions_total() is None
    assert term.last_error() == (-10004, "No IPC connection")
    assert term.symbol_info_tick("EURUSD") is None
    assert term.initialize()
    (pos,) = term.positions_get() or ()
    assert pos.comment == "lost-ack"


def test_trade_server_disconnect(term: MT5Terminal) -> None:
    """Terminal up, trade server lost: terminal_info().connected is False, trade requests
    answer TRADE_RETCODE_CONNECTION (10031), market data stays readable; reconnect restores."""
    term.faults.disconnect("server")
    info = term.terminal_info()
    assert info is not None and info.connected is False
    result = term.order_send(market("EURUSD", BUY, 0.1))
    assert result is not None and result.retcode == C.TRADE_RETCODE_CONNECTION
    check = term.order_check(market("EURUSD", BUY, 0.1))
    assert check is not None and check.retcode == C.TRADE_RETCODE_CONNECTION
    assert term.symbol_info_tick("EURUSD") is not None
    term.faults.reconnect("server")
    assert term.terminal_info().connected is True  # type: ignore[union-attr]
    send_ok(term, market("EURUSD", BUY, 0.1))


def test_scripted_call_errors_per_symbol(term: MT5Terminal) -> None:
    """Data functions fail with None + last_error(code, message) when scripted; a script bound
    to a symbol only affects calls for that symbol; it is consumed once."""
    term.faults.script(
        "symbol_info_tick", [CallError(C.RES_E_INTERNAL_FAIL_TIMEOUT)], symbol="EURUSD"
    )
    term.faults.script("positions_get", [C.RES_E_INTERNAL_FAIL_SEND])
    assert term.symbol_info_tick("USDJPY") is not None
    assert term.symbol_info_tick("EURUSD") is None
    assert term.last_error() == (-10005, "IPC timeout")
    assert term.symbol_info_tick("EURUSD") is not None
    assert term.last_error() == (1, "Success")
    assert term.positions_get() is None
    assert term.last_error() == (-10001, "IPC send failed")
    assert term.positions_get() == ()


def test_partial_fill_and_placed(term: MT5Terminal) -> None:
    """10010 (done partially): only part of the volume is executed and reported in
    ``volume``; 10008 (placed): the market order is accepted but filled later (next tick)."""
    term.faults.script("order_send", [C.TRADE_RETCODE_DONE_PARTIAL, C.TRADE_RETCODE_PLACED])
    part = term.order_send(market("EURUSD", BUY, 0.3))
    assert part is not None and part.retcode == C.TRADE_RETCODE_DONE_PARTIAL
    assert part.volume == 0.15 and term.positions_get()[0].volume == 0.15  # type: ignore[index]
    placed = term.order_send(market("EURUSD", SELL, 0.1))
    assert placed is not None and placed.retcode == C.TRADE_RETCODE_PLACED and placed.deal == 0
    assert [o.ticket for o in term.orders_get() or ()] == [placed.order]
    term.set_price("EURUSD", 1.1003, 1.1004)
    assert term.orders_total() == 0 and term.positions_total() == 2
    (deal,) = [
        d for d in term.history_deals_get(EPOCH, FAR_FUTURE) or () if d.order == placed.order
    ]
    assert deal.price == 1.1003


def test_throttling_on_emulated_clock(term: MT5Terminal) -> None:
    """10024 (too many requests) above the configured rate; the window uses the emulator
    clock so the test decides when the client may retry."""
    term.faults.throttle(max_requests=3, per_seconds=1.0)
    for _ in range(3):
        send_ok(term, market("EURUSD", BUY, 0.01))
    result = term.order_send(market("EURUSD", BUY, 0.01))
    assert result is not None and result.retcode == C.TRADE_RETCODE_TOO_MANY_REQUESTS
    term.advance(1.0)
    send_ok(term, market("EURUSD", BUY, 0.01))
    assert term.positions_total() == 4


def test_latency(term: MT5Terminal) -> None:
    """Configurable latency: every call (or one scripted call) sleeps before answering."""
    term.faults.latency_by_function["symbol_info_tick"] = 0.02
    t0 = time.perf_counter()
    assert term.symbol_info_tick("EURUSD") is not None
    assert time.perf_counter() - t0 >= 0.02
    term.faults.script("order_send", [Delay(0.02)])
    t0 = time.perf_counter()
    send_ok(term, market("EURUSD", BUY, 0.01))
    assert time.perf_counter() - t0 >= 0.02
    term.faults.clear()
    assert term.faults.latency_for("symbol_info_tick") == 0.0


def test_order_check_scripted(term: MT5Terminal) -> None:
    """order_check can be scripted like order_send (e.g. a scripted 10019)."""
    term.faults.script("order_check", [C.TRADE_RETCODE_NO_MONEY])
    check = term.order_check(market("EURUSD", BUY, 0.01))
    assert check is not None and check.retcode == C.TRADE_RETCODE_NO_MONEY
    check = term.order_check(market("EURUSD", BUY, 0.01))
    assert check is not None and check.retcode == 0


def test_scripted_initialize_failure_returns_false(raw_term: MT5Terminal) -> None:
    """initialize reference: "True in case of successful connection, otherwise False" -- a
    scripted failure (e.g. IPC timeout while the terminal starts) answers False, the next
    attempt succeeds."""
    raw_term.faults.script("initialize", [CallError(C.RES_E_INTERNAL_FAIL_TIMEOUT)])
    assert raw_term.initialize() is False
    assert raw_term.last_error() == (-10005, "IPC timeout")
    assert raw_term.initialize() is True
    raw_term.faults.script("symbol_select", [C.RES_E_FAIL])
    assert raw_term.symbol_select("GBPUSD") is False
    assert raw_term.last_error() == (-1, "Terminal: Call failed")
