"""``tradefleet funding-history`` against the fake Binance USDⓈ-M and Bybit: every page of a
history longer than a page, ``--until``, a merge with an existing file (new rows added, a
conflict or another market's file refused with the file untouched), a bad symbol, retries,
and the file a paper backtest pays from.

The command builds its own ccxt client; here it is also pointed at the fake through the
fakes' wiring (``point_at_fake``), whose guard refuses any other host: nothing reaches the
internet.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.test_paper_funding import (
    BTC,
    HOUR,
    START,
    T0,
    _backtest,
    _csv,
    _flows,
    _hourly,
    _manifest,
    cli_registry,  # noqa: F401
    registry,  # noqa: F401
)
from tests.venues.binance import fixtures as binance_fixtures
from tests.venues.binance.server import FakeBinance
from tests.venues.bybit import fixtures as bybit_fixtures
from tests.venues.bybit.server import FakeBybit
from tests.venues.funding_schedule import EIGHT_HOURS_MS
from tradefleet_plugins.brokers.paper_funding_history import parse_funding_history
from tradefleet_plugins.feeds import funding_download, funding_rows
from tradefleet_runtime.cli import main

PERP = "BTC/USDT:USDT"
Y2023_MS = 1_672_531_200_000  # 2023-01-01 00:00 UTC
TRADEFLEET = str(Path(sys.executable).parent / "tradefleet")


@dataclass
class Venue:
    exchange: str
    fake: Any
    path: str  # the history endpoint
    max_limit: int


@pytest.fixture(params=["binanceusdm", "bybit"])
def venue(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Venue]:
    if request.param == "bybit":
        fake: Any = FakeBybit()
        wire: Any = bybit_fixtures.point_at_fake
        found = Venue("bybit", fake, "/v5/market/funding/history", 200)
    else:
        fake = FakeBinance()
        wire = binance_fixtures.point_at_fake
        found = Venue("binanceusdm", fake, "/fapi/v1/fundingRate", 1000)
    built = funding_download.make_client

    def guarded(*args: Any) -> Any:
        client = built(*args)
        wire(client, fake)  # the fakes' host guard: any other URL fails before I/O
        return client

    monkeypatch.setattr(funding_download, "make_client", guarded)
    # retries without the real backoff's seconds
    monkeypatch.setattr(funding_rows, "RETRY_BASE_S", 0.001)
    fake.start()
    try:
        yield found
    finally:
        fake.stop()


def _rates(count: int) -> list[str]:
    """A rate for each instant that differs from its neighbours (a shifted row shows)."""
    return [f"{(i % 13 - 6) / 100_000:.5f}" for i in range(count)]


def _run(
    capsys: pytest.CaptureFixture[str], venue: Venue, out: Path, *extra: str
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(
        [
            "--log-format",
            "text",
            "funding-history",
            "--exchange",
            venue.exchange,
            "--out",
            str(out),
            "--api-url",
            venue.fake.url,
            *extra,
        ]
    )
    done = capsys.readouterr()
    return code, done.out, done.err


def _rows(path: Path) -> list[tuple[int, float]]:
    history = parse_funding_history(path.read_text().splitlines(), str(path))
    return list(zip(history.times.tolist(), history.rates.tolist(), strict=True))


def _expected(first_ms: int, rates: list[str]) -> list[tuple[int, float]]:
    return [((first_ms + i * EIGHT_HOURS_MS) // 1000, float(r)) for i, r in enumerate(rates)]


def _history_requests(venue: Venue) -> list[Any]:
    return [r for r in venue.fake.requests if r.path == venue.path]


def test_a_history_longer_than_a_page_is_read_whole(
    venue: Venue, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1,205 funding times (more than a page of either venue: Binance 1000, Bybit 200 — and
    Bybit answers a range with its newest rows): every one, at its own rate, in order."""
    rates = _rates(1205)
    venue.fake.seed_funding_history("BTCUSDT", Y2023_MS, rates)
    out = tmp_path / "data" / "btc-funding.csv"

    code, said, err = _run(capsys, venue, out, "--symbol", PERP, "--since", "2023-01-01")

    assert code == 0, err
    assert _rows(out) == _expected(Y2023_MS, rates)
    assert out.read_text().splitlines()[:2] == [
        "timestamp,fundingRate,exchange,symbol",
        f"2023-01-01T00:00:00Z,-0.00006,{venue.exchange},{PERP}",
    ]
    asked = _history_requests(venue)
    assert len(asked) > 1205 // venue.max_limit  # paged
    assert all(int(r.params["limit"]) <= venue.max_limit for r in asked)
    assert said.strip() == (
        f"{venue.exchange} {PERP}: 1205 funding times in {out}, 2023-01-01 00:00 UTC to "
        "2024-02-06 08:00 UTC, 1205 new"
    )


