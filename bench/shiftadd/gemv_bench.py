"""Batch-1 ShiftAddLLM GEMVs (Triton LUT and bit-serial) vs cuBLAS fp16, with the bandwidth floor.

    python bench/shiftadd/gemv_bench.py --out results/   # on a CUDA GPU
    python bench/shiftadd/gemv_bench.py --out results/ --lut-configs best   # fewer LUT tiles

For every shape and bit width: the LUT kernel's time and the bit-serial kernel's
(`bitserial_gemv.py`, no tables) time, each the best of a small list of tile configurations
(CUDA graphs), all in one process beside cuBLAS `F.linear` in fp16, the speed-up, GB/s counted
over the packed bytes (planes + APoT codes), and the ideal time (bytes / measured copy bandwidth) beside each, plus a correctness
check against the dequantized weight. Weights are random (the format, not the values, decides
the speed). Scale layouts: "g-1" = one APoT scale set per 8 columns x N/8 rows (the Lat. layout
of the OPT scripts and of the tiny default); "g128" = per 8 columns x 16 rows (the LLaMA
scripts), where the kernel's row tile spans several scale rows (its slower path).
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import torch
import triton
from triton.testing import do_bench_cudagraph

from celine.kernels.bitserial_gemv import bitserial_gemv
from celine.kernels.lut_gemv import lut_gemv
from celine.kernels.shiftadd_format import dequantize, encode_apot, pack_planes, packed_bytes

SHAPES = [(8192, 8192), (28672, 8192)]
CONFIGS = [  # (block_n, block_w, num_warps, lut dtype, tables on chip via tl.gather)
    (256, 4, 4, torch.float16, False),
    (512, 4, 8, torch.float16, False),
    (128, 8, 4, torch.float16, True),
    (256, 4, 4, torch.float16, True),
    (256, 8, 8, torch.float16, True),
    (512, 4, 8, torch.float16, True),
]
G128_CONFIGS = [(16, 16, 4, torch.float16, False), (16, 16, 4, torch.float16, True)]
LUT_BEST = {"g-1": CONFIGS[:2], "g128": G128_CONFIGS[:1]}  # the fastest ones measured before
# bit-serial autotune list: (block_n, block_w, num_warps, inner bit step, programs in flight that
# split-K aims at); rows per thread = block_n * block_w / (32 * num_warps) amortise the per-word
# x loads and scale decodes
BS_CONFIGS = [
    (512, 2, 4, "select", 1056),
    (1024, 2, 4, "select", 1056),
    (1024, 2, 4, "signxor", 1056),
    (1024, 2, 4, "magic", 1056),
    (1024, 2, 4, "select", 528),
    (512, 2, 4, "signxor", 1056),
]  # dropped after the 2026-11-26 H200 run (3-10x slower, see h200_gemv_bitserial_sweep.csv):
# (2048, 1, 4, "select"), (2048, 2, 8, "select"), (1024, 4, 8, "magic")
BS_G128_CONFIGS = [(512, 2, 4, "select", 1056), (1024, 2, 4, "signxor", 1056)]


def cublas_us(x: torch.Tensor, n: int) -> float:
    """us per call of `F.linear(x, W)` for a random W [n, K] in x's dtype, cycling copies of W
    that cover 4x the L2, so every call reads HBM (the baseline of every GEMV bench here)."""
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    w = torch.randn(n, x.shape[1], dtype=x.dtype, device=x.device) * 0.02
    dense = [w] + [w.clone() for _ in range(max(1, -(-4 * l2 // w.nbytes)) - 1)]
    fns = [functools.partial(torch.nn.functional.linear, x, d) for d in dense]
    return 1e3 * do_bench_cudagraph(lambda: [f() for f in fns]) / len(fns)


def bandwidth() -> tuple[float, float]:
    """(copy, read) GB/s on 2 GiB: a device-to-device copy counted as bytes read + written, and
    a sum reduction counted as bytes read."""
    a = torch.empty(2**30, dtype=torch.float16, device="cuda").normal_()
    b = torch.empty_like(a)
    copy_ms = do_bench_cudagraph(lambda: b.copy_(a))
    read_ms = do_bench_cudagraph(lambda: a.sum(dtype=torch.float32))
    return 2 * a.numel() * 2 / copy_ms / 1e6, a.numel() * 2 / read_ms / 1e6


def random_format(n, k, q, row_group, col_group=8):
    g = torch.Generator().manual_seed(n + k + q)
    planes = pack_planes(torch.randint(0, 2, (q, n, k), generator=g, dtype=torch.int8) * 2 - 1)
    shape = (k // col_group, n // row_group, q, 3)
    codes = encode_apot(
        torch.randint(-1, 2, shape, generator=g), torch.randint(-12, -2, shape, generator=g)
    )
    return planes.cuda(), codes.cuda()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--bits", default="3,2")
    parser.add_argument("--lut-configs", choices=["all", "best"], default="all")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name()
    bw, read_bw = bandwidth()
    print(f"{name}: measured copy bandwidth {bw:.0f} GB/s (read-only {read_bw:.0f} GB/s); "
          f"torch {torch.__version__}, triton {triton.__version__}")  # fmt: skip
    rows = []
    for n, k in SHAPES:
        w16 = torch.randn(n, k, dtype=torch.float16, device="cuda") * 0.02
        x = torch.randn(1, k, dtype=torch.float16, device="cuda")
        fp16_ms = do_bench_cudagraph(lambda w16=w16, x=x: torch.nn.functional.linear(x, w16))
        fp16_bytes = n * k * 2
        del w16
        best_lut = args.lut_configs == "best"
        cases = [(q, "g-1", n // 8, LUT_BEST["g-1"] if best_lut else CONFIGS, BS_CONFIGS)
                 for q in (int(b) for b in args.bits.split(","))]  # fmt: skip
        if (n, k) == SHAPES[0]:
            cases.append(
                (3, "g128", 16, LUT_BEST["g128"] if best_lut else G128_CONFIGS, BS_G128_CONFIGS)
            )
        for q, layout, row_group, configs, bs_configs in cases:
            planes, codes = random_format(n, k, q, row_group)
            nbytes = packed_bytes(n, k, q, 8, row_group)
            best = None
            for block_n, block_w, warps, lut_dtype, on_chip in configs:
                fn = functools.partial(
                    lut_gemv, x, planes, codes, 8, row_group, block_n=block_n, block_w=block_w,
                    lut_dtype=lut_dtype, num_warps=warps, on_chip=on_chip,
                )  # fmt: skip
                label = (f"  {n}x{k} q={q} {layout} block_n={block_n} block_w={block_w} "
                         f"warps={warps} lut={str(lut_dtype)[6:]} on_chip={on_chip}")  # fmt: skip
                try:
                    ms = do_bench_cudagraph(fn)
                except Exception as err:  # a configuration this Triton cannot build
                    print(f"{label}: failed ({type(err).__name__}: {str(err)[:200]})")
                    continue
                print(f"{label}: {ms * 1e3:.1f} us")
                if best is None or ms < best[0]:
                    best = (ms, fn, block_n, block_w, warps, lut_dtype, on_chip)
            ms, fn, block_n, block_w, warps, lut_dtype, on_chip = best
            ref = x.double() @ dequantize(planes, codes, 8, row_group).double().T
            y = fn().double()
            rel = float((y - ref).norm() / ref.norm())
            bs_best = None
            for bs_n, bs_w, bs_warps, mode, programs in bs_configs:
                bs_fn = functools.partial(
                    bitserial_gemv, x, planes, codes, 8, row_group, block_n=bs_n, block_w=bs_w,
                    num_warps=bs_warps, mode=mode, programs=programs,
                )  # fmt: skip
                label = (f"  {n}x{k} q={q} {layout} bitserial block_n={bs_n} block_w={bs_w} "
                         f"warps={bs_warps} mode={mode} programs={programs}")  # fmt: skip
                try:
                    bs_ms = do_bench_cudagraph(bs_fn)
                    bs_y = bs_fn().double()
                except Exception as err:  # a configuration this Triton cannot build
                    print(f"{label}: failed ({type(err).__name__}: {str(err)[:200]})")
                    continue
                bs_rel = float((bs_y - ref).norm() / ref.norm())
                print(f"{label}: {bs_ms * 1e3:.1f} us (rel. err {bs_rel:.1e})")
                if bs_rel > 1e-2:  # a wrong result never counts as the best
                    continue
                if bs_best is None or bs_ms < bs_best[0]:
                    bs_best = (bs_ms, bs_n, bs_w, bs_warps, mode, programs, bs_rel)
            rows.append({
                "gpu": name, "N": n, "K": k, "bits": q, "scales": layout, "block_n": block_n,
                "block_w": block_w, "num_warps": warps, "lut_dtype": str(lut_dtype)[6:],
                "on_chip": on_chip,
                "lut_us": ms * 1e3, "fp16_cublas_us": fp16_ms * 1e3,
                "speedup_vs_fp16": fp16_ms / ms,
                "packed_MB": nbytes / 1e6, "lut_GBps_packed": nbytes / ms / 1e6,
                "pct_copy_bw": 100 * nbytes / ms / 1e6 / bw,
                "ideal_lut_us": nbytes / bw / 1e3,
                "fp16_GBps": fp16_bytes / fp16_ms / 1e6,
                "ideal_fp16_us": fp16_bytes / bw / 1e3,
                "copy_GBps": bw, "read_GBps": read_bw, "rel_err_vs_dequant": rel,
            })  # fmt: skip
            if bs_best is not None:
                bs_ms, bs_n, bs_w, bs_warps, mode, programs, bs_rel = bs_best
                rows[-1].update({
                    "bs_block_n": bs_n, "bs_block_w": bs_w, "bs_num_warps": bs_warps,
                    "bs_mode": mode, "bs_programs": programs, "bitserial_us": bs_ms * 1e3,
                    "bs_speedup_vs_fp16": fp16_ms / bs_ms,
                    "bs_GBps_packed": nbytes / bs_ms / 1e6,
                    "bs_pct_copy_bw": 100 * nbytes / bs_ms / 1e6 / bw,
                    "bs_rel_err_vs_dequant": bs_rel,
                })  # fmt: skip
            print(json.dumps(rows[-1]))
    import pandas as pd

    table = pd.DataFrame(rows)
    table.to_csv(args.out / "shiftadd_gemv.csv", index=False)
    cols = ["N", "K", "bits", "scales", "lut_us", "ideal_lut_us", "fp16_cublas_us",
            "ideal_fp16_us", "speedup_vs_fp16", "lut_GBps_packed", "pct_copy_bw",
            "rel_err_vs_dequant"]  # fmt: skip
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    bs_cols = ["N", "K", "bits", "scales", "bitserial_us", "ideal_lut_us", "fp16_cublas_us",
               "bs_speedup_vs_fp16", "bs_GBps_packed", "bs_pct_copy_bw", "bs_rel_err_vs_dequant",
               "bs_block_n", "bs_block_w", "bs_num_warps", "bs_mode", "bs_programs"]  # fmt: skip
    bs_cols = [c for c in bs_cols if c in table]
    print(table[bs_cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
