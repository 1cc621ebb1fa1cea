"""The functions of the ``MetaTrader5`` package the bridge serves (and nothing else: the bridge
never calls an attribute a client names unless it is one of these), and the secrets among their
arguments.

Pure: names only.
"""

from __future__ import annotations

#: The package's module-level functions (MetaTrader5 5.0.45+), in the reference's order.
FUNCTIONS: frozenset[str] = frozenset(
    {
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
        "market_book_get",
        "market_book_release",
    }
)

#: Functions whose arguments hold the account's secrets (login, password, server): neither
#: their arguments nor the words of their errors are ever logged or echoed.
SECRET_FUNCTIONS: frozenset[str] = frozenset({"initialize", "login"})

#: Keyword arguments of those functions that are secrets (``login`` may also come first,
#: positionally, in ``login(login, password=..., server=...)``).
SECRET_KWARGS: tuple[str, ...] = ("login", "password", "server")

# last_error() codes of the package for a terminal that cannot be reached (IPC), which the
# client answers when the bridge itself cannot be reached: the plugin's reconnect path.
IPC_SEND_FAILED = -10001
IPC_RECEIVE_FAILED = -10002
IPC_CONNECT_FAILED = -10004
IPC_TIMEOUT = -10005

__all__ = [
    "FUNCTIONS",
    "IPC_CONNECT_FAILED",
    "IPC_RECEIVE_FAILED",
    "IPC_SEND_FAILED",
    "IPC_TIMEOUT",
    "SECRET_FUNCTIONS",
    "SECRET_KWARGS",
]
