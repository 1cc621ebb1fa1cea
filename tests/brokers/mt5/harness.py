"""One MT5 broker on one emulated terminal: the setup the MT5 tests (and, later, the shared
broker contract suite) drive. A harness per setup: ``Mt5Harness.netting()``,
``Mt5Harness.hedging()``; ``broker`` is the plugin object, ``venue`` the terminal it trades on.

Two transports (``transport=``, default :data:`TRANSPORT`, which the ``transport`` fixture
sets): ``direct``, the broker calls the emulator; ``bridge``, the broker calls a bridge client
and an in-process ``tradefleet mt5-bridge`` server (loopback, with a token) calls the emulator.
The emulator stays the ground truth and the place faults are scripted either way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.runtime.helpers import Scripted, start_test_run
from tests.venues.mt5 import MT5Terminal, default_symbol_specs
from tradefleet_plugins.brokers.mt5_broker import Mt5Broker
from tradefleet_plugins.brokers.mt5_params import Mt5BrokerParams
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import CarriedState
from tradefleet_runtime.mt5_bridge.client import BridgeTerminal
from tradefleet_runtime.mt5_bridge.server import BridgeEndpoint, build_bridge_server
from tradefleet_runtime.order_ids import bot_prefix
from tradefleet_runtime.reconcile import ReconcilePlan, plan_reconciliation
from tradefleet_runtime.sdk import (
    Bar,
    BrokerContext,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    Strategy,
)

BOT = "default/gold-bot"
LOGIN = 51234567
PASSWORD = "demo-password"
SERVER = "MetaQuotes-Demo"
BRIDGE_TOKEN = "bridge-token-for-tests"

#: The transport a harness uses when not told: ``direct`` or ``bridge`` (set by the
#: ``transport`` fixture of conftest.py for the suites that run both ways).
TRANSPORT = "direct"


PLANTED_LOGIN = 90817263
PLANTED_PASSWORD = "Pl4nted-Passw0rd-7781"
PLANTED_SERVER = "Pl4ntedBroker-Live-3"


def planted_terminal() -> MT5Terminal:
    """A hedging terminal whose account has planted, recognisable secrets (also the factory a
    bridge subprocess names: ``tests.brokers.mt5.harness:planted_terminal``)."""
    return MT5Terminal(
        login=PLANTED_LOGIN,
        password=PLANTED_PASSWORD,
        server=PLANTED_SERVER,
        symbols=gold_pro_symbols(),
    )


UPSTREAM_ENV = "TF_TEST_MT5_UPSTREAM"


def relay_terminal() -> BridgeTerminal:
    """A terminal that is itself a bridge client, to the address in ``$TF_TEST_MT5_UPSTREAM``
    (token: the file in ``$TF_TEST_MT5_UPSTREAM_TOKEN``). A bridge subprocess serving it can be
    killed while the terminal behind it, in the test's own process, lives on — as a real
    terminal outlives its bridge."""
    return BridgeTerminal(
        os.environ[UPSTREAM_ENV], token_file=os.environ[UPSTREAM_ENV + "_TOKEN"], timeout_s=30.0
    )


@dataclass
class Bridge:
    """An in-process bridge server in front of ``terminal`` and a client for it."""

    endpoint: BridgeEndpoint
    client: BridgeTerminal
    token_file: Path

    @classmethod
    def start(cls, terminal: Any, token: str = BRIDGE_TOKEN, port: int = 0) -> Bridge:
        from tradefleet_runtime.service.auth import TokenAuth

        folder = Path(tempfile.mkdtemp(prefix="tf-mt5-bridge-"))
        (folder / "control.token").write_text(token + "\n")
        endpoint = build_bridge_server(
            terminal,
            address=f"127.0.0.1:{port}",
            auth=TokenAuth(folder, refresh_interval=0),
        ).start()
        client = BridgeTerminal(
            f"127.0.0.1:{endpoint.port}", token_file=folder / "control.token", timeout_s=10.0
        )
        return cls(endpoint, client, folder / "control.token")

    def stop(self) -> None:
        self.client.close()
        self.endpoint.stop(0)
        # The token's folder is the test's own: a run of the suite left one per bridge in /tmp.
        shutil.rmtree(self.token_file.parent, ignore_errors=True)


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
    bridge: Bridge | None = None
    connected: bool = False
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
        transport: str | None = None,
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
        module: Any = term
        if (transport or TRANSPORT) == "bridge":
            harness.bridge = Bridge.start(term)
            module = harness.bridge.client
        harness.broker = Mt5Broker(Mt5BrokerParams(**settings), module, sleep=harness._sleep)
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
        self.connected = True
        return self

    def close(self) -> None:
        self.broker.close()
        if self.bridge is not None:
            # the broker really went through the bridge (a harness can't silently go direct)
            assert not self.connected or self.bridge.endpoint.servicer.calls > 0
            self.bridge.stop()

    def order(
        self,
        side: Side = Side.BUY,
        quantity: float = 10_000.0,  # units (euros): 0.1 lot of EURUSD at the terminal
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


# -- an engine on the harness's broker, driven bar by bar --------------------------------------

EMULATOR_T0 = 1_736_121_600  # the emulator's clock: 2025-01-06 00:00 UTC
MINUTE = 60


def minute_bar(i: int, price: float) -> Bar:
    """The i-th EURUSD minute bar of a flat ``price``, from ten minutes before the emulator's
    clock."""
    t0 = EMULATOR_T0 - 10 * MINUTE
    return Bar("EURUSD", MINUTE, t0 + i * MINUTE, price, price, price, price, 1.0)


def live_engine(
    venue: Mt5Harness,
    strategy: Strategy,
    journal: Journal | None = None,
    run_id: str = "live",
    risk: Sequence[Any] = (),
    hooks: RiskHooks | None = None,
) -> tuple[Engine, Journal]:
    """A live engine trading EURUSD minute bars on ``venue``'s broker, journaling to
    ``journal`` (in memory when None) in a run ``run_id`` (``hooks``: acting risk plugins)."""
    journal = journal if journal is not None else Journal(":memory:")
    start_test_run(journal, run_id, bot=venue.bot, mode="live", timeframe_s=MINUTE)
    config = EngineConfig(venue.bot, "live", ("EURUSD",), MINUTE, 10_000.0)
    engine = Engine(
        config, strategy, venue.broker, journal, list(risk), venue=venue.broker, hooks=hooks
    )
    return engine, journal


def settle_and_pump(engine: Engine, venue: Mt5Harness) -> int:
    """Wait for the broker's thread to answer what is queued, then apply its events."""
    venue.broker.settle(timeout=30.0)
    return engine.pump()


