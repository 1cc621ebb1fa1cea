"""A native trailing stop: ``exits`` with ``trailing_native`` ratchets the position's stop-loss
order (MOVE_STOP), and the engine refuses any move that is not a shrink of risk."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import HOUR, T0, Scripted, bar, paper_engine, start_test_run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_plugins.risk.exits import Exits, trailed_stop
from tradefleet_plugins.risk.exits_params import ExitsParams
from tradefleet_runtime.capabilities import AccountAction, ActionKind
from tradefleet_runtime.contracts import BrokerContext, RiskContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import RiskHooks, action_intents
from tradefleet_runtime.engine.stop_moves import (
    NOT_BETTER,
    NOT_FINITE,
    PAST_MARK,
    MoveRefused,
    StopMove,
    decide_stop_move,
    protective_stop_losses,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    ReasonCode,
    Side,
)
from tradefleet_runtime.spec.model import Mode


class Mover:
    """A risk plugin asking one scripted action per bar (after the bar's orders)."""

    def __init__(self, actions: dict[int, AccountAction]) -> None:
        self.actions = actions
        self.bars = 0

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1

    def account_actions(self, ctx: RiskContext) -> list[AccountAction]:
        action = self.actions.get(self.bars - 1)
        return [action] if action is not None else []


def _hooks(name: str, plugin: Any) -> RiskHooks:
    return RiskHooks(bar_observers=((name, plugin),), actors=((name, plugin),))


def _buy_with_stop(stop: float = 90.0) -> Scripted:
    return Scripted({0: lambda c, b: c.buy("TEST", 10, stop_loss=stop)})


def _rising() -> list[Bar]:
    # Entry at 100 (bar 1's open), then a steady rise to 120.
    return [
        bar(0, 100, 100, 100, 100),
        bar(1, 100, 104, 100, 104),
        bar(2, 104, 110, 104, 110),
        bar(3, 110, 116, 110, 116),
        bar(4, 116, 120, 116, 119),
    ]


def _stop(engine: Engine) -> Order:
    [stop] = [o for o in engine.open_orders("TEST") if o.order_type is OrderType.STOP]
    return stop


def _exits_engine(journal: Journal, run_id: str = "run-1", **params: Any) -> Engine:
    exits = Exits(ExitsParams(early_exit_fraction=0, trailing_pct=0.05, **params))
    return paper_engine(journal, run_id, _buy_with_stop(), hooks=_hooks("exits", exits))


# -- the pure rule ---------------------------------------------------------------------------

LONG_STOP = Order(
    "s-sl", "X", Side.SELL, 10, OrderType.STOP, 90.0, reduce_only=True, tag="stop_loss"
)
SHORT_STOP = LONG_STOP._replace(side=Side.BUY, price=110.0)


def test_a_long_stop_moves_up_only_short_of_the_mark_and_on_the_tick() -> None:
    assert decide_stop_move(95.07, 10, 100.0, [LONG_STOP], 0.1) == [StopMove(LONG_STOP, 95.0)]
    # Rounded away from the mark: a price just below the mark never lands on it.
    assert decide_stop_move(99.99, 10, 100.0, [LONG_STOP], 0.5) == [StopMove(LONG_STOP, 99.5)]
    for price, code in [
        (89.0, NOT_BETTER),
        (90.0, NOT_BETTER),
        (100.0, PAST_MARK),
        (101.0, PAST_MARK),
        (math.nan, NOT_FINITE),
        (math.inf, NOT_FINITE),
        (None, NOT_FINITE),
        (-1.0, NOT_FINITE),
    ]:
        refused = decide_stop_move(price, 10, 100.0, [LONG_STOP], 0.0)
        assert isinstance(refused, MoveRefused) and refused.code == code, price


def test_a_short_stop_moves_down_only() -> None:
    assert decide_stop_move(104.93, -10, 100.0, [SHORT_STOP], 0.1) == [StopMove(SHORT_STOP, 105.0)]
    assert decide_stop_move(111.0, -10, 100.0, [SHORT_STOP], 0.0) == MoveRefused(
        NOT_BETTER, "stop 111 would not tighten the working stop-loss (110) for a short position"
    )
    assert isinstance(decide_stop_move(99.0, -10, 100.0, [SHORT_STOP], 0.0), MoveRefused)


def test_only_the_positions_own_stop_losses_are_moved() -> None:
    take_profit = LONG_STOP._replace(order_type=OrderType.LIMIT, price=120.0, tag="take_profit")
    not_reducing = LONG_STOP._replace(reduce_only=False)
    buy_stop = LONG_STOP._replace(side=Side.BUY)
    orders = [take_profit, not_reducing, buy_stop, LONG_STOP]
    assert protective_stop_losses(10, orders) == [LONG_STOP]
    assert protective_stop_losses(-10, orders) == [buy_stop]


def test_move_stop_sends_no_order() -> None:
    action = AccountAction(ActionKind.MOVE_STOP, "trail", "X", price=95.0)
    assert action_intents("exits", action, {"X": Position("X", 10, 100.0)}) == []


def test_the_plugin_asks_only_to_tighten() -> None:
    stops = ((10.0, 90.0),)
    assert trailed_stop(1.0, 120.0, 119.0, stops, 6.0, math.nan) == 114.0
    assert trailed_stop(1.0, 120.0, 119.0, ((10.0, 114.0),), 6.0, math.nan) is None
    assert trailed_stop(1.0, 120.0, 113.0, stops, 6.0, math.nan) is None  # past the close
    assert trailed_stop(1.0, 120.0, 119.0, stops, 6.0, 114.0) is None  # asked already
    assert trailed_stop(1.0, 120.0, 119.0, (), 6.0, math.nan) is None  # no stop to move
    assert trailed_stop(-1.0, 80.0, 81.0, ((10.0, 110.0),), 4.0, math.nan) == 84.0


# -- through the engine and the paper broker -------------------------------------------------


def test_the_stop_ratchets_up_with_the_best_price_and_never_down(tmp_path: Path) -> None:
    engine = _exits_engine(Journal(tmp_path / "j.sqlite"), trailing_native=True)
    engine.run(_rising())
    # Best 120 (bar 4's high): the stop is 5% behind, at 114 (it was 90).
    assert _stop(engine).price == pytest.approx(114.0)
    # The price falls back (closes above the stop): the stop stays at 114.
    engine.run([bar(5, 119, 119, 115, 115), bar(6, 115, 116, 114.5, 115)])
    assert _stop(engine).price == pytest.approx(114.0)
    assert engine.position("TEST").quantity == 10
    moves = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT reason FROM order_updates WHERE reason LIKE 'stop moved%' ORDER BY id"
    )
    assert [r[0] for r in moves][-1] == "stop moved from 110.2 to 114 by exits"
    [(price,)] = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT price FROM orders WHERE tag = 'stop_loss'"
    )
    assert price == pytest.approx(114.0)
    counted = engine.stats.risk_decisions[("exits", "approve")]
    assert counted == len(moves) and counted >= 3
    codes = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT DISTINCT code FROM risk_decisions WHERE plugin = 'exits'"
    )
    assert codes == [("trailing_stop",)]


