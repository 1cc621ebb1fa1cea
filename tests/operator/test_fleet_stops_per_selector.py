"""Every fleet stop that holds a bot is kept, each with its selector; ``fleet resume --selector
S`` lifts only the fleet stops made with ``S``.

The ``tradefleet.io/fleet-stop`` record lists the fleet stops holding a bot and the bot's own
stop (a person's ``spec.emergencyStop``, or the halt its runtime was found in: by the stop's
direct call, else as the bot's status shows it); its spec stop names them all. The fleet's own
reasons are never taken for a person's halt, in whatever form the fleet wrote them (cut to the
CRD's limit, naming several fleet stops, of a fleet stop resumed since). The spec stop goes
only when no fleet stop and no own stop is left, and never while the bot is Degraded (a person
resumes that). A record written by 18be13c (one stop, no selector) is read, and its stop is
never lifted by a fleet resume.
They drive the real ``stop_fleet`` / ``resume_fleet`` over an in-memory API server.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.operator.test_fleet_resume_own_halt import NS, OWN, FakeKube, _resume, _stop_of
from tradefleet_operator.fleet import (
    FLEET_STOP_ANNOTATION,
    MAX_EARLIER,
    MAX_REASON_CHARS,
    SEEN_STATUS,
    FleetResult,
    _report_line,
    canonical_selector,
    spec_stop,
    status_halt_reason,
    stop_fleet,
    stop_patch,
)
from tradefleet_runtime.api.conventions import CONTROL_TOKEN_FILE, READ_TOKEN_FILE
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

TEAM_A = "tradefleet.io/team=a"
BINANCE = "tradefleet.io/venue=binance"
BOTH_LABELS = {"tradefleet.io/team": "a", "tradefleet.io/venue": "binance"}


def _bot(name: str, labels: dict[str, str], stop: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"mode": "live"}
    if stop is not None:
        spec["emergencyStop"] = copy.deepcopy(stop)
    return {"metadata": {"name": name, "namespace": NS, "labels": labels}, "spec": spec}


def _stop(kube: FakeKube, selector: str, reason: str, **kwargs: Any) -> dict[str, FleetResult]:
    kwargs.setdefault("direct", False)
    results = stop_fleet(
        kube,  # type: ignore[arg-type]
        selector=selector, namespace=NS, reason=reason, flatten=False, **kwargs,
    )  # fmt: skip
    assert results and all(not r.error for r in results), results
    return {r.name: r for r in results}


def _record(kube: FakeKube, name: str) -> Any:
    text = (kube.bots[name]["metadata"].get("annotations") or {}).get(FLEET_STOP_ANNOTATION)
    return None if text is None else json.loads(text)


def test_resuming_one_fleet_stop_keeps_a_bot_another_fleet_stop_still_holds() -> None:
    """Two incidents, two selectors, a bot in both: the team's resume must not lift the venue
    outage's stop; the outage's resume then does."""
    kube = FakeKube(
        [_bot("btc-a-binance", BOTH_LABELS), _bot("eth-a-kraken", {"tradefleet.io/team": "a"})]
    )
    _stop(kube, BINANCE, "binance outage: do not trade there")
    _stop(kube, TEAM_A, "team a strategy bug")
    assert _stop_of(kube, "btc-a-binance") == {
        "reason": "fleet stop: binance outage: do not trade there; fleet stop: team a strategy bug",
        "flatten": False,
    }

    resumed = _resume(kube, TEAM_A)

    assert resumed["eth-a-kraken"].resumed and _stop_of(kube, "eth-a-kraken") is None
    assert not resumed["btc-a-binance"].resumed
    assert resumed["btc-a-binance"].left_halted == (
        "still held by the fleet stop of tradefleet.io/venue=binance: binance outage: do not "
        "trade there"
    )
    assert _stop_of(kube, "btc-a-binance") == {
        "reason": "binance outage: do not trade there",
        "flatten": False,
    }
    assert [s["selector"] for s in _record(kube, "btc-a-binance")["stops"]] == [BINANCE]

    again = _resume(kube, BINANCE)
    assert again["btc-a-binance"].resumed and _stop_of(kube, "btc-a-binance") is None
    assert _record(kube, "btc-a-binance") is None


def test_a_resume_whose_selector_made_no_stop_of_the_bot_changes_nothing() -> None:
    kube = FakeKube([_bot("btc-a-binance", BOTH_LABELS)])
    _stop(kube, BINANCE, "binance outage")
    before = copy.deepcopy(kube.bots["btc-a-binance"])
    resumed = _resume(kube, TEAM_A)
    assert kube.bots["btc-a-binance"] == before and not kube.patches[1:]
    assert resumed["btc-a-binance"].left_halted == (
        "no fleet stop of tradefleet.io/team=a holds it; still held by the fleet stop of "
        "tradefleet.io/venue=binance: binance outage"
    )
    assert _report_line("resume", resumed["btc-a-binance"]).startswith("left halted (no fleet")


def test_the_resume_finds_the_stop_made_with_the_same_selector_however_spelled() -> None:
    assert canonical_selector("b=2, a=1,x in (q, p)") == canonical_selector("x in (p,q),a=1,b=2")
    kube = FakeKube([_bot("bot", {"a": "1", "b": "2"})])
    _stop(kube, "a=1,b=2", "drill")
    assert _resume(kube, "b = 2 , a=1")["bot"].resumed
    assert _stop_of(kube, "bot") is None


def test_own_stop_and_two_fleet_stops_each_named_and_given_back_in_turn() -> None:
    kube = FakeKube([_bot("btc", BOTH_LABELS, OWN)])
    _stop(kube, BINANCE, "outage")
    _stop(kube, TEAM_A, "bug")
    assert _stop_of(kube, "btc")["reason"] == (
        f"{OWN['reason']}; fleet stop: outage; fleet stop: bug"
    )
    first = _resume(kube, BINANCE)["btc"]
    assert _stop_of(kube, "btc")["reason"] == f"{OWN['reason']}; fleet stop: bug"
    assert first.left_halted == (
        f"still held by the fleet stop of {TEAM_A}: bug; and by its own stop from before the "
        f"fleet stop: {OWN['reason']}"
    )
    last = _resume(kube, TEAM_A)["btc"]
    assert _stop_of(kube, "btc") == OWN  # its own reason only
    assert last.left_halted == f"halted before the fleet stop: {OWN['reason']}"
    assert _record(kube, "btc") is None


def test_the_spec_stop_of_a_bot_with_its_own_stop_names_the_fleet_stop() -> None:
    """Its owner, who sees only the spec, must not take the stop for their own alone."""
    kube = FakeKube([_bot("btc-live", {"tradefleet.io/team": "a"}, OWN)])
    _stop(kube, TEAM_A, "exchange incident: all of team a stops")
    stop = _stop_of(kube, "btc-live")
    assert stop["reason"] == f"{OWN['reason']}; fleet stop: exchange incident: all of team a stops"


def test_the_spec_stop_reason_stays_within_the_crd_limit() -> None:
    long = {"reason": "x" * MAX_REASON_CHARS, "flatten": False}
    kube = FakeKube([_bot("btc", {"tradefleet.io/team": "a"}, long)])
    _stop(kube, TEAM_A, "y" * 300)
    reason = _stop_of(kube, "btc")["reason"]
    assert len(reason) == MAX_REASON_CHARS and reason.endswith("…")
    _resume(kube, TEAM_A)
    assert _stop_of(kube, "btc") == long


def test_a_fleet_resume_never_lifts_the_stop_of_a_degraded_bot() -> None:
    kube = FakeKube([_bot("btc-live", {"tradefleet.io/team": "a"})])
    _stop(kube, TEAM_A, "desk drill")
    kube.bots["btc-live"]["status"] = {
        "phase": "Degraded",
        "conditions": [{"type": "Reconciled", "status": "False", "reason": "PositionDrift"}],
    }
    before = copy.deepcopy(kube.bots["btc-live"])

    resumed = _resume(kube, TEAM_A)["btc-live"]

    assert kube.bots["btc-live"] == before  # the spec stop and its record stay
    assert not resumed.resumed
    assert resumed.left_halted.startswith("Degraded: PositionDrift; a fleet resume never")
    assert "tradefleet resume btc-live.team-a.svc:" in resumed.left_halted
    assert "docs/operations.md#tradefleetbotdegraded" in resumed.left_halted
    # A person resumed it (the runtime is no longer Degraded): the next fleet resume lifts it.
    kube.bots["btc-live"]["status"] = {"phase": "Halted"}
    assert _resume(kube, TEAM_A)["btc-live"].resumed
    assert _stop_of(kube, "btc-live") is None


def test_a_degraded_bot_another_stop_holds_gets_the_lifted_stop_off_its_spec() -> None:
    kube = FakeKube([_bot("btc", BOTH_LABELS)])
    _stop(kube, BINANCE, "outage")
    _stop(kube, TEAM_A, "bug")
    kube.bots["btc"]["status"] = {"phase": "Degraded"}
    assert (
        "the fleet stop of tradefleet.io/venue=binance" in _resume(kube, TEAM_A)["btc"].left_halted
    )
    assert _stop_of(kube, "btc")["reason"] == "outage"


FIRST_FORMAT = {"stop": {"reason": "old drill", "flatten": False}, "own": None}


def test_a_record_of_the_first_format_is_read_and_its_stop_never_lifted() -> None:
    """18be13c recorded one stop and no selector: which fleet stop(s) it stands for is not
    known, so the bot stays halted and the report says how to lift it."""
    bot = _bot("btc", {"tradefleet.io/team": "a"}, FIRST_FORMAT["stop"])
    bot["metadata"]["annotations"] = {FLEET_STOP_ANNOTATION: json.dumps(FIRST_FORMAT)}
    kube = FakeKube([bot])
    resumed = _resume(kube, TEAM_A)["btc"]
    assert _stop_of(kube, "btc") == FIRST_FORMAT["stop"] and not resumed.resumed
    assert resumed.left_halted == (
        "no fleet stop of tradefleet.io/team=a holds it; still held by a fleet stop recorded "
        "without its selector (by an older tradefleet), which no fleet resume lifts: old drill"
    )
    # A new fleet stop keeps it; lifting the new one leaves the old one holding the bot.
    _stop(kube, TEAM_A, "new drill")
    assert _stop_of(kube, "btc")["reason"] == "fleet stop: old drill; fleet stop: new drill"
    assert not _resume(kube, TEAM_A)["btc"].resumed
    assert _stop_of(kube, "btc")["reason"] == "old drill"


def test_a_record_it_cannot_read_leaves_the_bot_halted_and_says_so() -> None:
    bot = _bot("btc", {"tradefleet.io/team": "a"}, {"reason": "drill", "flatten": False})
    record = {"version": 3, "written": {"reason": "drill"}, "own": None, "stops": []}
    bot["metadata"]["annotations"] = {FLEET_STOP_ANNOTATION: json.dumps(record)}
    kube = FakeKube([bot])
    resumed = _resume(kube, TEAM_A)["btc"]
    assert _stop_of(kube, "btc") is not None and not resumed.resumed
    assert "record is unreadable" in resumed.left_halted


def _snapshot(halted: bool, reason: str) -> bytes:
    return pb.StatusSnapshot(
        bot="b",
        phase=pb.PHASE_HALTED if halted else pb.PHASE_RUNNING,
        equity=1234.5,
        halted=halted,
        halt_reason=reason,
        pause_reason="p",
        plugins=[pb.PluginInfo(kind="k", name="n", version="1")],
        quality=[pb.QualityFigure(name="q", cp=1.0)],
        last_bar_ts=1_700_000_000_000,
    ).SerializeToString()


def test_the_halt_reason_is_read_from_the_direct_answer_without_protobuf() -> None:
    assert status_halt_reason(_snapshot(True, "alice: venue looks wrong")) == (
        "alice: venue looks wrong"
    )
    assert status_halt_reason(_snapshot(False, "")) == ""
    assert status_halt_reason(_snapshot(True, "x")[:-1]) == ""  # cut short: unreadable
    assert status_halt_reason(b"\xff\xff") == "" and status_halt_reason(None) == ""


def test_a_runtime_halt_found_by_the_direct_call_is_kept_as_the_bots_own_stop() -> None:
    bot = _bot("btc", {"tradefleet.io/team": "a"})
    step = stop_patch(bot, "desk drill", False, TEAM_A, runtime_halt="alice: checking fills")
    assert step.adopted == "alice: checking fills" and step.own == "alice: checking fills"
    assert step.patch["spec"]["emergencyStop"]["reason"] == (
        "alice: checking fills; fleet stop: desk drill"
    )
    # Its own halts are no person's: the fleet's reason, as such or restored after a restart.
    for own in ("desk drill", "restored after restart (emergency stop by operator: desk drill)"):
        assert stop_patch(bot, "desk drill", False, TEAM_A, runtime_halt=own).adopted == ""
    # Another fleet stop's reason (the runtime keeps the first) is no person's either.
    kube = FakeKube([_bot("btc", BOTH_LABELS)])
    _stop(kube, BINANCE, "outage")
    seen = kube.bots["btc"]
    assert stop_patch(seen, "bug", False, TEAM_A, runtime_halt="outage").adopted == ""


class _Runtime:
    """``EmergencyStop`` as the runtime answers it: the first reason stays (bytes in, out)."""

    def __init__(self, halt_reason: str = "", delay: float = 0.0) -> None:
        self.halt_reason = halt_reason
        self.delay = delay
        self.server = grpc.server(thread_pool=_pool())
        handler = grpc.method_handlers_generic_handler(
            "tradefleet.v1.RuntimeService",
            {"EmergencyStop": grpc.unary_unary_rpc_method_handler(self._stop)},
        )
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def _stop(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        threading.Event().wait(self.delay)
        self.halt_reason = self.halt_reason or pb.EmergencyStopRequest.FromString(request).reason
        return _snapshot(True, self.halt_reason)


def _pool() -> Any:
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=2)


class _KubeWithSecrets(FakeKube):
    def get(self, path: str) -> dict[str, Any] | None:
        if "/secrets/" in path:
            token = base64.b64encode(b"t").decode()
            return {"data": {CONTROL_TOKEN_FILE: token, READ_TOKEN_FILE: token}}
        return super().get(path)


@pytest.fixture(params=[0.0, 0.5], ids=["answered-first", "answered-after-the-patch"])
def halted_by_a_person(request: pytest.FixtureRequest) -> Iterator[_Runtime]:
    runtime = _Runtime("alice: checking fills", delay=request.param)
    runtime.server.start()
    yield runtime
    runtime.server.stop(None)


def test_a_halt_a_person_gave_the_runtime_outlives_the_fleet_resume(
    halted_by_a_person: _Runtime,
) -> None:
    bot = _bot("btc", {"tradefleet.io/team": "a"})
    address = f"127.0.0.1:{halted_by_a_person.port}"
    bot["metadata"]["annotations"] = {"tradefleet.io/runtime-address": address}
    kube = _KubeWithSecrets([bot])

    stopped = _stop(kube, TEAM_A, "desk drill", direct=True, settle=0.2)["btc"]

    assert stopped.path == ("direct" if not halted_by_a_person.delay else "direct-or-operator")
    assert stopped.runtime_halt == "alice: checking fills", stopped
    assert "kept as its own stop" in _report_line("stop", stopped)
    assert _stop_of(kube, "btc")["reason"] == "alice: checking fills; fleet stop: desk drill"
    resumed = _resume(kube, TEAM_A)["btc"]
    assert not resumed.resumed
    assert resumed.left_halted == "halted before the fleet stop: alice: checking fills"
    assert _stop_of(kube, "btc") == {"reason": "alice: checking fills", "flatten": False}


def test_a_runtime_the_fleet_stop_halted_itself_is_resumed() -> None:
    runtime = _Runtime()
    runtime.server.start()
    try:
        bot = _bot("btc", {"tradefleet.io/team": "a"})
        address = f"127.0.0.1:{runtime.port}"
        bot["metadata"]["annotations"] = {"tradefleet.io/runtime-address": address}
        kube = _KubeWithSecrets([bot])
        stopped = _stop(kube, TEAM_A, "desk  drill", direct=True)["btc"]
    finally:
        runtime.server.stop(None)
    assert stopped.path == "direct" and stopped.runtime_halt == ""
    assert _resume(kube, TEAM_A)["btc"].resumed


def test_spec_stop_is_the_lone_fleet_reason_or_every_reason_named() -> None:
    from tradefleet_operator.fleet import FleetStop

    one = FleetStop(TEAM_A, "drill", True)
    assert spec_stop(None, [one]) == {"reason": "drill", "flatten": True}
    assert spec_stop(OWN, [one]) == {
        "reason": f"{OWN['reason']}; fleet stop: drill",
        "flatten": True,
    }


# --- the runtime's halt as the bot's status shows it, and the fleet's own reasons -------------

TIER = "tradefleet.io/tier=gold"
THREE_LABELS = {**BOTH_LABELS, "tradefleet.io/tier": "gold"}
ALICE = "alice: checking fills"


def _halted_status(reason: str, applied: str | None = None) -> dict[str, Any]:
    """``.status`` as the operator writes it from a halted runtime (``status_mapping``), with
    ``control.applied`` when the operator halted it for a spec stop."""
    status: dict[str, Any] = {"phase": "Halted", "halted": True, "haltReason": reason}
    if applied is not None:
        status["control"] = {"applied": applied, "generation": 1}
    return status


@pytest.mark.parametrize("direct", [False, True], ids=["no-direct", "direct-call-refused"])
def test_a_runtime_halt_the_status_shows_is_kept_as_the_bots_own_stop(direct: bool) -> None:
    """No direct answer (``--no-direct``, or no api-token Secret: the call is never made): the
    bot's status says its runtime is halted for a reason no spec or fleet stop gave."""
    bot = _bot("btc", {"tradefleet.io/team": "a"})
    bot["status"] = _halted_status(ALICE)
    kube = FakeKube([bot])

    stopped = _stop(kube, TEAM_A, "desk drill", direct=direct)["btc"]

    assert (stopped.runtime_halt, stopped.runtime_halt_seen) == (ALICE, SEEN_STATUS)
    assert _report_line("stop", stopped).endswith(
        f"; its runtime was already halted ({ALICE}, per its status.haltReason): kept as its "
        "own stop, which the fleet resume leaves"
    )
    assert _stop_of(kube, "btc")["reason"] == f"{ALICE}; fleet stop: desk drill"
    resumed = _resume(kube, TEAM_A)["btc"]
    assert not resumed.resumed
    assert resumed.left_halted == f"halted before the fleet stop: {ALICE}"
    assert _stop_of(kube, "btc") == {"reason": ALICE, "flatten": False}


