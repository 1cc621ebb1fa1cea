"""A fingerprint of a plugin's code: the hash of every Python source file of the package its
factory lives in, so that a study is not resumed on other code than it was made with.

A distribution's version says nothing of code edited in place: an author working on a
``pip install -e`` package, or on a plugin beside the manifest, changes the code and not the
version, and a resumed study would then name the old code's best params as the new code's.
The whole top-level package is hashed, not only the factory's module, because a plugin's
logic is often in its helpers (its indicators, its params' checks).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["factory_module", "package_code_hash"]


def factory_module(factory: Callable[..., Any] | str) -> str | None:
    """The module a plugin factory (``"module:attr"`` or a callable) comes from."""
    if isinstance(factory, str):
        return factory.partition(":")[0] or None
    module = getattr(factory, "__module__", None)
    return module if isinstance(module, str) else None


@cache
def package_code_hash(module: str) -> str | None:
    """The hash (16 hex digits) of the sources of ``module``'s top-level package, or of the
    module alone when it is not in a package; None when no source file is found (a compiled
    or zipped plugin: its version is then all there is)."""
    top = module.partition(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        roots = [Path(location) for location in spec.submodule_search_locations]
        files = sorted(
            (path.relative_to(root).as_posix(), path)
            for root in roots
            for path in root.rglob("*.py")
            if _source(path, root)
        )
    elif spec.origin and spec.origin.endswith(".py"):
        files = [(Path(spec.origin).name, Path(spec.origin))]
    else:
        return None
    if not files:
        return None
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode())
        digest.update(b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError as error:
            # Unreadable now: hashed as such, so the fingerprint differs from a readable
            # one's (a resume is refused, never taken on code that could not be looked at).
            digest.update(f"unreadable: {error.strerror}".encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _source(path: Path, root: Path) -> bool:
    """A module of the package: not a byte-code cache, not an editor's hidden file (Emacs's
    ``.#strategy.py`` lock is a link to nowhere), a file."""
    parts = path.relative_to(root).parts
    if "__pycache__" in parts or any(part.startswith(".") for part in parts):
        return False
    return path.is_file()
