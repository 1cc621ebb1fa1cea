"""Space files a search refuses, naming the space (walkthrough W25).

- A ``float`` range for an integer param is refused before anything runs, naming
  ``space.<param>``: every trial was refused by the params model one at a time, the study file
  written with them, and the corrected space then refused on that file.
- A walk-forward whose every set the params model refuses names ``--space`` (as ``optimize``
  does), not ``--train`` ("no trial traded ... give --train more bars").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.test_optimize import eurusd_manifest
from tradefleet_runtime import cli


def _files(folder: Path, space: dict[str, Any]) -> tuple[Path, Path]:
    bot, space_file = folder / "bot.yaml", folder / "space.yaml"
    bot.write_text(json.dumps(eurusd_manifest()))  # JSON is YAML
    space_file.write_text(json.dumps(space))
    return bot, space_file


@pytest.mark.parametrize("command", ["optimize", "walkforward"])
def test_a_float_range_for_an_integer_param_is_refused_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    bot, space_file = _files(tmp_path, {"fast": {"float": [5, 20]}, "slow": {"int": [48, 96, 48]}})
    study = tmp_path / "s.jsonl"
    argv = [command, str(bot), "--space", str(space_file), "--sampler", "tpe", "--trials", "6"]
    argv += ["--jobs", "1", "--study", str(study), "--no-progress"]
    if command == "walkforward":
        argv += ["--train", "2000", "--test", "1000", "--out", str(tmp_path / "w.json")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "space.fast" in err and "is an integer" in err and "{int: [5, 20]}" in err, err
    assert not study.exists()


def test_a_float_range_for_a_float_param_is_searched(tmp_path: Path) -> None:
    bot, space_file = _files(tmp_path, {"stop_loss_pct": {"float": [0.001, 0.05]}})
    argv = ["optimize", str(bot), "--space", str(space_file), "--sampler", "random"]
    argv += ["--trials", "2", "--jobs", "1", "--study", str(tmp_path / "s.jsonl")]
    assert cli.main([*argv, "--no-progress"]) == 0


def test_a_walkforward_whose_every_set_is_refused_names_the_space(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every set has slow <= fast: the params model refuses them all, so no trial ever ran.
    bot, space_file = _files(
        tmp_path, {"fast": {"int": [50, 60, 10]}, "slow": {"int": [10, 20, 10]}}
    )
    argv = ["walkforward", str(bot), "--space", str(space_file), "--sampler", "grid"]
    argv += ["--jobs", "1", "--no-progress", "--train", "2000", "--test", "1000"]
    argv += ["--study", str(tmp_path / "w.jsonl"), "--out", str(tmp_path / "w.json")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--space" in err and "slow" in err and "--train" not in err, err
