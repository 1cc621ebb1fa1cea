"""A third-party plugin whose params model cannot be built is a load error naming it, and
``tradefleet plugins list`` still lists every other plugin.

Params models are built on first use (``defer_build`` on ``PluginParams``), and such a model
(a field of a type pydantic has no schema for) then registered, and the first
``params_schema()`` raised out of ``plugins list``: a traceback, no plugin listed. Another
distribution's model is now built at discovery.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.runtime.fake_dists import plugin_distribution

BROKEN = textwrap.dedent(
    '''
    from tradefleet_runtime.sdk import (
        CONTRACT_VERSION, PluginKind, PluginParams, PluginSpec, Strategy, hookimpl,
    )


    class Venue:
        """Not a pydantic type."""


    class BrokenParams(PluginParams):
        venue: Venue | None = None


    class Broken(Strategy):
        pass


    @hookimpl
    def tradefleet_strategies() -> list[PluginSpec]:
        return [
            PluginSpec(
                kind=PluginKind.STRATEGY,
                name="r2-broken",
                version="1.0.0",
                factory="r2broken_strategy:Broken",
                params=BrokenParams,
                contract=CONTRACT_VERSION,
            )
        ]
    '''
)


def test_a_plugin_whose_params_cannot_be_built_hides_no_other_plugin(tmp_path: Path) -> None:
    plugin_distribution(tmp_path, "r2broken", "r2broken_strategy", BROKEN)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    run = subprocess.run(
        [sys.executable, "-m", "tradefleet_runtime.launcher", "plugins", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "ema-cross" in run.stdout
    assert "r2broken" in run.stdout  # said, naming the distribution (or the plugin)
