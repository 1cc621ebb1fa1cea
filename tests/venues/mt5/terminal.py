"""A stateful, in-process emulator of the ``MetaTrader5`` Python module and its terminal.

``MT5Terminal`` instances are used exactly like the real module::

    mt5 = MT5Terminal()
    assert mt5.initialize()
    mt5.order_send({"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1,
                    "type": mt5.ORDER_TYPE_BUY, "type_filling": mt5.ORDER_FILLING_IOC})

Test-side controls (never present on the real module) are the methods without an MT5
counterpart: ``set_price``, ``set_path``/``step``/``play``, ``replay_rates``, ``load_rates``,
``advance``/``set_time``, ``update_symbol``, ``update_account``, ``update_terminal``,
``set_market_open``, ``add_symbol``, ``deposit``, plus ``faults`` (see :mod:`.faults`).

Behaviour follows the MetaTrader5 Python reference (mql5.com/en/docs/python_metatrader5) and
the MQL5 trade-request rules ("Requirements and Limitations in Making Trading Operations",
"Trade Server Return Codes", "Order/Deal/Position properties").  Where the documentation does
not say what the terminal does, the choice made here is marked ``GUESS`` in the code.
"""

from __future__ import annotations

import bisect
import calendar
import fnmatch
import functools
import math
import re
import time as _time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from numbers import Real
from typing import Any, TypeVar, cast

import numpy as np

from . import constants as C
from .faults import CallError, Delay, Disconnect, DisconnectKind, FaultPlan, UnknownOutcome
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

# --------------------------------------------------------------------------------------------
# static tables
# --------------------------------------------------------------------------------------------

#: ``last_error()`` messages, as found in the ``_core`` binary (see signatures.txt [messages]).
ERROR_MESSAGES: dict[int, str] = {
    C.RES_S_OK: "Success",
    C.RES_E_FAIL: "Terminal: Call failed",
    C.RES_E_INVALID_PARAMS: "Terminal: Invalid params",
    C.RES_E_NO_MEMORY: "Terminal: Out of memory",
    C.RES_E_NOT_FOUND: "Terminal: Not found",
    C.RES_E_INVALID_VERSION: "Terminal: Incompatible versions, please install the latest "
    "version of Terminal and Python module",
    C.RES_E_AUTH_FAILED: "Terminal: Authorization failed",
    C.RES_E_UNSUPPORTED: "Terminal: Unsupported function",
    C.RES_E_AUTO_TRADING_DISABLED: "Auto-Trading using Python API disabled in Terminal",
    C.RES_E_INTERNAL_FAIL: "IPC call failed",
    C.RES_E_INTERNAL_FAIL_SEND: "IPC send failed",
    C.RES_E_INTERNAL_FAIL_RECEIVE: "IPC recv failed",
    C.RES_E_INTERNAL_FAIL_INIT: "IPC initialize failed, %s",
    C.RES_E_INTERNAL_FAIL_CONNECT: "No IPC connection",
    C.RES_E_INTERNAL_FAIL_TIMEOUT: "IPC timeout",
}

#: ``comment`` the terminal puts in OrderSendResult/OrderCheckResult.  GUESS for most codes:
#: 'Request executed', 'Done' (order_check), 'Requote', 'Unsupported filling mode',
#: 'Invalid volume', 'Invalid stops', 'No money', 'Market closed' are the strings commonly
#: reported from real terminals; the others are shortened from the return-codes table.
RETCODE_COMMENTS: dict[int, str] = {
    0: "Done",
    10004: "Requote",
    10006: "Request rejected",
    10007: "Request canceled",
    10008: "Order placed",
    10009: "Request executed",
    10010: "Request executed partially",
    10011: "Request processing error",
    10012: "Request timeout",
    10013: "Invalid request",
    10014: "Invalid volume",
    10015: "Invalid price",
    10016: "Invalid stops",
    10017: "Trade disabled",
    10018: "Market closed",
    10019: "No money",
    10020: "Prices changed",
    10021: "Off quotes",
    10022: "Invalid expiration",
    10023: "Order state changed",
    10024: "Too many requests",
    10025: "No changes",
    10026: "AutoTrading disabled by server",
    10027: "AutoTrading disabled by client",
    10028: "Request locked",
    10029: "Order or position frozen",
    10030: "Unsupported filling mode",
    10031: "No connection",
    10032: "Only real accounts allowed",
    10033: "Limit orders reached",
    10034: "Volume limit reached",
    10035: "Invalid order",
    10036: "Position already closed",
    10038: "Invalid close volume",
    10039: "Close order already exists",
    10040: "Limit positions reached",
    10041: "Pending order activation rejected",
    10042: "Only long positions allowed",
    10043: "Only short positions allowed",
    10044: "Only position closing allowed",
    10045: "FIFO close rule",
}

# SYMBOL_FILLING_* / SYMBOL_EXPIRATION_* flags exist in MQL5 only, not in the Python module.
SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2
SYMBOL_FILLING_BOC = 4
SYMBOL_EXPIRATION_GTC = 1
SYMBOL_EXPIRATION_DAY = 2
SYMBOL_EXPIRATION_SPECIFIED = 4
SYMBOL_EXPIRATION_SPECIFIED_DAY = 8

COMMENT_MAX = 31  # MqlTradeRequest.comment is a 32-char buffer: 31 characters survive

_REQUEST_FIELDS: dict[str, type] = {
    "action": int,
    "magic": int,
    "order": int,
    "symbol": str,
    "volume": float,
    "price": float,
    "stoplimit": float,
    "sl": float,
    "tp": float,
    "deviation": int,
    "type": int,
    "type_filling": int,
    "type_time": int,
    "expiration": int,
    "comment": str,
    "position": int,
    "position_by": int,
}

_BUY_TYPES = frozenset(
    {C.ORDER_TYPE_BUY, C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_BUY_STOP, C.ORDER_TYPE_BUY_STOP_LIMIT}
)
_PENDING_TYPES = frozenset(range(C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_SELL_STOP_LIMIT + 1))
_LIMIT_TYPES = frozenset({C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_SELL_LIMIT})
_ACTIONS = frozenset(
    {
        C.TRADE_ACTION_DEAL,
        C.TRADE_ACTION_PENDING,
        C.TRADE_ACTION_SLTP,
        C.TRADE_ACTION_MODIFY,
        C.TRADE_ACTION_REMOVE,
        C.TRADE_ACTION_CLOSE_BY,
    }
)

DEFAULT_START = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)  # a Monday

_SYMBOL_BASE: dict[str, Any] = {
    "custom": False,
    "chart_mode": C.SYMBOL_CHART_MODE_BID,
    "select": True,
    "visible": True,
    "spread_float": True,
    "ticks_bookdepth": 10,
    "trade_calc_mode": C.SYMBOL_CALC_MODE_FOREX,
    "trade_mode": C.SYMBOL_TRADE_MODE_FULL,
    "trade_stops_level": 0,
    "trade_freeze_level": 0,
    "trade_exemode": C.SYMBOL_TRADE_EXECUTION_MARKET,
    "swap_mode": C.SYMBOL_SWAP_MODE_POINTS,
    "swap_rollover3days": C.DAY_OF_WEEK_WEDNESDAY,
    "expiration_mode": 15,
    "filling_mode": SYMBOL_FILLING_FOK | SYMBOL_FILLING_IOC,
    "order_mode": 127,
    "order_gtc_mode": C.SYMBOL_ORDERS_GTC,
    "digits": 5,
    "point": 1e-05,
    "trade_tick_size": 1e-05,
    "trade_tick_value": 1.0,
    "trade_contract_size": 100000.0,
    "volume_min": 0.01,
    "volume_max": 500.0,
    "volume_step": 0.01,
    "volume_limit": 0.0,
    "swap_long": -0.7,
    "swap_short": -1.0,
    "margin_hedged": 100000.0,
    "currency_base": "EUR",
    "currency_profit": "USD",
    "currency_margin": "EUR",
}


def default_symbol_specs() -> dict[str, dict[str, Any]]:
    """The default instruments: name -> SymbolInfo field overrides (plus ``bid``/``ask``).

    Extra keys understood besides SymbolInfo fields: ``commission_per_lot`` (account currency,
    charged on every deal, negative = cost) and ``margin_rate``.
    """
    return {
        "EURUSD": {
            "bid": 1.10000,
            "ask": 1.10010,
            "description": "Euro vs US Dollar",
            "path": "Forex\\EURUSD",
        },
        "GBPUSD": {
            "bid": 1.25000,
            "ask": 1.25012,
            "currency_base": "GBP",
            "currency_margin": "GBP",
            "trade_exemode": C.SYMBOL_TRADE_EXECUTION_INSTANT,
            "filling_mode": SYMBOL_FILLING_FOK,
            "trade_stops_level": 10,
            "select": False,
            "visible": False,
            "description": "Great Britain Pound vs US Dollar",
            "path": "Forex\\GBPUSD",
        },
        "EURGBP": {
            "bid": 0.85000,
            "ask": 0.85015,
            "currency_profit": "GBP",
            "trade_tick_value": 1.25,
            "description": "Euro vs Great Britain Pound",
            "path": "Forex\\EURGBP",
        },
        "USDJPY": {
            "bid": 150.000,
            "ask": 150.012,
            "digits": 3,
            "point": 0.001,
            "trade_tick_size": 0.001,
            "trade_tick_value": 0.6667,
            "currency_base": "USD",
            "currency_margin": "USD",
            "currency_profit": "JPY",
            "filling_mode": SYMBOL_FILLING_IOC,
            "description": "US Dollar vs Japanese Yen",
            "path": "Forex\\USDJPY",
        },
        "XAUUSD": {
            "bid": 2650.00,
            "ask": 2650.30,
            "digits": 2,
            "point": 0.01,
            "trade_tick_size": 0.01,
            "trade_tick_value": 1.0,
            "trade_contract_size": 100.0,
            "volume_max": 100.0,
            "trade_calc_mode": C.SYMBOL_CALC_MODE_CFDLEVERAGE,
            "trade_stops_level": 50,
            "currency_base": "XAU",
            "currency_margin": "XAU",
            "margin_hedged": 50.0,
            "description": "Gold vs US Dollar",
            "path": "Metals\\XAUUSD",
        },
        "US500": {
            "bid": 5900.00,
            "ask": 5900.50,
            "digits": 2,
            "point": 0.01,
            "trade_tick_size": 0.25,
            "trade_tick_value": 0.25,
            "trade_contract_size": 1.0,
            "volume_min": 0.1,
            "volume_max": 100.0,
            "volume_step": 0.1,
            "trade_calc_mode": C.SYMBOL_CALC_MODE_CFD,
            "trade_exemode": C.SYMBOL_TRADE_EXECUTION_EXCHANGE,
            "filling_mode": SYMBOL_FILLING_IOC | SYMBOL_FILLING_BOC,
            "currency_base": "USD",
            "currency_margin": "USD",
            "margin_rate": 0.05,
            "description": "US 500 Cash Index",
            "path": "Indices\\US500",
        },
    }


# --------------------------------------------------------------------------------------------
# internal mutable records
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Position:
    ticket: int
    time_msc: int
    time_update_msc: int
    type: int
    magic: int
    identifier: int
    reason: int
    volume: float
    price_open: float
    sl: float
    tp: float
    symbol: str
    comment: str
    swap: float = 0.0
    margin: float = 0.0


@dataclass(slots=True)
class _Order:
    ticket: int
    time_setup_msc: int
    time_done_msc: int
    time_expiration: int
    type: int
    type_time: int
    type_filling: int
    state: int
    magic: int
    position_id: int
    position_by_id: int
    reason: int
    volume_initial: float
    volume_current: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    price_stoplimit: float
    symbol: str
    comment: str
    request_position: int = 0  # the ``position`` field of the request that created it
    # A deal sent with ORDER_FILLING_RETURN that filled in part keeps its rest working (state
    # PARTIAL): the worst price its request allowed (its price moved by its deviation), which
    # the rest fills at or better; 0: at the market.
    rest_limit: float = 0.0


@dataclass(slots=True)
class _Deal:
    ticket: int
    order: int
    time_msc: int
    type: int
    entry: int
    magic: int
    position_id: int
    reason: int
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    symbol: str
    comment: str
    fee: float = 0.0


