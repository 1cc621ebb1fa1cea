"""A fleet stop lifted by the operator's Resume while a Degraded stop held the bot too: the
Degraded stop is never journaled as a halt, so the start after a restart restores no halt
(the lifted one is not in force) and its reconciliation decides the Degraded stop again — an
account still drifting comes back Degraded, by the drift alone, not by the lifted stop."""

from __future__ import annotations

from pathlib import Path

from tests.plugin_hooks import registry_with
from tests.runtime.test_reconcile import (
    HOOKS,
    SharedVenue,
    _bars,
    _foreign_fill_while_down,
    _manifest,
    _run,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

_OPERATOR = "tradefleet-operator (grpc, control token, ipv4:10.0.0.7:5)"


def test_a_restart_of_a_drifting_account_after_the_lift_comes_back_degraded_alone(
    tmp_path: Path,
) -> None:
    SharedVenue.account = None
    SharedVenue.reachable.set()
    registry = registry_with(HOOKS)
    first = _run(tmp_path, registry, _bars(0, 5))
    assert first.engine is not None
    journal = Journal(tmp_path / "journal.sqlite", durable=True)
    try:  # the fleet's stop, after the first life (its journal's last word)
        journal.record_event(
            0,
            "halted",
            f"emergency stop by {_OPERATOR}: desk drill",
            {"who": _OPERATOR, "reason": "desk drill", "flatten": False, "holder": "spec"},
        )
    finally:
        journal.close()
    _foreign_fill_while_down()

    # The second life restores the fleet's halt; its reconciliation degrades the bot too.
    bot = assemble(load_manifest(_manifest(tmp_path)), registry, tmp_path)
    journal = Journal(tmp_path / "journal.sqlite", durable=True)
    try:
        session = BotSession(bot, journal, bars=_bars(6, 2))
        engine = session.open()
        assert engine.degraded_reason.startswith("reconciliation: BTCUSDT")
        assert "desk drill" in engine.halt_reason
        engine.resume(_OPERATOR, "spec asks for running")  # the fleet resume: spec stop gone
        assert engine.halted and "desk drill" not in engine.halt_reason
    finally:
        journal.close()  # killed

    third = _run(tmp_path, registry, _bars(8, 2))
    assert third.engine is not None
    assert third.engine.halted
    assert third.engine.degraded_reason.startswith("reconciliation: BTCUSDT")
    assert "desk drill" not in third.engine.halt_reason, third.engine.halt_reason