def test_a_direct_answer_is_read_before_the_status() -> None:
    """The runtime keeps the first reason: an answer naming the fleet's own halt says no person
    halted it, whatever an older status still shows."""
    bot = _bot("btc", {"tradefleet.io/team": "a"})
    bot["status"] = _halted_status(ALICE)
    assert stop_patch(bot, "desk drill", False, TEAM_A, runtime_halt="desk drill").adopted == ""
    step = stop_patch(bot, "desk drill", False, TEAM_A)
    assert (step.adopted, step.seen_in) == (ALICE, SEEN_STATUS)
    bot["status"] = {"phase": "Running", "halted": False, "haltReason": ""}
    assert stop_patch(bot, "desk drill", False, TEAM_A).adopted == ""


def test_a_persons_halt_the_status_shows_under_a_fleet_stop_is_kept_by_the_next_one() -> None:
    """The person's halt came first (the operator's halt for the fleet stop kept its reason);
    the status showed it only after the first fleet stop: the next one records it."""
    kube = FakeKube([_bot("btc", BOTH_LABELS)])
    _stop(kube, BINANCE, "outage")
    kube.bots["btc"]["status"] = _halted_status(ALICE, applied="Halted")

    stopped = _stop(kube, TEAM_A, "bug")["btc"]

    assert stopped.runtime_halt == ALICE
    assert _stop_of(kube, "btc")["reason"] == (f"{ALICE}; fleet stop: outage; fleet stop: bug")
    _resume(kube, BINANCE)
    assert not _resume(kube, TEAM_A)["btc"].resumed
    assert _stop_of(kube, "btc") == {"reason": ALICE, "flatten": False}


