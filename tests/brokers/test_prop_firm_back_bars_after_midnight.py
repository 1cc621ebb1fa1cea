"""prop-firm's day start after a restart over a stop the venue filled
after midnight while the bot was down, when the bot comes back *bars later* (the midnight close
came while it was down, history). Set-up: tests/brokers/loss_while_down.py, as in
tests/brokers/test_day_start_after_loss_while_down.py's "back two bars later" case, there
checked for circuit-breaker only.

Day D: the first run buys 0.5 BTC at 50,000 (stop 47,000). At 00:30 of D+1 the market gaps to
45,500 and the venue's stop sells there (about 2,274 lost: 91% of the 2,500 daily allowance,
past prop-firm's 80% block). The bot is back at 01:10: the bars closing at 23:00 and 00:00 are
history; the one closing at 01:00 (at 45,500) is its first live bar, on which it enters again.

prop-firm's first look at D+1 is at 01:00. On ``day_start_from: equity`` its start left out
what the fill made priced at the marks *then* (``equity_made`` at 45,500, the fill's own price:
about its fee), not at the day's first close (50,000): the start was the account after the
loss, D+1 had lost nothing, and the entry went with the whole allowance. Now it takes the
equity last seen the day before, when higher, as circuit-breaker does after such a restart
(``PropFirm._seen_before``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers.harness import VenueHarness
from tests.brokers.loss_while_down import (
    DAILY_GAP,
    HOUR,
    D,
    Entry,
    _usdm,  # noqa: F401  (the fixture)
    back_at,
    crash_while_down,
    first_life,
    hourly,
    orders_sent,
    run,
)

AFTER_MIDNIGHT = D + 24 * HOUR + 1800  # 00:30 of D+1: the stop fills
BACK_LATER = D + 25 * HOUR + 600  # 01:10: back two closes after midnight


@pytest.mark.parametrize("basis", ["equity", "balance"])
def test_prop_firm_counts_a_loss_after_midnight_when_back_bars_later(
    tmp_path: Path, usdm: VenueHarness, monkeypatch: pytest.MonkeyPatch, basis: str
) -> None:
    chain = f"- name: prop-firm\n  params: {{timezone: UTC, day_start_from: {basis}}}\n"
    first_life(tmp_path, usdm, chain)
    crash_while_down(usdm, AFTER_MIDNIGHT, DAILY_GAP)
    sent = orders_sent(tmp_path)
    back_at(monkeypatch, BACK_LATER)
    live = hourly(D + 24 * HOUR, DAILY_GAP)  # closes 01:00: the first live bar
    run(
        tmp_path,
        usdm,
        chain,
        [
            hourly(D + 21 * HOUR, 50_000.0),  # handled by the first run
            hourly(D + 22 * HOUR, 50_000.0),  # closed 23:00, while down: history
            hourly(D + 23 * HOUR, 50_000.0),  # closed 00:00, while down: history
            live,
        ],
        Entry(live.ts, 0.1, 44_000.0),
        {0: BACK_LATER},
    )
    assert orders_sent(tmp_path) == sent, (
        f"day_start_from {basis}: the entry after the restart was sent although D+1 lost "
        "2,274 of its 2,500 allowance while the bot was down (back two bars after midnight)"
    )
