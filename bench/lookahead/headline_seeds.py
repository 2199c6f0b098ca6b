"""The headline over seeds, without timing: compression (tokens per forward) of lookahead
(5, 7, 7), prompt-lookup and Jacobi decoding on the cached tiny_llama, held-out code prompts
picked by each seed, exact match against greedy `generate`; mean, 95% t-interval, and a paired
t-test of lookahead against each baseline (scipy).

    OMP_NUM_THREADS=1 python bench/lookahead/headline_seeds.py --seeds 0,1,2,3,4 --out bench/lookahead/results/cpu_seeds
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from celine.experiments.lookahead import baselines
from celine.experiments.lookahead.decoding import lookahead_generate
from celine.experiments.lookahead.workloads import code_prompts


def interval(x) -> tuple[float, float, float]:
    x = np.asarray(x, dtype=float)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return x.mean(), x.mean() - half, x.mean() + half


def main() -> None:
    from bench_decoding import find_model

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--out", default="outputs/bench/lookahead_seeds")
    args = ap.parse_args()
    from celine.llm.cache import load_trained

    model, tok = load_trained(find_model("default", "outputs"))
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        prompts = code_prompts(tok, args.prompts, 128, seed)
        kw = dict(max_new_tokens=args.max_new, eos_token_id=tok.eos_token_id)
        ref = baselines.greedy(model, prompts, **kw)
        outs = {
            "lookahead": lookahead_generate(model, prompts, level=5, window=7, guess_set_size=7,
                                            pool_from_prompt=True, seed=seed, **kw),
            "prompt_lookup": baselines.prompt_lookup(model, prompts, **kw),
            "jacobi": lookahead_generate(model, prompts, level=2, window=7, guess_set_size=0,
                                         jacobi=True, seed=seed, **kw),
        }  # fmt: skip
        for name, out in outs.items():
            rows.append({
                "seed": seed, "method": name,
                "compression_ratio": out.total_tokens / out.total_steps,
                "exact_match": np.mean([a == b for a, b in zip(out.tokens, ref.tokens, strict=True)]),
            })  # fmt: skip
        print(pd.DataFrame(rows).tail(3).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    wide = table.pivot(index="seed", columns="method", values="compression_ratio")
    summary = {}
    for name in wide.columns:
        m, lo, hi = interval(wide[name])
        summary[name] = {"n": len(wide), "mean": m, "ci95": [lo, hi],
                         "exact_match_min": float(table[table.method == name].exact_match.min())}  # fmt: skip
        if name != "lookahead":
            d = wide["lookahead"] - wide[name]
            dm, dlo, dhi = interval(d)
            summary[name]["lookahead_minus_this"] = {
                "mean": dm, "ci95": [dlo, dhi], "paired_t_p": float(stats.ttest_rel(wide["lookahead"], wide[name]).pvalue)
            }  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "compression_by_seed.csv", index=False)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
