"""Which venue account a TradingBot's orders reach, and which of its symbols another bot trades
on that same account (pure: no kopf, no I/O).

A venue nets positions per symbol and account, not per bot. Two bots trading one symbol on one
account see each other's position as their own: bot A's reconciliation takes B's position for a
difference (A halts Degraded, or with ``adoptVenuePositions`` takes it over), A's emergency
flatten closes B's position and A's stop-loss sells B's coins (``docs/operations.md``,
TradefleetBotDegraded). Admission refuses such a bot (``admission.admit``), and the status timer
marks bots that share anyway (created before the check, or while the webhook was not served)
with the condition ``AccountShared``.

A bot whose roll onto another credentials Secret is held (that Secret does not exist,
``children.CredentialsSecretMissing``) trades on with the pod it has, on the Secret that pod
mounts, which the operator records in ``status.credentialsSecretInUse``: until it is rolled out,
such a bot counts as on both accounts, the spec's and its pod's (:func:`held_key`).

What is compared is what the spec says, offline: the credentials Secret's name stands for the
API key (admission cannot read Secrets, and must not), so two Secrets holding the same key are
not found out; and each broker's symbol spelling is mapped as its runtime maps it, as far as that
can be done without the venue's market list.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from tradefleet_operator.bot_api import TradingBot
from tradefleet_runtime.errors import FieldError
from tradefleet_runtime.spec import BotSpec
from tradefleet_runtime.spec.model import Mode

__all__ = [
    "AccountKey",
    "BotAccount",
    "SharedSymbol",
    "account_key",
    "account_of",
    "bot_account",
    "credentials_in_use",
    "held_key",
    "new_shares",
    "share_errors",
    "shared_symbols",
    "sharing_condition",
    "sharing_summary",
    "venue_symbol",
]


@dataclass(frozen=True, slots=True)
class AccountKey:
    """The venue account (and wallet) a bot's orders reach: equal keys, one set of positions."""

    namespace: str
    broker: str
    secret: str
    #: The broker params that pick another account or wallet with the same API key, as
    #: (param, value) pairs; only those that differ from the broker's own choice are listed,
    #: so that writing a default out does not make another key.
    selectors: tuple[tuple[str, str], ...] = ()
    #: False where the account keeps each bot's positions apart itself (so sharing a symbol is
    #: safe, or cannot be told from the spec): such keys are never refused.
    nets: bool = True

    def describe(self) -> str:
        """How messages name the account: ``broker ccxt, Secret 'keys', exchange binance``."""
        parts = [f"broker {self.broker}", f"Secret {self.secret!r}"]
        parts.extend(f"{name} {value}" for name, value in self.selectors)
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class BotAccount:
    """One bot as the sharing check sees it (what the operator's index keeps per bot)."""

    name: str
    key: AccountKey | None  # None: its orders reach no account another bot could share
    symbols: tuple[str, ...]  # as ``spec.market.symbols`` writes them
    venue_symbols: tuple[str, ...]  # the same, as the venue's instrument (compared)
    #: The account its running pod still trades on while a roll onto ``key`` is held
    #: (:func:`held_key`); None when it is ``key``'s, or nothing is held.
    held: AccountKey | None = None

    def accounts(self) -> tuple[AccountKey, ...]:
        """Every account the bot's orders may reach now: the spec's, and a held pod's."""
        return tuple(key for key in (self.key, self.held) if key is not None)


@dataclass(frozen=True, slots=True)
class SharedSymbol:
    """``spec.market.symbols[index]`` is traded by ``other`` on the same account too."""

    index: int
    symbol: str
    other: str
    other_symbol: str  # how the other bot writes it
    venue_symbol: str
    key: AccountKey


# --- the account ---------------------------------------------------------------------------------

#: Brokers whose every bot has an account of its own: the paper broker simulates one per bot.
_OWN_ACCOUNT_BROKERS = frozenset({"paper"})


