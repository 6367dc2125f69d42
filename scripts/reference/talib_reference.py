"""Record TA-Lib reference values for Kairos' indicator tests.

    python talib_reference.py > strategies/tests/fixtures/talib_reference.json

Reads the real bar files in ../shared/data/bars, runs TA-Lib (the `TA-Lib` wheel) with the
standard parameters, and keeps every value at a stride of indices plus the warm-up edge, with
full float precision (repr), so the test can compare Kairos' streaming indicators at 1e-9.
"""
import gzip
import json
import math
import os
import sys

import numpy as np
import pandas as pd
import talib

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "bars")
FILES = {
    "EURUSD": ("EURUSD.csv", "Open,High,Low,Close,Volume".split(",")),
    "sp500": ("sp500.csv.gz", "Open,High,Low,Close,Volume".split(",")),
}


def load(name):
    fn, cols = FILES[name]
    df = pd.read_csv(os.path.join(ROOT, fn))
    return {c.lower(): df[c].to_numpy(dtype=float) for c in cols}


def pick(series, idx):
    out = []
    for i in idx:
        v = float(series[i])
        out.append(None if math.isnan(v) else v)
    return out


def main():
    doc = {"talib_version": talib.__version__, "datasets": {}}
    for name in FILES:
        d = load(name)
        c, h, l = d["close"], d["high"], d["low"]
        n = len(c)
        idx = sorted(set(list(range(0, 60)) + list(range(60, n, 23)) + [n - 1]))
        macd, macds, macdh = talib.MACD(c, 12, 26, 9)
        up, mid, lo = talib.BBANDS(c, 20, 2.0, 2.0, 0)
        series = {
            "sma_10": talib.SMA(c, 10),
            "sma_20": talib.SMA(c, 20),
            "ema_12": talib.EMA(c, 12),
            "ema_26": talib.EMA(c, 26),
            "wma_20": talib.WMA(c, 20),
            "rsi_14": talib.RSI(c, 14),
            "rsi_2": talib.RSI(c, 2),
            "macd_12_26_9": macd,
            "macd_signal_12_26_9": macds,
            "macd_hist_12_26_9": macdh,
            "bb_upper_20_2": up,
            "bb_middle_20_2": mid,
            "bb_lower_20_2": lo,
            "atr_14": talib.ATR(h, l, c, 14),
            "stddev_20": talib.STDDEV(c, 20, 1.0),
        }
        doc["datasets"][name] = {
            "file": FILES[name][0],
            "bars": n,
            "index": idx,
            "series": {k: pick(v, idx) for k, v in series.items()},
        }
    json.dump(doc, sys.stdout, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
