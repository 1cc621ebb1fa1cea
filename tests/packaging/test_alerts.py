"""The chart's Prometheus alerts: promtool checks, unit-test coverage, metric names, and a real
Prometheus that scrapes a real ``tradefleet serve`` and fires an alert.

``promtool`` and ``prometheus`` come from Debian's ``prometheus`` package (``make prometheus``
runs ``tools/install_prometheus.sh``). When they are missing these tests fail, never skip: CI runs
``make test`` and must not pass silently without them.

The real-Prometheus test loads a copy of ``alerts.yaml`` whose rules have no ``for:`` (every
other field identical, which the test checks), so that an alert fires on the first evaluation
after its condition holds; ``for:`` itself is covered by the promtool unit tests.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.serve_process import ROOT, ServeProcess, control, signal_bot_manifest
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

ALERTS = ROOT / "charts" / "tradefleet" / "files" / "alerts.yaml"
ALERT_TESTS = ROOT / "tests" / "packaging" / "alerts" / "alerts_test.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"
INSTALL_HINT = "run `make prometheus` (tools/install_prometheus.sh installs Debian's `prometheus`)"
SEVERITIES = {"critical", "warning", "info"}
BOT_JOB = "tradefleet-bots"

# --- shared helpers (test_dashboards.py uses them too) ------------------------------------------


def require(tool: str) -> str:
    """The path of ``tool`` on PATH; fails (does not skip) the test when it is missing."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"`{tool}` is not on PATH: {INSTALL_HINT}", pytrace=False)
    return path


PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_WORD = re.compile(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (a simple lexer, not a parser): identifiers that are
    not inside label matchers, ranges or grouping clauses, not keywords and not called."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _WORD.finditer(text):
        word = match.group(0)
        if word.lower() in PROMQL_KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def _names_from_exposition(text: str) -> set[str]:
    """Every sample name a text exposition can carry, from its TYPE lines and samples."""
    names: set[str] = set()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
        "untyped": ("",),
        "info": ("_info",),
    }
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            base = name.removesuffix("_total") if kind == "counter" else name
            names.update(base + suffix for suffix in suffixes.get(kind, ("",)))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


