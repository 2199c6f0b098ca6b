"""ShiftAddLLM end to end at Llama-2-7B shapes (issue #28): greedy decoding of the bf16 model
vs the same model with every decoder linear (q, k, v, o, gate, up, down: 224 layers) replaced by
`ShiftAddLinear` at 3 and 2 bits, in ONE process on one GPU, plus the batch-1 GEMV on the
8192x8192 and 28672x8192 shapes at % of the read bandwidth measured in the same process.

    python bench/shiftadd/e2e_decode.py --out $OUT                        # on a CUDA GPU
    python bench/shiftadd/e2e_decode.py --layers 2 --batches 1 --new 8    # smoke

Weights are random (speed does not depend on their values); planes are random signs packed by
the real packer (`shiftadd_format.pack_planes`), scales random 3-term APoT codes in the Lat.
layout (8 columns x N/8 rows per scale, the room's default `groupsize=-1`). The LM head and the
embeddings stay bf16, as in the paper (it quantizes the transformer blocks). Decoding runs through
`bench/common/llama7b.StaticDecoder` (static KV cache, each step one CUDA-graph replay) in
`graph` mode (eager forward captured) and, at batch 1, `compile` mode (torch.compile'd forward
captured; the GEMV is the custom op `celine::lut4_gemv_cuda`); `eager` at batch 1 is the
launch-bound number, labelled. Speed-ups are ratios of medians measured in this process.
"""

# ruff: noqa: B023  (every lambda here is timed at once, inside its own loop iteration)
from __future__ import annotations

import argparse
import functools
import gc
import json
import sys
from pathlib import Path

import pandas as pd
import torch
from triton.testing import do_bench_cudagraph

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.llama7b import (  # noqa: E402
    FUSED_LINEARS,
    StaticDecoder,
    build_model,
    device_name,
    fuse_projections,
    llama_config,
    weight_bytes,
)

from celine.experiments.shiftadd.qlinear import ShiftAddLinear  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gemv_bench import bandwidth, cublas_us  # noqa: E402  (the yardsticks of every GEMV bench)

from celine.kernels.lut4_cuda import lut4_gemv_cuda  # noqa: E402
from celine.kernels.shiftadd_format import (  # noqa: E402
    dequantize,
    encode_apot,
    pack_planes,
    packed_bytes,
)

LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")  # fmt: skip
GEMV_SHAPES = [(8192, 8192), (28672, 8192)]
CUDA_CONFIGS = [  # (min_blocks, row_iters, words): the earlier bench's best tiles and neighbours
    (8, 4, 1), (6, 4, 2), (4, 4, 2), (8, 2, 1), (8, 8, 1), (4, 8, 2), (6, 2, 2),
]  # fmt: skip
COL_GROUP = 8


