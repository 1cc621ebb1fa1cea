"""The status timer's write never puts back what the change handler wrote since the tick read
the bot (found by this stop's fresh-clone CI run, which failed on it).

The timer reads the bot, asks its runtime and the API, and writes later. It wrote a merge patch,
which replaces the whole ``conditions`` list: a tick that began before the change handler's pass
ended put the list it had read back, ``Reconciled=False, CredentialsSecretMissing`` over the
``Reconciled=True`` the pass had just written after the Secret was made and the bot rolled onto
it. Nothing wrote ``Reconciled`` again (the handler was done), so a bot running on its spec said
for good that nothing of its spec was applied
(``tests/operator/e2e/test_credentials_secret.py::
test_a_persons_stop_and_resume_of_a_held_bot_reach_its_runtime_at_once`` failed so, 1 run in
18 under load). Now each key, and each condition by its type, is written only where the object
still holds what the tick read; kopf sends it as a JSON patch testing the resourceVersion.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, cast

import kopf
import pytest

from tests.operator.test_account_sharing import bot as sharing_bot
from tests.operator.test_credentials_held import _account, _held_alpha
from tests.operator.test_credentials_secret import NS, Kube, ctx_of, reconcile, reconciled
from tests.operator.test_reconcile import FakeRuntimeClients
from tests.operator.timer_writes import applied, poll_tick
from tradefleet_operator.account_sharing import BotAccount
from tradefleet_operator.metrics import STATUS_WRITES_REFUSED as REFUSED
from tradefleet_operator.status_model import BotStatus, guarded_status_write, status_changes


@pytest.fixture(autouse=True)
def _no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "event", lambda _body, **_kw: None)


def _tick_patch(kube: Kube, body: dict[str, Any], index: dict[str, list[BotAccount]]) -> kopf.Patch:
    return poll_tick(ctx_of(kube, FakeRuntimeClients()), body, index)


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    found = [c for c in status.get("conditions") or [] if c.get("type") == kind]
    return found[0] if found else None


def test_a_tick_read_before_the_roll_keeps_the_rolls_reconciled() -> None:
    """alpha is held (its spec names a Secret not made yet) and shares its running account
    with beta. A tick reads it and marks it AccountShared; before that write lands, the Secret
    is made and the change handler rolls alpha, Reconciled=True. The tick's write keeps the
    handler's Reconciled and adds its own AccountShared."""
    kube = Kube()
    alpha = _held_alpha(kube)
    beta = sharing_bot("beta", ["BTC/USDT"], secret="binance-key")
    patch = _tick_patch(kube, alpha, {NS: [_account(alpha), _account(beta)]})
    assert patch, "the tick changed nothing: the race is not set up"

    # The handler's pass, after the tick read alpha: the Secret is made, alpha rolled onto it.
    kube.add_secret("binance-key-v2")
    rolled = copy.deepcopy(alpha)
    written, retried = reconcile(kube, rolled, "update")
    assert not retried and reconciled(written)["status"] == "True"
    rolled["status"] = {**rolled["status"], **written}

    stored = applied(patch, rolled)["status"]
    assert reconciled(stored)["status"] == "True", reconciled(stored)["message"]
    assert reconciled(stored)["reason"] == "UpToDate"
    shared = _condition(stored, "AccountShared")
    assert shared is not None and shared["status"] == "True"
    assert "credentialsSecretInUse" not in stored or stored["credentialsSecretInUse"] is None


def test_without_a_write_between_the_tick_writes_what_the_merge_patch_did() -> None:
    kube = Kube()
    alpha = _held_alpha(kube)
    beta = sharing_bot("beta", ["BTC/USDT"], secret="binance-key")
    patch = _tick_patch(kube, alpha, {NS: [_account(alpha), _account(beta)]})
    stored = applied(patch, alpha)["status"]
    assert reconciled(stored)["reason"] == "CredentialsSecretMissing"  # as read: kept
    shared = _condition(stored, "AccountShared")
    assert shared is not None and shared["status"] == "True"
    # The list keeps its order; the conditions the tick adds come after it.
    before = [c["type"] for c in alpha["status"]["conditions"]]
    after = [c["type"] for c in stored["conditions"]]
    assert after[: len(before)] == before and "AccountShared" in after[len(before) :]


def test_a_tick_leaves_no_write_of_an_earlier_tick_behind() -> None:
    """kopf keeps a write whose JSON patch met a newer object for the next tick; that tick
    decides again from what it reads, so the older write is dropped (applied first, it would
    have made the newer tick's guard see its own values and skip)."""
    kube = Kube()
    alpha = _held_alpha(kube)
    patch = kopf.Patch()
    patch.fns.append(lambda raw: cast(dict[str, Any], raw).update(status={"phase": "Failed"}))
    poll_tick(ctx_of(kube, FakeRuntimeClients()), alpha, {NS: [_account(alpha)]}, patch)
    assert applied(patch, alpha)["status"].get("phase") != "Failed"


