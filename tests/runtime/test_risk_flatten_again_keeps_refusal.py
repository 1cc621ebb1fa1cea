"""A second FLATTEN of a risk plugin keeps a close refused for a reason no retry changes as it
is (review R44): ``Engine._journal_before_acting`` journals the closes a flatten owes before
anything is sent, and wrote "owed" over the journaled refusal — the newest ``close_owed`` of
the symbol no longer said "refused", and a restart sent the close only a person was to decide
on. Exits' per-symbol flatten, then the breaker's tier 3, is such a pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.runtime import test_risk_flatten_owed_restart as owed
from tests.runtime.test_reconcile import SharedVenue, _bars
from tradefleet_runtime.capabilities import AccountAction, ActionKind
from tradefleet_runtime.model import ReasonCode

SYMBOL = owed.SYMBOL
RISK_TAG = owed.RISK_TAG
FLATTEN_AGAIN_AT = owed.FLATTEN_AT + 3600  # the close of bar 3


@pytest.fixture(autouse=True)
def _venue_answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    SharedVenue.account = None
    SharedVenue.reachable.set()
    owed.Closes.answer, owed.Closes.code, owed.Closes.sent = (
        "accept",
        ReasonCode.VENUE_UNAVAILABLE,
        [],
    )
    owed.Flattener.at = owed.FLATTEN_AT
    monkeypatch.setattr(SharedVenue, "submit", owed._submit)

    def twice(self: Any, ctx: Any) -> list[AccountAction]:
        # The same plugin (or a second one: exits' per-symbol flatten, then the breaker's
        # tier 3) asks to flatten again a bar later.
        if ctx.ts not in (owed.FLATTEN_AT, FLATTEN_AGAIN_AT):
            return []
        return [AccountAction(ActionKind.FLATTEN, "daily loss", None, 1.0, "tier_3")]

    monkeypatch.setattr(owed.Flattener, "account_actions", twice)
    yield


def test_a_second_flatten_keeps_the_refusal_no_retry_changes_in_the_journal(
    tmp_path: Any,
) -> None:
    bot = owed.Bot(tmp_path, owed.BuyOnce)
    owed.Closes.answer, owed.Closes.code = "refuse", ReasonCode.BELOW_MIN_QUANTITY
    bot.life(_bars(0, 5), "killed")
    assert len(owed.Closes.sent) == 1, "the second flatten sent a stuck close again in-run"
    assert bot.owed() == {SYMBOL: (RISK_TAG, "below_min_quantity")}


def test_a_restart_after_a_second_flatten_does_not_send_the_stuck_close(tmp_path: Any) -> None:
    bot = owed.Bot(tmp_path, owed.BuyOnce)
    owed.Closes.answer, owed.Closes.code = "refuse", ReasonCode.BELOW_MIN_QUANTITY
    bot.life(_bars(0, 5), "killed")
    owed.Closes.answer = "accept"  # it would go now: still, only a person decides
    bot.life(_bars(5, 3))
    assert len(owed.Closes.sent) == 1, [o.client_order_id for o in owed.Closes.sent]