def test_a_fast_bar_fills_at_the_trailed_stop_not_the_next_open(tmp_path: Path) -> None:
    native = _exits_engine(Journal(tmp_path / "n.sqlite"), trailing_native=True)
    virtual = _exits_engine(Journal(tmp_path / "v.sqlite"))
    crash = [bar(5, 119, 119, 100, 100), bar(6, 95, 96, 94, 95)]
    for engine in (native, virtual):
        engine.run([*_rising(), *crash])
    [trade] = native.portfolio.trades
    assert trade.exit_price == pytest.approx(114.0)  # the stop, inside the fast bar
    assert (trade.exit_ts, trade.exit_reason) == (T0 + 5 * HOUR, "stop_loss")
    [old] = virtual.portfolio.trades  # the virtual trail: at the next bar's open
    assert (old.exit_price, old.exit_ts) == (95.0, T0 + 6 * HOUR)


def test_a_gap_through_the_trailed_stop_fills_at_the_open(tmp_path: Path) -> None:
    engine = _exits_engine(Journal(tmp_path / "j.sqlite"), trailing_native=True)
    engine.run([*_rising(), bar(5, 105, 106, 100, 100)])
    [trade] = engine.portfolio.trades
    assert trade.exit_price == 105.0 and trade.exit_reason == "stop_loss"


def _scripted(journal: Journal, actions: dict[int, AccountAction]) -> Engine:
    return paper_engine(journal, "run-1", _buy_with_stop(), hooks=_hooks("mover", Mover(actions)))


@pytest.mark.parametrize(
    ("price", "code"),
    [(89.0, NOT_BETTER), (105.0, PAST_MARK), (math.nan, NOT_FINITE), (math.inf, NOT_FINITE)],
)
def test_a_move_that_is_no_shrink_is_refused_journaled_and_counted(
    tmp_path: Path, price: float, code: str
) -> None:
    action = AccountAction(ActionKind.MOVE_STOP, "scripted", "TEST", price=price)
    engine = _scripted(Journal(tmp_path / "j.sqlite"), {2: action})
    engine.run([bar(0, 100, 100, 100, 100), bar(1, 100, 104, 100, 104), bar(2, 104, 104, 102, 104)])
    assert _stop(engine).price == 90.0  # nothing sent, nothing changed
    [(action_, reason, got)] = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT action, reason, code FROM risk_decisions WHERE plugin = 'mover'"
    )
    assert action_ == "veto" and got == code and reason.startswith("MOVE_STOP of TEST refused")
    assert engine.stats.vetoes[("mover", code)] == 1
    assert not engine.journal.query(  # type: ignore[attr-defined]
        "SELECT 1 FROM order_updates WHERE reason LIKE 'stop moved%'"
    )


