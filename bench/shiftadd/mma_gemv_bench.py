"""The tensor-core GEMV (`bcq_mma_gemv`) against the LUT-4 kernel and cuBLAS bf16, batch 1
(issue #28), in one process on one GPU.

    python bench/shiftadd/mma_gemv_bench.py --out $OUT          # on a CUDA GPU

For each shape (the Llama-2-7B decoder layers, q/k/v and gate/up fused, and the issue's
8192x8192 and 28672x8192) and bit width: each kernel checked against the dequantized product
(fp64 on the CPU), then timed with `do_bench_cudagraph` over weight copies that cover 4x the L2
(so every call reads HBM), and once with one copy (L2-hot). Bytes are the packed format's
(`packed_bytes`: planes and codes), % of the read bandwidth of a bf16 sum measured here.
"""

# ruff: noqa: B023  (every lambda here is timed at once, inside its own loop iteration)
from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path

import pandas as pd
import torch
from triton.testing import do_bench_cudagraph

from celine.kernels.bcq_mma_cuda import bcq_mma_gemv, repack_planes
from celine.kernels.lut4_cuda import lut4_gemv_cuda
from celine.kernels.shiftadd_format import dequantize, packed_bytes

sys.path.insert(0, str(Path(__file__).parent))
from gemv_bench import bandwidth, cublas_us, random_format  # noqa: E402

SHAPES = "4096x4096,12288x4096,22016x4096,4096x11008,8192x8192,28672x8192"


def timed(fns) -> float:
    return 1e3 * do_bench_cudagraph(lambda: [f() for f in fns]) / len(fns)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--bits", default="3,2")
    ap.add_argument("--shapes", default=SHAPES, help="NxK,... (out x in)")
    ap.add_argument("--depths", default="2,4")
    ap.add_argument("--no-lut4", action="store_true")
    ap.add_argument("--profile", action="store_true", help="one call per shape (for ncu)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shapes = [tuple(int(d) for d in sh.split("x")) for sh in args.shapes.split(",")]
    if args.profile:
        for n, k in shapes:
            planes, codes = random_format(n, k, int(args.bits.split(",")[0]), n // 8)
            x = torch.randn(1, k, dtype=torch.bfloat16, device="cuda")
            for d in (int(v) for v in args.depths.split(",")):
                bcq_mma_gemv(x, repack_planes(planes), codes, 8, n // 8, n, d)
        torch.cuda.synchronize()
        return
    read_bw = bandwidth()[1]
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    gpu = torch.cuda.get_device_name()
    print(f"{gpu}: read bandwidth {read_bw:.0f} GB/s", flush=True)
    rows = []
    for n, k in shapes:
        x = torch.randn(1, k, dtype=torch.bfloat16, device="cuda")
        bf16_us = cublas_us(x, n)
        for q in (int(b) for b in args.bits.split(",")):
            rg = n // 8
            planes, codes = random_format(n, k, q, rg)
            packed = repack_planes(planes)
            nbytes = packed_bytes(n, k, q, 8, rg)
            ref = x.double().cpu() @ dequantize(planes.cpu(), codes.cpu(), 8, rg).double().T
            copies = max(2, math.ceil(4 * l2 / nbytes))
            kernels = {} if args.no_lut4 else {
                "lut4_v7": (lambda p, c, pk: lut4_gemv_cuda(x, p, c, 8, rg))
            }  # fmt: skip
            for d in (int(v) for v in args.depths.split(",")):
                kernels[f"mma_d{d}"] = lambda p, c, pk, d=d: bcq_mma_gemv(x, pk, c, 8, rg, n, d)
            sets = [(planes, codes, packed)] + [
                (planes.clone(), codes.clone(), packed.clone()) for _ in range(copies - 1)
            ]
            for name, fn in kernels.items():
                y = fn(*sets[0]).double().cpu()
                err = float((y - ref).norm() / ref.norm())
                us = timed([functools.partial(fn, *s) for s in sets])
                hot = timed([functools.partial(fn, *sets[0])])
                pct = 100 * nbytes / us / 1e3 / read_bw
                rows.append(dict(gpu=gpu, N=n, K=k, bits=q, kernel=name, us=us, us_l2_hot=hot,
                                 pct_read_bw=pct, vs_bf16=bf16_us / us, bf16_us=bf16_us,
                                 rel_err=err, read_GBps=read_bw))  # fmt: skip
                print(f"{n}x{k} q={q} {name:8s}: {us:7.2f} us (L2-hot {hot:6.2f}), {pct:4.1f}% "
                      f"read bw, {bf16_us / us:.2f}x bf16, rel err {err:.1e}", flush=True)  # fmt: skip
            del sets, planes, codes, packed
    t = pd.DataFrame(rows)
    t.to_csv(args.out / "mma_gemv.csv", index=False)
    print(t.drop(columns=["gpu", "read_GBps"]).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
