"""Control calls and signals run between bars, and the orders they decide are created a second
after the last bar's close: a paper bot works them from the first bar that opens after the
call, never at the forming bar's open, a price from before the call (a halt's flatten filled
at the open of the bar during which the person pressed the button)."""

from __future__ import annotations

from pathlib import Path

from tests.service.paper_bots import (
    SIGNALS,
    paper_controller,
    paper_manifest,
    short_eurusd,
    wait_for_a_bar,
)
from tradefleet_runtime.journal import Journal


def test_a_command_runs_inside_the_engines_between_bars_clock(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite", durable=True)
    controller = paper_controller(
        paper_manifest("between", SIGNALS, short_eurusd(tmp_path)), journal
    )
    controller.start()
    try:
        wait_for_a_bar(controller)
        engine = controller.engine
        assert engine is not None
        assert engine._between_bars == 0  # on a bar's own orders: the bar's close
        assert controller._call(lambda: engine._between_bars) == 1
        assert engine._between_bars == 0
    finally:
        controller.stop()
        controller.wait(20)
        journal.close()
