"""The manifest of a live ccxt bot against a fake venue, for tests that run a real BotSession.

Its data feed is an empty CSV replayed as a live rehearsal: the test hands the bars itself.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.brokers.harness import BOT, SYMBOL, VenueHarness


def live_ccxt_manifest(
    folder: Path,
    harness: VenueHarness,
    *,
    exchange: str,
    market_type: str,
    initial: int,
    extra_params: str = "",
    risk: str = "",
) -> Path:
    """``bot.yaml`` in ``folder``: a live ema-cross bot on ``SYMBOL`` at ``harness``'s fake
    venue (``extra_params``: more broker params, one ``name: value`` per line; ``risk``: the
    risk chain's YAML list, one line each)."""
    (folder / "btc.csv").write_text("timestamp,open,high,low,close,volume\n")
    extra = "".join(f"\n                  {line}" for line in extra_params.splitlines() if line)
    # Before ``capital:``, on its line: "risk:", the chain's lines, and that line's indent again.
    chain = "".join(f"\n                {line}" for line in risk.splitlines() if line)
    chain = f"risk:{chain}\n              " if chain else ""
    path = folder / "bot.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            apiVersion: tradefleet.io/v1alpha1
            kind: TradingBot
            metadata: {{name: {BOT}}}
            spec:
              mode: live
              liveConfirmation: {BOT}
              strategy: {{name: ema-cross, params: {{fast: 2, slow: 3}}}}
              market: {{symbols: ["{SYMBOL}"], timeframe: 1h}}
              broker:
                name: ccxt
                credentialsSecret: {{name: {BOT}-keys}}
                params:
                  exchange: {exchange}
                  market_type: {market_type}
                  api_url: {harness.fake.url}
                  poll_interval_s: 0.05{extra}
                  timeout_ms: 1500
                  rate_limit_ms: 10
              data: {{name: csv, params: {{path: {folder / "btc.csv"}, live_rehearsal: true}}}}
              {chain}capital: {{currency: USDT, initial: {initial}}}
            """
        )
    )
    return path
