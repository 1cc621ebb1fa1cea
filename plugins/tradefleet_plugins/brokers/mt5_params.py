"""Params of the MetaTrader 5 broker, and the decisions made from them alone (symbol names at the
broker, the bot's magic number). Kept apart so that listing plugins imports nothing else.

Pure: no terminal, no I/O.
"""

from __future__ import annotations

import hashlib

from pydantic import Field, field_validator, model_validator

from tradefleet_runtime.sdk import PluginParams

# MT5's magic number is a 64-bit field, but MQL5 experts and most tools read it as a signed
# 32-bit int; staying below 2**31 keeps the bot's orders readable everywhere.
_MAGIC_SPACE = 2**31 - 1


def _file_name(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if not value or "/" in value or "\\" in value or value in (".", ".."):
        raise ValueError(f"{field}: a file name in the credentials folder, not a path")
    return value


class Mt5BridgeParams(PluginParams):
    """Where the terminal is when it runs elsewhere: a ``tradefleet mt5-bridge`` beside it
    (a Windows host, or a Wine sidecar). The plugins load the bridge client for it; the token
    is a file of the bot's credentials folder (``spec.broker.credentialsSecret``)."""

    bridge_address: str | None = Field(
        default=None,
        description="host:port of the tradefleet mt5-bridge serving the terminal (None: the "
        "terminal is reached through `terminal`, in this process).",
    )
    bridge_token_file: str = Field(
        default="mt5-bridge.token",
        description="File in the credentials folder holding the bridge's bearer token "
        "(re-read when it changes).",
    )
    bridge_tls: bool = Field(
        default=False,
        description="Talk TLS to the bridge (implied by bridge_ca_file). Off only for a "
        "bridge on loopback or inside the pod.",
    )
    bridge_ca_file: str | None = Field(
        default=None,
        description="File in the credentials folder with the CA that signed the bridge's "
        "certificate (None with bridge_tls: the system's roots).",
    )
    bridge_server_name: str | None = Field(
        default=None,
        description="Name to check in the bridge's certificate when it differs from the "
        "address's host.",
    )
    bridge_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Longest wait for one answer of the bridge; longer is a lost terminal "
        "(an order in flight is then reconciled).",
    )

    @field_validator("bridge_token_file")
    @classmethod
    def _token_file_name(cls, value: str) -> str:
        checked = _file_name(value, "bridge_token_file")
        assert checked is not None
        return checked

    @field_validator("bridge_ca_file")
    @classmethod
    def _ca_file_name(cls, value: str | None) -> str | None:
        return _file_name(value, "bridge_ca_file")

    @field_validator("bridge_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("bridge_address: host:port, e.g. mt5-bridge:50061")
        return value

    @model_validator(mode="after")
    def _one_terminal(self) -> Mt5BridgeParams:
        terminal = getattr(self, "terminal", "MetaTrader5")
        if self.bridge_address is not None and terminal != "MetaTrader5":
            raise ValueError(
                "bridge_address: the terminal is reached through the bridge; leave `terminal` "
                f"unset (it names {terminal!r})"
            )
        return self


class Mt5BrokerParams(Mt5BridgeParams):
    """An account at a MetaTrader 5 broker, reached through a terminal (the `MetaTrader5`
    package on Windows, the tradefleet bridge client, or the test emulator)."""

    terminal: str = Field(
        default="MetaTrader5",
        description="Where the terminal's functions come from: a module name (the real "
        "`MetaTrader5` package) or a `module:attr` factory returning an object with the same "
        "functions and constants (the bridge client).",
    )
    path: str | None = Field(
        default=None,
        description="terminal64.exe to start or attach to (None: the terminal already running).",
    )
    symbols: dict[str, str] = Field(
        default_factory=dict,
        description="The bot's symbol -> the broker's name for it (XAUUSD -> GOLD.pro); "
        "symbols not listed keep their name.",
    )
    magic: int | None = Field(
        default=None,
        ge=1,
        le=_MAGIC_SPACE,
        description="Magic number stamped on every order (None: derived from the bot's name, "
        "so the same bot always finds its own orders after a restart).",
    )
    deviation_points: int = Field(
        default=10,
        ge=0,
        le=10_000,
        description="Slippage the terminal may accept on a market order (instant/request "
        "execution), in points.",
    )
    max_requote_points: int = Field(
        default=50,
        ge=0,
        le=100_000,
        description="After a requote, the order is sent again at the fresh price only while "
        "that price is within this many points of the first quote.",
    )
    requote_retries: int = Field(
        default=3, ge=0, le=20, description="Requotes (10004/10020/10021) retried per order."
    )
    busy_retries: int = Field(
        default=5, ge=0, le=50, description="'Too many requests' (10024) answers retried."
    )
    unknown_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Times an order whose outcome was unknown (10012/10031, a lost link) and "
        "that history shows was not executed is sent again.",
    )
    backoff_s: float = Field(
        default=0.5, gt=0, le=60, description="First wait after 10024 or a lost terminal."
    )
    max_backoff_s: float = Field(
        default=30.0, gt=0, le=600, description="Longest wait between reconnects/retries."
    )
    connect_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description="initialize attempts at start before the terminal counts as unreachable"
        " (serve then waits and tries again; a refused login fails at once).",
    )
    timeout_ms: int = Field(
        default=60_000, ge=1_000, le=600_000, description="initialize/login timeout."
    )
    poll_interval_s: float = Field(
        default=0.25,
        gt=0,
        le=60,
        description="How often the broker's thread looks for fills of resting orders and "
        "SL/TP closes.",
    )
    history_days: int = Field(
        default=7,
        ge=1,
        le=366,
        description="How far back history is searched when reconciling.",
    )
    server_offset_s: int = Field(
        default=0,
        ge=-14 * 3600,
        le=14 * 3600,
        description="The trade server's clock minus UTC, in seconds (many brokers run on "
        "UTC+2 in winter, UTC+3 in summer): a fallback and a check. The broker measures the "
        "server's zone from its ticks, as the mt5 feed does (a DST switch is followed); this "
        "value converts times from the terminal to UTC only while no tick has shown the zone (a "
        "closed market at start), and a measurement that disagrees with it is logged.",
    )
    login_file: str = Field(
        default="login", description="File in the credentials folder holding the login."
    )
    password_file: str = Field(
        default="password", description="File in the credentials folder holding the password."
    )
    server_file: str = Field(
        default="server", description="File in the credentials folder holding the server."
    )

    @field_validator("symbols")
    @classmethod
    def _one_to_one(cls, value: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for ours, theirs in value.items():
            if not ours or not theirs:
                raise ValueError("symbols: names must not be empty")
            if theirs in seen:
                raise ValueError(
                    f"symbols: {ours!r} and {seen[theirs]!r} both map to {theirs!r}; "
                    "the broker's names must be distinct"
                )
            seen[theirs] = ours
        return value


class SymbolMap:
    """The bot's names <-> the broker's names, both ways (one-to-one, checked in the params)."""

    __slots__ = ("_ours", "_theirs")

    def __init__(self, mapping: dict[str, str]) -> None:
        self._theirs = dict(mapping)
        self._ours = {venue: ours for ours, venue in mapping.items()}

    def venue(self, symbol: str) -> str:
        return self._theirs.get(symbol, symbol)

    def ours(self, venue_symbol: str) -> str:
        return self._ours.get(venue_symbol, venue_symbol)


def magic_number(identity: str) -> int:
    """A magic number from the bot's identity (``BrokerContext.identity_seed``: kept in its
    journal, ``namespace/name#random`` for a live bot's new journal): the same bot always gets
    the same one, different bots almost surely different ones (1 .. 2**31 - 1)."""
    digest = hashlib.blake2b(identity.encode(), digest_size=8, person=b"tf-mt5-magic").digest()
    return int.from_bytes(digest, "big") % _MAGIC_SPACE + 1


__all__ = ["Mt5BridgeParams", "Mt5BrokerParams", "SymbolMap", "magic_number"]
