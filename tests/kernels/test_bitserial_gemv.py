"""The bit-serial Triton GEMV (no tables) against `x @ W_dequant.T` and the LUT reference.

Runs natively on a GPU or on the CPU with TRITON_INTERPRET=1 (`make test-triton-cpu`); shapes
are small and drawn fresh from the seed so the interpreter stays quick.
"""

import importlib.util
from pathlib import Path

import pytest
import torch

from celine.kernels.lut_gemv_reference import lut_gemv_reference

_spec = importlib.util.spec_from_file_location(
    "_lut_tests", Path(__file__).with_name("test_lut_gemv.py")
)
_lut_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_lut_tests)
random_format = _lut_tests.random_format


def _random_case(seed):
    """A fresh small shape: rows not a multiple of the tile, 2 or 3 bits, uniform or not."""
    g = torch.Generator().manual_seed(seed)
    q = int(torch.randint(2, 4, (1,), generator=g))
    n = 8 * int(torch.randint(2, 7, (1,), generator=g))  # 16..48
    k = 32 * int(torch.randint(1, 5, (1,), generator=g))  # 32..128
    return q, n, k


@pytest.mark.triton
@pytest.mark.parametrize(
    "seed,m,cg,rg,block_n,block_w,split_k,mode",
    [
        (1, 1, 8, 16, 16, 2, 2, "signxor"),  # uniform rows, split-K, partial row tile
        (2, 2, 8, 16, 16, 1, None, "select"),
        (3, 1, 32, 64, 16, 2, 1, "magic"),
        (4, 2, 8, 1, 16, 2, 2, "signxor"),  # a scale per row: the per-element path
        (5, 1, 16, 4, 16, 1, None, "magic"),
    ],
)
def test_bitserial_equals_dense_matmul_and_reference(seed, m, cg, rg, block_n, block_w, split_k,
                                                     mode):  # fmt: skip
    from celine.kernels.bitserial_gemv import bitserial_gemv

    q, n, k = _random_case(seed)
    for bits in sorted({q, 2, 3} - {q})[:1] + [q]:  # both 2 and 3 bits over the cases
        device = "cuda" if torch.cuda.is_available() else "cpu"
        x, planes, codes, w, _ = random_format(m, n, k, bits, cg, rg, seed=100 + seed)
        dense = x.double() @ w.double().T
        ref = lut_gemv_reference(x, planes, codes, cg, rg).double()
        y = bitserial_gemv(x.to(device), planes.to(device), codes.to(device), cg, rg,
                           block_n=block_n, block_w=block_w, split_k=split_k, mode=mode)  # fmt: skip
        y = y.cpu().double()
        assert y.shape == (m, n)
        assert (y - dense).abs().max() <= 1e-5 * dense.abs().max()
        assert (y - ref).abs().max() <= 1e-5 * dense.abs().max()


@pytest.mark.gpu
@pytest.mark.triton
@pytest.mark.parametrize(
    "q,n,k,rg", [(3, 1024, 2048, 128), (2, 4096, 1024, 512), (3, 512, 1024, 16)]
)
def test_bitserial_fp16_on_gpu(q, n, k, rg):
    """fp16 input and output, fp32 accumulation: within a few fp16 ulps of ||x|| ||w_n||."""
    from celine.kernels.bitserial_gemv import bitserial_gemv

    x, planes, codes, w, _ = random_format(1, n, k, q, 8, rg, seed=13)
    ref = x.double() @ w.double().T
    for mode in ("select", "signxor", "magic"):
        y = bitserial_gemv(x.cuda().half(), planes.cuda(), codes.cuda(), 8, rg, mode=mode)
        y = y.double().cpu()
        bound = 4e-3 * x.double().norm() * w.double().norm(dim=1)
        assert bool(((y - ref).abs() <= bound).all()), mode
