"""Hook implementations that register tradefleet's built-in plugins.

Factories are ``"module:attr"`` strings so that listing plugins imports no plugin module.
"""

from __future__ import annotations

from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams
from tradefleet_plugins.brokers.mt5_params import Mt5BrokerParams
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_plugins.feeds.ccxt_feed_params import CcxtFeedParams
from tradefleet_plugins.feeds.csv_params import CsvFeedParams
from tradefleet_plugins.feeds.mt5_feed_params import Mt5FeedParams
from tradefleet_plugins.risk.circuit_breaker_params import CircuitBreakerParams
from tradefleet_plugins.risk.exits_params import ExitsParams
from tradefleet_plugins.risk.kelly_params import KellyParams
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_plugins.risk.probation_params import ProbationParams
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_plugins.risk.quality_guard_params import QualityGuardParams
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams, FixedSizeParams
from tradefleet_plugins.risk.volatility_target_params import VolatilityTargetParams
from tradefleet_plugins.strategies.bos_retest_params import BosRetestParams
from tradefleet_plugins.strategies.confluence_params import ConfluenceParams
from tradefleet_plugins.strategies.ema_cross_params import EmaCrossParams
from tradefleet_plugins.strategies.ensemble_params import EnsembleParams
from tradefleet_plugins.strategies.external_signal_params import ExternalSignalParams
from tradefleet_plugins.strategies.fib_atr_params import FibAtrParams
from tradefleet_runtime.sdk import Capability, PluginKind, PluginSpec, hookimpl

VERSION = "0.1.0"


@hookimpl
def tradefleet_strategies() -> list[PluginSpec]:
    return [
        PluginSpec(
            kind=PluginKind.STRATEGY,
            name="ema-cross",
            version=VERSION,
            factory="tradefleet_plugins.strategies.ema_cross:EmaCross",
            params=EmaCrossParams,
            summary="Long on a fast/slow EMA cross up, short (or flat) on a cross down.",
            capabilities=frozenset({Capability.TARGET_POSITIONS}),
        ),
        PluginSpec(
            kind=PluginKind.STRATEGY,
            name="external-signal",
            version=VERSION,
            factory="tradefleet_plugins.strategies.external_signal:ExternalSignal",
            params=ExternalSignalParams,
            summary="Trades signals pushed through the webhook or SubmitSignal, checked first.",
            capabilities=frozenset({Capability.TAKES_SIGNALS}),
        ),
        PluginSpec(
            kind=PluginKind.STRATEGY,
            name="indicator-confluence",
            version=VERSION,
            factory="tradefleet_plugins.strategies.confluence:IndicatorConfluence",
            params=ConfluenceParams,
            summary="RSI, MACD, EMA trend, Bollinger and VWAP vote; enter at 3 of 5.",
        ),
        PluginSpec(
            kind=PluginKind.STRATEGY,
            name="bos-retest",
            version=VERSION,
            factory="tradefleet_plugins.strategies.bos_retest:BosRetest",
            params=BosRetestParams,
            summary="Break of structure on a higher timeframe, entered on its retest.",
        ),
        PluginSpec(
            kind=PluginKind.STRATEGY,
            name="fib-atr",
            version=VERSION,
            factory="tradefleet_plugins.strategies.fib_atr:FibAtr",
            params=FibAtrParams,
            summary="Pullbacks to Fibonacci retracements in the trend; ATR stops and targets.",
        ),
        PluginSpec(
            kind=PluginKind.STRATEGY,
            name="ensemble",
            version=VERSION,
            factory="tradefleet_plugins.strategies.ensemble:Ensemble",
            params=EnsembleParams,
            summary="Child strategies vote; trades when a quorum agrees with confidence.",
        ),
    ]