def account_key(namespace: str, spec: BotSpec) -> AccountKey | None:
    """The account ``spec``'s orders reach, or None when they reach none another bot could share:
    a backtest (simulated, whatever its broker), the paper broker (a simulated account per bot),
    or a broker given no credentials Secret (it cannot sign in to an account)."""
    broker = spec.broker
    if spec.mode is Mode.BACKTEST or broker.name in _OWN_ACCOUNT_BROKERS:
        return None
    if broker.credentials_secret is None:
        return None
    secret = broker.credentials_secret.name
    if broker.name == "ccxt":
        return AccountKey(namespace, broker.name, secret, _ccxt_selectors(broker.params))
    if broker.name == "mt5":
        # A hedging account keeps each bot's positions apart by its magic number: the broker
        # reconciles, flattens and closes only its own (``mt5_reports.ours``). A netting account
        # keeps one position per symbol, and the broker refuses to start on a symbol in which
        # another magic holds a position (``Mt5Broker._refuse_shared_netting``; two bots that
        # start flat are not caught there). Which kind an account is, only the terminal says
        # (``account_info().margin_mode``), and no param states it: so two MT5 bots on one
        # login are never refused here (``docs/operations.md``).
        return AccountKey(namespace, broker.name, secret, nets=False)
    # Another broker (a plugin of the user's): its params are unknown here, so the Secret alone
    # names the account. Two bots on one key may then be refused though a param of theirs picks
    # other sub-accounts: give each sub-account its own key (and Secret).
    return AccountKey(namespace, broker.name, secret)


def held_key(key: AccountKey | None, in_use: str | None) -> AccountKey | None:
    """The account a bot's running pod trades on while its roll onto ``key`` (the spec's) is
    held: ``key`` with ``in_use``, the Secret the pod mounts, as the API key. None when nothing
    is held, it is the same Secret, or the spec reaches no account. Only the Secret is known of
    the pod's template (a name, recorded by the operator), so the spec's broker and selectors
    stand for the pod's."""
    if key is None or not in_use or in_use == key.secret:
        return None
    return dataclasses.replace(key, secret=in_use)