def bracketed_then_down(venue: Mt5Harness, path: Path, quantity: float) -> str:
    """A live bot buys ``quantity`` EURUSD with SL 1.0950 / TP 1.1100 at 1.1, journaled
    durably at ``path``, then goes down (its journal closed, the terminal keeps the position):
    the entry's client order id."""
    strategy = Scripted(
        {0: lambda ctx, bar: ctx.buy("EURUSD", quantity, stop_loss=1.0950, take_profit=1.1100)}
    )
    engine, journal = live_engine(venue, strategy, Journal(path, durable=True))
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    parent = engine.last_order_id
    journal.close()
    return parent


def restarted_plan(
    restarted: Mt5Harness, journal: Journal, since: int, hooks: RiskHooks | None = None
) -> tuple[Engine, CarriedState, ReconcilePlan]:
    """The restarted bot's engine on ``restarted`` (run "live-2", journaling to ``journal``,
    ``hooks`` its acting risk plugins), what its journal carries, and the reconciliation
    planned against the terminal's reports from ``since``."""
    again, _ = live_engine(restarted, Scripted(), journal, run_id="live-2", hooks=hooks)
    carried = journal.carried_state(restarted.bot)
    assert carried is not None
    # As the session does before the reports (``OrderRestorer``): the orders the journal holds.
    restarted.broker.restore_orders([o for o, _ in carried.working] + list(carried.unacknowledged))
    plan = plan_reconciliation(
        prefix=bot_prefix(restarted.bot),
        symbols=("EURUSD",),
        journal_fills=carried.fills,
        journal_working={o.client_order_id: o for o, _ in carried.working},
        known_order_ids=carried.known_order_ids,
        venue_orders=restarted.broker.order_reports(since),
        venue_fills=restarted.broker.fill_reports(since),
        venue_positions=restarted.broker.position_reports(),
        now=EMULATOR_T0,
    )
    return again, carried, plan
