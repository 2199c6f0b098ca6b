"""Where the CUDA LUT-4 GEMV's time goes (issue #28): kernel variants timed side by side.

    python bench/shiftadd/lut4_variants.py --out $OUT            # on a CUDA GPU
    ncu --clock-control none -k regex:lut4 python bench/shiftadd/lut4_variants.py --profile

Each variant is the kernel source of `celine.kernels.lut4_cuda` with one change applied by a
string replacement (so the shipped kernel stays the single source), built under its own module
name. For each shape (8192x8192, 28672x8192) and bit width (3, 2), every variant at each tile
configuration is checked against the dequantized product (fp64 on the CPU) and timed with
`do_bench_cudagraph`, cycling weight copies that cover 4x the L2; the table gives us, % of the
read bandwidth (a bf16 sum measured in the same process) and the ratio to cuBLAS bf16.

Variants:
  v5        the kernel before issue #28's rework (bench/shiftadd/lut4_cuda_old.py);
  v6        per-tile work reduced to increments (plane and output pointers, row group), the 4
            scales of a (plane, word) read as one 16-byte shared load (lut4_cuda_old.py);
  v7        the shipped kernel: v6 with the prologue's global reads (tile, x, first scale code)
            all issued before any is used;
  nolookup  NOT a GEMV: v7 with the table lookups replaced by their offsets read as floats (same
            loads, scales and atomics): the time left without the shared-memory lookups.

The fixed cost of a call, taken apart (each NOT a GEMV; their error column is meaningless):
  floor     v7's GEMV kernel returns as soon as it may (after its PDL wait), the finish kernel
            runs as shipped: the two launches, the grid of idle blocks and the finish's pass
            over the output, i.e. what a call costs before any weight is read;
  nofinish  v7 without the split-K finishing kernel (the workspace is never read or zeroed);
  noatomic  v7 with its split-K atomics replaced by a store that never happens (the lookups are
            kept live by its condition), the finish kernel as shipped.

`--build-only NAME` compiles one variant into the extension cache and exits (device scripts build
several in parallel processes before the timed process loads them); `--configs rule` times only
the tile `lut4_cuda.default_tile` picks (what `ShiftAddLinear` runs) instead of all six.
"""

# ruff: noqa: B023  (every lambda here is timed at once, inside its own loop iteration)
from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path

import torch
from triton.testing import do_bench_cudagraph

from celine.kernels import lut4_cuda
from celine.kernels.cuda_build import build_extension
from celine.kernels.shiftadd_format import dequantize, packed_bytes

sys.path.insert(0, str(Path(__file__).parent))
from gemv_bench import bandwidth, cublas_us, random_format  # noqa: E402
from lut4_cuda_old import CUDA_SRC_V5, CUDA_SRC_V6  # noqa: E402

# (min_blocks, row_iters, words)
CONFIGS = [(8, 2, 1), (8, 4, 1), (8, 8, 1), (6, 4, 2), (4, 4, 2), (6, 8, 2)]

_LOOKUP_OLD = """              const float lo = *reinterpret_cast<const float*>(Tb + lo_off);
              const float hi = *reinterpret_cast<const float*>(Tb + 64 + hi_off);"""
_LOOKUP_NONE = """              const float lo = __int_as_float(lo_off), hi = __int_as_float(hi_off);
              (void)Tb;"""
_GEMV_START = """  asm volatile("griddepcontrol.launch_dependents;");
  // The M input rows"""
_ATOMIC = """      atomicAdd(reinterpret_cast<float4*>(out), make_float4(acc[0], acc[1], acc[2], acc[3]));"""
_FINISH_LAUNCH = """  cfg.gridDim = dim3((M * N / 4 + 255) / 256);"""


def variant_source(name: str) -> str:
    if name in ("v5", "v6"):
        return {"v5": CUDA_SRC_V5, "v6": CUDA_SRC_V6}[name]
    src = lut4_cuda.CUDA_SRC
    edits = {
        "v7": [],
        "nolookup": [(_LOOKUP_OLD, _LOOKUP_NONE)],
        "floor": [(_GEMV_START, _GEMV_START.replace("  // The M", "  return;\n  // The M"))],
        "nofinish": [(_FINISH_LAUNCH, "  return;\n" + _FINISH_LAUNCH)],
        # a condition random sums never meet, so the compiler keeps every lookup
        "noatomic": [
            (_ATOMIC, "      if (acc[0] == 1234.5f && acc[1] == -1.f) out[0] = acc[2] + acc[3];")
        ],
    }[name]
    for old, new in edits:
        assert src.count(old) == 1, f"variant {name}: edit anchor not found once: {old[:60]!r}"
        src = src.replace(old, new)
    return src


