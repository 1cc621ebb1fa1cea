"""examples/mt5/eurusd-mt5-bridge.yaml's header says how to backtest it first ("mode: backtest,
broker: paper and data: csv"): done as it says, with the paper broker's params it names, the
bundled EURUSD year trades.

The paper broker's leverage defaults to 1 and the manifest's fixed-fractional ``max_leverage:
5`` sizes entries at up to 5x equity, so without the account's leverage every entry is refused
for margin (151 of them, 0 trades): the header has to name it, as
tests/e2e/test_live_mt5_bridge.py's backtest of the example gives it (``leverage: 30``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mt5" / "eurusd-mt5-bridge.yaml"
EURUSD = ROOT / "data" / "EURUSD_H1_2017.csv"


def _paper_params_the_comment_gives(comment: str) -> dict[str, Any]:
    """The paper broker's params the example's header names (a `leverage: N`, if any; not the
    sizer's `max_leverage`)."""
    found = re.search(r"(?<![\w_])leverage:\s*(\d+(?:\.\d+)?)", comment)
    return {"leverage": float(found.group(1))} if found else {}


def test_the_mt5_examples_backtest_recipe_trades(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    comment = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    assert "mode: backtest, broker: paper and data: csv" in comment  # the advice followed
    document = yaml.safe_load(text)
    spec = document["spec"]
    spec.pop("liveConfirmation")
    spec["mode"] = "backtest"
    spec["broker"] = {"name": "paper", "params": _paper_params_the_comment_gives(comment)}
    spec["data"] = {"name": "csv", "params": {"path": str(EURUSD)}}
    path = tmp_path / "backtest.yaml"
    path.write_text(yaml.safe_dump(document))
    bot = assemble(load_manifest(path), PluginRegistry.discover(), tmp_path)
    journal = Journal(tmp_path / "backtest.sqlite")
    try:
        outcome = BotSession(bot, journal).run_to_end()
    finally:
        journal.close()
    assert outcome.status == "completed"
    assert len(outcome.result.trades) > 10, (
        f"{len(outcome.result.trades)} trades: every entry refused for margin on the paper "
        "broker's default leverage 1 (the sizer's max_leverage is 5)"
    )
