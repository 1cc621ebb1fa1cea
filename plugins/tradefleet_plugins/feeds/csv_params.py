"""Params of the ``csv`` data feed."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from tradefleet_runtime.sdk import PluginParams


class GapPolicy(StrEnum):
    TRADE = "trade"  # keep going across missing bars (markets close; feeds hiccup)
    FAIL = "fail"  # refuse the data at the first gap
    FILL = "fill"  # insert flat bars (OHLC = previous close, volume 0)


class RowOrder(StrEnum):
    ASCENDING = "ascending"
    DESCENDING = "descending"
    ANY = "any"  # sort by time; the rows out of order are counted and reported


class CsvFeedParams(PluginParams):
    path: str | None = Field(
        default=None,
        description="CSV file for the bot's single symbol; relative to the manifest's folder.",
    )
    files: dict[str, str] = Field(
        default_factory=dict, description="One CSV file per symbol (for multi-symbol bots)."
    )
    order: RowOrder = Field(
        default=RowOrder.ASCENDING,
        description="Row order in the file: ascending, descending, or any (sorted here; "
        "how many rows were out of order is reported). Duplicates are refused either way.",
    )
    timestamp_column: str | None = Field(
        default=None, description="Header of the time column; default: time/date/timestamp."
    )
    timestamp_format: str | None = Field(
        default=None,
        description="strptime format of the time column (UTC); default: ISO, epoch seconds or "
        "milliseconds, or DD.MM.YYYY HH:MM:SS.fff.",
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Header of each field (open, high, low, close, volume) when not named so.",
    )
    gap_policy: GapPolicy = Field(
        default=GapPolicy.TRADE, description="What to do with missing bars: trade, fail or fill."
    )
    start: str | None = Field(default=None, description="Only bars at or after this ISO time.")
    end: str | None = Field(default=None, description="Only bars before this ISO time.")

    @model_validator(mode="after")
    def _one_source(self) -> CsvFeedParams:
        if (self.path is None) == (not self.files):
            raise ValueError("give either path (one symbol) or files (one per symbol)")
        return self
