"""Params of the ``mt5`` data feed (kept apart so listing plugins imports nothing else)."""

from __future__ import annotations

from pydantic import Field

from tradefleet_plugins.brokers.mt5_params import Mt5BridgeParams
from tradefleet_plugins.feeds.csv_params import GapPolicy


class Mt5FeedParams(Mt5BridgeParams):
    """Bars from a MetaTrader 5 terminal: history for the warm-up, then each bar once closed."""

    terminal: str = Field(
        default="MetaTrader5",
        description="Where the terminal's functions come from (as the mt5 broker's param; "
        "the feed and the broker share the terminal).",
    )
    symbols: dict[str, str] = Field(
        default_factory=dict,
        description="The bot's symbol -> the broker's name for it (as the mt5 broker's).",
    )
    server_offset_s: int = Field(
        default=0,
        ge=-14 * 3600,
        le=14 * 3600,
        description="The trade server's clock minus UTC, in seconds: a fallback and a check. "
        "The feed measures the server's zone from its ticks (re-measured as it runs, so a DST "
        "switch is followed); this value is used only while no tick has shown it (a closed "
        "market at start), and a measurement that disagrees with it is noted.",
    )
    gap_policy: GapPolicy = Field(
        default=GapPolicy.TRADE,
        description="Missing bars (weekends, holidays, a quiet market): trade, fail or fill.",
    )
    poll_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the terminal is asked for a newly closed bar.",
    )
    settle_s: float = Field(
        default=2.0,
        ge=0,
        le=120,
        description="How long after a bar's close the feed waits for its last ticks before "
        "handing it over.",
    )
    max_outage_s: float = Field(
        default=300.0,
        ge=1,
        le=86_400,
        description="How long the terminal may keep failing (IPC timeouts, a restart) before "
        "the feed gives up; meanwhile it retries with backoff.",
    )
