"""What the operator puts into every bot's objects, independent of any one bot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

#: Where the runtime pod's files live (the paths the runtime's ``serve`` command is given).
CONFIG_DIR = "/etc/tradefleet"
CONFIG_FILE = "bot.yaml"
AUTH_DIR = "/var/run/tradefleet/auth"
CREDENTIALS_DIR = "/var/run/tradefleet/credentials"
WEBHOOK_DIR = "/var/run/tradefleet/webhook"
JOURNAL_DIR = "/var/lib/tradefleet"
JOURNAL_FILE = "journal.sqlite"

#: Labels and annotations the operator reads or writes.
BOT_LABEL = "tradefleet.io/bot"
CONFIG_HASH_ANNOTATION = "tradefleet.io/config-hash"
#: On a bot's ConfigMap: the ``bot.yaml`` its Deployment's pod template was rolled out with, and
#: that config's hash, kept beside a newer ``bot.yaml`` in the same patch, so what a refused
#: change puts back survives a lost answer and an operator restart (``children._settle_config``).
#: Left once the Deployment takes the newer one (no write more per change): keyed by its hash, it
#: is read only while the Deployment runs that config, and the next change replaces it.
ROLLED_OUT_CONFIG_ANNOTATION = "tradefleet.io/rolled-out-config"
ROLLED_OUT_HASH_ANNOTATION = "tradefleet.io/rolled-out-config-hash"
#: On a bot's ConfigMap, and on its Deployment's pod template: when a pass found the ConfigMap
#: holding another config than the one the pod template was rolled out with (a Deployment write
#: answered 5xx that landed after the ConfigMap was put back: its pod started on the old
#: config), the time it rewrote the ConfigMap. The pod template carries the ConfigMap's value,
#: so a new one rolls the pod again (as ``kubectl rollout restart`` does with its own
#: annotation), and a roll whose write failed is made at the next pass
#: (``children._write_objects``).
CONFIG_REPAIRED_ANNOTATION = "tradefleet.io/config-repaired-at"
#: Set on a TradingBot to reach its runtime somewhere else than ``<name>.<namespace>.svc``
#: (for running the operator outside the cluster, e.g. against a port-forwarded runtime).
RUNTIME_ADDRESS_ANNOTATION = "tradefleet.io/runtime-address"
#: Set on a TradingBot to clear a risk plugin's lock once: ``"<plugin>: <reason>"``.
RESET_RISK_LOCK_ANNOTATION = "tradefleet.io/reset-risk-lock"
#: The bot label whose value the runtime exports as its team (``tradefleet_bot_info{team}``);
#: ``--team-label`` names another key.
TEAM_LABEL = "tradefleet.io/team"
MANAGED_BY = "tradefleet-operator"
APP_NAME = "tradefleet-bot"


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class OperatorSettings:
    """Operator-wide defaults for the objects it renders (one instance, read at start-up)."""

    runtime_image: str = "ghcr.io/tradefleet/runtime:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    grpc_port: int = 50051
    http_port: int = 8080
    #: ServiceAccount of the runtime pods; None: the namespace's default account (the runtime
    #: needs no Kubernetes API access, so its token is not mounted either way).
    service_account_name: str | None = None
    #: Extra labels on every object the operator creates (e.g. ``app.kubernetes.io/part-of``).
    labels: Mapping[str, str] = field(
        default_factory=lambda: _frozen({"app.kubernetes.io/part-of": "tradefleet"})
    )
    #: The runtime's executable; ``serve <bot.yaml> …`` is appended.
    runtime_command: tuple[str, ...] = ("tradefleet",)
    run_as_user: int = 10001
    fs_group: int = 10001
    termination_grace_period_seconds: int = 30
    #: Access mode of new journal claims: ReadWriteOncePod (one pod only; needs a CSI driver,
    #: Kubernetes ≥ 1.29) fences a second runtime of a bot; ReadWriteOnce for other drivers.
    journal_access_mode: str = "ReadWriteOncePod"
    #: The TradingBot label whose value becomes the runtime's ``TRADEFLEET_TEAM`` (its metrics'
    #: team); "" passes none.
    team_label: str = TEAM_LABEL

    def __post_init__(self) -> None:
        # A frozen dataclass should not hold a mutable dict someone else can change later.
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "runtime_command", tuple(self.runtime_command))
        for port in (self.grpc_port, self.http_port):
            if not 0 < port < 65536:
                raise ValueError(f"port {port} is out of range")
        if self.grpc_port == self.http_port:
            raise ValueError("the gRPC and HTTP ports must differ")
        if not self.runtime_command:
            raise ValueError("runtime_command must name an executable")


def runtime_address(metadata: Mapping[str, Any], settings: OperatorSettings | None = None) -> str:
    """``host:port`` of a bot's gRPC API: the annotation ``tradefleet.io/runtime-address`` if
    set (an operator outside the cluster), else the bot's headless Service."""
    annotations = metadata.get("annotations") or {}
    override = str(annotations.get(RUNTIME_ADDRESS_ANNOTATION) or "").strip()
    if override:
        return override
    namespace = metadata.get("namespace") or "default"
    port = (settings or OperatorSettings()).grpc_port
    return f"{metadata['name']}.{namespace}.svc:{port}"