def test_a_write_refused_tick_after_tick_is_counted_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """kopf takes every 422 to the timer's JSON patch for a conflict and logs it at debug only,
    a status the CRD's schema refuses among them (review R33a): refused at every tick, the
    bot's status would stop with nothing said. kopf keeps a refused write for the next tick;
    the tick counts it, and three in a row log a Warning; a write that lands ends the streak."""
    kube = Kube()
    alpha = _held_alpha(kube)
    ctx = ctx_of(kube, FakeRuntimeClients())
    refused_before = REFUSED.collect()[0].samples[0].value

    def tick(left_by_kopf: bool) -> None:
        patch = kopf.Patch()
        if left_by_kopf:  # kopf's remainder of the last tick's refused JSON patch
            patch.fns.append(lambda raw: None)
        poll_tick(ctx, alpha, {NS: [_account(alpha)]}, patch)

    def warnings() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.WARNING and "refused" in r.getMessage()
        ]

    with caplog.at_level(logging.DEBUG, logger="timer"):
        tick(True)
        tick(True)
        assert warnings() == []
        tick(True)
        assert len(warnings()) == 1 and "3 ticks in a row" in warnings()[0]
        tick(False)  # landed: the streak ends
        tick(True)
        tick(True)
        assert len(warnings()) == 1
    assert REFUSED.collect()[0].samples[0].value == refused_before + 5


# --- the guard itself (pure) --------------------------------------------------------------------


def _cond(kind: str, status: str, reason: str = "R") -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": f"{kind} {status}",
        "lastTransitionTime": "2026-12-07T00:00:00Z",
        "observedGeneration": 1,
    }


READ: dict[str, Any] = {
    "phase": "Running",
    "lastBarTime": "2026-12-07T08:00:00Z",
    "conditions": [
        _cond("Reconciled", "False", "CredentialsSecretMissing"),
        _cond("Ready", "True"),
    ],
}


def _new(**changes: Any) -> BotStatus:
    return BotStatus.read({**READ, **changes})


def _apply(read: dict[str, Any], new: BotStatus, fresh: dict[str, Any]) -> dict[str, Any]:
    write = guarded_status_write(read, new)
    assert write is not None
    body: dict[str, Any] = {"status": copy.deepcopy(fresh)}
    write(body)
    return dict(body["status"])


def test_nothing_changed_is_no_write() -> None:
    assert guarded_status_write(READ, BotStatus.read(READ)) is None


def test_a_condition_another_writer_changed_is_kept_and_the_timers_own_is_written() -> None:
    new = _new(conditions=[READ["conditions"][0], _cond("Ready", "False")])
    fresh = {**READ, "conditions": [_cond("Reconciled", "True", "UpToDate"), READ["conditions"][1]]}
    stored = _apply(READ, new, fresh)
    assert stored["conditions"] == [
        _cond("Reconciled", "True", "UpToDate"),
        _cond("Ready", "False"),
    ]


def test_the_same_condition_changed_by_another_writer_is_theirs() -> None:
    new = _new(conditions=[READ["conditions"][0], _cond("Ready", "False")])
    theirs = _cond("Ready", "Unknown", "RuntimeUnreachable")
    fresh = {**READ, "conditions": [READ["conditions"][0], theirs]}
    assert _apply(READ, new, fresh)["conditions"] == [READ["conditions"][0], theirs]


def test_a_key_another_writer_changed_is_kept_an_unchanged_one_is_written() -> None:
    new = _new(phase="Halted", lastBarTime="2026-12-07T09:00:00Z")
    fresh = {**READ, "phase": "Failed"}
    stored = _apply(READ, new, fresh)
    assert stored["phase"] == "Failed"
    assert stored["lastBarTime"] == "2026-12-07T09:00:00Z"


def test_a_condition_added_or_removed_by_the_timer() -> None:
    added = _new(conditions=[*READ["conditions"], _cond("AccountShared", "False")])
    assert [c["type"] for c in _apply(READ, added, READ)["conditions"]] == [
        "Reconciled",
        "Ready",
        "AccountShared",
    ]
    removed = _new(conditions=[READ["conditions"][1]])
    assert _apply(READ, removed, READ)["conditions"] == [READ["conditions"][1]]
    # Added meanwhile by another writer: theirs stays, not a second one.
    fresh = {**READ, "conditions": [*READ["conditions"], _cond("AccountShared", "True")]}
    assert _apply(READ, added, fresh)["conditions"] == fresh["conditions"]


@pytest.mark.parametrize("read", [{}, READ, {"phase": "Pending"}, {"conditions": []}])
@pytest.mark.parametrize(
    "changes",
    [
        {"phase": "Halted"},
        {"conditions": [_cond("Ready", "False")]},
        {"conditions": [_cond("Reconciled", "True", "UpToDate"), _cond("Ready", "True")]},
        {"phase": "Running", "lastBarTime": "2026-12-07T10:00:00Z", "conditions": []},
    ],
)
def test_with_no_write_between_it_is_the_merge_patch(
    read: dict[str, Any], changes: dict[str, Any]
) -> None:
    """Nobody wrote since the read: the object ends as the merge patch of the changed keys
    would have left it (the write an unraced tick made before)."""
    new = BotStatus.read({**read, **changes})
    merged = {**read, **status_changes(read, new)}
    write = guarded_status_write(read, new)
    if write is None:
        assert merged == read
        return
    body: dict[str, Any] = {"status": copy.deepcopy(read)} if read else {}
    write(body)
    assert body["status"] == merged
