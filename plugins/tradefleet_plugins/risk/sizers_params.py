"""Params of the built-in sizers."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from tradefleet_plugins.params_rules import bot_symbol_keys
from tradefleet_runtime.sdk import PluginParams

# The three sizers' ``max_leverage`` (each cuts with ``sizing.sized_within_leverage``): one text.
MAX_LEVERAGE_DESCRIPTION = (
    "Cap on the notional an order opens, as a multiple of equity: the orders it sizes, and an "
    "order that came sized (a strategy's quantity, a signal's volume), cut to it on the lot step "
    "(an exit never is). The cap leaves room for the fill's costs the broker states (the paper "
    "broker's fee_bps and, but for a limit order, slippage_bps): the fill's notional over "
    "max_leverage plus its fee fits the equity, so at max_leverage 1 on a 1x spot account the "
    "entry is not refused for its own costs (a market that gaps past the slippage before the "
    "fill can still refuse it). When the cap, not the risk, sets the size, the decision's "
    "reason says so; the default of 1 cuts most FX, gold and index orders: set what the "
    "account allows."
)


class FixedSizeParams(PluginParams):
    quantity: float = Field(gt=0, description="Quantity of every unsized order.")
    # Bounded per value, so that an error names the symbol (per_symbol.EURUSD). At 0 or below
    # every order of that symbol would be sized to nothing: the bot would run and never trade it.
    per_symbol: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="Quantity per symbol, overriding `quantity`."
    )

    # A symbol the bot does not trade (a typo) would leave the real one at `quantity`, silently.
    @field_validator("per_symbol")
    @classmethod
    def _bot_symbols(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        return bot_symbol_keys(value, info)


class FixedFractionalParams(PluginParams):
    risk_per_trade: float = Field(
        default=0.01,
        gt=0,
        le=0.2,
        description="Fraction of equity lost if the stop-loss is hit (0.01 = 1%).",
    )
    default_stop_pct: float = Field(
        default=0.02,
        gt=0,
        lt=1,
        description="Stop distance assumed (fraction of price) for orders without a stop-loss.",
    )
    max_leverage: float = Field(
        default=1.0,
        gt=0,
        le=1000,
        description=MAX_LEVERAGE_DESCRIPTION,
    )
