"""Regenerate the committed gRPC code in ``tradefleet_runtime/api/v1`` from ``proto/``.

Usage (from anywhere)::

    python bot-runtime/tradefleet_runtime/api/generate.py          # write the files
    python bot-runtime/tradefleet_runtime/api/generate.py --check  # exit 1 if they are stale

It runs ``grpc_tools.protoc`` with ``-I proto`` (plus grpc_tools' bundled well-known types) into a
temporary directory and then:

- rewrites the generated ``from tradefleet.v1 import runtime_pb2`` to the absolute
  ``from tradefleet_runtime.api.v1 import runtime_pb2``;
- writes ``runtime_pb2_grpc.pyi``, typed stubs for the gRPC module built from the file's
  descriptor (protoc's ``--pyi_out`` covers messages only), so the runtime type-checks under
  ``mypy --strict`` against the stub and the service together;
- puts ``# ruff: noqa`` and ``# fmt: off`` on top of every file, so the generated code is neither
  linted nor reformatted and regenerates byte for byte (and, on protoc's message stubs, a mypy
  comment disabling ``type-arg``: they use a bare ``Mapping``).

The output depends only on the proto files and the grpcio-tools version (pinned in the dev
extras), so ``--check`` is a reliable staleness test.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path(__file__).resolve().parent
PROTOS = ("tradefleet/v1/runtime.proto", "tradefleet/v1/mt5_bridge.proto")
HEADER = "# ruff: noqa\n# fmt: off\n"
# protoc's message stubs use a bare ``Mapping`` in constructor signatures.
PYI_HEADER = HEADER + '# mypy: disable-error-code="type-arg"\n'


def _protoc(args: list[str]) -> None:
    # imported lazily: only the generator needs grpcio-tools (which ships no type information)
    from grpc_tools import protoc  # type: ignore[import-untyped]

    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    code = protoc.main(["grpc_tools.protoc", "-I", str(PROTO_ROOT), "-I", str(well_known), *args])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def _python_type(type_name: str, package: str, module: str) -> str:
    prefix = f".{package}."
    if not type_name.startswith(prefix):
        raise SystemExit(f"{type_name}: only messages of the same proto file are supported")
    return f"{module}.{type_name[len(prefix) :]}"


def _grpc_stub(descriptor_set: bytes, proto: str, import_path: str) -> str:
    """Typed stubs for the ``*_pb2_grpc`` module of one proto file."""
    from google.protobuf import descriptor_pb2

    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    (file,) = [f for f in files.file if f.name == proto]
    module = Path(proto).stem + "_pb2"
    lines = [
        HEADER.rstrip("\n"),
        f'"""Typed stubs for the gRPC code of {proto} (written by generate.py)."""',
        "",
        "import collections.abc",
        "",
        "import grpc",
        "",
        f"from {import_path} import {module}",
        "",
        "GRPC_GENERATED_VERSION: str",
        "GRPC_VERSION: str",
    ]
    for service in file.service:
        methods = []
        for method in service.method:
            request = _python_type(method.input_type, file.package, module)
            response = _python_type(method.output_type, file.package, module)
            if method.client_streaming:
                raise SystemExit(f"{service.name}.{method.name}: client streaming not supported")
            methods.append((method.name, request, response, method.server_streaming))
        lines += ["", "", f"class {service.name}Stub:"]
        lines.append("    def __init__(self, channel: grpc.Channel) -> None: ...")
        for name, request, response, streaming in methods:
            kind = "UnaryStreamMultiCallable" if streaming else "UnaryUnaryMultiCallable"
            lines.append(f"    {name}: grpc.{kind}[{request}, {response}]")
        lines += ["", "", f"class {service.name}Servicer:"]
        for name, request, response, streaming in methods:
            result = f"collections.abc.Iterator[{response}]" if streaming else response
            lines.append(
                f"    def {name}(self, request: {request}, context: grpc.ServicerContext)"
                f" -> {result}: ..."
            )
        lines += [
            "",
            "",
            f"def add_{service.name}Servicer_to_server(",
            f"    servicer: {service.name}Servicer, server: grpc.Server",
            ") -> None: ...",
        ]
    return "\n".join(lines) + "\n"


def generate(out_dir: Path) -> list[Path]:
    """Write the generated modules for every proto into ``out_dir``; return the files written."""
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="tradefleet-protoc-") as tmp:
        raw = Path(tmp)
        descriptors = raw / "descriptors.binpb"
        _protoc(
            [
                f"--python_out={raw}",
                f"--pyi_out={raw}",
                f"--grpc_python_out={raw}",
                f"--descriptor_set_out={descriptors}",
                *PROTOS,
            ]
        )
        for proto in PROTOS:
            source_package = str(Path(proto).parent).replace("/", ".")  # tradefleet.v1
            module = Path(proto).stem
            target_package = "tradefleet_runtime.api." + Path(proto).parent.name  # ...api.v1
            generated = raw / Path(proto).parent
            for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
                text = (generated / f"{module}{suffix}").read_text(encoding="utf-8")
                text = text.replace(
                    f"from {source_package} import {module}_pb2",
                    f"from {target_package} import {module}_pb2",
                )
                header = PYI_HEADER if suffix.endswith(".pyi") else HEADER
                written.append(_write(out_dir / f"{module}{suffix}", header + text))
            stub = _grpc_stub(descriptors.read_bytes(), proto, target_package)
            written.append(_write(out_dir / f"{module}_pb2_grpc.pyi", stub))
    return written


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def check() -> list[str]:
    """The committed files that differ from a fresh generation (empty when up to date)."""
    with tempfile.TemporaryDirectory(prefix="tradefleet-generate-") as tmp:
        fresh = generate(Path(tmp) / "v1")
        stale = []
        for path in fresh:
            committed = PACKAGE_DIR / "v1" / path.name
            if not committed.exists() or not filecmp.cmp(path, committed, shallow=False):
                stale.append(str(committed.relative_to(ROOT)))
        return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temporary directory; exit 1 if the committed code differs",
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = check()
        for path in stale:
            print(f"stale: {path}", file=sys.stderr)
        if stale:
            print("run: python bot-runtime/tradefleet_runtime/api/generate.py", file=sys.stderr)
            return 1
        print("generated code is up to date")
        return 0
    for written in generate(PACKAGE_DIR / "v1"):
        print(f"wrote {written.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
