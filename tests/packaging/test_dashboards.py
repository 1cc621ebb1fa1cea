"""The chart's Grafana dashboards: structure, variables, and PromQL that parses (promtool), only
uses metrics the runtime or the operator exports, and runs on a real Prometheus scraping a real
``tradefleet serve``."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.serve_process import ROOT, ServeProcess, signal_bot_manifest
from tests.packaging.test_alerts import (
    known_metric_names,
    metric_names,
    require,
    running_prometheus,
)

DASHBOARDS = ROOT / "charts" / "tradefleet" / "files" / "dashboards"
NAMES = ("fleet-overview.json", "bot.json", "operator.json")
DATASOURCE = "${datasource}"
# Grafana's variables, as a value a test query can use.
SUBSTITUTE = {
    "$__rate_interval": "30s",
    "$__interval": "15s",
    "$__range": "1h",
    "$namespace": ".*",
    "$bot": ".*",
    "$team": ".*",
    "$strategy": ".*",
}
#: Metrics each dashboard must show (the issue's list of panels).
REQUIRED = {
    "fleet-overview.json": {
        "tradefleet_operator_bots", "tradefleet_phase", "tradefleet_equity",
        "tradefleet_pnl_today", "tradefleet_pnl", "tradefleet_drawdown_ratio",
        "tradefleet_halted", "tradefleet_risk_locked", "tradefleet_bot_info",
        "tradefleet_position_notional", "tradefleet_position_quantity",
    },
    "bot.json": {
        "tradefleet_equity", "tradefleet_open_positions", "tradefleet_orders_total",
        "tradefleet_fills_total", "tradefleet_slippage_bps_bucket",
        "tradefleet_risk_decisions_total", "tradefleet_bar_to_order_seconds_bucket",
        "tradefleet_webhook_requests_total", "tradefleet_quality_cp", "tradefleet_quality_cpk",
        "tradefleet_fees_total", "tradefleet_position_quantity", "tradefleet_position_notional",
    },
    "operator.json": {
        "tradefleet_operator_reconciles_total", "tradefleet_operator_reconcile_seconds_bucket",
        "tradefleet_operator_bots",
    },
}  # fmt: skip


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((DASHBOARDS / name).read_text()))


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return panels


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target."""
    return [
        (panel.get("title", ""), target["expr"])
        for panel in all_panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def variable_query(variable: dict[str, Any]) -> str:
    query = variable.get("query")
    return str(query.get("query", "") if isinstance(query, dict) else query or "")


def variable_metric_expr(variable: dict[str, Any]) -> str:
    """The series selector of a ``label_values(SELECTOR, label)`` variable query."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", variable_query(variable))
    assert match, variable
    return match.group(1)


def substitute(expr: str) -> str:
    for variable, value in SUBSTITUTE.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


@pytest.mark.parametrize("name", NAMES)
def test_dashboard_structure(name: str) -> None:
    dashboard = load(name)
    assert dashboard["schemaVersion"] >= 38
    assert dashboard["title"].startswith("tradefleet")
    assert "tradefleet" in dashboard["tags"]
    panels = all_panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {name}"
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])
        }
        assert not occupied & cells, f"{name}: panel {panel['title']!r} overlaps another"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel.get("title") and panel.get("description"), panel.get("title")
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE}


def test_dashboard_uids_are_unique() -> None:
    uids = [load(name)["uid"] for name in NAMES]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("name", NAMES)
def test_dashboard_variables(name: str) -> None:
    variables = {v["name"]: v for v in load(name)["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    for key in ("namespace", "bot"):
        variable = variables[key]
        assert variable["type"] == "query", key
        assert variable["datasource"] == {"type": "prometheus", "uid": DATASOURCE}, key
        assert variable["includeAll"] and variable["allValue"] == ".*", key
        assert variable_query(variable).endswith(f", {key})"), key


@pytest.mark.parametrize("name", NAMES)
def test_every_metric_in_a_dashboard_exists(name: str) -> None:
    dashboard = load(name)
    known = known_metric_names()
    used: set[str] = set()
    for title, expr in expressions(dashboard):
        names = metric_names(expr)
        assert names, (title, expr)
        missing = names - known
        assert not missing, f"{name}: panel {title!r} uses unknown metrics {sorted(missing)}"
        used |= names
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            names = metric_names(variable_metric_expr(variable))
            assert names and names <= known, (variable["name"], names)
    assert REQUIRED[name] <= used, f"{name} lacks {sorted(REQUIRED[name] - used)}"


def test_every_dashboard_expression_parses(tmp_path: Path) -> None:
    """promtool parses each expression (variables replaced) as a recording rule."""
    promtool = require("promtool")
    rules = []
    for name in NAMES:
        dashboard = load(name)
        queries = [expr for _, expr in expressions(dashboard)]
        queries += [
            variable_metric_expr(v) for v in dashboard["templating"]["list"] if v["type"] == "query"
        ]
        rules += [
            {"record": f"dashboard:{name.removesuffix('.json').replace('-', '_')}:{i}", "expr": q}
            for i, q in enumerate(substitute(q) for q in queries)
        ]
    path = tmp_path / "dashboard-exprs.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_dashboard_queries_run_on_a_real_prometheus(tmp_path: Path) -> None:
    """Every panel query runs without error against a real Prometheus scraping a real bot, and
    the account panels show the bot."""
    require("prometheus")
    serve = ServeProcess(tmp_path, signal_bot_manifest(), speed=3600).start()
    try:
        with running_prometheus(tmp_path / "prometheus", [f"127.0.0.1:{serve.http_port}"]) as prom:
            prom.wait("the bot scraped twice", lambda: prom.query("count_over_time(up[1m]) > 1"))
            shown: set[str] = set()
            for name in NAMES:
                for title, expr in expressions(load(name)):
                    if prom.query(substitute(expr)):  # raises on an error answer
                        shown.add(f"{name}: {title}")
                for variable in load(name)["templating"]["list"]:
                    if variable["type"] == "query":
                        prom.query(substitute(variable_metric_expr(variable)))
            expected = {
                "fleet-overview.json: Equity by bot",
                "fleet-overview.json: Bots by phase (runtimes)",
                "fleet-overview.json: Drawdown by bot",
                "fleet-overview.json: Fleet equity",
                "fleet-overview.json: Equity by team",
                "fleet-overview.json: Net exposure by symbol",
                "fleet-overview.json: Bots by team and strategy",
                "bot.json: Equity and balance",
                "bot.json: Positions and working orders",
                "bot.json: Risk locks",
                "bot.json: Quality means",
                "bot.json: Notional by symbol",
            }
            assert expected <= shown, sorted(expected - shown)
            bots = prom.query(substitute(variable_metric_expr(_variable(load("bot.json"), "bot"))))
            assert {s["metric"].get("bot") for s in bots} == {"signal-bot"}
            # Issue 18, item 5: money per currency, and the desk's join finds the bot's team.
            fleet = {title: expr for title, expr in expressions(load("fleet-overview.json"))}
            (equity,) = prom.query(substitute(fleet["Fleet equity"]))
            assert equity["metric"] == {"currency": "USD"}
            (team,) = prom.query(substitute(fleet["Equity by team"]))
            assert team["metric"] == {"team": "unassigned", "currency": "USD"}
    finally:
        serve.kill()


def _variable(dashboard: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in dashboard["templating"]["list"] if v["name"] == name)
