"""The committed gRPC code matches proto/ (regenerate: python bot-runtime/.../api/generate.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from tradefleet_runtime.api import generate
from tradefleet_runtime.api.v1 import runtime_pb2


def test_generated_code_is_up_to_date() -> None:
    stale = generate.check()
    assert stale == [], (
        f"stale generated code: {stale}; run python bot-runtime/tradefleet_runtime/api/generate.py"
    )


def test_check_mode_fails_on_a_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "api"
    shutil.copytree(generate.PACKAGE_DIR / "v1", copy / "v1")
    monkeypatch.setattr(generate, "PACKAGE_DIR", copy)
    monkeypatch.setattr(generate, "ROOT", tmp_path)
    assert generate.main(["--check"]) == 0
    grpc_module = copy / "v1" / "runtime_pb2_grpc.py"
    grpc_module.write_text(grpc_module.read_text() + "# edited by hand\n")
    assert generate.main(["--check"]) == 1
    assert "runtime_pb2_grpc.py" in capsys.readouterr().err
    (copy / "v1" / "runtime_pb2.pyi").unlink()
    assert generate.main(["--check"]) == 1


def test_check_mode_as_a_script() -> None:
    script = Path(generate.__file__)
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_generated_grpc_module_imports_the_package_path() -> None:
    text = (generate.PACKAGE_DIR / "v1" / "runtime_pb2_grpc.py").read_text()
    assert "from tradefleet_runtime.api.v1 import runtime_pb2" in text
    assert "from tradefleet.v1 import" not in text
    assert runtime_pb2.DESCRIPTOR.package == "tradefleet.v1"


def test_every_element_of_the_proto_is_documented(tmp_path: Path) -> None:
    from grpc_tools import protoc

    out = tmp_path / "set.binpb"
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            "-I",
            str(generate.PROTO_ROOT),
            "-I",
            str(well_known),
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *generate.PROTOS,
        ]
    )
    assert code == 0
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    assert sorted(file.name for file in files.file) == sorted(generate.PROTOS)
    missing = []
    for file in files.file:
        missing += _undocumented(file)
    assert missing == []


def _undocumented(file: descriptor_pb2.FileDescriptorProto) -> list[str]:
    documented = {
        tuple(location.path)
        for location in file.source_code_info.location
        if location.leading_comments.strip()
    }
    missing: list[str] = []

    def need(path: tuple[int, ...], name: str) -> None:
        if path not in documented:
            missing.append(f"{file.name}: {name}")

    # field numbers of FileDescriptorProto / DescriptorProto / ... (descriptor.proto)
    for i, message in enumerate(file.message_type):
        need((4, i), message.name)
        for j, field in enumerate(message.field):
            need((4, i, 2, j), f"{message.name}.{field.name}")
        for j, oneof in enumerate(message.oneof_decl):
            if not oneof.name.startswith("_"):  # synthetic oneofs of `optional`
                need((4, i, 8, j), f"{message.name}.{oneof.name}")
    for i, enum in enumerate(file.enum_type):
        need((5, i), enum.name)
        for j, value in enumerate(enum.value):
            need((5, i, 2, j), value.name)
    for i, service in enumerate(file.service):
        need((6, i), service.name)
        for j, method in enumerate(service.method):
            need((6, i, 2, j), f"{service.name}.{method.name}")
    return missing
