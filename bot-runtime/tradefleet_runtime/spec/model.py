"""Pydantic models of the ``TradingBot`` custom resource (``tradefleet.io/v1alpha1``).

Field names are camelCase on the wire (the Kubernetes convention) and snake_case in Python.
Every field carries a description: the CRD's OpenAPI schema is generated from this module, so
what ``kubectl explain tb.spec`` prints is written here.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from tradefleet_runtime.spec.values import no_bools_as_numbers
from tradefleet_runtime.timeframes import parse_timeframe

API_VERSION = "tradefleet.io/v1alpha1"
KIND = "TradingBot"

# A bot's name names its Service too, so it must be a DNS-1035 label (starts with a letter).
BOT_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Secret names are DNS-1123 subdomains.
SECRET_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")


class _Model(BaseModel):
    # Every number of the spec is finite (JSON and Kubernetes have no inf/nan, and an infinite
    # capital or limit breaks every figure computed from it), and `true` is not read as 1.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
    )

    _numbers = no_bools_as_numbers


class Mode(StrEnum):
    """How a bot trades. ``live`` is never a default and needs an explicit confirmation."""

    BACKTEST = "backtest"
    PAPER = "paper"
    LIVE = "live"


class PluginRef(_Model):
    """A plugin chosen by name, with its params (validated against the plugin's schema)."""

    name: str = Field(
        min_length=1,
        max_length=63,
        description="Registered plugin name, as `tradefleet plugins list` shows it.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Plugin parameters; each plugin documents and validates its own.",
    )


class SecretRef(_Model):
    """A Kubernetes Secret holding broker credentials, mounted into the bot's pod as files."""

    name: str = Field(description="Name of the Secret in the bot's namespace.")

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not SECRET_NAME_RE.match(value) or len(value) > 253:
            raise ValueError(f"{value!r} is not a valid Secret name (a DNS-1123 subdomain)")
        return value


class BrokerRef(PluginRef):
    """The broker plugin and, for real accounts, the Secret with its credentials."""

    credentials_secret: SecretRef | None = Field(
        default=None,
        description="Secret with the account's API keys; required in live mode. "
        "Its values are read from mounted files and never logged or reported.",
    )
    adopt_venue_positions: bool = Field(
        default=False,
        description="On start-up reconciliation, when the venue's position in a symbol differs "
        "from the journal's beyond the lot step: take the venue's (journaled as a "
        "reconciliation fill) instead of stopping the bot as Degraded until a person resumes it. "
        "Only for a bot that has its symbols to itself on the account: another bot's position "
        "there would be taken over.",
    )


class MarketSpec(_Model):
    """What the bot trades and on which bar size."""

    symbols: list[str] = Field(
        min_length=1,
        max_length=200,
        description="Symbols in the broker's standard naming (e.g. EURUSD, BTC/USDT).",
    )
    timeframe: str = Field(
        default="1h",
        description="Base bar size the feed delivers: 1m, 5m, 15m, 1h, 4h, 1d (or M5, H1, D1).",
    )

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for symbol in value:
            if not SYMBOL_RE.match(symbol):
                raise ValueError(f"{symbol!r} is not a valid symbol")
            if symbol in seen:
                raise ValueError(f"symbol {symbol!r} is listed twice")
            seen.add(symbol)
        return value

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str) -> str:
        parse_timeframe(value)
        return value

    @property
    def timeframe_s(self) -> int:
        return parse_timeframe(self.timeframe)


# A currency or coin code (USD, EUR, USDT, BTC): what money is booked, compared and labelled in.
CURRENCY_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,11}$")


class CapitalSpec(_Model):
    """The account the bot starts with (backtest and paper) or reports in (live)."""

    currency: str = Field(
        default="USD",
        min_length=1,
        max_length=24,
        description="Account currency: a code of 2-12 letters or digits starting with a letter "
        "(USD, EUR, USDT, BTC), upper-cased.",
    )
    initial: float = Field(
        default=100_000.0, gt=0, description="Starting balance in the account currency."
    )

    @field_validator("currency")
    @classmethod
    def _a_code(cls, value: str) -> str:
        # Free text ("dollars!!", "US Dollar") would be booked, compared with a venue's
        # currency and labelled on every money metric as written.
        code = value.strip().upper()
        if not CURRENCY_CODE.match(code):
            raise ValueError(
                f"{value[:24]!r} is not a currency code (2-12 letters or digits, starting with "
                "a letter, such as USD, EUR, USDT or BTC)"
            )
        return code


class StopPolicy(_Model):
    """What the bot does with its orders and positions when it is stopped."""

    cancel_open_orders: bool = Field(
        default=True,
        description=(
            "Cancel resting orders on stop; orders that only reduce a position (its stop-loss,"
            " take-profit, an exit on its way) stay."
        ),
    )
    flatten_positions: bool = Field(
        default=False,
        description="Close every open position at market on stop (at a venue, the stop waits "
        "for the fills and the SL/TP cancels, up to 60% of serve's grace period, and journals "
        "any not confirmed).",
    )


