"""The ``ccxt`` data feed against the fake venues, driven by the real ccxt.

Each test scripts candles on the venue's own clock (``tests/venues/candle_replay``): the feed's
sleeps move the fake's time forward, so a test plays hundreds of minutes in well under a second
of waiting, and a candle still forming looks different from its final form.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.feeds.conftest import MINUTE_MS, T0_MS, Venue
from tests.venues.candle_replay import ReplayClock, ScriptCandle, wave
from tradefleet_plugins.feeds.ccxt_feed import WAIT_SLICE_S, CcxtFeed
from tradefleet_plugins.feeds.ccxt_feed_params import CcxtFeedParams
from tradefleet_runtime.sdk import Bar, DataError, FeedRequest

ROOT = Path(__file__).resolve().parents[2]
NOW_MS = T0_MS + 300 * MINUTE_MS + 10_000  # candle 300 is forming, 299 the newest closed


def script(venue: Venue, count: int, skip: dict[int, tuple[int, ...]] | None = None) -> list:
    """``count`` minutes of candles for each of the venue's symbols (skipping some)."""
    candles: list[ScriptCandle] = []
    for k, market_id in enumerate(venue.ids):
        base = 50_000.0 if k == 0 else 3_000.0
        candles += wave(market_id, T0_MS, count, base=base, skip=(skip or {}).get(k, ()))
    return candles


