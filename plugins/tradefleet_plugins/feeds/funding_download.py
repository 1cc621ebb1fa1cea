"""``tradefleet funding-history``: a venue's funding-rate history, through ccxt's
``fetch_funding_rate_history``, into the CSV file the paper broker's ``funding_history`` reads.

The I/O shell: the ccxt client, the requests and their retries, the files. What to ask for
next, the rows' checks, the merge with an existing file and the text written are decided in
``funding_rows`` (pure). Registered through the ``tradefleet.cli`` entry-point group, so the
runtime never imports it (nor ccxt); ccxt is imported when the command runs.

No credentials: the history is public, and the client is built without any.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from tradefleet_plugins.brokers.ccxt_errors import retry_after_s
from tradefleet_plugins.brokers.paper_funding_history import (
    FundingHistory,
    describe_holes,
    parse_funding_history,
)
from tradefleet_plugins.feeds import funding_rows as rows
from tradefleet_plugins.feeds.ccxt_feed import point_at
from tradefleet_plugins.feeds.csv_time import bound_time, format_time
from tradefleet_runtime.sdk import DataError

log = logging.getLogger("tradefleet.funding_history")

_MESSAGE_CHARS = 300
_TIMEOUT_MS = 30_000
# As the paper broker opens the file: a byte-order mark (Excel's) is no part of the header.
_ENCODING = "utf-8-sig"


@dataclass
class Venue:
    """One venue's client and the rules of asking it: retries with backoff, and every
    refusal told naming the exchange and symbol."""

    ccxt: Any  # the ccxt module
    client: Any
    exchange: str
    symbol: str
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def call(self, what: str, method: Callable[..., Any], *args: Any) -> Any:
        """``method(*args)``: retried while it fails for a passing reason (ccxt's
        ``OperationFailed``: network errors, timeouts, 5xx, rate limits); anything else
        raised as a click error naming the venue and the symbol."""
        ccxt = self.ccxt
        where = f"{self.exchange} {self.symbol}"
        for attempt in range(rows.ATTEMPTS):
            try:
                return method(*args)
            except ccxt.BadSymbol as error:
                raise click.BadParameter(
                    f"{self.exchange} does not know {self.symbol!r} ({_said(error)})",
                    param_hint="'--symbol'",
                ) from None
            except ccxt.NotSupported as error:
                raise click.BadParameter(
                    f"{self.exchange} cannot {what} ({_said(error)})", param_hint="'--exchange'"
                ) from None
            except ccxt.AuthenticationError as error:
                raise click.ClickException(
                    f"{where}: {what} refused as unauthorised ({_said(error)}); the funding "
                    "history is public and asked without credentials: check --exchange, "
                    "--sandbox and --api-url"
                ) from None
            except ccxt.OperationFailed as error:
                if attempt + 1 >= rows.ATTEMPTS:
                    raise click.ClickException(
                        f"{where}: {what} still failing after {attempt + 1} attempts "
                        f"({_said(error)}); nothing written"
                    ) from None
                self.sleep(self._wait(attempt, error, what))
            except ccxt.BaseError as error:
                raise click.ClickException(
                    f"{where}: {what} refused ({_said(error)}); nothing written"
                ) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait(self, attempt: int, error: Exception, what: str) -> float:
        headers = getattr(self.client, "last_response_headers", None) or {}
        now_ms = _now_ms()
        asked = retry_after_s(headers, str(error), now_ms)
        if asked is not None and asked > rows.LONGEST_WAIT_S:
            until = format_time(int(now_ms / 1000 + asked))
            raise click.ClickException(
                f"{self.exchange}: the venue asks for no requests for {asked:.0f} s (until "
                f"{until} UTC; {_said(error)}): try again then; nothing written"
            )
        wait = rows.retry_wait(attempt, asked, self.rng.random())
        log.warning(
            "%s %s: %s failed (%s), retry %d in %.1f s",
            self.exchange,
            self.symbol,
            what,
            type(error).__name__,
            attempt + 1,
            wait,
        )
        return wait


def make_client(ccxt: Any, exchange: str, linear: bool, sandbox: bool, api_url: str | None) -> Any:
    """A public (credential-free) ccxt client of ``exchange``, loading only its linear or
    inverse markets where ccxt lets it choose, on its testnet with ``sandbox``, at ``api_url``
    when given."""
    klass = getattr(ccxt, exchange, None)
    if exchange not in ccxt.exchanges or klass is None:
        raise click.BadParameter(
            f"{exchange!r} is not an exchange ccxt {ccxt.__version__} knows (e.g. binanceusdm, "
            "bybit)",
            param_hint="'--exchange'",
        )
    kind = "linear" if linear else "inverse"
    client = klass(
        {
            "enableRateLimit": True,
            "timeout": _TIMEOUT_MS,
            # The markets are needed, not the currencies (a private call on some venues).
            "has": {"fetchCurrencies": False},
            "options": {
                "defaultType": "swap",
                "defaultSubType": kind,
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
    )
    chosen = client.options.get("fetchMarkets")
    if isinstance(chosen, dict) and kind in (chosen.get("types") or ()):
        # Only the perpetuals' kind: fewer requests, and none to markets of no use here.
        client.options["fetchMarkets"] = {**chosen, "types": [kind]}
    if not client.has.get("fetchFundingRateHistory"):
        raise click.BadParameter(
            f"{exchange} has no funding-rate history in ccxt {ccxt.__version__}",
            param_hint="'--exchange'",
        )
    if sandbox:
        try:
            client.set_sandbox_mode(True)
        except ccxt.NotSupported:
            raise click.BadParameter(
                f"{exchange} has no sandbox/testnet in ccxt", param_hint="'--sandbox'"
            ) from None
    if api_url is not None:
        point_at(client, api_url)
    return client


def resolve_market(venue: Venue) -> dict[str, Any]:
    """The venue's perpetual named ``venue.symbol`` (ccxt's unified symbol, or the venue's
    own id); a usage error naming it otherwise."""
    client = venue.client
    venue.call("load markets", client.load_markets)
    market = (client.markets or {}).get(venue.symbol)
    if market is None:
        swaps = [m for m in (client.markets_by_id or {}).get(venue.symbol) or [] if m.get("swap")]
        market = swaps[0] if swaps else None
    if market is None:
        examples = [s for s, m in (client.markets or {}).items() if m.get("swap")][:4]
        raise click.BadParameter(
            f"{venue.exchange} has no market {venue.symbol!r} (its perpetuals: e.g. "
            f"{', '.join(examples) or 'none loaded'})",
            param_hint="'--symbol'",
        )
    if not market.get("swap"):
        raise click.BadParameter(
            f"{market['symbol']} at {venue.exchange} is a {market.get('type')} market, not a "
            "perpetual: only perpetuals pay funding",
            param_hint="'--symbol'",
        )
    return dict(market)


def download(
    venue: Venue, symbol: str, since_ms: int, until_ms: int, limit: int | None = None
) -> dict[int, float]:
    """Every funding time of ``symbol`` from ``since_ms`` to ``until_ms`` (both included):
    epoch seconds → rate, pages of ``limit`` rows (the venue's most by default) as
    ``funding_rows`` plans them."""
    limit = limit if limit is not None else rows.page_limit(venue.exchange)
    bounds = rows.Window(since_ms, until_ms)
    source = f"{venue.exchange} {symbol}"
    kept: dict[int, float] = {}
    window = rows.first_window(since_ms, until_ms, rows.first_span(limit))
    while window is not None:
        page = venue.call(
            "fetch the funding-rate history",
            venue.client.fetch_funding_rate_history,
            symbol,
            window.start_ms,
            limit,
            {"until": window.end_ms},
        )
        try:
            kept, in_window = rows.take_page(kept, page, window, bounds, source)
        except DataError as error:
            raise click.ClickException(f"{error}; nothing written") from None
        log.debug(
            "%s: %d row(s) from %s to %s; %d in all",
            source,
            in_window,
            _utc_ms(window.start_ms),
            _utc_ms(window.end_ms),
            len(kept),
        )
        span = rows.next_span(kept, window, in_window, limit)
        window = rows.next_window(window, in_window, limit, until_ms, span)
    return kept


def read_existing(out: Path) -> list[rows.FileRow] | None:
    """The rows of ``out`` when it exists (None when not); a click error when it is not a
    funding history the paper broker reads (it is then left alone)."""
    try:
        text = out.read_text(encoding=_ENCODING)
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise click.ClickException(
            f"{out}: not UTF-8 text, so not a funding history: not merged (the file is "
            "unchanged); choose another --out"
        ) from None
    except OSError as error:
        raise click.ClickException(f"{out}: cannot be read ({error.strerror})") from None
    try:
        return rows.read_file(text.splitlines(), str(out))
    except DataError as error:
        raise click.ClickException(
            f"{error}: {out} is not a funding history the paper broker reads: not merged (the "
            "file is unchanged); choose another --out"
        ) from None


def write_checked(out: Path, text: str) -> FundingHistory:
    """Write ``text`` to ``out`` at once (a file beside it, replacing ``out`` only when the
    paper broker reads it back as a funding history): ``out`` is never half written. The
    history as the broker reads it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        with open(temp, encoding=_ENCODING, newline="") as file:
            try:
                history = parse_funding_history(file, str(out))
            except DataError as error:
                raise click.ClickException(
                    f"the history written would not be read by the paper broker ({error}): "
                    f"{out} is unchanged"
                ) from None
        os.chmod(temp, _mode_for(out))
        os.replace(temp, out)
    finally:
        temp.unlink(missing_ok=True)
    return history


def _mode_for(out: Path) -> int:
    """The replaced file's permissions, or a new file's (0666 less the umask): mkstemp's
    0600 would hide a shared data file from its other readers."""
    try:
        return out.stat().st_mode & 0o777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _time(text: str, option: str) -> int:
    try:
        return bound_time(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=f"'{option}'") from None


def _linear(symbol: str) -> bool:
    """Whether ``symbol`` names a linear perpetual (settled in its quote currency):
    BTC/USDT:USDT is, BTC/USD:BTC is not; a venue id (BTCUSDT) is taken as linear."""
    pair, _, settle = symbol.partition(":")
    quote = pair.partition("/")[2]
    return not settle or not quote or settle == quote


def _since_ms(since: str | None, existing: list[rows.FileRow] | None) -> int:
    if since is not None:
        return _time(since, "--since") * 1000
    if existing:
        # Continue the file: from the second after its last time.
        return (max(row.time_s for row in existing) + 1) * 1000
    raise click.UsageError("--since is needed: there is no --out file to continue from")


@click.command(
    "funding-history",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: 0 done, 1 failed (the venue, the network, a file not merged), "
    "2 bad usage (an unknown exchange or symbol, a bad time).",
)
@click.option(
    "--exchange", required=True, help="The ccxt exchange id: binanceusdm, bybit, or another."
)
@click.option(
    "--symbol",
    required=True,
    help="The perpetual, as ccxt names it (BTC/USDT:USDT) or as the venue does (BTCUSDT).",
)
@click.option(
    "--since",
    help="First funding time to fetch (included): ISO 8601 (2024-01-01, 2024-01-01T08:00; UTC "
    "unless it names a zone) or epoch seconds. Default: after the last time in --out.",
)
@click.option(
    "--until",
    help="Last funding time to fetch (included), written as --since. Default: now.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The CSV file to write; one that exists is merged with what the venue lists.",
)
@click.option("--api-url", help="Send the requests to this base URL (a proxy, a test venue).")
@click.option("--sandbox", is_flag=True, help="Use the venue's testnet (ccxt's sandbox mode).")
def funding_history(
    exchange: str,
    symbol: str,
    since: str | None,
    until: str | None,
    out: Path,
    api_url: str | None,
    sandbox: bool,
) -> int:
    """Download a perpetual's funding-rate history into a CSV file the paper broker's
    funding_history reads.

    Writes timestamp (ISO 8601, UTC), fundingRate, exchange and symbol, oldest first. An
    existing --out is merged: its rows are kept and the venue's new ones added; a time it holds
    at another rate than the venue lists, rows of another exchange or symbol, or a file that
    is no funding history are refused, and the file is left as it was. The file is replaced
    at once, only after the paper broker's reader has accepted the new one. No credentials
    are used: the history is public.
    """
    api_url = _api_url(api_url)
    existing = read_existing(out)
    since_ms, until_ms = _bounds(since, until, existing)
    venue = _open(exchange, symbol, sandbox, api_url)
    label = f"{exchange}-sandbox" if sandbox else exchange
    log.info(
        "%s %s: funding times from %s to %s",
        exchange,
        venue.symbol,
        _utc_ms(since_ms),
        _utc_ms(until_ms),
    )
    listed = download(venue, venue.symbol, since_ms, until_ms) if since_ms <= until_ms else {}
    try:
        merged = rows.merge(existing or [], listed, label, venue.symbol, str(out))
    except DataError as error:
        raise click.ClickException(str(error)) from None
    if existing and not merged.new:
        click.echo(rows.summary(merged, label, venue.symbol, str(out)))
        return 0
    if len(merged.rows) < 2:
        raise click.ClickException(
            f"{exchange} {venue.symbol}: {len(merged.rows)} funding time(s) from "
            f"{_utc_ms(since_ms)} to {_utc_ms(until_ms)}: a history needs two at least (widen "
            "--since or --until); nothing written"
        )
    holes = describe_holes(write_checked(out, rows.render(merged.rows)))
    if holes is not None:
        # Written all the same (it is what the venue and the file hold), but said: a --since
        # after the file's end, or the venue's own gap, leaves times no rate is known for.
        log.warning("%s", holes)
    click.echo(rows.summary(merged, label, venue.symbol, str(out)))
    return 0


def _api_url(api_url: str | None) -> str | None:
    if api_url is None:
        return None
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{api_url!r} is not an http(s) URL", param_hint="'--api-url'")
    return api_url.rstrip("/")


def _bounds(
    since: str | None, until: str | None, existing: list[rows.FileRow] | None
) -> tuple[int, int]:
    """(first, last) time to fetch, epoch ms, both included: --until's whole second, now by
    default; --since, or the second after the file's last time."""
    until_ms = _time(until, "--until") * 1000 + 999 if until is not None else _now_ms()
    since_ms = _since_ms(since, existing)
    if since is not None and since_ms > until_ms:
        raise click.BadParameter(
            f"{since!r} is after --until ({_utc_ms(until_ms)})", param_hint="'--since'"
        )
    return since_ms, until_ms


def _open(exchange: str, symbol: str, sandbox: bool, api_url: str | None) -> Venue:
    """The venue, its markets loaded, ``symbol`` resolved to its unified perpetual."""
    ccxt = _import_ccxt()
    client = make_client(ccxt, exchange, _linear(symbol), sandbox, api_url)
    venue = Venue(ccxt, client, exchange, symbol)
    venue.symbol = str(resolve_market(venue)["symbol"])
    return venue


def _now_ms() -> int:
    return int(time.time() * 1000)


def _import_ccxt() -> Any:
    try:
        import ccxt
    except ImportError:  # pragma: no cover - ccxt is in the dev and ccxt extras
        raise click.ClickException(
            "tradefleet funding-history needs the ccxt library: pip install 'tradefleet[ccxt]'"
        ) from None
    return ccxt


def _said(error: Exception) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "..."


def _utc_ms(ms: int) -> str:
    return f"{format_time(ms // 1000)} UTC"
