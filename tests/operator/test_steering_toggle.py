"""Quick edits of ``spec.emergencyStop``: the runtime ends as the newest spec says.

The change handler (``steering.steer``) is driven here the way kopf drives it: kopf records
the spec it handled (its diff base) once the handler succeeds and calls the handler again only
for a spec that differs from it, or after the handler asked for a retry. Every interleaving of
a few spec edits with handler calls (and with edits landing while a handler runs) must leave
the runtime halted exactly when the newest spec has a stop, and never resume from a spec that
is no longer the newest.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from tradefleet_operator import steering
from tradefleet_operator.bot_api import LiveSpec
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.control import Call
from tradefleet_operator.names import Control, Phase
from tradefleet_operator.settings import RUNTIME_ADDRESS_ANNOTATION, OperatorSettings
from tradefleet_operator.snapshot import RuntimeSnapshot
from tradefleet_operator.status_model import BotStatus, ControlStatus
from tradefleet_operator.tokens import ApiTokens
from tradefleet_runtime.spec.model import EmergencyStopSpec

Spec = str | None  # the spec's emergencyStop reason (None: no stop)


@dataclass
class World:
    """The stored TradingBot (every spec generation so far), the runtime, and kopf's memory."""

    specs: list[Spec] = field(default_factory=lambda: [None])  # generation 1: running
    halted: bool = False
    status: dict[str, Any] = field(
        default_factory=lambda: {"control": {"applied": "Running", "generation": 1}}
    )
    diffbase: Spec = None  # the spec kopf last recorded as handled
    retry: bool = False  # the last handler call asked to be retried
    resumed_from_stale_view: list[int] = field(default_factory=list)
    #: Edits that land while the next handler call runs (between its plan and its re-read).
    landing: list[Spec] = field(default_factory=list)

    @property
    def generation(self) -> int:
        return len(self.specs)


class FakeKube:
    def __init__(self, world: World) -> None:
        self.world = world

    async def get(self, path: str) -> dict[str, Any]:
        # The edits that race this handler call land before its re-read.
        self.world.specs.extend(self.world.landing)
        self.world.landing = []
        return {"metadata": {"generation": self.world.generation}}


class FakeRuntime:
    def __init__(self, world: World, view: list[int]) -> None:
        self.world = world
        self.view = view  # the generation the handler in progress was called with

    async def invoke(self, address: str, token: str, call: Call) -> RuntimeSnapshot:
        if call.method == "EmergencyStop":
            self.world.halted = True
        elif call.method == "Resume" and not call.pause_only:
            if self.view[0] != self.world.generation:
                self.world.resumed_from_stale_view.append(self.view[0])
            self.world.halted = False
        return RuntimeSnapshot(
            phase=Phase.HALTED if self.world.halted else Phase.RUNNING, halted=self.world.halted
        )


def live(spec: Spec) -> LiveSpec:
    return LiveSpec(emergency_stop=None if spec is None else EmergencyStopSpec(reason=spec))


def handle(world: World) -> None:
    """One kopf processing cycle of the newest stored TradingBot (the change handler)."""
    view = world.generation
    spec = world.specs[-1]
    if spec == world.diffbase:
        # kopf calls no handler for a spec equal to its diff base, a retry pending or not;
        # the runtime then holds what that spec asked for (a call asking for a retry did
        # nothing).
        world.retry = False
        world.specs.extend(world.landing)
        world.landing = []
        return
    body = {
        "metadata": {
            "name": "bot",
            "namespace": "ns",
            "generation": view,
            "annotations": {RUNTIME_ADDRESS_ANNOTATION: "127.0.0.1:1"},
        },
        "spec": {} if spec is None else {"emergencyStop": {"reason": spec}},
    }
    ctx = OperatorContext(
        settings=OperatorSettings(),
        kube=cast(Any, FakeKube(world)),
        runtime=cast(Any, FakeRuntime(world, [view])),
        tokens={("ns", "bot"): ApiTokens("control", "read")},
    )
    status = BotStatus.read(world.status)
    steered = asyncio.run(steering.steer(ctx, body, live(spec), status))
    world.specs.extend(world.landing)  # no re-read happened: the racing edits land now
    world.landing = []
    world.status = steered.apply(status).wire()
    world.retry = steered.pending
    if not steered.pending:
        world.diffbase = spec


