"""The control CLI on bad input — an address, a timeout or a token file a person got wrong (W17).

The README promises exit 2 on bad usage, and docs/operations.md that a token file the CLI cannot
use is refused before any call, naming the file. Before: an address whose port is above 65535
(``127.0.0.1:115587``, 50051 with a digit too many) was wrapped by gRPC modulo 65536, so a
``stop`` (or a ``resume``) reached the bot on port 50051, one the person never named; an empty
address was answered with gRPC's ``UNKNOWN`` and a C-core trace, a port that is no number with
``UNAVAILABLE``, a negative, zero, NaN or infinite ``--timeout`` with ``DEADLINE_EXCEEDED`` (exit
1 each, as if the bot were down); an empty token file (what ``kubectl get secret ... | base64 -d
> read.token`` leaves when the Secret's name is wrong) was sent as no token and answered
``UNAUTHENTICATED: missing bearer token``, naming no file; a missing one was said without its
path. Each is now exit 2, one line naming ADDRESS, the option or the file, before any call.

W18, the read commands' number options: ``trades --page-size 99999999999999999999`` crashed with
a traceback (``ValueError: Value out of range``, building the protobuf request); ``-1``, ``1001``
were sent and refused by the bot naming its proto field (``INVALID_ARGUMENT ... (field
page_size)``, exit 1, as if the bot had failed); ``events --count 0`` or ``-5`` printed one event,
exit 0. Each is now exit 2 naming the option (``--page-size`` in 0..1000, ``--count`` >= 1).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.fakes import FakeControlPlane, running_server
from tradefleet_runtime import cli
from tradefleet_runtime.service import control_args
from tradefleet_runtime.service.api import EventKind
from tradefleet_runtime.service.auth import TokenAuth
from tradefleet_runtime.service.grpc_server import GrpcEndpoint, build_grpc_server

CONTROL = "w17-control-token-0123456789"
READ = "w17-read-token-0123456789"


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    folder = tmp_path / "auth"
    folder.mkdir()
    (folder / "control.token").write_text(CONTROL + "\n")
    (folder / "read.token").write_text(READ + "\n")
    return folder


@pytest.fixture
def control() -> FakeControlPlane:
    return FakeControlPlane()


@pytest.fixture
def endpoint(control: FakeControlPlane, tokens: Path) -> Iterator[GrpcEndpoint]:
    with running_server(control, auth=TokenAuth(tokens)) as endpoint:
        yield endpoint


def run_cli(*argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr with its whitespace runs made one space: rich wraps lines)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exit_:  # click's own usage errors
            code = int(exit_.code or 0)
    return code, out.getvalue(), " ".join(err.getvalue().split())


def says(err: str, text: str) -> bool:
    """Whether ``err`` says ``text``, whatever rich folded: a path longer than the console's
    width is cut inside a word."""
    return "".join(text.split()) in "".join(err.split())


# --- ADDRESS ----------------------------------------------------------------------------------


def test_a_port_above_65535_is_refused_not_wrapped_onto_another_bot(
    endpoint: GrpcEndpoint, control: FakeControlPlane, tokens: Path
) -> None:
    """`127.0.0.1:(port + 65536)` is not the bot on `port`: the stop must not reach it."""
    wrapped = f"127.0.0.1:{endpoint.port + 65536}"
    token = ["--token-file", str(tokens / "control.token"), "--timeout", "2"]
    for command in (["stop", wrapped, "--reason", "drill"], ["resume", wrapped, "--reason", "x"]):
        code, out, err = run_cli(*command, *token)
        assert control.calls == [], f"{command[0]} for {wrapped} reached the bot on {endpoint.port}"
        assert code == 2 and out == "", (code, err)
        assert says(err, f"ADDRESS '{wrapped}'") and "1..65535" in err, err
        assert says(err, f"dial port {endpoint.port} instead"), err


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("", "is empty"),
        ("127.0.0.1:notaport", "port 'notaport' is not a number in 1..65535"),
        ("127.0.0.1", "has no port"),  # gRPC dialled port 443
        ("127.0.0.1:0", "port 0 is not in 1..65535"),
    ],
)
def test_a_malformed_address_is_bad_usage_naming_address(
    address: str, said: str, tokens: Path
) -> None:
    code, out, err = run_cli(
        "positions", address, "--token-file", str(tokens / "read.token"), "--timeout", "1"
    )
    assert code == 2 and out == "", (code, err)
    assert says(err, f"ADDRESS '{address}'") and says(err, said), err
    assert "UNKNOWN" not in err and "UNAVAILABLE" not in err and "INTERNAL" not in err, err


def test_a_unix_socket_address_still_reaches_the_bot(control: FakeControlPlane) -> None:
    """`unix:PATH` and `unix:///PATH` worked before (gRPC took them as given): they still do."""
    with tempfile.TemporaryDirectory(prefix="tf-") as folder:  # a socket's path is short
        socket = f"{folder}/bot.sock"
        endpoint = build_grpc_server(control, address=f"unix:{socket}", auth=None)
        endpoint.server.start()
        endpoint.set_serving(True)
        try:
            for address in (f"unix:{socket}", f"unix://{socket}"):
                code, out, err = run_cli("status", address, "--json", "--timeout", "5")
                assert code == 0, (address, err)
                assert json.loads(out)["bot"] == "btc-ema"
        finally:
            endpoint.stop(grace=0.1)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:50051",
        "localhost:1",
        "[::1]:65535",
        "btc-ema.trading.svc.cluster.local:50051",
        "my_bot:50051",
        "unix:/var/run/bot.sock",
        "unix:///var/run/bot.sock",
        "unix:bot.sock",
    ],
)
def test_addresses_the_cli_dials(address: str) -> None:
    assert control_args.checked_address(address) == address


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("127.0.0.1:115587", "port 115587 is not in 1..65535 (gRPC would dial port 50051"),
        ("127.0.0.1:65536", "port 65536 is not in 1..65535"),
        ("127.0.0.1:-1", "port '-1' is not a number"),
        ("127.0.0.1:+80", "port '+80' is not a number"),
        ("127.0.0.1:", "has no port"),
        ("::1:50051", "an IPv6 address goes in brackets"),
        ("[bot]:50051", "[bot] is not an IPv6 address"),
        ("127.1:50051", "'127.1' is not an IPv4 address"),  # a resolver reads 127.0.0.1
        ("10.0.0.256:50051", "'10.0.0.256' is not an IPv4 address"),
        (" 127.0.0.1:50051", "is not a host name"),
        ("bot..ns:50051", "is not a host name"),
        ("-bot:50051", "is not a host name"),
        ("dns:///127.0.0.1:50051", "is in gRPC's dns: form, which the CLI does not take"),
        ("ipv4:127.0.0.1:50051", "is in gRPC's ipv4: form, which the CLI does not take"),
        # Each said "port 'bot' is not a number" or dialled another host than the one named.
        ("unix-abstract:bot", "is in gRPC's unix-abstract: form"),
        ("dns:50051", "is in gRPC's dns: form"),  # gRPC resolves a host named "50051"
        ("vsock:2:50051", "is in gRPC's vsock: form"),
        ("unix:", "unix: needs the socket's path"),
        ("unix://bot.sock", "unix:// takes an absolute path"),
    ],
)
def test_addresses_refused_naming_address(address: str, said: str) -> None:
    with pytest.raises(control_args.UsageProblem) as refused:
        control_args.checked_address(address)
    assert f"ADDRESS {address!r}" in str(refused.value) and said in str(refused.value)


# --- --timeout, --duration --------------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf", "1e12"])
def test_a_timeout_that_is_no_number_of_seconds_is_bad_usage_naming_it(
    endpoint: GrpcEndpoint, control: FakeControlPlane, tokens: Path, timeout: str
) -> None:
    """Each was DEADLINE_EXCEEDED at once (1e12: past gRPC's deadline range), exit 1."""
    code, out, err = run_cli(
        "pause",
        f"127.0.0.1:{endpoint.port}",
        "--reason",
        "x",
        "--token-file",
        str(tokens / "control.token"),
        "--timeout",
        timeout,
    )
    assert code == 2 and out == "", (code, err)
    assert "--timeout" in err and says(err, "a finite number of seconds > 0"), err
    assert control.calls == []


@pytest.mark.parametrize("duration", ["-1", "nan"])
def test_an_events_duration_that_is_no_number_of_seconds_is_bad_usage(
    endpoint: GrpcEndpoint, tokens: Path, duration: str
) -> None:
    """Before: ended at once as if the duration had run out, exit 0 and no event."""
    code, _, err = run_cli(
        "events",
        f"127.0.0.1:{endpoint.port}",
        "--token-file",
        str(tokens / "read.token"),
        "--duration",
        duration,
    )
    assert code == 2 and "--duration" in err, (code, err)


def test_a_timeout_in_range_is_taken() -> None:
    assert control_args.checked_seconds("--timeout", 0.5) == 0.5
    assert control_args.checked_seconds("--timeout", control_args.MAX_SECONDS) == 86_400.0


# --- token files ------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "\n", "  \t\r\n \n"])
def test_an_empty_token_file_is_refused_before_any_call_naming_the_file(
    endpoint: GrpcEndpoint, control: FakeControlPlane, tmp_path: Path, content: str
) -> None:
    empty = tmp_path / "control.token"
    empty.write_text(content)  # kubectl's jsonpath found nothing: base64 -d wrote nothing
    code, out, err = run_cli(
        "stop", f"127.0.0.1:{endpoint.port}", "--reason", "x", "--token-file", str(empty)
    )
    assert code == 2 and out == "", (code, err)
    assert says(err, f"token file {empty} is empty") and "UNAUTHENTICATED" not in err, err
    assert control.calls == []


def test_a_missing_token_file_is_named(
    endpoint: GrpcEndpoint, control: FakeControlPlane, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such" / "read.token"
    code, out, err = run_cli(
        "positions", f"127.0.0.1:{endpoint.port}", "--token-file", str(missing)
    )
    assert code == 2 and out == "", (code, err)
    assert says(err, f"cannot read the token file {missing}: No such file or directory"), err
    assert control.calls == []


# --- trades --page-size, events --count (W18) -------------------------------------------------


@pytest.mark.parametrize("size", ["99999999999999999999", "-1", "1001", "100000000"])
def test_trades_page_size_out_of_range_is_bad_usage_naming_the_option(
    endpoint: GrpcEndpoint, tokens: Path, size: str
) -> None:
    """Before: past protobuf's int32 a traceback (``ValueError: Value out of range``, building
    the request); else sent and refused by the bot naming its proto field, ``INVALID_ARGUMENT
    ... (field page_size)``, exit 1 as if the bot had failed."""
    code, out, err = run_cli(
        "trades",
        f"127.0.0.1:{endpoint.port}",
        "--token-file",
        str(tokens / "read.token"),
        "--page-size",
        size,
        "--timeout",
        "5",
    )
    assert code == 2 and out == "", (code, err)
    assert says(err, f"--page-size {size}: a number of trades in 1..1000"), err
    assert "INVALID_ARGUMENT" not in err and "field page_size" not in err, err


@pytest.mark.parametrize("size", ["0", "1", "1000"])
def test_trades_page_sizes_the_bot_takes_still_reach_it(
    endpoint: GrpcEndpoint, tokens: Path, size: str
) -> None:
    code, out, err = run_cli(
        "trades",
        f"127.0.0.1:{endpoint.port}",
        "--token-file",
        str(tokens / "read.token"),
        "--page-size",
        size,
        "--json",
    )
    assert code == 0, err
    assert "trades" in json.loads(out)


@pytest.mark.parametrize("count", ["0", "-5"])
def test_events_count_below_one_is_bad_usage_naming_the_option(
    endpoint: GrpcEndpoint, control: FakeControlPlane, tokens: Path, count: str
) -> None:
    """Before: taken, one event printed (the count is checked after each event), exit 0."""
    control.publish(EventKind.STATE, "w18: an event in the bot's recent buffer")
    code, out, err = run_cli(
        "events",
        f"127.0.0.1:{endpoint.port}",
        "--token-file",
        str(tokens / "read.token"),
        "--recent",
        "10",
        "--count",
        count,
        "--duration",
        "2",
    )
    assert code == 2 and out == "", (code, out, err)
    assert says(err, f"--count {count}: the number of events to stop after, at least 1"), err


def test_events_count_of_one_prints_one_event(
    endpoint: GrpcEndpoint, control: FakeControlPlane, tokens: Path
) -> None:
    control.publish(EventKind.STATE, "w18: the first")
    control.publish(EventKind.STATE, "w18: the second")
    code, out, err = run_cli(
        "events",
        f"127.0.0.1:{endpoint.port}",
        "--token-file",
        str(tokens / "read.token"),
        "--recent",
        "10",
        "--count",
        "1",
        "--duration",
        "5",
    )
    assert code == 0, err
    assert "w18: the first" in out and "w18: the second" not in out, out


def test_number_options_in_range_are_taken() -> None:
    assert control_args.checked_page_size(0) == 0
    assert control_args.checked_page_size(1000) == 1000
    assert control_args.checked_count(1) == 1
    with pytest.raises(control_args.UsageProblem, match="--page-size 1001"):
        control_args.checked_page_size(1001)
    with pytest.raises(control_args.UsageProblem, match="--count 0"):
        control_args.checked_count(0)