def test_the_status_of_a_fleet_halt_not_lifted_yet_is_not_taken_for_a_persons() -> None:
    """Right after a fleet resume the status still shows the halt the operator applied for the
    removed spec stop (``control.applied`` Halted, its resume not written yet); that stop's
    record is gone, so only the status's own fields tell it apart."""
    kube = FakeKube([_bot("btc", {"tradefleet.io/team": "a"})])
    _stop(kube, TEAM_A, "desk drill")
    kube.bots["btc"]["status"] = _halted_status("desk drill", applied="Halted")
    assert _resume(kube, TEAM_A)["btc"].resumed and _record(kube, "btc") is None

    again = _stop(kube, TEAM_A, "second drill")["btc"]

    assert again.runtime_halt == ""
    assert _stop_of(kube, "btc") == {"reason": "second drill", "flatten": False}
    assert _resume(kube, TEAM_A)["btc"].resumed


def test_the_fleets_own_reason_cut_to_the_crd_limit_is_not_taken_for_a_persons_halt() -> None:
    long_reason = "binance outage, " + "x" * MAX_REASON_CHARS  # over the CRD's 500
    kube = FakeKube([_bot("btc", THREE_LABELS)])
    _stop(kube, BINANCE, long_reason)
    # The operator halted the runtime with the spec's reason: the cut one.
    halted_with = _stop_of(kube, "btc")["reason"]
    assert len(halted_with) == MAX_REASON_CHARS and halted_with.endswith("…")
    _stop(kube, TEAM_A, "team a strategy bug")  # the spec now names both fleet stops

    # A third fleet stop finds the runtime halted with that cut reason: by its direct call...
    step = stop_patch(kube.bots["btc"], "desk drill", False, TIER, runtime_halt=halted_with)
    assert step.adopted == "", step.adopted[:60]
    # ... or by the status (no direct answer).
    kube.bots["btc"]["status"] = _halted_status(halted_with, applied="Halted")
    assert _stop(kube, TIER, "desk drill")["btc"].runtime_halt == ""
    for selector in (BINANCE, TEAM_A):
        _resume(kube, selector)
    assert _resume(kube, TIER)["btc"].resumed and _stop_of(kube, "btc") is None