@functools.lru_cache(maxsize=1)
def runtime_metric_names() -> frozenset[str]:
    """Sample names on the ``/metrics`` page of a real ``tradefleet serve``."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        serve = ServeProcess(Path(folder), signal_bot_manifest(), speed=36000).start()
        try:
            serve.wait_for(lambda status: status.bars >= 1)
            text = http_get(f"http://127.0.0.1:{serve.http_port}/metrics")
        finally:
            serve.kill()
    names = _names_from_exposition(text)
    assert "tradefleet_equity" in names, text[:2000]
    return frozenset(names)


@functools.lru_cache(maxsize=1)
def operator_metric_names() -> frozenset[str]:
    """Sample names the operator registers (its modules register on the default registry)."""
    from prometheus_client import REGISTRY, generate_latest

    import tradefleet_operator.metrics  # noqa: F401

    names = _names_from_exposition(generate_latest(REGISTRY).decode())
    return frozenset(n for n in names if n.startswith("tradefleet_operator_"))


def known_metric_names() -> frozenset[str]:
    """Runtime and operator metrics, plus ``up`` (Prometheus' own series per target)."""
    return runtime_metric_names() | operator_metric_names() | {"up"}


def http_get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """A Prometheus server on loopback, its HTTP API, and its log."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        answer = json.loads(http_get(f"http://127.0.0.1:{self.port}/api/v1/{path}{query}"))
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        return list(data["result"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    def wait(self, what: str, predicate: Any, timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "prometheus exited:\n" + self.log.read_text()
            try:
                last = predicate()
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                last = None
            if last:
                return last
            time.sleep(0.2)
        raise AssertionError(f"{what}: not within {timeout}s\n" + self.log.read_text()[-3000:])


@contextmanager
def running_prometheus(
    folder: Path, targets: list[str], rules: Path | None = None
) -> Iterator[Prometheus]:
    """Start ``prometheus`` scraping ``targets`` (job ``tradefleet-bots``) every second and
    evaluating ``rules`` every second; stop it however the block ends."""
    binary = require("prometheus")
    folder.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": BOT_JOB,
                "static_configs": [{"targets": targets, "labels": {"namespace": "e2e"}}],
            }
        ],
    }
    if rules is not None:
        config["rule_files"] = [str(rules)]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = folder / "prometheus.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = free_port()
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={folder / 'prometheus.yml'}",
                        f"--storage.tsdb.path={folder / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--storage.tsdb.retention.time=1h",
                        "--log.level=warn",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    cwd=folder,
                )
            prometheus = Prometheus(process, port, log)
            deadline = time.monotonic() + 20
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    http_get(f"http://127.0.0.1:{port}/-/ready", timeout=1)
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(0.1)
            if process.poll() is None:
                break
        assert process is not None and process.poll() is None, log.read_text()
        http_get(f"http://127.0.0.1:{prometheus.port}/-/ready", timeout=2)
        yield prometheus
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


# --- the rules file ------------------------------------------------------------------------


def load_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in load_rules() if "alert" in rule]


def github_anchors(markdown: str) -> set[str]:
    """Heading anchors as GitHub renders them (lowercase, punctuation dropped, spaces → -)."""
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
        anchors.update(re.findall(r'<a (?:name|id)="([^"]+)"', line))
    return anchors


def test_promtool_check_rules_accepts_the_chart_alerts() -> None:
    promtool = require("promtool")
    result = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    promtool = require("promtool")
    result = subprocess.run(
        [promtool, "test", "rules", str(ALERT_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ALERT_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_documented_labelled_and_unique() -> None:
    rules = alert_rules()
    assert len(rules) >= 12
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), names
    anchors = github_anchors(OPERATIONS.read_text())
    for rule in rules:
        name = rule["alert"]
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook", "runbook_url"):
            assert str(annotations.get(key, "")).strip(), (name, key)
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        url = annotations["runbook_url"]
        assert url.startswith("docs/operations.md#"), (name, url)
        anchor = url.split("#", 1)[1]
        assert anchor in anchors, f"{name}: docs/operations.md has no heading #{anchor}"


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    document = yaml.safe_load(ALERT_TESTS.read_text())
    assert document["rule_files"] == ["../../../charts/tradefleet/files/alerts.yaml"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in document["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
            for expected in check.get("exp_alerts") or []:
                assert set(expected.get("exp_annotations", {})) >= {
                    "summary", "description", "runbook", "runbook_url",
                }, check["alertname"]  # fmt: skip
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts without a firing case"
    assert names - quiet == set(), "alerts without a quiet case"
    assert (firing | quiet) - names == set(), "tests of alerts that do not exist"


def test_metric_names_lexer() -> None:
    expr = (
        'sum by (namespace, bot) (rate(tradefleet_orders_total{bot=~"$bot", state="open"}'
        "[$__rate_interval])) * 60 > 1e3 unless on (job) up == bool 0 or vector(0)"
        ' and histogram_quantile(0.9, sum by (le) (rate(x_bucket{a="b{c}"}[5m] offset 1h)))'
    )
    assert metric_names(expr) == {"tradefleet_orders_total", "up", "x_bucket"}


def test_every_metric_in_the_rules_exists() -> None:
    known = known_metric_names()
    used: dict[str, set[str]] = {}
    for rule in load_rules():
        names = metric_names(str(rule["expr"]))
        assert names, rule
        for name in names:
            used.setdefault(name, set()).add(rule.get("alert") or rule.get("record"))
    missing = {name: sorted(rules) for name, rules in used.items() if name not in known}
    assert not missing, f"metrics that neither the runtime nor the operator exports: {missing}"
    assert {"tradefleet_halted", "tradefleet_operator_reconciles_total", "up"} <= set(used)


# --- a real Prometheus ------------------------------------------------------------------------


def _rules_without_for(folder: Path) -> Path:
    document = yaml.safe_load(ALERTS.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("for", None)
    path = folder / "alerts-no-for.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    original = load_rules()
    copy = load_rules(path)
    assert [{k: v for k, v in r.items() if k != "for"} for r in original] == copy
    return path


def _alert(prometheus: Prometheus, name: str, state: str, **labels: str) -> dict[str, Any] | None:
    for alert in prometheus.alerts():
        if (
            alert["labels"].get("alertname") == name
            and alert["state"] == state
            and all(alert["labels"].get(k) == v for k, v in labels.items())
        ):
            return alert
    return None


@pytest.mark.slow
def test_a_real_prometheus_fires_the_chart_alerts_for_a_real_bot(tmp_path: Path) -> None:
    require("prometheus")
    started = time.monotonic()
    serve = ServeProcess(tmp_path, signal_bot_manifest(), speed=3600).start()
    try:
        target = f"127.0.0.1:{serve.http_port}"
        rules = _rules_without_for(tmp_path)
        with running_prometheus(tmp_path / "prometheus", [target], rules) as prometheus:
            prometheus.wait(
                "the bot's halted gauge scraped",
                lambda: prometheus.query('tradefleet_halted{bot="signal-bot"} == 0'),
            )
            up = prometheus.query(f'up{{job="{BOT_JOB}"}}')
            assert [s["value"][1] for s in up] == ["1"]
            groups = prometheus.api("rules")["groups"]
            loaded = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
            assert loaded == {rule["alert"] for rule in alert_rules()}
            assert _alert(prometheus, "TradefleetBotHalted", "firing") is None
            assert _alert(prometheus, "TradefleetBotDown", "firing") is None

            serve.stub().EmergencyStop(
                pb.EmergencyStopRequest(reason="prometheus e2e", actor="test"), metadata=control()
            )
            halted = prometheus.wait(
                "TradefleetBotHalted firing",
                lambda: _alert(prometheus, "TradefleetBotHalted", "firing", bot="signal-bot"),
            )
            assert halted["labels"]["severity"] == "critical"
            assert halted["labels"]["namespace"] == "e2e"
            assert halted["annotations"]["summary"] == "Bot signal-bot is halted (emergency stop)"
            assert halted["annotations"]["runbook_url"].endswith("#tradefleetbothalted")

            serve.kill()  # the bot goes away: its target is down
            down = prometheus.wait(
                "TradefleetBotDown firing",
                lambda: _alert(prometheus, "TradefleetBotDown", "firing", instance=target),
            )
            assert down["labels"]["job"] == BOT_JOB
            process = prometheus.process
        assert process.poll() is not None, "prometheus still running"
    finally:
        serve.kill()
    assert serve.process is not None and serve.process.poll() is not None
    assert time.monotonic() - started < 60