@pytest.fixture(autouse=True)
def _no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steering, "event", lambda *args, **kwargs: None)


def schedules(edits: int) -> Iterator[list[tuple[str, int]]]:
    """Every order of ``edits`` spec edits and handler calls; a call may have edits land
    while it runs. Steps: ("edit", 1) or ("handle", edits landing during the call)."""

    def rest(left: int, depth: int) -> Iterator[list[tuple[str, int]]]:
        if left == 0 or depth > 2 * edits:
            yield []
            return
        for tail in rest(left - 1, depth + 1):
            yield [("edit", 1), *tail]
        for landing in range(left + 1):
            for tail in rest(left - landing, depth + 1):
                yield [("handle", landing), *tail]

    yield from rest(edits, 0)


def run(edits: list[Spec], schedule: list[tuple[str, int]]) -> World:
    world = World()
    pending = list(edits)
    for step, count in schedule:
        if step == "edit":
            world.specs.append(pending.pop(0))
        else:
            world.landing, pending = pending[:count], pending[count:]
            handle(world)
    world.specs.extend(pending)
    for _ in range(10):  # kopf keeps calling (new spec, retry) until it is handled
        handle(world)
    return world


EDITS = [
    ["t0", None, "t0", None],  # the probe's toggles: the newest spec equals an older one
    ["t0", None, "t2", None],
    [None, "t0", None, "final"],
    ["t0", "t1", None, None],
]


@pytest.mark.parametrize("edits", EDITS, ids=["-".join(map(str, e)) for e in EDITS])
def test_every_interleaving_ends_as_the_newest_spec_says(edits: list[Spec]) -> None:
    seen = 0
    for schedule in schedules(len(edits)):
        world = run(edits, schedule)
        seen += 1
        wanted = world.specs[-1] is not None
        where = f"schedule {schedule}: specs {world.specs}, status {world.status}"
        assert world.halted is wanted, where
        assert world.resumed_from_stale_view == [], where
        control = ControlStatus.model_validate(world.status["control"])
        assert control.applied is (Control.HALTED if wanted else Control.RUNNING), where
    assert seen > 100  # the enumeration did cover the interleavings


def test_the_probes_failing_order() -> None:
    """Stop removed (this handler's view), stop set and removed again while it runs: the
    handler must not succeed without resuming, or kopf never calls it again."""
    world = World(specs=[None, "t0"], halted=True)
    world.status = {"control": {"applied": "Halted", "generation": 2}}
    world.diffbase = "t0"
    world.specs.append(None)  # generation 3: stop removed
    world.landing = ["t1", None]  # generations 4 and 5 land while generation 3 is handled
    handle(world)
    assert world.halted, "a Resume from generation 3 while 5 is stored"
    assert world.retry, "the handler must be retried, not recorded as done"
    handle(world)  # kopf's retry, with generation 5's view
    assert not world.halted
    assert world.status["control"] == {"applied": "Running", "generation": 5}


@pytest.mark.parametrize(
    ("view", "stored", "gate"),
    [
        (5, 5, steering.ResumeGate.SEND),
        (5, 6, steering.ResumeGate.RETRY),  # a newer spec: retried with it, never dropped
        (5, 7, steering.ResumeGate.RETRY),
        (None, None, steering.ResumeGate.SEND),  # no generations at all: nothing to compare
        (5, None, steering.ResumeGate.RETRY),
        (5, steering.Unknown.UNREADABLE, steering.ResumeGate.RETRY),  # never resume blind
        (5, steering.Unknown.DELETED, steering.ResumeGate.GONE),  # the finalizer stops it
    ],
)
def test_resume_gate(view: int | None, stored: steering.Stored, gate: steering.ResumeGate) -> None:
    assert steering.resume_gate(view, stored) is gate


def test_a_halt_is_not_gated() -> None:
    """Setting a stop needs no re-read: a halt from an older view is never unsafe."""
    world = World()
    world.specs.append("t0")
    world.landing = [None]  # removed again while the halt goes out
    handle(world)
    assert world.halted
    assert world.status["control"]["applied"] == "Halted"
    for _ in range(3):
        handle(world)
    assert not world.halted


def test_schedules_cover_racing_edits() -> None:
    steps = list(itertools.chain.from_iterable(schedules(2)))
    assert ("handle", 2) in steps and ("edit", 1) in steps
