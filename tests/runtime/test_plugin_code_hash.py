"""A plugin's code fingerprint covers every source file of its package (a helper module
edited changes it), a plugin that is a lone module, and nothing else (a byte-code cache)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradefleet_runtime.optimize.plugin_code import factory_module, package_code_hash


@pytest.fixture
def on_path(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    package_code_hash.cache_clear()
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        package_code_hash.cache_clear()


def test_a_helper_module_edited_changes_the_packages_hash(on_path: Path) -> None:
    package = on_path / "toy_plugin_pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "strategy.py").write_text("from toy_plugin_pkg.sub.rules import EXIT\n")
    (package / "sub" / "rules.py").write_text("EXIT = 70\n")
    first = package_code_hash("toy_plugin_pkg.strategy")
    assert first is not None and len(first) == 16
    package_code_hash.cache_clear()
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "strategy.cpython-311.pyc").write_bytes(b"\0" * 16)
    assert package_code_hash("toy_plugin_pkg.strategy") == first
    package_code_hash.cache_clear()
    (package / "sub" / "rules.py").write_text("EXIT = 60\n")
    assert package_code_hash("toy_plugin_pkg.strategy") not in (None, first)


def test_a_lone_module_is_hashed_and_an_unknown_one_is_not(on_path: Path) -> None:
    (on_path / "toy_plugin_mod.py").write_text("X = 1\n")
    first = package_code_hash("toy_plugin_mod")
    assert first is not None
    package_code_hash.cache_clear()
    (on_path / "toy_plugin_mod.py").write_text("X = 2\n")
    assert package_code_hash("toy_plugin_mod") not in (None, first)
    assert package_code_hash("no_such_plugin_module_here") is None


def test_the_factorys_module_is_read_from_either_form() -> None:
    assert factory_module("toy.strategy:Build") == "toy.strategy"
    assert factory_module(package_code_hash) == "tradefleet_runtime.optimize.plugin_code"


def test_an_editors_lock_file_neither_fails_nor_changes_the_hash(on_path: Path) -> None:
    """Emacs keeps ``.#NAME.py`` beside a modified file: a link to nowhere. Read as a module,
    it ended ``tradefleet optimize`` in a traceback before any trial."""
    package = on_path / "toy_lock_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "strategy.py").write_text("EXIT = 70\n")
    clean = package_code_hash("toy_lock_plugin.strategy")
    assert clean is not None
    package_code_hash.cache_clear()
    os.symlink("author@host.12345:1700000000", package / ".#strategy.py")
    assert package_code_hash("toy_lock_plugin.strategy") == clean