@functools.cache
def build(name: str):
    return build_extension(
        f"celine_lut4_variant_{name}", lut4_cuda.CPP_SRC, variant_source(name), "lut4_gemv_cuda",
        extra_flags=["-Xptxas", "-v"], verbose=True,
    )  # fmt: skip


def call(mod, x, planes, codes, rg, cfg):
    m, n = x.shape[0], planes.shape[2]
    y = torch.empty(m, n, dtype=x.dtype, device=x.device)
    ws = lut4_cuda._workspace(x.device, m, n)
    mod.lut4_gemv_cuda(x, planes, codes, y, ws, 8, rg, *cfg)
    return y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--variants", default="v5,v6,v7,nolookup")
    ap.add_argument("--bits", default="3,2")
    ap.add_argument("--profile", action="store_true", help="one call per shape (for ncu)")
    ap.add_argument("--shapes", default="8192x8192,28672x8192", help="NxK,... (out x in)")
    ap.add_argument("--configs", choices=["all", "rule"], default="all")
    ap.add_argument("--build-only", metavar="NAME", help="compile one variant and exit")
    args = ap.parse_args()
    if args.build_only:
        build(args.build_only)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    variants = args.variants.split(",")
    shapes = [tuple(int(d) for d in sh.split("x")) for sh in args.shapes.split(",")]
    mods = {v: build(v) for v in variants}
    if args.profile:
        for n, k in shapes:
            planes, codes = random_format(n, k, 3, n // 8)
            x = torch.randn(1, k, dtype=torch.bfloat16, device="cuda")
            for v in variants:
                call(mods[v], x, planes, codes, n // 8, (8, 2, 1) if n == 8192 else (6, 4, 2))
        torch.cuda.synchronize()
        return
    read_bw = bandwidth()[1]
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    print(f"{torch.cuda.get_device_name()}: read bandwidth {read_bw:.0f} GB/s", flush=True)
    rows = []
    for n, k in shapes:
        x = torch.randn(1, k, dtype=torch.bfloat16, device="cuda")
        bf16_us = cublas_us(x, n)
        for q in (int(b) for b in args.bits.split(",")):
            rg = n // 8
            planes, codes = random_format(n, k, q, rg)
            nbytes = packed_bytes(n, k, q, 8, rg)
            ref = x.double().cpu() @ dequantize(planes.cpu(), codes.cpu(), 8, rg).double().T
            copies = [(planes, codes)] + [
                (planes.clone(), codes.clone())
                for _ in range(max(2, math.ceil(4 * l2 / nbytes)) - 1)
            ]
            configs = CONFIGS if args.configs == "all" else [lut4_cuda.default_tile(n, k)]
            for v in variants:
                for cfg in configs:
                    y = call(mods[v], x, planes, codes, rg, cfg).double().cpu()
                    err = float((y - ref).norm() / ref.norm())
                    fns = [functools.partial(call, mods[v], x, p, c, rg, cfg) for p, c in copies]
                    us = 1e3 * do_bench_cudagraph(lambda: [f() for f in fns]) / len(fns)
                    hot = 1e3 * do_bench_cudagraph(fns[0])
                    pct = 100 * nbytes / us / 1e3 / read_bw
                    rows.append(dict(N=n, K=k, bits=q, variant=v, cfg=str(cfg), us=us, us_l2_hot=hot,
                                     pct_read_bw=pct, vs_bf16=bf16_us / us, bf16_us=bf16_us,
                                     rel_err=err))  # fmt: skip
                    print(f"{n}x{k} q={q} {v:9s} {cfg}: {us:6.2f} us (L2-hot {hot:6.2f}), "
                          f"{pct:4.1f}% read bw, {bf16_us / us:.2f}x bf16, err {err:.1e}", flush=True)  # fmt: skip
            del copies, planes, codes
    import pandas as pd

    t = pd.DataFrame(rows)
    t.insert(0, "gpu", torch.cuda.get_device_name())
    t["read_GBps"] = read_bw
    t.to_csv(args.out / "lut4_variants.csv", index=False)
    best = t.loc[t.groupby(["N", "bits", "variant"])["us"].idxmin()]
    print(best.drop(columns=["gpu", "K"]).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
