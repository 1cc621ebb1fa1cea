"""A bracket's stop-loss is worked from the moment its entry fills, on the entry's own bar too,
and docs/writing-a-strategy.md says so (it said "on the bars after the entry fills", so a
user checking trades by hand expected an entry's bar never to stop it out).
"""

from __future__ import annotations

from pathlib import Path

from tradefleet_runtime.sdk import NoParams, Strategy
from tradefleet_runtime.sdk.testing import make_bar, run_strategy

PAGE = Path(__file__).resolve().parents[2] / "docs" / "writing-a-strategy.md"


class _BuyOnce(Strategy):
    def __init__(self) -> None:
        super().__init__(NoParams())
        self.sent = False

    def on_bar(self, bar) -> None:  # type: ignore[no-untyped-def]
        if not self.sent:
            self.sent = True
            self.ctx.buy(bar.symbol, 1.0, stop_loss=95.0, tag="entry")


def test_the_page_says_a_stop_can_fill_on_its_entry_bar() -> None:
    bars = [
        make_bar(100, 100, 100, 100, index=0),
        make_bar(100, 101, 94, 99, index=1),  # the entry's bar: its low goes through 95
        make_bar(99, 100, 98, 99, index=2),
    ]
    run = run_strategy(_BuyOnce(), bars, warmup=False)
    # What the broker does: entry at bar 1's open, its stop on bar 1 itself.
    assert [(f.reason, f.ts) for f in run.fills] == [
        ("entry", bars[1].ts),
        ("stop_loss", bars[1].ts),
    ]
    text = " ".join(PAGE.read_text().split())
    assert "Stop-loss and take-profit orders are worked from the moment the entry fills" in text
    assert "on the bars after the entry fills" not in text
