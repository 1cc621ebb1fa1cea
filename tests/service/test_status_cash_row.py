"""``tradefleet status`` names the account figure it shows ``cash`` (the bot's cash: a position
is paid from it at entry), and says so when it is below zero with a position open: on a
margin account (a perpetual, MetaTrader 5) a long's notional is out of it, and the row read
``balance -15,652.06 USDT`` against a venue wallet of about 99,983, which users took for a
debt."""

from __future__ import annotations

import dataclasses

from rich.console import Console

from tests.service.fakes import FakeControlPlane
from tradefleet_runtime.service.cli_control import _print_status


def _printed(**changes: object) -> str:
    status = dataclasses.replace(FakeControlPlane().status, **changes)  # type: ignore[arg-type]
    console = Console(record=True, width=200)
    _print_status(console, status)
    return " ".join(console.export_text().replace("│", " ").split())


def test_negative_cash_with_a_position_says_what_it_is() -> None:
    text = _printed(balance=-15_652.06, equity=10_093.05, open_positions=1)
    assert "cash -15,652.06 USDT (open positions are paid from it at entry;" in text
    assert "balance" not in text


def test_cash_of_a_flat_account_is_shown_plainly() -> None:
    text = _printed(balance=9_000.0, open_positions=0)
    assert "cash 9,000.00 USDT" in text and "paid from it" not in text
