"""The tradefleet SDK: everything a plugin author imports, from one place.

This module is the stable, versioned API for plugins (``CONTRACT_VERSION``): the contracts a
strategy, risk plugin, broker or data feed implements, the value types they exchange, the params
base class, the descriptor and hook marker that register a plugin, the optional capabilities a
plugin declares, and the helpers a plugin needs (deterministic order ids, bracket children,
higher-timeframe bars, position accounting, process capability indices). Built-in plugins
use nothing else, and neither should yours: the runtime's other modules may change between
releases; this surface changes only with the contract version (minor: additions; major: a
plugin must be updated, and the runtime refuses one built for another major version, naming
both).

Test a plugin with :mod:`tradefleet_runtime.sdk.testing`: ``make_bars``/``make_bar`` build bars
by hand, ``run_strategy`` backtests a strategy on them through the real engine and ``paper``
broker (orders, fills, trades, risk decisions, equity, events), ``judge`` asks a risk plugin
about hand-made intents and ``check_shrink_or_veto`` applies the engine's shrink-or-veto rule
to its answers. Import them from ``tradefleet_runtime.sdk.testing``: they are not re-exported
here, because they load the session, engine and journal a plugin itself never needs. The
walk-through from nothing to an installed, tested plugin is ``docs/writing-a-strategy.md``.

::

    from tradefleet_runtime.sdk import Bar, PluginParams, Strategy

    class Breakout(Strategy):
        def on_bar(self, bar: Bar) -> None:
            ...
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from tradefleet_runtime.accounting import FillEffect, apply_fill, equity_made, netted_quantity
from tradefleet_runtime.aggregation import BarAggregator
from tradefleet_runtime.bar_columns import (
    BarColumns,
    ColumnBars,
    cached_columns,
    fast_csv_columns,
)
from tradefleet_runtime.brackets import (
    LIQUIDATION_TAG,
    OUTSIDE_TAG,
    STOP_LOSS_TAG,
    TAKE_PROFIT_TAG,
    bracket_children,
    bracket_role,
)
from tradefleet_runtime.capabilities import (
    QUOTE_MAX_AGE_S,
    AccountAction,
    AccountActor,
    AccountRestorer,
    ActionKind,
    BarObserver,
    BracketFollower,
    Capability,
    CashFlowReporter,
    EquityRestorer,
    FillObserver,
    FillRestorer,
    LeverageReporter,
    LockRestorer,
    MarketClock,
    MissedBarMatcher,
    OrderObserver,
    OrderRestorer,
    PositionRestorer,
    PriceQuoter,
    ReleaseSlack,
    RiskLockHolder,
    SignalReceiver,
    StateRestorer,
    SymbolChecker,
    TargetPlan,
    TargetPositioner,
    TierReporter,
    TradeReader,
    VenueExecution,
)
from tradefleet_runtime.contracts import (
    Broker,
    BrokerContext,
    DataFeed,
    FeedReport,
    FeedRequest,
    NoParams,
    PluginParams,
    RiskContext,
    RiskPlugin,
    Strategy,
    StrategyContext,
    Subscription,
)
from tradefleet_runtime.errors import DataError, PluginError
from tradefleet_runtime.indicators import (
    ADX,
    ATR,
    DEFAULT_HISTORY,
    EMA,
    EXTENSIONS,
    MACD,
    RETRACEMENTS,
    RSI,
    SMA,
    VWAP,
    WMA,
    BarHistory,
    Bollinger,
    CloseIndicator,
    Donchian,
    Fibonacci,
    Indicator,
    Series,
    SessionVWAP,
    Stochastic,
    Swings,
    bar_handler,
    true_range,
    vectorised,
)
from tradefleet_runtime.instruments import limit_problem, round_price, round_quantity
from tradefleet_runtime.model import (
    Accrual,
    Bar,
    CashFlow,
    Fill,
    Instrument,
    Order,
    OrderIntent,
    OrderReport,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    PositionReport,
    ReasonCode,
    RiskAction,
    RiskDecision,
    Side,
    Trade,
    fill_reason,
)
from tradefleet_runtime.order_ids import (
    bot_prefix,
    child_order_id,
    client_order_id,
    original_order_id,
    replacement_order_id,
    venue_replacement_id,
)
from tradefleet_runtime.plugins.hookspecs import hookimpl
from tradefleet_runtime.plugins.registry import (
    CONTRACT_VERSION,
    PluginKind,
    PluginRegistry,
    PluginSpec,
)
from tradefleet_runtime.process_capability import (
    CapabilityFigures,
    capability_indices,
    slippage_bps,
)
from tradefleet_runtime.signals import Direction, Signal
from tradefleet_runtime.sizing import fixed_fractional_quantity, leverage_cap_quantity
from tradefleet_runtime.timeframes import bucket_start, format_timeframe, parse_timeframe


@functools.cache
def _registry() -> PluginRegistry:
    return PluginRegistry.discover()


def build_strategy(
    name: str, params: Mapping[str, Any] | None = None, field_path: Sequence[str | int] = ()
) -> Strategy:
    """Build the installed strategy plugin ``name`` with ``params`` (validated by its model;
    a wrong one raises ``SpecError`` naming ``field_path``). For strategies made of other
    strategies (``ensemble``): a plugin never imports the registry itself.

    The child is not wired to the engine: the parent gives it a context (``child.ctx``), calls
    its ``on_start``, then hands each bar to ``bar_handler(child.on_bar, child.indicator_book)``
    so its declared indicators are updated first.
    """
    path = list(field_path) or ["strategy", name]
    built: Strategy = _registry().build(PluginKind.STRATEGY, name, dict(params or {}), path)
    return built


__all__ = [
    "ADX",
    "ATR",
    "CONTRACT_VERSION",
    "DEFAULT_HISTORY",
    "EMA",
    "EXTENSIONS",
    "LIQUIDATION_TAG",
    "MACD",
    "OUTSIDE_TAG",
    "QUOTE_MAX_AGE_S",
    "RETRACEMENTS",
    "RSI",
    "SMA",
    "STOP_LOSS_TAG",
    "TAKE_PROFIT_TAG",
    "VWAP",
    "WMA",
    "AccountAction",
    "AccountActor",
    "AccountRestorer",
    "Accrual",
    "ActionKind",
    "Bar",
    "BarAggregator",
    "BarColumns",
    "BarHistory",
    "BarObserver",
    "Bollinger",
    "BracketFollower",
    "Broker",
    "BrokerContext",
    "Capability",
    "CapabilityFigures",
    "CashFlow",
    "CashFlowReporter",
    "CloseIndicator",
    "ColumnBars",
    "DataError",
    "DataFeed",
    "Direction",
    "Donchian",
    "EquityRestorer",
    "FeedReport",
    "FeedRequest",
    "Fibonacci",
    "Fill",
    "FillEffect",
    "FillObserver",
    "FillRestorer",
    "Indicator",
    "Instrument",
    "LeverageReporter",
    "LockRestorer",
    "MarketClock",
    "MissedBarMatcher",
    "NoParams",
    "Order",
    "OrderIntent",
    "OrderObserver",
    "OrderReport",
    "OrderRestorer",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "PluginError",
    "PluginKind",
    "PluginParams",
    "PluginSpec",
    "Position",
    "PositionReport",
    "PositionRestorer",
    "PriceQuoter",
    "ReasonCode",
    "ReleaseSlack",
    "RiskAction",
    "RiskContext",
    "RiskDecision",
    "RiskLockHolder",
    "RiskPlugin",
    "Series",
    "SessionVWAP",
    "Side",
    "Signal",
    "SignalReceiver",
    "StateRestorer",
    "Stochastic",
    "Strategy",
    "StrategyContext",
    "Subscription",
    "Swings",
    "SymbolChecker",
    "TargetPlan",
    "TargetPositioner",
    "TierReporter",
    "Trade",
    "TradeReader",
    "VenueExecution",
    "apply_fill",
    "bar_handler",
    "bot_prefix",
    "bracket_children",
    "bracket_role",
    "bucket_start",
    "build_strategy",
    "cached_columns",
    "capability_indices",
    "child_order_id",
    "client_order_id",
    "equity_made",
    "fast_csv_columns",
    "fill_reason",
    "fixed_fractional_quantity",
    "format_timeframe",
    "hookimpl",
    "leverage_cap_quantity",
    "limit_problem",
    "netted_quantity",
    "original_order_id",
    "parse_timeframe",
    "replacement_order_id",
    "round_price",
    "round_quantity",
    "slippage_bps",
    "true_range",
    "vectorised",
    "venue_replacement_id",
]
