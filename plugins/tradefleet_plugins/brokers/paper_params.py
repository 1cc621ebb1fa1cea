"""Params of the paper broker (kept apart so listing plugins imports nothing else)."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from tradefleet_plugins.params_rules import bot_symbol_keys
from tradefleet_runtime.sdk import PluginParams


class InstrumentParams(PluginParams):
    """Rounding and size limits of one simulated symbol (params, hence finite numbers)."""

    tick_size: float = Field(default=0.0, ge=0, description="Price increment; 0: any price.")
    lot_step: float = Field(default=0.0, ge=0, description="Quantity increment; 0: any quantity.")
    min_quantity: float = Field(default=0.0, ge=0, description="Smallest order quantity.")
    min_notional: float = Field(default=0.0, ge=0, description="Smallest order value.")
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
        description="Fee for limit-order fills (bps); defaults to fee_bps.",
    )
    slippage_bps: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description="Adverse price move applied to market and stop fills, in basis points.",
    )
    leverage: float = Field(
        default=1.0,
        ge=1.0,
        le=1000.0,
        description="Account leverage: an order is rejected when margin (notional / leverage) "
        "would exceed equity.",
    )
    instruments: dict[str, InstrumentParams] = Field(
        default_factory=dict, description="Per-symbol rounding and limits."
    )
    default_instrument: InstrumentParams = Field(
        default_factory=InstrumentParams, description="Limits of symbols not listed."
    )

    # A symbol the bot does not trade (a typo) would leave the real one on
    # `default_instrument`'s limits, silently. Keyed by the bot's symbols: paper maps none.
    @field_validator("instruments")
    @classmethod
    def _bot_symbols(
        cls, value: dict[str, InstrumentParams], info: ValidationInfo
    ) -> dict[str, InstrumentParams]:
        return bot_symbol_keys(value, info)
