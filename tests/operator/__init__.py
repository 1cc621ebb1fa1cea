"""Operator tests; ``validate_strict`` runs the kubernetes-validate CLI on many objects."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

_BIN = Path(sys.executable).with_name("kubernetes-validate")
CLI = [str(_BIN)] if _BIN.exists() else [sys.executable, "-m", "kubernetes_validate"]
#: The oldest Kubernetes release the CRD targets (CEL rules GA in 1.29; fieldPath and reason
#: since 1.28) and the newest schema kubernetes-validate ships.
VERSIONS = ("1.30.0", "1.37.0")


def validate_strict(
    objects: Sequence[dict[str, Any]], folder: Path, versions: Sequence[str] = VERSIONS
) -> None:
    """Fail with the CLI's output unless every object passes ``--strict`` on every version."""
    files = []
    for index, obj in enumerate(objects):
        path = folder / f"{index:02d}-{obj['kind'].lower()}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False), encoding="utf-8")
        files.append(str(path))
    for version in versions:
        result = subprocess.run(
            [*CLI, "--strict", "-k", version, *files],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert output.count("passed") == len(files), output