def test_a_restart_re_arms_the_moved_stop(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    first = Journal(path, durable=True)
    engine = _exits_engine(first, trailing_native=True)
    engine.run(_rising())
    assert _stop(engine).price == pytest.approx(114.0)
    first.close()  # the process dies here

    second = Journal(path, durable=True)
    restarted = paper_engine(second, "run-2", Scripted(), restores_account=True)
    carried = second.carried_state("bot")
    assert carried is not None
    restarted.restore(carried)
    assert _stop(restarted).price == pytest.approx(114.0)
    # The re-armed stop works at 114 at the (restarted) paper broker.
    restarted.run([bar(5, 119, 119, 100, 100)])
    [trade] = restarted.portfolio.trades
    assert trade.exit_price == pytest.approx(114.0)
    second.close()


# -- a broker answering later, as the venues' (MT5, ccxt) do ---------------------------------


class LaterBroker(PaperBroker):
    """The paper broker, answering an amend later (as an event), or refusing it."""

    def __init__(self, refuse: bool = False) -> None:
        super().__init__(PaperBrokerParams())
        self.refuse = refuse
        self.answers: list[OrderUpdate] = []

    def amend(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> OrderUpdate | None:
        if self.refuse:
            answer = OrderUpdate(
                client_order_id, OrderStatus.OPEN, 0, "amend refused: price off the band",
                code=ReasonCode.VENUE_REJECTED,
            )  # fmt: skip
        else:
            answer = super().amend(client_order_id, quantity, price)
            assert answer is not None
        self.answers.append(answer)
        return None


def _later_engine(tmp_path: Path, broker: LaterBroker, actions: dict[int, AccountAction]) -> Engine:
    broker.connect(BrokerContext("bot", Mode.PAPER, ("TEST",), "USD", 10_000.0))
    journal = Journal(tmp_path / "j.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", ("TEST",), HOUR, 10_000.0, equity_chunk=1)
    hooks = _hooks("mover", Mover(actions))
    return Engine(config, _buy_with_stop(), broker, journal, hooks=hooks)


BARS = [bar(0, 100, 100, 100, 100), bar(1, 100, 104, 100, 104), bar(2, 104, 104, 102, 104)]


def test_a_later_answer_moves_the_stop_only_when_it_comes(tmp_path: Path) -> None:
    move = AccountAction(ActionKind.MOVE_STOP, "scripted", "TEST", price=95.0)
    broker = LaterBroker()
    engine = _later_engine(tmp_path, broker, {2: move, 3: dataclasses.replace(move, price=96.0)})
    engine.run(BARS)
    assert _stop(engine).price == 90.0  # asked, not answered yet
    engine.run([bar(3, 104, 104, 102, 104)])  # a second move while the first is on its way
    assert engine.stats.vetoes[("mover", "stop_move_pending")] == 1
    [answer] = broker.answers
    engine._on_order_update(answer)
    assert _stop(engine).price == 95.0
    assert engine.stats.risk_decisions[("mover", "approve")] == 1


def test_a_refused_later_answer_leaves_the_stop_and_is_counted(tmp_path: Path) -> None:
    move = AccountAction(ActionKind.MOVE_STOP, "scripted", "TEST", price=95.0)
    broker = LaterBroker(refuse=True)
    engine = _later_engine(tmp_path, broker, {2: move})
    engine.run(BARS)
    [answer] = broker.answers
    engine._on_order_update(answer._replace(client_order_id=_stop(engine).client_order_id))
    assert _stop(engine).price == 90.0
    assert engine.stats.vetoes[("mover", "stop_move_refused_by_broker")] == 1


def test_the_risk_action_event_says_the_asked_price_without_float_noise(tmp_path: Path) -> None:
    """A move asked at a float with noise (97.7 / 3 * 3: 97.70000000000002) reads 97.7 in the
    journaled ``risk_action`` event and the log (it read ``to 97.70000000000002``)."""
    asked = 97.7 / 3 * 3
    assert repr(asked) == "97.70000000000002"
    mover = Mover({2: AccountAction(ActionKind.MOVE_STOP, "trail", "TEST", price=asked)})
    journal = Journal(tmp_path / "j.sqlite")
    engine = paper_engine(journal, "run-1", _buy_with_stop(), hooks=_hooks("mover", mover))
    engine.run(_rising())
    [message] = [
        m for (m,) in journal.query("SELECT message FROM events WHERE kind = 'risk_action'")
    ]
    assert "move_stop TEST to 97.7: trail" in message, message
