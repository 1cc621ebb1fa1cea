"""``tradefleet fleet stop`` / ``fleet resume`` lift only the stop the fleet set.

A bot a person halted for its own reason (``spec.emergencyStop``) before a fleet stop keeps that
stop through the fleet stop (its spec names both: ``"<own reason>; fleet stop: <reason>"``, so
its owner never takes it for their stop alone) and gets it back alone after the fleet resume,
which names it among the bots it left halted. What the fleet stop set is recorded on the object
itself (the
``tradefleet.io/fleet-stop`` annotation), so the resume needs no memory of the stop: a new
process, after an operator restart, reads it back. A stop the fleet did not write (never marked,
or changed since) is never lifted, and a stop set by a person while the fleet command was
between reading and writing a bot is not overwritten (the patch carries the bot's
``resourceVersion``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

from tradefleet_operator.fleet import (
    FLEET_STOP_ANNOTATION,
    FleetResult,
    _report_line,
    bots_path,
    resume_fleet,
    stop_fleet,
)
from tradefleet_operator.kube_light import LightKubeError

NS = "team-a"
SELECTOR = "tradefleet.io/team=a"
OWN = {"reason": "venue fills look wrong, investigating", "flatten": False}
#: The spec stop of a bot with its own stop while the fleet stop ("desk drill") holds it too.
BOTH = {"reason": "venue fills look wrong, investigating; fleet stop: desk drill", "flatten": False}


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """RFC 7386 JSON merge patch, as the API server applies ``application/merge-patch+json``."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class FakeKube:
    """The three calls the fleet command makes, on TradingBots kept in memory. With
    ``versions``, each bot has a ``resourceVersion`` and a patch naming an older one is
    answered 409, as the API server does; ``before_patch`` runs before each patch is applied
    (another writer acting between the command's read and its write)."""

    def __init__(self, bots: list[dict[str, Any]], *, versions: bool = False) -> None:
        self.bots = {bot["metadata"]["name"]: bot for bot in bots}
        self.versions = versions
        self.patches: list[Mapping[str, Any]] = []
        self.before_patch: Callable[[str], None] | None = None
        if versions:
            for bot in bots:
                bot["metadata"]["resourceVersion"] = "1"

    def list(self, path: str, selector: str = "") -> list[dict[str, Any]]:
        return [copy.deepcopy(bot) for bot in self.bots.values()]

    def get(self, path: str) -> dict[str, Any] | None:
        name = path.rsplit("/", 1)[1]
        if path == bots_path(NS, name) and name in self.bots:
            return copy.deepcopy(self.bots[name])
        return None  # no api-token Secret: the spec path only

    def merge_patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        name = path.rsplit("/", 1)[1]
        assert path == bots_path(NS, name)
        if self.before_patch is not None:
            self.before_patch(name)
        bot = self.bots[name]
        sent = (patch.get("metadata") or {}).get("resourceVersion")
        if sent is not None and sent != bot["metadata"].get("resourceVersion"):
            raise LightKubeError(409, "Conflict", "the object has been modified")
        self.patches.append(copy.deepcopy(patch))
        _merge(bot, patch)
        self.bump(name)
        return copy.deepcopy(bot)

    def bump(self, name: str) -> None:
        if self.versions:
            meta = self.bots[name]["metadata"]
            meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)


def _bot(name: str, stop: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"mode": "live"}
    if stop is not None:
        spec["emergencyStop"] = copy.deepcopy(stop)
    return {
        "metadata": {"name": name, "namespace": NS, "labels": {"tradefleet.io/team": "a"}},
        "spec": spec,
    }


def _stop(kube: FakeKube, reason: str = "desk drill", flatten: bool = False) -> list[FleetResult]:
    results = stop_fleet(
        kube,  # type: ignore[arg-type]
        selector=SELECTOR, namespace=NS, reason=reason, flatten=flatten, direct=False,
    )  # fmt: skip
    assert all(not result.error for result in results), results
    return results


def _resume(kube: FakeKube, selector: str = SELECTOR) -> dict[str, FleetResult]:
    """``fleet resume --selector selector`` with no error: its results by bot."""
    results = resume_fleet(kube, selector=selector, namespace=NS)  # type: ignore[arg-type]
    assert all(not result.error for result in results), results
    return {result.name: result for result in results}


def _stop_of(kube: FakeKube, name: str) -> Any:
    return kube.bots[name]["spec"].get("emergencyStop")


def _marked(kube: FakeKube, name: str) -> bool:
    return FLEET_STOP_ANNOTATION in (kube.bots[name]["metadata"].get("annotations") or {})


def test_fleet_resume_keeps_the_halt_a_person_gave_one_bot_before_the_fleet_stop() -> None:
    kube = FakeKube([_bot("btc-live", OWN), _bot("eth-paper")])
    _stop(kube)
    resumed = _resume(kube)

    # The drill's bot runs again; the bot halted for its own reason is still halted, by it.
    assert _stop_of(kube, "eth-paper") is None
    assert _stop_of(kube, "btc-live") == OWN, kube.bots["btc-live"]
    assert not _marked(kube, "btc-live") and not _marked(kube, "eth-paper")
    # ... and the resume says so, naming the earlier reason.
    assert resumed["eth-paper"].resumed and not resumed["eth-paper"].left_halted
    assert not resumed["btc-live"].resumed
    assert resumed["btc-live"].left_halted == (
        "halted before the fleet stop: venue fills look wrong, investigating"
    )
    line = _report_line("resume", resumed["btc-live"])
    assert (
        line == "left halted (halted before the fleet stop: venue fills look wrong, investigating)"
    )


