"""The control commands' names, token variable and the checks of their address, timeouts and
number options, kept apart from the gRPC client so that building the CLI loads no grpc:
``tradefleet backtest`` must not (the commands themselves are in
``tradefleet_runtime.cli_control_commands``)."""

from __future__ import annotations

import ipaddress
import math
import re

from tradefleet_runtime.service.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

#: The environment variable a control command reads its bearer token from.
TOKEN_ENV = "TRADEFLEET_TOKEN"

CONTROL_COMMANDS = (
    "status",
    "positions",
    "orders",
    "trades",
    "events",
    "pause",
    "resume",
    "stop",
    "reset-risk",
)

#: The forms of ADDRESS, as a refusal says them.
ADDRESS_FORMS = "host:port, [IPv6]:port or unix:PATH, e.g. 127.0.0.1:50051"

#: The longest ``--timeout`` / ``--duration``: gRPC turns a deadline past 2**63 ns since the
#: epoch (about 7.4e9 s from 2026) into one already passed, and answered DEADLINE_EXCEEDED at
#: once, as if the bot were down. A day is longer than any call waits.
MAX_SECONDS = 86_400.0

_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,10}")
#: gRPC's other target schemes: an address starting ``scheme:`` is read as that scheme by gRPC,
#: whatever follows (``dns:50051`` resolves the host "50051"), never as ``host:port``.
_GRPC_SCHEMES = frozenset(("dns", "ipv4", "ipv6", "unix-abstract", "vsock"))


class UsageProblem(ValueError):
    """An argument or option of a control command that is no call to make: bad usage (exit 2),
    said before anything is dialled. The message names the argument or option."""


def checked_address(address: str) -> str:
    """``address`` if it is one the CLI may dial: ``host:port`` (a DNS name or an IPv4
    address), ``[IPv6]:port`` with a port in 1..65535, or ``unix:PATH`` / ``unix:///PATH``.

    ``UsageProblem`` naming ADDRESS otherwise. gRPC itself takes a port above 65535 modulo
    65536 (``127.0.0.1:115587`` dialled port 50051: a stop reached a bot nobody named), a
    missing one as 443, and answers an empty or unparsable address only once it is called
    (``UNKNOWN``, ``UNAVAILABLE``: exit 1, as if the bot were down)."""
    said = f"ADDRESS {address!r}"
    if address.startswith("unix:"):
        return _checked_unix(address, said)
    if not address:
        raise UsageProblem(f"{said} is empty; ADDRESS is {ADDRESS_FORMS}")
    scheme, colon, _ = address.partition(":")
    if colon and scheme.lower() in _GRPC_SCHEMES:
        raise UsageProblem(
            f"{said} is in gRPC's {scheme}: form, which the CLI does not take; "
            f"ADDRESS is {ADDRESS_FORMS}"
        )
    host, colon, port = address.rpartition(":")
    if not colon:
        raise UsageProblem(f"{said} has no port; ADDRESS is {ADDRESS_FORMS}")
    if host.startswith("[") and host.endswith("]"):
        _check_ipv6(host[1:-1], said)
    elif ":" in host:
        if _is_ipv6(host):
            raise UsageProblem(f"{said}: an IPv6 address goes in brackets, [IPv6]:port")
        # Another of gRPC's target forms (dns:///, ipv4:): not taken, so that the port is
        # always one checked here.
        raise UsageProblem(f"{said} is not {ADDRESS_FORMS}")
    else:
        _check_host(host, said)
    _check_port(port, said)
    return address


def _checked_unix(address: str, said: str) -> str:
    path = address.removeprefix("unix:")
    if path.startswith("//"):  # unix:///abs/path: gRPC takes only an absolute one
        path = path[2:]
        if not path.startswith("/"):
            raise UsageProblem(f"{said}: unix:// takes an absolute path (unix:///PATH)")
    if not path or not path.isprintable():
        raise UsageProblem(f"{said}: unix: needs the socket's path (unix:PATH)")
    return address


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _check_ipv6(host: str, said: str) -> None:
    if not _is_ipv6(host):
        raise UsageProblem(f"{said}: [{host}] is not an IPv6 address")


def _check_host(host: str, said: str) -> None:
    labels = host.removesuffix(".").split(".")
    if not host or len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UsageProblem(
            f"{said}: {host!r} is not a host name (letters, digits, '-', '_' and dots) "
            "nor an IPv4 address"
        )
    if labels[-1].isdigit():
        # No top-level domain is all digits: this is meant as an IPv4 address, and a resolver
        # takes short or out-of-range forms (127.1, 127.65536) for another address.
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise UsageProblem(f"{said}: {host!r} is not an IPv4 address (a.b.c.d)") from None


def _check_port(port: str, said: str) -> None:
    if not port:
        raise UsageProblem(f"{said} has no port; ADDRESS is {ADDRESS_FORMS}")
    if not _PORT.fullmatch(port):
        raise UsageProblem(f"{said}: port {port!r} is not a number in 1..65535")
    number = int(port)
    if not 1 <= number <= 65535:
        # Said with what gRPC would do with it: the bot on the wrapped port is a real one.
        wrapped = f" (gRPC would dial port {number % 65536} instead)" if number > 65535 else ""
        raise UsageProblem(f"{said}: port {number} is not in 1..65535{wrapped}")


def checked_seconds(option: str, value: float) -> float:
    """``value`` if it is a finite number of seconds > 0 and at most :data:`MAX_SECONDS`;
    ``UsageProblem`` naming ``option`` otherwise. gRPC takes a deadline of 0, below 0, NaN or
    past its range as one already passed (``DEADLINE_EXCEEDED``, as if the bot were down)."""
    if not (math.isfinite(value) and 0.0 < value <= MAX_SECONDS):
        raise UsageProblem(
            f"{option} {value:g}: a finite number of seconds > 0 (at most {MAX_SECONDS:.0f})"
        )
    return value


def checked_page_size(value: int) -> int:
    """``value`` if it is a ``trades --page-size`` the bot takes: 1..``MAX_PAGE_SIZE``, or 0
    for its default; ``UsageProblem`` naming ``--page-size`` otherwise. Sent as it was, one
    past protobuf's int32 raised ``ValueError`` building the request (a traceback), and any
    other was refused by the bot naming its field (``page_size``), exit 1 as if it had failed."""
    if not 0 <= value <= MAX_PAGE_SIZE:
        raise UsageProblem(
            f"--page-size {value}: a number of trades in 1..{MAX_PAGE_SIZE}, "
            f"or 0 for the bot's default ({DEFAULT_PAGE_SIZE})"
        )
    return value


def checked_count(value: int) -> int:
    """``value`` if it is an ``events --count`` of at least 1; ``UsageProblem`` naming
    ``--count`` otherwise. The count is checked after each event printed, so 0 or below
    printed one event and ended, exit 0, as if it had been asked for one."""
    if value < 1:
        raise UsageProblem(f"--count {value}: the number of events to stop after, at least 1")
    return value
