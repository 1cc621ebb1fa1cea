"""Connection life cycle: initialize / login / shutdown / last_error, isolation, footprint."""

from __future__ import annotations

import threading

from tests.venues.mt5 import AccountInfo, MT5Terminal, TerminalInfo
from tests.venues.mt5 import constants as C


def test_calls_before_initialize_fail_with_no_ipc(raw_term: MT5Terminal) -> None:
    """MetaTrader5 Python reference, initialize + last_error: without a connection every
    function returns None and last_error() is (RES_E_INTERNAL_FAIL_CONNECT, 'No IPC
    connection'), the wheel's -10004."""
    mt5 = raw_term
    assert mt5.last_error() == (C.RES_S_OK, "Success")
    for call in (
        mt5.version,
        mt5.terminal_info,
        mt5.account_info,
        mt5.positions_total,
        mt5.positions_get,
        mt5.symbols_total,
    ):
        assert call() is None
        assert mt5.last_error() == (-10004, "No IPC connection")
    assert mt5.symbol_info_tick("EURUSD") is None
    assert mt5.order_send({"action": 1}) is None
    assert mt5.last_error()[0] == C.RES_E_INTERNAL_FAIL_CONNECT


def test_initialize_and_shutdown(raw_term: MT5Terminal) -> None:
    """initialize / shutdown reference: initialize() returns True and resets last_error to
    (1, 'Success'); shutdown() returns None and closes the connection."""
    mt5 = raw_term
    assert mt5.initialize() is True
    assert mt5.last_error() == (1, "Success")
    version = mt5.version()
    assert isinstance(version, tuple) and version[0] == 500 and isinstance(version[2], str)
    assert mt5.shutdown() is None
    assert mt5.account_info() is None
    assert mt5.last_error() == (-10004, "No IPC connection")
    assert mt5.initialize()  # re-initialize after shutdown works
    assert mt5.account_info() is not None


def test_initialize_with_credentials() -> None:
    """initialize(path, login=, password=, server=, timeout=, portable=) reference: wrong
    credentials -> False and (RES_E_AUTH_FAILED, 'Terminal: Authorization failed'); a bad
    argument type -> (RES_E_INVALID_PARAMS, 'Invalid "login" argument'); a terminal that cannot
    be started -> RES_E_INTERNAL_FAIL_INIT."""
    mt5 = MT5Terminal(login=1234, password="pw", server="Broker-Demo")
    assert mt5.initialize(login=1234, password="bad", server="Broker-Demo") is False
    assert mt5.last_error() == (-6, "Terminal: Authorization failed")
    assert mt5.initialize(login="1234") is False  # type: ignore[arg-type]
    assert mt5.last_error() == (-2, 'Invalid "login" argument')
    assert mt5.initialize(
        "C:\\Program Files\\MetaTrader 5\\terminal64.exe",
        login=1234,
        password="pw",
        server="Broker-Demo",
        timeout=60000,
        portable=False,
    )
    assert mt5.account_info().login == 1234  # type: ignore[union-attr]
    assert mt5.login(1234, password="nope") is False
    assert mt5.last_error()[0] == C.RES_E_AUTH_FAILED
    assert mt5.login(1234, password="pw", server="Broker-Demo") is True

    missing = MT5Terminal(installed=False)
    assert missing.initialize() is False
    code, message = missing.last_error()
    assert code == C.RES_E_INTERNAL_FAIL_INIT and message.startswith("IPC initialize failed")


def test_terminal_and_account_info(term: MT5Terminal) -> None:
    """terminal_info / account_info reference: named tuples TerminalInfo / AccountInfo with
    _asdict(); equity = balance + floating profit; margin_mode reports netting/hedging."""
    info = term.terminal_info()
    assert isinstance(info, TerminalInfo) and info.connected and info.trade_allowed
    account = term.account_info()
    assert isinstance(account, AccountInfo)
    assert account._asdict()["balance"] == 10000.0
    assert account.equity == 10000.0 and account.margin == 0.0
    assert account.margin_free == 10000.0 and account.leverage == 100
    assert account.margin_mode == C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
    assert account.currency == "USD" and account.trade_mode == C.ACCOUNT_TRADE_MODE_DEMO
    netting = MT5Terminal(margin_mode="netting")
    assert netting.initialize()
    assert netting.account_info().margin_mode == C.ACCOUNT_MARGIN_MODE_RETAIL_NETTING  # type: ignore[union-attr]


def test_instances_are_isolated() -> None:
    """Test isolation (no module-level state): two emulators in one process keep separate
    connections, accounts, positions and clocks."""
    a, b = MT5Terminal(balance=1000.0), MT5Terminal(balance=5000.0)
    assert a.initialize()
    assert b.account_info() is None  # b was never initialized
    assert b.initialize()
    a.order_send(
        {
            "action": C.TRADE_ACTION_DEAL,
            "symbol": "EURUSD",
            "volume": 0.01,
            "type": C.ORDER_TYPE_BUY,
            "type_filling": C.ORDER_FILLING_IOC,
        }
    )
    assert a.positions_total() == 1 and b.positions_total() == 0
    a.set_price("EURUSD", 1.2)
    assert b.symbol_info_tick("EURUSD").bid == 1.1  # type: ignore[union-attr]
    assert a.account_info().balance == 1000.0  # type: ignore[union-attr]
    assert b.account_info().balance == 5000.0  # type: ignore[union-attr]
    a.advance(60)
    assert a.now != b.now


def test_no_threads_left_behind() -> None:
    """The emulator is synchronous: constructing, trading and shutting down many instances
    starts no thread (and no process)."""
    # The threads alive before (another test's, still ending on this worker) may end during
    # the loop: only a thread the loop started and left running counts.
    before = set(threading.enumerate())
    for _ in range(20):
        mt5 = MT5Terminal()
        mt5.initialize()
        mt5.order_send(
            {
                "action": C.TRADE_ACTION_DEAL,
                "symbol": "EURUSD",
                "volume": 0.01,
                "type": C.ORDER_TYPE_SELL,
                "type_filling": C.ORDER_FILLING_FOK,
            }
        )
        mt5.shutdown()
    assert [t.name for t in threading.enumerate() if t not in before] == []


def test_python_api_trading_disabled(term: MT5Terminal) -> None:
    """TerminalInfo.tradeapi_disabled ("Disable algorithmic trading via external Python API"
    option): trade requests fail at the API level with RES_E_AUTO_TRADING_DISABLED and the
    _core message 'Auto-Trading using Python API disabled in Terminal' (GUESS: None result)."""
    term.update_terminal(tradeapi_disabled=True)
    request = {
        "action": C.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": 0.01,
        "type": C.ORDER_TYPE_BUY,
        "type_filling": C.ORDER_FILLING_IOC,
    }
    assert term.order_send(request) is None
    assert term.last_error() == (-8, "Auto-Trading using Python API disabled in Terminal")
    assert term.positions_total() == 0
