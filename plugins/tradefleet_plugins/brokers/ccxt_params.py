"""Params of the ccxt broker (kept apart so listing plugins imports neither ccxt nor the broker)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from tradefleet_runtime.sdk import PluginParams


class MarketType(StrEnum):
    SPOT = "spot"
    LINEAR = "linear"  # USDT-margined perpetual swaps (Binance USDⓈ-M, Bybit linear)


class MarginMode(StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


class CcxtBrokerParams(PluginParams):
    """An account at any venue ccxt speaks: spot or linear futures, async, retried safely."""

    exchange: str = Field(
        description="ccxt exchange id: binance, binanceusdm, bybit, kraken, …",
        min_length=2,
        max_length=40,
        pattern=r"^[a-z0-9_]+$",
    )
    market_type: MarketType = Field(
        default=MarketType.SPOT, description="spot, or linear (USDT-margined perpetuals)."
    )
    sandbox: bool = Field(
        default=False, description="Use the venue's testnet/sandbox (ccxt set_sandbox_mode)."
    )
    leverage: int | None = Field(
        default=None,
        ge=1,
        le=125,
        description="Linear only: leverage set on every bot symbol before the first order.",
    )
    margin_mode: MarginMode | None = Field(
        default=None,
        description="Linear only: cross or isolated, set before the first order.",
    )
    poll_interval_s: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        description="How often working orders and own trades are polled for changes.",
    )
    timeout_ms: int = Field(
        default=10_000, ge=100, le=120_000, description="ccxt's per-request timeout."
    )
    max_retries: int = Field(
        default=5,
        ge=0,
        le=20,
        description="Retries of a request after network errors, 5xx and rate limits.",
    )
    backoff_base_s: float = Field(
        default=0.5, gt=0.0, le=30.0, description="First retry delay (doubles each time)."
    )
    backoff_max_s: float = Field(
        default=30.0, gt=0.0, le=600.0, description="Longest delay between two retries."
    )
    max_ban_wait_s: float = Field(
        default=600.0,
        ge=0.0,
        le=86_400.0,
        description="Longest Retry-After (429/418 ban) honoured before a request gives up; "
        "no request is sent while a ban lasts either way.",
    )
    known_ids_lookback_h: float = Field(
        default=24.0,
        ge=0.0,
        le=24.0 * 30,
        description="At connect, client order ids of the bot's orders this far back are "
        "loaded from the venue, so a restarted bot never sends one of them again.",
    )
    api_url: str | None = Field(
        default=None,
        description="Send every request to this base URL instead of the venue's (a local "
        "counterpart or proxy); error codes are still read as the real venue's.",
        pattern=r"^https?://[^\s]+$",
    )
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Extra ccxt options (exchange.options) to set."
    )

    @model_validator(mode="after")
    def _futures_only(self) -> CcxtBrokerParams:
        if self.market_type is MarketType.SPOT:
            for name in ("leverage", "margin_mode"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: only for market_type 'linear'")
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_max_s: must be at least backoff_base_s")
        return self
