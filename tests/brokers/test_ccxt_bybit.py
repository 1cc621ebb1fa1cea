"""The ccxt broker's Bybit dialect where ccxt's own habits cost calls: before its first order
ccxt's Bybit client asks the venue whether the account is unified (two calls) and keeps the
answer. The broker asks once at start, so a burst of first orders does not ask once each."""

from __future__ import annotations

from pathlib import Path

from tests.brokers.harness import VenueHarness, harness_for

BURST = 12


def test_the_account_kind_is_asked_once_at_start_not_before_each_first_order(
    tmp_path: Path,
) -> None:
    with harness_for("bybit", tmp_path, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        ids = [f"uta{n:02d}" for n in range(BURST)]
        for cid in ids:
            harness.broker.submit(harness.order(cid))  # all at once: none waits for another
        for cid in ids:
            harness.wait_filled(cid)
        asked = [r.path for r in harness.fake.requests]
        assert asked.count("/v5/user/query-api") == 1, asked.count("/v5/user/query-api")
        assert asked.count("/v5/account/info") == 1
        assert asked.index("/v5/user/query-api") < asked.index("/v5/order/create")
