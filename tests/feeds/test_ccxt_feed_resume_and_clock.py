"""The ccxt feed across a restart whose history the venue no longer has, a host clock that
steps back, a venue's long Retry-After, a symbol whose candle comes late, and two bot symbols
naming one market: against the fake venues, through the real ccxt.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.feeds.conftest import MINUTE_MS, T0_MS, Venue
from tests.venues.candle_replay import ReplayClock, ScriptCandle, wave
from tests.venues.kraken.server import FakeKraken
from tests.venues.kraken.state import Candle
from tradefleet_plugins.feeds.candle_stitch import CandleStitcher, iso, short_history
from tradefleet_plugins.feeds.ccxt_feed import WAIT_SLICE_S, CcxtFeed, retry_delay
from tradefleet_plugins.feeds.ccxt_feed_params import CcxtFeedParams
from tradefleet_plugins.feeds.csv_params import GapPolicy
from tradefleet_runtime.sdk import Bar, DataError, FeedReport, FeedRequest

T0 = T0_MS // 1000
TF = 60
NOW_MS = T0_MS + 300 * MINUTE_MS + 10_000  # candle 300 is forming, 299 the newest closed


def minute(index: int) -> int:
    return T0 + index * TF


def script(venue: Venue, count: int) -> list[ScriptCandle]:
    candles: list[ScriptCandle] = []
    for k, market_id in enumerate(venue.ids):
        candles += wave(market_id, T0_MS, count, base=50_000.0 if k == 0 else 3_000.0)
    return candles


class SteppingClock(ReplayClock):
    """A replay clock whose wall clock (``time``) can be stepped apart from the monotonic
    one (``monotonic``), which — like the venue's time — only moves with the sleeps."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.wall_step_s = 0.0
        super().__init__(*args, **kwargs)

    def monotonic(self) -> float:
        return super().time()

    def time(self) -> float:
        return super().time() + self.wall_step_s


def recording_requests(feed: CcxtFeed, clock: ReplayClock) -> list[int]:
    """The venue's time (ms) of every ``fetch_ohlcv`` the feed sends from now on."""
    sent: list[int] = []
    original = feed.client.fetch_ohlcv

    def fetch_ohlcv(*args: Any, **kwargs: Any) -> Any:
        sent.append(clock.venue_ms())
        return original(*args, **kwargs)

    feed.client.fetch_ohlcv = fetch_ohlcv
    return sent


# -- 1. a restart the venue's history no longer reaches --------------------------------------


class KrakenClock:
    """Moves the Kraken fake's frozen clock with the feed's sleeps."""

    def __init__(self, fake: FakeKraken, now_s: float) -> None:
        self.fake = fake
        self.now = now_s
        fake.state.clock.frozen_ms = int(now_s * 1000)

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.fake.state.clock.frozen_ms = int(self.now * 1000)


@pytest.fixture
def kraken() -> Iterator[tuple[FakeKraken, str]]:
    """The Kraken fake with 3000 one-minute candles up to T0 (it serves the newest 720)."""
    fake = FakeKraken(prices={})
    fake.start()
    try:
        pair = next(iter(fake.state.pairs.values()))
        with fake.state.lock:
            for i in range(3000):
                price = Decimal(50_000 + i)
                candle = Candle(
                    (T0 - (3000 - i) * TF) * 1000, price, price + 5, price - 5, price, Decimal(1)
                )
                fake.state.apply_candle(pair.id, candle)
        yield fake, pair.id
    finally:
        fake.stop()


def kraken_feed(fake: FakeKraken, pair_id: str, **params: Any) -> tuple[CcxtFeed, str]:
    values = {"exchange": "kraken", "api_url": fake.url, "rate_limit_ms": 1, "timeout_ms": 3000}
    feed = CcxtFeed(CcxtFeedParams.model_validate({**values, **params}))
    feed.clock = KrakenClock(fake, T0 + 30)
    feed.client.load_markets()
    symbol = next(s for s, m in feed.client.markets.items() if m["id"] == pair_id)
    return feed, symbol


def test_a_restart_beyond_the_venues_history_is_a_gap_from_the_last_handled_candle(
    kraken: tuple[FakeKraken, str],
) -> None:
    fake, pair_id = kraken
    feed, symbol = kraken_feed(fake, pair_id)
    # The last run handled the candle that closed 20 hours ago; Kraken's 720 candles reach
    # back only 12 hours: 481 candles after it are gone.
    resume = minute(-1200)
    request = FeedRequest((symbol,), TF, warmup_bars=50, resume_after_ts=resume)
    bars: list[Bar] = []
    for bar in feed.bars(request):
        bars.append(bar)
        if len(bars) == 700:
            break

    assert bars[0].ts == minute(-719)  # the oldest candle the venue still serves
    report = feed.report()
    assert (report.gaps, report.missing_bars) == (1, 481)
    gap = f"{symbol}: gap of 481 candle(s) between {iso(minute(-1201))} and {iso(minute(-719))}"
    assert any(note.startswith(gap) for note in report.notes), report.notes
    # The warm-up before the resume point could not be had either: said, not counted.
    assert any(note.startswith(f"{symbol}: warm-up short by 50 candle(s)") for note in report.notes)


