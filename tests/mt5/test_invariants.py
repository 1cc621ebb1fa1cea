"""Property tests: accounting invariants hold for random order flows and price paths."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.mt5.helpers import EPOCH, FAR_FUTURE, market
from tests.venues.mt5 import MT5Terminal
from tests.venues.mt5 import constants as C

SYMBOLS = ("EURUSD", "USDJPY")
step = st.tuples(
    st.sampled_from(SYMBOLS),
    st.sampled_from((C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL)),
    st.integers(min_value=1, max_value=50),  # volume in 0.01 lots
    st.integers(min_value=-30, max_value=30),  # price move in points before the order
    st.booleans(),  # hedging: close an existing position instead of opening
)


def _run(mode: str, steps: list[tuple[str, int, int, int, bool]]) -> MT5Terminal:
    term = MT5Terminal(margin_mode=mode, balance=1_000_000.0)
    assert term.initialize()
    for symbol, side, lots, move, close in steps:
        tick = term.symbol_info_tick(symbol)
        info = term.symbol_info(symbol)
        assert tick is not None and info is not None
        term.advance(1)
        term.set_price(symbol, tick.bid + move * info.point, tick.ask + move * info.point)
        request = market(symbol, side, round(lots * 0.01, 2))
        if close and mode == "hedging":
            opposite = C.POSITION_TYPE_SELL if side == C.ORDER_TYPE_BUY else C.POSITION_TYPE_BUY
            candidates = [p for p in term.positions_get(symbol=symbol) or () if p.type == opposite]
            if candidates:
                request["position"] = candidates[0].ticket
                request["volume"] = min(request["volume"], candidates[0].volume)
        result = term.order_send(request)
        assert result is not None and result.retcode == C.TRADE_RETCODE_DONE, result
    return term


def _check_accounting(term: MT5Terminal) -> None:
    deals = term.history_deals_get(EPOCH, FAR_FUTURE) or ()
    account = term.account_info()
    assert account is not None
    booked = sum(d.profit + d.commission + d.swap for d in deals)
    assert account.balance == pytest.approx(booked, abs=0.05)
    positions = term.positions_get() or ()
    floating = sum(p.profit + p.swap for p in positions)
    assert account.equity == pytest.approx(account.balance + floating, abs=0.05)
    assert account.margin_free == pytest.approx(account.equity - account.margin, abs=0.05)


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(step, min_size=1, max_size=25))
def test_netting_invariants(steps: list[tuple[str, int, int, int, bool]]) -> None:
    """Netting ("Position accounting" in the MQL5 docs): at most one position per symbol and
    its signed volume equals the signed sum of the symbol's deals; balance equals the sum of
    booked deal results; equity = balance + floating profit."""
    term = _run("netting", steps)
    signed: dict[str, float] = defaultdict(float)
    for deal in term.history_deals_get(EPOCH, FAR_FUTURE) or ():
        if deal.type in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL):
            signed[deal.symbol] += deal.volume if deal.type == C.DEAL_TYPE_BUY else -deal.volume
    for symbol in SYMBOLS:
        positions = term.positions_get(symbol=symbol) or ()
        assert len(positions) <= 1
        net = sum(p.volume if p.type == C.POSITION_TYPE_BUY else -p.volume for p in positions)
        assert net == pytest.approx(signed[symbol], abs=1e-9)
    _check_accounting(term)


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(step, min_size=1, max_size=25))
def test_hedging_invariants(steps: list[tuple[str, int, int, int, bool]]) -> None:
    """Hedging: every position's volume equals its IN deals minus its OUT deals (grouped by
    DEAL_POSITION_ID); closed positions have IN == OUT; accounting identities hold."""
    term = _run("hedging", steps)
    open_volume: dict[int, float] = defaultdict(float)
    for deal in term.history_deals_get(EPOCH, FAR_FUTURE) or ():
        if deal.entry == C.DEAL_ENTRY_IN and deal.position_id:
            open_volume[deal.position_id] += deal.volume
        elif deal.entry == C.DEAL_ENTRY_OUT:
            open_volume[deal.position_id] -= deal.volume
    live = {p.ticket: p.volume for p in term.positions_get() or ()}
    for position_id, volume in open_volume.items():
        assert volume == pytest.approx(live.get(position_id, 0.0), abs=1e-9)
    _check_accounting(term)
