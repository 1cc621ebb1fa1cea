"""Rolling pairwise correlation of bar returns, kept exactly, for pre-trade's ``max_correlation``.

The guard asks, for each entry, how the entry symbol's returns over the last ``correlation_bars``
bars correlate with each open position's. Pairing the windows again per intent costs
O(positions × window) (~190 µs for 10 positions over 100 bars: more than the whole risk chain's
budget), so each pair asked about keeps the sums Σx, Σy, Σx², Σy², Σxy over the bar times both
windows hold: a return is added as it arrives and taken out as it leaves.

Those sums are integers, not floats. Float running sums kept the rounding of every value that
had passed through them: a return that dwarfs the window's (a bad print, a 50% wick, among
returns of ~1e-7 at 60,000 moving a few cents) left its rounding behind when it was taken out,
and n·Σxy − Σx·Σy cancelled the rest into a figure off by anything (over 100,000 such bars with
a few bad prints: 35.7 off at worst, 224 windows outside [-1, 1]; and a 0.91 correlation read
as below a 0.7 cap for a window's length, so correlated entries went through). Here each
return is held as a whole number of 2⁻⁸⁰ (:func:`fixed`: exact for any return of 2⁻²⁸ or more
in size, within 2⁻⁸⁰ of it below that, far under what the float division of two prices
resolves), and integers add and take out without rounding: the sums are always exactly those
of the window, however long the run and whatever passed through it. :func:`pearson` rounds
only at the end, so the figure is the window's correlation to a few units in the last place,
clamped to [-1, 1].

A series whose returns do not move over the window (:func:`pearson`'s flat test) has no
correlation: ``None``, which the guard reads as "nothing to double up on", the entry is not
vetoed against it. Its correlation is 0/0; computed anyway it is the correlation of rounding
noise, and two symbols with steady returns came out at exactly −1 or +1 and vetoed each
other's entries. A symbol that does not move carries no risk of moving with the entry.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence

# Returns are held as integers in units of 2⁻⁸⁰ (``fixed``).
SCALE_BITS = 80
_SCALE = float(2**SCALE_BITS)
_ONE_SQUARED = float(2 ** (2 * SCALE_BITS))  # 1.0² in the units of a product of fixed returns
# Fewer common bars than this: no figure (correlation_bars is at least this too).
MIN_BARS = 10
# Flat: the standard deviation of the window's returns is at most FLAT × √(1 + their mean
# square). A return computed from two float prices carries up to ~4.4e-16 × (1 + |r|) of
# rounding, so a series moving less than ~100 times that (5.7e-14: half a billionth of a basis
# point) is rounding, not a market.
FLAT = 2.0**-44
_FLAT_SQUARED = FLAT * FLAT
# Returns this large (a previous close ~1e-30 of this one) are not counted: no market moves so,
# and their squares would leave the range a float can hold once summed.
MAX_RETURN = 2.0**100


def fixed(value: float) -> int:
    """``value`` in units of 2⁻⁸⁰, truncated (multiplying by a power of two is exact)."""
    return int(value * _SCALE)


def countable(value: float) -> bool:
    """Whether a return can be held (finite, and below ``MAX_RETURN`` in size)."""
    return -MAX_RETURN < value < MAX_RETURN


def pearson(n: int, sx: int, sy: int, sxx: int, syy: int, sxy: int) -> float | None:
    """The correlation of ``n`` pairs from their exact fixed-point sums; None when fewer than
    ``MIN_BARS`` or either series is flat. Rounded only in the final float arithmetic (a few
    ulps), and kept within [-1, 1] though that rounding could step outside by an ulp."""
    if n < MIN_BARS:
        return None
    # n² × each variance, exact (≥ 0) until the float conversion. Countable returns are below
    # 2¹⁰⁰, so every integer here (below 2³⁶⁰ × n²) converts to a float without overflow.
    fxx = float(n * sxx - sx * sx)
    fyy = float(n * syy - sy * sy)
    # Flat: n² × variance ≤ FLAT² × n² × (1 + mean square), both sides in units of 2⁻¹⁶⁰.
    floor = _FLAT_SQUARED * n
    if fxx <= floor * (n * _ONE_SQUARED + sxx) or fyy <= floor * (n * _ONE_SQUARED + syy):
        return None
    # Each conversion and operation rounds once: within ~4 ulps of the exact quotient.
    rho = float(n * sxy - sx * sy) / math.sqrt(fxx * fyy)
    return 1.0 if rho > 1.0 else -1.0 if rho < -1.0 else rho


def correlation(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson correlation of two equally long series, by :func:`pearson` (None when either is
    flat or shorter than ``MIN_BARS``, or when they differ in length or hold a value that is
    not :func:`countable`)."""
    if len(xs) != len(ys):
        return None
    n = sx = sy = sxx = syy = sxy = 0
    for x, y in zip(xs, ys, strict=True):
        if not (countable(x) and countable(y)):
            return None
        mx, my = fixed(x), fixed(y)
        n += 1
        sx += mx
        sy += my
        sxx += mx * mx
        syy += my * my
        sxy += mx * my
    return pearson(n, sx, sy, sxx, syy, sxy)


