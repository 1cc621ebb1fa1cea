"""A bot refused for a reason that names its field fails with one log line, not a traceback
that buries the reason (a credentials file, a symbol, the data)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.service.paper_bots import SIGNALS, paper_controller, paper_manifest, wait_until
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import Phase


def test_a_refusal_that_names_its_field_is_logged_as_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "twice.csv"
    row = "2017-01-02 00:00:00,1.05,1.06,1.04,1.05,100\n"
    data.write_text("time,open,high,low,close,volume\n" + row + row)  # one bar twice
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    controller = paper_controller(paper_manifest("refused-bot", SIGNALS, data), journal)
    try:
        with caplog.at_level(logging.ERROR, logger="tradefleet.service"):
            controller.start()
            wait_until(lambda: controller.phase is Phase.FAILED, controller)
        (record,) = [r for r in caplog.records if "refused-bot failed" in r.getMessage()]
        assert record.exc_info is None  # the reason, not a traceback
        assert "duplicate" in record.getMessage().lower()
        assert "DataError" in (controller.failure or "")
    finally:
        controller.stop()
        controller.wait(10)
        journal.close()
