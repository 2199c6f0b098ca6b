"""Drive the CUDA LUT-GEMV (`lut4_gemv_cuda`) under compute-sanitizer, on the bench shapes.

    compute-sanitizer --tool memcheck python3 bench/shiftadd/sanitize_lut4.py

Every (shape, bits, tile) of `lut4_bench.py`'s CUDA list, a few calls each (the second call
reads the workspace the first one's finishing kernel re-zeroed), plus ShiftAddLinear's decode
path; weights are random in the Lat. layout (N/8 rows per scale). The output of the last call is
checked against a float32 GPU reference on a slice of rows (a full float64 reference would take
minutes under the sanitizer); `--check-rows 0` skips that. Prints one line per case and `DONE`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from celine.kernels.lut4_cuda import lut4_gemv_cuda
from celine.kernels.shiftadd_format import dequantize

sys.path.insert(0, str(Path(__file__).parent))
from gemv_bench import random_format  # noqa: E402  (the bench's weights)
from lut4_bench import KERNELS  # noqa: E402  (the bench's CUDA tiles)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", default="8192x8192,28672x8192")
    parser.add_argument("--bits", default="2,3,4")
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--check-rows", type=int, default=512)
    parser.add_argument("--configs", default="all", help="all | first")
    args = parser.parse_args()
    configs = KERNELS["lut4_cuda"][1]
    if args.configs == "first":
        configs = configs[:1]
    worst = 0.0
    for shape in args.shapes.split(","):
        n, k = (int(v) for v in shape.split("x"))
        x = torch.randn(1, k, dtype=torch.float16, device="cuda")
        for q in (int(b) for b in args.bits.split(",")):
            rg = n // 8
            planes, codes = random_format(n, k, q, rg)
            ref = None
            if args.check_rows:
                rows = slice(0, min(args.check_rows, n))
                w = dequantize(planes[:, :, rows], codes[:, : (rows.stop + rg - 1) // rg], 8, rg)
                ref = (x.float() @ w.T).double()
            for cfg in configs:
                for _ in range(args.calls):
                    y = lut4_gemv_cuda(x, planes, codes, 8, rg, **cfg)
                torch.cuda.synchronize()
                msg = f"{n}x{k} q={q} {cfg}: ok"
                if ref is not None:
                    got = y[:, rows].double()
                    rel = float((got - ref).norm() / ref.norm())
                    worst = max(worst, rel)
                    msg += f", rel. err {rel:.1e} on the first {rows.stop} rows"
                print(msg, flush=True)
    # the model path: ShiftAddLinear's decode with kernel="cuda" on a Lat.-layout layer
    from celine.experiments.shiftadd.qlinear import ShiftAddLinear

    planes, codes = random_format(1024, 512, 3, 128)
    mod = ShiftAddLinear(planes, codes, 8, 128, dtype=torch.float16, kernel="cuda")
    xs = torch.randn(2, 512, dtype=torch.float16, device="cuda")
    y = mod(xs)
    want = xs.float() @ mod.dequantized().float().T
    rel = float((y.float() - want).norm() / want.norm())
    worst = max(worst, rel)
    torch.cuda.synchronize()
    print(f"ShiftAddLinear(kernel=cuda) 1024x512 q=3 batch 2: rel. err {rel:.1e}")
    print(f"DONE worst rel. err {worst:.1e}" + (" (MISMATCH)" if worst > 1e-2 else ""))


if __name__ == "__main__":
    main()
