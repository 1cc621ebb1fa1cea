"""A bot switched between paper and live in place is never left unable to run and unable to
be edited back: admission refuses the switch either way.

With only live to paper refused, a paper bot switched to live by mistake was admitted, its live
runtime refused the paper journal (before journaling a live run, which still holds), and the
edit back to paper was refused: the bot could only be deleted, its journal with it.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.operator.test_account_sharing import bot
from tests.runtime.test_recovery import _paper_bot
from tradefleet_operator import admission
from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.session import BotSession
from tradefleet_runtime.spec.model import Mode


def _mode_errors(body: dict, old: dict) -> list[str]:  # type: ignore[type-arg]
    registry = admission.default_registry()
    errors = admission.validate_trading_bot(body, registry, old)
    return [error.message for error in errors if error.field == "spec.mode"]


def test_a_paper_bot_switched_to_live_by_mistake_can_be_switched_back() -> None:
    paper = bot("btc-bot", ["BTC/USDT"], mode="paper")
    live = copy.deepcopy(paper)
    live["spec"]["mode"] = "live"
    live["spec"]["liveConfirmation"] = "btc-bot"
    live["metadata"]["generation"] = 2
    back = copy.deepcopy(paper)
    back["metadata"]["generation"] = 3

    to_live = _mode_errors(live, paper)
    to_paper = _mode_errors(back, live)
    # One of the two edits must be refused at admission, not the first admitted and the
    # second refused: that pair leaves a bot that neither runs nor can be edited back.
    assert to_live or not to_paper, to_paper


def test_the_live_runtime_refuses_the_paper_journal_before_journaling_a_live_run(
    tmp_path: Path,
) -> None:
    """The runtime half of the trap (holds today): after the refused live start, the journal
    still holds only paper runs, which a paper runtime continues."""
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, durable=True)
    try:
        BotSession(_paper_bot("2017-02-01"), journal).run_to_end()
    finally:
        journal.close()
    paper_bot = _paper_bot("2017-03-01")
    manifest = paper_bot.manifest
    live_spec = manifest.spec.model_copy(update={"mode": Mode.LIVE})
    live_bot = paper_bot.__class__(
        **{**paper_bot.__dict__, "manifest": manifest.model_copy(update={"spec": live_spec})}
    )
    journal = Journal(path, durable=True)
    try:
        session = BotSession(live_bot, journal)
        with pytest.raises(SpecError) as refused:
            session.open()
        assert [error.field for error in refused.value.errors] == ["spec.mode"]
        assert journal.run_modes("continued") == frozenset({"paper"})
    finally:
        journal.close()