@dataclass(slots=True)
class _Symbol:
    name: str
    info: dict[str, Any]
    commission_per_lot: float = 0.0
    margin_rate: float = 1.0
    # A test knob (additive; 0: none, today's behaviour), in points: a stops level the server
    # applies without stating it in SymbolInfo (a floating level some dealers use): a
    # position's SL or TP set closer to the close price than this is held at this distance
    # instead of being refused, so the position's ``sl`` read back is not the one asked.
    held_stops_level: int = 0
    # A test knob (additive; 0: none, today's behaviour), in points: a pending order's price
    # moved by TRADE_ACTION_MODIFY is held on the nearest multiple of this many points (a
    # server snapping to a coarser step than the tick it states), so the order's
    # ``price_open`` read back is not the one sent.
    held_price_step: int = 0
    market_open: bool = True
    bid: float = 0.0
    ask: float = 0.0
    last: float = 0.0
    tick_volume: int = 0
    tick_msc: int = 0
    ticks: list[tuple[int, float, float, float, int, int, int, float]] = field(default_factory=list)
    tick_times: list[int] = field(default_factory=list)  # time_msc, parallel to ticks
    bars: list[list[float]] = field(default_factory=list)  # M1: t, o, h, l, c, tv, spread, rv
    bar_times: list[int] = field(default_factory=list)
    path: list[tuple[float, float | None]] = field(default_factory=list)
    # aggregates for floating profit: sum(volume), sum(volume * price_open) per side
    buy_volume: float = 0.0
    buy_notional: float = 0.0
    sell_volume: float = 0.0
    sell_notional: float = 0.0
    pending: dict[int, _Order] = field(default_factory=dict)
    stops: dict[int, _Position] = field(default_factory=dict)  # positions with sl or tp


class _Reject(Exception):
    def __init__(self, retcode: int) -> None:
        super().__init__(retcode)
        self.retcode = retcode


F = TypeVar("F", bound=Callable[..., Any])

# functions that work (or fail in their own way) without a terminal connection
_NO_IPC_NEEDED = frozenset({"initialize", "shutdown", "last_error"})
# functions whose failure value is False rather than None
_BOOL_RESULT = frozenset(
    {"initialize", "login", "symbol_select", "market_book_add", "market_book_release"}
)


def _api(func: F) -> F:
    """Wrap a public MT5 function: latency, IPC check, scripted faults, last_error reset."""
    name = func.__name__

    @functools.wraps(func)
    def wrapper(self: MT5Terminal, *args: Any, **kwargs: Any) -> Any:
        self.calls[name] = self.calls.get(name, 0) + 1
        delay = self.faults.latency_for(name)
        if delay > 0:
            _time.sleep(delay)
        if name == "last_error":  # reports, never resets, the previous call's error
            return self._last_error
        failed = False if name in _BOOL_RESULT else None
        if name not in _NO_IPC_NEEDED and not self._ipc:
            self._set_error(C.RES_E_INTERNAL_FAIL_CONNECT)
            return failed
        if name in ("order_send", "order_check"):
            return func(self, *args, **kwargs)
        symbol = kwargs.get("symbol")
        if symbol is None and args and isinstance(args[0], str):
            symbol = args[0]
        step = self.faults.take(name, symbol if isinstance(symbol, str) else None)
        if isinstance(step, Delay):
            _time.sleep(step.seconds)
        elif isinstance(step, Disconnect):
            self._fault_disconnect(step.kind)
            if step.kind == "ipc":
                self._set_error(step.code)
                return failed
        elif isinstance(step, CallError):
            self._set_error(step.code, step.message)
            return failed
        elif isinstance(step, int):
            self._set_error(step)
            return failed
        self._set_error(C.RES_S_OK)
        return func(self, *args, **kwargs)

    return cast(F, wrapper)


def _to_seconds(value: Any) -> int:
    """MT5 converts ``datetime`` with ``.timestamp()`` (naive = local time) and ints as-is."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(value)
    return int(float(value))


def _group_matcher(group: str) -> Callable[[str], bool]:
    """MT5 group syntax: comma-separated masks with ``*``, ``!`` excludes; applied in order."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in group.split(","):
        item = raw.strip()
        if not item:
            continue
        negate = item.startswith("!")
        mask = item[1:].strip() if negate else item
        pattern = re.compile(fnmatch.translate(mask.replace("?", "[?]")), re.IGNORECASE)
        rules.append((negate, pattern))

    def match(name: str) -> bool:
        selected = False
        for negate, pattern in rules:
            if pattern.match(name):
                selected = not negate
        return selected

    return match


_group_cache = functools.lru_cache(maxsize=256)(_group_matcher)


def _on_grid(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) < 1e-7 * max(1.0, abs(ratio))


def _timeframe_seconds(timeframe: int) -> int | None:
    """Fixed bar length in seconds, 0 for MN1 (calendar month), None if invalid."""
    unit = timeframe & 0xC000
    n = timeframe & 0x3FFF
    if unit == 0 and n in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30):
        return n * 60
    if unit == 0x4000 and n in (1, 2, 3, 4, 6, 8, 12, 24):
        return n * 3600
    if timeframe == C.TIMEFRAME_W1:
        return 7 * 86400
    if timeframe == C.TIMEFRAME_MN1:
        return 0
    return None


def _bucket(t: int, timeframe: int) -> int:
    secs = _timeframe_seconds(timeframe)
    if secs == 0:
        d = datetime.fromtimestamp(t, UTC)
        return calendar.timegm((d.year, d.month, 1, 0, 0, 0))
    assert secs is not None
    if timeframe == C.TIMEFRAME_W1:  # MT5 weekly bars open on Sunday; 1970-01-04 was a Sunday
        return t - ((t - 3 * 86400) % secs)
    return t - t % secs


# --------------------------------------------------------------------------------------------
# the emulator
# --------------------------------------------------------------------------------------------