def random_packed(n: int, k: int, q: int, device, seed: int):
    """Random +-1 planes through the real packer and random 3-term APoT codes, Lat. layout."""
    g = torch.Generator(device=device).manual_seed(seed)
    signs = torch.randint(0, 2, (q, n, k), generator=g, device=device, dtype=torch.int8) * 2 - 1
    planes = pack_planes(signs)
    del signs
    row_group = n // 8
    shape = (k // COL_GROUP, n // row_group, q, 3)
    codes = encode_apot(
        torch.randint(-1, 2, shape, generator=g, device=device),
        torch.randint(-12, -2, shape, generator=g, device=device),
    )
    return planes, codes, row_group


@torch.no_grad()
def to_shiftadd(model, bits: int, paths=LINEARS, seed: int = 0) -> None:
    """Replace every decoder linear (`paths` in each layer) by a ShiftAddLinear (CUDA kernel) in
    place; frees the dense (or previous packed) weights as it goes."""
    dev = next(model.parameters()).device
    for i, layer in enumerate(model.model.layers):
        for j, path in enumerate(paths):
            parent_name, attr = path.split(".")
            parent = getattr(layer, parent_name)
            old = getattr(parent, attr)
            n, k = old.out_features, old.in_features
            planes, codes, rg = random_packed(n, k, bits, dev, seed + 1000 * i + j)
            new = ShiftAddLinear(planes, codes, COL_GROUP, rg, dtype=torch.bfloat16, kernel="cuda",
                                 in_features=k)  # fmt: skip
            # prompts (untimed prefill) also go through the LUT kernel: dequantizing 224 layers
            # for every prefill would cost seconds and tell nothing about decoding
            new.lut_rows = 1 << 30
            setattr(parent, attr, new)
            del old
    gc.collect()
    torch.cuda.empty_cache()


@torch.library.custom_op("celine_bench::no_gemv", mutates_args=())
def _no_gemv(x: torch.Tensor, n: int) -> torch.Tensor:
    return x.new_empty(*x.shape[:-1], n)


@_no_gemv.register_fake
def _(x, n):
    return x.new_empty(*x.shape[:-1], n)


class NoGEMV(torch.nn.Module):
    """A decoder linear that launches nothing: an opaque op, like the LUT kernel's, that only
    allocates its output. A step with it is the step without the GEMV kernels, so the step time
    with the packed linears minus this one is what the GEMVs cost inside a step (their values
    are garbage, which no kernel's time depends on)."""

    def __init__(self, out_features: int) -> None:
        super().__init__()
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _no_gemv(x, self.out_features)


def to_no_gemv(model, paths=LINEARS) -> None:
    for layer in model.model.layers:
        for path in paths:
            parent_name, attr = path.split(".")
            parent = getattr(layer, parent_name)
            setattr(parent, attr, NoGEMV(getattr(parent, attr).out_features))
    gc.collect()
    torch.cuda.empty_cache()


def gemv_table(read_bw: float, bits_list) -> list[dict]:
    """Batch-1 GEMV: cuBLAS bf16 vs the CUDA LUT-4 kernel (bf16 in/out) at each tile config,
    every call cycling through weight copies covering 4x the L2; % of the read bandwidth over
    the packed bytes; relative error against the dequantized weight in fp32 on the GPU."""
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    rows = []
    for n, k in GEMV_SHAPES:
        x = torch.randn(1, k, dtype=torch.bfloat16, device="cuda")
        bf16_us = cublas_us(x, n)
        for q in bits_list:
            planes, codes, rg = random_packed(n, k, q, "cuda", n + k + q)
            nbytes = packed_bytes(n, k, q, COL_GROUP, rg)
            ref = (x.float() @ dequantize(planes, codes, COL_GROUP, rg).T).float()
            copies = [(planes, codes)] + [
                (planes.clone(), codes.clone()) for _ in range(max(2, -(-4 * l2 // nbytes)) - 1)
            ]
            for mb, ri, wd in CUDA_CONFIGS:
                kw = dict(min_blocks=mb, row_iters=ri, words=wd)
                try:
                    y = lut4_gemv_cuda(x, planes, codes, COL_GROUP, rg, **kw).float()
                except Exception as err:  # a config the shape refuses (scales not fitting)
                    print(f"  skip {n}x{k} q={q} {kw}: {str(err)[-2000:]}")
                    continue
                err = float((y - ref).norm() / ref.norm())
                fns = [functools.partial(lut4_gemv_cuda, x, p, c, COL_GROUP, rg, **kw)
                       for p, c in copies]  # fmt: skip
                us = 1e3 * do_bench_cudagraph(lambda fns=fns: [f() for f in fns]) / len(fns)
                gbps = nbytes / us / 1e3
                rows.append(dict(N=n, K=k, bits=q, **kw, us=us, bf16_cublas_us=bf16_us,
                                 speedup_vs_bf16=bf16_us / us, packed_MB=nbytes / 1e6,
                                 GBps=gbps, pct_read_bw=100 * gbps / read_bw, read_GBps=read_bw,
                                 rel_err=err, weight_copies=len(copies)))  # fmt: skip
            done = [r for r in rows if r["N"] == n and r["bits"] == q]
            if not done:
                raise RuntimeError(f"no CUDA configuration ran on {n}x{k} at {q} bits")
            best = min(done, key=lambda r: r["us"])
            print(f"GEMV {n}x{k} {q}-bit: best {best['us']:.1f} us "
                  f"({best['pct_read_bw']:.0f}% of read bw, {best['speedup_vs_bf16']:.2f}x bf16 "
                  f"{bf16_us:.1f} us), rel err {best['rel_err']:.1e}", flush=True)  # fmt: skip
            del copies, planes, codes
            torch.cuda.empty_cache()
    return rows


@torch.no_grad()
def linears_ms(model, paths=LINEARS, batch: int = 1) -> float:
    """ms for the 224 decoder linears alone, called in model order on random batch-`batch`
    inputs, all in one CUDA graph: the part of a decoding step the packed format can shrink
    (the rest of the step, norms, RoPE, attention, SiLU, LM head, is the step minus this)."""
    mods = [
        layer.get_submodule(path) for layer in model.model.layers for path in paths
    ]  # fmt: skip
    dev = next(model.parameters()).device
    xs = {
        k: torch.randn(batch, k, dtype=torch.bfloat16, device=dev)
        for k in {m.in_features for m in mods}
    }  # fmt: skip
    for m in mods:  # one eager call each: builds the kernel and the split-K workspaces
        m(xs[m.in_features])
    torch.cuda.synchronize()
    return do_bench_cudagraph(lambda: [m(xs[m.in_features]) for m in mods])


def try_linears_ms(model, paths=LINEARS) -> float:
    """`linears_ms`, or NaN with the error printed: the split is a diagnosis, never a reason to
    lose the decoding table."""
    try:
        return linears_ms(model, paths)
    except Exception as err:
        print(f"  linears-only timing FAILED: {type(err).__name__}: {str(err)[:300]}")
        return float("nan")


def run_decodes(model, label, batches, modes_b1, prompt_len, new, repeats, vocab) -> list[dict]:
    rows = []
    wb = weight_bytes(model)
    for b in batches:
        modes = modes_b1 if b == 1 else ["graph"]
        for mode in modes:
            g = torch.Generator().manual_seed(b)
            prompt = torch.randint(0, vocab, (b, prompt_len), generator=g)
            dec = StaticDecoder(model, b, prompt_len + new, mode=mode)
            try:
                r = dec.decode(prompt, new, repeats=repeats)
            except Exception as err:
                print(f"  {label} batch {b} {mode}: FAILED {type(err).__name__}: {err}")
                continue
            finally:
                del dec
                torch.cuda.empty_cache()
            rows.append(dict(model=label, batch=b, mode=mode, tokens_per_s=r["tokens_per_s"],
                             ms_per_token=r["ms_per_token"], spread_ms=r["spread_ms_per_token"],
                             weight_GB=wb / 1e9))  # fmt: skip
            print(f"{label:8s} b={b:2d} {mode:7s}: {r['tokens_per_s']:8.1f} tok/s, "
                  f"{r['ms_per_token']:.3f} ms/step (spread {r['spread_ms_per_token']:.3f})",
                  flush=True)  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="7b")
    ap.add_argument("--layers", type=int, default=None, help="fewer decoder layers (smoke)")
    ap.add_argument("--bits", default="3,2")
    ap.add_argument("--gemv-bits", default="3,2")
    ap.add_argument("--batches", default="1,2,4,8,16")
    ap.add_argument("--modes", default="eager,graph,compile", help="modes at batch 1")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-gemv", action="store_true")
    ap.add_argument("--fused", action="store_true",
                    help="after the bf16 runs, fuse q/k/v and gate/up (bench/common/llama7b."
                    "fuse_projections) and run bf16 again and every quantized model fused")  # fmt: skip
    ap.add_argument("--no-gemv", action="store_true",
                    help="last, the model with every decoder linear a no-op (batch 1): the step "
                    "without the GEMV kernels, to read what they cost inside a step")  # fmt: skip
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/shiftadd_e2e"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch._dynamo.config.cache_size_limit = 64
    gpu = device_name()
    read_bw = bandwidth()[1]
    print(f"{gpu}: read bandwidth {read_bw:.0f} GB/s; torch {torch.__version__}", flush=True)
    meta = dict(gpu=gpu, read_GBps=read_bw, torch=torch.__version__, argv=sys.argv)
    if not args.skip_gemv:
        g = pd.DataFrame(gemv_table(read_bw, [int(b) for b in args.gemv_bits.split(",")]))
        g.insert(0, "gpu", gpu)
        g.to_csv(args.out / "gemv_bf16.csv", index=False)
    batches = [int(b) for b in args.batches.split(",")]
    modes = args.modes.split(",")
    cfg = llama_config(args.size, layers=args.layers)
    model = build_model(cfg)
    rows = run_decodes(model, "bf16", batches, modes, args.prompt, args.new, args.repeats,
                       cfg.vocab_size)  # fmt: skip
    lin = {"bf16": try_linears_ms(model)}
    print(f"bf16     decoder linears alone (b=1, one graph): {lin['bf16']:.3f} ms", flush=True)
    paths, tag = LINEARS, ""
    if args.fused:
        fuse_projections(model)
        paths, tag = FUSED_LINEARS, " fused"
        rows += run_decodes(model, "bf16 fused", batches, modes, args.prompt, args.new,
                            args.repeats, cfg.vocab_size)  # fmt: skip
        lin["bf16 fused"] = try_linears_ms(model, paths)
        print(f"bf16 fused decoder linears alone: {lin['bf16 fused']:.3f} ms", flush=True)
    for q in (int(b) for b in args.bits.split(",")):
        to_shiftadd(model, q, paths)
        rows += run_decodes(model, f"{q}-bit{tag}", batches, modes, args.prompt, args.new,
                            args.repeats, cfg.vocab_size)  # fmt: skip
        lin[f"{q}-bit{tag}"] = try_linears_ms(model, paths)
        print(f"{q}-bit{tag} decoder linears alone (b=1, one graph): {lin[f'{q}-bit{tag}']:.3f} ms",
              flush=True)  # fmt: skip
    if args.no_gemv:
        to_no_gemv(model, paths)
        rows += run_decodes(model, f"no GEMV{tag}", [1], modes, args.prompt, args.new,
                            args.repeats, cfg.vocab_size)  # fmt: skip
    t = pd.DataFrame(rows)
    t.insert(0, "gpu", gpu)
    # like with like: a fused quantized model against the fused bf16 model
    t["fused"] = t.model.str.endswith(" fused")
    base = t[t.model.str.startswith("bf16")].set_index(["fused", "batch", "mode"])["tokens_per_s"]
    t["speedup_vs_bf16_same_mode"] = [
        r.tokens_per_s / base.get((r.fused, r.batch, r.mode), float("nan")) for r in t.itertuples()
    ]
    best_base = t[t.model.str.startswith("bf16") & (t.batch == 1)]["tokens_per_s"].max()
    t["speedup_vs_best_bf16_b1"] = t["tokens_per_s"] / best_base
    t["bound_tokens_per_s"] = t["batch"] * read_bw * 1e9 / (t["weight_GB"] * 1e9)
    t.to_csv(args.out / "e2e_decode.csv", index=False)
    # where a batch-1 compiled step goes: the decoder linears alone vs the rest of the step
    split = []
    for label, ms in lin.items():
        step = t[(t.model == label) & (t.batch == 1) & (t["mode"] == "compile")]["ms_per_token"]
        if len(step):
            step_ms = float(step.iloc[0])
            split.append(dict(gpu=gpu, model=label, step_ms=step_ms, linears_ms=ms,
                              rest_ms=step_ms - ms, linears_share=ms / step_ms))  # fmt: skip
    none = t[t.model.str.startswith("no GEMV") & (t["mode"] == "compile")]["ms_per_token"]
    for row in split:  # what the linears cost inside a compiled step, not back to back
        row["in_step_linears_ms"] = row["step_ms"] - float(none.iloc[0]) if len(none) else None
    if split:
        sp = pd.DataFrame(split)
        sp.to_csv(args.out / "e2e_step_split.csv", index=False)
        print(sp.drop(columns=["gpu"]).round(3).to_string(index=False))
    (args.out / "e2e_meta.json").write_text(json.dumps(meta, indent=1))
    pd.set_option("display.width", 200)
    print(t.drop(columns=["gpu"]).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
