"""backtesting.py's whole process on a CSV file: what a user of it would run, timed by
bench_engine.py from the outside (``python backtesting_py_process.py FILE FAST SLOW QTY FEE``).

Reads the file with pandas, computes the two EMAs with pandas (``ewm(adjust=False)``: seeded
with the first close, as ema-cross's), trades the same rules as ema-cross (flat until the
first cross after ``slow`` bars, then close and reverse at the next open) and prints the final
equity and the number of closed trades as JSON.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

import pandas as pd
from backtesting import Backtest, Strategy


def ema_cross(fast_ema: Any, slow_ema: Any, slow: int, size: float) -> type[Strategy]:
    """ema-cross's rules as a backtesting.py strategy, on EMA values computed beforehand (this
    process and bench_engine.py's in-process run trade the very same rules)."""

    class EmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(lambda: fast_ema, name="fast")
            self.slow = self.I(lambda: slow_ema, name="slow")
            self.direction = 0

        def next(self) -> None:
            if len(self.data) < slow:
                return
            f, s = self.fast[-1], self.slow[-1]
            direction = 1 if f > s else (-1 if f < s else 0)
            if direction == 0 or direction == self.direction:
                return
            previous, self.direction = self.direction, direction
            if previous == 0:
                return
            if self.position:
                self.position.close()
            if direction > 0:
                self.buy(size=size)
            else:
                self.sell(size=size)

    return EmaCross


def main(argv: list[str]) -> int:
    path, fast, slow, quantity, fee = argv[0], int(argv[1]), int(argv[2]), argv[3], argv[4]
    frame = pd.read_csv(path, index_col="timestamp", parse_dates=True)
    frame.columns = [c.capitalize() for c in frame.columns]
    close = frame["Close"]
    fast_ema = close.ewm(span=fast, adjust=False).mean().to_numpy()
    slow_ema = close.ewm(span=slow, adjust=False).mean().to_numpy()
    EmaCross = ema_cross(fast_ema, slow_ema, slow, float(quantity))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(frame, EmaCross, cash=1_000_000, commission=float(fee)).run()
    final, trades = float(stats["Equity Final [$]"]), int(stats["# Trades"])
    print(json.dumps({"final_equity": final, "trades": trades}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
