"""Lookahead decoding against greedy and prompt-lookup decoding, all in ONE process, on code
completion (held-out stdlib file prefixes). Prints and writes a table of tokens/s, compression
ratio, speedup over greedy and exact match per (N, W, G), plus the plot of speedup and
compression against W and N.

    python bench/lookahead/bench_decoding.py --size default --device cpu --out outputs/bench/lookahead
    python bench/lookahead/bench_decoding.py --size gpu --device cuda --dtype bfloat16 --out $OUT

The model is the cached tiny_llama of that size (train it first with
`celine run task=lm_pretrain model.size=<size>`), or any local checkpoint with --model PATH.
Speedups are ratios against greedy measured in this process (greedy runs first and last; the
mean of the two is the reference, and both are printed so drift is visible).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
from functools import partial
from pathlib import Path

import pandas as pd
import torch

from celine.experiments.lookahead import baselines
from celine.experiments.lookahead.decoding import lookahead_generate
from celine.experiments.lookahead.plots import sweep_plot
from celine.experiments.lookahead.task import score, timed
from celine.experiments.lookahead.workloads import code_prompts

PAPER_CONFIGS = [(2, 1, 1), (3, 4, 4), (5, 7, 7), (5, 10, 10), (5, 15, 15), (7, 20, 20)]


def find_model(size: str, outputs: str) -> str:
    from celine.llm.train import is_complete

    found = [
        p for p in sorted(glob.glob(f"{outputs}/models/tiny_llama-code-{size}-*")) if is_complete(p)
    ]
    if not found:
        sys.exit(f"no trained tiny_llama-code-{size} under {outputs}/models: run "
                 f"`celine run task=lm_pretrain model.size={size}` first")  # fmt: skip
    return found[-1]


def parse_triples(text: str) -> list[tuple[int, int, int]]:
    return [tuple(int(x) for x in t.split(",")) for t in text.split()]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", default="default")
    ap.add_argument("--model", default=None, help="checkpoint folder (default: cached tiny_llama)")
    ap.add_argument("--outputs", default=os.environ.get("CELINE_OUTPUTS", "outputs"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--max-new", type=int, default=96)
    ap.add_argument("--configs", type=parse_triples, default=PAPER_CONFIGS,
                    help='"N,W,G N,W,G ..." (default: the paper\'s table)')  # fmt: skip
    ap.add_argument("--sweep-levels", default="", help="e.g. 3,5,7: add a (N, W) grid with G=W")
    ap.add_argument("--sweep-windows", default="1,3,7,15")
    ap.add_argument(
        "--no-prompt-pool", action="store_true", help="also run without the prompt pool"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sdpa", default="auto", choices=["auto", "efficient", "math"],
                    help="pin torch's SDPA backend for every decoder (auto: torch's choice)")  # fmt: skip
    ap.add_argument("--out", default="outputs/bench/lookahead")
    args = ap.parse_args()

    from celine.llm.cache import load_trained

    if args.sdpa != "auto":  # every decoder in this process runs under the same backend
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = {"efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
        sdpa_kernel([backend[args.sdpa], SDPBackend.MATH]).__enter__()

    path = args.model or find_model(args.size, args.outputs)
    model, tok = load_trained(path, device=args.device, dtype=args.dtype)
    model.eval()
    prompts = code_prompts(tok, args.prompts, args.prompt_tokens, args.seed)
    kw = dict(max_new_tokens=args.max_new, eos_token_id=tok.eos_token_id)
    card = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else platform.processor() or "cpu"
    )
    print(
        f"model {path} on {card} ({args.dtype}), {len(prompts)} code prompts x {args.max_new} new tokens"
    )

    def greedy_run():
        return baselines.greedy(model, prompts, pad_token_id=tok.pad_token_id, **kw)

    def pl_run():
        return baselines.prompt_lookup(model, prompts, pad_token_id=tok.pad_token_id, **kw)

    def la_run(n, w, g, pool=True):
        return lookahead_generate(model, prompts, level=n, window=w, guess_set_size=g,
                                  pool_from_prompt=pool, seed=args.seed, **kw)  # fmt: skip

    # warm-up (allocator, kernels, caches) before anything is timed
    baselines.greedy(model, prompts[:1], max_new_tokens=8, eos_token_id=tok.eos_token_id)
    lookahead_generate(model, prompts[:1], level=5, window=7, guess_set_size=7, max_new_tokens=8)

    ref, ref_wall = timed(model, greedy_run)
    runs = [("prompt_lookup", None, None, None, True, pl_run)]
    configs = list(args.configs)
    if args.sweep_levels:
        for n in map(int, args.sweep_levels.split(",")):
            for w in map(int, args.sweep_windows.split(",")):
                if (n, w, w) not in configs:
                    configs.append((n, w, w))
    for n, w, g in configs:
        runs.append(("lookahead", n, w, g, True, partial(la_run, n, w, g)))
        if args.no_prompt_pool:
            runs.append(("lookahead", n, w, g, False, partial(la_run, n, w, g, False)))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    def table_of(results, greedy_wall):
        rows = [{"method": "greedy", **_row(score(ref, greedy_wall, ref, greedy_wall))}]
        for name, n, w, g, pool, out, wall in results:
            m = score(out, wall, ref, greedy_wall)
            rows.append({"method": name, "N": n, "W": w, "G": g, "prompt_pool": pool, **_row(m)})
        return pd.DataFrame(rows)

    results = []
    for name, n, w, g, pool, fn in runs:
        out, wall = timed(model, fn)
        results.append((name, n, w, g, pool, out, wall))
        print(f"  {name:13s} N={n} W={w} G={g} pool={pool}: {out.total_tokens / wall:8.1f} tok/s, "
              f"S={out.total_tokens / out.total_steps:.2f}, x{ref_wall / wall * out.total_tokens / ref.total_tokens:.2f}",
              flush=True)  # fmt: skip
        # partial table after every run, so a run cut short still leaves its rows
        table_of(results, ref_wall).to_csv(out_dir / "lookahead_bench.csv", index=False)
    ref2, ref2_wall = timed(model, greedy_run)
    mean_wall = (ref_wall + ref2_wall) / 2
    print(
        f"  greedy first {ref.total_tokens / ref_wall:.1f} tok/s, last {ref2.total_tokens / ref2_wall:.1f} tok/s"
    )
    table = table_of(results, mean_wall)
    table.to_csv(out_dir / "lookahead_bench.csv", index=False)
    md = _markdown(table)
    (out_dir / "lookahead_bench.md").write_text(f"{card}, {args.dtype}, {path}\n\n{md}\n")
    (out_dir / "lookahead_bench.json").write_text(json.dumps({
        "card": card, "dtype": args.dtype, "model": str(path), "prompts": len(prompts),
        "max_new_tokens": args.max_new, "sdpa": args.sdpa, "greedy_tok_s_first": ref.total_tokens / ref_wall,
        "greedy_tok_s_last": ref2.total_tokens / ref2_wall,
    }, indent=1))  # fmt: skip
    print(md)
    sweep = table[
        (table.method == "lookahead")
        & (table.W == table.G)
        & table.prompt_pool.fillna(True).astype(bool)
    ]
    if sweep["N"].nunique() > 1 or sweep["W"].nunique() > 1:
        fig = sweep_plot(sweep.rename(columns={"N": "level", "W": "window"}),
                         f"lookahead on {card} ({args.dtype})")  # fmt: skip
        fig.savefig(out_dir / "lookahead_sweep.png", dpi=120, bbox_inches="tight")


def _markdown(frame: pd.DataFrame) -> str:
    def cell(v):
        if isinstance(v, float):
            return "" if v != v else f"{v:.2f}"
        return "" if v is None else str(v)

    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _row(m: dict) -> dict:
    return {
        "tokens_per_s": m["decode/tokens_per_s"],
        "compression_ratio": m["decode/compression_ratio"],
        "speedup": m["decode/speedup"],
        "exact_match": m["decode/exact_match"],
        "accepted_per_step": m["decode/accepted_per_step"],
        "pool_hit_rate": m["decode/pool_hit_rate"],
    }


if __name__ == "__main__":
    main()
