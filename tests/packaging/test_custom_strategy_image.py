"""The custom-strategy example: its Dockerfile lints clean and its install line installs the
plugin, which tradefleet then finds (docs/custom-strategies.md)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.packaging.packaging_tools import ROOT, run, tool

EXAMPLE = ROOT / "examples" / "custom-strategy"
DOCKERFILE = EXAMPLE / "Dockerfile"
BIN = Path(sys.executable).parent


def test_the_example_dockerfile_passes_hadolint() -> None:
    result = run([tool("hadolint"), "--no-color", DOCKERFILE])
    assert result.returncode == 0, result.stdout + result.stderr


def _install_line() -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    match = re.search(r"^RUN (pip install [^&\n]+)", text, re.MULTILINE)
    assert match, "the Dockerfile has no `RUN pip install` line"
    return shlex.split(match.group(1))


def test_the_install_line_installs_the_plugin_tradefleet_then_finds(tmp_path: Path) -> None:
    """Run the Dockerfile's own `pip install` line (its source path mapped to the example, into
    a target folder beside this venv's tradefleet) and list plugins with it on the path."""
    command = _install_line()
    source = command[-1]
    assert source.startswith("/src/"), command
    pip = [str(BIN / "python"), "-m", *command[:-1], str(EXAMPLE)]
    target = tmp_path / "site"
    done = subprocess.run(
        [*pip, "--no-deps", "--no-build-isolation", "--target", str(target)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    listed = subprocess.run(
        [str(BIN / "tradefleet"), "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(target)},
        check=True,
    )
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["acme-mean-reversion"]["source"] == "acme-strategies 1.0.0"
    assert rows["acme-mean-reversion"]["kind"] == "strategy"


def test_the_dockerfile_installs_as_root_and_runs_as_the_runtime_user() -> None:
    users = re.findall(r"^USER (\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert users == ["0:0", "10001:10001"]
    assert re.search(r"^FROM \$\{RUNTIME_IMAGE\}", DOCKERFILE.read_text(), re.MULTILINE)
    assert "ARG RUNTIME_IMAGE=ghcr.io/tradefleet/runtime:" in DOCKERFILE.read_text()