def test_a_restart_beyond_the_venues_history_fails_under_gap_policy_fail(
    kraken: tuple[FakeKraken, str],
) -> None:
    fake, pair_id = kraken
    feed, symbol = kraken_feed(fake, pair_id, gap_policy="fail")
    request = FeedRequest((symbol,), TF, warmup_bars=5, resume_after_ts=minute(-1200))
    with pytest.raises(DataError, match=r"481 missing; spec\.data\.params\.gap_policy: fail"):
        next(iter(feed.bars(request)))


def test_a_restart_the_venues_history_reaches_has_no_gap(binance_spot_venue: Venue) -> None:
    venue = binance_spot_venue
    clock = venue.clock(script(venue, 320), NOW_MS)
    feed = venue.feed(clock)
    request = FeedRequest(venue.symbols, 60, warmup_bars=10, resume_after_ts=minute(250))
    bars = [b for _, b in zip(range(2 * 60), feed.bars(request), strict=False)]
    assert bars[0].ts == minute(240)
    report = feed.report()
    assert (report.gaps, report.missing_bars, report.notes) == (0, 0, [])


@pytest.mark.parametrize(
    ("first", "seen", "resume", "expected"),
    [
        (0, 10 * TF, None, (10, 0)),  # first run: only the warm-up is short
        (0, 10 * TF, 4 * TF, (4, 6)),  # restart: 4 warm-up candles, 6 the bot never gets
        (0, 3 * TF, 4 * TF, (3, 0)),  # history reaches the resume point: warm-up short
        (0, 4 * TF, 4 * TF, (4, 0)),
    ],
)
def test_short_history_splits_at_the_resume_point(
    first: int, seen: int, resume: int | None, expected: tuple[int, int]
) -> None:
    assert short_history(first, seen, resume, TF) == expected


# -- 2. the host's clock steps back ------------------------------------------------------------


def test_a_host_clock_stepped_back_does_not_stall_the_candles(binance_spot_venue: Venue) -> None:
    venue = binance_spot_venue
    clock = SteppingClock(venue.fake.state.clock, venue.apply, script(venue, 340), start_ms=NOW_MS)
    feed = venue.feed(clock, settle_s=1.0, poll_s=1.0)
    stepped = False

    def step_back(_: float) -> None:
        nonlocal stepped
        if not stepped and clock.venue_ms() >= NOW_MS + 70_000:
            clock.wall_step_s = -1800.0  # NTP correction / VM restore: 30 min back
            stepped = True

    clock.on_sleep = step_back
    late: list[float] = []
    for bar in feed.bars(FeedRequest(venue.symbols[:1], 60, warmup_bars=1)):
        late.append(clock.venue_ms() / 1000 - bar.close_ts)
        if len(late) == 8:
            break
    assert stepped
    # Each live candle within settle_s (+ a slice) of its close, before and after the step.
    assert max(late[1:]) <= 1.0 + WAIT_SLICE_S + 1e-6, late


# -- 3. a Retry-After longer than backoff_max_s ----------------------------------------------


def test_an_ip_ban_is_waited_out_in_full_beyond_backoff_max_s(
    binance_spot_venue: Venue, caplog: pytest.LogCaptureFixture
) -> None:
    venue = binance_spot_venue
    clock = venue.clock(script(venue, 320), NOW_MS)
    feed = venue.feed(clock, backoff_s=1.0, backoff_max_s=60.0)
    sent = recording_requests(feed, clock)
    venue.fake.faults.inject("ip_ban", path=venue.klines_path, retry_after=600)
    idled: list[int] = []
    request = FeedRequest(venue.symbols[:1], 60, warmup_bars=2, idle=lambda: idled.append(1))
    with caplog.at_level("WARNING", logger="tradefleet.feeds.ccxt"):
        next(iter(feed.bars(request)))
    # Binance's 418 said 600 s: the next request not one second sooner (not backoff_max_s).
    assert sent[1] - sent[0] >= 600_000
    assert feed.retries == 1
    # Waited in slices, serving the runtime meanwhile, and said how long.
    assert len(idled) >= 600 / WAIT_SLICE_S
    assert any(
        "Retry-After" in r.getMessage() and "waiting until" in r.getMessage()
        for r in caplog.records
    )


