"""Params of the ``ccxt`` data feed.

This module must not import ccxt: ``tradefleet plugins list`` imports every params model, and
loading ccxt costs a second and a hundred megabytes a bot that never uses it should not pay.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from tradefleet_plugins.feeds.csv_params import GapPolicy
from tradefleet_runtime.sdk import PluginParams

__all__ = ["CcxtFeedParams", "GapPolicy", "MarketType"]

_EXCHANGE_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class MarketType(StrEnum):
    SPOT = "spot"
    LINEAR = "linear"  # USDT/USDC-margined perpetuals and futures
    INVERSE = "inverse"  # coin-margined


class CcxtFeedParams(PluginParams):
    exchange: str = Field(
        description="ccxt exchange id: binance, binanceusdm, bybit, kraken, okx, ...",
    )
    market_type: MarketType = Field(
        default=MarketType.SPOT,
        description="Which markets the bot's symbols are: spot, linear or inverse (only those "
        "markets are loaded).",
    )
    sandbox: bool = Field(
        default=False, description="Use the venue's testnet/sandbox (ccxt set_sandbox_mode)."
    )
    api_url: str | None = Field(
        default=None,
        description="Send every request to this http(s) origin instead of the venue's hosts "
        "(tests against a local counterpart, or a proxy). The venue's paths are kept.",
    )
    symbols: dict[str, str] = Field(
        default_factory=dict,
        description="The venue's symbol for a bot symbol when they differ, e.g. "
        "{BTCUSDT: BTC/USDT:USDT}. Without it a bot symbol is taken as ccxt's unified symbol, "
        "else as the venue's market id.",
    )
    gap_policy: GapPolicy = Field(
        default=GapPolicy.TRADE,
        description="What to do with candles the venue does not have: trade, fail or fill.",
    )
    settle_s: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="Seconds after a candle's close (on the venue's clock) before asking for "
        "it, so the venue has finished writing it.",
    )
    poll_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Seconds between asks while a closed candle has not appeared yet.",
    )
    late_s: float = Field(
        default=60.0,
        ge=0,
        description="A symbol whose candle is still missing this long after its close is "
        "passed over for that timestamp (counted as a gap if it never comes).",
    )
    page_limit: int = Field(
        default=1000,
        ge=1,
        le=5000,
        description="Candles asked for per request while paging through history.",
    )
    max_retries: int | None = Field(
        default=None,
        ge=0,
        description="Retries of one request after network errors, rate limits and venue "
        "outages before the feed fails; none: retry without end (a live feed rides out "
        "an outage).",
    )
    backoff_s: float = Field(
        default=1.0, gt=0, le=60, description="First retry delay; doubled per retry, jittered."
    )
    backoff_max_s: float = Field(default=60.0, gt=0, le=3600, description="Longest retry delay.")
    rate_limit_ms: int | None = Field(
        default=None,
        ge=1,
        le=60_000,
        description="Milliseconds ccxt's rate limiter keeps between requests; default: the "
        "venue's own figure (the limiter is always on).",
    )
    timeout_ms: int = Field(
        default=10_000, ge=100, le=120_000, description="ccxt's request timeout."
    )
    end: str | None = Field(
        default=None,
        description="Stop before the first candle opening at or after this ISO time (UTC "
        "when no zone is given); default: run until stopped.",
    )
    ccxt_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra ccxt options, merged over the feed's own (advanced).",
    )

    @field_validator("exchange")
    @classmethod
    def _exchange_id(cls, value: str) -> str:
        # Checked against ccxt's list when the feed is built (ccxt is not imported here).
        if not _EXCHANGE_ID.match(value):
            raise ValueError(f"{value!r} is not a ccxt exchange id (lowercase, e.g. binance)")
        return value

    @field_validator("api_url")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("the URL must not carry credentials")
        return value.rstrip("/")

    @field_validator("end")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        if value is not None:
            end_epoch(value)
        return value

    @field_validator("backoff_max_s")
    @classmethod
    def _max_not_below_first(cls, value: float, info: Any) -> float:
        first = info.data.get("backoff_s")
        if first is not None and value < first:
            raise ValueError(f"must be at least backoff_s ({first})")
        return value


def end_epoch(text: str) -> int:
    """Epoch seconds of an ISO time (UTC when it names no zone)."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO time (e.g. 2026-01-31T12:00)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())
