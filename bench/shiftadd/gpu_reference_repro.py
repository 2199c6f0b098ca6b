"""Reproducer of the float64 GPU-reference mismatch (room README, "The reference").

In 11 of 14 earlier runs, every 28672x8192 configuration of `lut4_gemv_cuda` disagreed (rel.
err 0.76-0.79 or NaN) with `x.double() @ dequantize(...).double().T` computed ON THE GPU, and
agreed at 2.1e-4 with the same reference on the CPU. This script separates the suspects, each
step printing one line (`step`, relative errors, input checksums):

  A  GPU float64 reference before any kernel vs the CPU one: the reference alone (H1: the
     GPU dequantize/float64 GEMV is itself wrong at this size, e.g. int64 shifts or memory).
  B  the same after kernel calls and CUDA-graph timing as in lut4_bench.py, plus checksums of
     x, planes and codes on the GPU against their CPU copies (H2: the kernel, its workspace or
     a freed/aliased buffer writes over memory it does not own).
  C  as B with torch.cuda.synchronize() between every step (H3: a stream-order race, e.g. a
     side stream of do_bench_cudagraph or a programmatic-dependent launch reading early).
  D  the kernel's output vs both references after everything else.

Run it twice in one process-order (`--order ref-first` as the failing bench did, and
`--order kernel-first`) and once with CUDA_LAUNCH_BLOCKING=1; H3 predicts B fails but C and
CUDA_LAUNCH_BLOCKING pass, H2 predicts a checksum change (and a memcheck report), H1 predicts A
fails on its own.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch
from triton.testing import do_bench_cudagraph

from celine.kernels.lut4_cuda import lut4_gemv_cuda
from celine.kernels.shiftadd_format import dequantize

sys.path.insert(0, str(Path(__file__).parent))
from gemv_bench import random_format  # noqa: E402


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).norm() / b.norm())


def checksum(t: torch.Tensor) -> int:
    return (
        int(t.cpu().view(-1).to(torch.int64).sum())
        if not t.is_floating_point()
        else int(t.cpu().double().sum() * 1e6)
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shape", default="28672x8192")
    p.add_argument("--bits", type=int, default=3)
    p.add_argument("--order", choices=["ref-first", "kernel-first"], default="ref-first")
    p.add_argument("--sync", action="store_true", help="synchronize between every step (arm C)")
    args = p.parse_args()
    n, k = (int(v) for v in args.shape.split("x"))
    rg = n // 8
    sync = torch.cuda.synchronize if args.sync else (lambda: None)
    x = torch.randn(1, k, dtype=torch.float16, device="cuda")
    planes, codes = random_format(n, k, args.bits, rg)
    x_c, planes_c, codes_c = x.cpu(), planes.cpu(), codes.cpu()
    sums = (checksum(x_c), checksum(planes_c), checksum(codes_c))
    ref_cpu = x_c.double() @ dequantize(planes_c, codes_c, 8, rg).double().T

    def gpu_ref():
        return x.double() @ dequantize(planes, codes, 8, rg).double().T

    def inputs_intact() -> str:
        now = (checksum(x), checksum(planes), checksum(codes))
        return "inputs intact" if now == sums else f"INPUTS CHANGED {sums} -> {now}"

    fn = functools.partial(lut4_gemv_cuda, x, planes, codes, 8, rg)
    if args.order == "kernel-first":
        y0 = fn()
        sync()
        print(f"kernel first: kernel vs CPU ref {rel(y0, ref_cpu):.2e}; {inputs_intact()}")
    ref_gpu = gpu_ref()
    sync()
    print(f"A GPU ref vs CPU ref: {rel(ref_gpu, ref_cpu):.2e}; {inputs_intact()}", flush=True)
    y = fn()
    sync()
    print(f"B first call: kernel vs GPU ref {rel(y, ref_gpu):.2e}, vs CPU ref "
          f"{rel(y, ref_cpu):.2e}; {inputs_intact()}", flush=True)  # fmt: skip
    copies = [(planes.clone(), codes.clone()) for _ in range(2)]
    fns = [fn] + [functools.partial(lut4_gemv_cuda, x, pc, cc, 8, rg) for pc, cc in copies]
    ms = do_bench_cudagraph(lambda: [f() for f in fns]) / len(fns)
    sync()
    y_after = fns[-1]()
    sync()
    ref_gpu2 = gpu_ref()
    sync()
    print(f"B after timing ({ms * 1e3:.1f} us/call): kernel vs first GPU ref "
          f"{rel(y_after, ref_gpu):.2e}, vs CPU ref {rel(y_after, ref_cpu):.2e}; fresh GPU ref "
          f"vs CPU ref {rel(ref_gpu2, ref_cpu):.2e}; {inputs_intact()}", flush=True)  # fmt: skip
    torch.cuda.synchronize()
    print(f"D end: first GPU ref vs CPU ref {rel(ref_gpu, ref_cpu):.2e} (changed in place: "
          f"{'yes' if rel(ref_gpu, ref_cpu) > 1e-9 else 'no'})")  # fmt: skip


if __name__ == "__main__":
    main()
