"""Batch-1 GEMV with 4-input LUTs (Triton `lut4_gemv`, CUDA `lut4_gemv_cuda`) vs cuBLAS fp16.

    python bench/shiftadd/lut4_bench.py --out results/      # on a CUDA GPU

Same shapes, format and bandwidth yardstick as `gemv_bench.py` (the Lat. layout "g-1": one APoT
scale set per 8 columns x N/8 rows), one process, CUDA graphs (`do_bench_cudagraph`). For every
shape and bit width: cuBLAS `F.linear` in fp16, then each kernel at each of a few tile
configurations (the best kept), its speed-up over cuBLAS, GB/s over the packed bytes, % of the
measured copy bandwidth and the ideal time (packed bytes / copy bandwidth) beside it, and the
relative error against the dequantized weight in float64 (a wrong result is never kept).
"""

from __future__ import annotations

import argparse
import functools
import json
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
            for b, i, w in (
                (6, 4, 2),
                (4, 4, 2),
                (6, 2, 2),
                (6, 1, 2),
                (6, 4, 1),
                (8, 2, 1),
                (8, 4, 1),
            )
        ],
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--bits", default="3,2,4")
    parser.add_argument("--kernels", default=",".join(KERNELS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name()
    bw, read_bw = bandwidth()
    print(f"{name}: copy {bw:.0f} GB/s, read {read_bw:.0f} GB/s; torch {torch.__version__}, "
          f"triton {triton.__version__}")  # fmt: skip
    rows = []
    for n, k in SHAPES:
        w16 = torch.randn(n, k, dtype=torch.float16, device="cuda") * 0.02
        x = torch.randn(1, k, dtype=torch.float16, device="cuda")
        fp16_ms = do_bench_cudagraph(lambda w16=w16, x=x: torch.nn.functional.linear(x, w16))
        del w16
        for q in (int(b) for b in args.bits.split(",")):
            row_group = n // 8
            planes, codes = random_format(n, k, q, row_group)
            nbytes = packed_bytes(n, k, q, 8, row_group)
            ref = x.double() @ dequantize(planes, codes, 8, row_group).double().T
            for kname in args.kernels.split(","):
                fn_base, configs = KERNELS[kname]
                best = None
                for cfg in configs:
                    fn = functools.partial(fn_base, x, planes, codes, 8, row_group, **cfg)
                    label = f"  {n}x{k} q={q} {kname} {cfg}"
                    try:
                        y = fn().double()
                        ms = do_bench_cudagraph(fn)
                    except Exception as err:  # a configuration this toolchain cannot build
                        print(f"{label}: failed ({type(err).__name__}: {str(err)[:300]})")
                        continue
                    rel = float((y - ref).norm() / ref.norm())
                    print(f"{label}: {ms * 1e3:.1f} us, rel. err {rel:.1e}", flush=True)
                    if rel < 1e-2 and (best is None or ms < best[0]):
                        best = (ms, cfg, rel)
                if best is None:
                    continue
                ms, cfg, rel = best
                rows.append({
                    "gpu": name, "N": n, "K": k, "bits": q, "kernel": kname, "config": str(cfg),
                    "us": ms * 1e3, "fp16_cublas_us": fp16_ms * 1e3,
                    "speedup_vs_fp16": fp16_ms / ms, "packed_MB": nbytes / 1e6,
                    "GBps_packed": nbytes / ms / 1e6, "pct_copy_bw": 100 * nbytes / ms / 1e6 / bw,
                    "ideal_us": nbytes / bw / 1e3, "fp16_GBps": n * k * 2 / fp16_ms / 1e6,
                    "copy_GBps": bw, "read_GBps": read_bw, "rel_err_vs_dequant": rel,
                })  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    import pandas as pd

    table = pd.DataFrame(rows)
    table.to_csv(args.out / "shiftadd_lut4_gemv.csv", index=False)
    cols = ["N", "K", "bits", "kernel", "us", "ideal_us", "fp16_cublas_us", "speedup_vs_fp16",
            "GBps_packed", "pct_copy_bw", "rel_err_vs_dequant"]  # fmt: skip
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
