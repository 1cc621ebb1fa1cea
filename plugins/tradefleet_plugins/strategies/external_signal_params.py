"""Params of ``external-signal``."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from tradefleet_runtime.sdk import PluginParams


class EntryOrder(StrEnum):
    MARKET = "market"  # enter at the next price, bracketed by the signal's stop and target
    LIMIT = "limit"  # rest at the signal's entry price


class VolumeUnit(StrEnum):
    UNITS = "units"  # the signal's volume is the order's quantity (units of the base asset)
    LOTS = "lots"  # venue lots (MT5 senders): × the instrument's contract size


class ExternalSignalParams(PluginParams):
    max_signal_age_s: float = Field(
        default=60,
        gt=0,
        description="Refuse signals older than this, in seconds: a webhook alert's age counts "
        "from its signed timestamp, a signal sent over gRPC from its arrival.",
    )
    max_entry_deviation_pct: float = Field(
        default=1.0,
        gt=0,
        le=50,
        description="Refuse when the signal's entry (or current price) is this far from the "
        "bot's last price, in percent.",
    )
    min_confidence: float = Field(
        default=0.0, ge=0, le=1, description="Refuse signals below this confidence."
    )
    entry_order: EntryOrder = Field(default=EntryOrder.MARKET, description="market or limit.")
    allow_pyramiding: bool = Field(
        default=False,
        description="Accept a signal in the direction of an open position or of an entry order "
        "still working; off, one entry per symbol and direction at a time.",
    )
    reverse_on_opposite: bool = Field(
        default=False,
        description="A signal against an open position, or against an entry the other way "
        "still working, closes the position (cancels the entry) and enters; else it is refused.",
    )
    volume_unit: VolumeUnit = Field(
        default=VolumeUnit.UNITS,
        description="What a signal's volume counts: units of the base asset (the bot's "
        "quantities), or lots, as MT5 senders write it (0.01), multiplied by the instrument's "
        "contract size (100,000 for EURUSD on MT5; the paper broker's is its instruments' "
        "contract_size param, 1 unless set). A signal's volume is not sized: the sizer only "
        "cuts it to its max_leverage, and pre-trade's max_risk_per_trade caps what it loses at "
        "its stop.",
    )