def test_the_fleets_reasons_of_a_fleet_stop_resumed_since_are_its_own() -> None:
    """The runtime keeps the first reason: the spec naming two fleet stops, or the direct
    call's reason, of a fleet stop since resumed while the other still holds the bot."""
    kube = FakeKube([_bot("btc", THREE_LABELS)])
    _stop(kube, BINANCE, "outage")
    _stop(kube, TEAM_A, "bug")
    combined = _stop_of(kube, "btc")["reason"]
    assert combined == "fleet stop: outage; fleet stop: bug"
    _resume(kube, BINANCE)
    assert _stop_of(kube, "btc")["reason"] == "bug"

    for held in (combined, "outage", f"restored after restart (emergency stop by x: {combined})"):
        step = stop_patch(kube.bots["btc"], "drill", False, TIER, runtime_halt=held)
        assert step.adopted == "", held
    assert stop_patch(kube.bots["btc"], "drill", False, TIER, runtime_halt=ALICE).adopted == ALICE


def test_a_record_without_its_earlier_reasons_still_knows_the_cut_form_of_its_stops() -> None:
    """A record written before the earlier reasons were kept: the spec stops its fleet stops
    made, as each was added, are derived from it."""
    long_reason = "binance outage, " + "x" * MAX_REASON_CHARS
    kube = FakeKube([_bot("btc", THREE_LABELS)])
    _stop(kube, BINANCE, long_reason)
    halted_with = _stop_of(kube, "btc")["reason"]
    _stop(kube, TEAM_A, "team a strategy bug")
    annotations = kube.bots["btc"]["metadata"]["annotations"]
    record = json.loads(annotations[FLEET_STOP_ANNOTATION])
    assert record["earlier"] == [halted_with]
    del record["earlier"]
    annotations[FLEET_STOP_ANNOTATION] = json.dumps(record)

    step = stop_patch(kube.bots["btc"], "desk drill", False, TIER, runtime_halt=halted_with)

    assert step.adopted == ""


def test_the_records_earlier_reasons_are_bounded_and_must_be_text() -> None:
    kube = FakeKube([_bot("btc", {"tradefleet.io/team": "a"})])
    for number in range(MAX_EARLIER + 8):
        _stop(kube, TEAM_A, f"drill {number}")  # the same selector: each reason replaced
    earlier = _record(kube, "btc")["earlier"]
    assert len(earlier) == MAX_EARLIER and earlier[0] == "drill 0"  # the first ones kept
    assert stop_patch(kube.bots["btc"], "x", False, TEAM_A, runtime_halt="drill 0").adopted == ""

    record = _record(kube, "btc")
    record["earlier"] = [1, 2]
    kube.bots["btc"]["metadata"]["annotations"][FLEET_STOP_ANNOTATION] = json.dumps(record)
    resumed = _resume(kube, TEAM_A)["btc"]
    assert not resumed.resumed and "record is unreadable" in resumed.left_halted
