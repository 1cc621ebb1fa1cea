"""A client reads a newer runtime's answers: an enum number it does not know (a phase or an
event kind added later) is read, not a ValueError out of ``Name`` that ends the command or
the event stream."""

from __future__ import annotations

from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.service.api import Phase
from tradefleet_runtime.service.event_kinds import EventKind
from tradefleet_runtime.service.grpc_server import event_from_proto, status_from_proto

NEWER = 99  # no release has it


def test_a_phase_this_release_does_not_know_reads_as_failed_not_a_crash() -> None:
    message = pb.StatusSnapshot(bot="b", mode="live", phase=NEWER, halted=True, halt_reason="x")
    status = status_from_proto(message)
    assert status.phase is Phase.FAILED
    assert status.halted and status.halt_reason == "x"  # the rest is read as sent
    assert status_from_proto(pb.StatusSnapshot(phase=pb.PHASE_DEGRADED)).phase is Phase.DEGRADED


def test_an_event_kind_this_release_does_not_know_is_kept_with_its_number() -> None:
    message = pb.RuntimeEvent(seq=7, ts=1, kind=NEWER, message="something new")
    event = event_from_proto(message)
    assert (event.seq, event.kind, event.message) == (7, EventKind.STATE, "something new")
    assert event.data == {"unknown_kind": NEWER}
    known = event_from_proto(pb.RuntimeEvent(seq=8, kind=pb.EVENT_KIND_FILL))
    assert known.kind is EventKind.FILL and known.data == {}