def expected(venue: Venue, candles: list[ScriptCandle]) -> dict[tuple[str, int], ScriptCandle]:
    bot_symbol = dict(zip(venue.ids, venue.symbols, strict=True))
    return {(bot_symbol[c.symbol], c.open_ms // 1000): c for c in candles}


def take(bars: Iterator[Bar], count: int, clock: ReplayClock) -> list[Bar]:
    """The first ``count`` bars, each checked closed on the venue's clock when it came."""
    out: list[Bar] = []
    for bar in bars:
        assert bar.close_ts * 1000 <= clock.venue_ms(), (
            f"{bar} handed out at venue time {clock.venue_ms()}, before it closed"
        )
        out.append(bar)
        if len(out) == count:
            break
    return out


def same_as_script(bar: Bar, candle: ScriptCandle) -> bool:
    return (bar.open, bar.high, bar.low, bar.close, bar.volume) == pytest.approx(
        (candle.open, candle.high, candle.low, candle.close, candle.volume)
    )


def minute(index: int) -> int:
    return (T0_MS + index * MINUTE_MS) // 1000


def test_warmup_history_first_then_live_candles_in_symbol_order(venue: Venue) -> None:
    candles = script(venue, 340)
    clock = venue.clock(candles, NOW_MS)
    feed = venue.feed(clock, page_limit=50)  # 120 warm-up candles: three pages per symbol

    bars = take(feed.bars(FeedRequest(venue.symbols, 60, warmup_bars=120)), 2 * 150, clock)

    # Warm-up: the 120 candles closed before now, oldest first, both symbols at each minute.
    assert [(b.ts, b.symbol) for b in bars] == [
        (minute(i), s) for i in range(180, 330) for s in venue.symbols
    ]
    script_of = expected(venue, candles)
    assert all(same_as_script(b, script_of[(b.symbol, b.ts)]) for b in bars)
    klines = [r for r in venue.fake.requests if r.path == venue.klines_path]
    assert len(klines) >= 2 * 3 + 30  # paged history, then one ask per symbol and minute
    report = feed.report()
    assert (report.bars, report.gaps, report.first_ts) == (300, 0, minute(180))


def test_no_unfinished_candle_even_when_the_venue_clock_lags_the_local_one(venue: Venue) -> None:
    # The venue's clock is 45 s behind this host's: by the local clock every candle closes
    # 45 s before it does on the venue, when the venue still shows it half-formed.
    venue.fake.state.clock.offset_ms = -45_000
    candles = script(venue, 400)
    clock = venue.clock(candles, NOW_MS)
    feed = venue.feed(clock)

    bars = take(feed.bars(FeedRequest(venue.symbols, 60, warmup_bars=5)), 2 * 60, clock)

    script_of = expected(venue, candles)
    formed = [b for b in bars if not same_as_script(b, script_of[(b.symbol, b.ts)])]
    assert formed == []
    # The venue's newest closed candle at the start is 298: five of warm-up, then live.
    assert [b.ts for b in bars[::2]] == [minute(i) for i in range(294, 354)]


def test_the_forming_candle_is_dropped_not_handed_out(binance_spot_venue: Venue) -> None:
    venue = binance_spot_venue
    candles = script(venue, 320)
    clock = venue.clock(candles, NOW_MS)
    feed = venue.feed(clock, settle_s=0.0)
    bars = take(feed.bars(FeedRequest(venue.symbols[:1], 60, warmup_bars=3)), 4, clock)
    # The venue answered with candle 300 too (open 10 s ago): it came only once it closed
    # (``take`` checks the venue's time), complete.
    assert [b.ts for b in bars] == [minute(297), minute(298), minute(299), minute(300)]
    assert same_as_script(bars[-1], expected(venue, candles)[(venue.symbols[0], minute(300))])
    first = next(r for r in venue.fake.requests if r.path == venue.klines_path)
    assert int(first.params["startTime"]) == T0_MS + 297 * MINUTE_MS


@pytest.mark.parametrize("policy", ["trade", "fill"])
def test_gaps_are_counted_and_handled_by_the_gap_policy(venue: Venue, policy: str) -> None:
    # The first symbol lacks three history candles; both lack two live ones.
    skip = {0: (250, 251, 252, 310, 311), 1: (310, 311)}
    candles = script(venue, 340, skip)
    clock = venue.clock(candles, NOW_MS)
    feed = venue.feed(clock, gap_policy=policy)

    # Minutes 240 to 314: 2 x 75 candles, 7 of them missing (filled or not).
    count = 2 * 75 - (7 if policy == "trade" else 0)
    bars = take(feed.bars(FeedRequest(venue.symbols, 60, warmup_bars=60)), count, clock)

    report = feed.report()
    assert (report.gaps, report.missing_bars) == (3, 7)
    first, second = venue.symbols
    assert any("gap of 3 candle(s)" in note and first in note for note in report.notes)
    at_250 = [b for b in bars if b.ts == minute(250)]
    if policy == "trade":
        assert [b.symbol for b in at_250] == [second]
        assert report.filled_bars == 0
    else:
        assert [b.symbol for b in at_250] == [first, second]
        flat = at_250[0]
        assert flat.open == flat.high == flat.low == flat.close and flat.volume == 0
        assert report.filled_bars == 7
    assert bars[-1].ts == minute(314)
    # Still strictly one bar per symbol and minute, in order.
    keys = [(b.ts, venue.symbols.index(b.symbol)) for b in bars]
    assert keys == sorted(set(keys))


def test_gap_policy_fail_names_the_gap_and_the_param(bybit_venue: Venue) -> None:
    venue = bybit_venue
    candles = script(venue, 320, {0: (280, 281)})
    clock = venue.clock(candles, NOW_MS)
    feed = venue.feed(clock, gap_policy="fail")
    with pytest.raises(DataError, match=r"2 missing; spec\.data\.params\.gap_policy: fail"):
        take(feed.bars(FeedRequest(venue.symbols, 60, warmup_bars=30)), 100, clock)


def test_5xx_429_and_dropped_connections_are_retried_with_backoff(venue: Venue) -> None:
    candles = script(venue, 320)
    clock = venue.clock(candles, NOW_MS)
    feed = venue.feed(clock, backoff_s=0.05, page_limit=10)
    faults = venue.fake.faults
    path = venue.klines_path
    faults.inject("server_error", path=path, status=503, times=2)
    faults.inject("rate_limit", path=path, retry_after=3)
    faults.inject("drop_connection", path=path)
    started = clock.time()

    bars = take(feed.bars(FeedRequest(venue.symbols, 60, warmup_bars=30)), 2 * 30, clock)

    assert [name for name, _, _ in faults.history] == [
        "server_error",
        "server_error",
        "rate_limit",
        "drop_connection",
    ]
    assert feed.retries == 4
    assert "4 request(s) retried" in " ".join(feed.report().notes)
    # The warm-up waited out the venue's Retry-After / limit reset (3 s; Bybit's reset time
    # is rounded to its second), far beyond the 0.05 s backoff.
    assert clock.time() - started >= 2.0
    script_of = expected(venue, candles)
    assert [b.ts for b in bars[::2]] == [minute(i) for i in range(270, 300)]
    assert all(same_as_script(b, script_of[(b.symbol, b.ts)]) for b in bars)


def test_backoff_doubles_with_jitter_up_to_the_ceiling(
    binance_spot_venue: Venue, caplog: pytest.LogCaptureFixture
) -> None:
    venue = binance_spot_venue
    clock = venue.clock(script(venue, 310), NOW_MS)
    feed = venue.feed(clock, backoff_s=1.0, backoff_max_s=4.0)
    venue.fake.faults.inject("server_error", path=venue.klines_path, status=502, times=5)
    with caplog.at_level("WARNING", logger="tradefleet.feeds.ccxt"):
        take(feed.bars(FeedRequest(venue.symbols[:1], 60, warmup_bars=2)), 2, clock)
    # Each retry's wait, as the feed chose and logged it: [0.5, 1], [1, 2], [2, 4], [2, 4]...
    # (Read from the log, not regrouped from the slices: a wait whose remainder is a crumb
    # ends on a full slice and would run into the next one.)
    waits = [float(r.args[4]) for r in caplog.records if "retry" in r.msg]  # type: ignore[index]
    assert len(waits) == 5
    for attempt, wait in enumerate(waits):
        ceiling = min(4.0, 2.0**attempt)
        assert ceiling / 2 <= wait <= ceiling, (attempt, waits)
    # Slept in slices of at most WAIT_SLICE_S, every wait whole (to the crumb it may skip).
    assert all(s <= WAIT_SLICE_S for s in clock.slept)
    assert sum(clock.slept) >= sum(waits) - 5e-3


def test_a_stop_request_ends_the_retries_against_a_venue_that_is_down(
    binance_spot_venue: Venue,
) -> None:
    """Retried without end (no ``max_retries``), a venue that is down would hold a bot that
    is asked to stop past its grace period: the stop ends the stream at the next slice of a
    wait, without another request and without an error."""
    venue = binance_spot_venue
    clock = venue.clock(script(venue, 310), NOW_MS)
    feed = venue.feed(clock, backoff_s=1.0, backoff_max_s=30.0)
    venue.fake.faults.inject("server_error", path=venue.klines_path, status=503, times=1000)
    stopped_after = 5.0  # seconds of the feed's clock
    start = clock.time()

    def should_stop() -> bool:
        return clock.time() - start >= stopped_after

    request = FeedRequest(venue.symbols, 60, warmup_bars=5, should_stop=should_stop)
    bars = list(feed.bars(request))  # ends: no DataError, no endless retry
    assert bars == []
    assert feed.retries >= 2
    # Stopped at the first slice after the stop: not the rest of a (growing) backoff.
    assert clock.time() - start <= stopped_after + WAIT_SLICE_S + 1e-6
    asked = len([r for r in venue.fake.requests if r.path == venue.klines_path])
    assert asked == feed.retries  # each failure waited for its retry; none sent after the stop


def test_a_stop_request_ends_the_wait_for_the_next_candle(venue: Venue) -> None:
    clock = venue.clock(script(venue, 400), NOW_MS)
    feed = venue.feed(clock)
    stop = False
    request = FeedRequest(venue.symbols, 60, warmup_bars=3, should_stop=lambda: stop)
    bars = []
    for bar in feed.bars(request):
        bars.append(bar)
        if len(bars) == 2 * 5:  # warm-up and two live candles: then asked to stop
            stop = True
    assert [b.ts for b in bars[::2]] == [minute(i) for i in range(297, 302)]


def test_retries_stop_at_max_retries_naming_the_param(venue: Venue) -> None:
    clock = venue.clock(script(venue, 310), NOW_MS)
    feed = venue.feed(clock, backoff_s=0.01, max_retries=2)
    venue.fake.faults.inject("server_error", path=venue.klines_path, status=503, times=10)
    with pytest.raises(DataError, match=r"after 3 attempt\(s\).*spec\.data\.params\.max_retries"):
        take(feed.bars(FeedRequest(venue.symbols, 60, warmup_bars=5)), 10, clock)
    assert feed.retries == 2


def test_an_authentication_error_is_not_retried_and_names_the_param(venue: Venue) -> None:
    clock = venue.clock(script(venue, 310), NOW_MS)
    feed = venue.feed(clock, backoff_s=0.01)
    venue.fake.faults.inject("reject", path=venue.klines_path, **venue.auth_reject)
    with pytest.raises(DataError, match=r"spec\.data\.params\.exchange: .*unauthorised"):
        take(feed.bars(FeedRequest(venue.symbols, 60, warmup_bars=5)), 10, clock)
    assert feed.retries == 0
    assert len([r for r in venue.fake.requests if r.path == venue.klines_path]) == 1


def test_an_unknown_symbol_names_its_field(venue: Venue) -> None:
    clock = venue.clock([], NOW_MS)
    feed = venue.feed(clock)
    with pytest.raises(DataError, match=r"spec\.market\.symbols\[1\]: 'DOGE/EUR' is not a"):
        next(iter(feed.bars(FeedRequest((venue.symbols[0], "DOGE/EUR"), 60))))
    mapped = venue.feed(clock, symbols={"BTC": "NOPE/USDT"})
    with pytest.raises(DataError, match=r"spec\.data\.params\.symbols\.BTC: 'NOPE/USDT'"):
        next(iter(mapped.bars(FeedRequest(("BTC",), 60))))


def test_a_symbol_the_venue_refuses_is_not_retried(bybit_venue: Venue) -> None:
    venue = bybit_venue
    clock = venue.clock(script(venue, 310), NOW_MS)
    feed = venue.feed(clock, backoff_s=0.01)
    venue.fake.faults.inject("reject", path=venue.klines_path, msg="Not supported symbols")
    with pytest.raises(DataError, match=r"spec\.market\.symbols: bybit does not know 'BTCUSDT'"):
        take(feed.bars(FeedRequest(venue.symbols, 60, warmup_bars=5)), 10, clock)
    assert feed.retries == 0


def test_a_symbol_mapped_in_params_is_fetched_under_the_venue_name(
    binance_spot_venue: Venue,
) -> None:
    venue = binance_spot_venue
    candles = script(venue, 310)
    clock = venue.clock(candles, NOW_MS)
    feed = venue.feed(clock, symbols={"XBT": "BTC/USDT"})
    bars = take(feed.bars(FeedRequest(("XBT",), 60, warmup_bars=4)), 4, clock)
    assert [(b.symbol, b.ts) for b in bars] == [("XBT", minute(i)) for i in range(296, 300)]


def test_a_restarted_bot_gets_warmup_before_its_last_bar_and_everything_since(
    venue: Venue,
) -> None:
    clock = venue.clock(script(venue, 320), NOW_MS)
    feed = venue.feed(clock, page_limit=25)
    # The last run handled the candle of minute 249 (it closed at minute 250).
    request = FeedRequest(venue.symbols, 60, warmup_bars=10, resume_after_ts=minute(250))
    bars = take(feed.bars(request), 2 * 62, clock)
    assert [b.ts for b in bars[::2]] == [minute(i) for i in range(240, 302)]


def test_end_stops_the_feed_before_the_candle_opening_at_it(bybit_venue: Venue) -> None:
    venue = bybit_venue
    clock = venue.clock(script(venue, 330), NOW_MS)
    feed = venue.feed(clock, end="2026-01-01T05:05:00")  # minute 305
    bars = list(feed.bars(FeedRequest(venue.symbols, 60, warmup_bars=3)))
    assert [b.ts for b in bars[::2]] == [minute(i) for i in range(297, 305)]


def test_an_unsupported_timeframe_names_the_field(binance_spot_venue: Venue) -> None:
    venue = binance_spot_venue
    feed = venue.feed(venue.clock([], NOW_MS))
    with pytest.raises(DataError, match=r"spec\.market\.timeframe: binance has no 7m candles"):
        next(iter(feed.bars(FeedRequest(venue.symbols, 7 * 60))))


def test_waits_are_sliced_and_the_rate_limiter_is_on(binance_spot_venue: Venue) -> None:
    venue = binance_spot_venue
    clock = venue.clock(script(venue, 320), NOW_MS)
    feed = venue.feed(clock)
    idled: list[int] = []
    request = FeedRequest(venue.symbols, 60, warmup_bars=2, idle=lambda: idled.append(1))
    take(feed.bars(request), 2 * 12, clock)
    assert clock.slept and max(clock.slept) <= WAIT_SLICE_S
    # The runtime's idle hook ran at least once per slice waited (commands served meanwhile).
    assert len(idled) >= len(clock.slept)
    assert feed.client.enableRateLimit is True
    default = CcxtFeed(CcxtFeedParams(exchange="binance"))
    assert default.client.enableRateLimit is True and default.client.rateLimit > 1


def test_params_are_checked_naming_the_field() -> None:
    with pytest.raises(DataError, match=r"spec\.data\.params\.exchange: 'nosuchvenue'"):
        CcxtFeed(CcxtFeedParams(exchange="nosuchvenue"))
    with pytest.raises(ValidationError, match="exchange"):
        CcxtFeedParams(exchange="Binance!")
    with pytest.raises(ValidationError, match="api_url"):
        CcxtFeedParams(exchange="binance", api_url="ftp://example.com")
    with pytest.raises(ValidationError, match="end"):
        CcxtFeedParams(exchange="binance", end="tomorrow")
    with pytest.raises(ValidationError, match="backoff_max_s"):
        CcxtFeedParams(exchange="binance", backoff_s=10, backoff_max_s=1)


def test_sandbox_switches_to_the_venue_testnet() -> None:
    feed = CcxtFeed(CcxtFeedParams(exchange="binance", sandbox=True))
    assert feed.client.isSandboxModeEnabled
    assert all("testnet" in url for url in feed.client.urls["api"].values() if "api/v3" in url)


def test_listing_plugins_does_not_load_ccxt() -> None:
    probe = textwrap.dedent(
        """
        import sys, contextlib, io
        from tradefleet_runtime import cli
        # A broker and a data feed are both named ccxt: show each by its kind.
        shows = [["plugins", "show", "ccxt", "--kind", kind] for kind in ("data", "broker")]
        for argv in (["plugins", "list", "--json"], *shows):
            with contextlib.redirect_stdout(io.StringIO()) as out:
                assert cli.main(argv) == 0, argv
            assert argv[1] == "list" or "exchange" in out.getvalue()
        print("ccxt" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