@hookimpl
def tradefleet_risk_plugins() -> list[PluginSpec]:
    return [
        PluginSpec(
            kind=PluginKind.RISK,
            name="fixed-size",
            version=VERSION,
            factory="tradefleet_plugins.risk.sizers:FixedSize",
            params=FixedSizeParams,
            summary="Sizer: the same quantity for every unsized order.",
            capabilities=frozenset({Capability.INTENT_ONLY, Capability.SIZER}),
        ),
        PluginSpec(
            kind=PluginKind.RISK,
            name="fixed-fractional",
            version=VERSION,
            factory="tradefleet_plugins.risk.sizers:FixedFractional",
            params=FixedFractionalParams,
            summary="Sizer: risk a fixed fraction of equity to the stop-loss.",
            capabilities=frozenset({Capability.SIZER}),
        ),
        PluginSpec(
            kind=PluginKind.RISK,
            name="circuit-breaker",
            version=VERSION,
            factory="tradefleet_plugins.risk.circuit_breaker:CircuitBreaker",
            params=CircuitBreakerParams,
            summary="Drawdown tiers 5/10/15%: cut sizes, halt and cut exposure, flatten and "
            "lock; weekly and peak limits.",
            capabilities=frozenset(
                {
                    Capability.RISK_LOCK,
                    Capability.RESTORES_LOCK,
                    Capability.RESTORES_EQUITY,
                    Capability.ACTS_ON_ACCOUNT,
                    Capability.REPORTS_TIER,
                    Capability.NEEDS_SIZE,
                }
            ),
        ),
        PluginSpec(
            kind=PluginKind.RISK,
            name="prop-firm",
            version=VERSION,
            factory="tradefleet_plugins.risk.prop_firm:PropFirm",
            params=PropFirmParams,
            summary="FTMO-style daily/total loss in the worst case (all stops hit), leverage, "
            "target; flattens before a breach.",
            capabilities=frozenset(
                {
                    Capability.RISK_LOCK,
                    Capability.RESTORES_LOCK,
                    Capability.RESTORES_EQUITY,
                    Capability.RESTORES_STATE,
                    Capability.ACTS_ON_ACCOUNT,
                    Capability.READS_TRADES,
                    Capability.OBSERVES_FILLS,
                    Capability.NEEDS_SIZE,
                }
            ),
        ),
        PluginSpec(
            kind=PluginKind.RISK,
            name="pre-trade",
            version=VERSION,
            factory="tradefleet_plugins.risk.pre_trade:PreTrade",
            params=PreTradeParams,
            summary="Price band, size/notional, free margin, gross/group exposure, correlation, "
            "positions, leverage, hours, trades a day, holding, loss cooldown, balance.",
            capabilities=frozenset(
                {Capability.OBSERVES_BARS, Capability.READS_TRADES, Capability.RESTORES_STATE}
            ),
        ),
        PluginSpec(
            kind=PluginKind.RISK,
            name="kelly",
            version=VERSION,
            factory="tradefleet_plugins.risk.kelly:Kelly",
            params=KellyParams,
            summary="Sizer: fractional Kelly (0.25) from the bot's own closed trades, capped.",
            capabilities=frozenset({Capability.READS_TRADES, Capability.SIZER}),
        ),
        PluginSpec(
            kind=PluginKind.RISK,
            name="volatility-target",
            version=VERSION,
            factory="tradefleet_plugins.risk.volatility_target:VolatilityTarget",
            params=VolatilityTargetParams,
            summary="Sizer: risk a fraction of equity over a multiple of the ATR.",
            capabilities=frozenset({Capability.OBSERVES_BARS, Capability.SIZER}),
        ),
        PluginSpec(
            kind=PluginKind.RISK,
            name="probation",
            version=VERSION,
            factory="tradefleet_plugins.risk.probation:Probation",
            params=ProbationParams,
            summary="Rolling P&L of the last trades: x0.5 from -5%, x0.25 from -10%, "
            "hibernate (lock) beyond -15%.",
            capabilities=frozenset(
                {
                    Capability.READS_TRADES,
                    Capability.RISK_LOCK,
                    Capability.RESTORES_LOCK,
                    Capability.RESTORES_STATE,
                    Capability.NEEDS_SIZE,
                }
            ),
        ),
        PluginSpec(
            kind=PluginKind.RISK,
            name="quality-guard",
            version=VERSION,
            factory="tradefleet_plugins.risk.quality_guard:QualityGuard",
            params=QualityGuardParams,
            summary="Execution quality as a control: slippage Cpk below 1.33 cuts sizes, below "
            "1.0 stops entries (lock); optional win-rate floor.",
            capabilities=frozenset(
                {
                    Capability.OBSERVES_ORDERS,
                    Capability.OBSERVES_FILLS,
                    Capability.READS_TRADES,
                    Capability.RISK_LOCK,
                    Capability.RESTORES_LOCK,
                    Capability.RESTORES_FILLS,
                    Capability.REPORTS_TIER,
                    Capability.NEEDS_SIZE,
                }
            ),
        ),
        PluginSpec(
            kind=PluginKind.RISK,
            name="exits",
            version=VERSION,
            factory="tradefleet_plugins.risk.exits:Exits",
            params=ExitsParams,
            summary="Early exit at 80% of the stop distance, trailing and break-even exits "
            "(decided on closed bars, sent as reduce-only market orders; a paper or live bot's "
            "best price since entry and break-even arm survive a restart).",
            capabilities=frozenset(
                {Capability.OBSERVES_BARS, Capability.ACTS_ON_ACCOUNT, Capability.RESTORES_STATE}
            ),
        ),
    ]


