"""Lookahead decoding against greedy and prompt-lookup decoding, all in ONE process, on code
completion (held-out stdlib file prefixes). Prints and writes a table of tokens/s (median and
spread over repeats), ms per step, compression ratio, speedup over greedy and exact match per
(N, W, G), plus the plot of speedup and compression against W and N.

    python bench/lookahead/bench_decoding.py --size default --device cpu --out outputs/bench/lookahead
    python bench/lookahead/bench_decoding.py --size gpu --device cuda --dtype bfloat16 --out $OUT

The model is the cached tiny_llama of that size (train it first with
`celine run task=lm_pretrain model.size=<size>`), or any local checkpoint with --model PATH.

Fairness: every decoder gets the same prompts and budget, an untimed warm-up of its own, and
`--repeats` timed runs with the device synchronised around each. Two greedy references run
before AND after everything else: transformers `generate` (the issue's baseline: `speedup`) and
a plain greedy loop through lookahead's own step code (`greedy_loop`: same cache, mask and
compaction path; `speedup_vs_loop`), so the reader sees how much is `generate`'s overhead. The
greedy reference speed is the median over all its timings; their spread is printed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import statistics
import sys
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pandas as pd
import torch

from celine.experiments.lookahead import baselines, decoding
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


def load_model_and_prompts(args):
    """The checkpoint path, the cached tiny_llama, its held-out code prompts and the generation limits, from the
    arguments every lookahead bench script shares (--model/--size/--outputs, --device, --dtype,
    --prompts, --prompt-tokens, --seed, --max-new)."""
    from celine.llm.cache import load_trained

    path = args.model or find_model(args.size, args.outputs)
    model, tok = load_trained(path, device=args.device, dtype=args.dtype)
    model.eval()
    prompts = code_prompts(tok, args.prompts, args.prompt_tokens, args.seed)
    kw = dict(max_new_tokens=args.max_new, eos_token_id=tok.eos_token_id)
    return path, model, tok, prompts, kw


def parse_triples(text: str) -> list[tuple[int, int, int]]:
    return [tuple(int(x) for x in t.split(",")) for t in text.split()]


@contextmanager
def sdpa_context(choice: str):
    """`pinned`: SDPA limited to flash, memory-efficient and math kernels, as every decoder here
    does by itself (`decoding.no_cudnn_attention`); `auto`: torch's own choice, cuDNN included."""
    if choice not in ("pinned", "auto"):
        raise SystemExit(f"--sdpa / --sdpa-probe: {choice!r} is not one of pinned, auto")
    saved = decoding.PIN_SDPA
    decoding.PIN_SDPA = choice == "pinned"
    try:
        yield
    finally:
        decoding.PIN_SDPA = saved


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
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per decoder")
    ap.add_argument("--configs", type=parse_triples, default=PAPER_CONFIGS,
                    help='"N,W,G N,W,G ..." (default: the paper\'s table)')  # fmt: skip
    ap.add_argument("--sweep-levels", default="", help="e.g. 3,5,7: add a (N, W) grid with G=W")
    ap.add_argument("--sweep-windows", default="1,3,7,15")
    ap.add_argument(
        "--no-prompt-pool", action="store_true", help="also run without the prompt pool"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sdpa", default="pinned", choices=["pinned", "auto"],
                    help="pinned: no cuDNN attention for any decoder (what they do by "
                         "themselves); auto: torch's own choice")  # fmt: skip
    ap.add_argument("--sdpa-probe", default="",
                    help="e.g. auto,pinned: first time greedy_loop and lookahead (5,7,7) under "
                         "each, print, and run the rest under the one fastest for lookahead")  # fmt: skip
    ap.add_argument("--profile", default="",
                    help="N,W,G: write a torch.profiler table of greedy_loop and this config")  # fmt: skip
    ap.add_argument("--budget-s", type=float, default=0,
                    help="skip the remaining (costliest) configs once this many seconds have "
                         "passed, so that the closing greedy timings still run")  # fmt: skip
    ap.add_argument("--require-exact", action="store_true",
                    help="exit 3 unless every lookahead output equals greedy's (fp32 headline)")
    ap.add_argument("--out", default="outputs/bench/lookahead")
    args = ap.parse_args()

    path, model, tok, prompts, kw = load_model_and_prompts(args)
    pad = tok.pad_token_id
    card = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else platform.processor() or "cpu"
    )
    print(f"model {path} on {card} ({args.dtype}, torch {torch.__version__}), "
          f"{len(prompts)} code prompts x {args.max_new} new tokens, {args.repeats} repeats",
          flush=True)  # fmt: skip
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    def decoder(name, n=None, w=None, g=None, pool=True):
        if name == "greedy":
            return partial(baselines.greedy, model, pad_token_id=pad)
        if name == "greedy_loop":
            return partial(baselines.greedy_loop, model)
        if name == "prompt_lookup":
            return partial(baselines.prompt_lookup, model, pad_token_id=pad)
        return partial(lookahead_generate, model, level=n, window=w, guess_set_size=g,
                       pool_from_prompt=pool, seed=args.seed)  # fmt: skip

    def measure(fn, which=prompts, repeats=args.repeats):
        """Untimed warm-up on one prompt (kernels, allocator, mask templates), then timed runs."""
        fn(which[:1], max_new_tokens=min(32, args.max_new), eos_token_id=tok.eos_token_id)
        runs = [timed(model, lambda: fn(which, **kw)) for _ in range(repeats)]
        return runs[-1][0], [wall for _, wall in runs]

    started = time.perf_counter()
    sdpa = args.sdpa
    probe_lines = []
    if args.sdpa_probe:
        best = None
        for choice in args.sdpa_probe.split(","):
            with sdpa_context(choice):
                rates = {}
                for name, fn in [("greedy_loop", decoder("greedy_loop")),
                                 ("lookahead 5,7,7", decoder("lookahead", 5, 7, 7))]:  # fmt: skip
                    out, walls = measure(fn, prompts[:2], repeats=1)
                    rates[name] = out.total_tokens / min(walls)
            line = f"sdpa={choice}: " + ", ".join(f"{k} {v:.1f} tok/s" for k, v in rates.items())
            print("  probe " + line, flush=True)
            probe_lines.append(line)
            if best is None or rates["lookahead 5,7,7"] > best[1]:
                best = (choice, rates["lookahead 5,7,7"])
        sdpa = best[0]
        print(f"  running everything under sdpa={sdpa}", flush=True)

    configs = list(args.configs)
    if args.sweep_levels:
        for n in map(int, args.sweep_levels.split(",")):
            for w in map(int, args.sweep_windows.split(",")):
                if (n, w, w) not in configs:
                    configs.append((n, w, w))
    # cheapest per-step work (W + G)(N - 1) first: a budget cut drops the costliest configs
    configs.sort(key=lambda c: ((c[1] + c[2]) * (c[0] - 1), c))
    runs = [("prompt_lookup", None, None, None, True)]
    for n, w, g in configs:
        runs.append(("lookahead", n, w, g, True))
        if args.no_prompt_pool:
            runs.append(("lookahead", n, w, g, False))

    refs: dict[str, list[float]] = {"greedy": [], "greedy_loop": []}
    ref_out: dict[str, object] = {}
    results = []  # (name, n, w, g, pool, out, walls)

    def reference(name):
        out, walls = measure(decoder(name))
        ref_out.setdefault(name, out)
        refs[name] += walls
        rates = [out.total_tokens / wl for wl in walls]
        print(f"  {name:13s} {' '.join(f'{r:.1f}' for r in rates)} tok/s", flush=True)

    def table_of():
        greedy_wall = statistics.median(refs["greedy"])
        loop_wall = statistics.median(refs["greedy_loop"]) if refs["greedy_loop"] else None
        ref = ref_out["greedy"]
        rows = []
        entries = [("greedy", None, None, None, None, ref, refs["greedy"])]
        if "greedy_loop" in ref_out:
            entries.append(("greedy_loop", None, None, None, None, ref_out["greedy_loop"],
                            refs["greedy_loop"]))  # fmt: skip
        for name, n, w, g, pool, out, walls in entries + results:
            wall = statistics.median(walls)
            m = score(out, wall, ref, greedy_wall)
            loop_tps = ref_out["greedy_loop"].total_tokens / loop_wall if loop_wall else None
            rows.append({
                "method": name, "N": n, "W": w, "G": g, "prompt_pool": pool,
                "tokens_per_s": m["decode/tokens_per_s"],
                "tok_s_min": out.total_tokens / max(walls),
                "tok_s_max": out.total_tokens / min(walls),
                "ms_per_step": 1e3 * wall / max(out.total_steps, 1),
                "tokens": out.total_tokens,
                "steps": out.total_steps,
                **_row(m),
                "speedup_vs_loop": m["decode/tokens_per_s"] / loop_tps if loop_tps else None,
            })  # fmt: skip
        return pd.DataFrame(rows)

    with sdpa_context(sdpa):
        reference("greedy")
        reference("greedy_loop")
        skipped = []
        for name, n, w, g, pool in runs:
            if args.budget_s and time.perf_counter() - started > args.budget_s:
                skipped.append((n, w, g))
                continue
            out, walls = measure(decoder(name, n, w, g, pool))
            results.append((name, n, w, g, pool, out, walls))
            wall = statistics.median(walls)
            print(f"  {name:13s} N={n} W={w} G={g} pool={pool}: "
                  f"{out.total_tokens / wall:8.1f} tok/s, {1e3 * wall / out.total_steps:6.2f} ms/step, "
                  f"S={out.total_tokens / out.total_steps:.2f}", flush=True)  # fmt: skip
            # partial table after every run, so a run cut short still leaves its rows
            table_of().to_csv(out_dir / "lookahead_bench.csv", index=False)
        if skipped:
            print(f"  budget of {args.budget_s:.0f} s spent: skipped (N, W, G) {skipped}")
        reference("greedy_loop")
        reference("greedy")
        if args.profile:
            _profile(model, prompts[:1], decoder, parse_triples(args.profile)[0], kw,
                     out_dir / "lookahead_profile.txt")  # fmt: skip

    table = table_of()
    table.to_csv(out_dir / "lookahead_bench.csv", index=False)
    md = _markdown(table)
    n_ref = len(refs["greedy"]) // 2
    greedy_rates = [ref_out["greedy"].total_tokens / w for w in refs["greedy"]]
    loop_rates = [ref_out["greedy_loop"].total_tokens / w for w in refs["greedy_loop"]]
    head = (f"{card}, {args.dtype}, torch {torch.__version__}, sdpa={sdpa}, {path}\n"
            f"{len(prompts)} code prompts x {args.max_new} new tokens, {args.repeats} timed "
            f"repeats per decoder (tokens_per_s: median; min/max beside it)\n"
            f"greedy generate tok/s, first {greedy_rates[:n_ref]}, last {greedy_rates[n_ref:]}\n"
            f"greedy_loop tok/s, first {loop_rates[: len(loop_rates) // 2]}, "
            f"last {loop_rates[len(loop_rates) // 2 :]}\n"
            + "".join(f"probe {p}\n" for p in probe_lines)
            + (f"skipped for time: (N, W, G) {skipped}\n" if skipped else ""))  # fmt: skip
    (out_dir / "lookahead_bench.md").write_text(f"{head}\n{md}\n")
    (out_dir / "lookahead_bench.json").write_text(json.dumps({
        "card": card, "dtype": args.dtype, "torch": torch.__version__, "model": str(path),
        "prompts": len(prompts), "max_new_tokens": args.max_new, "repeats": args.repeats,
        "sdpa": sdpa, "sdpa_probe": probe_lines,
        "greedy_tok_s": greedy_rates, "greedy_loop_tok_s": loop_rates,
    }, indent=1))  # fmt: skip
    print(head + "\n" + md, flush=True)
    sweep = table[
        (table.method == "lookahead")
        & (table.W == table.G)
        & table.prompt_pool.fillna(True).astype(bool)
    ]
    if sweep["N"].nunique() > 1 or sweep["W"].nunique() > 1:
        fig = sweep_plot(sweep.rename(columns={"N": "level", "W": "window"}),
                         f"lookahead on {card} ({args.dtype})")  # fmt: skip
        fig.savefig(out_dir / "lookahead_sweep.png", dpi=120, bbox_inches="tight")
    inexact = table[table.method.isin(["lookahead", "greedy_loop"]) & (table.exact_match < 1.0)]
    verdict = ("EXACT: every lookahead output equals greedy generate's" if inexact.empty else
               f"NOT EXACT: {len(inexact)} decoder(s) differ from greedy: "
               + ", ".join(f"{r.method} N={r.N} W={r.W} G={r.G} ({r.exact_match:.2f})"
                           for r in inexact.itertuples()))  # fmt: skip
    print(verdict, flush=True)
    if args.require_exact and not inexact.empty:
        sys.exit(3)


