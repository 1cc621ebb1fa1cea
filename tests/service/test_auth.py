"""Bearer-token auth, token rotation and TLS on a real server."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.service.fakes import (
    FakeControlPlane,
    bearer,
    no_leaked_server_threads,  # noqa: F401 - autouse fixture
    running_server,
)
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.service.auth import Scope, TlsError, TlsFiles, TokenAuth
from tradefleet_runtime.service.client import ApiError, ClientTls, RuntimeClient
from tradefleet_runtime.service.grpc_server import SERVICE_NAME, GrpcEndpoint

CONTROL = "control-secret-0123456789"
READ = "read-secret-abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def token_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "tokens"
    directory.mkdir()
    (directory / "control.token").write_text(CONTROL + "\n")
    (directory / "read.token").write_text(READ + "\n")
    return directory


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(token_dir: Path, clock: Clock) -> TokenAuth:
    return TokenAuth(token_dir, refresh_interval=1.0, clock=clock)


@pytest.fixture
def control() -> FakeControlPlane:
    return FakeControlPlane()


@pytest.fixture
def endpoint(control: FakeControlPlane, auth: TokenAuth) -> Iterator[GrpcEndpoint]:
    with running_server(control, auth=auth) as endpoint:
        yield endpoint


@pytest.fixture
def channel(endpoint: GrpcEndpoint) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{endpoint.port}") as channel:
        yield channel


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.RuntimeServiceStub:
    return pb_grpc.RuntimeServiceStub(channel)


def code_of(call: object) -> grpc.StatusCode | None:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as error:
        return error.code()
    return None


def test_control_token_may_call_everything(
    stub: pb_grpc.RuntimeServiceStub, control: FakeControlPlane
) -> None:
    md = bearer(CONTROL)
    assert stub.GetStatus(pb.GetStatusRequest(), metadata=md, timeout=5).bot == "btc-ema"
    assert stub.Pause(pb.PauseRequest(reason="x"), metadata=md, timeout=5).paused
    assert control.calls[0][1].startswith("anonymous (grpc, control token, ")


def test_read_token_reads_but_may_not_control(
    stub: pb_grpc.RuntimeServiceStub, control: FakeControlPlane
) -> None:
    md = bearer(READ)
    stub.GetStatus(pb.GetStatusRequest(), metadata=md, timeout=5)
    stub.ListPositions(pb.ListPositionsRequest(), metadata=md, timeout=5)
    stub.ListOrders(pb.ListOrdersRequest(), metadata=md, timeout=5)
    stub.ListTrades(pb.ListTradesRequest(), metadata=md, timeout=5)
    stream = stub.StreamEvents(pb.StreamEventsRequest(), metadata=md, timeout=5)
    stream.initial_metadata()
    stream.cancel()
    controls = [
        lambda: stub.Pause(pb.PauseRequest(), metadata=md, timeout=5),
        lambda: stub.Resume(pb.ResumeRequest(), metadata=md, timeout=5),
        lambda: stub.EmergencyStop(pb.EmergencyStopRequest(), metadata=md, timeout=5),
        lambda: stub.ResetRiskLock(pb.ResetRiskLockRequest(plugin="x"), metadata=md, timeout=5),
        lambda: stub.SubmitSignal(pb.SubmitSignalRequest(), metadata=md, timeout=5),
        lambda: stub.UpdateParams(pb.UpdateParamsRequest(), metadata=md, timeout=5),
    ]
    for call in controls:
        assert code_of(call) == grpc.StatusCode.PERMISSION_DENIED
    assert control.calls == []


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        bearer("wrong"),
        bearer(CONTROL + "x"),
        (("authorization", CONTROL),),  # no scheme
        (("authorization", f"Basic {CONTROL}"),),
        (("authorization", "Bearer "),),
    ],
)
def test_missing_or_wrong_token_is_unauthenticated(
    stub: pb_grpc.RuntimeServiceStub, metadata: tuple[tuple[str, str], ...]
) -> None:
    for call in (
        lambda: stub.GetStatus(pb.GetStatusRequest(), metadata=metadata, timeout=5),
        lambda: stub.Pause(pb.PauseRequest(), metadata=metadata, timeout=5),
        lambda: next(iter(stub.StreamEvents(pb.StreamEventsRequest(), metadata=metadata))),
    ):
        assert code_of(call) == grpc.StatusCode.UNAUTHENTICATED


def test_errors_and_logs_never_contain_tokens(
    stub: pb_grpc.RuntimeServiceStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    details = []
    for md in (bearer("guess-" + CONTROL), bearer(READ)):
        with pytest.raises(grpc.RpcError) as error:
            stub.Pause(pb.PauseRequest(), metadata=md, timeout=5)
        details.append(error.value.details() or "")
    text = " ".join(details) + caplog.text
    assert CONTROL not in text and READ not in text
    assert "PERMISSION_DENIED" in caplog.text or "UNAUTHENTICATED" in caplog.text


def test_health_and_reflection_need_no_token(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    response = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    assert SERVICE_NAME in {s.name for a in answers for s in a.list_services_response.service}


def test_rotated_token_takes_effect_without_restart(
    stub: pb_grpc.RuntimeServiceStub, token_dir: Path, clock: Clock
) -> None:
    def status_code(token: str) -> grpc.StatusCode | None:
        return code_of(lambda: stub.GetStatus(pb.GetStatusRequest(), metadata=bearer(token)))

    replacement = token_dir / "control.token.new"
    replacement.write_text("rotated-control-token\n")
    os.replace(replacement, token_dir / "control.token")
    # within the refresh interval the old token still works (at most one stat a second)
    assert status_code(CONTROL) is None
    clock.now += 1.5
    assert status_code(CONTROL) == grpc.StatusCode.UNAUTHENTICATED
    assert status_code("rotated-control-token") is None


def test_kubernetes_style_symlink_swap(tmp_path: Path) -> None:
    """A mounted Secret: NAME -> ..data/NAME, ..data -> ..<timestamp>/ swapped atomically."""
    mount = tmp_path / "secret"
    mount.mkdir()
    first = mount / "..2026_01_01_00_00_00.1"
    first.mkdir()
    (first / "control.token").write_text("one")
    (mount / "..data").symlink_to(first.name)
    (mount / "control.token").symlink_to("..data/control.token")
    clock = Clock()
    auth = TokenAuth(mount, refresh_interval=1.0, clock=clock)
    assert auth.scope_of(bearer("one")) is Scope.CONTROL
    assert auth.scope_of(bearer("two")) is None  # no read.token at all: that scope has none

    second = mount / "..2026_01_02_00_00_00.2"
    second.mkdir()
    (second / "control.token").write_text("two")
    (second / "read.token").write_text("reader")
    (mount / "..data_tmp").symlink_to(second.name)
    os.replace(mount / "..data_tmp", mount / "..data")
    (mount / "read.token").symlink_to("..data/read.token")
    shutil.rmtree(first)
    clock.now += 1.0
    assert auth.scope_of(bearer("one")) is None
    assert auth.scope_of(bearer("two")) is Scope.CONTROL
    assert auth.scope_of(bearer("reader")) is Scope.READ


def test_missing_or_empty_file_means_no_token(token_dir: Path, clock: Clock) -> None:
    auth = TokenAuth(token_dir, refresh_interval=0, clock=clock)
    assert auth.scope_of(bearer(READ)) is Scope.READ
    (token_dir / "read.token").unlink()
    assert auth.scope_of(bearer(READ)) is None
    (token_dir / "control.token").write_text("\n")
    assert auth.scope_of(bearer("")) is None
    assert auth.authorize("/tradefleet.v1.RuntimeService/GetStatus", bearer("x")) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid token",
    )


def test_client_reports_auth_codes(endpoint: GrpcEndpoint) -> None:
    address = f"127.0.0.1:{endpoint.port}"
    with RuntimeClient(address, timeout=5) as anonymous:
        with pytest.raises(ApiError) as error:
            anonymous.get_status()
        assert error.value.code == "UNAUTHENTICATED"
        assert anonymous.health() == "SERVING"
    with RuntimeClient(address, token=READ, timeout=5) as reader:
        assert reader.get_status().bot == "btc-ema"
        with pytest.raises(ApiError) as error:
            reader.emergency_stop("x")
        assert error.value.code == "PERMISSION_DENIED"


# --- TLS --------------------------------------------------------------------------------------


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    root = tmp_path_factory.mktemp("tls")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", str(root / "ca.key"), "-out", str(root / "ca.crt"),
    )  # fmt: skip
    (root / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("tls", "client"):
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", str(root / f"{name}.key"), "-out", str(root / f"{name}.csr"),
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(root / f"{name}.csr"), "-CA", str(root / "ca.crt"),
            "-CAkey", str(root / "ca.key"), "-CAcreateserial", "-days", "1",
            "-extfile", str(root / "ext.cnf"), "-out", str(root / f"{name}.crt"),
        )  # fmt: skip
    return root


def test_tls_and_mutual_tls(certificates: Path, control: FakeControlPlane) -> None:
    root = certificates
    server_only = TlsFiles(cert=root / "tls.crt", key=root / "tls.key")
    with running_server(control, tls=server_only) as endpoint:
        address = f"127.0.0.1:{endpoint.port}"
        with RuntimeClient(address, tls=ClientTls(ca=root / "ca.crt"), timeout=5) as client:
            assert client.get_status().bot == "btc-ema"
    mutual = TlsFiles(cert=root / "tls.crt", key=root / "tls.key", ca=root / "ca.crt")
    with running_server(control, tls=mutual) as endpoint:
        address = f"127.0.0.1:{endpoint.port}"
        tls = ClientTls(ca=root / "ca.crt", cert=root / "client.crt", key=root / "client.key")
        with RuntimeClient(address, tls=tls, timeout=5) as client:
            assert client.get_status().bot == "btc-ema"
        with (
            RuntimeClient(address, tls=ClientTls(ca=root / "ca.crt"), timeout=2) as no_cert,
            pytest.raises(ApiError) as error,
        ):
            no_cert.get_status()
        assert error.value.code == "UNAVAILABLE"


def test_tls_files_from_a_kubernetes_secret(certificates: Path, tmp_path: Path) -> None:
    for name in ("tls.crt", "tls.key"):
        shutil.copy(certificates / name, tmp_path / name)
    plain = TlsFiles.from_directory(tmp_path)
    assert plain.ca is None and plain.cert == tmp_path / "tls.crt"
    plain.server_credentials()
    shutil.copy(certificates / "ca.crt", tmp_path / "ca.crt")
    assert TlsFiles.from_directory(tmp_path).ca == tmp_path / "ca.crt"


def test_tls_files_that_cannot_be_used_are_named_before_any_port_is_bound(
    certificates: Path, tmp_path: Path
) -> None:
    """gRPC takes any bytes and then fails with "Failed to bind to address" though the port is
    free: the files are checked first, and the error names the file and what is wrong."""
    root = certificates
    gone = tmp_path / "gone.key"
    cases = [
        (TlsFiles(root / "tls.crt", root / "client.key"), root / "client.key", "not the key of"),
        (TlsFiles(root / "tls.crt", root / "tls.crt"), root / "tls.crt", "not an unencrypted"),
        (TlsFiles(root / "tls.key", root / "tls.key"), root / "tls.key", "not a PEM certificate"),
        (TlsFiles(root / "tls.crt", gone), gone, "cannot read it"),
        (TlsFiles(root / "tls.crt", root / "tls.key", ca=gone), gone, "cannot read it"),
    ]
    for files, named, problem in cases:
        with pytest.raises(TlsError) as error:
            files.server_credentials()
        assert problem in str(error.value) and str(named) in str(error.value), files
        # Refused before a port is bound or a thread started (the autouse fixture checks).
        with pytest.raises(TlsError), running_server(FakeControlPlane(), tls=files):
            pass
