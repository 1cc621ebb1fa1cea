"""What the CLI prints and the files it leaves: refusals printed literally and headed by what was
refused, --plot checked before the run, no journal left by a refused backtest, ``report`` that
changes no file, and report tables a trader reads (whole cells in a file, profit factor)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from tests.runtime.helpers import HOUR, T0
from tradefleet_runtime.cli import main
from tradefleet_runtime.model import Trade
from tradefleet_runtime.report.metrics import ReportInput, build_report
from tradefleet_runtime.report.table import report_table

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "bots" / "eurusd-ema-cross.yaml"
EURUSD = ROOT / "data" / "EURUSD_H1_2017.csv"
V2_JOURNAL = Path(__file__).parent / "fixtures" / "journal-v2-paper.sqlite"


@pytest.fixture(autouse=True)
def _no_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    # COLUMNS fixes rich's width: these tests see the width the CLI picks itself.
    monkeypatch.delenv("COLUMNS", raising=False)


def _manifest(tmp_path: Path, data: Path = EURUSD, end: str = "2017-04-01") -> Path:
    path = tmp_path / "bot.yaml"
    path.write_text(
        "apiVersion: tradefleet.io/v1alpha1\nkind: TradingBot\nmetadata: {name: short}\n"
        "spec:\n  mode: backtest\n"
        "  strategy: {name: ema-cross, params: {fast: 12, slow: 48}}\n"
        "  market: {symbols: [EURUSD], timeframe: 1h}\n"
        "  broker: {name: paper, params: {fee_bps: 0.2}}\n"
        f"  data: {{name: csv, params: {{path: '{data}', end: '{end}'}}}}\n"
        "  risk: [{name: fixed-fractional, params: {risk_per_trade: 0.005, max_leverage: 5}}]\n"
        "  capital: {currency: USD, initial: 100000}\n"
    )
    return path


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "shown"),
    [
        ("stop_loss_pct: {float: [0.01, 0.05]}\n", "needs a step: [low, high, step]"),
        ("fast: [5, 50]\n", "or {choice: [a, b]}"),
    ],
)
def test_a_refused_space_is_printed_literally_and_named_as_the_space_file(
    space: str, shown: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(space)
    argv = ["optimize", str(DEMO), "--space", str(path), "--sampler", "grid", "--jobs", "1"]
    assert main([*argv, "--study", str(tmp_path / "s.jsonl")]) == 2
    err = capsys.readouterr().err
    assert shown in err  # rich markup once took "[low, high, step]" for a tag
    assert f"{path}: 1 error in the --space file" in err
    assert "bot manifest" not in err


def test_a_bracketed_data_path_is_printed_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "[/x].csv"  # a closing tag: rich raised MarkupError on it
    assert main(["backtest", str(_manifest(tmp_path, data)), "--journal", str(tmp_path / "j")]) == 2
    err = capsys.readouterr().err
    assert f"{data}: no such file" in err
    assert "Traceback" not in err and "MarkupError" not in err


def test_a_refused_option_is_named_as_an_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["optimize", str(DEMO), "--space", "unread.yaml", "--jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert "1 error in the command-line options" in err and "--jobs: must be at least 1" in err


# -- --plot --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["equity.txt", "equity"])
def test_a_plot_file_matplotlib_cannot_write_is_refused_before_the_run(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from matplotlib.backend_bases import FigureCanvasBase

    journal = tmp_path / "j.sqlite"
    argv = ["backtest", str(DEMO), "--journal", str(journal), "--plot", str(tmp_path / name)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--plot" in err and "Traceback" not in err
    assert all(f" {suffix}" in err for suffix in FigureCanvasBase.get_supported_filetypes())
    assert not journal.exists()  # nothing ran


# -- journals ------------------------------------------------------------------------------------


def test_a_backtest_refused_before_its_run_leaves_no_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path, tmp_path / "missing.csv")
    journals = tmp_path / "journals"
    journals.mkdir()
    assert main(["backtest", str(manifest), "--journal", str(journals / "new.sqlite")]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err
    assert list(journals.iterdir()) == []


def test_a_refused_backtest_keeps_the_journal_that_was_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.sqlite"
    assert main(["backtest", str(_manifest(tmp_path)), "--journal", str(journal)]) == 0
    runs = _files(tmp_path)[journal.name]
    missing = _manifest(tmp_path, tmp_path / "missing.csv")
    assert main(["backtest", str(missing), "--journal", str(journal)]) == 2
    assert _files(tmp_path)[journal.name] == runs


def test_report_changes_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "j.sqlite"
    assert main(["backtest", str(_manifest(tmp_path)), "--journal", str(journal)]) == 0
    old = tmp_path / "v2.sqlite"
    shutil.copy(V2_JOURNAL, old)  # an older schema: read through a copy, not migrated in place
    before = _files(tmp_path)
    capsys.readouterr()
    assert main(["report", str(journal)]) == 0
    assert main(["report", str(old), "--trades"]) == 0
    assert "profit factor" in capsys.readouterr().out
    assert _files(tmp_path) == before  # no -wal or -shm either


@pytest.mark.parametrize(("content", "why"), [(b"", "empty"), (b"notes\n", "not an SQLite")])
def test_report_of_a_file_that_is_no_journal_says_so_and_leaves_it(
    content: bytes, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.sqlite"
    path.write_bytes(content)
    assert main(["report", str(path)]) == 1
    assert why in capsys.readouterr().err
    assert path.read_bytes() == content and [p.name for p in tmp_path.iterdir()] == [path.name]


# -- report tables -------------------------------------------------------------------------------


def test_report_trades_into_a_file_keeps_every_cell_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.sqlite"
    assert main(["backtest", str(_manifest(tmp_path)), "--journal", str(journal), "--json"]) == 0
    capsys.readouterr()
    assert main(["report", str(journal), "--trades"]) == 0
    out = capsys.readouterr().out  # captured: not a terminal, as `> file`
    assert "…" not in out
    rows = [line for line in out.splitlines() if line.startswith("│  1 │")]
    assert len(rows) == 1 and " EURUSD " in rows[0] and " cross" in rows[0]


def _figures_text(trades: int, pnls: list[float]) -> str:
    listed = [
        Trade("X", 1, 1.0, T0, T0 + HOUR, 100.0, 100.0 + pnl, pnl, 0.0, "go", "cross")
        for pnl in pnls[:trades]
    ]
    data = ReportInput(
        initial=1000.0,
        currency="USD",
        timeframe_s=HOUR,
        timestamps=[T0 + HOUR * i for i in range(1, 4)],
        equity=[1000.0, 1000.0 + sum(pnls[:trades]), 1000.0 + sum(pnls[:trades])],
        exposure=[0.0, 0.0, 0.0],
        trades=listed,
        fees=0.0,
    )
    console = Console(record=True, width=200)
    console.print(report_table("t", build_report(data), "USD"))
    line = next(x for x in console.export_text().splitlines() if "profit factor" in x)
    return line.replace("│", "").replace("profit factor", "").strip()


def test_profit_factor_is_infinite_only_over_winning_trades_without_a_loss() -> None:
    assert _figures_text(0, []) == "- (no trades)"
    assert _figures_text(2, [5.0, 3.0]) == "∞ (no losing trade)"
    assert _figures_text(2, [6.0, -3.0]) == "2.000"


def test_a_study_made_otherwise_is_named_as_the_study_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("fast: {int: [12, 12]}\n")
    study = tmp_path / "s.jsonl"
    argv = ["optimize", str(DEMO), "--space", str(space), "--sampler", "grid", "--jobs", "1"]
    assert main([*argv, "--study", str(study), "--json"]) == 0
    capsys.readouterr()
    assert main([*argv, "--study", str(study), "--metric", "sortino"]) == 2
    err = capsys.readouterr().err
    assert f"{study}: 1 error in the study file" in err and "--metric: the study" in err
