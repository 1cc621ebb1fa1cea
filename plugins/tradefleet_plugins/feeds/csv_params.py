"""Params of the ``csv`` data feed."""

from __future__ import annotations

import os
import stat
from enum import StrEnum

from pydantic import Field, ValidationInfo, field_validator, model_validator

from tradefleet_plugins.feeds.csv_time import bound_time, format_time
from tradefleet_plugins.params_rules import bot_symbol_keys
from tradefleet_runtime.sdk import PluginParams

# The fields ``columns`` may name a header for (the time column is ``timestamp_column``).
COLUMN_FIELDS = ("open", "high", "low", "close", "volume")


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
    start: str | None = Field(
        default=None,
        description="Only bars at or after this time: ISO 8601 (UTC unless it names a zone) "
        "or epoch seconds. A window without bars in the data is refused.",
    )
    end: str | None = Field(
        default=None, description="Only bars before this time (after start; written as start)."
    )
    live_rehearsal: bool = Field(
        default=False,
        description="Let a live bot run on this feed: for rehearsals against a test venue (a "
        "testnet, a fake exchange) only, since its orders go out at the file's prices, not the "
        "market's. Without it a live bot on the csv feed is refused.",
    )

    @field_validator("path")
    @classmethod
    def _path_is_a_file(cls, value: str | None) -> str | None:
        return None if value is None else _regular_file(value)

    @field_validator("files")
    @classmethod
    def _files_are_files(cls, value: dict[str, str]) -> dict[str, str]:
        for symbol, path in value.items():
            try:
                _regular_file(path)
            except ValueError as error:
                raise ValueError(f"{symbol}: {error}") from None
        return value

    # A file for a symbol the bot does not trade (a typo) is never read, silently.
    @field_validator("files")
    @classmethod
    def _bot_symbols(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        return bot_symbol_keys(value, info)

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, str]) -> dict[str, str]:
        # A misspelt key ("clsoe") would be ignored: the feed would read its default header
        # for that field, or refuse the file for a column the user did name.
        unknown = sorted(set(value) - set(COLUMN_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(map(repr, unknown))} (known: "
                f"{', '.join(COLUMN_FIELDS)}; the time column is timestamp_column)"
            )
        return value

    # Read here, so that a bound the feed cannot read is refused by its field before the bot
    # runs (the feed reads it again with the same parser, csv_time.bound_time).
    @field_validator("start")
    @classmethod
    def _a_time(cls, value: str | None) -> str | None:
        if value is not None:
            bound_time(value)
        return value

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        end = bound_time(value)
        start = info.data.get("start")  # absent when start itself was refused
        if start is not None and end <= bound_time(start):
            raise ValueError(
                f"{format_time(end)} must be after start ({format_time(bound_time(start))}): "
                "the window would hold no bar"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> CsvFeedParams:
        if (self.path is None) == (not self.files):
            raise ValueError("give either path (one symbol) or files (one per symbol)")
        return self

    @model_validator(mode="after")
    def _a_live_bot_needs_a_live_feed(self, info: ValidationInfo) -> CsvFeedParams:
        # A paper manifest switched to live keeps its csv feed: real orders sized and priced
        # on a file's old prices. Refused unless the user says it is a rehearsal.
        context = info.context if isinstance(info.context, dict) else {}
        if context.get("mode") == "live" and not self.live_rehearsal:
            raise ValueError(
                "live_rehearsal: a live bot on the csv feed would send real orders at the "
                "file's prices, not the market's: give it a live feed (ccxt, mt5), or set "
                "live_rehearsal: true to rehearse against a test venue"
            )
        return self


def _regular_file(path: str) -> str:
    """Refuse a path that can never be a CSV file: a device, FIFO or directory.

    Reading ``/dev/zero`` never ends and a FIFO blocks, so they are refused before the feed
    opens them. Relative paths are resolved against the manifest's folder only when the feed
    runs (it checks them again there); here an absolute one that exists is checked already.
    """
    if "\0" in path:
        raise ValueError("a path cannot contain a NUL character")
    if not os.path.isabs(path):
        return path
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return path  # missing here (e.g. in the operator's pod): the feed reports it
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is not a regular file (a device, FIFO or directory)")
    return path
