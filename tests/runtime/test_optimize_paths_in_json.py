"""The optimiser's machine-readable outputs say which path ran the trials (walkthrough W25).

The text output said it ("N trial(s) evaluated by the vectorised path" / "… by the event engine:
risk chain …"); ``optimize --json`` and ``walkforward``'s results JSON, which a user scripts
against, dropped those notes, and a walk-forward window counted neither the sets the params
model refused nor those the strategy refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.test_optimize import eurusd_manifest
from tradefleet_runtime import cli

SPACE = {"fast": {"int": [6, 12, 6]}, "slow": {"int": [48, 96, 48]}}
TWO_RULES = [
    {"name": "fixed-size", "params": {"quantity": 100_000}},
    {"name": "pre-trade", "params": {"max_order_quantity": 1_000_000}},
]
# (the bot's risk chain, the note its search carries)
CASES = {
    "vector": (None, "4 trial(s) evaluated by the vectorised path"),
    "engine": (TWO_RULES, "4 trial(s) evaluated by the event engine: risk chain fixed-size"),
}


def _files(folder: Path, space: dict[str, Any], risk: list[Any] | None = None) -> list[str]:
    document = eurusd_manifest()
    if risk is not None:
        document["spec"]["risk"] = risk
    bot, space_file = folder / "bot.yaml", folder / "space.yaml"
    bot.write_text(json.dumps(document))  # JSON is YAML
    space_file.write_text(json.dumps(space))
    return [str(bot), "--space", str(space_file), "--sampler", "grid", "--jobs", "1"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimize_json_names_the_path_of_the_trials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    risk, note = CASES[case]
    argv = ["optimize", *_files(tmp_path, SPACE, risk), "--study", str(tmp_path / "s.jsonl")]
    assert cli.main([*argv, "--no-progress", "--json"]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out[out.index("{") :])
    assert any(said.startswith(note) for said in printed["notes"]), printed["notes"]


def test_walkforward_windows_name_the_path_and_count_the_refused_sets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Three of the nine sets have slow <= fast: the params model refuses them.
    space = {"fast": {"int": [20, 60, 20]}, "slow": {"int": [30, 90, 30]}}
    out = tmp_path / "wf.json"
    argv = ["walkforward", *_files(tmp_path, space, TWO_RULES), "--train", "3000"]
    argv += ["--test", "2000", "--study", str(tmp_path / "w.jsonl"), "--out", str(out)]
    assert cli.main([*argv, "--no-progress"]) == 0
    capsys.readouterr()
    [window, *_] = json.loads(out.read_text())["windows"]
    assert window["trials"] == 9 and window["trials_invalid"] == 3
    assert window["trials_refused_by_strategy"] == 0
    assert any("by the event engine: risk chain fixed-size" in n for n in window["notes"])