class QualityLimit(_Model):
    """Limits of one execution-quality measure; either side may be left open."""

    min: float | None = Field(default=None, description="Lower specification limit.")
    max: float | None = Field(default=None, description="Upper specification limit.")


class QualitySpec(_Model):
    """Execution quality tracked over a rolling window, with Cp/Cpk against these limits."""

    window: int = Field(default=50, ge=5, le=10_000, description="Samples kept per measure.")
    min_samples: int = Field(
        default=10, ge=2, description="Cp/Cpk are reported once a measure has this many samples."
    )
    win_rate: QualityLimit | None = Field(
        default=None, description="Limits of the share of winning trades (0..1)."
    )
    slippage_bps: QualityLimit | None = Field(
        default=None, description="Limits of fill slippage against the decision price, in bp."
    )
    bar_to_order_ms: QualityLimit | None = Field(
        default=None, description="Limits of the time from a bar's arrival to its order, in ms."
    )
    reward_risk: QualityLimit | None = Field(
        default=None, description="Limits of take-profit distance over stop-loss distance."
    )


class EmergencyStopSpec(_Model):
    """Set to halt the bot: it sends nothing new until this is removed (then it resumes)."""

    reason: str = Field(min_length=1, max_length=500, description="Why; journaled and shown.")
    flatten: bool = Field(default=False, description="Also close every open position at market.")


class JournalStorage(_Model):
    """Where the runtime keeps its journal (SQLite)."""

    size: str = Field(default="1Gi", description="Size of the journal's PersistentVolumeClaim.")
    storage_class_name: str | None = Field(
        default=None, description="StorageClass of the claim; the cluster default when unset."
    )
    ephemeral: bool = Field(
        default=False,
        description="Use an emptyDir instead of a claim (the journal is lost with the pod: "
        "for backtests and demos only).",
    )


def _default_resources() -> dict[str, dict[str, str | int]]:
    # About what a paper bot uses (see bench/results/api.json: serve_rss_mb).
    return {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}


class LocalObjectReference(_Model):
    """A Secret in the bot's namespace, by name."""

    name: str = Field(min_length=1, max_length=253, description="The Secret's name.")


def cidr(value: str) -> str:
    """``value`` if it is a network (``203.0.113.0/24``, a bare address too); else ValueError."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a CIDR (like 203.0.113.0/24 or 2001:db8::/32)"
        ) from None
    return value


class RuntimeSpec(_Model):
    """How the bot's runtime pod is run."""

    image: str | None = Field(
        default=None, description="Runtime image; the operator's default when unset."
    )
    resources: dict[str, dict[str, str | int]] = Field(
        default_factory=_default_resources,
        description="Container resources (requests/limits), as in a Pod spec.",
    )
    journal: JournalStorage = Field(default_factory=JournalStorage, description="Journal storage.")
    replay_speed: float = Field(
        default=1.0,
        ge=0,
        description="For a csv feed in paper mode: replay speed (1 = real time).",
    )
    webhook: bool = Field(
        default=False,
        description="Serve the signed signal webhook (keys from the Secret <name>-webhook-keys).",
    )
    webhook_allow: list[Annotated[str, AfterValidator(cidr)]] = Field(
        default_factory=list,
        max_length=64,
        description="Source CIDRs the webhook takes signals from (e.g. 203.0.113.0/24); "
        "empty: any source. Other sources get 403.",
    )
    webhook_trust_forwarded_for: bool = Field(
        default=False,
        description="Judge webhookAllow by the first X-Forwarded-For hop, not the TCP peer: "
        "only behind an ingress or proxy that overwrites that header (anyone can send it).",
    )
    # Pod placement and pulling, passed to the bot's pod as Kubernetes spells them.
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list, description="Secrets to pull a private runtime image with."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the bot's pod must run on."
    )
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Tolerations of the bot's pod, as in a Pod spec."
    )
    affinity: dict[str, Any] | None = Field(
        default=None, description="Affinity of the bot's pod, as in a Pod spec."
    )
    priority_class_name: str | None = Field(
        default=None, description="PriorityClass of the bot's pod."
    )
    service_account_name: str | None = Field(
        default=None,
        description="ServiceAccount of the bot's pod (its token is not mounted); the operator's "
        "default when unset.",
    )
    pod_labels: dict[str, str] = Field(
        default_factory=dict,
        description="Extra labels of the bot's pod (the operator's own labels win).",
    )
    pod_annotations: dict[str, str] = Field(
        default_factory=dict, description="Extra annotations of the bot's pod."
    )

    @model_validator(mode="after")
    def _webhook_options_need_the_webhook(self) -> RuntimeSpec:
        # Set without the webhook they would guard nothing: the user meant to turn it on.
        if not self.webhook and (self.webhook_allow or self.webhook_trust_forwarded_for):
            raise ValueError(
                "webhookAllow and webhookTrustForwardedFor need spec.runtime.webhook: true"
            )
        return self


