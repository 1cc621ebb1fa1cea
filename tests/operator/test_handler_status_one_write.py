"""A change handler's pass writes its status in one write: no reader sees its phase without
the conditions that explain it.

kopf sends a patch's merge part for the status (``patch.status``) as one request and its
functions as a JSON patch after it. The handler merge-patched its phase and generation and
wrote its conditions by function (so as not to put back the timer's newer ones): two writes.
A reader between them saw a bot whose spec was refused ``Failed`` with no ``Reconciled``
condition (the e2e ``test_an_invalid_spec_fails_the_bot_without_stopping_the_operator`` did,
on a loaded CI run), and for longer when the second write was refused for a newer object and
waited for kopf's next cycle. Here the pass's patch goes through kopf's own ``patch_obj``
against a stand-in API server that records what a reader sees after each request.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any, cast

import jsonpatch
import kopf
import pytest
from kopf._cogs.clients import api, patching
from kopf._cogs.structs import references

from tests.operator.test_reconcile import FakeKube, _body
from tests.operator.test_status_timer_write import _cond
from tradefleet_operator import handlers
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.k8s_api import KubeApi
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import OperatorSettings

BOTS = references.Resource(
    group="tradefleet.io",
    version="v1alpha1",
    plural="tradingbots",
    subresources=frozenset({"status"}),
    namespaced=True,
)


class Server:
    """One stored object; merge and JSON patches applied as kube-apiserver applies them (a
    JSON patch's ``test`` of ``metadata.resourceVersion`` included); the status a reader would
    get after each status request."""

    def __init__(self, stored: dict[str, Any]) -> None:
        self.stored = stored
        self.seen: list[dict[str, Any]] = []

    async def patch(self, url: str, *, payload: Any, headers: dict[str, str], **_: Any) -> Any:
        if headers["Content-Type"] == "application/json-patch+json":
            self.stored = jsonpatch.apply_patch(self.stored, payload)
        else:
            self.stored = _merged(self.stored, payload)
        version = int(self.stored["metadata"]["resourceVersion"]) + 1
        self.stored["metadata"]["resourceVersion"] = str(version)
        if url.endswith("/status"):
            self.seen.append(copy.deepcopy(self.stored.get("status") or {}))
        return copy.deepcopy(self.stored)


def _merged(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merged(result.get(key), value)
    return result


def _pass(body: dict[str, Any], reason: str) -> kopf.Patch:
    ctx = OperatorContext(
        settings=OperatorSettings(),
        kube=cast(KubeApi, FakeKube()),
        runtime=RuntimeClients(timeout=0.2),
    )
    patch = kopf.Patch(body=cast(kopf.Body, body))
    asyncio.run(
        handlers.reconcile(
            body=cast(kopf.Body, body),
            meta=cast(kopf.Meta, body["metadata"]),
            status=cast(kopf.Status, body["status"]),
            patch=patch,
            memo=kopf.Memo(tradefleet=ctx),
            logger=cast(kopf.Logger, logging.getLogger("test")),
            reason=reason,
            diff=(),
        )
    )
    return patch


def _sent(patch: kopf.Patch, body: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Server:
    server = Server(copy.deepcopy(body))
    monkeypatch.setattr(api, "patch", server.patch)
    _, remaining = asyncio.run(
        patching.patch_obj(
            settings=kopf.OperatorSettings(),
            resource=BOTS,
            namespace=body["metadata"]["namespace"],
            name=body["metadata"]["name"],
            patch=patch,
            logger=logging.getLogger("test"),
        )
    )
    assert remaining is None
    return server


def _reconciled(status: dict[str, Any]) -> dict[str, Any] | None:
    found = [c for c in status.get("conditions") or () if c.get("type") == "Reconciled"]
    return found[0] if found else None


def test_a_refused_spec_shows_failed_and_why_in_the_same_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)
    body = _body(market={"symbols": ["EURUSD"], "timeframe": "7 fortnights"})
    body["metadata"]["resourceVersion"] = "7"
    body["status"] = {}
    server = _sent(_pass(body, "create"), body, monkeypatch)
    assert len(server.seen) == 1  # one status request
    status = server.seen[0]
    assert status["phase"] == "Failed"
    reconciled = _reconciled(status)
    assert reconciled is not None
    assert (reconciled["status"], reconciled["reason"]) == ("False", "InvalidSpec")


def test_every_status_a_reader_sees_has_the_phase_and_its_conditions_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bot whose status holds the timer's ``RiskLocked`` and an old ``Reconciled=True``: a
    pass refusing its new spec writes the new ``Reconciled`` with its generation, in one write,
    and keeps the lock."""
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)
    body = _body(market={"symbols": ["EURUSD"], "timeframe": "7 fortnights"})
    body["metadata"]["resourceVersion"] = "7"
    body["metadata"]["generation"] = 3
    locked = _cond("RiskLocked", "True", "CircuitBreaker")
    body["status"] = {
        "phase": "Failed",
        "observedGeneration": 2,
        "conditions": [_cond("Reconciled", "True", "UpToDate"), locked],
    }
    server = _sent(_pass(body, "update"), body, monkeypatch)
    assert len(server.seen) == 1
    status = server.seen[0]
    assert status["observedGeneration"] == 3
    reconciled = _reconciled(status)
    assert reconciled is not None
    assert reconciled["reason"] == "InvalidSpec"
    assert locked in status["conditions"]


def test_a_pass_that_changes_nothing_sends_no_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)
    body = _body(market={"symbols": ["EURUSD"], "timeframe": "7 fortnights"})
    body["metadata"]["resourceVersion"] = "7"
    body["status"] = {}
    first = _sent(_pass(body, "create"), body, monkeypatch)
    again = copy.deepcopy(first.stored)
    server = _sent(_pass(again, "update"), again, monkeypatch)
    assert server.seen == []
