"""Rolling pairwise return statistics kept incrementally, so the correlation guard answers an
intent in O(open positions) instead of re-pairing every window (O(positions × window)).

The running sums are a *filter*, never the judge of a close call: whenever the estimate lies
within ``MARGIN`` of the limit, or a series is nearly flat or dominated by its mean (where the
one-pass formula loses precision), or a symbol's series is irregular (two returns at one bar
time), the caller recomputes the pair exactly, two-pass, over the same window as before. Far
from those cases the estimate's error (well under 1e-10 with the re-sum every few windows) cannot
move the answer across the limit, so every decision is the exact computation's.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from tradefleet_runtime.sdk import Position

# How close to the limit (in correlation units) the estimate must not be to be trusted.
MARGIN = 1e-7
# A series whose centred sum of squares is below this share of its raw sum of squares is treated
# as flat-or-trending: the one-pass variance cancels there, so the exact pass decides.
CANCEL = 1e-3


class _Pair:
    __slots__ = ("n", "ops", "sx", "sxx", "sxy", "sy", "syy")

    def __init__(self) -> None:
        self.n = 0
        self.ops = 0
        self.sx = self.sy = self.sxx = self.syy = self.sxy = 0.0

    def add(self, x: float, y: float, sign: float) -> None:
        self.n += 1 if sign > 0 else -1
        self.ops += 1
        self.sx += sign * x
        self.sy += sign * y
        self.sxx += sign * x * x
        self.syy += sign * y * y
        self.sxy += sign * x * y


class RollingReturns:
    """Per-symbol windows of (bar time, return) and, for every pair asked about, running sums
    over the bar times both windows hold."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.series: dict[str, deque[tuple[int, float]]] = {}
        self._at: dict[str, dict[int, float]] = {}  # the window by bar time
        self._irregular: set[str] = set()
        # symbol -> other -> (the pair's sums, whether symbol is the pair's x); both directions
        # share one _Pair
        self._partners: dict[str, dict[str, tuple[_Pair, bool]]] = {}

    def _resum(self, x: str, y: str) -> _Pair:
        pair = _Pair()
        ys = self._at.get(y, {})
        for ts, value in self._at.get(x, {}).items():
            other = ys.get(ts)
            if other is not None:
                pair.add(value, other, 1.0)
        pair.ops = 0
        self._partners.setdefault(x, {})[y] = (pair, True)
        self._partners.setdefault(y, {})[x] = (pair, False)
        return pair

    def append(self, symbol: str, ts: int, value: float) -> None:
        series = self.series.get(symbol)
        if series is None:
            series = self.series[symbol] = deque(maxlen=self.window)
            self._at[symbol] = {}
        at = self._at[symbol]
        irregular = symbol in self._irregular
        if not irregular and ts in at:
            self._irregular.add(symbol)  # two returns at one time: only the exact pass is right
            irregular = True
        if len(series) == series.maxlen and series:
            old_ts, old = series[0]
            if not irregular:
                del at[old_ts]
                self._update(symbol, old_ts, old, -1.0)
        series.append((ts, value))
        if not irregular:
            at[ts] = value
            self._update(symbol, ts, value, 1.0)

    def _update(self, symbol: str, ts: int, value: float, sign: float) -> None:
        """Add (or take out) ``symbol``'s return at ``ts`` in every pair it has (called after
        the window changed, so a re-sum here already counts the change)."""
        partners = self._partners.get(symbol)
        if not partners:
            return
        windows = self._at
        due: list[str] = []
        limit = 4 * self.window
        for other, (pair, is_x) in partners.items():
            y = windows[other].get(ts)
            if y is None:
                continue
            if pair.ops >= limit:  # bound the add/subtract drift: re-sum, on the bar's time
                due.append(other)
            elif is_x:
                pair.add(value, y, sign)
            else:
                pair.add(y, value, sign)
        for other in due:
            self._resum(symbol, other)

    def screen(
        self, a: str, positions: Mapping[str, Position], side: float, limit: float
    ) -> list[tuple[str, float]]:
        """The open positions (in their order, with the sign of side × position) whose
        correlation with an entry in ``a`` the exact pass must decide: every one the running
        sums cannot show to be clearly below ``limit`` (or too short to count)."""
        out: list[tuple[str, float]] = []
        series = self.series
        irregular = self._irregular
        partners = self._partners.get(a)
        if partners is None:
            partners = self._partners[a] = {}
        floor = limit - MARGIN
        too_long = 4 * self.window
        sqrt = math.sqrt
        for b, position in positions.items():
            if b == a or b not in series:
                continue
            sign = side if position.quantity > 0 else -side
            if irregular and (a in irregular or b in irregular):
                out.append((b, sign))
                continue
            found = partners.get(b)
            pair = found[0] if found is not None else self._resum(a, b)
            if pair.ops > too_long:  # bound the add/subtract drift
                pair = self._resum(a, b)
            n = pair.n
            if n < 10:
                continue  # the exact pass finds too few common bars too
            sx, sy, raw_xx, raw_yy = pair.sx, pair.sy, pair.sxx, pair.syy
            sxx = raw_xx - sx * sx / n
            syy = raw_yy - sy * sy / n
            if sxx <= CANCEL * raw_xx or syy <= CANCEL * raw_yy:
                out.append((b, sign))
                continue
            if (pair.sxy - sx * sy / n) / sqrt(sxx * syy) * sign < floor:
                continue
            out.append((b, sign))
        return out
