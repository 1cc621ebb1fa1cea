"""docs/plugins.md is generated from the plugins' params models and must not be stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_plugin_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "plugin_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    text = (ROOT / "docs" / "plugins.md").read_text()
    for name in ("ema-cross", "external-signal", "fixed-fractional", "fixed-size", "paper", "csv"):
        assert f"## `{name}`" in text
