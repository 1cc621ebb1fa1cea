"""A third-party distribution, built from docs/writing-a-strategy.md alone, works as the page says.

The page marks each file of its example project with ``<!-- file: PATH -->`` before a fenced
block. This test writes those blocks into a fresh folder and nothing else, runs the project's own
tests (written with ``tradefleet_runtime.sdk.testing``), installs it, and checks that
``tradefleet plugins list`` shows it and that ``tradefleet backtest`` trades the page's manifest
(on the bundled EURUSD data). So the page cannot drift from the code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOC = ROOT / "docs" / "writing-a-strategy.md"
DATA = ROOT / "data" / "EURUSD_H1_2017.csv"
DIST = "acme-breakout"
PLUGIN = "acme-breakout"
MANIFEST = "eurusd-breakout.yaml"

# The module installs its plugin into the virtualenv every test shares: run it alone, so no other
# test (a `tradefleet plugins list`, a registry's discovery) meets it half installed.
pytestmark = pytest.mark.serial

# A marked block: the marker comment, then a fenced block right below it.
MARKED = re.compile(r"<!-- file: (?P<path>\S+) -->\n```[a-z]*\n(?P<body>.*?)^```$", re.S | re.M)
FENCED = re.compile(r"^```(?P<lang>[a-z]*)\n", re.M)


def doc_files() -> dict[str, str]:
    """Every file the page gives, by its path in the project."""
    files: dict[str, str] = {}
    for match in MARKED.finditer(DOC.read_text()):
        path = match["path"]
        assert path not in files, f"{path} is given twice in {DOC.name}"
        files[path] = match["body"]
    return files


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page's project, written from its marked blocks; the manifest reads the bundled data."""
    folder = tmp_path_factory.mktemp("acme-breakout")
    for path, body in doc_files().items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    manifest = folder / MANIFEST
    spec = yaml.safe_load(manifest.read_text())
    spec["spec"]["data"]["params"]["path"] = str(DATA)
    manifest.write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def installed_plugin(project: Path) -> Iterator[Path]:
    """The project, installed as the page says (``pip install -e .``; offline: no deps, no
    build isolation), and uninstalled afterwards."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "-e", "."], cwd=project, check=True
    )
    try:
        yield project
    finally:
        subprocess.run([*pip, "uninstall", "-y", DIST], check=True)


def _tradefleet(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(BIN / "tradefleet"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_every_python_toml_and_yaml_block_of_the_page_is_a_marked_file() -> None:
    """Nothing on the page is code this test does not run (shell commands excepted)."""
    text = DOC.read_text()
    marked = {m.start("body") for m in MARKED.finditer(text)}
    unmarked = [
        text.count("\n", 0, m.start()) + 1
        for m in FENCED.finditer(text)
        if m["lang"] in {"python", "toml", "yaml"} and m.end() not in marked
    ]
    assert unmarked == [], f"unmarked code blocks at lines {unmarked} of {DOC.name}"
    files = doc_files()
    assert {"pyproject.toml", "acme_breakout/strategy.py", "tests/test_breakout.py"} <= set(files)


def test_the_plugin_imports_only_the_sdk() -> None:
    imported = {
        name
        for path, body in doc_files().items()
        if path.endswith(".py")
        for name in re.findall(r"^from (tradefleet_runtime\S*) import", body, re.M)
    }
    assert imported == {"tradefleet_runtime.sdk", "tradefleet_runtime.sdk.testing"}


def test_the_projects_own_tests_pass(project: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout


def test_plugins_list_shows_the_installed_strategy(installed_plugin: Path) -> None:
    listing = _tradefleet("plugins", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {(row["kind"], row["name"]): row for row in json.loads(listing.stdout)}
    acme = rows[("strategy", PLUGIN)]
    assert acme["version"] == "1.0.0"
    assert acme["source"] == f"{DIST} 1.0.0"
    assert acme["capabilities"] == ["takes-signals"]
    assert acme["contract"].split(".")[0] == "1"
    assert set(acme["params_schema"]["properties"]) == {
        "lookback",
        "stop_loss_pct",
        "take_profit_pct",
    }
    assert rows[("strategy", "ema-cross")]["source"].startswith("tradefleet ")
    table = _tradefleet("plugins", "list")
    assert PLUGIN in table.stdout


def test_the_pages_manifest_backtests_and_trades(installed_plugin: Path, tmp_path: Path) -> None:
    result = _tradefleet(
        "backtest",
        MANIFEST,
        "--json",
        "--journal",
        str(tmp_path / "j.sqlite"),
        cwd=installed_plugin,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["trades"] > 0


def _manifest_with(project: Path, folder: Path, **params: object) -> Path:
    manifest = yaml.safe_load((project / MANIFEST).read_text())
    manifest["spec"]["strategy"]["params"].update(params)
    path = folder / "changed.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_bad_params_name_the_plugin_and_the_field(installed_plugin: Path, tmp_path: Path) -> None:
    # The very message the page quotes.
    message = (
        "spec.strategy.params.lookback: Input should be greater than or equal to 2 "
        f"(strategy plugin '{PLUGIN}')"
    )
    assert message in " ".join(DOC.read_text().split())
    result = _tradefleet("backtest", str(_manifest_with(installed_plugin, tmp_path, lookback=1)))
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())


def test_an_undeclared_capability_is_refused_when_loaded(
    installed_plugin: Path, tmp_path: Path
) -> None:
    """As the page says: a strategy with ``on_signal`` that does not declare ``takes-signals``
    is refused when a bot loads it (the install is editable, so the edit is live)."""
    hooks = installed_plugin / "acme_breakout" / "hooks.py"
    original = hooks.read_text()
    declaration = "            capabilities=frozenset({Capability.TAKES_SIGNALS}),\n"
    assert declaration in original
    hooks.write_text(original.replace(declaration, ""))
    try:
        result = _tradefleet(
            "backtest", MANIFEST, "--journal", str(tmp_path / "j.sqlite"), cwd=installed_plugin
        )
    finally:
        hooks.write_text(original)
    assert result.returncode == 2
    stderr = " ".join(result.stderr.split())
    assert f"strategy plugin '{PLUGIN}'" in stderr
    assert "has method 'on_signal' but does not declare capability 'takes-signals'" in stderr
