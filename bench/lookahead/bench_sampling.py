"""Lookahead decoding under sampling against plain sampling, in ONE process: compression ratio
(tokens per forward pass) and wall-clock ratio (tokens/s over plain sampling's), per (N, W, G)
and sampling setting, on code completion with the cached tiny_llama.

    OMP_NUM_THREADS=1 python bench/lookahead/bench_sampling.py --out bench/lookahead/results/cpu_sampling
    python bench/lookahead/bench_sampling.py --size gpu --device cuda --out $OUT

Plain sampling is transformers `generate(do_sample=True)` with the same temperature / top-k /
top-p; lookahead verifies its n-grams with the paper's sampling verification (distribution
tested in tests/experiments/lookahead/test_sampling.py). Fairness: the same prompts and budget,
an untimed warm-up per decoder, `--repeats` timed runs each, plain sampling timed before AND
after the lookahead configs (its reference speed is the median of all its timings). Outputs
are draws, so runs differ in length only by EOS; tokens/s accounts for that.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import pandas as pd
import torch

from celine.experiments.lookahead.baselines import plain_sampling
from celine.experiments.lookahead.decoding import Sampling, lookahead_generate
from celine.experiments.lookahead.task import timed

SETTINGS = {"T=1.0": Sampling(1.0), "T=0.7,top_p=0.9": Sampling(0.7, top_p=0.9)}


def markdown(table: pd.DataFrame) -> str:
    """A markdown table (2 decimals) without pandas' optional `tabulate` dependency."""
    fmt = [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in table.values]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in fmt]) + "\n"


def main() -> None:
    from bench_decoding import load_model_and_prompts  # the sibling script's loader

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="default")
    ap.add_argument("--model", default=None, help="a checkpoint folder instead of the cache")
    ap.add_argument("--outputs", default="outputs")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--configs", default="3,4,4 5,7,7 7,20,20", help="N,W,G triples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="outputs/bench/lookahead_sampling")
    args = ap.parse_args()

    path, model, tok, prompts, kw = load_model_and_prompts(args)
    configs = [tuple(int(x) for x in t.split(",")) for t in args.configs.split()]
    rows = []
    for label, sampling in SETTINGS.items():

        def plain(seed, n=args.max_new, ps=prompts, sampling=sampling):
            return plain_sampling(model, ps, sampling=sampling, seed=seed,
                                  pad_token_id=tok.pad_token_id, **{**kw, "max_new_tokens": n})  # fmt: skip

        def lade(cfg, seed, n=args.max_new, ps=prompts, sampling=sampling):
            N, W, G = cfg
            return lookahead_generate(model, ps, level=N, window=W, guess_set_size=G,
                                      pool_from_prompt=True, seed=seed, sampling=sampling,
                                      **{**kw, "max_new_tokens": n})  # fmt: skip

        timed(model, lambda: plain(0, 4, prompts[:1]))  # warm-up
        ref_runs = [timed(model, lambda r=r: plain(100 + r)) for r in range(args.repeats)]
        results = {}
        for cfg in configs:
            timed(model, lambda c=cfg: lade(c, 0, 4, prompts[:1]))
            results[cfg] = [
                timed(model, lambda c=cfg, r=r: lade(c, 100 + r)) for r in range(args.repeats)
            ]
        ref_runs += [timed(model, lambda r=r: plain(200 + r)) for r in range(args.repeats)]
        ref_tps = [o.total_tokens / w for o, w in ref_runs]
        ref_med = statistics.median(ref_tps)
        rows.append({
            "sampling": label, "method": "plain sampling", "N": "", "W": "", "G": "",
            "tokens_per_s": ref_med, "tok_s_min": min(ref_tps), "tok_s_max": max(ref_tps),
            "compression_ratio": sum(o.total_tokens for o, _ in ref_runs)
            / sum(o.total_steps for o, _ in ref_runs), "wall_ratio": 1.0,
        })  # fmt: skip
        for cfg, runs in results.items():
            tps = [o.total_tokens / w for o, w in runs]
            rows.append({
                "sampling": label, "method": "lookahead", "N": cfg[0], "W": cfg[1], "G": cfg[2],
                "tokens_per_s": statistics.median(tps), "tok_s_min": min(tps),
                "tok_s_max": max(tps),
                "compression_ratio": sum(o.total_tokens for o, _ in runs)
                / sum(o.total_steps for o, _ in runs),
                "wall_ratio": statistics.median(tps) / ref_med,
            })  # fmt: skip
        print(pd.DataFrame(rows).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "lookahead_sampling.csv", index=False)
    (out / "lookahead_sampling.md").write_text(markdown(table))
    meta = {**vars(args), "model": str(path), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "machine": platform.platform()}  # fmt: skip
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    print(markdown(table))


if __name__ == "__main__":
    main()
