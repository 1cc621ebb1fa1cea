"""The change handler writes the conditions it changed, by type, onto the freshest list.

A merge patch replaces the whole ``status.conditions`` list. The handler built its list on the
status it read at the start of its pass, so its write put back every condition the status
timer had written since: a ``RiskLocked=True`` the runtime had just reported turned False
again, and stayed so while the runtime was unreachable (the timer then writes nothing new).
Now the conditions go as a patch function applied to the freshest object (kopf sends it as a
JSON patch testing ``metadata.resourceVersion``): each condition the handler changed is set
(``Reconciled``, its own, whatever is stored; the others only where unchanged since its read),
every other one is left as stored. The other status keys go in the same write
(``test_handler_status_one_write.py``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any, cast

import kopf
import pytest

from tests.operator.test_reconcile import FakeKube, _body
from tests.operator.test_status_timer_write import READ, _cond
from tests.operator.timer_writes import applied
from tradefleet_operator import handlers
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.k8s_api import KubeApi
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import OperatorSettings
from tradefleet_operator.status_model import BotStatus, conditions_write

RISK_LOCKED = _cond("RiskLocked", "True", "CircuitBreaker")


def _written(read: dict[str, Any], new: BotStatus, fresh: dict[str, Any]) -> list[Any]:
    write = conditions_write(read, new)
    assert write is not None
    body: dict[str, Any] = {"status": copy.deepcopy(fresh)}
    write(body)
    return list(body["status"]["conditions"])


def test_a_condition_the_timer_wrote_since_the_read_is_kept() -> None:
    reconciled = _cond("Reconciled", "True", "UpToDate")
    new = BotStatus.read({**READ, "conditions": [reconciled, READ["conditions"][1]]})
    fresh = {**READ, "conditions": [*READ["conditions"], RISK_LOCKED]}
    assert _written(READ, new, fresh) == [reconciled, READ["conditions"][1], RISK_LOCKED]


def test_the_handlers_own_condition_is_set_whatever_the_stored_list_holds() -> None:
    """The handler alone decides ``Reconciled``: a stale one the timer put back is replaced."""
    reconciled = _cond("Reconciled", "True", "UpToDate")
    new = BotStatus.read({**READ, "conditions": [reconciled, READ["conditions"][1]]})
    stale = _cond("Reconciled", "False", "HalfApplied")
    fresh = {**READ, "conditions": [stale, READ["conditions"][1]]}
    assert _written(READ, new, fresh)[0] == reconciled


def test_a_removed_condition_goes_an_unchanged_list_is_no_write() -> None:
    new = BotStatus.read({**READ, "conditions": [READ["conditions"][1]]})
    fresh = {**READ, "conditions": [*READ["conditions"], RISK_LOCKED]}
    assert _written(READ, new, fresh) == [READ["conditions"][1], RISK_LOCKED]
    assert conditions_write(READ, BotStatus.read(READ)) is None


def test_a_pass_keeps_the_risk_lock_the_timer_wrote_during_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real pass (a spec the handler refuses: ``Reconciled=False InvalidSpec``) read the
    status before the timer wrote ``RiskLocked=True``; its patch, applied as kopf applies it
    to the object as stored then, keeps the lock and sets ``Reconciled``. On the old code the
    merge patch's list dropped the lock."""
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)
    body = _body(market={"symbols": ["EURUSD"], "timeframe": "7 fortnights"})
    body["status"] = {"phase": "Running", "conditions": [_cond("Ready", "True")]}
    ctx = OperatorContext(
        settings=OperatorSettings(),
        kube=cast(KubeApi, FakeKube()),
        runtime=RuntimeClients(timeout=0.2),
    )
    patch = kopf.Patch()
    asyncio.run(
        handlers.reconcile(
            body=cast(kopf.Body, body),
            meta=cast(kopf.Meta, body["metadata"]),
            status=cast(kopf.Status, body["status"]),
            patch=patch,
            memo=kopf.Memo(tradefleet=ctx),
            logger=cast(kopf.Logger, logging.getLogger("test")),
            reason="update",
            diff=(),
        )
    )
    stored = copy.deepcopy(body)
    stored["status"]["conditions"].append(RISK_LOCKED)  # the timer's write, during the pass
    conditions = applied(patch, stored)["status"]["conditions"]
    assert [c["type"] for c in conditions] == ["Ready", "RiskLocked", "Reconciled"]
    assert conditions[1] == RISK_LOCKED
    assert conditions[2]["reason"] == "InvalidSpec"
    assert "conditions" not in (patch.get("status") or {})  # never the whole list
