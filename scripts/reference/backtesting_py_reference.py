"""Record backtesting.py reference figures for Kairos' parity tests.

Runs backtesting.py's canonical `SmaCross` (SMA of Close, `position.close(); buy()` on a golden
cross, `position.close(); sell()` on a death cross) on a bar file with every `Backtest` setting
at its default except cash and commission, and prints one JSON document with the trades and the
summary statistics under Kairos' key names.

    python backtesting_py_reference.py FILE --fast 10 --slow 20 --cash 100000 --commission 0.0002

Used by scripts/reference/record.sh, which pins the library version.
"""
import argparse
import os
import json
import math
import warnings

import numpy as np
import pandas as pd
import backtesting
from backtesting import Backtest, Strategy
from backtesting.lib import crossover


def load(path: str) -> pd.DataFrame:
    if path.endswith(".csv") or path.endswith(".csv.gz"):
        df = pd.read_csv(path)
        first = df.columns[0]
        df.index = pd.to_datetime(df[first])
        df = df.drop(columns=[first])
    else:
        raise SystemExit(f"unsupported file {path}")
    df = df.rename(columns=str.capitalize)
    return df[["Open", "High", "Low", "Close", "Volume"]]


def sma(values, n):
    return pd.Series(values).rolling(n).mean()


def sma_cross(n1: int, n2: int) -> type:
    """backtesting.py's canonical SmaCross with SMA periods n1 and n2 of Close."""

    class SmaCross(Strategy):
        def init(self):
            self.sma1 = self.I(sma, self.data.Close, n1)
            self.sma2 = self.I(sma, self.data.Close, n2)

        def next(self):
            if crossover(self.sma1, self.sma2):
                self.position.close()
                self.buy()
            elif crossover(self.sma2, self.sma1):
                self.position.close()
                self.sell()

    return SmaCross


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--fast", type=int, default=10)
    ap.add_argument("--slow", type=int, default=20)
    ap.add_argument("--cash", type=float, default=100_000)
    ap.add_argument("--commission", type=float, default=0.0002)
    args = ap.parse_args()

    data = load(args.file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(data, sma_cross(args.fast, args.slow), cash=args.cash, commission=args.commission)
        s = bt.run()

    def num(x):
        x = float(x)
        return None if math.isnan(x) else x

    def secs(td):
        return None if pd.isna(td) else td.total_seconds()

    trades = s["_trades"]
    out = {
        "file": os.path.basename(args.file),
        "backtesting_version": backtesting.__version__,
        "params": {"fast": args.fast, "slow": args.slow, "cash": args.cash,
                   "commission": args.commission},
        "summary": {
            "return_pct": num(s["Return [%]"]),
            "buy_hold_return_pct": num(s["Buy & Hold Return [%]"]),
            "return_ann_pct": num(s["Return (Ann.) [%]"]),
            "volatility_ann_pct": num(s["Volatility (Ann.) [%]"]),
            "sharpe": num(s["Sharpe Ratio"]),
            "sortino": num(s["Sortino Ratio"]),
            "calmar": num(s["Calmar Ratio"]),
            "max_drawdown_pct": num(s["Max. Drawdown [%]"]),
            "avg_drawdown_pct": num(s["Avg. Drawdown [%]"]),
            "max_drawdown_duration": secs(s["Max. Drawdown Duration"]),
            "num_trades": int(s["# Trades"]),
            "win_rate_pct": num(s["Win Rate [%]"]),
            "best_trade_pct": num(s["Best Trade [%]"]),
            "worst_trade_pct": num(s["Worst Trade [%]"]),
            "avg_trade_pct": num(s["Avg. Trade [%]"]),
            "profit_factor": num(s["Profit Factor"]),
            "expectancy_pct": num(s["Expectancy [%]"]),
            "sqn": num(s["SQN"]),
            "exposure_pct": num(s["Exposure Time [%]"]),
            "equity_final": num(s["Equity Final [$]"]),
            "equity_peak": num(s["Equity Peak [$]"]),
            "commissions": num(s.get("Commissions [$]", 0.0)),
            "bars": len(data),
        },
        # One row per closed trade: entry time, exit time, signed size, entry price, exit
        # price, net PnL.
        "trades": [
            [str(t.EntryTime), str(t.ExitTime), int(t.Size), float(t.EntryPrice),
             float(t.ExitPrice), float(t.PnL)]
            for t in trades.itertuples()
        ],
    }
    print(json.dumps(out, separators=(",", ":")).replace("],[", "],\n["))


if __name__ == "__main__":
    main()