def test_until_is_the_last_time_fetched(
    venue: Venue, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = _rates(30)
    venue.fake.seed_funding_history("BTCUSDT", Y2023_MS, rates)
    out = tmp_path / "btc.csv"

    code, _, err = _run(
        capsys, venue, out, "--symbol", "BTCUSDT", "--since", "2023-01-02", "--until", "2023-01-05"
    )

    assert code == 0, err
    # 2023-01-02 00:00 (row 3) to 2023-01-05 00:00 (row 12), both included
    assert _rows(out) == _expected(Y2023_MS, rates)[3:13]
    for request in _history_requests(venue):
        assert int(request.params["endTime"]) <= 1_672_876_800_999  # 2023-01-05 00:00:00.999


def test_a_second_run_adds_the_new_rows_and_keeps_the_files(
    venue: Venue, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file's rows are kept (one the venue does not list, too); without --since the run
    continues after the file's last time; rows the venue lists again are not counted new."""
    rates = _rates(60)
    venue.fake.seed_funding_history("BTCUSDT", Y2023_MS, rates)
    out = tmp_path / "btc.csv"
    code, _, err = _run(
        capsys, venue, out, "--symbol", PERP, "--since", "2023-01-01", "--until", "2023-01-10"
    )
    assert code == 0, err
    # a row written by hand before the venue's first
    lines = out.read_text().splitlines()
    out.write_text("\n".join([lines[0], "2022-12-31T16:00:00Z,0.0001,,", *lines[1:]]) + "\n")

    code, said, err = _run(capsys, venue, out, "--symbol", PERP, "--until", "2023-01-15")

    assert code == 0, err
    assert _rows(out) == [(1_672_502_400, 0.0001), *_expected(Y2023_MS, rates)[:43]]
    assert "44 funding times" in said and ", 15 new" in said
    first = _history_requests(venue)[-1]
    assert int(first.params["startTime"]) > 1_673_308_800_000  # after 2023-01-10 00:00

    # again over what the file holds: nothing new, the file untouched
    before = out.read_bytes()
    code, said, err = _run(
        capsys, venue, out, "--symbol", PERP, "--since", "2023-01-03", "--until", "2023-01-15"
    )
    assert code == 0, err
    assert ", 0 new (the file is unchanged)" in said
    assert out.read_bytes() == before


def test_a_time_the_file_holds_at_another_rate_is_refused_and_the_file_kept(
    venue: Venue, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venue.fake.seed_funding_history("BTCUSDT", Y2023_MS, _rates(20))
    out = tmp_path / "btc.csv"
    out.write_text(
        "timestamp,fundingRate\n"
        "2023-01-01T00:00:00Z,-0.00006\n"
        "2023-01-01T08:00:00Z,0.00042\n"  # the venue lists -0.00005
    )
    before = out.read_bytes()

    code, said, err = _run(capsys, venue, out, "--symbol", PERP, "--since", "2023-01-01")

    assert code == 1
    assert said == ""
    text = " ".join(err.split())
    assert f"{out}: row 3: 2023-01-01 08:00 UTC is at 0.00042 in the file but at -0.00005" in text
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["btc.csv"]  # no temporary left


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ("open,high,low,close\n1,2,3,4\n", "row 1: no funding time column"),
        ("timestamp,fundingRate\n2023-01-01,1.5\n2023-01-02,0.1\n", "row 2: fundingRate"),
        (
            "timestamp,fundingRate,exchange,symbol\n2023-01-01T00:00:00Z,-0.00006,,ETH/USDT:USDT\n"
            "2023-01-01T08:00:00Z,-0.00005,,ETH/USDT:USDT\n",
            "row 2: symbol: 'ETH/USDT:USDT', not 'BTC/USDT:USDT'",
        ),
    ],
    ids=["not-a-history", "a-bad-rate", "another-symbol"],
)
def test_a_file_that_is_not_this_markets_history_is_refused_untouched(
    venue: Venue, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, names: str
) -> None:
    venue.fake.seed_funding_history("BTCUSDT", Y2023_MS, _rates(20))
    out = tmp_path / "btc.csv"
    out.write_text(content)

    code, _, err = _run(capsys, venue, out, "--symbol", PERP, "--since", "2023-01-01")

    assert code == 1
    assert names in " ".join(err.split())
    assert "unchanged" in err
    assert out.read_text() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["btc.csv"]


def test_another_exchanges_file_is_refused(
    venue: Venue, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venue.fake.seed_funding_history("BTCUSDT", Y2023_MS, _rates(20))
    out = tmp_path / "btc.csv"
    content = (
        "timestamp,fundingRate,exchange,symbol\n"
        f"2022-12-31T00:00:00Z,0.0001,okx,{PERP}\n2022-12-31T08:00:00Z,0.0001,okx,{PERP}\n"
    )
    out.write_text(content)
    code, _, err = _run(capsys, venue, out, "--symbol", PERP, "--since", "2023-01-01")
    assert code == 1
    assert f"row 2: exchange: 'okx', not '{venue.exchange}'" in " ".join(err.split())
    assert out.read_text() == content


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--symbol", "NOPE/USDT:USDT"], "has no market 'NOPE/USDT:USDT'"),
        (["--symbol", PERP, "--since", "2023"], "'2023' is ambiguous"),
        (["--symbol", PERP, "--since", "2023-01-05", "--until", "2023-01-01"], "is after --until"),
    ],
    ids=["unknown-symbol", "bad-time", "since-after-until"],
)
def test_bad_usage_exits_2_naming_the_option(
    venue: Venue,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    names: str,
) -> None:
    out = tmp_path / "btc.csv"
    args = argv if "--since" in argv else [*argv, "--since", "2023-01-01"]
    code, _, err = _run(capsys, venue, out, *args)
    assert code == 2
    text = " ".join(err.split())
    assert names in text
    assert "--symbol" in text or "--since" in text
    assert not out.exists()


