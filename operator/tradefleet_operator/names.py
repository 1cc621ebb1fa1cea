"""Identifiers of the TradingBot API and of a bot's objects, each defined once.

The CRD generator, the kopf handlers, the fleet command and the object builders all name the
same resource, phases and child objects; a second copy of any of these would drift.
"""

from __future__ import annotations

from enum import StrEnum

from tradefleet_runtime.spec import API_VERSION, KIND

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "tradingbots"
SINGULAR = "tradingbot"
#: The CRD's own name.
CRD_NAME = f"{PLURAL}.{GROUP}"

__all__ = [
    "API_VERSION",
    "CRD_NAME",
    "GROUP",
    "KIND",
    "LIVE_FIELDS",
    "PLURAL",
    "SINGULAR",
    "VERSION",
    "Control",
    "Phase",
    "api_token_secret_name",
    "config_map_name",
    "journal_pvc_name",
    "webhook_keys_secret_name",
]


class Phase(StrEnum):
    """``status.phase``: the bot's lifecycle as the operator reports it."""

    PENDING = "Pending"  # objects made; the runtime has not answered yet (or is starting)
    RUNNING = "Running"
    PAUSED = "Paused"
    HALTED = "Halted"
    # The runtime found its venue and journal disagreeing on start: it trades nothing until a
    # person resumes it.
    DEGRADED = "Degraded"
    STOPPED = "Stopped"
    FAILED = "Failed"


class Control(StrEnum):
    """What the spec asks of the runtime (``status.control.applied`` records the last one)."""

    RUNNING = "Running"
    PAUSED = "Paused"
    HALTED = "Halted"


#: ``BotSpec`` fields applied to the running bot over gRPC: no child object depends on them,
#: and changing them must not restart the pod (they are left out of the config hash).
LIVE_FIELDS = ("paused", "emergency_stop")


def config_map_name(bot: str) -> str:
    return f"{bot}-config"


def api_token_secret_name(bot: str) -> str:
    return f"{bot}-api-token"


def webhook_keys_secret_name(bot: str) -> str:
    return f"{bot}-webhook-keys"


def journal_pvc_name(bot: str) -> str:
    return f"{bot}-journal"
