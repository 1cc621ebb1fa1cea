#!/usr/bin/env sh
# Download (without installing) the Windows-only MetaTrader5 wheel into .cache/mt5-wheel/.
# The live-fidelity tests in tests/mt5/test_fidelity.py compare the emulator against it and
# skip when the directory is absent.
set -eu
ROOT="$(cd "$(dirname "$0")/../../../.." && pwd)"
DEST="${MT5_WHEEL_DIR:-$ROOT/.cache/mt5-wheel}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
mkdir -p "$DEST"
"$PY" -m pip download --quiet --no-deps --platform win_amd64 --only-binary=:all: \
    --python-version 3.11 "MetaTrader5==${MT5_WHEEL_VERSION:-5.0.6231}" -d "$DEST"
ls "$DEST"/*.whl
