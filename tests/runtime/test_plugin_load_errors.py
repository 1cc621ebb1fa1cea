"""One broken plugin distribution does not hide the others, and is named where it matters.

Before, the entry points were loaded by one pluggy call inside one try: a distribution whose
hooks module failed to import (a typo'd dependency) stopped the loading there, so every plugin
of every later distribution disappeared, and `plugins list` said only "loading entry points
failed: No module named 'numpyy'", naming no distribution; a bot asking for one of the hidden
plugins was told "no strategy plugin named ..." with no hint why.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tradefleet_runtime import cli
from tradefleet_runtime.errors import PluginError
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry

GOOD_HOOKS = """
from tradefleet_runtime.sdk import NoParams, PluginKind, PluginSpec, Strategy, hookimpl


class Quiet(Strategy):
    def on_bar(self, bar):
        pass


@hookimpl
def tradefleet_strategies():
    return [PluginSpec(PluginKind.STRATEGY, "{plugin}", "2.0.0", Quiet, NoParams)]
"""

BAD_HOOK = """
from tradefleet_runtime.sdk import hookimpl


@hookimpl
def tradefleet_strategies():
    raise RuntimeError("descriptor bug")
"""


def _distribution(folder: Path, name: str, version: str, module: str, body: str) -> None:
    """A distribution as an installer leaves it: a package and its dist-info, in ``folder``."""
    package = folder / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "hooks.py").write_text(body)
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[tradefleet]\n{module} = {module}.hooks\n")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A broken distribution found before a good one (as on the prober's path), and a third
    whose hook raises. Module names are new each test: nothing is cached in sys.modules."""
    tag = uuid.uuid4().hex[:8]
    names = {
        "plugin": f"quiet-{tag}",
        "broken": f"tf_broken_{tag}",
        "good": f"tf_good_{tag}",
        "hook": f"tf_badhook_{tag}",
    }
    first, second = tmp_path / "first", tmp_path / "second"
    _distribution(first, "aaa-broken", "0.3", names["broken"], "import numpyy  # a typo\n")
    _distribution(
        second, "zzz-good", "2.0.0", names["good"], GOOD_HOOKS.format(plugin=names["plugin"])
    )
    _distribution(second, "bad-hook", "1.1", names["hook"], BAD_HOOK)
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))  # searched first: the broken one comes first
    return names


def test_a_broken_distribution_hides_no_other(installed: dict[str, str]) -> None:
    registry = PluginRegistry.discover()
    plugin = registry.get(PluginKind.STRATEGY, installed["plugin"])
    assert plugin.source == "zzz-good 2.0.0"
    assert "ema-cross" in registry.names(PluginKind.STRATEGY)  # the built-ins too


def test_each_failure_names_the_distribution_its_version_and_the_entry_point(
    installed: dict[str, str],
) -> None:
    registry = PluginRegistry.discover()
    broken, hook = installed["broken"], installed["hook"]
    assert (
        f"aaa-broken 0.3: entry point {broken} = {broken}.hooks failed to load:"
        " ModuleNotFoundError: No module named 'numpyy'" in registry.load_errors
    )
    assert (
        f"bad-hook 1.1: {hook}.tradefleet_strategies() failed: RuntimeError: descriptor bug"
        in registry.load_errors
    )


def test_a_missing_plugin_says_which_distributions_failed_to_load(
    installed: dict[str, str],
) -> None:
    registry = PluginRegistry.discover()
    with pytest.raises(PluginError) as missing:
        registry.get(PluginKind.STRATEGY, "acme-breakout")
    said = str(missing.value)
    assert said.startswith("no strategy plugin named 'acme-breakout' (installed: ")
    assert said.endswith(
        "; aaa-broken 0.3, bad-hook 1.1 failed to load and may provide it"
        " (tradefleet plugins list says why)"
    )


def test_nothing_failed_nothing_hinted() -> None:
    registry = PluginRegistry.discover()
    with pytest.raises(PluginError) as missing:
        registry.get(PluginKind.STRATEGY, "no-such-strategy")
    assert "failed to load" not in str(missing.value)


def test_plugins_list_shows_the_good_plugin_and_names_the_broken_distribution(
    installed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plugins", "list"]) == cli.EXIT_OK
    shown = " ".join(capsys.readouterr().out.split())
    assert installed["plugin"] in shown
    assert "load error: aaa-broken 0.3: entry point" in shown