class MT5Terminal:
    """One emulated terminal + trade server + account.  See the module docstring.

    Every MT5 function may answer None (or False for the bool ones) when the terminal is not
    connected or a fault is scripted, exactly like the real module; their return types say so.
    """

    # the real module's metadata
    __version__ = C.PACKAGE_VERSION
    __author__ = C.PACKAGE_AUTHOR

    def __init__(
        self,
        *,
        symbols: Mapping[str, Mapping[str, Any]] | None = None,
        extra_symbols: Mapping[str, Mapping[str, Any]] | None = None,
        margin_mode: int | str = "hedging",
        login: int = 51234567,
        password: str = "demo-password",
        server: str = "MetaQuotes-Demo",
        name: str = "Emulated Trader",
        company: str = "MetaQuotes Ltd.",
        currency: str = "USD",
        balance: float = 10000.0,
        leverage: int = 100,
        trade_mode: int = C.ACCOUNT_TRADE_MODE_DEMO,
        start_time: datetime | int = DEFAULT_START,
        path: str = "C:\\Program Files\\MetaTrader 5\\terminal64.exe",
        build: int = 4755,
        build_date: str = "20 Dec 2024",
        installed: bool = True,
        limit_orders: int = 200,
        latency: float = 0.0,
    ) -> None:
        if isinstance(margin_mode, str):
            margin_mode = {
                "hedging": C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
                "netting": C.ACCOUNT_MARGIN_MODE_RETAIL_NETTING,
                "exchange": C.ACCOUNT_MARGIN_MODE_EXCHANGE,
            }[margin_mode]
        self.faults = FaultPlan(self)
        self.faults.latency = latency
        #: number of calls per API function (test aid)
        self.calls: dict[str, int] = {}
        self._ipc = False
        self._server_up = True
        self._installed = installed
        self._path = path
        self._password = password
        self._build = build
        self._build_date = build_date
        self._last_error: tuple[int, str] = (C.RES_S_OK, ERROR_MESSAGES[C.RES_S_OK])
        self._now_msc = _to_seconds(start_time) * 1000
        self._request_id = 0
        self._next_order = 70000001
        self._next_deal = 50000001
        self._terminal: dict[str, Any] = {
            "community_account": False,
            "community_connection": False,
            "connected": True,
            "dlls_allowed": False,
            "trade_allowed": True,
            "tradeapi_disabled": False,
            "email_enabled": False,
            "ftp_enabled": False,
            "notifications_enabled": False,
            "mqid": False,
            "build": build,
            "maxbars": 100000,
            "codepage": 0,
            "ping_last": 45000,
            "community_balance": 0.0,
            "retransmission": 0.0,
            "company": company,
            "name": "MetaTrader 5",
            "language": "English",
            "path": path.rsplit("\\", 1)[0],
            "data_path": path.rsplit("\\", 1)[0],
            "commondata_path": "C:\\Users\\trader\\AppData\\Roaming\\MetaQuotes\\Terminal\\Common",
        }
        self._account: dict[str, Any] = {
            "login": login,
            "trade_mode": trade_mode,
            "leverage": leverage,
            "limit_orders": limit_orders,
            "margin_so_mode": C.ACCOUNT_STOPOUT_MODE_PERCENT,
            "trade_allowed": True,
            "trade_expert": True,
            "margin_mode": margin_mode,
            "currency_digits": 2,
            "fifo_close": False,
            "balance": 0.0,
            "credit": 0.0,
            "margin_so_call": 50.0,
            "margin_so_so": 30.0,
            "margin_initial": 0.0,
            "margin_maintenance": 0.0,
            "assets": 0.0,
            "liabilities": 0.0,
            "commission_blocked": 0.0,
            "name": name,
            "server": server,
            "currency": currency,
            "company": company,
        }
        self._symbols: dict[str, _Symbol] = {}
        self._positions: dict[int, _Position] = {}
        self._netting: dict[str, int] = {}  # symbol -> position ticket (netting mode)
        self._orders: dict[int, _Order] = {}  # active (pending) orders
        self._hist_orders: dict[int, _Order] = {}
        self._hist_index: list[tuple[int, int]] = []  # (time_setup_msc, ticket), sorted
        self._hist_orders_by_pos: dict[int, list[int]] = {}
        self._deals: dict[int, _Deal] = {}
        self._deal_index: list[tuple[int, int]] = []  # (time_msc, ticket), sorted
        self._deals_by_pos: dict[int, list[int]] = {}
        self._deals_by_order: dict[int, list[int]] = {}
        self._margin_total = 0.0
        self._swap_total = 0.0  # accrued swap of open positions (part of floating profit)
        specs = dict(default_symbol_specs() if symbols is None else symbols)
        specs.update(extra_symbols or {})
        for sym_name, spec in specs.items():
            self.add_symbol(sym_name, **spec)
        if balance:
            self.deposit(balance, comment="Initial deposit")

    # ------------------------------------------------------------------------------------
    # constants: ``mt5.ORDER_TYPE_BUY`` etc. are class attributes (set below the class);
    # this keeps static checkers happy about the dynamic names.
    # ------------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"module 'MetaTrader5' has no attribute '{name}'")

    # ====================================================================================
    # test-side controls
    # ====================================================================================
    @property
    def now(self) -> datetime:
        """The emulated server clock (UTC)."""
        return datetime.fromtimestamp(self._now_msc / 1000, UTC)

    def _clock_seconds(self) -> float:
        return self._now_msc / 1000

    def set_time(self, when: datetime | int | float) -> None:
        """Move the clock forward to ``when`` (seconds or datetime); expires pending orders."""
        msc = int(when.timestamp() * 1000) if isinstance(when, datetime) else int(when * 1000)
        if msc < self._now_msc:
            raise ValueError("the emulated clock cannot go backwards")
        self._now_msc = msc
        self._expire_orders()

    def advance(self, seconds: float) -> None:
        """Advance the clock by ``seconds``."""
        self.set_time(self._now_msc / 1000 + seconds)

    def add_symbol(self, name: str, **spec: Any) -> None:
        """Add (or replace) an instrument.  ``spec`` = SymbolInfo fields + bid/ask/extras."""
        spec = dict(spec)
        commission = float(spec.pop("commission_per_lot", 0.0))
        margin_rate = float(spec.pop("margin_rate", 1.0))
        bid = float(spec.pop("bid", 0.0))
        ask = float(spec.pop("ask", 0.0))
        info = dict(_SYMBOL_BASE)
        info.update({"name": name, "path": name, "description": name})
        unknown = set(spec) - set(SymbolInfo._fields)
        if unknown:
            raise TypeError(f"unknown SymbolInfo fields: {sorted(unknown)}")
        info.update(spec)
        info.setdefault("trade_tick_value_profit", info["trade_tick_value"])
        info.setdefault("trade_tick_value_loss", info["trade_tick_value"])
        self._symbols[name] = _Symbol(name, info, commission, margin_rate)
        if bid > 0:
            self.set_price(name, bid, ask if ask > 0 else None)

    def update_symbol(self, name: str, **fields: Any) -> None:
        """Change SymbolInfo fields (e.g. ``filling_mode``, ``trade_exemode``, ``trade_mode``)."""
        sym = self._symbols[name]
        for key, value in fields.items():
            if key == "commission_per_lot":
                sym.commission_per_lot = float(value)
            elif key == "margin_rate":
                sym.margin_rate = float(value)
            elif key == "held_stops_level":
                sym.held_stops_level = int(value)
            elif key == "held_price_step":
                sym.held_price_step = int(value)
            elif key in SymbolInfo._fields:
                sym.info[key] = value
            else:
                raise TypeError(f"unknown SymbolInfo field {key!r}")

    def update_account(self, **fields: Any) -> None:
        """Change AccountInfo fields (e.g. ``trade_allowed``, ``leverage``, ``margin_mode``)."""
        for key, value in fields.items():
            if key not in AccountInfo._fields or key in ("equity", "margin", "profit"):
                raise TypeError(f"cannot set AccountInfo field {key!r}")
            self._account[key] = value

    def update_terminal(self, **fields: Any) -> None:
        """Change TerminalInfo fields (e.g. ``trade_allowed=False`` = AutoTrading off)."""
        for key, value in fields.items():
            if key not in TerminalInfo._fields:
                raise TypeError(f"unknown TerminalInfo field {key!r}")
            self._terminal[key] = value

    def set_market_open(self, symbol: str, is_open: bool) -> None:
        """Open/close the trading session of ``symbol`` (closed -> retcode 10018)."""
        self._symbols[symbol].market_open = is_open

    def deposit(self, amount: float, comment: str = "Deposit") -> int:
        """Book a DEAL_TYPE_BALANCE deal (positive deposit, negative withdrawal)."""
        self._account["balance"] += amount
        ticket = self._new_deal(
            order=0,
            type_=C.DEAL_TYPE_BALANCE,
            entry=C.DEAL_ENTRY_IN,
            magic=0,
            position_id=0,
            reason=C.DEAL_REASON_CLIENT,
            volume=0.0,
            price=0.0,
            commission=0.0,
            profit=amount,
            symbol="",
            comment=comment,
        )
        return ticket

    def rollover(self, days: int = 1) -> None:
        """Charge ``days`` of swap on every open position (SYMBOL_SWAP_MODE_POINTS: swap_long /
        swap_short points per lot; SYMBOL_SWAP_MODE_CURRENCY_DEPOSIT: money per lot; other
        modes are not modelled).  Accrued swap shows in TradePosition.swap and equity and is
        booked on the closing deal's ``swap``."""
        for position in self._positions.values():
            info = self._symbols[position.symbol].info
            rate = info["swap_long" if position.type == C.POSITION_TYPE_BUY else "swap_short"]
            if info["swap_mode"] == C.SYMBOL_SWAP_MODE_POINTS:
                amount = rate * info["point"] / info["trade_tick_size"] * info["trade_tick_value"]
            elif info["swap_mode"] == C.SYMBOL_SWAP_MODE_CURRENCY_DEPOSIT:
                amount = rate
            else:
                continue
            charge = round(amount * position.volume * days, 2)
            position.swap += charge
            self._swap_total += charge

    def set_price(
        self,
        symbol: str,
        bid: float,
        ask: float | None = None,
        *,
        last: float = 0.0,
        volume: int = 0,
        time: datetime | float | None = None,
    ) -> None:
        """Publish a tick.  ``ask`` defaults to ``bid`` + the current spread.  Pending orders
        and SL/TP are checked against the new prices.  ``time`` moves the clock first."""
        if time is not None:
            self.set_time(time)
        sym = self._symbols[symbol]
        info = sym.info
        if ask is None:
            spread = sym.ask - sym.bid if sym.ask > 0 else info["point"] * 10
            ask = bid + spread
        digits = info["digits"]
        bid, ask = round(bid, digits), round(ask, digits)
        flags = 0
        if bid != sym.bid:
            flags |= C.TICK_FLAG_BID
        if ask != sym.ask:
            flags |= C.TICK_FLAG_ASK
        if last:
            flags |= C.TICK_FLAG_LAST
        if volume:
            flags |= C.TICK_FLAG_VOLUME
        sym.bid, sym.ask, sym.last, sym.tick_msc = bid, ask, last, self._now_msc
        for key, value in (("bid", bid), ("ask", ask), ("last", last)):
            if value:
                hi, lo = info.get(key + "high", 0.0), info.get(key + "low", 0.0)
                info[key + "high"] = max(hi, value)
                info[key + "low"] = value if lo == 0.0 else min(lo, value)
        now_s = self._now_msc // 1000
        sym.ticks.append((now_s, bid, ask, last, volume, self._now_msc, flags, float(volume)))
        sym.tick_times.append(self._now_msc)
        spread_pts = round((ask - bid) / info["point"])
        bar_t = now_s - now_s % 60
        bars = sym.bars
        if bars and bars[-1][0] == bar_t:
            bar = bars[-1]
            bar[2] = max(bar[2], bid)
            bar[3] = min(bar[3], bid)
            bar[4] = bid
            bar[5] += 1
            bar[6] = min(bar[6], spread_pts)
            bar[7] += volume
        elif not bars or bars[-1][0] < bar_t:
            bars.append([bar_t, bid, bid, bid, bid, 1, spread_pts, volume])
            sym.bar_times.append(bar_t)
        self._check_triggers(sym)

    def set_path(self, symbol: str, path: Iterable[float | tuple[float, float]]) -> None:
        """Queue a price path (bids, or (bid, ask) pairs) consumed by :meth:`step`."""
        sym = self._symbols[symbol]
        steps: list[tuple[float, float | None]] = []
        for p in path:
            if isinstance(p, tuple):
                steps.append((float(p[0]), float(p[1])))
            else:
                steps.append((float(p), None))
        steps.reverse()
        sym.path = steps

    def step(self, symbol: str, n: int = 1, *, interval: float = 1.0) -> bool:
        """Apply the next ``n`` ticks of the queued path, ``interval`` seconds apart.
        Returns False once the path is exhausted."""
        sym = self._symbols[symbol]
        for _ in range(n):
            if not sym.path:
                return False
            bid, ask = sym.path.pop()
            self.advance(interval)
            self.set_price(symbol, bid, ask)
        return bool(sym.path)

    def play(
        self, symbol: str, path: Iterable[float | tuple[float, float]], *, interval: float = 1.0
    ) -> None:
        """Apply a whole price path at once."""
        self.set_path(symbol, path)
        while self.step(symbol, interval=interval):
            pass

    def replay_rates(
        self,
        symbol: str,
        rows: Iterable[Sequence[float]] | np.ndarray,
        *,
        spread: int | None = None,
    ) -> None:
        """Replay OHLC rows ``(time, open, high, low, close[, ...])`` (or a RATES_DTYPE array) as
        ticks open -> low -> high -> close (bullish) / open -> high -> low -> close (bearish),
        triggering pending orders and SL/TP on the way.  ``time`` must not go backwards."""
        sym = self._symbols[symbol]
        point = sym.info["point"]
        for row in rows:
            t, o, h, lo, c = (float(row[i]) for i in range(5))
            pts = spread if spread is not None else round((sym.ask - sym.bid) / point)
            seq = (o, lo, h, c) if c >= o else (o, h, lo, c)
            start = max(t, self._now_msc / 1000)
            for i, px in enumerate(seq):
                self.set_time(start + i * 0.001 * 10)
                self.set_price(symbol, px, px + pts * point)

    def load_rates(self, symbol: str, rows: Iterable[Sequence[float]] | np.ndarray) -> None:
        """Seed M1 bar history ``(time, open, high, low, close, tick_volume, spread,
        real_volume)`` without generating ticks or moving the clock."""
        sym = self._symbols[symbol]
        for row in rows:
            vals = [float(x) for x in row] + [0.0] * (8 - len(row))
            t = int(vals[0]) - int(vals[0]) % 60
            i = bisect.bisect_left(sym.bar_times, t)
            bar = [t, *vals[1:8]]
            if i < len(sym.bar_times) and sym.bar_times[i] == t:
                sym.bars[i] = bar
            else:
                sym.bar_times.insert(i, t)
                sym.bars.insert(i, bar)

    # -- fault hooks ----------------------------------------------------------------------
    def _fault_disconnect(self, kind: DisconnectKind) -> None:
        if kind == "ipc":
            self._ipc = False
        else:
            self._server_up = False
            self._terminal["connected"] = False

    def _fault_reconnect(self, kind: DisconnectKind) -> None:
        if kind == "ipc":
            self._ipc = True
        else:
            self._server_up = True
            self._terminal["connected"] = True

    def _set_error(self, code: int, message: str | None = None) -> None:
        if message is None:
            message = ERROR_MESSAGES.get(code, "Terminal: Call failed")
            if code == C.RES_E_INTERNAL_FAIL_INIT:
                message = message % "MetaTrader 5 x64 not found"
        self._last_error = (code, message)

    # ====================================================================================
    # connection
    # ====================================================================================
    @_api
    def initialize(
        self,
        path: str | None = None,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
        portable: bool = False,
    ) -> bool:
        """initialize([path],[server="SERVER"],[login=LOGIN],[password="PASSWORD"])"""
        for key, value, typ in (
            ("path", path, str),
            ("login", login, int),
            ("password", password, str),
            ("server", server, str),
            ("timeout", timeout, int),
        ):
            if value is not None and not isinstance(value, typ):
                self._set_error(C.RES_E_INVALID_PARAMS, f'Invalid "{key}" argument')
                return False
        if not self._installed:
            self._set_error(C.RES_E_INTERNAL_FAIL_INIT)
            return False
        if path is not None and path.lower() != self._path.lower():
            self._set_error(
                C.RES_E_INTERNAL_FAIL_INIT,
                f"IPC initialize failed, Process create failed '{path}'",
            )
            return False
        self._ipc = True
        if login is not None and not self._authorize(login, password, server):
            return False
        self._set_error(C.RES_S_OK)
        return True

    def _authorize(self, login: int, password: str | None, server: str | None) -> bool:
        ok = (
            login == self._account["login"]
            and (password is None or password == self._password)
            and (server is None or server == self._account["server"])
        )
        if not ok:
            self._set_error(C.RES_E_AUTH_FAILED)
        return ok

    @_api
    def login(
        self,
        login: int,
        *,
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
    ) -> bool:
        """login(login,[server="SERVER"],[password="PASSWORD"])"""
        if not isinstance(login, int):
            self._set_error(C.RES_E_INVALID_PARAMS, 'Invalid "login" argument')
            return False
        return self._authorize(login, password, server)

    @_api
    def shutdown(self) -> None:
        """shutdown() -- returns None like the real module."""
        self._ipc = False

    @_api
    def version(self) -> tuple[int, int, str] | None:
        """version() -> (terminal version, build, release date)."""
        return (500, self._build, self._build_date)

    @_api
    def last_error(self) -> tuple[int, str]:
        """last_error() -> (code, description) of the previous call; RES_S_OK = (1, 'Success')."""
        return self._last_error

    @_api
    def terminal_info(self) -> TerminalInfo | None:
        return TerminalInfo(**self._terminal)

    @_api
    def account_info(self) -> AccountInfo | None:
        profit = self._floating_total()
        equity = self._account["balance"] + self._account["credit"] + profit
        margin = self._margin_total
        fields = dict(self._account)
        fields["balance"] = round(fields["balance"], 2)
        return AccountInfo(
            **fields,
            profit=round(profit, 2),
            equity=round(equity, 2),
            margin=round(margin, 2),
            margin_free=round(equity - margin, 2),
            margin_level=(equity / margin * 100.0) if margin > 0 else 0.0,
        )

    # ====================================================================================
    # symbols and market data
    # ====================================================================================
    @_api
    def symbols_total(self) -> int | None:
        return len(self._symbols)

    @_api
    def symbols_get(self, group: str | None = None) -> tuple[SymbolInfo, ...] | None:
        """symbols_get([group="GROUP"]) -- the reference example passes the group unnamed too
        (``symbols_get("*RU*")``)."""
        syms = self._symbols.values()
        if group is not None:
            match = _group_cache(group)
            syms = [s for s in syms if match(s.name)]  # type: ignore[assignment]
        return tuple(self._symbol_info(s) for s in syms)

    def _symbol_info(self, sym: _Symbol) -> SymbolInfo:
        info = sym.info
        return SymbolInfo(
            **info,
            bid=sym.bid,
            ask=sym.ask,
            last=sym.last,
            time=sym.tick_msc // 1000,
            spread=round((sym.ask - sym.bid) / info["point"]) if sym.ask else 0,
        )

    def _known(self, symbol: Any) -> _Symbol | None:
        sym = self._symbols.get(symbol) if isinstance(symbol, str) else None
        if sym is None:
            # GUESS: unknown symbols answer None with (-1, 'Terminal: Call failed')
            self._set_error(C.RES_E_FAIL)
        return sym

    @_api
    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        sym = self._known(symbol)
        return None if sym is None else self._symbol_info(sym)

    @_api
    def symbol_info_tick(self, symbol: str) -> Tick | None:
        """Current prices.  GUESS: a symbol not selected in Market Watch answers None."""
        sym = self._known(symbol)
        if sym is None:
            return None
        if not sym.info["select"]:
            self._set_error(C.RES_E_FAIL)
            return None
        if not sym.ticks:
            return Tick()
        return Tick(*sym.ticks[-1])

    @_api
    def symbol_select(self, symbol: str, enable: bool = True) -> bool:
        """symbol_select(symbol,[enable]) -- cannot hide a symbol with positions/orders."""
        sym = self._known(symbol)
        if sym is None:
            return False
        if not enable and (
            sym.pending or any(p.symbol == symbol for p in self._positions.values())
        ):
            self._set_error(C.RES_E_FAIL)
            return False
        sym.info["select"] = bool(enable)
        sym.info["visible"] = bool(enable)
        return True

    @_api
    def market_book_add(self, symbol: str) -> bool:
        return self._known(symbol) is not None

    @_api
    def market_book_release(self, symbol: str) -> bool:
        return self._known(symbol) is not None

    @_api
    def market_book_get(self, symbol: str) -> tuple[BookInfo, ...] | None:
        """A one-level book built from the current bid/ask (volume 1 lot each side)."""
        sym = self._known(symbol)
        if sym is None:
            return None
        return (
            BookInfo(C.BOOK_TYPE_SELL, sym.ask, 1, 1.0),
            BookInfo(C.BOOK_TYPE_BUY, sym.bid, 1, 1.0),
        )

    def _rates_args(self, symbol: Any, timeframe: Any) -> _Symbol | None:
        sym = self._known(symbol)
        if sym is None:
            return None
        if not isinstance(timeframe, int) or _timeframe_seconds(timeframe) is None:
            self._set_error(C.RES_E_INVALID_PARAMS)
            return None
        return sym

    def _bars(self, sym: _Symbol, timeframe: int) -> list[list[float]]:
        if timeframe == C.TIMEFRAME_M1:
            return sym.bars
        out: list[list[float]] = []
        for bar in sym.bars:
            t = _bucket(int(bar[0]), timeframe)
            if out and out[-1][0] == t:
                agg = out[-1]
                agg[2] = max(agg[2], bar[2])
                agg[3] = min(agg[3], bar[3])
                agg[4] = bar[4]
                agg[5] += bar[5]
                agg[6] = min(agg[6], bar[6])
                agg[7] += bar[7]
            else:
                out.append([t, *bar[1:]])
        return out

    @staticmethod
    def _rates_array(bars: Sequence[Sequence[float]]) -> np.ndarray:
        arr = np.empty(len(bars), dtype=RATES_DTYPE)
        for i, b in enumerate(bars):
            arr[i] = (int(b[0]), b[1], b[2], b[3], b[4], int(b[5]), int(b[6]), int(b[7]))
        return arr

    @_api
    def copy_rates_from(
        self, symbol: str, timeframe: int, date_from: datetime | int, count: int
    ) -> np.ndarray | None:
        """``count`` bars opened at or before ``date_from``, oldest first."""
        sym = self._rates_args(symbol, timeframe)
        if sym is None:
            return None
        try:
            t = _to_seconds(date_from)
        except TypeError:
            self._set_error(C.RES_E_INVALID_PARAMS)
            return None
        bars = self._bars(sym, timeframe)
        end = bisect.bisect_right([b[0] for b in bars], t)
        return self._rates_array(bars[max(0, end - count) : end])

    @_api
    def copy_rates_from_pos(
        self, symbol: str, timeframe: int, start_pos: int, count: int
    ) -> np.ndarray | None:
        """``count`` bars ending ``start_pos`` bars back from the current one (0 = current)."""
        sym = self._rates_args(symbol, timeframe)
        if sym is None:
            return None
        bars = self._bars(sym, timeframe)
        end = len(bars) - start_pos
        if start_pos < 0 or count < 0 or end <= 0:
            self._set_error(C.RES_E_INVALID_PARAMS)
            return None
        return self._rates_array(bars[max(0, end - count) : end])

    @_api
    def copy_rates_range(
        self, symbol: str, timeframe: int, date_from: datetime | int, date_to: datetime | int
    ) -> np.ndarray | None:
        """Bars opened within [date_from, date_to]."""
        sym = self._rates_args(symbol, timeframe)
        if sym is None:
            return None
        try:
            t0, t1 = _to_seconds(date_from), _to_seconds(date_to)
        except TypeError:
            self._set_error(C.RES_E_INVALID_PARAMS)
            return None
        bars = self._bars(sym, timeframe)
        times = [b[0] for b in bars]
        return self._rates_array(
            bars[bisect.bisect_left(times, t0) : bisect.bisect_right(times, t1)]
        )

    def _ticks_array(self, sym: _Symbol, lo: int, hi: int, count: int, flags: int) -> np.ndarray:
        rows = sym.ticks[lo:hi]
        if flags == C.COPY_TICKS_INFO:
            rows = [r for r in rows if r[6] & (C.TICK_FLAG_BID | C.TICK_FLAG_ASK)]
        elif flags == C.COPY_TICKS_TRADE:
            rows = [r for r in rows if r[6] & (C.TICK_FLAG_LAST | C.TICK_FLAG_VOLUME)]
        return np.array(rows[:count], dtype=TICKS_DTYPE)

    @_api
    def copy_ticks_from(
        self, symbol: str, date_from: datetime | int, count: int, flags: int
    ) -> np.ndarray | None:
        """Up to ``count`` ticks at or after ``date_from``."""
        sym = self._known(symbol)
        if sym is None:
            return None
        try:
            t = _to_seconds(date_from)
        except TypeError:
            self._set_error(C.RES_E_INVALID_PARAMS)
            return None
        lo = bisect.bisect_left(sym.tick_times, t * 1000)
        return self._ticks_array(sym, lo, len(sym.ticks), count, flags)

    @_api
    def copy_ticks_range(
        self, symbol: str, date_from: datetime | int, date_to: datetime | int, flags: int
    ) -> np.ndarray | None:
        """Ticks with date_from <= time <= date_to (seconds, inclusive)."""
        sym = self._known(symbol)
        if sym is None:
            return None
        try:
            t0, t1 = _to_seconds(date_from), _to_seconds(date_to)
        except TypeError:
            self._set_error(C.RES_E_INVALID_PARAMS)
            return None
        lo = bisect.bisect_left(sym.tick_times, t0 * 1000)
        hi = bisect.bisect_right(sym.tick_times, t1 * 1000 + 999)
        return self._ticks_array(sym, lo, hi, hi - lo, flags)

    # ====================================================================================
    # margin / profit
    # ====================================================================================
    def _margin(self, sym: _Symbol, order_type: int, volume: float, price: float) -> float:
        """MQL5 "Margin calculation" formulas, converted to the account currency when the
        margin or profit currency is the account currency (no cross rates)."""
        info = sym.info
        mode = info["trade_calc_mode"]
        contract = float(info["trade_contract_size"])
        leverage = max(1, int(self._account["leverage"]))
        rate = sym.margin_rate
        acct = self._account["currency"]
        if mode in (C.SYMBOL_CALC_MODE_FOREX, C.SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE):
            margin = volume * contract * rate
            if mode == C.SYMBOL_CALC_MODE_FOREX:
                margin /= leverage
            if info["currency_margin"] != acct and info["currency_profit"] == acct:
                margin *= price
            return margin
        if mode in (C.SYMBOL_CALC_MODE_FUTURES, C.SYMBOL_CALC_MODE_EXCH_FUTURES):
            return volume * float(info.get("margin_initial") or 0.0) * rate
        if mode == C.SYMBOL_CALC_MODE_CFDLEVERAGE:
            return volume * contract * price / leverage * rate
        # CFD, CFDINDEX, exchange stocks ...: no leverage
        return volume * contract * price * rate

    def _profit(
        self, sym: _Symbol, order_type: int, volume: float, open_: float, close: float
    ) -> float:
        info = sym.info
        diff = (close - open_) if order_type in _BUY_TYPES else (open_ - close)
        tick_value = float(
            info["trade_tick_value_profit" if diff >= 0 else "trade_tick_value_loss"]
        )
        return diff / float(info["trade_tick_size"]) * tick_value * volume

    def _floating_total(self) -> float:
        total = 0.0
        for sym in self._symbols.values():
            if sym.buy_volume or sym.sell_volume:
                k = float(sym.info["trade_tick_value"]) / float(sym.info["trade_tick_size"])
                total += k * (sym.bid * sym.buy_volume - sym.buy_notional)
                total += k * (sym.sell_notional - sym.ask * sym.sell_volume)
        return total + self._swap_total

    def _equity(self) -> float:
        balance = float(self._account["balance"]) + float(self._account["credit"])
        return balance + self._floating_total()

    @_api
    def order_calc_margin(
        self, action: int, symbol: str, volume: float, price: float
    ) -> float | None:
        """order_calc_margin(action, symbol, volume, price) in the account currency."""
        sym = self._known(symbol)
        if sym is None:
            return None
        if action not in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL) and action not in _PENDING_TYPES:
            self._set_error(C.RES_E_INVALID_PARAMS)
            return None
        return round(self._margin(sym, action, float(volume), float(price)), 2)

    @_api
    def order_calc_profit(
        self, action: int, symbol: str, volume: float, price_open: float, price_close: float
    ) -> float | None:
        """order_calc_profit(action, symbol, volume, price_open, price_close)."""
        sym = self._known(symbol)
        if sym is None:
            return None
        if action not in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL):
            self._set_error(C.RES_E_INVALID_PARAMS)
            return None
        return round(
            self._profit(sym, action, float(volume), float(price_open), float(price_close)), 2
        )

    # ====================================================================================
    # trade requests
    # ====================================================================================
    def _parse_request(self, request: Any) -> TradeRequest | None:
        if not isinstance(request, Mapping):
            self._set_error(C.RES_E_INVALID_PARAMS, "Invalid arguments")
            return None
        values: dict[str, Any] = {}
        for key, typ in _REQUEST_FIELDS.items():
            if key not in request:
                continue
            value = request[key]
            if key == "expiration" and isinstance(value, datetime):
                value = int(value.timestamp())
            ok = (
                isinstance(value, str)
                if typ is str
                else isinstance(value, Real) and (typ is float or float(value).is_integer())
            )
            if not ok:
                self._set_error(C.RES_E_INVALID_PARAMS, f'Invalid "{key}" argument')
                return None
            values[key] = value if typ is str else typ(value)
        if "comment" in values:
            values["comment"] = values["comment"][:COMMENT_MAX]
        return TradeRequest(**values)

    def _gate(self, req: TradeRequest) -> None:
        """Checks shared by order_check and order_send (connection, permissions, action)."""
        if not self._server_up:
            raise _Reject(C.TRADE_RETCODE_CONNECTION)
        if not self._terminal["trade_allowed"]:
            raise _Reject(C.TRADE_RETCODE_CLIENT_DISABLES_AT)
        if not self._account["trade_expert"]:
            raise _Reject(C.TRADE_RETCODE_SERVER_DISABLES_AT)
        if not self._account["trade_allowed"]:
            raise _Reject(C.TRADE_RETCODE_TRADE_DISABLED)
        if req.action not in _ACTIONS:
            raise _Reject(C.TRADE_RETCODE_INVALID)

    def _symbol_for(self, req: TradeRequest) -> _Symbol:
        sym = self._symbols.get(req.symbol)
        if sym is None:
            raise _Reject(C.TRADE_RETCODE_INVALID)  # GUESS for unknown symbols
        return sym

    def _check_volume(self, sym: _Symbol, volume: float) -> None:
        info = sym.info
        eps = 1e-9
        if (
            volume <= 0
            or volume < info["volume_min"] - eps
            or volume > info["volume_max"] + eps
            or not _on_grid(volume, info["volume_step"])
        ):
            raise _Reject(C.TRADE_RETCODE_INVALID_VOLUME)

    def _check_session(self, sym: _Symbol, opening_side: int | None) -> None:
        """trade_mode and session checks; ``opening_side`` = order type that adds exposure."""
        mode = sym.info["trade_mode"]
        if mode == C.SYMBOL_TRADE_MODE_DISABLED:
            raise _Reject(C.TRADE_RETCODE_TRADE_DISABLED)
        if not sym.market_open:
            raise _Reject(C.TRADE_RETCODE_MARKET_CLOSED)
        if opening_side is None:
            return
        if mode == C.SYMBOL_TRADE_MODE_CLOSEONLY:
            raise _Reject(C.TRADE_RETCODE_CLOSE_ONLY)
        is_buy = opening_side in _BUY_TYPES
        if mode == C.SYMBOL_TRADE_MODE_LONGONLY and not is_buy:
            raise _Reject(C.TRADE_RETCODE_LONG_ONLY)
        if mode == C.SYMBOL_TRADE_MODE_SHORTONLY and is_buy:
            raise _Reject(C.TRADE_RETCODE_SHORT_ONLY)

    def _check_filling(self, sym: _Symbol, req: TradeRequest, market: bool) -> None:
        """MQL5 "Fill policy": FOK/IOC need their SYMBOL_FILLING_* bit; RETURN is refused for
        market orders in Market execution only; BOC is for pending limit orders only."""
        mask = sym.info["filling_mode"]
        fill = req.type_filling
        if fill == C.ORDER_FILLING_FOK:
            ok = bool(mask & SYMBOL_FILLING_FOK)
        elif fill == C.ORDER_FILLING_IOC:
            ok = bool(mask & SYMBOL_FILLING_IOC)
        elif fill == C.ORDER_FILLING_RETURN:
            ok = not market or sym.info["trade_exemode"] != C.SYMBOL_TRADE_EXECUTION_MARKET
        elif fill == C.ORDER_FILLING_BOC:
            ok = not market and req.type in _LIMIT_TYPES and bool(mask & SYMBOL_FILLING_BOC)
        else:
            ok = False
        if not ok:
            raise _Reject(C.TRADE_RETCODE_INVALID_FILL)

    def _check_price_grid(self, sym: _Symbol, price: float, code: int) -> None:
        info = sym.info
        if price <= 0 or not _on_grid(price, info["trade_tick_size"]):
            raise _Reject(code)
        if abs(round(price, info["digits"]) - price) > 1e-9 * max(1.0, price):
            raise _Reject(code)

    def _check_stops(self, sym: _Symbol, is_buy: bool, ref: float, sl: float, tp: float) -> None:
        """Stops must be on the tick grid, on the right side of ``ref`` and at least
        SYMBOL_TRADE_STOPS_LEVEL points away ("Requirements and Limitations ...")."""
        info = sym.info
        level = info["trade_stops_level"] * info["point"]
        eps = info["point"] * 1e-3
        for value, below in ((sl, is_buy), (tp, not is_buy)):
            if not value:
                continue
            self._check_price_grid(sym, value, C.TRADE_RETCODE_INVALID_STOPS)
            distance = (ref - value) if below else (value - ref)
            if distance <= 0 or distance < level - eps:
                raise _Reject(C.TRADE_RETCODE_INVALID_STOPS)

    def _market_price(self, sym: _Symbol, order_type: int) -> float:
        return sym.ask if order_type in _BUY_TYPES else sym.bid

    def _opening_volume(self, sym: _Symbol, req: TradeRequest) -> float:
        """How much of a market request adds exposure (the rest closes existing volume)."""
        if self._hedging:
            return 0.0 if req.position else req.volume
        pos = self._positions.get(self._netting.get(sym.name, 0))
        if pos is None:
            return req.volume
        if (pos.type == C.POSITION_TYPE_BUY) == (req.type == C.ORDER_TYPE_BUY):
            return req.volume
        return max(0.0, req.volume - pos.volume)

    @property
    def _hedging(self) -> bool:
        return bool(self._account["margin_mode"] == C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING)

    def _validate(self, req: TradeRequest, *, sending: bool) -> dict[str, Any]:
        """Raise _Reject(retcode) or return the execution context."""
        self._gate(req)
        action = req.action
        ctx: dict[str, Any] = {}
        if action == C.TRADE_ACTION_DEAL:
            sym = self._symbol_for(req)
            if req.type not in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL):
                raise _Reject(C.TRADE_RETCODE_INVALID)
            self._check_volume(sym, req.volume)
            position: _Position | None = None
            if req.position:
                position = self._positions.get(req.position)
                if position is None:
                    raise _Reject(C.TRADE_RETCODE_POSITION_CLOSED)
                if position.symbol != sym.name:
                    raise _Reject(C.TRADE_RETCODE_INVALID)
                if self._hedging:
                    if (position.type == C.POSITION_TYPE_BUY) == (req.type == C.ORDER_TYPE_BUY):
                        raise _Reject(C.TRADE_RETCODE_INVALID)
                    if req.volume > position.volume + 1e-9:
                        raise _Reject(C.TRADE_RETCODE_INVALID_CLOSE_VOLUME)
            opening = self._opening_volume(sym, req)
            self._check_session(sym, req.type if opening > 0 else None)
            self._check_filling(sym, req, market=True)
            if sym.bid <= 0 or sym.ask <= 0:
                raise _Reject(C.TRADE_RETCODE_PRICE_OFF)
            market = self._market_price(sym, req.type)
            exemode = sym.info["trade_exemode"]
            if exemode in (C.SYMBOL_TRADE_EXECUTION_INSTANT, C.SYMBOL_TRADE_EXECUTION_REQUEST):
                self._check_price_grid(sym, req.price, C.TRADE_RETCODE_INVALID_PRICE)
                if sending and abs(req.price - market) > req.deviation * sym.info["point"] + (
                    sym.info["point"] * 1e-3
                ):
                    ctx["requote"] = True
            if position is None or not self._hedging:
                self._check_stops(
                    sym,
                    req.type == C.ORDER_TYPE_BUY,
                    self._close_price(sym, req.type),
                    req.sl,
                    req.tp,
                )
            margin = self._margin(sym, req.type, opening, market) if opening > 0 else 0.0
            free = self._equity() - self._margin_total
            if margin > free + 1e-9:
                raise _Reject(C.TRADE_RETCODE_NO_MONEY)
            ctx.update(symbol=sym, price=market, margin=margin, position=position)
        elif action == C.TRADE_ACTION_PENDING:
            sym = self._symbol_for(req)
            if req.type not in _PENDING_TYPES:
                raise _Reject(C.TRADE_RETCODE_INVALID)
            self._check_volume(sym, req.volume)
            self._check_session(sym, req.type)
            self._check_filling(sym, req, market=False)
            self._check_pending_prices(sym, req.type, req.price, req.stoplimit, req.sl, req.tp)
            self._check_expiration(sym, req.type_time, req.expiration)
            if len(self._orders) >= self._account["limit_orders"] > 0:
                raise _Reject(C.TRADE_RETCODE_LIMIT_ORDERS)
            ctx.update(symbol=sym)
        elif action == C.TRADE_ACTION_SLTP:
            position = self._find_position(req)
            sym = self._symbols[position.symbol]
            self._check_session(sym, None)
            if position.sl == req.sl and position.tp == req.tp:
                raise _Reject(C.TRADE_RETCODE_NO_CHANGES)
            is_buy = position.type == C.POSITION_TYPE_BUY
            close_px = sym.bid if is_buy else sym.ask
            self._check_frozen(sym, close_px, position.sl, position.tp)
            self._check_stops(sym, is_buy, close_px, req.sl, req.tp)
            ctx.update(symbol=sym, position=position)
        elif action == C.TRADE_ACTION_MODIFY:
            order = self._orders.get(req.order)
            if order is None:
                raise _Reject(C.TRADE_RETCODE_INVALID_ORDER)
            sym = self._symbols[order.symbol]
            self._check_session(sym, None)
            self._check_frozen(sym, self._market_price(sym, order.type), order.price_open)
            price = req.price or order.price_open
            if (
                price == order.price_open
                and req.sl == order.sl
                and req.tp == order.tp
                and req.stoplimit == order.price_stoplimit
                and req.expiration == order.time_expiration
                and req.type_time == order.type_time
            ):
                raise _Reject(C.TRADE_RETCODE_NO_CHANGES)
            self._check_pending_prices(sym, order.type, price, req.stoplimit, req.sl, req.tp)
            self._check_expiration(sym, req.type_time, req.expiration)
            ctx.update(symbol=sym, order=order, price=price)
        elif action == C.TRADE_ACTION_REMOVE:
            order = self._orders.get(req.order)
            if order is None:
                raise _Reject(C.TRADE_RETCODE_INVALID_ORDER)
            sym = self._symbols[order.symbol]
            self._check_session(sym, None)
            self._check_frozen(sym, self._market_price(sym, order.type), order.price_open)
            ctx.update(symbol=sym, order=order)
        elif action == C.TRADE_ACTION_CLOSE_BY:
            if not self._hedging:
                raise _Reject(C.TRADE_RETCODE_INVALID)
            first = self._positions.get(req.position)
            second = self._positions.get(req.position_by)
            if first is None or second is None:
                raise _Reject(C.TRADE_RETCODE_POSITION_CLOSED)
            if first.symbol != second.symbol or first.type == second.type:
                raise _Reject(C.TRADE_RETCODE_INVALID)
            sym = self._symbols[first.symbol]
            self._check_session(sym, None)
            ctx.update(symbol=sym, position=first, position_by=second)
        return ctx

    def _held_stops(
        self, sym: _Symbol, position: _Position, sl: float, tp: float
    ) -> tuple[float, float]:
        """The SL and TP the server holds for a position asked ``sl`` and ``tp``: as asked,
        unless the symbol's ``held_stops_level`` (a test knob) moves one that is closer to the
        close price out to that distance, on the symbol's digits."""
        level = sym.held_stops_level * sym.info["point"]
        if level <= 0:
            return sl, tp
        is_buy = position.type == C.POSITION_TYPE_BUY
        close_px = sym.bid if is_buy else sym.ask
        digits = sym.info["digits"]
        if sl:
            sl = round(min(sl, close_px - level) if is_buy else max(sl, close_px + level), digits)
        if tp:
            tp = round(max(tp, close_px + level) if is_buy else min(tp, close_px - level), digits)
        return sl, tp

    def _held_price(self, sym: _Symbol, price: float) -> float:
        """The price the server holds for a pending order moved to ``price``: as sent, unless
        the symbol's ``held_price_step`` (a test knob) snaps it to the nearest multiple of
        that many points, on the symbol's digits."""
        step = sym.held_price_step * float(sym.info["point"])
        if step <= 0:
            return price
        return round(math.floor(price / step + 0.5) * step, int(sym.info["digits"]))

    def _check_frozen(self, sym: _Symbol, market: float, *levels: float) -> None:
        """SYMBOL_TRADE_FREEZE_LEVEL: orders and SL/TP closer than the freeze distance to the
        activation price cannot be modified or deleted (TRADE_RETCODE_FROZEN, 10029)."""
        freeze = sym.info["trade_freeze_level"] * sym.info["point"]
        if freeze <= 0:
            return
        for level in levels:
            # the distance must be strictly greater than the freeze level to allow changes
            if level and abs(market - level) <= freeze + sym.info["point"] * 1e-3:
                raise _Reject(C.TRADE_RETCODE_FROZEN)

    def _close_price(self, sym: _Symbol, order_type: int) -> float:
        """Price at which a position opened by ``order_type`` would be closed (stops ref)."""
        return sym.bid if order_type in _BUY_TYPES else sym.ask

    def _find_position(self, req: TradeRequest) -> _Position:
        if req.position:
            position = self._positions.get(req.position)
        elif not self._hedging and req.symbol:
            position = self._positions.get(self._netting.get(req.symbol, 0))
        else:
            raise _Reject(C.TRADE_RETCODE_INVALID)
        if position is None:
            raise _Reject(C.TRADE_RETCODE_POSITION_CLOSED)
        return position

    def _check_pending_prices(
        self, sym: _Symbol, otype: int, price: float, stoplimit: float, sl: float, tp: float
    ) -> None:
        info = sym.info
        self._check_price_grid(sym, price, C.TRADE_RETCODE_INVALID_PRICE)
        level = info["trade_stops_level"] * info["point"]
        eps = info["point"] * 1e-3
        ask, bid = sym.ask, sym.bid
        if bid <= 0:
            raise _Reject(C.TRADE_RETCODE_PRICE_OFF)
        distance = {
            C.ORDER_TYPE_BUY_LIMIT: ask - price,
            C.ORDER_TYPE_SELL_LIMIT: price - bid,
            C.ORDER_TYPE_BUY_STOP: price - ask,
            C.ORDER_TYPE_SELL_STOP: bid - price,
            C.ORDER_TYPE_BUY_STOP_LIMIT: price - ask,
            C.ORDER_TYPE_SELL_STOP_LIMIT: bid - price,
        }[otype]
        if distance < level - eps or distance < -eps:
            raise _Reject(C.TRADE_RETCODE_INVALID_PRICE)
        ref = price
        if otype in (C.ORDER_TYPE_BUY_STOP_LIMIT, C.ORDER_TYPE_SELL_STOP_LIMIT):
            self._check_price_grid(sym, stoplimit, C.TRADE_RETCODE_INVALID_PRICE)
            below = otype == C.ORDER_TYPE_BUY_STOP_LIMIT
            if (stoplimit >= price) if below else (stoplimit <= price):
                raise _Reject(C.TRADE_RETCODE_INVALID_PRICE)
            ref = stoplimit
        self._check_stops(sym, otype in _BUY_TYPES, ref, sl, tp)

    def _check_expiration(self, sym: _Symbol, type_time: int, expiration: int) -> None:
        allowed = {
            C.ORDER_TIME_GTC: SYMBOL_EXPIRATION_GTC,
            C.ORDER_TIME_DAY: SYMBOL_EXPIRATION_DAY,
            C.ORDER_TIME_SPECIFIED: SYMBOL_EXPIRATION_SPECIFIED,
            C.ORDER_TIME_SPECIFIED_DAY: SYMBOL_EXPIRATION_SPECIFIED_DAY,
        }.get(type_time)
        if allowed is None or not sym.info["expiration_mode"] & allowed:
            raise _Reject(C.TRADE_RETCODE_INVALID_EXPIRATION)
        if type_time in (C.ORDER_TIME_SPECIFIED, C.ORDER_TIME_SPECIFIED_DAY) and (
            expiration * 1000 <= self._now_msc
        ):
            raise _Reject(C.TRADE_RETCODE_INVALID_EXPIRATION)

    # ------------------------------------------------------------------------------------
    @_api
    def order_check(self, request: dict[str, Any]) -> OrderCheckResult | None:
        """order_check(request): retcode 0 ('Done') when the request would be accepted, else
        the trade-server code; balance/equity/margin figures are *after* the operation."""
        req = self._parse_request(request)
        if req is None:
            return None
        step = self.faults.take("order_check", req.symbol or None)
        if isinstance(step, Delay):
            _time.sleep(step.seconds)
        elif isinstance(step, Disconnect):
            self._fault_disconnect(step.kind)
            if step.kind == "ipc":
                self._set_error(step.code)
                return None
        elif isinstance(step, CallError):
            self._set_error(step.code, step.message)
            return None
        elif isinstance(step, UnknownOutcome):
            step = step.retcode
        if self._terminal["tradeapi_disabled"]:
            self._set_error(C.RES_E_AUTO_TRADING_DISABLED)
            return None
        self._set_error(C.RES_S_OK)
        profit = self._floating_total()
        equity = self._account["balance"] + self._account["credit"] + profit
        margin = self._margin_total
        retcode = 0
        if isinstance(step, int):
            retcode = step
        else:
            try:
                ctx = self._validate(req, sending=False)
                margin += ctx.get("margin", 0.0)
            except _Reject as rej:
                retcode = rej.retcode
        return OrderCheckResult(
            retcode=retcode,
            balance=round(self._account["balance"], 2),
            equity=round(equity, 2),
            profit=round(profit, 2),
            margin=round(margin, 2),
            margin_free=round(equity - margin, 2),
            margin_level=(equity / margin * 100.0) if margin > 0 else 0.0,
            comment=RETCODE_COMMENTS.get(retcode, ""),
            request=req,
        )

    def _result(
        self,
        req: TradeRequest,
        retcode: int,
        *,
        deal: int = 0,
        order: int = 0,
        volume: float = 0.0,
        price: float = 0.0,
        quotes: _Symbol | None = None,
        request_id: int | None = None,
    ) -> OrderSendResult:
        if request_id is None:
            self._request_id += 1
            request_id = self._request_id
        return OrderSendResult(
            retcode=retcode,
            deal=deal,
            order=order,
            volume=volume,
            price=price,
            bid=quotes.bid if quotes else 0.0,
            ask=quotes.ask if quotes else 0.0,
            comment=RETCODE_COMMENTS.get(retcode, ""),
            request_id=request_id,
            retcode_external=0,
            request=req,
        )

    @_api
    def order_send(self, request: dict[str, Any]) -> OrderSendResult | None:
        """order_send(request) -> OrderSendResult (or None + last_error on API-level errors)."""
        req = self._parse_request(request)
        if req is None:
            return None
        step = self.faults.take("order_send", req.symbol or None)
        if isinstance(step, Delay):
            _time.sleep(step.seconds)
            step = None
        if self._terminal["tradeapi_disabled"]:
            self._set_error(C.RES_E_AUTO_TRADING_DISABLED)
            return None
        if isinstance(step, CallError):
            self._set_error(step.code, step.message)
            return None
        self._set_error(C.RES_S_OK)
        if isinstance(step, Disconnect):
            if step.executed:
                self._send(req, None)
            self._fault_disconnect(step.kind)
            if step.kind == "ipc":
                self._set_error(step.code)
                return None
            return self._result(req, C.TRADE_RETCODE_CONNECTION)
        if isinstance(step, UnknownOutcome):
            if step.executed:
                self._send(req, None)
            return self._result(req, step.retcode)
        if self.faults.throttled("order_send"):
            return self._result(req, C.TRADE_RETCODE_TOO_MANY_REQUESTS)
        return self._send(req, step)

    def _send(self, req: TradeRequest, scripted: int | None) -> OrderSendResult:
        quoted = self._symbols.get(req.symbol)
        if scripted is not None and scripted not in (
            C.TRADE_RETCODE_PLACED,
            C.TRADE_RETCODE_DONE,
            C.TRADE_RETCODE_DONE_PARTIAL,
        ):
            requote = scripted in (C.TRADE_RETCODE_REQUOTE, C.TRADE_RETCODE_PRICE_CHANGED)
            return self._result(req, scripted, quotes=quoted if requote else None)
        try:
            ctx = self._validate(req, sending=True)
        except _Reject as rej:
            # terminal-side rejections never reach the server: request_id stays 0
            local = rej.retcode in (10013, 10014, 10015, 10016, 10022, 10030)
            return self._result(req, rej.retcode, request_id=0 if local else None)
        if ctx.get("requote"):
            return self._result(req, C.TRADE_RETCODE_REQUOTE, quotes=ctx["symbol"])
        action = req.action
        sym: _Symbol = ctx["symbol"]
        if action == C.TRADE_ACTION_DEAL:
            volume = req.volume
            if scripted == C.TRADE_RETCODE_DONE_PARTIAL:
                step_ = sym.info["volume_step"]
                volume = max(sym.info["volume_min"], math.floor(volume / 2 / step_) * step_)
                volume = round(volume, 8)
            order = self._new_order(req, sym, volume_initial=req.volume)
            if scripted == C.TRADE_RETCODE_PLACED:
                order.state = C.ORDER_STATE_PLACED
                self._orders[order.ticket] = order
                sym.pending[order.ticket] = order
                return self._result(
                    req, C.TRADE_RETCODE_PLACED, order=order.ticket, volume=req.volume
                )
            if req.type_filling == C.ORDER_FILLING_RETURN and req.price > 0:
                # GUESS: the rest works no worse than the request's price and deviation.
                slack = req.deviation * sym.info["point"]
                buy = req.type == C.ORDER_TYPE_BUY
                order.rest_limit = req.price + slack if buy else req.price - slack
            deal = self._fill(
                order,
                sym,
                volume,
                ctx["price"],
                C.DEAL_REASON_EXPERT,
                keep_rest=req.type_filling == C.ORDER_FILLING_RETURN,
            )
            retcode = C.TRADE_RETCODE_DONE if volume == req.volume else C.TRADE_RETCODE_DONE_PARTIAL
            return self._result(
                req, retcode, deal=deal, order=order.ticket, volume=volume, price=ctx["price"]
            )
        if action == C.TRADE_ACTION_PENDING:
            order = self._new_order(req, sym, volume_initial=req.volume)
            order.state = C.ORDER_STATE_PLACED
            order.price_open = req.price
            order.price_current = self._market_price(sym, req.type)
            self._orders[order.ticket] = order
            sym.pending[order.ticket] = order
            # GUESS: synchronous placement of a pending order answers 10009 (DONE) on common
            # servers; script 10008 to exercise "placed".
            code = (
                C.TRADE_RETCODE_PLACED
                if scripted == C.TRADE_RETCODE_PLACED
                else (C.TRADE_RETCODE_DONE)
            )
            return self._result(req, code, order=order.ticket, volume=req.volume)
        if action == C.TRADE_ACTION_SLTP:
            position: _Position = ctx["position"]
            position.sl, position.tp = self._held_stops(sym, position, req.sl, req.tp)
            position.time_update_msc = self._now_msc
            self._index_stops(sym, position)
            return self._result(req, C.TRADE_RETCODE_DONE)
        if action == C.TRADE_ACTION_MODIFY:
            order = ctx["order"]
            order.price_open = self._held_price(sym, ctx["price"])
            order.sl, order.tp, order.price_stoplimit = req.sl, req.tp, req.stoplimit
            order.type_time, order.time_expiration = req.type_time, req.expiration
            return self._result(req, C.TRADE_RETCODE_DONE, order=order.ticket)
        if action == C.TRADE_ACTION_REMOVE:
            order = ctx["order"]
            self._archive_order(order, C.ORDER_STATE_CANCELED)
            return self._result(req, C.TRADE_RETCODE_DONE, order=order.ticket)
        # CLOSE_BY
        first: _Position = ctx["position"]
        second: _Position = ctx["position_by"]
        order = self._new_order(req, sym, volume_initial=min(first.volume, second.volume))
        order.type = C.ORDER_TYPE_CLOSE_BY
        order.position_id, order.position_by_id = first.identifier, second.identifier
        volume = min(first.volume, second.volume)
        # both legs are closed at the opposite position's open price ("Close By" in the MQL5
        # docs): the first deal carries the first position's price difference
        first_open, second_open = first.price_open, second.price_open
        deal = self._close_part(
            first,
            sym,
            volume,
            second_open,
            order,
            C.DEAL_REASON_EXPERT,
            entry=C.DEAL_ENTRY_OUT_BY,
        )
        self._close_part(
            second,
            sym,
            volume,
            first_open,
            order,
            C.DEAL_REASON_EXPERT,
            entry=C.DEAL_ENTRY_OUT_BY,
        )
        order.position_id, order.position_by_id = first.identifier, second.identifier
        order.volume_current = 0.0
        self._archive_order(order, C.ORDER_STATE_FILLED)
        self._hist_orders_by_pos.setdefault(second.identifier, []).append(order.ticket)
        return self._result(req, C.TRADE_RETCODE_DONE, deal=deal, order=order.ticket, volume=volume)

    # ------------------------------------------------------------------------------------
    # order / deal / position bookkeeping
    # ------------------------------------------------------------------------------------
    def _new_order(self, req: TradeRequest, sym: _Symbol, *, volume_initial: float) -> _Order:
        ticket = self._next_order
        self._next_order += 1
        return _Order(
            ticket=ticket,
            time_setup_msc=self._now_msc,
            time_done_msc=0,
            time_expiration=req.expiration,
            type=req.type,
            type_time=req.type_time,
            type_filling=req.type_filling,
            state=C.ORDER_STATE_STARTED,
            magic=req.magic,
            position_id=0,
            position_by_id=0,
            reason=C.ORDER_REASON_EXPERT,
            volume_initial=volume_initial,
            volume_current=volume_initial,
            price_open=req.price,
            sl=req.sl,
            tp=req.tp,
            price_current=self._market_price(sym, req.type),
            price_stoplimit=req.stoplimit,
            symbol=sym.name,
            comment=req.comment,
            request_position=req.position,
        )

    def _archive_order(self, order: _Order, state: int) -> None:
        order.state = state
        order.time_done_msc = self._now_msc
        if self._orders.pop(order.ticket, None) is not None:
            self._symbols[order.symbol].pending.pop(order.ticket, None)
        self._hist_orders[order.ticket] = order
        bisect.insort(self._hist_index, (order.time_setup_msc, order.ticket))
        if order.position_id:
            self._hist_orders_by_pos.setdefault(order.position_id, []).append(order.ticket)

    def _new_deal(
        self,
        *,
        order: int,
        type_: int,
        entry: int,
        magic: int,
        position_id: int,
        reason: int,
        volume: float,
        price: float,
        commission: float,
        profit: float,
        symbol: str,
        comment: str,
        swap: float = 0.0,
    ) -> int:
        ticket = self._next_deal
        self._next_deal += 1
        self._deals[ticket] = _Deal(
            ticket,
            order,
            self._now_msc,
            type_,
            entry,
            magic,
            position_id,
            reason,
            volume,
            price,
            commission,
            swap,
            profit,
            symbol,
            comment,
        )
        self._deal_index.append((self._now_msc, ticket))
        if position_id:
            self._deals_by_pos.setdefault(position_id, []).append(ticket)
        if order:
            self._deals_by_order.setdefault(order, []).append(ticket)
        return ticket

    def _aggregate(self, sym: _Symbol, position: _Position, sign: float) -> None:
        if position.type == C.POSITION_TYPE_BUY:
            sym.buy_volume += sign * position.volume
            sym.buy_notional += sign * position.volume * position.price_open
        else:
            sym.sell_volume += sign * position.volume
            sym.sell_notional += sign * position.volume * position.price_open
        self._margin_total += sign * position.margin
        if sym.buy_volume < 1e-9 and sym.sell_volume < 1e-9:
            sym.buy_volume = sym.buy_notional = sym.sell_volume = sym.sell_notional = 0.0

    def _index_stops(self, sym: _Symbol, position: _Position) -> None:
        if position.sl or position.tp:
            sym.stops[position.ticket] = position
        else:
            sym.stops.pop(position.ticket, None)

    def _commission(self, sym: _Symbol, volume: float) -> float:
        return round(sym.commission_per_lot * volume, 2)

    def _open_position(
        self, order: _Order, sym: _Symbol, volume: float, price: float, reason: int
    ) -> int:
        ptype = C.POSITION_TYPE_BUY if order.type in _BUY_TYPES else C.POSITION_TYPE_SELL
        position = _Position(
            ticket=order.ticket,
            time_msc=self._now_msc,
            time_update_msc=self._now_msc,
            type=ptype,
            magic=order.magic,
            identifier=order.ticket,
            reason=C.POSITION_REASON_EXPERT,
            volume=volume,
            price_open=price,
            sl=order.sl,
            tp=order.tp,
            symbol=sym.name,
            comment=order.comment,
        )
        position.margin = self._margin(sym, ptype, volume, price)
        self._positions[position.ticket] = position
        if not self._hedging:
            self._netting[sym.name] = position.ticket
        self._aggregate(sym, position, +1)
        self._index_stops(sym, position)
        order.position_id = position.identifier
        commission = self._commission(sym, volume)
        self._account["balance"] += commission
        return self._new_deal(
            order=order.ticket,
            type_=C.DEAL_TYPE_BUY if ptype == C.POSITION_TYPE_BUY else C.DEAL_TYPE_SELL,
            entry=C.DEAL_ENTRY_IN,
            magic=order.magic,
            position_id=position.identifier,
            reason=reason,
            volume=volume,
            price=price,
            commission=commission,
            profit=0.0,
            symbol=sym.name,
            comment=order.comment,
        )

    def _close_part(
        self,
        position: _Position,
        sym: _Symbol,
        volume: float,
        price: float,
        order: _Order,
        reason: int,
        *,
        entry: int = C.DEAL_ENTRY_OUT,
        comment: str | None = None,
    ) -> int:
        """Close ``volume`` of ``position`` at ``price``; books an OUT deal with profit."""
        profit = round(self._profit(sym, position.type, volume, position.price_open, price), 2)
        commission = self._commission(sym, volume)
        swap = round(position.swap * volume / position.volume, 2) if position.swap else 0.0
        position.swap -= swap
        self._swap_total -= swap
        self._aggregate(sym, position, -1)
        remaining = round(position.volume - volume, 8)
        if remaining <= 1e-9:
            del self._positions[position.ticket]
            sym.stops.pop(position.ticket, None)
            if self._netting.get(sym.name) == position.ticket:
                del self._netting[sym.name]
        else:
            position.margin *= remaining / position.volume
            position.volume = remaining
            position.time_update_msc = self._now_msc
            self._aggregate(sym, position, +1)
        self._account["balance"] += profit + commission + swap
        order.position_id = position.identifier
        return self._new_deal(
            order=order.ticket,
            type_=C.DEAL_TYPE_SELL if position.type == C.POSITION_TYPE_BUY else C.DEAL_TYPE_BUY,
            swap=swap,
            entry=entry,
            magic=order.magic,
            position_id=position.identifier,
            reason=reason,
            volume=volume,
            price=price,
            commission=commission,
            profit=profit,
            symbol=sym.name,
            comment=order.comment if comment is None else comment,
        )

    def _fill(
        self,
        order: _Order,
        sym: _Symbol,
        volume: float,
        price: float,
        reason: int,
        keep_rest: bool = False,
    ) -> int:
        """Execute ``volume`` of a market (or triggered) order; archive it; return the deal.
        ``keep_rest``: an order sent with ORDER_FILLING_RETURN, whose unfilled rest is "not
        canceled, and is processed further" (MQL5, ENUM_ORDER_TYPE_FILLING): it stays among
        the working orders, state PARTIAL, the same ticket, until it fills or is removed."""
        is_buy = order.type in _BUY_TYPES
        order.price_current = price
        if not order.price_open:
            order.price_open = price
        if self._hedging:
            target = self._positions.get(order.request_position) if order.request_position else None
            if target is not None:
                deal = self._close_part(target, sym, volume, price, order, reason)
            else:
                deal = self._open_position(order, sym, volume, price, reason)
        else:
            deal = self._fill_netting(order, sym, volume, price, reason, is_buy)
        order.volume_current = round(order.volume_current - volume, 8)
        if keep_rest and order.volume_current > 1e-9:
            order.state = C.ORDER_STATE_PARTIAL
            self._orders[order.ticket] = order
            sym.pending[order.ticket] = order
            return deal
        self._archive_order(
            order,
            C.ORDER_STATE_FILLED if order.volume_current <= 1e-9 else C.ORDER_STATE_PARTIAL,
        )
        return deal

    def _fill_netting(
        self, order: _Order, sym: _Symbol, volume: float, price: float, reason: int, is_buy: bool
    ) -> int:
        position = self._positions.get(self._netting.get(sym.name, 0))
        if position is None:
            return self._open_position(order, sym, volume, price, reason)
        same = (position.type == C.POSITION_TYPE_BUY) == is_buy
        if same:
            self._aggregate(sym, position, -1)
            total = round(position.volume + volume, 8)
            position.price_open = round(
                (position.price_open * position.volume + price * volume) / total,
                sym.info["digits"] + 3,
            )
            position.volume = total
            position.margin = self._margin(sym, position.type, total, position.price_open)
            position.time_update_msc = self._now_msc
            if order.sl or order.tp:
                position.sl, position.tp = order.sl, order.tp
            self._aggregate(sym, position, +1)
            self._index_stops(sym, position)
            order.position_id = position.identifier
            commission = self._commission(sym, volume)
            self._account["balance"] += commission
            return self._new_deal(
                order=order.ticket,
                type_=C.DEAL_TYPE_BUY if is_buy else C.DEAL_TYPE_SELL,
                entry=C.DEAL_ENTRY_IN,
                magic=order.magic,
                position_id=position.identifier,
                reason=reason,
                volume=volume,
                price=price,
                commission=commission,
                profit=0.0,
                symbol=sym.name,
                comment=order.comment,
            )
        if volume <= position.volume + 1e-9:
            return self._close_part(position, sym, volume, price, order, reason)
        # reversal: one INOUT deal; the position keeps its ticket and identifier
        closed = position.volume
        profit = round(self._profit(sym, position.type, closed, position.price_open, price), 2)
        commission = self._commission(sym, volume)
        swap, position.swap = round(position.swap, 2), 0.0
        self._swap_total -= swap
        self._aggregate(sym, position, -1)
        position.type = C.POSITION_TYPE_BUY if is_buy else C.POSITION_TYPE_SELL
        position.volume = round(volume - closed, 8)
        position.price_open = price
        position.sl, position.tp = order.sl, order.tp  # GUESS: stops are reset on reversal
        position.margin = self._margin(sym, position.type, position.volume, price)
        position.time_update_msc = self._now_msc
        self._aggregate(sym, position, +1)
        self._index_stops(sym, position)
        self._account["balance"] += profit + commission + swap
        order.position_id = position.identifier
        return self._new_deal(
            order=order.ticket,
            type_=C.DEAL_TYPE_BUY if is_buy else C.DEAL_TYPE_SELL,
            swap=swap,
            entry=C.DEAL_ENTRY_INOUT,
            magic=order.magic,
            position_id=position.identifier,
            reason=reason,
            volume=volume,
            price=price,
            commission=commission,
            profit=profit,
            symbol=sym.name,
            comment=order.comment,
        )

    # ------------------------------------------------------------------------------------
    # triggers
    # ------------------------------------------------------------------------------------
    def _check_triggers(self, sym: _Symbol) -> None:
        bid, ask = sym.bid, sym.ask
        if sym.pending:
            for order in list(sym.pending.values()):
                otype = order.type
                price = order.price_open
                fill: float | None = None
                if otype in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL):  # accepted with 10008
                    fill = ask if otype == C.ORDER_TYPE_BUY else bid
                    bound = order.rest_limit  # a RETURN deal's rest: no worse than this
                    if bound and (fill > bound if otype == C.ORDER_TYPE_BUY else fill < bound):
                        fill = None
                elif otype == C.ORDER_TYPE_BUY_LIMIT and ask <= price:
                    fill = ask
                elif otype == C.ORDER_TYPE_SELL_LIMIT and bid >= price:
                    fill = bid
                elif otype == C.ORDER_TYPE_BUY_STOP and ask >= price:
                    fill = ask
                elif otype == C.ORDER_TYPE_SELL_STOP and bid <= price:
                    fill = bid
                elif otype == C.ORDER_TYPE_BUY_STOP_LIMIT and ask >= price:
                    # GUESS: the stop-limit becomes a limit order with the same ticket
                    order.type, order.price_open = C.ORDER_TYPE_BUY_LIMIT, order.price_stoplimit
                elif otype == C.ORDER_TYPE_SELL_STOP_LIMIT and bid <= price:
                    order.type, order.price_open = C.ORDER_TYPE_SELL_LIMIT, order.price_stoplimit
                if fill is not None:
                    self._trigger_pending(order, sym, fill)
        if sym.stops:
            for position in list(sym.stops.values()):
                if position.ticket not in self._positions:
                    continue
                if position.type == C.POSITION_TYPE_BUY:
                    px = bid
                    hit_sl = position.sl and bid <= position.sl
                    hit_tp = position.tp and bid >= position.tp
                else:
                    px = ask
                    hit_sl = position.sl and ask >= position.sl
                    hit_tp = position.tp and ask <= position.tp
                if hit_sl or hit_tp:
                    self._close_by_stop(position, sym, px, "sl" if hit_sl else "tp")

    def _trigger_pending(self, order: _Order, sym: _Symbol, price: float) -> None:
        is_buy = order.type in _BUY_TYPES
        opening = order.volume_current
        if not self._hedging:
            position = self._positions.get(self._netting.get(sym.name, 0))
            if position is not None and (position.type == C.POSITION_TYPE_BUY) != is_buy:
                opening = max(0.0, opening - position.volume)
        if opening > 0:
            margin = self._margin(sym, order.type, opening, price)
            if margin > self._equity() - self._margin_total + 1e-9:
                # GUESS: activation without enough money cancels the order (state REJECTED)
                self._archive_order(order, C.ORDER_STATE_REJECTED)
                return
        self._orders.pop(order.ticket, None)
        sym.pending.pop(order.ticket, None)
        self._fill(order, sym, order.volume_current, price, C.DEAL_REASON_EXPERT)

    def _close_by_stop(self, position: _Position, sym: _Symbol, price: float, kind: str) -> None:
        """SL/TP activation: a market order with reason SL/TP closes the whole position at
        the current price (slippage on gaps); deal comment '[sl 1.09500]' / '[tp ...]'."""
        level = position.sl if kind == "sl" else position.tp
        digits = sym.info["digits"]
        comment = f"[{kind} {level:.{digits}f}]"
        close_type = (
            C.ORDER_TYPE_SELL if position.type == C.POSITION_TYPE_BUY else (C.ORDER_TYPE_BUY)
        )
        req = TradeRequest(
            action=C.TRADE_ACTION_DEAL,
            magic=position.magic,
            symbol=sym.name,
            volume=position.volume,
            type=close_type,
            comment=comment,
            position=position.ticket,
        )
        order = self._new_order(req, sym, volume_initial=position.volume)
        order.reason = C.ORDER_REASON_SL if kind == "sl" else C.ORDER_REASON_TP
        order.price_open = order.price_current = price
        reason = C.DEAL_REASON_SL if kind == "sl" else C.DEAL_REASON_TP
        self._close_part(position, sym, position.volume, price, order, reason, comment=comment)
        order.volume_current = 0.0
        self._archive_order(order, C.ORDER_STATE_FILLED)

    def _expire_orders(self) -> None:
        if not self._orders:
            return
        now_s = self._now_msc // 1000
        for order in list(self._orders.values()):
            expiry: int | None = None
            if order.type_time in (C.ORDER_TIME_SPECIFIED, C.ORDER_TIME_SPECIFIED_DAY):
                expiry = order.time_expiration
                if order.type_time == C.ORDER_TIME_SPECIFIED_DAY:
                    expiry = expiry - expiry % 86400 + 86400
            elif order.type_time == C.ORDER_TIME_DAY:
                setup = order.time_setup_msc // 1000
                expiry = setup - setup % 86400 + 86400
            if expiry is not None and now_s >= expiry:
                self._archive_order(order, C.ORDER_STATE_EXPIRED)

    # ====================================================================================
    # orders / positions / history queries
    # ====================================================================================
    def _position_tuple(self, p: _Position) -> TradePosition:
        sym = self._symbols[p.symbol]
        current = sym.bid if p.type == C.POSITION_TYPE_BUY else sym.ask
        return TradePosition(
            ticket=p.ticket,
            time=p.time_msc // 1000,
            time_msc=p.time_msc,
            time_update=p.time_update_msc // 1000,
            time_update_msc=p.time_update_msc,
            type=p.type,
            magic=p.magic,
            identifier=p.identifier,
            reason=p.reason,
            volume=p.volume,
            price_open=p.price_open,
            sl=p.sl,
            tp=p.tp,
            price_current=current,
            swap=round(p.swap, 2),
            profit=round(self._profit(sym, p.type, p.volume, p.price_open, current), 2),
            symbol=p.symbol,
            comment=p.comment,
            external_id="",
        )

    def _order_tuple(self, o: _Order) -> TradeOrder:
        return TradeOrder(
            ticket=o.ticket,
            time_setup=o.time_setup_msc // 1000,
            time_setup_msc=o.time_setup_msc,
            time_done=o.time_done_msc // 1000,
            time_done_msc=o.time_done_msc,
            time_expiration=o.time_expiration,
            type=o.type,
            type_time=o.type_time,
            type_filling=o.type_filling,
            state=o.state,
            magic=o.magic,
            position_id=o.position_id,
            position_by_id=o.position_by_id,
            reason=o.reason,
            volume_initial=o.volume_initial,
            volume_current=o.volume_current,
            price_open=o.price_open,
            sl=o.sl,
            tp=o.tp,
            price_current=(
                self._market_price(self._symbols[o.symbol], o.type)
                if o.ticket in self._orders
                else o.price_current
            ),
            price_stoplimit=o.price_stoplimit,
            symbol=o.symbol,
            comment=o.comment,
            external_id="",
        )

    @staticmethod
    def _deal_tuple(d: _Deal) -> TradeDeal:
        return TradeDeal(
            ticket=d.ticket,
            order=d.order,
            time=d.time_msc // 1000,
            time_msc=d.time_msc,
            type=d.type,
            entry=d.entry,
            magic=d.magic,
            position_id=d.position_id,
            reason=d.reason,
            volume=d.volume,
            price=d.price,
            commission=d.commission,
            swap=d.swap,
            profit=d.profit,
            fee=d.fee,
            symbol=d.symbol,
            comment=d.comment,
            external_id="",
        )

    def _filter_live(
        self,
        items: Mapping[int, Any],
        args: tuple[Any, ...],
        symbol: str | None,
        ticket: int | None,
        group: str | None,
    ) -> list[Any] | None:
        if args:
            self._set_error(C.RES_E_INVALID_PARAMS, "Unnamed arguments not allowed")
            return None
        # positions_get/orders_get reference: "If a symbol is specified, the ticket parameter
        # is ignored."
        if symbol is not None:
            return [x for x in items.values() if x.symbol == symbol]
        if group is not None:
            match = _group_cache(group)
            return [x for x in items.values() if match(x.symbol)]
        if ticket is not None:
            found = items.get(ticket)
            return [found] if found is not None else []
        return list(items.values())

    @_api
    def positions_total(self) -> int | None:
        return len(self._positions)

    @_api
    def positions_get(
        self,
        *args: Any,
        symbol: str | None = None,
        ticket: int | None = None,
        group: str | None = None,
    ) -> tuple[TradePosition, ...] | None:
        """positions_get([symbol="SYMBOL"],[ticket=TICKET],[group="GROUP"])"""
        found = self._filter_live(self._positions, args, symbol, ticket, group)
        return None if found is None else tuple(self._position_tuple(p) for p in found)

    @_api
    def orders_total(self) -> int | None:
        return len(self._orders)

    @_api
    def orders_get(
        self,
        *args: Any,
        symbol: str | None = None,
        ticket: int | None = None,
        group: str | None = None,
    ) -> tuple[TradeOrder, ...] | None:
        """orders_get([symbol="SYMBOL"],[ticket=TICKET],[group="GROUP"])"""
        found = self._filter_live(self._orders, args, symbol, ticket, group)
        return None if found is None else tuple(self._order_tuple(o) for o in found)

    def _history_select(
        self,
        records: Mapping[int, Any],
        index: list[tuple[int, int]],
        by_pos: Mapping[int, list[int]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        by_order: Mapping[int, list[int]] | None = None,
    ) -> list[Any] | None:
        """Date range (+group), ``ticket`` (order ticket: the order itself, or for deals every
        deal with DEAL_ORDER == ticket) or ``position`` (ORDER_POSITION_ID/DEAL_POSITION_ID)."""
        date_from = kwargs.pop("date_from", None)
        date_to = kwargs.pop("date_to", None)
        group = kwargs.pop("group", None)
        ticket = kwargs.pop("ticket", None)
        position = kwargs.pop("position", None)
        if kwargs:
            self._set_error(C.RES_E_INVALID_PARAMS, "Invalid arguments")
            return None
        if len(args) > 2:
            self._set_error(C.RES_E_INVALID_PARAMS, "Invalid number of arguments")
            return None
        if len(args) >= 1:
            date_from = args[0]
        if len(args) == 2:
            date_to = args[1]
        if ticket is not None:
            if by_order is not None:
                return [records[t] for t in by_order.get(ticket, ())]
            found = records.get(ticket)
            return [found] if found is not None else []
        if position is not None:
            return [records[t] for t in by_pos.get(position, ())]
        if date_from is None or date_to is None:
            self._set_error(C.RES_E_INVALID_PARAMS, "Invalid arguments")
            return None
        try:
            t0, t1 = _to_seconds(date_from), _to_seconds(date_to)
        except TypeError:
            self._set_error(C.RES_E_INVALID_PARAMS, "Invalid 1st unnamed argument")
            return None
        lo = bisect.bisect_left(index, (t0 * 1000, -1))
        hi = bisect.bisect_right(index, (t1 * 1000 + 999, 1 << 62))
        out = [records[t] for _, t in index[lo:hi]]
        if group is not None:
            match = _group_cache(group)
            out = [r for r in out if match(r.symbol)]
        return out

    @_api
    def history_orders_total(
        self, date_from: datetime | int, date_to: datetime | int
    ) -> int | None:
        """Orders in history whose setup time is within [date_from, date_to]."""
        found = self._history_select(
            self._hist_orders,
            self._hist_index,
            self._hist_orders_by_pos,
            (date_from, date_to),
            {},
        )
        return None if found is None else len(found)

    @_api
    def history_orders_get(
        self,
        date_from: datetime | int | None = None,
        date_to: datetime | int | None = None,
        *,
        group: str | None = None,
        position: int | None = None,
        ticket: int | None = None,
    ) -> tuple[TradeOrder, ...] | None:
        """history_orders_get([date_from, date_to, [group="GROUP"]],[position=POSITION],
        [ticket=TICKET]) -- time filter on the order's setup time (GUESS)."""
        found = self._history_select(
            self._hist_orders,
            self._hist_index,
            self._hist_orders_by_pos,
            (),
            dict(
                date_from=date_from, date_to=date_to, group=group, position=position, ticket=ticket
            ),
        )
        return None if found is None else tuple(self._order_tuple(o) for o in found)

    @_api
    def history_deals_total(self, date_from: datetime | int, date_to: datetime | int) -> int | None:
        """Deals with date_from <= time <= date_to."""
        found = self._history_select(
            self._deals, self._deal_index, self._deals_by_pos, (date_from, date_to), {}
        )
        return None if found is None else len(found)

    @_api
    def history_deals_get(
        self,
        date_from: datetime | int | None = None,
        date_to: datetime | int | None = None,
        *,
        group: str | None = None,
        position: int | None = None,
        ticket: int | None = None,
    ) -> tuple[TradeDeal, ...] | None:
        """history_deals_get([date_from, date_to, [group="GROUP"]],[position=POSITION],
        [ticket=TICKET])"""
        found = self._history_select(
            self._deals,
            self._deal_index,
            self._deals_by_pos,
            (),
            dict(
                date_from=date_from, date_to=date_to, group=group, position=position, ticket=ticket
            ),
            self._deals_by_order,
        )
        return None if found is None else tuple(self._deal_tuple(d) for d in found)

    # ====================================================================================
    # the pure-Python helpers of the real MetaTrader5/__init__.py (Buy, Sell, Close)
    # ====================================================================================
    def _RawOrder(
        self,
        order_type: int,
        symbol: str,
        volume: float,
        price: float,
        comment: str | None = None,
        ticket: int | None = None,
    ) -> OrderSendResult | None:
        order: dict[str, Any] = {
            "action": C.TRADE_ACTION_DEAL,
            "symbol": symbol,
            "volume": volume,
            "type": order_type,
            "price": price,
            "deviation": 10,
        }
        if comment is not None:
            order["comment"] = comment
        if ticket is not None:
            order["position"] = ticket
        return self.order_send(order)

    def Close(
        self, symbol: str, *, comment: str | None = None, ticket: int | None = None
    ) -> bool | str | None:
        """Port of ``MetaTrader5.Close``."""
        positions = (
            self.positions_get(ticket=ticket)
            if ticket is not None
            else self.positions_get(symbol=symbol)
        )
        tried = done = 0
        for pos in positions or ():
            if pos.type not in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL):
                continue
            tried += 1
            for _ in range(10):
                info = self.symbol_info_tick(symbol)
                if info is None:
                    return None
                if pos.type == C.ORDER_TYPE_BUY:
                    r = self._RawOrder(
                        C.ORDER_TYPE_SELL, symbol, pos.volume, info.bid, comment, pos.ticket
                    )
                else:
                    r = self._RawOrder(
                        C.ORDER_TYPE_BUY, symbol, pos.volume, info.ask, comment, pos.ticket
                    )
                if r is None:
                    return None
                if r.retcode not in (C.TRADE_RETCODE_REQUOTE, C.TRADE_RETCODE_PRICE_OFF):
                    if r.retcode == C.TRADE_RETCODE_DONE:
                        done += 1
                    break
        if done > 0:
            return True if done == tried else "Partially"
        return False

    def _market_helper(
        self,
        order_type: int,
        symbol: str,
        volume: float,
        price: float | None,
        comment: str | None,
        ticket: int | None,
    ) -> OrderSendResult | None:
        if price is not None:
            return self._RawOrder(order_type, symbol, volume, price, comment, ticket)
        r: OrderSendResult | None = None
        for _ in range(10):
            info = self.symbol_info_tick(symbol)
            if info is None:  # the real helper would raise AttributeError here
                return None
            px = info.ask if order_type == C.ORDER_TYPE_BUY else info.bid
            r = self._RawOrder(order_type, symbol, volume, px, comment, ticket)
            if r is None:
                return None
            if r.retcode not in (C.TRADE_RETCODE_REQUOTE, C.TRADE_RETCODE_PRICE_OFF):
                break
        return r

    def Buy(
        self,
        symbol: str,
        volume: float,
        price: float | None = None,
        *,
        comment: str | None = None,
        ticket: int | None = None,
    ) -> OrderSendResult | None:
        """Port of ``MetaTrader5.Buy``."""
        return self._market_helper(C.ORDER_TYPE_BUY, symbol, volume, price, comment, ticket)

    def Sell(
        self,
        symbol: str,
        volume: float,
        price: float | None = None,
        *,
        comment: str | None = None,
        ticket: int | None = None,
    ) -> OrderSendResult | None:
        """Port of ``MetaTrader5.Sell``."""
        return self._market_helper(C.ORDER_TYPE_SELL, symbol, volume, price, comment, ticket)


for _name, _value in C.all_constants().items():
    setattr(MT5Terminal, _name, _value)
del _name, _value

#: the public functions of the real module that the emulator implements
API_FUNCTIONS: tuple[str, ...] = (
    "initialize",
    "login",
    "shutdown",
    "version",
    "last_error",
    "terminal_info",
    "account_info",
    "copy_ticks_from",
    "copy_ticks_range",
    "copy_rates_from",
    "copy_rates_from_pos",
    "copy_rates_range",
    "positions_total",
    "positions_get",
    "orders_total",
    "orders_get",
    "history_orders_total",
    "history_orders_get",
    "history_deals_total",
    "history_deals_get",
    "order_check",
    "order_send",
    "order_calc_margin",
    "order_calc_profit",
    "symbol_info",
    "symbol_info_tick",
    "symbol_select",
    "symbols_total",
    "symbols_get",
    "market_book_add",
    "market_book_release",
    "market_book_get",
)
