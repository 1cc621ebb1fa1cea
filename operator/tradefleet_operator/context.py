"""What every handler of one operator run shares, and the kopf glue the handlers need.

:class:`OperatorContext` lives in kopf's ``memo``: settings, the Kubernetes client, the
runtimes' gRPC client and a cache of each bot's API tokens (read from its ``<name>-api-token``
Secret once, forgotten when a runtime says a token is wrong).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from tradefleet_operator.k8s_api import KubeApi, api_path
from tradefleet_operator.names import api_token_secret_name
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import OperatorSettings
from tradefleet_operator.status_model import ControlStatus
from tradefleet_operator.tokens import ApiTokens, tokens_from_secret


@dataclass
class OperatorContext:
    """What every handler of one operator run shares (kept in kopf's ``memo``)."""

    settings: OperatorSettings
    kube: KubeApi
    runtime: RuntimeClients
    stop_timeout: float = 20.0
    #: API tokens by (namespace, bot name), filled from the bots' token Secrets.
    tokens: dict[tuple[str, str], ApiTokens] = field(default_factory=dict)
    #: How many bots' object passes (build the children, write them) run at once. A fleet
    #: applied at once otherwise builds every bot's objects together and holds them all while
    #: they queue for the API connections: the operator's memory peak (issue 19, item 4). The
    #: connection pool is the real limit, so this costs no reconcile time. Steering (a halt)
    #: never waits for it.
    object_passes: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(32))
    #: By (namespace, bot name): the config hash of an object pass whose Deployment write
    #: failed without saying whether it was made (a 5xx, no answer) while the Deployment ran
    #: another config. A later pass of that config whose Deployment write fails so again, and
    #: which read the Deployment still on the other one, knows the earlier write did not land
    #: (``children.NotLanded``). Lost at a restart: the next Deployment write of unknown
    #: outcome is then only retried, once more, before the ConfigMap is put back.
    unlanded: dict[tuple[str, str], str] = field(default_factory=dict)
    #: By TradingBot uid: the control the status timer applied while a change was at work
    #: (``handlers._steer_while_at_work``), until a change handler's steering takes it in. Its
    #: record in ``status.control`` is a guarded write that may be refused (the object moved)
    #: or overwritten by the change pass's own status write; without this, the handler of a
    #: newer spec that removed the stop would plan from "Running" and never resume the halt
    #: (review R33c). Lost at an operator restart (said in docs/operations.md).
    timer_controls: dict[str, ControlStatus] = field(default_factory=dict)
    #: By (namespace, bot name): how many status timer writes in a row the API server refused.
    refused_status_writes: dict[tuple[str, str], int] = field(default_factory=dict)

    def forget(self, namespace: str, name: str) -> None:
        self.tokens.pop((namespace, name), None)
        self.unlanded.pop((namespace, name), None)
        self.refused_status_writes.pop((namespace, name), None)

    async def bot_tokens(self, namespace: str, name: str) -> ApiTokens | None:
        """The bot's tokens (cached), or None while it has no complete token Secret."""
        cached = self.tokens.get((namespace, name))
        if cached is not None:
            return cached
        path = api_path("v1", "secrets", namespace, api_token_secret_name(name))
        found = tokens_from_secret(await self.kube.get(path))
        if found is not None:
            self.tokens[(namespace, name)] = found
        return found


def context(memo: Any) -> OperatorContext:
    ctx = memo.get("tradefleet")
    if not isinstance(ctx, OperatorContext):
        raise kopf.TemporaryError("the operator is still starting up", delay=1)
    return ctx


def event(body: Mapping[str, Any], *, reason: str, message: str, warning: bool = False) -> None:
    """A Kubernetes Event on the TradingBot (kopf posts it in the background)."""
    # kopf.event, not kopf.info: the operator posts its log lines only from WARNING up (one
    # "handler succeeded" Event per bot and pass would be noise), but every decision here.
    kind = "Warning" if warning else "Normal"
    kopf.event(cast(kopf.Body, body), type=kind, reason=reason, message=message)
