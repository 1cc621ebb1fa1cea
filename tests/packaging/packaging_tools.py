"""Shared helpers of the packaging tests: the tools in .cache/bin, helm template, YAML documents.

The tools come from ``.cache/bin`` (``make helm``, ``make hadolint``; ``make test`` installs
both). A missing tool fails the test, naming the target, rather than skipping it.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "tradefleet"
BIN = ROOT / ".cache" / "bin"

#: Each tool, the Makefile target that installs it and the script behind the target.
TOOLS = {
    "helm": ("make helm", "tools/fetch_helm.sh"),
    "hadolint": ("make hadolint", "tools/fetch_hadolint.sh"),
}

_KV = Path(sys.executable).with_name("kubernetes-validate")
KUBERNETES_VALIDATE = [str(_KV)] if _KV.exists() else [sys.executable, "-m", "kubernetes_validate"]
#: The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema set.
KUBE_VERSIONS = ("1.30.0", "1.37.0")


def tool(name: str) -> Path:
    """``.cache/bin/<name>``, or a test failure saying how to install it."""
    path = BIN / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        target, script = TOOLS[name]
        pytest.fail(
            f"{path.relative_to(ROOT)} is missing: run `{target}` ({script}); "
            "`make test` installs it before running pytest",
            pytrace=False,
        )
    return path


def run(
    command: Sequence[str | Path], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def helm(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run([tool("helm"), *args])


def set_args(values: dict[str, str]) -> list[str]:
    """``--set key=value`` (``--set-string`` is not needed: the schema wants the real types)."""
    args: list[str] = []
    for key, value in values.items():
        args += ["--set", f"{key}={value}"]
    return args


def render(values: dict[str, str] | None = None, namespace: str = "tradefleet-system") -> str:
    """``helm template`` of the chart (cached per values); fails the test with helm's errors."""
    return _render(tuple(sorted((values or {}).items())), namespace)


@functools.lru_cache(maxsize=64)
def _render(values: tuple[tuple[str, str], ...], namespace: str) -> str:
    result = helm(
        "template", "tradefleet", CHART, "--namespace", namespace, *set_args(dict(values))
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]