def paired(own: Iterable[tuple[int, float]], other: Iterable[tuple[int, float]]) -> float | None:
    """The correlation of ``other``'s returns with ``own``'s at the same bar times (``own``'s
    last return where it has two at one time)."""
    mine = dict(own)
    pairs = [(mine[ts], value) for ts, value in other if ts in mine]
    return correlation([a for a, _ in pairs], [b for _, b in pairs])


class _Pair:
    """Exact fixed-point sums over the bar times both windows of a pair hold."""

    __slots__ = ("n", "sx", "sxx", "sxy", "sy", "syy")

    def __init__(self) -> None:
        self.n = self.sx = self.sy = self.sxx = self.syy = self.sxy = 0


class RollingReturns:
    """Per-symbol windows of (bar time, return) and, for every pair asked about, exact sums over
    the bar times both windows hold."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.series: dict[str, deque[tuple[int, float]]] = {}
        # The window by bar time: (fixed return, its square), computed once per return.
        self._at: dict[str, dict[int, tuple[int, int]]] = {}
        self._irregular: set[str] = set()
        # symbol -> other -> (the pair's sums, whether symbol is the pair's x); both directions
        # share one _Pair
        self._partners: dict[str, dict[str, tuple[_Pair, bool]]] = {}

    def _pair(self, x: str, y: str) -> _Pair:
        """The sums of a pair first asked about, from the two windows; kept from then on."""
        pair = _Pair()
        ys = self._at[y]
        for ts, (mx, mxx) in self._at[x].items():
            found = ys.get(ts)
            if found is not None:
                my, myy = found
                pair.n += 1
                pair.sx += mx
                pair.sy += my
                pair.sxx += mxx
                pair.syy += myy
                pair.sxy += mx * my
        self._partners.setdefault(x, {})[y] = (pair, True)
        self._partners.setdefault(y, {})[x] = (pair, False)
        return pair

    def append(self, symbol: str, ts: int, value: float) -> None:
        """``symbol``'s return at bar time ``ts`` (one that is not :func:`countable` is not
        counted, as a bar after a zero close is not)."""
        if not countable(value):
            return
        series = self.series.get(symbol)
        if series is None:
            series = self.series[symbol] = deque(maxlen=self.window)
            self._at[symbol] = {}
        at = self._at[symbol]
        irregular = symbol in self._irregular
        if not irregular and ts in at:
            self._irregular.add(symbol)  # two returns at one time: only pairing is right
            irregular = True
        if len(series) == series.maxlen and series:
            old_ts, _ = series[0]
            if not irregular:
                old, old_squared = at.pop(old_ts)
                self._update(symbol, old_ts, -old, -old_squared, -1)
        series.append((ts, value))
        if not irregular:
            m = fixed(value)
            at[ts] = (m, m * m)
            self._update(symbol, ts, m, m * m, 1)

    def _update(self, symbol: str, ts: int, m: int, squared: int, count: int) -> None:
        """A bar time both windows hold joins (``count`` 1) or leaves (-1, with ``m`` and
        ``squared`` negated) each pair of ``symbol`` whose partner has a return at ``ts``: both
        returns go in or out together."""
        partners = self._partners.get(symbol)
        if not partners:
            return
        windows = self._at
        for other, (pair, is_x) in partners.items():
            found = windows[other].get(ts)
            if found is None:
                continue
            mo, other_squared = found
            pair.sxy += m * mo  # m carries the sign already
            if count < 0:
                mo, other_squared = -mo, -other_squared
            pair.n += count
            if is_x:
                pair.sx += m
                pair.sxx += squared
                pair.sy += mo
                pair.syy += other_squared
            else:
                pair.sy += m
                pair.syy += squared
                pair.sx += mo
                pair.sxx += other_squared

    def correlation(self, a: str, b: str) -> float | None:
        """The correlation of ``a``'s and ``b``'s returns over the bar times both windows hold
        now (None: flat, too few common bars, or no returns yet). The same figure as
        :func:`paired` on the two windows, from the running sums in O(1)."""
        series = self.series
        if a not in series or b not in series:
            return None
        if a in self._irregular or b in self._irregular:
            return paired(series[a], series[b])
        found = self._partners.get(a, {}).get(b)
        pair = found[0] if found is not None else self._pair(a, b)
        return pearson(pair.n, pair.sx, pair.sy, pair.sxx, pair.syy, pair.sxy)
