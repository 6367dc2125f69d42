"""sentence-transformers on the texts of agent/benches/worker_embed.rs: same model folder,
same texts, same batch size, on the CPU with every core; prints the best of three passes in
texts per second.

Usage: python scripts/bench/st_embed.py --model DIR --texts FILE.json [--batch 32]
Needs: pip install torch==2.15.0 sentence-transformers==6.2.0 (scripts/bench/worker.sh)
"""
import argparse
import json
import time

import torch
from sentence_transformers import SentenceTransformer

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--texts", required=True)
p.add_argument("--batch", type=int, default=32)
args = p.parse_args()
texts = json.load(open(args.texts))
m = SentenceTransformer(args.model, device="cpu")
m.encode(texts[: args.batch], batch_size=args.batch)
best = 0.0
for _ in range(3):
    t = time.perf_counter()
    e = m.encode(texts, batch_size=args.batch, normalize_embeddings=True, convert_to_numpy=True)
    best = max(best, len(texts) / (time.perf_counter() - t))
assert e.shape == (len(texts), 384)
print(
    f"sentence-transformers {__import__('sentence_transformers').__version__} (torch {torch.__version__}, "
    f"{torch.get_num_threads()} threads), best of 3 {best:8.1f} texts/s"
)
