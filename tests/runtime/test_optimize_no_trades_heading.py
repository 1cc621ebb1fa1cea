"""A search in which no set traded is refused as the search's fault, not the study file's.

``tradefleet optimize`` of a bot whose every trial trades nothing refuses (exit 2), rightly.
It headed the refusal ``refused: <study>.jsonl: 1 error in the study file``, and a user told
the study file is broken deletes it, while the file is sound (its trials are kept and a rerun
resumes it) and what is wrong is the search (``--space``, or the strategy on these bars).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.test_optimize import eurusd_manifest
from tradefleet_runtime import cli


def test_no_trades_is_not_headed_as_a_broken_study_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = eurusd_manifest()
    # A backtest sends it no signal: it never trades, whatever its params.
    manifest["spec"]["strategy"] = {"name": "external-signal", "params": {}}
    bot, space, study = tmp_path / "bot.yaml", tmp_path / "space.yaml", tmp_path / "s.jsonl"
    bot.write_text(json.dumps(manifest))
    space.write_text(json.dumps({"min_confidence": {"float": [0.0, 0.5, 0.5]}}))
    argv = ["optimize", str(bot), "--space", str(space), "--sampler", "grid", "--jobs", "1"]
    assert cli.main([*argv, "--study", str(study)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "ran without a trade" in err  # the reason itself is said
    assert "error in the study file" not in err, err
    assert "1 error in the search" in err, err
