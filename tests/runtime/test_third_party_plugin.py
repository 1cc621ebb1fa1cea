"""A third-party distribution registers a strategy just by declaring an entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DIST = "acme-tradefleet-strategies"

HOOKS = """
from tradefleet_runtime.contracts import PluginParams
from tradefleet_runtime.plugins import PluginKind, PluginSpec, hookimpl
from pydantic import Field


class BuyAndHoldParams(PluginParams):
    quantity: float = Field(gt=0, description="Units to buy on the first bar.")


@hookimpl
def tradefleet_strategies():
    return [PluginSpec(kind=PluginKind.STRATEGY, name="acme-buy-and-hold", version="1.2.3",
                       factory="acme_tf.strategy:BuyAndHold", params=BuyAndHoldParams,
                       summary="Buys once and holds.")]
"""

STRATEGY = """
from tradefleet_runtime.contracts import Strategy


class BuyAndHold(Strategy):
    def on_start(self, ctx):
        self.bought = False

    def on_bar(self, bar):
        if not self.bought:
            self.ctx.buy(bar.symbol, self.params.quantity)
            self.bought = True
"""


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    source = tmp_path_factory.mktemp("acme")
    (source / "acme_tf").mkdir()
    (source / "acme_tf" / "__init__.py").write_text("")
    (source / "acme_tf" / "hooks.py").write_text(HOOKS)
    (source / "acme_tf" / "strategy.py").write_text(STRATEGY)
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{DIST}"
            version = "1.2.3"

            [project.entry-points.tradefleet]
            acme = "acme_tf.hooks"

            [tool.setuptools]
            packages = ["acme_tf"]
            """
        )
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", str(source)], check=True)
    try:
        yield
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
        timeout=120,
    )


def test_plugins_list_shows_the_third_party_strategy(installed_plugin: None) -> None:
    listing = _tradefleet("plugins", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {(row["kind"], row["name"]): row for row in json.loads(listing.stdout)}
    acme = rows[("strategy", "acme-buy-and-hold")]
    assert acme["version"] == "1.2.3"
    assert acme["source"] == f"{DIST} 1.2.3"
    assert acme["params_schema"]["required"] == ["quantity"]
    assert rows[("strategy", "ema-cross")]["source"].startswith("tradefleet ")
    table = _tradefleet("plugins", "list")
    assert "acme-buy-and-hold" in table.stdout


def test_a_manifest_runs_the_third_party_strategy(installed_plugin: None, tmp_path: Path) -> None:
    manifest = tmp_path / "acme.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""
            apiVersion: tradefleet.io/v1alpha1
            kind: TradingBot
            metadata: {{name: acme-hold}}
            spec:
              mode: backtest
              strategy: {{name: acme-buy-and-hold, params: {{quantity: 10000}}}}
              market: {{symbols: [EURUSD], timeframe: 1h}}
              data: {{name: csv, params: {{path: {ROOT / "data" / "EURUSD_H1_2017.csv"}}}}}
              capital: {{initial: 100000}}
            """
        )
    )
    result = _tradefleet(
        "backtest", str(manifest), "--json", "--journal", str(tmp_path / "j.sqlite")
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    # Bought 10,000 EUR at the second bar's open (1.05227) and held to the last close (1.20075).
    assert figures["final_equity"] == pytest.approx(
        100_000 + 10_000 * (1.20075 - 1.05227), abs=1e-6
    )


def test_bad_params_name_the_third_party_plugin(installed_plugin: None, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "apiVersion: tradefleet.io/v1alpha1\nkind: TradingBot\nmetadata: {name: acme-bad}\n"
        "spec:\n  mode: paper\n  strategy: {name: acme-buy-and-hold, params: {quantity: -1}}\n"
        "  market: {symbols: [EURUSD]}\n"
    )
    result = _tradefleet("run", str(manifest))
    assert result.returncode == 2
    assert "spec.strategy.params.quantity" in result.stderr
    assert "acme-buy-and-hold" in result.stderr
