"""A live TradingBot edited to ``mode: paper`` is refused at admission, naming ``spec.mode``.

Admitted, the edit rolled the pod: the live runtime stopped by its stop policy, and the paper
runtime then took over the venue's account in simulation from the journal (now refused by the
runtime too, which left the bot Failed with its live positions at the venue). Paper to live is
refused the same way: the live runtime refuses the paper journal, and with only live to paper
refused a bot switched to live by mistake could neither run nor be edited back.
"""

from __future__ import annotations

import copy

from tests.operator.test_account_sharing import bot
from tradefleet_operator import admission


def test_a_live_bot_switched_to_paper_in_place_is_refused_naming_the_mode() -> None:
    registry = admission.default_registry()
    live = bot("btc-live", ["BTC/USDT"])
    assert admission.validate_trading_bot(live, registry) == []
    paper = copy.deepcopy(live)
    paper["spec"]["mode"] = "paper"
    paper["spec"].pop("liveConfirmation")
    # Offline, as a new paper bot of the ccxt broker it is admitted...
    assert "spec.mode" not in {e.field for e in admission.validate_trading_bot(paper, registry)}
    # ...but not as an edit of the live one.
    errors = admission.validate_trading_bot(paper, registry, live)
    assert [e.field for e in errors if e.field == "spec.mode"] == ["spec.mode"]
    assert "cannot become a paper bot in place" in errors[-1].message


def test_paper_to_live_is_refused_too_and_other_edits_are_left_alone() -> None:
    live = bot("btc-live", ["BTC/USDT"])
    retuned = copy.deepcopy(live)
    retuned["spec"]["strategy"]["params"]["fast"] = 10
    assert admission.mode_switch(retuned["spec"], live) == []
    paper = bot("btc-paper", ["BTC/USDT"], mode="paper")
    [refused] = admission.mode_switch(live["spec"], paper)
    assert (
        refused.field == "spec.mode" and "a paper bot cannot become a live bot" in refused.message
    )
    backtest = copy.deepcopy(paper)
    backtest["spec"]["mode"] = "backtest"
    assert admission.mode_switch(paper["spec"], backtest) == []  # backtest runs are not carried
    assert admission.mode_switch(live["spec"], None) == []  # a create
