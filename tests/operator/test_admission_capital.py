"""Admission refuses a ``spec.capital`` edit of a paper or live bot that already traded: its
journal keeps the account on the old capital, and the runtime refuses to start on other terms
(its pod failed at start before, with the reason only in the status). A bot that has handled
no bar yet takes a corrected capital (the runtime decides), and so does a backtest."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from tradefleet_operator import admission, handlers

ROOT = Path(__file__).resolve().parents[2]


def _bot(mode: str = "paper", capital: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(
        (ROOT / "examples" / "bots" / "eurusd-paper.yaml").read_text(encoding="utf-8")
    )
    body["spec"]["mode"] = mode
    body["spec"]["capital"] = capital if capital is not None else {"initial": 100_000}
    return body


def _traded(body: dict[str, Any]) -> dict[str, Any]:
    old = copy.deepcopy(body)
    old["status"] = {"phase": "Running", "lastBarTime": "2026-12-05T10:00:00Z", "equity": 1.0}
    return old


@pytest.mark.parametrize(
    "capital",
    [{"initial": 50_000}, {"currency": "EUR", "initial": 100_000}, {"currency": "eur"}],
)
def test_a_capital_edit_of_a_bot_that_traded_is_refused(capital: dict[str, Any]) -> None:
    old = _traded(_bot())
    errors = admission.capital_change(old, _bot(capital=capital))
    assert [error.field for error in errors] == ["spec.capital"]
    assert "100,000.00 USD" in errors[0].message
    with pytest.raises(kopf.AdmissionError) as refused:
        handlers.validate(kopf.Body(_bot(capital=capital)), old=kopf.Body(old))
    assert "spec.capital" in str(refused.value)


@pytest.mark.parametrize(
    ("old_capital", "new_capital"),
    [
        ({"initial": 100_000}, {"currency": "USD", "initial": 100_000.0}),  # as written
        ({}, {"currency": "usd"}),  # the defaults, spelled out
    ],
)
def test_the_same_terms_written_otherwise_pass(
    old_capital: dict[str, Any], new_capital: dict[str, Any]
) -> None:
    old = _traded(_bot(capital=old_capital))
    assert admission.capital_change(old, _bot(capital=new_capital)) == []


def test_a_bot_without_a_bar_or_a_backtest_takes_a_new_capital() -> None:
    new = _bot(capital={"initial": 5_000})
    assert admission.capital_change(_bot(), new) == []  # no status: never traded
    started = _bot()
    started["status"] = {"phase": "Failed", "equity": 100_000.0}  # refused at its first start
    assert admission.capital_change(started, new) == []
    backtest = _traded(_bot("backtest"))
    assert admission.capital_change(backtest, _bot("backtest", {"initial": 5_000})) == []
    assert admission.capital_change(None, new) == []  # a create
    handlers.validate(kopf.Body(new), old=kopf.Body(started))
