"""Every whole TradingBot manifest the docs show is one tradefleet takes: it parses, and every
built-in plugin it names gets valid params. A reader copies these first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tradefleet_runtime.plugins.registry import BUILTIN_MODULE, PluginRegistry
from tradefleet_runtime.sdk import PluginKind
from tradefleet_runtime.spec.checks import validate_plugins
from tradefleet_runtime.spec.load import parse_manifest, parse_yaml

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.M | re.S)


def _doc_manifests() -> list[tuple[str, str]]:
    found = []
    for doc in sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")]):
        for number, block in enumerate(_BLOCK.findall(doc.read_text())):
            if re.search(r"^kind: TradingBot$", block, re.M):
                found.append((f"{doc.relative_to(ROOT)}#{number}", block))
    return found


def test_the_docs_show_whole_manifests() -> None:
    # The check below must have something to check: live crypto, live data, a custom strategy.
    assert {name.split("#")[0] for name, _ in _doc_manifests()} >= {
        "docs/live-crypto.md",
        "docs/live-data.md",
        "docs/writing-a-strategy.md",
    }


@pytest.mark.parametrize(
    ("name", "block"), _doc_manifests(), ids=lambda v: str(v).split("\n")[0][:40]
)
def test_a_manifest_in_the_docs_is_taken_as_written(name: str, block: str) -> None:
    (document,) = parse_yaml(block, name)
    manifest = parse_manifest(document, name)
    registry = PluginRegistry.from_modules(__import__(BUILTIN_MODULE, fromlist=["x"]))
    builtin = {plugin_name for _, plugin_name in registry.plugins}
    errors = [
        error
        for error in validate_plugins(manifest, registry)
        # A doc's own example plugin (acme-breakout) is not built in: only its name is unknown.
        if not (error.field == "spec.strategy.name" and manifest.spec.strategy.name not in builtin)
    ]
    assert errors == [], f"{name}: {errors}"
    assert (PluginKind.BROKER, manifest.spec.broker.name) in registry.plugins
