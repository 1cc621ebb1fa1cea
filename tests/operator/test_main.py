"""``tradefleet-operator`` refuses, at start, two listeners on one port (before kopf, the
metrics server or the webhook bind anything: otherwise the second fails mid-start with
"address already in use")."""

from __future__ import annotations

import pytest

from tradefleet_operator.main import build_parser, main, port_collision


def _collision(*argv: str) -> str | None:
    return port_collision(build_parser().parse_args(list(argv)))


def test_each_listener_on_its_own_port_passes() -> None:
    assert _collision() is None  # liveness 8080, metrics 9090
    assert _collision("--admission-port", "9443") is None
    assert _collision("--metrics-port", "0", "--liveness", "http://127.0.0.1:9090/healthz") is None
    assert _collision("--liveness", "") is None
    # another address: both can bind
    assert _collision("--liveness", "http://10.0.0.7:9090/healthz") is None


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--liveness", "http://127.0.0.1:9090/healthz"], ("--metrics-port 9090", "--liveness")),
        (["--admission-port", "8080"], ("--liveness", "--admission-port 8080")),
        (["--admission-port", "9090"], ("--metrics-port 9090", "--admission-port 9090")),
        (
            ["--bind-address", "10.0.0.7", "--liveness", "http://0.0.0.0:9090/healthz"],
            ("--metrics-port 9090", "--liveness"),
        ),
    ],
)
def test_two_listeners_on_one_port_are_named(argv: list[str], named: tuple[str, str]) -> None:
    problem = _collision(*argv)
    assert problem is not None and "use the same port" in problem
    assert all(option in problem for option in named), problem


def test_the_operator_refuses_to_start_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-A", "--admission-port", "8080"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tradefleet-operator: --liveness")
    assert "--admission-port 8080" in err
