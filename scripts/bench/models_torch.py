"""PyTorch on the shapes of Kairos' model benchmarks (models/benches/inference.rs), same machine.

- forecaster: one decision, batch 1: the MLP (11 -> 64 -> 32 -> 1, ReLU) and the GRU (11 -> 32
  over 32 steps, linear head), eager, under inference_mode;
- minilm: all-MiniLM-L6-v2 (the real weights from target/models/all-MiniLM-L6-v2, or random
  ones of its shapes with --synthetic or when the folder is missing) with attention-masked mean
  pooling and L2 normalisation, batch 1 x 32 tokens, and 32 x 128 on a CPU or 256 x 128 on a GPU;
- gemma: a Gemma-3-270M-shaped model (random weights, transformers) decoding greedily with
  its KV cache, tokens per second after the prefill.

On a GPU (--device cuda) MiniLM runs in --dtype (default fp16) and Gemma in bf16, each timed
call ends with torch.cuda.synchronize(), and the forecaster shapes are skipped.

Usage: python3 scripts/bench/models_torch.py [--device cpu|cuda] [--dtype fp32|fp16|bf16]
       [--threads N] [--synthetic] [--skip-gemma]
Needs: pip install torch transformers safetensors
"""
import argparse
import json
import statistics
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=torch.get_num_threads())
p.add_argument("--skip-gemma", action="store_true")
p.add_argument("--minilm", default="target/models/all-MiniLM-L6-v2")
p.add_argument("--device", default="cpu")
p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"])
p.add_argument("--synthetic", action="store_true", help="random MiniLM weights of the real shapes")
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)
dev = torch.device(args.device)
gpu = dev.type == "cuda"
dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
dtype = dtypes[args.dtype or ("fp16" if gpu else "fp32")]
out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(dev),
       "minilm_dtype": str(dtype)}
if gpu:
    out["gpu"] = torch.cuda.get_device_name(dev)


def sync():
    if gpu:
        torch.cuda.synchronize(dev)


def per_call(fn, min_time=2.0, repeats=5):
    """Median over `repeats` runs of the mean time per call, each run at least min_time/repeats."""
    def call():
        fn()
        sync()

    call()
    n, t = 1, 0.0
    while t < min_time / repeats / 4:
        n *= 2
        s = time.perf_counter()
        for _ in range(n):
            call()
        t = time.perf_counter() - s
    runs = []
    for _ in range(repeats):
        s = time.perf_counter()
        for _ in range(n):
            call()
        runs.append((time.perf_counter() - s) / n)
    return statistics.median(runs)


with torch.inference_mode():
    if not gpu:
        mlp = torch.nn.Sequential(torch.nn.Linear(11, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1)).eval()
        x = torch.randn(1, 11)
        out["forecaster_mlp_us"] = per_call(lambda: mlp(x)) * 1e6

        gru = torch.nn.GRU(11, 32, batch_first=True).eval()
        head = torch.nn.Linear(32, 1).eval()
        xs = torch.randn(1, 32, 11)
        out["forecaster_gru_us"] = per_call(lambda: head(gru(xs)[1][-1])) * 1e6

    import os

    from transformers import BertConfig, BertModel

    if args.synthetic or not os.path.isdir(args.minilm):
        out["minilm_weights"] = "random"
        bert = BertModel(BertConfig(
            vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
            intermediate_size=1536, hidden_act="gelu", max_position_embeddings=512,
            type_vocab_size=2, layer_norm_eps=1e-12,
        ), add_pooling_layer=False)
    else:
        out["minilm_weights"] = args.minilm
        bert = BertModel.from_pretrained(args.minilm)
    bert = bert.to(dev, dtype).eval()
    for b, t in [(1, 32), (256 if gpu else 32, 128)]:
        ids = torch.randint(1000, 20000, (b, t), device=dev)
        ids[:, 0] = 101
        mask = torch.ones(b, t, dtype=torch.long, device=dev)

        def enc():
            h = bert(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).float()
            e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(e, dim=1)

        s = per_call(enc, min_time=4.0 if b > 1 else 2.0, repeats=5)
        out[f"minilm_b{b}x{t}_ms"] = s * 1e3
        out[f"minilm_b{b}x{t}_seq_per_s"] = b / s

    if not args.skip_gemma:
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig

        cfg = Gemma3TextConfig(
            vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18,
            num_attention_heads=4, num_key_value_heads=1, head_dim=256, sliding_window=512,
            rope_theta=1_000_000.0, max_position_embeddings=32768, query_pre_attn_scalar=256,
        )
        # bf16 on a GPU (what Gemma-3 was trained in; fp16 overflows its activations).
        model = Gemma3ForCausalLM(cfg).to(dev, torch.bfloat16 if gpu else torch.float32).eval()
        prompt = torch.randint(1000, 200000, (1, 8), device=dev)
        n_new = 33

        def gen():
            model.generate(prompt, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False, pad_token_id=0)

        def prefill():
            model.generate(prompt, max_new_tokens=1, min_new_tokens=1, do_sample=False, pad_token_id=0)

        gen()
        full = statistics.median([per_call(gen, min_time=0.1, repeats=1) for _ in range(3)])
        pre = statistics.median([per_call(prefill, min_time=0.1, repeats=1) for _ in range(3)])
        out["gemma_decode_tok_per_s"] = (n_new - 1) / max(full - pre, 1e-9)

print(json.dumps(out, indent=1))
