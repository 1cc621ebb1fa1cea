"""A reversal signal retried after a kill is answered with the order the live answer names.

``Engine.handle_signal`` answers a signal with the order it led to last (``last_order_id``): for
a reversal (``reverse_on_opposite``) the new entry, after the reduce-only close of the position.
A retry of a signal whose outcome a kill left pending is answered from the journal
(``Journal.pending_signal_order``) with that same order, the entry, not the close.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.paper_bots import (
    eurusd_signal,
    paper_controller,
    paper_manifest,
    short_eurusd,
    wait_for_a_bar,
    wait_until,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import Direction

REVERSING = {
    "name": "external-signal",
    "params": {"max_signal_age_s": 3600, "reverse_on_opposite": True},
}


class Killed(RuntimeError):
    """Stands for SIGKILL at that line."""


def test_a_reversal_retried_after_a_kill_is_answered_with_its_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = short_eurusd(tmp_path)
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    bot = paper_controller(paper_manifest("rev-bot", REVERSING, data), journal, speed=1800)
    entries_before: set[str] = set()
    bot.start()
    try:
        wait_for_a_bar(bot)
        assert bot.submit_signal(eurusd_signal("default:sig-long")).accepted
        wait_until(lambda: any(p.quantity > 0 for p in bot.list_positions()), bot)
        entries_before = {o.client_order_id for o in bot.list_orders(True) if not o.parent_id}

        def killed(*_args: object, **_kwargs: object) -> None:
            raise Killed("killed before the outcome was journaled")

        monkeypatch.setattr(journal, "record_signal", killed)
        with pytest.raises(Killed):
            bot.submit_signal(eurusd_signal("default:sig-flip", Direction.SELL))
        monkeypatch.undo()
        new = [
            o
            for o in bot.list_orders(True)
            if not o.parent_id and o.client_order_id not in entries_before
        ]
    finally:
        bot.stop()
        bot.wait(20)
        journal.close()
    closes = [o.client_order_id for o in new if o.reduce_only]
    opens = [o.client_order_id for o in new if not o.reduce_only]
    assert len(closes) == 1 and len(opens) == 1, new  # the reversal: a close, then an entry

    journal = Journal(tmp_path / "j.sqlite", durable=True)
    restarted = paper_controller(paper_manifest("rev-bot", REVERSING, data), journal)
    restarted.start()
    try:
        wait_for_a_bar(restarted)
        retry = restarted.submit_signal(eurusd_signal("default:sig-flip", Direction.SELL))
    finally:
        restarted.stop()
        restarted.wait(20)
        journal.close()
    assert retry.accepted, retry
    assert retry.client_order_id == opens[0], (
        f"answered with the close {closes[0]}, not the reversal's entry {opens[0]}: {retry}"
    )
