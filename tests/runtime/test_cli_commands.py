"""The click command tree: --help at every level, exit codes (0 ok, 1 failure, 2 usage) of each
command, auth init, --fresh, plugins list/show, and the trading log of ``tradefleet run``."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tradefleet_plugins.strategies.ema_cross_params import EmaCrossParams
from tradefleet_runtime import cli
from tradefleet_runtime.cli_plugins import param_rows

ROOT = Path(__file__).resolve().parents[2]
TRADEFLEET = str(Path(sys.executable).parent / "tradefleet")
EURUSD = ROOT / "data" / "EURUSD_H1_2017.csv"


def _manifest(tmp_path: Path, mode: str = "paper", end: str = "2017-03-01") -> Path:
    path = tmp_path / f"{mode}.yaml"
    path.write_text(
        "apiVersion: tradefleet.io/v1alpha1\nkind: TradingBot\n"
        f"metadata: {{name: short-{mode}}}\n"
        f"spec:\n  mode: {mode}\n"
        "  strategy: {name: ema-cross, params: {fast: 12, slow: 48, stop_loss_pct: 0.004,"
        " take_profit_pct: 0.008}}\n"
        "  market: {symbols: [EURUSD], timeframe: 1h}\n"
        "  broker: {name: paper, params: {fee_bps: 0.2, slippage_bps: 0.3, leverage: 30}}\n"
        f"  data: {{name: csv, params: {{path: {EURUSD}, end: '{end}'}}}}\n"
        "  risk: [{name: fixed-fractional, params: {risk_per_trade: 0.005, max_leverage: 5}}]\n"
        "  capital: {currency: USD, initial: 100000}\n"
    )
    return path


def _main(*argv: str) -> int:
    return cli.main(list(argv))


HELP_PATHS = [
    [],
    ["backtest"],
    ["run"],
    ["report"],
    ["serve"],
    ["status"],
    ["stop"],
    ["reset-risk"],
    ["events"],
    ["plugins"],
    ["plugins", "list"],
    ["plugins", "show"],
    ["auth"],
    ["auth", "init"],
    ["fleet"],
    ["fleet", "stop"],
    ["fleet", "resume"],
]


@pytest.mark.parametrize("path", HELP_PATHS, ids=lambda p: " ".join(p) or "tradefleet")
def test_help_at_every_level(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(*path, "--help") == 0
    out, err = capsys.readouterr()
    assert "usage:" in out.lower(), out
    assert err == ""
    assert "``" not in out
    for module in ("tradefleet_runtime", "tradefleet_operator", "tradefleet_plugins"):
        assert module not in out


def test_the_console_script_answers_help_of_a_plugin_command() -> None:
    for argv in (["--help"], ["fleet", "--help"], ["fleet", "stop", "--help"]):
        done = subprocess.run([TRADEFLEET, *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert done.stdout.strip().splitlines()[-1] != "0"  # no stray exit code printed


def test_the_root_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main("--help") == 0
    out = capsys.readouterr().out
    for name in ("backtest", "run", "report", "serve", "status", "plugins", "auth", "fleet"):
        assert f"  {name} " in out


def _journal_garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.sqlite"
    path.write_text("not a journal")
    return path


@pytest.mark.parametrize(
    ("name", "argv", "code"),
    [
        ("unknown command", ["frobnicate"], 2),
        ("unknown option", ["--frobnicate"], 2),
        ("backtest ok", ["backtest", "{backtest}", "--json", "--journal", "{tmp}/b.sqlite"], 0),
        ("backtest usage", ["backtest"], 2),
        ("backtest no file", ["backtest", "{tmp}/nope.yaml"], 2),
        ("backtest bad manifest", ["backtest", "{bad}"], 2),
        ("backtest failure", ["backtest", "{backtest}", "--journal", "/dev/null/j.sqlite"], 1),
        ("run ok", ["run", "{paper}", "--speed", "0", "--journal", "{tmp}/r.sqlite"], 0),
        ("run usage", ["run", "{paper}", "--speed", "fast"], 2),
        ("run refuses a backtest bot", ["run", "{backtest}", "--speed", "0"], 2),
        ("run failure", ["run", "{paper}", "--speed", "0", "--journal", "/dev/null/j.sqlite"], 1),
        ("report usage", ["report"], 2),
        ("report missing", ["report", "{tmp}/nope.sqlite"], 2),
        ("report failure", ["report", "{garbage}"], 1),
        ("plugins list ok", ["plugins", "list", "--json"], 0),
        ("plugins usage", ["plugins", "frobnicate"], 2),
        ("plugins show ok", ["plugins", "show", "ema-cross", "--json"], 0),
        ("plugins show unknown", ["plugins", "show", "no-such-plugin"], 2),
        ("auth init ok", ["auth", "init", "{tmp}/auth"], 0),
        ("auth init usage", ["auth", "init"], 2),
        ("auth init failure", ["auth", "init", "/dev/null/auth"], 1),
        ("status usage", ["status"], 2),
        ("status failure", ["status", "127.0.0.1:1", "--timeout", "1"], 1),
        ("stop usage (no reason)", ["stop", "127.0.0.1:1"], 2),
        ("stop failure", ["stop", "127.0.0.1:1", "--reason", "drill", "--timeout", "1"], 1),
        ("serve usage", ["serve"], 2),
        ("serve refuses without auth", ["serve", "{paper}"], 2),
        ("fleet usage", ["fleet"], 2),
        ("fleet stop usage", ["fleet", "stop", "--reason", "x"], 2),
        (
            "fleet failure",
            ["fleet", "stop", "-l", "a=b", "--reason", "x", "--kubeconfig", "{tmp}/none"],
            1,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_exit_codes(
    name: str,
    argv: list[str],
    code: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TRADEFLEET_TOKEN", "t")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: tradefleet.io/v1alpha1\nkind: TradingBot\nmetadata: {name: b}\n")
    values = {
        "{tmp}": str(tmp_path),
        "{backtest}": str(_manifest(tmp_path, "backtest")),
        "{paper}": str(_manifest(tmp_path, "paper")),
        "{bad}": str(bad),
        "{garbage}": str(_journal_garbage(tmp_path)),
    }
    filled = []
    for arg in argv:
        for key, value in values.items():
            arg = arg.replace(key, value)
        filled.append(arg)
    assert _main(*filled) == code, capsys.readouterr()
    _, err = capsys.readouterr()
    assert "Traceback" not in err


def test_auth_init_writes_fresh_private_tokens(tmp_path: Path) -> None:
    folder = tmp_path / "auth"
    assert _main("auth", "init", str(folder)) == 0
    tokens = {name: (folder / name).read_text().strip() for name in ("control.token", "read.token")}
    assert len(set(tokens.values())) == 2
    assert all(len(token) >= 32 for token in tokens.values())
    for name in tokens:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert _main("auth", "init", str(folder)) == 1  # never overwritten by accident
    assert (folder / "control.token").read_text().strip() == tokens["control.token"]
    assert _main("auth", "init", str(folder), "--force") == 0
    assert (folder / "control.token").read_text().strip() != tokens["control.token"]


def _runs(journal: Path) -> int:
    with sqlite3.connect(journal) as db:
        return int(db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def test_fresh_asks_before_deleting_the_journal(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, "paper", end="2017-01-20")
    journal = tmp_path / "p.sqlite"
    base = [TRADEFLEET, "run", str(manifest), "--speed", "0", "--journal", str(journal)]
    assert subprocess.run(base, capture_output=True, timeout=120).returncode == 0
    assert subprocess.run(base, capture_output=True, timeout=120).returncode == 0
    assert _runs(journal) == 2  # a restart continues the journal
    refused = subprocess.run(
        [*base, "--fresh"], input="n\n", capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 1
    assert "Delete" in refused.stderr
    assert _runs(journal) == 2
    agreed = subprocess.run(
        [*base, "--fresh"], input="y\n", capture_output=True, text=True, timeout=120
    )
    assert agreed.returncode == 0, agreed.stderr
    assert _runs(journal) == 1
    assert (
        subprocess.run([*base, "--fresh", "--yes"], capture_output=True, timeout=120).returncode
        == 0
    )
    assert _runs(journal) == 1


def test_plugins_list_shows_defaults_enums_and_descriptions_unbroken() -> None:
    done = subprocess.run(
        [TRADEFLEET, "plugins", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert done.returncode == 0, done.stderr
    # The params column, its lines joined: a word cut at the column's edge would not match.
    cells = [line.split("│") for line in done.stdout.splitlines()]
    text = " ".join(" ".join(c[-2].split()) for c in cells if len(c) == 6)
    described = json.loads(
        subprocess.run(
            [TRADEFLEET, "plugins", "list", "--json"], capture_output=True, text=True, timeout=60
        ).stdout
    )
    for plugin in described:
        for row in plugin["params"]:
            assert row["name"] in text, row["name"]  # never cut mid-word
    assert "one of: ascending, descending, any" in text  # an enum, with its choices
    assert '= "ascending"' in text  # a default
    assert "Period of the fast EMA" in text  # a description
    assert all(len(line) <= 80 for line in done.stdout.splitlines())


def test_plugins_show_prints_a_table_and_the_json_schema(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    assert _main("plugins", "show", "ema-cross") == 0
    out = capsys.readouterr().out
    assert "stop_loss_pct" in out
    assert "≥ 1" in out
    schema = json.loads(out[out.index("{") :])
    assert schema["properties"]["fast"]["default"] == 10


def test_run_logs_one_line_per_fill_and_per_trade_close(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, "paper")
    journal = tmp_path / "p.sqlite"
    done = subprocess.run(
        [
            TRADEFLEET,
            "--log-format",
            "json",
            "run",
            str(manifest),
            "--speed",
            "0",
            "--journal",
            str(journal),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    fills = [line for line in lines if line.get("event") == "fill"]
    closes = [line for line in lines if line.get("event") == "trade_closed"]
    with sqlite3.connect(journal) as db:
        journal_fills = db.execute("SELECT fill_id FROM fills").fetchall()
        journal_trades = db.execute("SELECT COUNT(*) FROM trades").fetchone()[0]
    assert len(fills) == len(journal_fills) > 0
    assert len(closes) == journal_trades > 0
    for close in closes:
        assert close["exit_reason"] in {"cross", "stop_loss", "take_profit"}  # tags
        assert isinstance(close["pnl"], float)
        assert close["currency"] == "USD"
        assert "net P&L" in close["message"]
    assert {c["exit_reason"] for c in closes} & {"stop_loss", "take_profit"}
    assert all(line["bot"] == "short-paper" for line in fills + closes)


def test_text_logs_are_readable(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, "paper", end="2017-01-20")
    done = subprocess.run(
        [
            TRADEFLEET,
            "--log-format",
            "text",
            "run",
            str(manifest),
            "--speed",
            "0",
            "--journal",
            str(tmp_path / "j.sqlite"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "INFO    fill: buy" in done.stderr or "INFO    fill: sell" in done.stderr
    assert "{" not in done.stderr.splitlines()[0]


def test_plugins_show_gives_an_optional_params_limits_too() -> None:
    # stop_loss_pct is ``float | None`` (0 < x < 1): its limits sit inside the schema's anyOf.
    rows = {row["name"]: row for row in param_rows(EmaCrossParams.model_json_schema())}
    assert rows["stop_loss_pct"]["limits"] == "> 0, < 1"
    assert rows["fast"]["limits"].startswith("≥ ")  # a plain param's, as before


def test_serve_refuses_a_webhook_allow_that_is_no_network_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path)
    assert _main("auth", "init", str(tmp_path / "auth")) == 0
    keys = tmp_path / "keys"
    keys.mkdir()
    argv = ["serve", str(manifest), "--auth-dir", str(tmp_path / "auth"), "--webhook-keys"]
    code = _main(*argv, str(keys), "--webhook-allow", "10.0.0.0/8", "--webhook-allow", "bogus")
    assert code == 2
    err = capsys.readouterr().err
    assert "--webhook-allow" in err and "'bogus' is not a CIDR" in err
    assert "Traceback" not in err
