"""Params of the paper broker (kept apart so listing plugins imports nothing else)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from tradefleet_plugins.params_rules import bot_symbol_keys
from tradefleet_runtime.sdk import PluginParams

# The largest funding rate per interval taken, either way: 1 % (a history's rows too).
MAX_FUNDING_RATE = 0.01


class InstrumentParams(PluginParams):
    """Rounding and size limits of one simulated symbol (params, hence finite numbers)."""

    tick_size: float = Field(default=0.0, ge=0, description="Price increment; 0: any price.")
    lot_step: float = Field(default=0.0, ge=0, description="Quantity increment; 0: any quantity.")
    min_quantity: float = Field(default=0.0, ge=0, description="Smallest order quantity.")
    min_notional: float = Field(
        default=0.0,
        ge=0,
        description="Smallest order value (quantity × price). An entry whose stop-loss or "
        "take-profit, valued at its own price, would be below it (or below min_quantity) once "
        "the entry fills is refused too, as a venue would refuse that child: a backtest with "
        "it set may trade less. Exits are never refused.",
    )
    contract_size: float = Field(
        default=1.0,
        gt=0,
        description="Units in one lot, as the live venue states it (MT5's trade_contract_size: "
        "100000 for EURUSD; for a futures calc mode its tick value / tick size: 50 for ES at "
        "12.5 a 0.25 tick): what an external-signal volume in lots is multiplied by. Every "
        "quantity stays in units.",
    )


class PaperBrokerParams(PluginParams):
    """A simulated account: fees, slippage and margin like a venue, fills on later bars."""

    fee_bps: float = Field(
        default=0.0, ge=0, le=1000, description="Fee per fill in basis points of the notional."
    )
    maker_fee_bps: float | None = Field(
        default=None,
        ge=0,
        le=1000,
        description=(
            "Fee for limit orders that rest before they fill (bps); defaults to fee_bps. A"
            " limit the next open is already through takes liquidity: fee_bps and the slippage."
        ),
    )
    slippage_bps: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description=(
            "Adverse price move applied to market and stop fills, and to a limit the next open"
            " is already through (a taker's), in basis points."
        ),
    )
    take_profit_fill: Literal["limit", "market"] = Field(
        default="limit",
        description="How a bracket's take-profit fills when the price reaches it. `limit`: as "
        "a resting limit order, at its price with `maker_fee_bps` (at the bar's open when "
        "the bar opened beyond it; a taker's when it was already through as it was placed). "
        "`market`: as a market order sent when the price reaches "
        "it, at its price (or the bar's open when the bar gapped through it, as a stop) with "
        "`slippage_bps` against the bot and `fee_bps`. Live Kraken spot sells a take-profit "
        "beside a stop-loss at market (the broker watches it: the venue holds the coin "
        "once, for the stop), so a backtest at `limit` books each such exit better than the "
        "live one by the slippage and the fee difference: rehearse a Kraken spot bot with "
        "`market`. Other take-profits (a strategy's own limit orders) fill as limits either "
        "way. The vectorised backtest places no take-profit, so it agrees with either.",
    )
    leverage: float = Field(
        default=1.0,
        ge=1.0,
        le=1000.0,
        description="Account leverage: an order is rejected when margin (notional / leverage) "
        "would exceed equity.",
    )
    maintenance_margin_rate: float = Field(
        default=0.005,
        ge=0.0,
        lt=0.5,
        description="Liquidation: when the account's equity falls to this fraction of its gross "
        "notional (its maintenance margin), the venue closes the position at the price where "
        "they meet (the bar's open when it gapped beyond: before any order of the bot, a "
        "market close or a stop the gap went through included), cancels the symbol's working "
        "orders, "
        "and the fill's reason is `liquidation`. Binance and Bybit state it per symbol and tier "
        "(0.004-0.005 for BTC and ETH perpetuals, more for others); MT5's stop-out level is "
        "this too (50 % of the margin at 1:100 is 0.005). A long not borrowing "
        "(leverage 1) is never liquidated. 0: never liquidated (equity may go below zero).",
    )
    liquidation_fee_bps: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description="Charged on a liquidation's notional besides `fee_bps` (basis points): "
        "some venues keep what is left of the maintenance margin (Binance's liquidation "
        "clearance fee); 0: the taker fee only.",
    )
    # Funding of perpetual futures. Bounded at ±1 % an interval: venues cap it lower (Bybit
    # ±0.375 % on BTC), so a value beyond is a percent written as a fraction or a typo.
    funding_rate: float = Field(
        default=0.0,
        ge=-MAX_FUNDING_RATE,
        le=MAX_FUNDING_RATE,
        description="Funding rate of a perpetual future per funding interval, as a fraction of "
        "the position's notional (0.0001 = 0.01 %, the usual base rate on Binance and Bybit): "
        "at each funding time a long pays and a short receives quantity × price × rate (a "
        "negative rate the other way), the price being the open of the first bar at or after "
        "that time. A constant estimate of the cost, not the venue's history. 0: no funding "
        "(spot).",
    )
    funding_rate_per_symbol: dict[
        str, Annotated[float, Field(ge=-MAX_FUNDING_RATE, le=MAX_FUNDING_RATE)]
    ] = Field(
        default_factory=dict,
        description="Funding rate per symbol (a fraction per interval), overriding "
        "`funding_rate`; 0 for a symbol that pays none.",
    )
    funding_interval_h: int = Field(
        default=8,
        ge=1,
        le=24,
        description="Hours between funding times, which fall at 00:00 UTC and every this many "
        "hours after (8: 00:00, 08:00, 16:00, as on Binance and Bybit); divides 24.",
    )
    funding_history: dict[str, str] = Field(
        default_factory=dict,
        description="A venue's history of funding rates per symbol: the path of a CSV file "
        "(relative to the manifest's folder, as the csv feed's `path`), "
        "with a header row, a time column (the first of calc_time, timestamp, time, fundingTime: "
        "epoch seconds or milliseconds, or ISO 8601, UTC unless it names a zone) and a rate "
        "column (the first of last_funding_rate, fundingRate, funding_rate, rate: a fraction, "
        "within ±0.05), as Binance's monthly fundingRate files and ccxt's "
        "fetchFundingRateHistory give them; a symbol column, when there is one (as "
        "`tradefleet funding-history` writes), must name this market, by ccxt's unified "
        "symbol or the venue's id: two unified names compare base, quote and (when both name "
        "one) settlement currency, so BTC/USD:BTC is not BTC/USD:USD; a unified name and an "
        "id (BTC-USDT-SWAP, PF_XBTUSD) match when the id's letters hold the base (or XBT for "
        "BTC) and after it the quote; two ids compare letters and digits. The symbol pays "
        "at the history's own times, each at its own rate, instead of `funding_rate` on the "
        "`funding_interval_h` grid. A position held at a funding time outside the history "
        "(after its last time plus its "
        "last interval, or before its first) fails the run, naming it.",
    )
    instruments: dict[str, InstrumentParams] = Field(
        default_factory=dict,
        description="Per-symbol rounding and limits: an order outside them is refused before "
        "it leaves, and so is an entry whose stop-loss or take-profit would be below a "
        "minimum once it fills.",
    )
    default_instrument: InstrumentParams = Field(
        default_factory=InstrumentParams, description="Limits of symbols not listed."
    )

    # A symbol the bot does not trade (a typo) would leave the real one on
    # `default_instrument`'s limits, silently. Keyed by the bot's symbols: paper maps none.
    @field_validator("instruments", "funding_rate_per_symbol")
    @classmethod
    def _bot_symbols(cls, value: dict[str, object], info: ValidationInfo) -> dict[str, object]:
        return bot_symbol_keys(value, info)

    # A symbol's funding comes from one place: a history and a constant rate both set would
    # leave one of them unused, silently. Checked after the rate fields (declared before).
    @field_validator("funding_history")
    @classmethod
    def _one_funding_source(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        value = bot_symbol_keys(value, info)
        for symbol, path in value.items():
            if not path.strip() or "\0" in path:
                raise ValueError(f"{symbol}: {path!r} is not a file's path")
        per_symbol: dict[str, float] = info.data.get("funding_rate_per_symbol") or {}
        for symbol in value:
            if symbol in per_symbol:
                raise ValueError(
                    f"{symbol}: also set in funding_rate_per_symbol ({per_symbol[symbol]:.10g}): "
                    "give the symbol a history or a constant rate, not both"
                )
        rate = info.data.get("funding_rate")
        context = info.context if isinstance(info.context, dict) else {}
        base = context.get("base_dir") or ""
        if base:  # built for a run: a relative path is the manifest folder's, as a feed's
            value = {symbol: str(Path(base) / path) for symbol, path in value.items()}
        symbols = context.get("symbols") or ()
        if rate and value and symbols and all(s in value or s in per_symbol for s in symbols):
            raise ValueError(
                f"every symbol pays by its history (or funding_rate_per_symbol), so "
                f"funding_rate {rate:.10g} would apply to none: remove funding_rate, or the "
                "history of a symbol that should pay it"
            )
        return value

    # Funding times repeat every day at the same hours only when the interval divides a day.
    @field_validator("funding_interval_h")
    @classmethod
    def _divides_a_day(cls, value: int) -> int:
        if 24 % value:
            raise ValueError(f"must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24), got {value}")
        return value

    def funding_rate_of(self, symbol: str) -> float:
        """The constant funding rate per interval of ``symbol`` (0 for one that pays by its
        ``funding_history``)."""
        if symbol in self.funding_history:
            return 0.0
        return self.funding_rate_per_symbol.get(symbol, self.funding_rate)
