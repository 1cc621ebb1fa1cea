"""The distribution's metadata: a PEP 639 licence without setuptools' deprecation banner, and a
light ``pip install tradefleet`` (no plot, operator, venue or dev packages)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_licence_is_a_spdx_expression_and_builds_without_a_warning(tmp_path: Path) -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    probe = (
        "import setuptools.build_meta as b, sys;"
        f"print(b.prepare_metadata_for_build_wheel({str(tmp_path)!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "deprecat" not in (done.stdout + done.stderr).lower()
    metadata = (tmp_path / done.stdout.strip().splitlines()[-1] / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in metadata


def test_the_base_install_stays_light() -> None:
    names = {
        dep.split(">")[0].split("=")[0].split("<")[0].strip().lower()
        for dep in PYPROJECT["project"]["dependencies"]
    }
    heavy = {"matplotlib", "kopf", "ccxt", "ruff", "mypy", "pytest", "grpcio-tools", "kmock"}
    assert not names & heavy
