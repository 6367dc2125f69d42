"""vectorbt on the sweep benchmark's grid: SMA crossovers of every window pair 2..100 with
fast < slow (4,851 pairs), long and short (`direction="both"`: a golden cross goes long, a death
cross short, as `sma_cross mode=long_short`), 2 bps fees, on a prefix of the BTC perpetual
minute closes; the Sharpe ratio and total return of every pair computed, as a sweep row holds.

vectorbt holds every pair's signals and portfolio in memory at once (about 79 bytes per bar x
pair here), so the 45,031-bar series does not fit in 24 GiB: give the prefix with --bars. Numba
compiles on the first call; a warm-up on 500 bars comes first and is not timed.

    python peer_vectorbt.py [--bars 20000]
"""
import argparse
import os
import resource
import time

import numpy as np
import pandas as pd
import vectorbt as vbt

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "shared", "data", "bars", "btc-perp-20211231-20220201_1m.csv")


def sweep(close):
    windows = np.arange(2, 101)
    fast, slow = vbt.MA.run_combs(close, window=windows, r=2, short_names=["fast", "slow"])
    entries = fast.ma_crossed_above(slow)
    exits = fast.ma_crossed_below(slow)
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, direction="both", fees=0.0002, init_cash=100_000.0, freq="1min"
    )
    return pf.sharpe_ratio(), pf.total_return()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=20_000)
    args = ap.parse_args()
    src = pd.read_csv(DATA)
    close = pd.Series(src["close"].to_numpy(dtype=float)[: args.bars])
    sweep(close[:500])  # numba warm-up
    t = time.perf_counter()
    sharpe, ret = sweep(close)
    dt = time.perf_counter() - t
    pairs = len(sharpe)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    evals = pairs * len(close)
    print(
        f"vectorbt {vbt.__version__}: {pairs} pairs x {len(close)} bars = {evals / 1e6:.1f} M "
        f"bar-evaluations in {dt:.2f} s: {evals / dt / 1e6:.2f} M bar-evaluations/s; "
        f"peak RSS {peak:.0f} MiB ({peak * 2**20 / evals:.0f} bytes per bar x pair)"
    )


if __name__ == "__main__":
    main()
