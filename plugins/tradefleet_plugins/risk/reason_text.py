"""How the risk plugins' reasons print a limit and the figure compared with it (pure).

A reason shows every limit as its params give it (``given``) and every measure to the digits
that show how it stands to that limit (``shown``): "win rate 60% < 60%" for 59.6% against a
floor of 0.6 told a trader the rule had fired on nothing. A cooldown's time left is in seconds
under a minute (``time_left``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

__all__ = ["GE", "GT", "LE", "LT", "Relation", "given", "shown", "time_left"]

# How a figure stands to the limit a reason compares it with (``shown``).
Relation = Callable[[float, float], bool]
GE, GT, LT, LE = operator.ge, operator.gt, operator.lt, operator.le
# Digits ``shown`` may add: a measure within 1e-12 of its limit is the limit (probation's eps).
_MAX_DECIMALS = 12


def given(limit: float, percent: bool = True) -> str:
    """``limit`` as its params give it, every digit kept (0.126 is "12.6%", never "13%"; a
    float's last bits, 0.07 × 100 = 7.000000000000001, are not digits anyone gave) (pure)."""
    return f"{limit * 100.0:.10g}%" if percent else f"{limit:.10g}"


def shown(
    value: float, *bounds: tuple[Relation, float], decimals: int = 2, percent: bool = True
) -> str:
    """``value`` to ``decimals`` places, or to more until the number printed stands to each
    bound's limit, printed by ``given``, as the value itself does (pure): 0.596 against a floor
    of 0.6 is "59.6%", never "60%". A bound the value does not meet is left out (nothing true
    to show), and so is a value that is not finite (Cpk without spread)."""
    scale, unit = (100.0, "%") if percent else (1.0, "")
    figure = value * scale
    if math.isfinite(figure):
        held = [
            (holds, float(given(limit, percent).rstrip("%")))
            for holds, limit in bounds
            if holds(value, limit)
        ]
        while decimals < _MAX_DECIMALS and not all(
            holds(float(f"{figure:.{decimals}f}"), printed) for holds, printed in held
        ):
            decimals += 1
    return f"{figure:.{decimals}f}{unit}"


def time_left(seconds: float) -> str:
    """A cooldown's time left, rounded up: seconds under a minute ("30 s", never "0 min"), else
    minutes and seconds (pure)."""
    whole = math.ceil(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"
