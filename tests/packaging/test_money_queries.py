"""Issue 18, item 5: no dashboard, recording or alerting rule adds money of different currencies.

Every PromQL expression of the chart's dashboards and rules is parsed; those that read a money
series (``MONEY_SERIES``: equity, balance, P&L, fees, position notional) must keep ``currency``
through every aggregation and vector match (``tests/packaging/promql_money.py``). The negative
cases show the check failing on the queries the fleet dashboard used to have.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.packaging.promql_money import money_problems, touches_money
from tests.packaging.test_alerts import load_rules
from tests.packaging.test_dashboards import (
    NAMES,
    all_panels,
    expressions,
    load,
    substitute,
    variable_metric_expr,
)
from tradefleet_runtime.service.metrics import MONEY_SERIES

INFO = 'tradefleet_bot_info{team=~"desk.*"}'
JOIN = f"on (job, instance, bot) group_left (strategy, team) {INFO}"

KEEPS_CURRENCY = [
    "tradefleet_equity",
    "sum by (currency) (tradefleet_equity)",
    "sum by (namespace, bot, currency) (tradefleet_pnl)",
    "sum without (bot, instance) (tradefleet_balance)",
    "sum by (currency) (rate(tradefleet_fees_total[5m])) * 3600",
    f"sum by (team, currency) (tradefleet_equity * {JOIN})",
    f"sum by (symbol, currency) (abs(tradefleet_position_notional) * {JOIN})",
    "sum by (currency) (tradefleet_equity) or vector(0)",
    "-tradefleet_pnl_today / (tradefleet_equity - tradefleet_pnl_today) > 0.05",
    "tradefleet_equity * on (bot, currency) tradefleet_balance",
    "topk(3, tradefleet_pnl_today)",
    "max by (currency) (max_over_time(tradefleet_equity[1h:5m]))",
    "count(tradefleet_equity)",  # counts bots: no amount of money
    "sum(tradefleet_equity > bool 0)",  # counts too
    "sum(tradefleet_halted)",  # not money
    "sum by (team) (tradefleet_bot_info)",
    'label_replace(tradefleet_equity, "desk", "$1", "bot", "(.*)-.*")',
]

ADDS_CURRENCIES = [
    "sum(tradefleet_equity)",  # the fleet dashboard's "Fleet equity" before
    "sum by (namespace, bot) (tradefleet_pnl_today)",
    "sum without (currency) (tradefleet_equity)",
    "avg(tradefleet_balance)",
    "max by (bot) (tradefleet_pnl)",
    "quantile(0.5, tradefleet_equity)",
    "sum by (bot, symbol) (rate(tradefleet_fees_total[5m])) * 3600",
    f"sum by (team) (tradefleet_equity * {JOIN})",
    "sum by (currency) (sum by (bot) (tradefleet_equity))",  # lost inside, too late outside
    "tradefleet_equity * on (bot) tradefleet_bot_info",  # one-to-one on(bot) keeps only bot
    "tradefleet_equity - ignoring (currency) tradefleet_balance",
    'label_replace(tradefleet_equity, "currency", "ALL", "", "")',
    "scalar(sum by (currency) (tradefleet_equity))",
    "sum(abs(tradefleet_position_notional))",
]


@pytest.mark.parametrize("expr", KEEPS_CURRENCY)
def test_queries_that_keep_currency_pass(expr: str) -> None:
    assert money_problems(expr, MONEY_SERIES) == []


@pytest.mark.parametrize("expr", ADDS_CURRENCIES)
def test_queries_that_add_currencies_fail(expr: str) -> None:
    problems = money_problems(expr, MONEY_SERIES)
    assert len(problems) == 1, problems


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    queries = [(title, substitute(expr)) for title, expr in expressions(dashboard)]
    queries += [
        (f"variable {v['name']}", substitute(variable_metric_expr(v)))
        for v in dashboard["templating"]["list"]
        if v["type"] == "query"
    ]
    return queries


def money_report(queries: list[tuple[str, str]]) -> tuple[int, list[str]]:
    """(how many queries read money, the problems found in them)."""
    money = 0
    problems: list[str] = []
    for where, expr in queries:
        if touches_money(expr, MONEY_SERIES):
            money += 1
            problems += [f"{where}: {p}" for p in money_problems(expr, MONEY_SERIES)]
    return money, problems


@pytest.mark.parametrize("name", NAMES)
def test_every_dashboard_money_query_keeps_currency(name: str) -> None:
    money, problems = money_report(dashboard_queries(load(name)))
    assert not problems, "\n".join(problems)
    if name != "operator.json":
        assert money >= 5, f"{name}: only {money} money queries: is the check looking?"


def test_every_rule_money_query_keeps_currency() -> None:
    rules = [(r.get("alert") or r.get("record"), str(r["expr"])) for r in load_rules()]
    money, problems = money_report(rules)
    assert not problems, "\n".join(problems)
    assert money >= 1  # TradefleetDailyLossHigh


def test_the_check_catches_a_dashboard_that_sums_currencies() -> None:
    """The real fleet dashboard with one panel set back to its old query fails the check."""
    dashboard = copy.deepcopy(load("fleet-overview.json"))
    panel = next(p for p in all_panels(dashboard) if p.get("title") == "Fleet equity")
    panel["targets"][0]["expr"] = 'sum(tradefleet_equity{namespace=~"$namespace", bot=~"$bot"})'
    _, problems = money_report(dashboard_queries(dashboard))
    assert len(problems) == 1 and problems[0].startswith("Fleet equity: sum adds money")


def test_the_money_series_are_the_runtime_series_with_currency() -> None:
    assert {
        "tradefleet_equity", "tradefleet_balance", "tradefleet_pnl_today", "tradefleet_pnl",
        "tradefleet_fees_total", "tradefleet_position_notional",
    } <= MONEY_SERIES  # fmt: skip
    assert "tradefleet_position_quantity" not in MONEY_SERIES  # units of the symbol, not money