def test_a_symbol_the_venue_refuses_is_named_with_the_exchange(
    venue: Venue, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A market ccxt knows but the venue's history endpoint refuses (BadSymbol from the venue):
    exit 2, naming the exchange and the symbol."""
    code_field = {"code": -1121, "msg": "Invalid symbol.", "status": 400}
    if venue.exchange == "bybit":
        code_field = {"code": 10001, "msg": "Not supported symbols"}
    venue.fake.faults.inject("reject", path=venue.path, **code_field)
    code, _, err = _run(
        capsys, venue, tmp_path / "b.csv", "--symbol", PERP, "--since", "2023-01-01"
    )
    assert code == 2
    assert f"{venue.exchange} does not know '{PERP}'" in " ".join(err.split())


def test_an_unknown_exchange_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code = main(
        ["funding-history", "--exchange", "nope", "--symbol", PERP, "--since", "2023-01-01",
         "--out", str(tmp_path / "x.csv")]
    )  # fmt: skip
    assert code == 2
    assert "'nope' is not an exchange ccxt" in " ".join(capsys.readouterr().err.split())


def test_a_passing_failure_is_retried_and_a_lasting_one_fails_writing_nothing(
    venue: Venue, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = _rates(10)
    venue.fake.seed_funding_history("BTCUSDT", Y2023_MS, rates)
    venue.fake.faults.inject("rate_limit", path=venue.path, retry_after=0)
    venue.fake.faults.inject("server_error", path=venue.path, status=503)
    out = tmp_path / "btc.csv"

    code, _, err = _run(capsys, venue, out, "--symbol", PERP, "--since", "2023-01-01")

    assert code == 0, err
    assert _rows(out) == _expected(Y2023_MS, rates)
    assert "retry 1" in err and "retry 2" in err

    venue.fake.faults.inject("server_error", path=venue.path, status=503, times=50)
    out2 = tmp_path / "other.csv"
    code, _, err = _run(capsys, venue, out2, "--symbol", PERP, "--since", "2023-01-01")
    assert code == 1
    assert (
        f"{venue.exchange} {PERP}: fetch the funding-rate history still failing after 6 attempts"
        in " ".join(err.split())
    )
    assert not out2.exists()


def test_the_file_is_what_a_paper_backtest_pays(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cli_registry: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Downloaded from the fake Binance, the history pays a 1 BTC long at 50,000 over six
    funding times each at its own rate."""
    fake = FakeBinance()
    built = funding_download.make_client

    def guarded(*args: Any) -> Any:
        client = built(*args)
        binance_fixtures.point_at_fake(client, fake)
        return client

    monkeypatch.setattr(funding_download, "make_client", guarded)
    rates = ["0.0001", "-0.0002", "0.0003", "0.0001", "0.0001", "-0.0001", "0.0002"]
    fake.start()
    try:
        fake.seed_funding_history("BTCUSDT", T0 * 1000, rates)
        history = tmp_path / "btc-funding.csv"
        code = main(
            ["funding-history", "--exchange", "binanceusdm", "--symbol", PERP, "--since",
             "2024-01-01", "--until", "2024-01-03", "--out", str(history), "--api-url", fake.url]
        )  # fmt: skip
        assert code == 0, capsys.readouterr().err
    finally:
        fake.stop()
    bars = _csv(tmp_path / "bars.csv", _hourly(START, 48, 50_000.0))  # to 2024-01-02 21:00
    manifest = _manifest(tmp_path, {BTC: bars}, {"funding_history": {BTC: str(history)}})
    journal = tmp_path / "j.sqlite"

    report, _ = _backtest(capsys, manifest, journal)

    paid = [(row[5], row[4]) for row in _flows(journal)]
    times = [T0 + i * 8 * HOUR for i in range(6)]
    assert paid == [
        (t, pytest.approx(-50_000 * float(r))) for t, r in zip(times, rates, strict=False)
    ]
    assert report["funding"] == pytest.approx(-5 + 10 - 15 - 5 - 5 + 5)


def test_the_command_is_listed_and_answers_help() -> None:
    listed = subprocess.run([TRADEFLEET, "--help"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "funding-history" in listed.stdout
    helped = subprocess.run(
        [TRADEFLEET, "funding-history", "--help"], capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0, helped.stderr
    assert "--exchange" in helped.stdout and "--until" in helped.stdout


def test_a_download_that_leaves_a_hole_in_the_file_says_so(
    venue: Venue, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --since after the file's end: written (both parts are the venue's), and the hole
    between them said, as the paper broker will say it."""
    venue.fake.seed_funding_history("BTCUSDT", Y2023_MS, _rates(60))
    out = tmp_path / "btc.csv"
    code, _, err = _run(
        capsys, venue, out, "--symbol", PERP, "--since", "2023-01-01", "--until", "2023-01-03"
    )
    assert code == 0, err
    assert "hole" not in err

    code, _, err = _run(
        capsys, venue, out, "--symbol", PERP, "--since", "2023-01-10", "--until", "2023-01-12"
    )

    assert code == 0, err
    assert "1 hole(s) in the funding history" in " ".join(err.split())
    assert len(_rows(out)) == 7 + 7


def test_a_testnet_history_is_labelled_so_and_never_merged_with_the_venues(
    venue: Venue, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venue.fake.seed_funding_history("BTCUSDT", Y2023_MS, _rates(20))
    out = tmp_path / "btc.csv"
    window = ("--symbol", PERP, "--since", "2023-01-01", "--until", "2023-01-02")
    code, _, err = _run(capsys, venue, out, *window, "--sandbox")
    assert code == 0, err
    assert out.read_text().splitlines()[1].endswith(f",{venue.exchange}-sandbox,{PERP}")
    before = out.read_bytes()

    code, _, err = _run(capsys, venue, out, *window)

    assert code == 1
    assert f"exchange: '{venue.exchange}-sandbox', not '{venue.exchange}'" in " ".join(err.split())
    assert out.read_bytes() == before