def _profile(model, prompts, decoder, nwg, kw, path: Path) -> None:
    """torch.profiler tables (by self CPU time, and by device time where there is one) of
    greedy_loop and one lookahead config on one prompt: what a step spends where."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    parts = []
    # no EOS: every profiled step is a decoding step (a prompt that ends at once would leave
    # only the prefill, as the first H200 run's profile did)
    kw = {**kw, "eos_token_id": None}
    for label, fn in [("greedy_loop", decoder("greedy_loop")),
                      (f"lookahead {nwg}", decoder("lookahead", *nwg))]:  # fmt: skip
        with profile(activities=activities) as prof:
            out = fn(prompts, **kw)
        avg = prof.key_averages()
        parts.append(f"== {label}: {out.total_tokens} tokens, {out.total_steps} steps ==")
        parts.append(avg.table(sort_by="self_cpu_time_total", row_limit=25))
        if len(activities) > 1:
            parts.append(avg.table(sort_by="self_device_time_total", row_limit=15))
    path.write_text("\n".join(parts))


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
        "compression_ratio": m["decode/compression_ratio"],
        "speedup": m["decode/speedup"],
        "exact_match": m["decode/exact_match"],
        "accepted_per_step": m["decode/accepted_per_step"],
        "pool_hit_rate": m["decode/pool_hit_rate"],
    }


if __name__ == "__main__":
    main()