def _ccxt_selectors(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The ccxt params that reach another wallet with the same API key (``ccxt_params.py``)."""
    # The exchange id: one Binance key trades spot as ``binance`` and USDⓈ-M futures as
    # ``binanceusdm``, separate wallets with separate positions.
    exchange = str(params.get("exchange", ""))
    # The market type: a spot balance and a linear perpetual's position are other instruments,
    # whichever exchange id serves both (Bybit's unified account).
    market_type = str(params.get("market_type", "spot"))
    selectors = [("exchange", exchange), ("market_type", market_type)]
    # The testnet is another venue, with accounts of its own. Read as the broker's params model
    # reads it (pydantic's lax bool: ``"true"``, ``"yes"``, ``1`` are True too, and admission
    # admits them), so every spelling of one setting gives one key.
    sandbox = _sandbox(params.get("sandbox", False))
    if sandbox is not None:
        selectors.append(("sandbox", sandbox))
    # Not in the key: ``options.defaultType``. ccxt sends an order to the wallet of its market's
    # type (``binance.create_order``: ``marketType = params['type'] or market['type']``; bybit's
    # category likewise), never to the one ``defaultType`` names, which steers only calls made
    # without a market. So Binance spot with ``defaultType: margin`` still trades the spot
    # balance, and ``binanceusdm`` with ``future`` or ``swap`` the one USDⓈ-M wallet: keying it
    # would split one account and miss a share. (Binance's ``swap`` would read a spot symbol as
    # its perpetual, but the broker loads only its market type's markets, so there the order
    # fails instead of reaching another wallet.) Nor leverage and margin_mode (set per symbol on
    # the same position: two bots setting them differently are one more reason not to share);
    # api_url (a proxy in front of the venue reaches the same account); the polling and retry
    # settings.
    return tuple(selectors)


#: The broker's params model reads ``sandbox`` as a lax pydantic bool; the operator may not
#: import the plugin's model (``.importlinter``, contract (c)), so it reads it the same way.
_BOOL: TypeAdapter[bool] = TypeAdapter(bool)


def _sandbox(raw: object) -> str | None:
    """The key's ``sandbox`` selector: ``"true"`` for the testnet, None for the production
    venue (the broker's default, so writing ``false`` out is the same key), and a value the
    broker refuses marked as such (that bot never starts: its params are refused)."""
    try:
        return "true" if _BOOL.validate_python(raw) else None
    except ValidationError:
        return "unreadable"


# --- symbols -------------------------------------------------------------------------------------


def venue_symbol(spec: BotSpec, symbol: str) -> str:
    """``symbol`` as the instrument the bot's broker trades, compared between bots."""
    if spec.broker.name == "ccxt":
        return _ccxt_market(symbol)
    if spec.broker.name == "mt5":
        # The broker's name for it, from the params' symbol map (XAUUSD -> GOLD.pro).
        mapping = spec.broker.params.get("symbols")
        if isinstance(mapping, Mapping):
            mapped = mapping.get(symbol, symbol)
            return mapped if isinstance(mapped, str) else symbol
        return symbol
    return symbol  # another broker: its mapping is unknown, so as written


def _ccxt_market(symbol: str) -> str:
    """The ccxt broker finds a market by its ccxt symbol or by the venue's id
    (``CcxtBroker._find_market``): on Binance ``BTC/USDT`` and ``BTCUSDT`` are one market, a
    perpetual's ``BTC/USDT:USDT`` is ``BTCUSDT`` too, and a dated future's
    ``BTC/USDT:USDT-250328`` is ``BTCUSDT_250328``. So compared without case, separators or a
    contract's settle currency (``:USDT``, which the venue's id does not spell), its delivery
    date kept: ``BTCUSDT250328``, another contract than the perpetual. Venue ids that are no
    spelling of the symbol (Kraken's ``XXBTZUSD``, a date written ``28MAR25``) are not mapped."""
    pair, colon, contract = symbol.partition(":")
    if colon:
        _settle, dash, expiry = contract.partition("-")
        symbol = pair + dash + expiry
    return re.sub(r"[/\-_ ]", "", symbol).upper()


def bot_account(namespace: str, name: str, spec: BotSpec, in_use: str | None = None) -> BotAccount:
    """The bot as the sharing check sees it; ``in_use``: the Secret its running pod mounts
    while a roll is held (``status.credentialsSecretInUse``)."""
    symbols = tuple(spec.market.symbols)
    key = account_key(namespace, spec)
    return BotAccount(
        name=name,
        key=key,
        symbols=symbols,
        venue_symbols=tuple(venue_symbol(spec, symbol) for symbol in symbols),
        held=held_key(key, in_use),
    )


def credentials_in_use(body: Mapping[str, Any]) -> str | None:
    """``status.credentialsSecretInUse`` of a TradingBot object (written by the operator only:
    the status subresource), or None."""
    status = body.get("status")
    value = status.get("credentialsSecretInUse") if isinstance(status, Mapping) else None
    return value if isinstance(value, str) and value else None


def account_of(body: Mapping[str, Any]) -> BotAccount | None:
    """A TradingBot object's account, or None when it does not count: being deleted (its
    positions are being closed and it trades no more), or a spec the model refuses (it runs
    nothing: the operator marks it Failed)."""
    metadata = body.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("deletionTimestamp"):
        return None
    try:
        bot = TradingBot.parse(body)
    except Exception:  # any refusal of the model: not a bot that trades
        return None
    return bot_account(bot.namespace, bot.name, bot.spec, credentials_in_use(body))


# --- sharing -------------------------------------------------------------------------------------


def shared_symbols(bot: BotAccount, others: Iterable[BotAccount]) -> list[SharedSymbol]:
    """Each of ``bot``'s symbols another bot on the same netting account trades (``others``:
    the bots of its namespace; the bot itself, by name, is skipped). A bot held on its pod's
    account counts on both (:meth:`BotAccount.accounts`), on either side."""
    keys = [key for key in bot.accounts() if key.nets]
    if not keys:
        return []
    mine = {venue: i for i, venue in enumerate(bot.venue_symbols)}
    shares: list[SharedSymbol] = []
    for other in others:
        if other.name == bot.name:
            continue
        theirs = other.accounts()
        for key in (key for key in keys if key in theirs):
            for written, venue in zip(other.symbols, other.venue_symbols, strict=True):
                index = mine.get(venue)
                if index is not None:
                    shares.append(
                        SharedSymbol(index, bot.symbols[index], other.name, written, venue, key)
                    )
    return sorted(shares, key=lambda share: (share.index, share.other, share.key.secret))


def new_shares(
    bot: BotAccount, old: BotAccount | None, others: Iterable[BotAccount]
) -> list[SharedSymbol]:
    """The shares an update brings: ``bot``'s that ``old`` (the object replaced) did not have
    already, with the same bot, instrument and account. An update that leaves a share as it was
    (pausing or stopping a bot that shares since before the check) brings none: a person must
    always be able to stop a bot."""
    others = list(others)
    before = (
        {(s.key, s.venue_symbol, s.other) for s in shared_symbols(old, others)}
        if old is not None
        else set()
    )
    return [
        share
        for share in shared_symbols(bot, others)
        if (share.key, share.venue_symbol, share.other) not in before
    ]


def share_errors(shares: Sequence[SharedSymbol]) -> list[FieldError]:
    """One ``FieldError`` per shared symbol and other bot, naming both and the account."""
    errors = []
    for share in shares:
        spelled = f" (as {share.other_symbol!r})" if share.other_symbol != share.symbol else ""
        errors.append(
            FieldError(
                f"spec.market.symbols[{share.index}]",
                f"{share.symbol} is traded by TradingBot {share.other!r}{spelled} on the same "
                f"account ({share.key.describe()}): two bots must not share a symbol on one "
                "account, whose venue nets their positions — give one a sub-account with its "
                "own key",
            )
        )
    return errors


#: The condition's message stops listing shares past this many characters (a bot may trade
#: 200 symbols; a condition is read by a person, and kopf cuts Event messages at 1024).
_SUMMARY_CHARS = 700

#: The ``AccountShared`` condition's reasons.
SHARED = "SymbolSharedOnAccount"
NOT_SHARED = "NoSharedSymbol"
NO_ACCOUNT = "NoSharedAccount"
NOT_CHECKED = "NotCheckedPositionsKeptApart"


def sharing_condition(bot: BotAccount, others: Iterable[BotAccount]) -> tuple[bool, str, str]:
    """The ``AccountShared`` condition of ``bot``: (shared, reason, message)."""
    key = bot.key
    if key is None:
        return False, NO_ACCOUNT, "the bot's orders reach no venue account another bot shares"
    if not key.nets:
        return (
            False,
            NOT_CHECKED,
            f"not checked: the account ({key.describe()}) may keep each bot's positions apart "
            "(an MT5 hedging account does, by magic number); on an MT5 netting account the "
            "broker refuses to start on a symbol in which another bot holds a position",
        )
    shares = shared_symbols(bot, others)
    if not shares:
        return False, NOT_SHARED, "no other TradingBot trades the bot's symbols on its account"
    return True, SHARED, sharing_summary(shares)


def sharing_summary(shares: Sequence[SharedSymbol]) -> str:
    """Every shared symbol and who else trades it, and what to do (bounded)."""
    if not shares:
        return ""
    pairs = [f"{share.symbol} with TradingBot {share.other!r}" for share in shares]
    shown: list[str] = []
    for pair in pairs:
        if sum(len(p) + 2 for p in shown) + len(pair) > _SUMMARY_CHARS:
            break
        shown.append(pair)
    more = len(pairs) - len(shown)
    listed = "; ".join(shown) + (f"; and {more} more" if more else "")
    # Two accounts only for a bot held on its pod's Secret (BotAccount.accounts).
    accounts = list(dict.fromkeys(share.key.describe() for share in shares))
    where = f"account{'s' if len(accounts) > 1 else ''} ({'; '.join(accounts)})"
    return (
        f"shares symbols with other bots on the same {where}: "
        f"{listed}. The venue nets their positions: each bot's reconciliation, flatten and "
        "stop-loss act on the other's too; give one a sub-account with its own key"
    )
