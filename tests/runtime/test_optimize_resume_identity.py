"""A study resumes only the search it was made for: the same bot, bars, metric, sampler, space.

A user who raises the fees in the manifest and reruns the same command expects the search to
judge the params at those fees; a resumed study that kept the old trials ran nothing and named
the old best (Sharpe 0.57 where a backtest of those params at the new fees gives -4.4). Every
setting a trial's figures depend on is recorded, and a resume with another is refused, naming
it, without a byte written to the study file.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.runtime.test_optimize import DATA, ROOT, eurusd_manifest
from tradefleet_runtime import cli
from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.optimize import worker
from tradefleet_runtime.optimize.search import (
    SearchConfig,
    SearchResult,
    bot_identity,
    executor,
    open_storage,
    run_search,
)
from tradefleet_runtime.optimize.space import parse_space
from tradefleet_runtime.plugins.registry import PluginRegistry

SPACE = {"fast": {"int": [12, 24, 12]}, "slow": {"int": [48, 96, 48]}}


def _search(study: Path, manifest: dict[str, Any], **kwargs: Any) -> SearchResult:
    config = SearchConfig(
        manifest=manifest,
        base_dir=str(ROOT),
        space=parse_space(SPACE),
        study_path=study,
        study_name="identity-check",
        sampler="grid",
        **kwargs,
    )
    with executor(1) as pool:
        return run_search(config, pool)


def _refused(study: Path, manifest: dict[str, Any]) -> list[str]:
    """The fields a resume with ``manifest`` is refused on; the file is left as it was."""
    before = study.read_bytes()
    with pytest.raises(SpecError) as refused:
        _search(study, manifest)
    assert study.read_bytes() == before  # not a line appended
    assert all("use another --study file or remove it" in e.message for e in refused.value.errors)
    return [e.field for e in refused.value.errors]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = manifest["spec"]
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        (_set("broker.params.fee_bps", 20), ["spec.broker.params.fee_bps"]),
        (_set("broker.params.slippage_bps", 30), ["spec.broker.params.slippage_bps"]),
        (_set("capital.initial", 50_000), ["spec.capital.initial"]),
        (_set("risk.0.params.quantity", 1_000), ["spec.risk[0].params.quantity"]),
        # A fixed param of the strategy (not in the space) changes every trial's run.
        (_set("strategy.params.allow_short", True), ["spec.strategy.params.allow_short"]),
        # The feed then gives other bars (4h ones made of the hourly file's): both named.
        (_set("market.timeframe", "4h"), ["spec.market.timeframe", "spec.data"]),
        (_set("data.params.gap_policy", "trade"), ["spec.data.params.gap_policy"]),
    ],
    ids=["fee", "slippage", "capital", "risk-chain", "fixed-param", "timeframe", "feed-param"],
)
def test_a_resume_with_another_bot_is_refused_naming_the_setting(
    change: Callable[[dict[str, Any]], None], fields: list[str], tmp_path: Path
) -> None:
    study = tmp_path / "study.jsonl"
    _search(study, eurusd_manifest(), trials=2)
    manifest = eurusd_manifest()
    change(manifest)
    assert _refused(study, manifest) == fields


def test_a_searched_params_manifest_value_and_the_mode_do_not_matter(tmp_path: Path) -> None:
    # Each trial sets the searched params, and runs as a backtest whatever the bot's mode.
    study = tmp_path / "study.jsonl"
    first = _search(study, eurusd_manifest(), trials=2)
    manifest = eurusd_manifest()
    manifest["spec"]["strategy"]["params"]["fast"] = 5
    manifest["spec"]["mode"] = "paper"
    manifest["spec"]["runtime"] = {"replaySpeed": 10.0}
    manifest["spec"]["liveConfirmation"] = "I-UNDERSTAND"
    resumed = _search(study, manifest)
    assert (first.done, resumed.done, resumed.ran) == (2, 4, 2)


def test_the_same_data_file_with_other_bars_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "EURUSD.csv"
    data.write_bytes(DATA.read_bytes())
    manifest = eurusd_manifest()
    manifest["spec"]["data"]["params"]["path"] = str(data)
    study = tmp_path / "study.jsonl"
    _search(study, manifest, trials=2)
    # One close nudged within its bar's range, at the same path.
    lines = data.read_text().splitlines()
    cells = lines[500].split(",")
    cells[4] = f"{float(cells[4]) + 0.00001:.5f}"
    assert float(cells[3]) <= float(cells[4]) <= float(cells[2])
    lines[500] = ",".join(cells)
    data.write_text("\n".join(lines) + "\n")
    # A command is a process of its own: this test's process must not keep the old bars.
    monkeypatch.setattr(worker, "_BARS", {})
    assert _refused(study, manifest) == ["spec.data"]


def test_a_study_of_an_earlier_version_is_refused_not_trusted(tmp_path: Path) -> None:
    # It recorded metric, sampler, space, strategy and window only: its trials may have run on
    # other fees or data, which nothing in it can tell.
    study = tmp_path / "study.jsonl"
    _search(study, eurusd_manifest(), trials=2)
    storage = open_storage(study)
    loaded = optuna.load_study(study_name="identity-check", storage=storage)
    old = {k: v for k, v in loaded.user_attrs["identity"].items() if k not in ("bot", "bars")}
    loaded.set_user_attr("identity", old)
    assert _refused(study, eurusd_manifest()) == ["--study"]


def test_resuming_appends_nothing_when_nothing_is_left_to_run(tmp_path: Path) -> None:
    # A resume loaded the study with create_study(load_if_exists=True), which appends a
    # create-study line to the file for a study that exists.
    study = tmp_path / "study.jsonl"
    _search(study, eurusd_manifest())
    before = study.read_bytes()
    again = _search(study, eurusd_manifest())
    assert (again.ran, again.done) == (0, 4)
    assert study.read_bytes() == before


def test_the_study_holds_no_value_of_the_manifest(tmp_path: Path) -> None:
    # A plugin's params may hold a secret: the identity keeps a hash per setting.
    manifest = eurusd_manifest()
    manifest["spec"]["broker"]["params"]["note"] = "s3cr3t-value"
    identity = bot_identity(manifest, parse_space(SPACE))
    assert "spec.broker.params.note" in identity
    assert "s3cr3t" not in json.dumps(identity)
    assert "spec.strategy.params.fast" not in identity  # searched: not part of the bot


def test_the_command_refuses_the_stale_study_after_the_fees_are_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = eurusd_manifest()
    bot, space, study = tmp_path / "bot.yaml", tmp_path / "space.yaml", tmp_path / "s.jsonl"
    bot.write_text(json.dumps(manifest))
    space.write_text(json.dumps(SPACE))
    argv = ["optimize", str(bot), "--space", str(space), "--sampler", "grid", "--jobs", "1"]
    argv += ["--study", str(study), "--json"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    before = study.read_bytes()
    raised = copy.deepcopy(manifest)
    raised["spec"]["broker"]["params"].update(fee_bps=20, slippage_bps=30)
    bot.write_text(json.dumps(raised))
    assert cli.main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "spec.broker.params.fee_bps" in err and "spec.broker.params.slippage_bps" in err
    assert "was made with another bot" in err
    assert study.read_bytes() == before


def test_a_study_made_with_other_plugin_code_is_not_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another release of a plugin may give other figures for the same settings: the study
    records each plugin's distribution and version, and a resume with others is refused."""
    from tradefleet_runtime.optimize import search

    study = tmp_path / "s.jsonl"
    manifest = eurusd_manifest()
    _search(study, manifest)
    versions = search.plugin_versions(manifest, PluginRegistry.discover())
    assert set(versions) == {"strategy ema-cross", "broker paper", "data csv", "risk fixed-size"}
    assert all(code.startswith("tradefleet ") for code in versions.values())
    upgraded = {**versions, "strategy ema-cross": "tradefleet 9.9.9 (built-in) 9.9.9"}
    monkeypatch.setattr(search, "plugin_versions", lambda *_: upgraded)
    before = study.read_bytes()
    with pytest.raises(SpecError) as refused:
        _search(study, manifest)
    assert study.read_bytes() == before
    (error,) = refused.value.errors
    assert "strategy ema-cross plugin" in error.message and "9.9.9" in error.message
    monkeypatch.setattr(search, "plugin_versions", lambda *_: versions)
    _search(study, manifest)  # the same code resumes