def test_the_spec_names_the_earlier_stop_and_the_fleet_stop_while_both_hold() -> None:
    kube = FakeKube([_bot("btc-live", OWN), _bot("eth-paper")])
    results = {result.name: result for result in _stop(kube)}

    # The own reason first (not overwritten by the fleet's), then the fleet stop's.
    assert _stop_of(kube, "btc-live") == BOTH
    assert _stop_of(kube, "eth-paper") == {"reason": "desk drill", "flatten": False}
    assert results["btc-live"].own_stop == OWN["reason"]
    assert results["eth-paper"].own_stop == ""
    assert _report_line("stop", results["btc-live"]).endswith(
        "; its own stop stays in the spec: venue fills look wrong, investigating"
    )
    mark = json.loads(kube.bots["btc-live"]["metadata"]["annotations"][FLEET_STOP_ANNOTATION])
    assert mark == {
        "version": 2,
        "written": BOTH,
        "own": OWN,
        "stops": [{"selector": SELECTOR, "reason": "desk drill", "flatten": False}],
    }


def test_the_resume_reads_the_fleet_stop_back_from_the_objects_alone() -> None:
    """An operator restart (or the resume run from another machine): only the objects carry
    what the fleet stop set."""
    kube = FakeKube([_bot("btc-live", OWN), _bot("eth-paper")])
    _stop(kube)
    stored = json.loads(json.dumps(list(kube.bots.values())))
    later = FakeKube(stored)
    resumed = _resume(later)
    assert _stop_of(later, "btc-live") == OWN and _stop_of(later, "eth-paper") is None
    assert resumed["eth-paper"].resumed and resumed["btc-live"].left_halted


def test_a_flatten_the_fleet_adds_to_an_own_stop_is_taken_back_by_its_resume() -> None:
    kube = FakeKube([_bot("btc-live", OWN)])
    _stop(kube, flatten=True)
    assert _stop_of(kube, "btc-live") == {**BOTH, "flatten": True}
    _resume(kube)
    assert _stop_of(kube, "btc-live") == OWN


def test_a_second_fleet_stop_keeps_the_own_stop_the_first_one_found() -> None:
    kube = FakeKube([_bot("btc-live", OWN), _bot("eth-paper")])
    _stop(kube, reason="drill one")
    _stop(kube, reason="drill two", flatten=True)
    assert _stop_of(kube, "eth-paper") == {"reason": "drill two", "flatten": True}
    _resume(kube)
    assert _stop_of(kube, "btc-live") == OWN
    assert _stop_of(kube, "eth-paper") is None


def test_a_stop_the_fleet_did_not_write_is_never_lifted() -> None:
    """Never marked (a person's, or written by a fleet command from before the mark), or a
    fleet stop a person replaced with their own since: the bot stays halted, by that stop."""
    replaced = {"reason": "now a real incident", "flatten": True}
    kube = FakeKube([_bot("btc-live", OWN), _bot("eth-paper"), _bot("sol-live")])
    _stop(kube)
    kube.bots["eth-paper"]["spec"]["emergencyStop"] = copy.deepcopy(replaced)
    del kube.bots["btc-live"]["metadata"]["annotations"]
    kube.bots["sol-live"]["spec"].pop("emergencyStop")  # a person resumed it meanwhile
    resumed = _resume(kube)

    assert _stop_of(kube, "eth-paper") == replaced
    assert resumed["eth-paper"].left_halted == (
        "its stop changed since the fleet stop: now a real incident"
    )
    assert not _marked(kube, "eth-paper")  # the stop in force is no longer the fleet's
    assert _stop_of(kube, "btc-live") == BOTH  # its record gone: the stop in force stays
    assert resumed["btc-live"].left_halted == (
        "its stop is not a fleet stop's: venue fills look wrong, investigating; fleet stop: "
        "desk drill"
    )
    assert _stop_of(kube, "sol-live") is None and not resumed["sol-live"].left_halted
    assert not resumed["sol-live"].resumed and resumed["sol-live"].note
    assert not _marked(kube, "sol-live")
    assert not any(result.resumed for result in resumed.values())


def test_a_stop_a_person_sets_while_the_fleet_stops_is_kept() -> None:
    """The fleet read the bot without a stop; a person halts it before the fleet's patch
    lands. The patch names the version read: 409, read again, the person's stop is kept."""
    kube = FakeKube([_bot("btc-live")], versions=True)

    def person_halts(name: str) -> None:
        if not kube.patches and _stop_of(kube, name) is None:
            kube.bots[name]["spec"]["emergencyStop"] = copy.deepcopy(OWN)
            kube.bump(name)

    kube.before_patch = person_halts
    results = _stop(kube)
    assert results[0].own_stop == OWN["reason"]
    assert _stop_of(kube, "btc-live") == BOTH
    kube.before_patch = None
    _resume(kube)
    assert _stop_of(kube, "btc-live") == OWN


def test_a_failed_resume_patch_is_reported_without_the_stop_paths() -> None:
    failed = FleetResult(NS, "btc-live", error="403 Forbidden: no")
    assert _report_line("resume", failed) == (
        "FAILED to patch the spec (403 Forbidden: no): its stop is unchanged"
    )
