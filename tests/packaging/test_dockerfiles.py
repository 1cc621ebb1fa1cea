"""The Dockerfiles: hadolint clean, non-root, pinned, no HEALTHCHECK, and every COPY resolvable.

No container engine runs here, so the images are linted and read, not built.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.packaging.packaging_tools import ROOT, run, tool
from tradefleet_operator.settings import JOURNAL_DIR, OperatorSettings

DOCKERFILES = {
    "runtime": (ROOT / "docker" / "runtime.Dockerfile", "tradefleet"),
    "operator": (ROOT / "docker" / "operator.Dockerfile", "tradefleet-operator"),
}
#: An exact patch release of the Python base (optionally pinned by digest too).
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?$")
COMPILERS = ("gcc", "g++", "build-essential", "clang", "make", "cc ")


@dataclass
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def instructions(path: Path) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    result: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return result


def stages(path: Path) -> list[Stage]:
    args: dict[str, str] = {}
    result: list[Stage] = []
    for instruction in instructions(path):
        if instruction.keyword == "ARG" and not result:
            name, _, default = instruction.arguments.partition("=")
            args[name] = default.strip('"')
        elif instruction.keyword == "FROM":
            words = instruction.arguments.split()
            base = re.sub(
                r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], words[0]
            )
            alias = words[2] if len(words) > 2 and words[1].upper() == "AS" else None
            result.append(Stage(base, alias))
        else:
            assert result, f"{path}: {instruction.keyword} before FROM"
            result[-1].instructions.append(instruction)
    return result


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip("/")
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out += "(?:.*/)?"
            index += 3
        elif pattern.startswith("**", index):
            out += ".*"
            index += 2
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return re.compile(out + r"\Z")


def in_build_context(relative: str) -> bool:
    """Whether .dockerignore lets ``relative`` (a file path) into the build context."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, _dockerignore_regex(line.lstrip("!"))))
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negated, regex in rules:
        if any(regex.match(prefix) for prefix in prefixes):
            included = negated
    return included


def _copy_sources(instruction: Instruction) -> list[str]:
    words = [w for w in instruction.arguments.split() if not w.startswith("--")]
    if words and words[0].startswith("["):
        raise AssertionError("use the plain COPY form")
    return words[:-1]


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_hadolint_passes(image: str) -> None:
    path, _ = DOCKERFILES[image]
    result = run([tool("hadolint"), "--no-color", path])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_final_stage_runs_as_non_root(image: str) -> None:
    path, _ = DOCKERFILES[image]
    final = stages(path)[-1]
    users = [i.arguments for i in final.instructions if i.keyword == "USER"]
    assert users, "the final stage sets no USER (it would run as root)"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == str(OperatorSettings().run_as_user)  # what the pods' securityContext says


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_base_images_are_pinned(image: str) -> None:
    path, _ = DOCKERFILES[image]
    all_stages = stages(path)
    names = {stage.name for stage in all_stages if stage.name}
    for stage in all_stages:
        if stage.base in names:
            continue
        assert PINNED_BASE.match(stage.base), f"{stage.base} is not an exact, slim Python 3.11"
        assert not stage.base.endswith(":latest")
    # The final stage starts from the slim base, not from the builder.
    assert all_stages[-1].base not in names and "slim" in all_stages[-1].base
    assert len(all_stages) >= 2, "build the wheel in a builder stage"


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_no_healthcheck_and_no_compilers_in_the_final_stage(image: str) -> None:
    path, _ = DOCKERFILES[image]
    all_stages = stages(path)
    for stage in all_stages:
        assert not [i for i in stage.instructions if i.keyword == "HEALTHCHECK"]
    for instruction in all_stages[-1].instructions:
        if instruction.keyword == "RUN" and re.search(
            r"apt-get|apk|yum|dnf", instruction.arguments
        ):
            for compiler in COMPILERS:
                assert compiler not in instruction.arguments, instruction.arguments
        assert not (
            instruction.keyword == "COPY"
            and "--from=builder" in instruction.arguments
            and "/src" in instruction.arguments
        ), "sources copied into the final image"


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_every_copied_path_exists_in_the_build_context(image: str) -> None:
    path, _ = DOCKERFILES[image]
    copies = [
        i for stage in stages(path) for i in stage.instructions if i.keyword in ("COPY", "ADD")
    ]
    assert copies
    for instruction in copies:
        assert instruction.keyword == "COPY", "use COPY, not ADD"
        if "--from=" in instruction.arguments:
            continue
        for source in _copy_sources(instruction):
            matches = sorted(ROOT.glob(source.rstrip("/")))
            assert matches, f"COPY {source}: nothing in the repository matches"
            files = [
                m
                for match in matches
                for m in ([match] if match.is_file() else match.rglob("*"))
                if m.is_file()
            ]
            kept = [f for f in files if in_build_context(f.relative_to(ROOT).as_posix())]
            assert kept, f"COPY {source}: .dockerignore leaves it out of the build context"
            for match in matches:
                if match.is_file():
                    assert in_build_context(match.relative_to(ROOT).as_posix()), match


