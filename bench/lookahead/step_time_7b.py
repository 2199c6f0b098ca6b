"""Lookahead's step cost at Llama-2-7B shapes (issue #28): the time of ONE forward carrying T
tokens (T = 1 .. (W+G)(N-1)) of the 7B-shaped model (random bf16 weights, static KV cache, each
step a CUDA-graph replay) on the GPU, in one process, and the projected 7B speedup per (N, W, G):

    projected = compression(N, W, G) x step_ms(T=1) / step_ms(T=(W+G)(N-1))

i.e. lookahead's tokens per step over greedy's, times greedy's step cost over lookahead's. The
compression comes from the trained tiny_llama decoding code in fp32 (`--compression` = the CSV
of bench_decoding.py, whose every output equals greedy's); the step cost from this script. The
T-token step uses a causal mask over the static cache; lookahead's own mask has the same shape
(T queries x cache slots), so SDPA does the same work. What the projection leaves out: the
pool/bookkeeping on the host per step (overlappable with the GPU in a graph-captured
implementation, not in ours) and a compression that may differ on a real 7B model.

    python bench/lookahead/step_time_7b.py --out $OUT --compression $OUT/lookahead_table.csv
    python bench/lookahead/step_time_7b.py --layers 2 --tokens 1,8     # smoke
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.llama7b import StaticDecoder, build_model, device_name, llama_config  # noqa: E402

# (N, W, G) -> the paper's A100 batch-1 numbers quoted in shared/methods (LLaMA-2-7B-chat,
# MT-Bench ablation; Table 4 config for 7B is (5, 15, 15)); None where the paper gives none.
PAPER_A100 = {
    (5, 15, 15): "1.78x (S 1.96), LLaMA-2-7B-chat MT-Bench, no FA; Table 4's 7B config",
    (5, 10, 10): "Table 4's 13B config",
    (5, 7, 7): "Table 4's 34B config; README's 7B example",
    (7, 20, 20): "minimal.py (TinyLlama-1.1B, fp16): 1.6x",
}
DEFAULT_TOKENS = "1,2,4,8,16,24,32,48,56,64,80,96,120,160,200,240"


def tokens_per_step(n: int, w: int, g: int) -> int:
    return (w + g) * (n - 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="7b")
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--tokens", default=DEFAULT_TOKENS)
    ap.add_argument("--context", type=int, default=512, help="tokens already in the cache")
    ap.add_argument("--max-len", type=int, default=2048, help="static cache slots")
    ap.add_argument("--modes", default="graph,compile")
    ap.add_argument("--compile-tokens", default="1", help="T values also timed compiled")
    ap.add_argument(
        "--compression",
        type=Path,
        default=None,
        help="bench_decoding.py table (csv) with n/w/g and compression columns",
    )
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/lookahead_7b"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch._dynamo.config.cache_size_limit = 64
    gpu = device_name()
    cfg = llama_config(args.size, layers=args.layers, max_positions=args.max_len)
    model = build_model(cfg)
    prompt = torch.randint(0, cfg.vocab_size, (1, args.context), generator=torch.Generator())
    rows = []
    for mode in args.modes.split(","):
        ts = [int(t) for t in (args.tokens if mode == "graph" else args.compile_tokens).split(",")]
        dec = StaticDecoder(model, 1, args.max_len, mode=mode, max_step=max(ts))
        dec.prefill(prompt)
        for t in ts:
            ms = dec.step_ms(t, args.context)
            rows.append(dict(gpu=gpu, mode=mode, tokens=t, step_ms=ms))
            print(f"{mode:7s} T={t:4d}: {ms:.3f} ms/step", flush=True)
            pd.DataFrame(rows).to_csv(args.out / "step_time_7b.partial.csv", index=False)
        del dec
        torch.cuda.empty_cache()
    curve = pd.DataFrame(rows)
    for mode, grp in curve.groupby("mode"):
        one = grp.loc[grp.tokens == 1, "step_ms"]
        if len(one):
            curve.loc[curve["mode"] == mode, "ratio_to_T1"] = curve["step_ms"] / float(one.iloc[0])
    curve.to_csv(args.out / "step_time_7b.csv", index=False)
    meta = dict(gpu=gpu, context=args.context, max_len=args.max_len, argv=sys.argv,
                torch=torch.__version__)  # fmt: skip
    (args.out / "step_time_7b_meta.json").write_text(json.dumps(meta, indent=1))
    print(curve.round(3).to_string(index=False))
    if args.compression is not None:
        project(curve, args.compression, args.out)


def project(curve: pd.DataFrame, compression_csv: Path, out: Path) -> pd.DataFrame:
    """Projected 7B speedup per (N, W, G) from the measured compression and step-time curve
    (interpolated linearly in T between measured points)."""
    import numpy as np

    comp = pd.read_csv(compression_csv)
    comp = comp[comp["method"] == "lookahead"].dropna(subset=["N", "W", "G"])
    graph = curve[curve["mode"] == "graph"].sort_values("tokens")
    t1 = float(graph.loc[graph.tokens == 1, "step_ms"].iloc[0])
    compiled = curve[(curve["mode"] == "compile") & (curve.tokens == 1)]
    rows = []
    for r in comp.itertuples():
        n, w, g = int(r.N), int(r.W), int(r.G)
        t = tokens_per_step(n, w, g)
        if t > graph.tokens.max():
            continue
        ms = float(np.interp(t, graph.tokens, graph.step_ms))
        s = float(r.compression_ratio)
        row = dict(N=n, W=w, G=g, tokens_per_step=t, compression=s, exact_match=r.exact_match,
                   step_ms=ms, greedy_step_ms=t1, step_ratio=ms / t1,
                   projected_speedup=s * t1 / ms)  # fmt: skip
        if len(compiled):
            c1 = float(compiled.step_ms.iloc[0])
            row["greedy_compiled_step_ms"] = c1
            row["projected_vs_compiled_greedy"] = s * c1 / ms
        row["paper_A100"] = PAPER_A100.get((n, w, g), "")
        rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(out / "projected_7b.csv", index=False)
    print(table.round(3).to_string(index=False))
    return table


if __name__ == "__main__":
    main()
