"""The paper broker refuses at start a symbol whose name says it pays its profit in another
currency than the capital's.

It books a trade's profit (quantity × price move, money of the symbol's quote currency) as
money of the account, unconverted. USDJPY on a USD account: ``fixed-fractional`` at 1% of
10,000 USD with a 20-pip stop buys 500 USDJPY, and the stop-out, 100 JPY (about 0.67 USD), would
be booked as a loss of 100 USD — every figure of the rehearsal 150 times off. The MT5 broker
refuses that symbol from the terminal's profit currency; the paper broker reads the name
(``paper_currency``), in backtests (engine and vectorised path), paper bots and the optimiser.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.runtime.helpers import Scripted, make_engine
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_currency import (
    Pricing,
    currency_refusal,
    pricing_of,
    same_money,
)
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_runtime import cli
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.errors import PluginError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest
from tradefleet_runtime.spec.model import Mode

HOUR = 3600
T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
VECTOR_NOTE = "backtested by the vectorised path"
USDJPY_REFUSED = (
    r"spec\.market\.symbols\[0\]: USDJPY pays its profit in JPY but spec\.capital\.currency "
    r"is USD; .*set spec\.capital\.currency to JPY"
)

# -- the pure check -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "capital"),
    [
        ("EURUSD", "USD"),
        ("XAUUSD", "USD"),  # XAU is a metal: the price is in dollars
        ("USDJPY", "JPY"),  # a yen account books yen
        ("BTC/USDT", "USD"),  # USD and its stablecoins count as one
        ("BTC/USD", "USDT"),
        ("EURUSD", "USDC"),
        ("BTC/USDT:USDT", "USDT"),  # a linear perpetual, settled in its quote
        ("BTC/USDT:USDT-250328", "USDT"),  # a dated one: the expiry after the currency
        ("ETH/BTC", "BTC"),
        ("SYN", "USD"),  # names that cannot be read pass
        ("GOLD.pro", "USD"),
        ("BTCUSDT", "EUR"),  # a venue id: BTC is no ISO code, so the name says nothing
        ("US500", "EUR"),
        ("EURUSDm", "EUR"),  # a broker's suffix: not read
    ],
)
def test_a_symbol_the_paper_broker_can_book_passes(symbol: str, capital: str) -> None:
    assert currency_refusal((symbol,), capital) is None


@pytest.mark.parametrize(
    ("symbol", "capital", "quote"),
    [
        ("USDJPY", "USD", "JPY"),
        ("EURGBP", "USD", "GBP"),
        ("EURUSD", "EUR", "USD"),
        ("XAUEUR", "USD", "EUR"),
        ("usdjpy", "USD", "JPY"),  # any case
        ("ETH/BTC", "USD", "BTC"),
        ("BTC/USDT", "BTC", "USDT"),
        ("BTC/EUR", "USDT", "EUR"),
    ],
)
def test_a_symbol_paying_in_another_currency_is_refused_naming_both(
    symbol: str, capital: str, quote: str
) -> None:
    refusal = currency_refusal(("SYN", symbol), capital)
    assert refusal is not None
    assert refusal.startswith(f"spec.market.symbols[1]: {symbol} pays its profit in {quote} ")
    assert f"spec.capital.currency is {capital};" in refusal
    assert f"set spec.capital.currency to {quote}" in refusal


@pytest.mark.parametrize("capital", ["USD", "BTC"])
def test_an_inverse_contract_is_refused_on_any_account(capital: str) -> None:
    """BTC/USD:BTC pays ``contracts × (1/entry − 1/exit)`` in BTC; the paper broker books
    quantity × price move, in USD: wrong in a USD account and in a BTC one."""
    refusal = currency_refusal(("BTC/USD:BTC",), capital)
    assert refusal is not None
    assert refusal.startswith(
        "spec.market.symbols[0]: BTC/USD:BTC is priced in USD but settled in BTC"
    )
    assert "BTC/USD:USD" in refusal


def test_every_symbol_refused_is_named() -> None:
    refusal = currency_refusal(("USDJPY", "EURUSD", "EURGBP"), "USD")
    assert refusal is not None
    lines = refusal.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "spec.market.symbols[0]",
        "spec.market.symbols[2]",
    ]


def test_names_are_read_as_base_quote_and_settlement() -> None:
    assert pricing_of("USDJPY") == Pricing("USD", "JPY", "JPY")
    assert pricing_of("XAUUSD") == Pricing("XAU", "USD", "USD")
    assert pricing_of("BTC/USD:BTC") == Pricing("BTC", "USD", "BTC")
    assert pricing_of("BTC/USDT:USDT-250328") == Pricing("BTC", "USDT", "USDT")
    assert pricing_of("USDXAU") is None  # a metal is no price's currency here
    assert pricing_of("BTC/") is None
    assert pricing_of("ABCDEF") is None
    assert same_money("usd", "FDUSD") and not same_money("USD", "EUR")


# -- the broker and the engine ------------------------------------------------------------------


def test_the_engine_rehearsing_usdjpy_on_a_usd_account_is_refused_at_start() -> None:
    """The stop-out of 500 USDJPY at 20 pips was booked as 100 USD; nothing is booked now."""
    strategy = Scripted({0: lambda ctx, _: ctx.buy("USDJPY", stop_loss=149.80)})
    sizer = FixedFractional(FixedFractionalParams(risk_per_trade=0.01, max_leverage=100))
    with pytest.raises(PluginError, match=USDJPY_REFUSED):
        make_engine(
            strategy,
            symbols=("USDJPY",),
            capital=10_000.0,
            broker={"leverage": 100},
            risk=[("fixed-fractional", sizer)],
        )


def test_a_yen_account_connects_to_usdjpy() -> None:
    broker = PaperBroker(PaperBrokerParams())
    broker.connect(BrokerContext("b", Mode.PAPER, ("USDJPY",), "JPY", 1_500_000.0))
    assert broker.balance() == 1_500_000.0


# -- runs: backtest (vectorised and engine), paper, optimize ------------------------------------


def _csv(path: Path, count: int = 200) -> Path:
    """Hourly USDJPY bars swinging around 150, enough for ema-cross 3/8 to trade."""
    rows = ["time,open,high,low,close,volume"]
    for i in range(count):
        price = 150.0 + 1.5 * ((i * 7) % 11 - 5) / 5 + 0.01 * i
        rows.append(f"{T0 + i * HOUR},{price},{price * 1.001},{price * 0.999},{price},1.0")
    path.write_text("\n".join(rows) + "\n")
    return path


def _manifest(folder: Path, currency: str, mode: str = "backtest") -> Path:
    """An ema-cross bot on USDJPY that the vectorised path can take."""
    spec: dict[str, Any] = {
        "mode": mode,
        "strategy": {"name": "ema-cross", "params": {"fast": 3, "slow": 8}},
        "market": {"symbols": ["USDJPY"], "timeframe": "1h"},
        "broker": {"name": "paper", "params": {"leverage": 100}},
        "data": {"name": "csv", "params": {"path": str(_csv(folder / "usdjpy.csv"))}},
        "risk": [
            {
                "name": "fixed-fractional",
                "params": {"risk_per_trade": 0.01, "default_stop_pct": 0.002, "max_leverage": 50},
            }
        ],
        "capital": {"currency": currency, "initial": 10_000 if currency == "USD" else 1_500_000},
    }
    document = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "jpy-rehearsal"},
        "spec": spec,
    }
    path = folder / "bot.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("engine", [False, True], ids=["vectorised", "engine"])
def test_a_backtest_of_usdjpy_on_a_usd_account_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: bool
) -> None:
    manifest = _manifest(tmp_path, "USD")
    journal = tmp_path / "j.sqlite"
    argv = ["backtest", str(manifest), "--json", "--journal", str(journal)]
    assert cli.main([*argv, *(["--engine"] if engine else [])]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "spec.market.symbols[0]: USDJPY pays its profit in JPY but spec.capital.currency" in err
    assert "is USD;" in err


def test_the_same_backtest_on_a_yen_account_runs_vectorised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal's remedy works, on the path that would have bypassed the refusal."""
    manifest = _manifest(tmp_path, "JPY")
    argv = ["backtest", str(manifest), "--json", "--journal", str(tmp_path / "j.sqlite")]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert VECTOR_NOTE in captured.err
    assert json.loads(captured.out)["trades"]


def test_a_paper_bot_of_usdjpy_on_a_usd_account_is_refused(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, "USD", mode="paper")
    bot = assemble(load_manifest(manifest), PluginRegistry.discover(), tmp_path)
    journal = Journal(tmp_path / "paper.sqlite", durable=True)
    try:
        with pytest.raises(PluginError, match=USDJPY_REFUSED):
            BotSession(bot, journal, bars=()).open()
    finally:
        journal.close()


def test_optimizing_usdjpy_on_a_usd_account_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path, "USD")
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps({"fast": {"int": [2, 4, 2]}}))
    argv = ["optimize", str(manifest), "--space", str(space), "--sampler", "grid"]
    study = tmp_path / "s.jsonl"
    assert cli.main([*argv, "--jobs", "1", "--study", str(study)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "spec.market.symbols[0]: USDJPY pays its profit in JPY" in err
