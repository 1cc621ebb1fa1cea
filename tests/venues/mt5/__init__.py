"""In-repo emulator of the Windows-only ``MetaTrader5`` Python module (tests only).

``MT5Terminal`` is a drop-in, stateful stand-in for the module object the MT5 broker adapter
takes by injection::

    from tests.venues.mt5 import MT5Terminal
    mt5 = MT5Terminal(margin_mode="netting")
    mt5.initialize()
    mt5.set_price("EURUSD", 1.1, 1.1001)          # test-side control

See ``terminal.py`` (behaviour), ``faults.py`` (fault injection), ``structures.py`` (result
types), ``constants.py`` (generated from the real wheel) and ``signatures.txt`` (recorded
function signatures / field names of the wheel's ``_core`` module).
"""

from . import constants
from .faults import CallError, Delay, Disconnect, FaultPlan, UnknownOutcome
from .structures import (
    RATES_DTYPE,
    TICKS_DTYPE,
    AccountInfo,
    BookInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
    TradeRequest,
)
from .terminal import (
    API_FUNCTIONS,
    ERROR_MESSAGES,
    RETCODE_COMMENTS,
    SYMBOL_FILLING_BOC,
    SYMBOL_FILLING_FOK,
    SYMBOL_FILLING_IOC,
    MT5Terminal,
    default_symbol_specs,
)

__all__ = [
    "API_FUNCTIONS",
    "ERROR_MESSAGES",
    "RATES_DTYPE",
    "RETCODE_COMMENTS",
    "SYMBOL_FILLING_BOC",
    "SYMBOL_FILLING_FOK",
    "SYMBOL_FILLING_IOC",
    "TICKS_DTYPE",
    "AccountInfo",
    "BookInfo",
    "CallError",
    "Delay",
    "Disconnect",
    "FaultPlan",
    "MT5Terminal",
    "OrderCheckResult",
    "OrderSendResult",
    "SymbolInfo",
    "TerminalInfo",
    "Tick",
    "TradeDeal",
    "TradeOrder",
    "TradePosition",
    "TradeRequest",
    "UnknownOutcome",
    "constants",
    "default_symbol_specs",
]
