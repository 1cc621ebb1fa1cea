"""The ``mt5`` data feed against the trade server's own clock: a host clock that is off, a
broker's DST switch, a market that has gone quiet, a terminal that fails for a while."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.venues.mt5 import MT5Terminal
from tests.venues.mt5.faults import CallError
from tradefleet_plugins.feeds.mt5_feed import (
    Mt5Feed,
    ServerClock,
    bar_open,
    is_closed,
    measure_zone,
    nearest_zone,
)
from tradefleet_plugins.feeds.mt5_feed_params import Mt5FeedParams
from tradefleet_runtime.sdk import Bar, DataError, FeedRequest

from .harness import Bridge

WINTER = 2 * 3600  # brokers' servers: UTC+2 in winter ...
SUMMER = 3 * 3600  # ... and UTC+3 in summer


class _Server:
    """The emulator, whose clock is the trade server's wall time in zone ``zone``; the feed's
    clock is the host's UTC, ``host_error`` seconds off. The feed's waits move the clock; a
    tick is published every ``tick_every`` seconds of it (None: the market is closed)."""

    def __init__(
        self, zone: int = WINTER, host_error: float = 0.0, transport: str = "direct"
    ) -> None:
        self.term = MT5Terminal(margin_mode="netting")
        assert self.term.initialize()
        self.bridge = Bridge.start(self.term) if transport == "bridge" else None
        self.module: Any = self.bridge.client if self.bridge is not None else self.term
        self.zone = zone
        self.host_error = host_error
        self.start = int(self.term.now.timestamp())
        self.tick_every: float | None = 0.25
        self.price = 1.1
        self.idles = 0
        self.idle_gaps: list[float] = []
        self._last_idle = self.host()
        self.rates_calls = 0
        self.handed_at: list[tuple[Bar, float]] = []  # (bar, true UTC when handed over)

    def true_utc(self) -> float:
        return self.term.now.timestamp() - self.zone

    def host(self) -> float:
        return self.true_utc() + self.host_error

    def sleep(self, seconds: float) -> None:
        before = self.term.now.timestamp()
        self.term.advance(seconds)
        every = self.tick_every
        if every is not None and int(before // every) != int((before + seconds) // every):
            self.price += 0.00001
            self.term.set_price("EURUSD", self.price)

    def switch_zone(self, zone: int) -> None:
        """The broker moves its server to ``zone`` (its clock jumps; UTC does not)."""
        self.term.advance(zone - self.zone)
        self.zone = zone

    def idle(self) -> None:
        now = self.host()
        self.idle_gaps.append(now - self._last_idle)
        self._last_idle = now
        self.idles += 1

    def history(self, minutes: int) -> None:
        rows = [
            (self.start - (minutes - k) * 60, 1.0 + k, 1.5 + k, 0.5 + k, 1.2 + k, 10)
            for k in range(minutes)
        ]
        self.term.load_rates("EURUSD", rows)

    def count_rates(self) -> None:
        original = self.term.copy_rates_from_pos

        def counted(*args: Any) -> Any:
            self.rates_calls += 1
            return original(*args)

        setattr(self.term, "copy_rates_from_pos", counted)  # noqa: B010 - a wrapper, typed loosely

    def feed(self, **params: Any) -> Mt5Feed:
        return Mt5Feed(Mt5FeedParams(**params), self.module, clock=self.host, sleep=self.sleep)

    def request(
        self, *symbols: str, warmup: int = 2, stop: Callable[[], bool] | None = None
    ) -> FeedRequest:
        return FeedRequest(
            symbols=symbols or ("EURUSD",),
            timeframe_s=60,
            warmup_bars=warmup,
            idle=self.idle,
            should_stop=stop,
        )

    def take(self, feed: Mt5Feed, request: FeedRequest, n: int) -> list[Bar]:
        out = []
        for bar in itertools.islice(feed.bars(request), n):
            self.handed_at.append((bar, self.true_utc()))
            out.append(bar)
        return out

    def close(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
        self.term.shutdown()


@pytest.fixture
def servers() -> Iterator[Callable[..., _Server]]:
    made: list[_Server] = []

    def make(**kwargs: Any) -> _Server:
        made.append(_Server(**kwargs))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _closed_when_handed(server: _Server) -> None:
    """Every bar handed over had closed, on the true clock, by the time it was."""
    for bar, when in server.handed_at:
        assert bar.ts + bar.timeframe_s <= when, (bar.ts, when)


# -- the server's clock, not the host's ---------------------------------------------------------
@pytest.mark.parametrize("host_error", [30.0, -30.0])
def test_a_host_clock_off_by_30_s_never_hands_over_a_forming_bar(
    servers: Callable[..., _Server], host_error: float
) -> None:
    server = servers(host_error=host_error)
    server.history(10)
    bars = server.take(server.feed(server_offset_s=WINTER), server.request(), 6)
    _closed_when_handed(server)
    # ... and in UTC, on time: open times one bar apart, each handed over within settle_s
    # (and a poll) of its close on the server's clock, whichever way the host is off.
    assert [b.ts for b in bars] == [server.start - WINTER + k * 60 for k in range(-2, 4)]
    for bar, when in server.handed_at[2:]:
        assert when - (bar.ts + 60) <= 2.0 + 1.0


# -- the server's zone, measured --------------------------------------------------------------
@pytest.mark.parametrize(
    ("zone", "configured"), [(WINTER, SUMMER), (SUMMER, WINTER)], ids=["winter", "summer"]
)
def test_a_stale_server_offset_is_corrected_from_the_ticks_and_said(
    servers: Callable[..., _Server], zone: int, configured: int
) -> None:
    server = servers(zone=zone)
    server.history(10)
    feed = server.feed(server_offset_s=configured)
    bars = server.take(feed, server.request(), 5)
    _closed_when_handed(server)
    # True UTC open times (the zone from the ticks, not the stale param) ...
    assert [b.ts for b in bars] == [server.start - zone + k * 60 for k in range(-2, 3)]
    # ... and the manifest's value named as wrong.
    assert any("server_offset_s" in note for note in feed.report().notes)


def test_the_other_dst_direction_does_not_stall_the_feed(
    servers: Callable[..., _Server],
) -> None:
    """server_offset_s one hour short of the server's zone used to put every bar an hour in
    the future: nothing was handed over, ever, and nothing said so."""
    server = servers(zone=SUMMER)
    server.history(10)
    server.tick_every = 60.0  # a quiet market: one tick a minute
    began = server.true_utc()
    request = server.request(stop=lambda: server.true_utc() - began > 30 * 60)
    bars = list(server.feed(server_offset_s=WINTER).bars(request))
    # the warm-up, then about a bar a minute (the first minute waits for a tick to show the
    # zone, which disagrees with server_offset_s)
    assert len(bars) >= 2 + 27


def test_a_dst_switch_while_running_is_followed(servers: Callable[..., _Server]) -> None:
    server = servers(zone=WINTER)
    server.history(10)
    feed = server.feed(server_offset_s=WINTER)
    began = server.true_utc()
    # Bounded, so a feed that never hands over a bar again ends (and the test fails).
    stream = feed.bars(server.request(stop=lambda: server.true_utc() - began > 15 * 60))
    before = [next(stream) for _ in range(4)]
    server.switch_zone(SUMMER)  # the server's clock jumps an hour ahead; UTC does not
    after = []
    for bar in itertools.islice(stream, 3):
        server.handed_at.append((bar, server.true_utc()))
        after.append(bar)
    _closed_when_handed(server)
    # UTC bar times carry on from where they were (the switch's minute has no ticks: a gap).
    assert len(after) == 3
    assert after[0].ts > before[-1].ts
    assert after[0].ts - before[-1].ts <= 2 * 60
    assert [b.ts for b in after] == sorted(b.ts for b in after)
    assert any("UTC+2 to UTC+3" in note for note in feed.report().notes)


# -- a quiet market: polled every poll_s, the runtime served, the silence explained ------------
def test_a_closed_market_is_polled_every_poll_s_and_idle_is_served(
    servers: Callable[..., _Server],
) -> None:
    server = servers()
    server.history(10)
    server.tick_every = None  # the market is closed
    server.count_rates()
    server.term.advance(150)  # no tick for 2.5 minutes: the newest bar is > 2 bars old
    began = server.host()
    window = 10 * 60.0
    request = server.request(
        # Bounded by calls too, so a feed that spins without waiting still ends.
        stop=lambda: server.host() - began > window or server.rates_calls > 10_000
    )
    feed = server.feed(server_offset_s=WINTER, poll_s=1.0)
    list(feed.bars(request))
    assert server.host() - began > window
    assert server.rates_calls <= window / 1.0 + 5  # one look per poll_s, not a busy loop
    assert server.idles >= window / 0.25 - 5
    assert max(server.idle_gaps[1:]) <= 0.25 + 1e-9
    # ... and the silence is explained, once.
    said = [note for note in feed.report().notes if "no bar handed over" in note]
    assert len(said) == 1 and "no new bar" in said[0]


# -- a terminal that fails for a while --------------------------------------------------------
@pytest.mark.parametrize("transport", ["direct", "bridge"])
def test_a_passing_terminal_error_is_ridden_out(
    servers: Callable[..., _Server], transport: str
) -> None:
    server = servers(transport=transport)
    server.history(10)
    feed = server.feed(server_offset_s=WINTER)
    stream = feed.bars(server.request())
    bars = [next(stream) for _ in range(3)]
    server.term.faults.script("copy_rates_from_pos", [CallError(-10005, "IPC timeout")] * 3)
    idles = server.idles
    bars += list(itertools.islice(stream, 3))
    assert [b.ts for b in bars] == [server.start - WINTER + k * 60 for k in range(-2, 4)]
    assert server.idles > idles  # the runtime is served during the backoff


def test_a_sustained_outage_fails_naming_how_long(servers: Callable[..., _Server]) -> None:
    server = servers()
    server.history(10)
    feed = server.feed(server_offset_s=WINTER, max_outage_s=30.0)
    stream = feed.bars(server.request())
    [next(stream) for _ in range(2)]
    server.term.faults.script("copy_rates_from_pos", [CallError(-10005, "IPC timeout")] * 1000)
    began = server.host()
    with pytest.raises(DataError, match=r"for 30 s .*max_outage_s \(30 s\)"):
        next(stream)
    assert 30.0 <= server.host() - began <= 31.0 + 2.0  # + the wait for the next bar


def test_a_stop_during_an_outage_ends_the_bars(servers: Callable[..., _Server]) -> None:
    server = servers()
    server.history(10)
    feed = server.feed(server_offset_s=WINTER)
    server.term.faults.script("copy_rates_from_pos", [CallError(-10005, "IPC timeout")] * 1000)
    began = server.host()
    request = server.request(stop=lambda: server.host() - began > 5.0)
    assert list(feed.bars(request)) == []
    assert server.host() - began <= 5.0 + 0.25 + 1e-9


def test_an_unknown_symbol_fails_at_once_naming_the_field(
    servers: Callable[..., _Server],
) -> None:
    server = servers()
    feed = server.feed(symbols={"GOLD": "XAUUSD.nope"})
    with pytest.raises(DataError, match=r"spec\.data\.params\.symbols\.GOLD: .*'XAUUSD\.nope'"):
        next(feed.bars(server.request("GOLD")))
    with pytest.raises(DataError, match=r"spec\.market\.symbols: .*'NOPE'"):
        next(server.feed().bars(server.request("NOPE")))
    assert server.idles == 0  # no retry


# -- the decisions ----------------------------------------------------------------------------
def test_zones_are_whole_or_half_hours() -> None:
    assert nearest_zone(7200 - 30) == (7200, 30)
    assert nearest_zone(19800 + 4) == (19800, 4)  # UTC+5:30
    assert nearest_zone(-3 * 3600 + 10) == (-10800, 10)


def test_a_stale_tick_only_confirms_the_zone_expected() -> None:
    host = 1_000_000.0
    # A tick 40 minutes old (a quiet market) looks like UTC+1:30 minus 10 minutes ...
    stale = int(host + WINTER - 40 * 60)
    assert measure_zone(stale, host, fresh=False, expected=WINTER) is None
    # ... a fresh one is believed, a stale one only when it agrees.
    assert measure_zone(int(host + SUMMER), host, fresh=True, expected=WINTER) == SUMMER
    assert measure_zone(int(host + SUMMER), host, fresh=False, expected=WINTER) is None
    assert measure_zone(int(host + WINTER), host, fresh=False, expected=WINTER) == WINTER
    assert measure_zone(0, host, fresh=True, expected=WINTER) is None  # never ticked


def test_the_server_clock_is_never_ahead_of_the_newest_tick() -> None:
    clock = ServerClock(WINTER)
    host = 1_000_000.0 + 30  # the host is 30 s ahead of true UTC 1_000_000
    clock.observe(1_000_000 + WINTER, host)
    assert clock.now(host + 10) == 1_000_000 + WINTER + 10
    assert not is_closed(1_000_000 + WINTER - 50, 60, 2.0, clock.now(host + 10))
    assert is_closed(1_000_000 + WINTER - 50, 60, 2.0, clock.now(host + 12))


def test_bar_open() -> None:
    assert bar_open(125.5, 60) == 120
    sunday = 3 * 86_400  # 1970-01-04
    assert bar_open(sunday + 8 * 86_400, 7 * 86_400) == sunday + 7 * 86_400
