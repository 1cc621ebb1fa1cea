"""One MT5 broker on one emulated terminal: the setup the MT5 tests (and, later, the shared
broker contract suite) drive. A harness per setup: ``Mt5Harness.netting()``,
``Mt5Harness.hedging()``; ``broker`` is the plugin object, ``venue`` the terminal it trades on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.venues.mt5 import MT5Terminal, default_symbol_specs
from tradefleet_plugins.brokers.mt5_broker import Mt5Broker
from tradefleet_plugins.brokers.mt5_params import Mt5BrokerParams
from tradefleet_runtime.sdk import (
    BrokerContext,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)

BOT = "default/gold-bot"
LOGIN = 51234567
PASSWORD = "demo-password"
SERVER = "MetaQuotes-Demo"


def gold_pro_symbols() -> dict[str, dict[str, Any]]:
    """The default instruments, with gold named as at many brokers (``GOLD.pro``)."""
    specs = default_symbol_specs()
    specs["GOLD.pro"] = specs.pop("XAUUSD")
    return specs


def write_credentials(
    folder: Path, login: int = LOGIN, password: str = PASSWORD, server: str = SERVER
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "login").write_text(f"{login}\n")
    (folder / "password").write_text(password)
    (folder / "server").write_text(server)
    return folder


@dataclass
class Mt5Harness:
    venue: Any  # MT5Terminal, or a proxy around one
    broker: Mt5Broker
    bot: str = BOT
    symbols: tuple[str, ...] = ("EURUSD", "XAUUSD")
    credentials_dir: Path | None = None
    wakes: list[int] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)
    _seq: int = 0

    @classmethod
    def build(
        cls,
        margin_mode: str = "netting",
        *,
        venue: Any = None,
        credentials_dir: Path | None = None,
        **params: Any,
    ) -> Mt5Harness:
        term = (
            venue
            if venue is not None
            else MT5Terminal(margin_mode=margin_mode, symbols=gold_pro_symbols())
        )
        settings: dict[str, Any] = {
            "symbols": {"XAUUSD": "GOLD.pro"},
            "poll_interval_s": 60.0,  # tests poll through settle(): no race with the test
            "backoff_s": 0.01,
            "max_backoff_s": 0.05,
        }
        settings.update(params)
        harness = cls(venue=term, broker=None, credentials_dir=credentials_dir)  # type: ignore[arg-type]
        harness.broker = Mt5Broker(Mt5BrokerParams(**settings), term, sleep=harness._sleep)
        return harness

    @classmethod
    def netting(cls, **params: Any) -> Mt5Harness:
        return cls.build("netting", **params)

    @classmethod
    def hedging(cls, **params: Any) -> Mt5Harness:
        return cls.build("hedging", **params)

    def _sleep(self, seconds: float) -> None:
        # Waits move the terminal's clock (its throttle window is on that clock), not ours.
        self.slept.append(seconds)
        terminal = getattr(self.venue, "terminal", self.venue)
        terminal.advance(seconds)

    def connect(self) -> Mt5Harness:
        self.broker.connect(
            BrokerContext(
                bot_name=self.bot,
                mode="live",
                symbols=self.symbols,
                currency="USD",
                initial_capital=10_000.0,
                credentials_dir=self.credentials_dir,
                wake=lambda: self.wakes.append(1),
            )
        )
        return self

    def close(self) -> None:
        self.broker.close()

    def order(
        self,
        side: Side = Side.BUY,
        quantity: float = 0.1,
        symbol: str = "EURUSD",
        order_type: OrderType = OrderType.MARKET,
        **fields: Any,
    ) -> Order:
        self._seq += 1
        return Order(
            client_order_id=fields.pop("client_order_id", f"tf1234ab{self._seq:04d}x"),
            symbol=symbol,
            side=side,
            quantity=quantity,
            order_type=order_type,
            created_ts=1_736_121_600,
            **fields,
        )

    def submit(self, order: Order) -> list[Fill | OrderUpdate]:
        """Submit, wait for the terminal's answer, return the events it produced."""
        update = self.broker.submit(order)
        if update.status is not OrderStatus.PENDING:
            return [update]
        return self.settle()

    def settle(self) -> list[Fill | OrderUpdate]:
        self.broker.settle(timeout=30.0)
        return list(self.broker.drain_events())

    # -- what the terminal holds (ground truth) ----------------------------------------------

    @property
    def terminal(self) -> MT5Terminal:
        found: MT5Terminal = getattr(self.venue, "terminal", self.venue)
        return found

    def history_orders(self, comment: str | None = None) -> list[Any]:
        orders = self.terminal.history_orders_get(0, 2**31 - 1) or ()
        return [o for o in orders if comment is None or o.comment == comment]

    def deals(self, comment: str | None = None) -> list[Any]:
        deals = self.terminal.history_deals_get(0, 2**31 - 1) or ()
        return [d for d in deals if d.symbol and (comment is None or d.comment == comment)]


def fills(events: Sequence[Fill | OrderUpdate]) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def updates(events: Sequence[Fill | OrderUpdate]) -> list[OrderUpdate]:
    return [e for e in events if isinstance(e, OrderUpdate)]