@hookimpl
def tradefleet_brokers() -> list[PluginSpec]:
    return [
        PluginSpec(
            kind=PluginKind.BROKER,
            name="paper",
            version=VERSION,
            factory="tradefleet_plugins.brokers.paper:PaperBroker",
            params=PaperBrokerParams,
            summary="Simulated venue: fees, slippage, margin, SL/TP, fills on later bars.",
            modes=frozenset({"backtest", "paper"}),
            capabilities=frozenset(
                {
                    Capability.RESTORES_ACCOUNT,
                    Capability.VENUE_EXECUTION,
                    Capability.KNOWS_LEVERAGE,
                }
            ),
        ),
        PluginSpec(
            kind=PluginKind.BROKER,
            name="mt5",
            version=VERSION,
            factory="tradefleet_plugins.brokers.mt5_broker:Mt5Broker",
            params=Mt5BrokerParams,
            summary="MetaTrader 5 account through a terminal (package, bridge): symbol map, "
            "filling modes, retcodes reconciled by magic and comment, netting and hedging.",
            modes=frozenset({"live"}),
            capabilities=frozenset(
                {
                    Capability.VENUE_EXECUTION,
                    Capability.KNOWS_LEVERAGE,
                    # The terminal's tick: a signal's market entry is sized at it.
                    Capability.QUOTES_PRICES,
                    # Swaps, booked on the deal that closes a position.
                    Capability.REPORTS_CASH_FLOWS,
                    # ... and accrued on an open position until then (in the equity).
                    Capability.REPORTS_ACCRUALS,
                }
            ),
        ),
        PluginSpec(
            kind=PluginKind.BROKER,
            name="ccxt",
            version=VERSION,
            factory="tradefleet_plugins.brokers.ccxt_broker:CcxtBroker",
            params=CcxtBrokerParams,
            summary="A real account at Binance (spot, USDⓈ-M), Bybit (linear) or Kraken (spot), "
            "the venues it is proven against: async, retried safely, orders looked up by client "
            "id before any resend.",
            # Live only: a paper bot trades a simulated account (the paper broker); a testnet
            # is a live bot with ``sandbox: true``.
            modes=frozenset({"live"}),
            capabilities=frozenset(
                {
                    Capability.VENUE_EXECUTION,
                    Capability.FOLLOWS_BRACKETS,
                    Capability.KNOWS_LEVERAGE,
                    Capability.RESTORES_POSITIONS,
                    # The venue's ticker: a signal's market entry is sized at it.
                    Capability.QUOTES_PRICES,
                    # Funding of linear markets (Binance USDⓈ-M, Bybit); spot reports none.
                    Capability.REPORTS_CASH_FLOWS,
                }
            ),
        ),
    ]


@hookimpl
def tradefleet_data_feeds() -> list[PluginSpec]:
    return [
        PluginSpec(
            kind=PluginKind.DATA_FEED,
            name="csv",
            version=VERSION,
            factory="tradefleet_plugins.feeds.csv_feed:CsvFeed",
            params=CsvFeedParams,
            summary="Replays OHLCV from CSV files; checks order, duplicates, NaN, rows off the "
            "file's time grid, UTF-8; resamples.",
        ),
        PluginSpec(
            kind=PluginKind.DATA_FEED,
            name="ccxt",
            version=VERSION,
            factory="tradefleet_plugins.feeds.ccxt_feed:CcxtFeed",
            params=CcxtFeedParams,
            summary="Closed OHLCV candles from a crypto venue through ccxt: warm-up history, "
            "then each candle once closed on the venue's clock; gaps reported; retries.",
            capabilities=frozenset({Capability.LIVE_FEED, Capability.TELLS_MARKET_TIME}),
        ),
        PluginSpec(
            kind=PluginKind.DATA_FEED,
            name="mt5",
            version=VERSION,
            factory="tradefleet_plugins.feeds.mt5_feed:Mt5Feed",
            params=Mt5FeedParams,
            summary="Bars from a MetaTrader 5 terminal: history warm-up, then each closed bar "
            "(server time to UTC, gap policy).",
            modes=frozenset({"paper", "live"}),
            capabilities=frozenset({Capability.LIVE_FEED, Capability.TELLS_MARKET_TIME}),
        ),
    ]