class BotSpec(_Model):
    """The desired state of one trading bot."""

    mode: Mode = Field(
        default=Mode.PAPER,
        description="backtest (replay data), paper (simulated fills on live time) or live "
        "(real orders; needs liveConfirmation and broker.credentialsSecret).",
    )
    strategy: PluginRef = Field(description="The strategy plugin and its params.")
    market: MarketSpec = Field(description="Symbols and base timeframe.")
    broker: BrokerRef = Field(
        default_factory=lambda: BrokerRef(name="paper"),
        description="The broker plugin (paper, ccxt, mt5) and its params.",
    )
    data: PluginRef | None = Field(
        default=None,
        description="The data feed plugin and its params; backtest needs one.",
    )
    risk: list[PluginRef] = Field(
        default_factory=list,
        max_length=32,
        description="Risk plugins, applied in order; each may only shrink or veto an order. "
        "A sizer (fixed-fractional, fixed-size) decides the size of orders the strategy "
        "leaves unsized.",
    )
    capital: CapitalSpec = Field(default_factory=CapitalSpec, description="Starting capital.")
    live_confirmation: str | None = Field(
        default=None,
        max_length=63,
        description="Required for mode live: must equal metadata.name, typed by a person "
        "who means it. Ignored in other modes.",
    )
    paused: bool = Field(default=False, description="A paused bot manages exits but opens nothing.")
    on_stop: StopPolicy = Field(
        default_factory=StopPolicy, description="What to do with orders and positions on stop."
    )
    quality: QualitySpec = Field(
        default_factory=QualitySpec, description="Execution-quality window and limits."
    )
    emergency_stop: EmergencyStopSpec | None = Field(
        default=None, description="Set to halt the bot (the kill switch); remove to resume."
    )
    runtime: RuntimeSpec = Field(
        default_factory=RuntimeSpec, description="The runtime pod: image, resources, journal."
    )

    @model_validator(mode="after")
    def _mode_needs(self) -> BotSpec:
        if self.mode is Mode.BACKTEST and self.data is None:
            raise ValueError("spec.data: mode backtest needs a data feed")
        return self


class Metadata(_Model):
    """The part of Kubernetes object metadata a bot uses."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    name: str = Field(description="Bot name: a lowercase DNS label, unique in its namespace.")
    namespace: str = Field(default="default")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if len(value) > 63 or not BOT_NAME_RE.match(value):
            raise ValueError(
                f"{value!r} is not a valid bot name: lowercase letters, digits and '-', "
                "at most 63 characters, starting with a letter and ending with a letter or digit"
            )
        return value


class BotManifest(_Model):
    """A whole ``TradingBot`` object, as written in YAML and applied with kubectl."""

    # Unknown top-level fields are refused like unknown spec fields: a typo there ("sepc")
    # would otherwise leave a bot running on defaults the author did not mean.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: Metadata
    spec: BotSpec

    @model_validator(mode="before")
    @classmethod
    def _status_is_not_configuration(cls, data: Any) -> Any:
        # ``kubectl get -o yaml`` writes the object's ``status``; such a file is still a
        # manifest. The status is the operator's report, never configuration: dropped unread.
        if isinstance(data, dict) and "status" in data:
            return {key: value for key, value in data.items() if key != "status"}
        return data

    @field_validator("api_version")
    @classmethod
    def _api_version(cls, value: str) -> str:
        if value != API_VERSION:
            raise ValueError(f"must be {API_VERSION!r}, not {value!r}")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value != KIND:
            raise ValueError(f"must be {KIND!r}, not {value!r}")
        return value

    @model_validator(mode="after")
    def _live_is_confirmed(self) -> BotManifest:
        problems = live_mode_problems(self.metadata.name, self.spec)
        if problems:
            # One line per field, "path: message"; the loader splits them into field errors.
            raise ValueError("\n".join(problems))
        return self


def live_mode_problems(bot_name: str, spec: BotSpec) -> list[str]:
    """Why a live bot is refused, one ``"field: reason"`` line per missing safeguard."""
    if spec.mode is not Mode.LIVE:
        return []
    problems = []
    if spec.live_confirmation != bot_name:
        problems.append(
            "spec.liveConfirmation: live mode refused: must equal the bot's name "
            f"({bot_name!r}), typed to confirm that this bot trades real money"
        )
    if spec.broker.credentials_secret is None:
        problems.append(
            "spec.broker.credentialsSecret: live mode refused: a credentials Secret is required"
        )
    return problems
