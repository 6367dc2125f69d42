"""backtesting.py on the engine benchmark's workload, timed the same way.

The 45,031-bar BTC perpetual series tiled to N bars (default 10,000,000), SmaCross 10/20
(`position.close(); buy()` / `position.close(); sell()`), cash 100,000, commission 0.0002.
Prints bars per second of `Backtest.run()` (data preparation excluded, as in the Rust bench).

    python peer_backtesting_py.py [--bars N]
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
from backtesting import Backtest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
from backtesting_py_reference import sma_cross  # noqa: E402  (the same SmaCross as the parity fixtures)

DATA = os.path.join(HERE, "..", "..", "..", "shared", "data", "bars", "btc-perp-20211231-20220201_1m.csv")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=10_000_000)
    args = ap.parse_args()
    src = pd.read_csv(DATA)
    ts = pd.to_datetime(src["timestamp"]).to_numpy()
    span = ts[-1] - ts[0] + (ts[1] - ts[0])
    reps = -(-args.bars // len(src))
    idx = np.concatenate([ts + i * span for i in range(reps)])[: args.bars]
    cols = {c.capitalize(): np.tile(src[c].to_numpy(), reps)[: args.bars] for c in ["open", "high", "low", "close", "volume"]}
    df = pd.DataFrame(cols, index=pd.DatetimeIndex(idx))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(df, sma_cross(10, 20), cash=100_000, commission=0.0002)
        t0 = time.perf_counter()
        stats = bt.run()
        dt = time.perf_counter() - t0
    print(f"backtesting.py {__import__('backtesting').__version__}: {args.bars} bars in {dt:.2f} s "
          f"= {args.bars / dt:,.0f} bars/s ({stats['# Trades']} trades, final equity {stats['Equity Final [$]']:.2f})")


if __name__ == "__main__":
    main()
