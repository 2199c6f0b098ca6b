"""The ShiftAddLLM LUT-GEMV (Triton) and its PyTorch reference against `x @ W_dequant.T`.

Triton tests run natively on a GPU or on the CPU with TRITON_INTERPRET=1 set before the kernel
module is imported (`make test-triton-cpu`); shapes stay small so the interpreter is quick.
"""

import pytest
import torch

from celine.kernels.lut_gemv_reference import build_luts, lut_gemv_reference
from celine.kernels.shiftadd_format import (
    decode_apot,
    dequantize,
    encode_apot,
    pack_planes,
    unpack_planes,
)


def random_format(m, n, k, q, col_group, row_group, seed, terms=3):
    """Random packed weights (planes + APoT codes) and input, plus the dense weight."""
    g = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (q, n, k), generator=g) * 2 - 1
    planes = pack_planes(signs)
    shape = (-(-k // col_group), -(-n // row_group), q, terms)
    t_signs = torch.randint(-1, 2, shape, generator=g)
    t_exps = torch.randint(-12, 3, shape, generator=g)
    codes = encode_apot(t_signs, t_exps)
    x = torch.randn(m, k, generator=g)
    return x, planes, codes, dequantize(planes, codes, col_group, row_group), signs


def test_pack_unpack_is_the_identity_and_bytes_are_keys():
    g = torch.Generator().manual_seed(1)
    signs = torch.randint(0, 2, (3, 24, 96), generator=g) * 2 - 1
    planes = pack_planes(signs)
    assert planes.dtype == torch.int32 and planes.shape == (3, 3, 24)
    assert torch.equal(unpack_planes(planes), signs.float())
    # byte i of word j is the key of columns 32j + 8i ... + 7, bit t = column offset t
    key = (int(planes[0, 1, 5]) >> 16) & 255
    bits = [(key >> t) & 1 for t in range(8)]
    assert bits == [int(s > 0) for s in signs[0, 5, 48:56]]


def test_apot_codes_decode_exactly():
    g = torch.Generator().manual_seed(2)
    s = torch.randint(-1, 2, (50, 3), generator=g)
    e = torch.randint(-63, 64, (50, 3), generator=g)
    want = (s.double() * torch.exp2(e.double())).sum(-1)
    assert torch.equal(decode_apot(encode_apot(s, e)).double(), want.float().double())
    with pytest.raises(ValueError, match="exponent"):
        encode_apot(torch.tensor([[1]]), torch.tensor([[70]]))


def test_lut_entries_are_the_signed_sums():
    x = torch.randn(2, 16, generator=torch.Generator().manual_seed(3))
    luts = build_luts(x)
    for key in (0, 1, 37, 200, 255):
        signs = torch.tensor([2.0 * ((key >> j) & 1) - 1 for j in range(8)])
        assert torch.equal(luts[1, 1, key], (x[1, 8:16] * signs).sum())


@pytest.mark.parametrize(
    "m,n,k,q,cg,rg", [(1, 48, 64, 3, 8, 6), (3, 40, 96, 2, 96, 1), (2, 64, 128, 4, 16, 64)]
)
def test_reference_equals_dense_matmul(m, n, k, q, cg, rg):
    x, planes, codes, w, _ = random_format(m, n, k, q, cg, rg, seed=m * n + k)
    ref = x.double() @ w.double().T
    y = lut_gemv_reference(x, planes, codes, cg, rg)
    assert (y - ref).abs().max() <= 1e-5 * ref.abs().max()


@pytest.mark.triton
@pytest.mark.parametrize(
    "m,n,k,q,cg,rg,block_n,split_k",
    [(1, 24, 128, 3, 8, 16, 16, 2), (2, 16, 96, 2, 96, 1, 16, 1)],
)  # row groups uniform over a tile and not; split-K; a partial row tile; a partial word tile
def test_triton_kernel_equals_dense_matmul_fp32(m, n, k, q, cg, rg, block_n, split_k):
    from celine.kernels.lut_gemv import lut_gemv

    device = "cuda" if torch.cuda.is_available() else "cpu"
    x, planes, codes, w, _ = random_format(m, n, k, q, cg, rg, seed=7 + n)
    ref = x.double() @ w.double().T
    args = (planes.to(device), codes.to(device), cg, rg)
    y = lut_gemv(x.to(device), *args, block_n=block_n, block_w=2, split_k=split_k,
                 on_chip=split_k == 1).cpu()  # fmt: skip
    assert (y.double() - ref).abs().max() <= 1e-5 * ref.abs().max()


@pytest.mark.gpu
@pytest.mark.triton
@pytest.mark.parametrize("q,n,k,on_chip", [(3, 1024, 2048, False), (2, 4096, 1024, True)])
def test_triton_kernel_fp16_on_gpu(q, n, k, on_chip):
    """fp16 tables: each output is within a few fp16 ulps of ||x|| ||w_n|| (Cauchy-Schwarz)."""
    from celine.kernels.lut_gemv import lut_gemv

    x, planes, codes, w, _ = random_format(1, n, k, q, 8, 16, seed=11)
    ref = x.double() @ w.double().T
    y = lut_gemv(x.cuda().half(), planes.cuda(), codes.cuda(), 8, 16, on_chip=on_chip)
    y = y.double().cpu()
    bound = 4e-3 * x.double().norm() * w.double().norm(dim=1)
    assert bool(((y - ref).abs() <= bound).all())