def test_a_stop_request_ends_a_long_retry_after_wait(binance_spot_venue: Venue) -> None:
    venue = binance_spot_venue
    clock = venue.clock(script(venue, 320), NOW_MS)
    feed = venue.feed(clock)
    venue.fake.faults.inject("ip_ban", path=venue.klines_path, retry_after=600)
    start = clock.time()
    request = FeedRequest(
        venue.symbols[:1], 60, warmup_bars=2, should_stop=lambda: clock.time() - start >= 90
    )
    assert list(feed.bars(request)) == []
    assert clock.time() - start <= 90 + WAIT_SLICE_S + 1e-6


@pytest.mark.parametrize(
    ("backoff", "asked", "expected"),
    [(3.0, None, 3.0), (3.0, 1.0, 3.0), (3.0, 600.0, 600.0), (3.0, 86_400.0, 3600.0)],
)
def test_retry_delay_honours_retry_after_up_to_an_hour(
    backoff: float, asked: float | None, expected: float
) -> None:
    assert retry_delay(backoff, asked) == expected


# -- 4. a candle the venue has only late ------------------------------------------------------


def test_a_candle_the_venue_has_late_is_noted_as_late_not_as_a_gap(venue: Venue) -> None:
    clock = venue.clock(script(venue, 340), NOW_MS)
    feed = venue.feed(clock, late_s=30.0)
    lagging = venue.ids[1]
    original = feed.client.fetch_ohlcv

    def fetch_ohlcv(symbol: str, *args: Any, **kwargs: Any) -> Any:
        rows = original(symbol, *args, **kwargs)
        # The second symbol's venue lags: until minute 304 it shows nothing after minute 300
        # (its candles of 301 and 302 are passed over, then come late).
        if feed.client.market(symbol)["id"] == lagging and clock.venue_ms() < (
            T0_MS + 304 * MINUTE_MS
        ):
            rows = [r for r in rows if r[0] // 1000 < minute(301)]
        return rows

    feed.client.fetch_ohlcv = fetch_ohlcv
    bars = [
        b
        for _, b in zip(
            range(2 * 12 - 2),
            feed.bars(FeedRequest(venue.symbols, 60, warmup_bars=3)),
            strict=False,
        )
    ]

    first, second = venue.symbols
    at = {(b.symbol, b.ts) for b in bars}
    assert (first, minute(301)) in at and (second, minute(301)) not in at
    assert (second, minute(303)) in at
    report = feed.report()
    # One stretch of two candles missing from the bot's bars: counted once, as late.
    assert (report.gaps, report.missing_bars) == (1, 2)
    assert not any("gap of" in note for note in report.notes), report.notes
    late = [n for n in report.notes if "passed over as late" in n]
    assert [n.split(": ")[0] for n in late] == [second, second]
    assert iso(minute(301)) in late[0] and iso(minute(302)) in late[1]


def test_the_stitcher_asks_a_passed_over_symbol_again_from_its_newest_candle() -> None:
    report = FeedReport()
    stitch = CandleStitcher(("A", "B"), TF, GapPolicy.TRADE, report, first_ts=0)
    row = [[0, 1.0, 1.0, 1.0, 1.0, 1.0]]
    stitch.add("A", row, venue_now=TF)
    stitch.add("B", row, venue_now=TF)
    stitch.ready(TF, late_s=0)
    stitch.add("A", [[TF * 1000, 1.0, 1.0, 1.0, 1.0, 1.0]], venue_now=2 * TF)
    stitch.ready(2 * TF + 31, late_s=30)  # B passed over at minute 1
    assert stitch.cursor("B", reach=10) == TF
    assert stitch.cursor("B", reach=0) == 2 * TF  # no reach: as far as the frontier
    assert stitch.cursor("A", reach=10) == 2 * TF


# -- 5. two bot symbols naming one market ------------------------------------------------------


def test_two_symbols_of_one_venue_market_are_refused(binance_spot_venue: Venue) -> None:
    venue = binance_spot_venue
    clock = venue.clock(script(venue, 320), NOW_MS)
    feed = venue.feed(clock)
    request = FeedRequest(("BTC/USDT", "BTCUSDT"), 60)
    with pytest.raises(
        DataError,
        match=r"^spec\.market\.symbols\[1\]: BTCUSDT is the same binance market as "
        r"spec\.market\.symbols\[0\] \(BTC/USDT\); list it once$",
    ):
        next(iter(feed.bars(request)))


def test_a_symbol_mapped_onto_another_ones_market_is_refused(binance_spot_venue: Venue) -> None:
    venue = binance_spot_venue
    clock = venue.clock(script(venue, 320), NOW_MS)
    feed = venue.feed(clock, symbols={"XBT": "BTC/USDT"})
    request = FeedRequest(("BTC/USDT", "ETH/USDT", "XBT"), 60)
    with pytest.raises(DataError, match=r"spec\.market\.symbols\[2\]: XBT is the same binance"):
        next(iter(feed.bars(request)))
