"""What a trader pointing alerts at a bot learns from the user docs, and that every refusal of an
alert's body names the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.webhook_client import signal_body
from tradefleet_runtime.service.webhook import Refusal, parse_signal_body

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "literal",
    [b"NaN", b"Infinity", b"-Infinity", b"1." + b"0" * 70],
    ids=["nan", "infinity", "minus-infinity", "long-literal"],
)
def test_a_volume_that_is_not_a_finite_number_is_refused_naming_volume(literal: bytes) -> None:
    """An alert template that renders ``{{strategy.order.contracts}}`` as ``NaN`` (or a
    runaway literal) is refused 400 ``malformed`` naming ``volume``, as ``1e999`` is."""
    body = signal_body().replace(b'"volume": 0.01', b'"volume": ' + literal)
    assert b'"volume": ' + literal in body
    with pytest.raises(Refusal) as refused:
        parse_signal_body(body)
    assert refused.value.status == 400
    assert "volume" in refused.value.reason, refused.value.reason


def _user_docs() -> str:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(page.read_text() for page in pages)


@pytest.mark.parametrize(
    "needed",
    [
        "/webhook/signal",  # where to point the alert
        "X-Tradefleet-Signature",  # how to sign it
        "X-Tradefleet-Timestamp",
        "X-Tradefleet-Nonce",  # what the optional header does (and does not)
        "-webhook-keys",  # the Secret the operator mounts (``<name>-webhook-keys``)
        "spec.runtime.webhook: true",  # how to turn it on in a cluster
        "same timestamp and body",  # how a retry stays one trade
        "relay",  # TradingView alerts cannot sign
    ],
)
def test_the_user_docs_say_how_to_send_a_signed_alert(needed: str) -> None:
    """A user page gives the webhook's path, its headers, how to turn it on in a cluster and
    where its keys live, so a trader can send one alert from the docs alone."""
    assert needed in _user_docs()
