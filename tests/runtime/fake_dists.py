"""A plugin module installed as Python sees a distribution (a ``.dist-info`` with a
``tradefleet`` entry point) in a folder to put on ``PYTHONPATH``: nothing is installed into
the virtualenv every test shares."""

from __future__ import annotations

from pathlib import Path


def plugin_distribution(folder: Path, dist: str, module: str, source: str) -> Path:
    """``module``'s ``source`` written to ``folder`` as distribution ``dist`` 1.0.0, whose
    ``tradefleet`` entry point is the module: the module's path."""
    path = folder / f"{module}.py"
    path.write_text(source)
    info = folder / f"{dist}-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text(f"[tradefleet]\n{dist} = {module}\n")
    return path
