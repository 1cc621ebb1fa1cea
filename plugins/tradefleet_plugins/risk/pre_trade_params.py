"""Params of the ``pre-trade`` risk plugin. Every check is off when its value is 0 or unset,
except the defaults the issue names (price band 10%, gross 150%, group 40%, correlation 0.7
over 100 bars, 3 open positions, 100:1 leverage)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator, model_validator

from tradefleet_plugins.params_rules import bot_symbol_keys
from tradefleet_runtime.sdk import PluginParams

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class PreTradeParams(PluginParams):
    price_band: float = Field(
        default=0.10,
        ge=0,
        le=1,
        description="A limit or stop price must lie within this fraction of the last price "
        "(0: off).",
    )
    max_order_quantity: float = Field(
        default=0,
        ge=0,
        description="Largest order (0: off); a reversal is never cut below the part closing "
        "the opposite position (an exit).",
    )
    max_order_notional: float = Field(
        default=0,
        ge=0,
        description="Largest order notional, quantity × price (0: off); a reversal is never "
        "cut below the part closing the opposite position.",
    )
    margin_leverage: float = Field(
        default=0,
        ge=0,
        le=1000,
        description="Leverage for the free-margin check: an order's notional / leverage must "
        "fit in equity − used margin (0: the account's leverage from the engine). Of a "
        "reversal only what it opens counts, and the part closing the position frees its "
        "margin; a reversal whose opening part a cap refuses (free margin, gross or group "
        "exposure, max_leverage) is shrunk to the part that closes.",
    )
    max_gross_exposure: float = Field(
        default=1.5,
        ge=0,
        le=1000,
        description="Gross exposure after the order, as a multiple of equity (0: off).",
    )
    group_cap: float = Field(
        default=0.40,
        ge=0,
        le=1000,
        description="Exposure of one group (sector, asset class, currency) after the order, "
        "as a multiple of equity; applies to symbols in `groups`.",
    )
    groups: dict[str, str] = Field(
        default_factory=dict, description="Group of each symbol, e.g. {EURUSD: EUR}."
    )
    max_correlation: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Veto an entry whose returns correlate above this with an open position "
        "in the same direction (below minus this, in the opposite one); 0: off. A symbol whose "
        "returns did not move over the window (flat) has no correlation and vetoes nothing.",
    )
    correlation_bars: int = Field(
        default=100, ge=10, le=10_000, description="Rolling window of bar returns."
    )
    max_open_positions: int = Field(
        default=3, ge=0, le=10_000, description="Open positions at most (0: off)."
    )
    max_leverage: float = Field(
        default=100.0,
        ge=0,
        le=1000,
        description="A symbol's position notional after the order / equity (0: off).",
    )
    max_leverage_per_symbol: dict[str, float] = Field(
        default_factory=dict, description="`max_leverage` per symbol, overriding it."
    )
    max_risk_per_trade: float = Field(
        default=0,
        ge=0,
        le=0.2,
        description="Largest loss an entry may take if its stop-loss is hit, as a fraction of "
        "equity (0.01 = 1%; 0: off): quantity × |entry − stop|, the entry at the order's price "
        "(a market order's at the last price). Fees and slippage are not counted, the same "
        "measure as `fixed-fractional`'s risk_per_trade (prop-firm counts them against its "
        "floors). It holds for every order, those that come with their own quantity (a "
        "strategy's, a signal's volume) included: a larger one is shrunk to fit, rounded down "
        "to the lot step (below the instrument's minimum: vetoed). An entry without a stop is "
        "vetoed unless risk_without_stop is set. Only what an order opens counts: the part "
        "closing an opposite position (a reversal) is an exit, never cut, and a reversal that "
        "may open nothing is shrunk to that part. It needs the order's size: pre-trade placed "
        "before the chain's sizer in spec.risk is refused at load while it is on. Per order: "
        "entries split in several are each checked alone.",
    )
    max_risk_per_trade_per_symbol: dict[str, Annotated[float, Field(ge=0, le=0.2)]] = Field(
        default_factory=dict,
        description="`max_risk_per_trade` per symbol, overriding it (0: off for that symbol).",
    )
    risk_without_stop: float = Field(
        default=0,
        ge=0,
        lt=1,
        description="For `max_risk_per_trade`: the adverse move, a fraction of the entry price, "
        "an entry without a stop-loss is taken to risk (0: such an entry is vetoed while "
        "max_risk_per_trade is on; nothing bounds its loss).",
    )
    timezone: str = Field(default="UTC", description="Timezone of trading hours and days.")
    trading_hours: tuple[str, str] | None = Field(
        default=None,
        description='Entries only between these local times, ["HH:MM", "HH:MM"] (the end '
        "excluded; an end before the start spans midnight).",
    )
    trading_days: list[int] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4, 5, 6],
        description="Local weekdays entries are allowed on (0 = Monday).",
    )
    max_trades_per_day: int = Field(
        default=0, ge=0, le=100_000, description="Entries this plugin approves a day (0: off)."
    )
    min_holding_s: int = Field(
        default=0,
        ge=0,
        description="An order that would cut or flip a position younger than this is vetoed "
        "unless it is reduce-only (exits and stops always pass); 0: off.",
    )
    cooldown_after_loss_s: int = Field(
        default=0, ge=0, description="No entries this long after a losing trade closed (0: off)."
    )
    min_balance: float = Field(
        default=0, ge=0, description="No entries while equity is below this (0: off)."
    )

    def needs_size(self) -> str:
        """``max_risk_per_trade`` shrinks an order to its risk, so it needs the size: on (for
        any symbol), pre-trade before the chain's sizer is refused at load, as plugins
        declaring ``needs-size`` are (its other checks work on an unsized order)."""
        if self.max_risk_per_trade or any(self.max_risk_per_trade_per_symbol.values()):
            return "max_risk_per_trade"
        return ""

    @field_validator("trading_hours")
    @classmethod
    def _hours(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        if value is not None and not all(_HHMM.match(v) for v in value):
            raise ValueError('trading_hours must be two "HH:MM" times')
        return value

    # A symbol the bot does not trade (a typo) would cap or group nothing, silently.
    @field_validator("groups", "max_leverage_per_symbol", "max_risk_per_trade_per_symbol")
    @classmethod
    def _bot_symbols(cls, value: dict[str, object], info: ValidationInfo) -> dict[str, object]:
        return bot_symbol_keys(value, info)

    @field_validator("trading_days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(day < 0 or day > 6 for day in value):
            raise ValueError("trading_days are weekdays 0 (Monday) to 6 (Sunday)")
        return value

    @model_validator(mode="after")
    def _known_zone(self) -> PreTradeParams:
        from tradefleet_plugins.risk.rules import zone

        try:
            zone(self.timezone)
        except Exception as error:
            raise ValueError(f"unknown timezone {self.timezone!r}") from error
        return self
