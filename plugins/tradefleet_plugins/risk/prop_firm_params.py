"""Params of the ``prop-firm`` risk plugin: a preset, every value of which can be overridden."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tradefleet_runtime.sdk import PluginParams

# FTMO-style challenges (values as their rules state them; check your firm's current terms).
PRESETS: dict[str, dict[str, float]] = {
    "ftmo-2step": {
        "max_daily_loss": 0.05,
        "max_total_loss": 0.10,
        "profit_target": 0.10,
        "min_trading_days": 4,
        "max_leverage": 100.0,
    },
    "ftmo-1step": {
        "max_daily_loss": 0.03,
        "max_total_loss": 0.10,
        "profit_target": 0.10,
        "min_trading_days": 0,
        "max_leverage": 100.0,
    },
}

DailyLossOf = Literal["initial", "day_start"]
DayStartFrom = Literal["balance", "equity", "higher"]

# How each preset's firm measures the day (FTMO Academy, "Maximum Daily Loss": equity must not
# fall below the balance at midnight CE(S)T less 5% (1-step: 3%) of the initial capital).
PRESET_BASES: dict[str, tuple[DailyLossOf, DayStartFrom]] = {
    "ftmo-2step": ("initial", "balance"),
    "ftmo-1step": ("initial", "balance"),
}

# Whether the preset's maximum loss trails (ftmo.com, 1-Step "Maximum Loss": recalculated every
# midnight CE(S)T from the highest balance at the end of any preceding trading day, or the
# initial capital if higher, less 10% of the initial capital; it only rises). 2-Step: fixed.
PRESET_TRAILS: dict[str, bool] = {"ftmo-2step": False, "ftmo-1step": True}


class PropFirmParams(PluginParams):
    preset: Literal["ftmo-2step", "ftmo-1step"] = Field(
        default="ftmo-2step",
        description="Starting values: ftmo-2step (daily 5%, total 10%, target 10%, 4 trading "
        "days, 100:1) or ftmo-1step (daily 3%, total 10% trailing the highest end-of-day "
        "balance, target 10%), the daily limit as FTMO measures it: equity may not fall below "
        "the balance at midnight CE(S)T less the daily share of the initial capital. Any field "
        "set below overrides the preset.",
    )
    max_daily_loss: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Largest loss in one trading day: equity (floating P&L included) may not "
        "fall below the day's start (day_start_from) less this fraction of daily_loss_of (FTMO: "
        "of the initial capital).",
    )
    daily_loss_of: DailyLossOf | None = Field(
        default=None,
        description="What max_daily_loss is a fraction of: initial (the initial capital, "
        "spec.capital.initial: FTMO, both presets; Funding Frontier) or day_start (the day's "
        "start itself: The5ers High Stakes, Funded7). Unset: the preset's.",
    )
    day_start_from: DayStartFrom | None = Field(
        default=None,
        description="The day's start, taken at the day boundary: balance (equity less the open "
        "positions' floating P&L and what they accrued unbooked, an MT5 swap; fills after the "
        "boundary left out, however late the first bar after it comes; so a loss carried over "
        "the boundary counts against the new day, and the worst case of every entry and open "
        "position must fit the next day's floor too, from the balance the stops may leave by "
        "then (a profit booked today raises it): FTMO, both presets; Funded7), equity "
        "(floating P&L included) or higher (the "
        "higher of the two: The5ers High Stakes, Funding Frontier). Unset: the preset's. "
        "Firms as their help pages state it: check your firm's current terms. Before these "
        "params the plugin measured equity with daily_loss_of day_start.",
    )
    max_total_loss: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Largest loss, a fraction of the initial capital: equity (floating P&L "
        "included) may not fall below the initial capital less it, or, with max_loss_trails, "
        "below the highest end-of-day balance (if above the initial capital) less it.",
    )
    max_loss_trails: bool | None = Field(
        default=None,
        description="The maximum loss trails the balance: from each midnight (the trading day's "
        "start) its floor is the highest balance at the end of any earlier trading day, or the "
        "initial capital if higher, less max_total_loss of the initial capital; it never "
        "falls, and floating P&L does not move it (FTMO 1-Step). false: fixed at the initial "
        "capital less max_total_loss (FTMO 2-Step). Unset: the preset's (ftmo-1step: true).",
    )
    profit_target: float | None = Field(
        default=None,
        ge=0,
        le=10,
        description="Gain over the initial capital that passes the challenge (0: none), on "
        "the balance of closed positions with none open (FTMO: all positions closed, a final "
        "balance of 110,000 on 100,000); floating profit does not count.",
    )
    min_trading_days: int | None = Field(
        default=None,
        ge=0,
        le=365,
        description="Trading days to pass: days (in timezone, from day_start_minute) on which a "
        "position was opened or added to; a trade held over several days counts only the day "
        "it was opened (FTMO).",
    )
    max_leverage: float | None = Field(
        default=None, gt=0, le=1000, description="Cap on gross exposure / equity."
    )
    timezone: str = Field(
        default="Europe/Prague",
        description="Timezone of the trading day (FTMO: midnight CE(S)T, Europe/Prague).",
    )
    day_start_minute: int = Field(
        default=0, ge=0, lt=1440, description="Minutes after local midnight a day starts."
    )
    require_stop: bool = Field(default=True, description="Veto entries that carry no stop-loss.")
    flatten_at: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Flatten everything when the day's (or the total) loss reaches this share "
        "of its limit: the day's entries stop (the total: a lock only a person resets).",
    )
    unprotected_move: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Adverse move (fraction of price) assumed for quantity no stop protects; "
        "it stands for that quantity's exit costs too (an entry still pays its own fill's).",
    )
    # What getting in and out costs, counted in the worst case. Left out, an entry whose stops
    # ended the day just above its floor was let through and the fees took the day past the
    # limit (0.14-0.3% on paper backtests): a challenge lost. The default fee covers the
    # regular-tier taker fee of every proven crypto venue but Kraken spot (Binance spot 0.10%,
    # USDⓈ-M 0.05%, Bybit linear 0.055%; Kraken spot 0.40%) and an MT5 prop account's FX
    # commission (a few dollars a lot: under 1 bp), the slippage a few ticks of a stop-market
    # fill. Over-counting costs only room; under-counting can lose the account.
    fee_bps: float = Field(
        default=10.0,
        ge=0,
        le=1000,
        description="Fee assumed per fill, in basis points of its notional. The worst case an "
        "entry must leave above the floor (and open positions are cut to) is every stop hit: "
        "each open position's, working entry's and the order's own loss to its stop, plus this "
        "fee on each stop's exit (at the stop price) and on each entry's own fill, plus "
        "slippage_bps; working market exits and a cut's own orders pay it at the mark. The "
        "default covers the usual taker fees (Binance, Bybit) and MT5 FX commissions; set your "
        "broker's taker fee when higher (Kraken spot: 40; paper: its fee_bps).",
    )
    slippage_bps: float = Field(
        default=5.0,
        ge=0,
        le=1000,
        description="Adverse slip assumed past the price of each stop's exit and of each "
        "market or stop entry (a limit entry fills at its price), in basis points of it, in the "
        "worst case. A market that gaps through stops can slip further than any allowance.",
    )
    stop_at_target: bool = Field(
        default=True, description="Take no new entries once the challenge is passed."
    )

    @model_validator(mode="after")
    def _known_zone(self) -> PropFirmParams:
        from tradefleet_plugins.risk.rules import zone

        try:
            zone(self.timezone)
        except Exception as error:
            raise ValueError(f"unknown timezone {self.timezone!r}") from error
        return self

    @model_validator(mode="after")
    def _daily_within_total(self) -> PropFirmParams:
        # A day's allowance larger than the whole account's makes the daily limit a dead
        # letter (and the flatten at its share of it never comes first): refused, naming the
        # limit the manifest set (the daily one when both are set), not the preset's.
        daily, total = self.value("max_daily_loss"), self.value("max_total_loss")
        if daily > total:
            named = "max_daily_loss" if self.max_daily_loss is not None else "max_total_loss"
            raise ValueError(
                f"{named}: the daily loss limit {daily:.10g} exceeds the total loss limit "
                f"{total:.10g} (max_daily_loss may be at most max_total_loss)"
            )
        return self

    def value(self, name: str) -> float:
        """A limit: the explicit param, else the preset's."""
        own = getattr(self, name)
        return float(own if own is not None else PRESETS[self.preset][name])

    def daily_loss_base(self) -> DailyLossOf:
        """What the daily limit is a fraction of: the explicit param, else the preset's."""
        return self.daily_loss_of or PRESET_BASES[self.preset][0]

    def day_start_basis(self) -> DayStartFrom:
        """What the day's start is taken from: the explicit param, else the preset's."""
        return self.day_start_from or PRESET_BASES[self.preset][1]

    def loss_trails(self) -> bool:
        """Whether the maximum loss trails the end-of-day balance: the explicit param, else the
        preset's."""
        if self.max_loss_trails is not None:
            return self.max_loss_trails
        return PRESET_TRAILS[self.preset]
