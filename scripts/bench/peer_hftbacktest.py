"""Times hftbacktest's Binance futures converter on the USD-M recording (the peer figure of
the feeds replay benchmark). Run with hftbacktest 2.4.4 installed:

    python scripts/bench/peer_hftbacktest.py [FILE]

It converts the file (parse, normalise, sort into hftbacktest's event array) three times
and prints messages per second of the best run. hftbacktest's converter does not keep a book,
run a strategy or match orders: it only prepares the data its backtester reads.
"""
import gzip
import sys
import tempfile
import time

from hftbacktest.data.utils import binancefutures

path = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/binance-ws/usdm/btcusdt_20240808.gz"
with gzip.open(path, "rt") as f:
    messages = sum(1 for _ in f)
best = None
for _ in range(3):
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        binancefutures.convert(path, output_filename=f"{d}/out.npz")
        dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
print(f"hftbacktest 2.4.4 binancefutures.convert: {messages} messages in {best:.3f} s "
      f"({messages / best / 1e3:.1f} k messages/s, gunzip included)")
