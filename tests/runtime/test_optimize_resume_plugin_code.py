"""A resumed study must not name the best params of strategy code that has since changed.

A strategy author edits the strategy (an exit rule) and reruns the same ``tradefleet
optimize`` command; the default study file, ``studies/NAME-optimize.jsonl``, is the same one.
The study recorded each plugin's distribution name and version only, and an author working on
an installed (``pip install -e``) package changes the code, not the version: the rerun ran no
trial and reported the old code's best params and figures as the best of the new code (once:
"best sharpe 1.516" for params a backtest of the edited code gives 0.816, while a fresh study
of that code names other params, sharpe 1.835). Now the study records a hash of the plugin's
package sources, and the rerun is refused naming the plugin.

The plugin here is a real installed distribution as Python sees one (a ``.dist-info`` with a
``tradefleet`` entry point on ``PYTHONPATH``), so nothing is installed into the virtualenv.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.runtime.fake_dists import plugin_distribution

STRATEGY = textwrap.dedent(
    '''
    """A toy strategy: one position every 40 bars, held ``hold`` bars."""

    from __future__ import annotations

    from pydantic import Field

    from tradefleet_runtime.sdk import (
        CONTRACT_VERSION, PluginKind, PluginParams, PluginSpec, Strategy, hookimpl,
    )

    SIDE = "buy"


    class ToyParams(PluginParams):
        hold: int = Field(default=5, ge=1, le=100, description="Bars a position is held.")


    class Toy(Strategy):
        def __init__(self, params: ToyParams) -> None:
            super().__init__(params)
            self.count = 0
            self.opened = -1

        def on_bar(self, bar) -> None:
            self.count += 1
            held = self.ctx.position(bar.symbol).quantity
            if not held and self.count % 40 == 0:
                getattr(self.ctx, SIDE)(bar.symbol, 1000.0, tag="toy")
                self.opened = self.count
            elif held and self.count - self.opened >= self.params.hold:
                self.ctx.close(bar.symbol, tag="held")


    @hookimpl
    def tradefleet_strategies() -> list[PluginSpec]:
        return [
            PluginSpec(
                kind=PluginKind.STRATEGY,
                name="w2-toy",
                version="1.0.0",
                factory="w2toy_strategy:Toy",
                params=ToyParams,
                contract=CONTRACT_VERSION,
            )
        ]
    '''
)


def _plugin(folder: Path) -> Path:
    return plugin_distribution(folder, "w2toy", "w2toy_strategy", STRATEGY)


def _bot(folder: Path) -> Path:
    # A steady rise with a wobble: a long and a short make different P&L.
    rows = ["time,open,high,low,close,volume"]
    price = 100.0
    for i in range(600):
        nxt = price * (1.0005 + 0.004 * math.sin(i / 7.0))
        rows.append(
            f"{1_700_000_000 + 3600 * i},{price},{max(price, nxt)},{min(price, nxt)},{nxt},1"
        )
        price = nxt
    (folder / "bars.csv").write_text("\n".join(rows) + "\n")
    manifest = folder / "bot.yaml"
    manifest.write_text(
        textwrap.dedent(
            """
            apiVersion: tradefleet.io/v1alpha1
            kind: TradingBot
            metadata: {name: w2-toy}
            spec:
              mode: backtest
              strategy: {name: w2-toy, params: {hold: 5}}
              market: {symbols: [TOY], timeframe: 1h}
              broker: {name: paper, params: {fee_bps: 1, leverage: 10}}
              data: {name: csv, params: {path: bars.csv}}
              capital: {currency: USD, initial: 100000}
            """
        )
    )
    (folder / "space.yaml").write_text("hold: {int: [5, 15, 5]}\n")
    return manifest


def _tradefleet(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TRADEFLEET_LOG_FORMAT": "json",
    }
    return subprocess.run(
        [sys.executable, "-m", "tradefleet_runtime.launcher", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _optimize(folder: Path) -> subprocess.CompletedProcess[str]:
    return _tradefleet(
        folder, "optimize", "bot.yaml", "--space", "space.yaml", "--sampler", "grid",
        "--metric", "net_pnl", "--jobs", "1", "--json",
    )  # fmt: skip


def _figures(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def test_a_rerun_after_the_strategy_code_changed_does_not_name_the_old_best(
    tmp_path: Path,
) -> None:
    module = _plugin(tmp_path)
    manifest = _bot(tmp_path)
    first = _figures(_optimize(tmp_path))
    assert first["trials_run"] == 3

    # The author changes the strategy (shorts instead of longs); same package, same version.
    module.write_text(STRATEGY.replace('SIDE = "buy"', 'SIDE = "sell"'))
    rerun = _optimize(tmp_path)

    if rerun.returncode == 2:  # refused: fine, when it says the strategy's code changed
        assert "w2-toy" in rerun.stderr, rerun.stderr
        return
    again = _figures(rerun)
    best = again["best_params"]
    manifest.write_text(manifest.read_text().replace("{hold: 5}", f"{{hold: {best['hold']}}}"))
    backtest = _figures(_tradefleet(tmp_path, "backtest", "bot.yaml", "--json", "--journal",
                                    str(tmp_path / "j.sqlite")))  # fmt: skip
    # What the search reports as the best is what the code now does with those params.
    assert again["best_figures"]["net_pnl"] == backtest["net_pnl"], (first, again, backtest)
