"""The runtime dies between placing a signal's order and journaling the signal's outcome.

``BotController.submit_signal`` journals the signal id as pending (``Journal.begin_signal``),
lets the engine journal and send the signal's order (``Engine.handle_signal``), then journals
the outcome (``Journal.record_signal``). A process killed before the last step — for a live
venue that is the whole order round trip — leaves an order at the venue and a pending row: a
retry after the restart is answered with that order, never sent again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.paper_bots import (
    SIGNALS,
    eurusd_signal,
    paper_controller,
    paper_manifest,
    short_eurusd,
    wait_for_a_bar,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.controller import BotController


class Killed(RuntimeError):
    """Stands for SIGKILL at that line: nothing after it runs."""


def _bot(journal: Journal, data: Path) -> BotController:
    return paper_controller(paper_manifest("signal-bot", SIGNALS, data), journal)


def test_a_signal_retried_after_a_kill_between_its_order_and_its_record_trades_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal is handled: its order is journaled and sent, then the runtime is killed before
    ``record_signal`` commits, so the sender got no 2xx. It retries the same signal after the
    restart, as the docs say: the restarted bot answers with the order the first run placed
    (accepted, its client order id) and places no second one."""
    data = short_eurusd(tmp_path)
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    bot = _bot(journal, data)
    bot.start()
    try:
        wait_for_a_bar(bot)

        def killed(*_args: object, **_kwargs: object) -> None:
            raise Killed("the runtime was killed here")

        monkeypatch.setattr(journal, "record_signal", killed)
        with pytest.raises(Killed):
            bot.submit_signal(eurusd_signal("default:sig-1"))
    finally:
        bot.stop()
        bot.wait(20)
        journal.close()
    monkeypatch.undo()

    journal = Journal(tmp_path / "j.sqlite", durable=True)
    sent_before = {
        str(r[0])
        for r in journal.query("SELECT client_order_id FROM orders WHERE parent_id IS NULL")
    }
    assert len(sent_before) == 1  # the order the first run placed
    restarted = _bot(journal, data)
    restarted.start()
    try:
        wait_for_a_bar(restarted)
        retry = restarted.submit_signal(eurusd_signal("default:sig-1"))
    finally:
        restarted.stop()
        restarted.wait(20)
    every_entry = {
        str(r[0])
        for r in journal.query("SELECT client_order_id FROM orders WHERE parent_id IS NULL")
    }
    journal.close()
    assert every_entry == sent_before, retry
    assert (retry.accepted, {retry.client_order_id}) == (True, sent_before), retry