def test_dockerignore_keeps_the_context_small() -> None:
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        ".cache/bin/helm",
        "tests/__init__.py",
        "bot-runtime/tradefleet_runtime/__pycache__/x.pyc",
        "journals/x.sqlite",
    ):
        assert not in_build_context(path), path
    for path in (
        "pyproject.toml",
        "README.md",
        "bot-runtime/tradefleet_runtime/__init__.py",
        "data/EURUSD_H1_2017.csv",
    ):
        assert in_build_context(path), path


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_entrypoint_is_a_declared_console_script(image: str) -> None:
    path, command = DOCKERFILES[image]
    final = stages(path)[-1]
    entrypoints = [i.arguments for i in final.instructions if i.keyword == "ENTRYPOINT"]
    assert entrypoints[-1] == f'["{command}"]'
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert command in scripts, (
        f"ENTRYPOINT {command} is not in pyproject.toml [project.scripts]: "
        "the image would not start"
    )


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_read_only_root_filesystem_friendly(image: str) -> None:
    path, _ = DOCKERFILES[image]
    final = stages(path)[-1]
    env = " ".join(i.arguments for i in final.instructions if i.keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env
    workdirs = [i.arguments for i in final.instructions if i.keyword == "WORKDIR"]
    assert workdirs[-1] in ("/tmp", JOURNAL_DIR)


def test_runtime_image_prepares_the_journal_directory() -> None:
    path, _ = DOCKERFILES["runtime"]
    text = " ".join(i.arguments for i in stages(path)[-1].instructions if i.keyword == "RUN")
    assert f"-o 10001 -g 10001 -m 0750 {JOURNAL_DIR}" in text


def test_fnmatch_sanity() -> None:  # the dockerignore matcher agrees with fnmatch on plain globs
    assert bool(_dockerignore_regex("data/*.csv").match("data/x.csv")) == fnmatch.fnmatch(
        "data/x.csv", "data/*.csv"
    )


# --- the MT5 bridge recipe (docker/mt5-bridge: linted and read, never built by CI) -------------

MT5_BRIDGE = ROOT / "docker" / "mt5-bridge" / "Dockerfile"


def test_the_mt5_bridge_recipe_passes_hadolint_and_says_it_is_not_built() -> None:
    result = run([tool("hadolint"), "--no-color", MT5_BRIDGE])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NOT BUILT BY CI" in MT5_BRIDGE.read_text()


def test_the_mt5_bridge_recipe_runs_as_non_root_and_copies_what_the_context_has() -> None:
    (final,) = stages(MT5_BRIDGE)
    users = [i.arguments for i in final.instructions if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    for instruction in final.instructions:
        if instruction.keyword == "COPY":
            for source in _copy_sources(instruction):
                files = (
                    [source]
                    if (ROOT / source).is_file()
                    else [
                        str(p.relative_to(ROOT)) for p in (ROOT / source).rglob("*") if p.is_file()
                    ]
                )
                assert files and any(in_build_context(f) for f in files), source
    # the account never goes into the image: the bot sends it through initialize
    text = MT5_BRIDGE.read_text().lower()
    assert "password=" not in text and "mt5_login" not in text
