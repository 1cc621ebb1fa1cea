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


# The venues the broker is proven against: the real ccxt driving local counterparts that speak
# their REST shapes (tests/venues), with the shared contract suite and a test per venue fault.
# A venue trades real money only once it is there: what keeps a known client order id from
# filling twice (the id's allowed form, how an order is found by it, which orders the venue
# checks it against) differs per venue, and ccxt does not unify it.
VERIFIED_VENUES: frozenset[tuple[str, MarketType]] = frozenset(
    {
        ("binance", MarketType.SPOT),
        ("binanceusdm", MarketType.LINEAR),
        ("bybit", MarketType.LINEAR),
        ("kraken", MarketType.SPOT),
    }
)

# What is known of a venue this broker does not trade (shown with the refusal).
_NOT_VERIFIED_WHY: dict[tuple[str, MarketType], str] = {
    ("binance", MarketType.LINEAR): "Binance USDⓈ-M perpetuals are exchange 'binanceusdm'",
    ("binanceusdm", MarketType.SPOT): "binanceusdm is Binance's futures venue; its spot "
    "venue is exchange 'binance'",
    ("bybit", MarketType.SPOT): "the broker is proven on Bybit's linear perpetuals only",
    ("kraken", MarketType.LINEAR): "the broker is proven on Kraken's spot markets only",
}


# The ccxt ``defaultType`` each market type means (the broker sets the first; ccxt's Binance
# USDⓈ-M client also calls its linear contracts "future").
_DEFAULT_TYPES: dict[MarketType, tuple[str, ...]] = {
    MarketType.SPOT: ("spot",),
    MarketType.LINEAR: ("swap", "future"),
}


def venue_refusal(exchange: str, market_type: MarketType) -> str | None:
    """Why the broker refuses to trade ``exchange``'s ``market_type`` markets, or None (pure)."""
    if (exchange, market_type) in VERIFIED_VENUES:
        return None
    verified = ", ".join(f"{name} ({kind})" for name, kind in sorted(VERIFIED_VENUES))
    why = _NOT_VERIFIED_WHY.get((exchange, market_type))
    return (
        f"exchange: {exchange!r} with market_type {market_type.value!r} is not a venue the "
        f"ccxt broker is proven against; it trades {verified}"
        + (f" ({why})" if why else "")
        + ". A venue trades real money once its client order ids are proven never to fill "
        "twice there: see docs/live-crypto.md, 'Venues'"
    )


class CcxtBrokerParams(PluginParams):
    """An account at any venue ccxt speaks: spot or linear futures, async, retried safely."""

    exchange: str = Field(
        description="ccxt exchange id: binance or kraken (market_type spot), binanceusdm or "
        "bybit (market_type linear), the venues the broker is proven against.",
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
    funding_poll_s: float = Field(
        default=300.0,
        gt=0.0,
        le=3600.0,
        description="Linear only: how often the funding payments of the bot's symbols are read "
        "(one request a symbol, and one for the venue's time). Venues pay at most hourly "
        "(usually every 8 hours), so a payment reaches the bot's cash within this long of "
        "the venue booking it; a read that fails is tried again within 30 s.",
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
    rate_limit_ms: int | None = Field(
        default=None,
        ge=10,
        le=60_000,
        description="ccxt's spacing of requests, in ms per unit of an endpoint's cost (null: "
        "ccxt's own for the venue; Kraken's is 1000, so one poll of orders and trades there "
        "takes several seconds). Lower it only as far as the account's rate tier allows.",
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
        default_factory=dict,
        description="Extra ccxt options (exchange.options) to set; a `defaultType` must agree "
        "with market_type (spot: spot; linear: swap or future).",
    )

    @model_validator(mode="after")
    def _checked(self) -> CcxtBrokerParams:
        refusal = venue_refusal(self.exchange, self.market_type)
        if refusal is not None:
            raise ValueError(refusal)
        if self.market_type is MarketType.SPOT:
            for name in ("leverage", "margin_mode"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: only for market_type 'linear'")
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_max_s: must be at least backoff_base_s")
        default_type = self.options.get("defaultType")
        allowed = _DEFAULT_TYPES[self.market_type]
        if default_type is not None and default_type not in allowed:
            # The broker sets it from market_type; another value (a spot bot's "swap") makes
            # ccxt read the bot's symbols as other markets, and every order fails.
            raise ValueError(
                f"options.defaultType: {default_type!r} contradicts market_type "
                f"{self.market_type.value!r} (which sets it to {allowed[0]!r}): remove it"
            )
        return self
