"""Batch-1 GEMV with 4-input LUTs (Triton `lut4_gemv`, CUDA `lut4_gemv_cuda`) vs cuBLAS fp16.

    python bench/shiftadd/lut4_bench.py --out results/      # on a CUDA GPU

Same shapes, format and bandwidth yardstick as `gemv_bench.py` (the Lat. layout "g-1": one APoT
scale set per 8 columns x N/8 rows), one process, CUDA graphs (`do_bench_cudagraph`). For every
shape and bit width: cuBLAS `F.linear` in fp16, then each kernel at each of a few tile
configurations (the best kept), its speed-up over cuBLAS, GB/s over the packed bytes, % of the
measured copy bandwidth and the ideal time (packed bytes / copy bandwidth) beside it, and the
relative error against the dequantized weight in float64 (a wrong result is never kept).

Every kernel, cuBLAS included, cycles through enough copies of its weights to cover four times
the L2 cache (`--no-rotate`: one copy): a model's layers each read their own weights once per
token, and 8192x8192 at 3 bits (25 MB) would otherwise sit in the H100/H200's 50 MB L2 between
calls. The best configuration is also timed on one copy (`us_l2_hot`) for comparison.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from pathlib import Path

import torch
import triton
from triton.testing import do_bench_cudagraph

from celine.kernels.lut4_cuda import lut4_gemv_cuda
from celine.kernels.lut4_gemv import lut4_gemv
from celine.kernels.lut_gemv import lut_gemv
from celine.kernels.shiftadd_format import dequantize, packed_bytes

sys.path.insert(0, str(Path(__file__).parent))
from gemv_bench import bandwidth, random_format  # noqa: E402  (the same yardstick)

SHAPES = [(8192, 8192), (28672, 8192)]
KERNELS = {  # name -> (function, list of keyword configurations)
    "lut8_triton": (lut_gemv, [dict(block_n=256, block_w=4, num_warps=4, lut_dtype=torch.float16)]),
    "lut4_triton": (
        lut4_gemv,
        [
            dict(block_n=256, block_w=2, num_warps=4),
            dict(block_n=512, block_w=1, num_warps=4),
        ],
    ),
    "lut4_cuda": (
        lut4_gemv_cuda,
        [
            dict(min_blocks=b, row_iters=i, words=w)
            for b, i, w in ((8, 4, 1), (8, 2, 1), (6, 4, 1), (8, 2, 2), (6, 4, 2), (4, 4, 2))
        ],
    ),
}


def copies_for(nbytes: int, rotate: bool) -> int:
    """Weight copies a timed call cycles through so that none is still in L2 when reread."""
    if not rotate:
        return 1
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    return max(2, math.ceil(4 * l2 / nbytes))


def time_per_call(fns) -> float:
    """ms per call of a list of equivalent calls on different weight copies, run in turn."""
    return do_bench_cudagraph(lambda: [f() for f in fns]) / len(fns)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--bits", default="3,2,4")
    parser.add_argument("--kernels", default=",".join(KERNELS))
    parser.add_argument("--no-rotate", dest="rotate", action="store_false")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name()
    bw, read_bw = bandwidth()
    print(f"{name}: copy {bw:.0f} GB/s, read {read_bw:.0f} GB/s; torch {torch.__version__}, "
          f"triton {triton.__version__}; rotate weights: {args.rotate}")  # fmt: skip
    rows = []
    for n, k in SHAPES:
        x = torch.randn(1, k, dtype=torch.float16, device="cuda")
        w16 = torch.randn(n, k, dtype=torch.float16, device="cuda") * 0.02
        dense = [w16] + [w16.clone() for _ in range(copies_for(w16.nbytes, args.rotate) - 1)]
        fp16_ms = time_per_call(
            [functools.partial(torch.nn.functional.linear, x, w) for w in dense]
        )
        print(f"{n}x{k} cuBLAS fp16: {fp16_ms * 1e3:.1f} us over {len(dense)} weight copies")
        del w16, dense
        for q in (int(b) for b in args.bits.split(",")):
            row_group = n // 8
            planes, codes = random_format(n, k, q, row_group)
            nbytes = packed_bytes(n, k, q, 8, row_group)
            # the reference on the CPU, in float64, from copies taken before any kernel runs
            ref = x.double().cpu() @ dequantize(planes.cpu(), codes.cpu(), 8, row_group).double().T
            packed = [(planes, codes)] + [
                (planes.clone(), codes.clone()) for _ in range(copies_for(nbytes, args.rotate) - 1)
            ]
            for kname in args.kernels.split(","):
                fn_base, configs = KERNELS[kname]
                best = None
                for cfg in configs:
                    fns = [
                        functools.partial(fn_base, x, p, c, 8, row_group, **cfg) for p, c in packed
                    ]
                    label = f"  {n}x{k} q={q} {kname} {cfg}"
                    try:
                        y = fns[0]().double()
                        ms = time_per_call(fns)
                        y_after = fns[-1]().double()  # still right after hundreds of calls
                    except Exception as err:  # a configuration this toolchain cannot build
                        print(f"{label}: failed ({type(err).__name__}: {str(err)[:300]})")
                        continue
                    rels = [float((v.cpu() - ref).norm() / ref.norm()) for v in (y, y_after)]
                    rel = max(rels)
                    print(f"{label}: {ms * 1e3:.1f} us, rel. err {rel:.1e} (first call "
                          f"{rels[0]:.1e}, after timing {rels[1]:.1e})", flush=True)  # fmt: skip
                    if rel < 1e-2 and (best is None or ms < best[0]):
                        best = (ms, cfg, rel)
                if best is None:
                    continue
                ms, cfg, rel = best
                hot_ms = time_per_call(
                    [functools.partial(fn_base, x, planes, codes, 8, row_group, **cfg)]
                )
                rows.append({
                    "gpu": name, "N": n, "K": k, "bits": q, "kernel": kname, "config": str(cfg),
                    "us": ms * 1e3, "fp16_cublas_us": fp16_ms * 1e3,
                    "speedup_vs_fp16": fp16_ms / ms, "packed_MB": nbytes / 1e6,
                    "GBps_packed": nbytes / ms / 1e6, "pct_copy_bw": 100 * nbytes / ms / 1e6 / bw,
                    "pct_read_bw": 100 * nbytes / ms / 1e6 / read_bw,
                    "ideal_us": nbytes / bw / 1e3, "fp16_GBps": n * k * 2 / fp16_ms / 1e6,
                    "copy_GBps": bw, "read_GBps": read_bw, "rel_err_vs_dequant": rel,
                    "weight_copies": len(packed), "us_l2_hot": hot_ms * 1e3,
                })  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
            del packed
    import pandas as pd

    table = pd.DataFrame(rows)
    table.to_csv(args.out / "shiftadd_lut4_gemv.csv", index=False)
    cols = ["N", "K", "bits", "kernel", "us", "ideal_us", "fp16_cublas_us", "speedup_vs_fp16",
            "GBps_packed", "pct_copy_bw", "pct_read_bw", "us_l2_hot", "rel_err_vs_dequant"]  # fmt: skip
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
