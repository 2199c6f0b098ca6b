"""The tensor-core GEMV (`bcq_mma_cuda`): its repacked layout, its arithmetic, its input checks
on the CPU, and the CUDA kernel against `x @ W_dequant.T` on a GPU (`gpu` marker).

The CPU tests pin what the kernel relies on and a GPU run could not localise: every plane bit
lands at the word, lane and bit position the mma fragments read (`repack_planes` inverts
exactly), a masked byte reads as the int8 `b 2^i` the kernel assumes, and the fixed-point
digits with the +-1 correction give the product (`emulate`, the kernel's arithmetic in fp64).
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from celine.kernels.bcq_mma_cuda import (
    check_bcq_mma_inputs,
    repack_planes,
    rows_per_block,
    unpack_repacked,
)
from celine.kernels.gemv_checks import KernelInputError
from celine.kernels.shiftadd_format import decode_apot, unpack_planes

_spec = importlib.util.spec_from_file_location(
    "_lut_tests", Path(__file__).with_name("test_lut_gemv.py")
)
_lut_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_lut_tests)
random_format = _lut_tests.random_format


@pytest.mark.parametrize("q,n,k", [(3, 64, 160), (2, 32, 128), (4, 96, 416)])
def test_repack_is_a_permutation_of_the_plane_bits(q, n, k):
    _, planes, _, _, signs = random_format(1, n, k, q, 8, 32, seed=q * 1000 + n + k)
    packed = repack_planes(planes)
    assert packed.shape == (n // 32, -(-k // 128), q, 32, 4)
    assert torch.equal(unpack_repacked(packed, k), signs.float())
    # the padded columns are zero bits (the kernel gives them B = 0)
    full = unpack_repacked(packed, packed.shape[1] * 128)
    assert bool((full[:, :, k:] == -1).all())


def test_one_bit_lands_where_the_fragment_reads_it():
    # row n = 32 nb + 16 t + 8 hh + g, column k = 128 c + 32 s + 16 h + 4 tig + e
    nb, t, hh, g, c, s, h, tig, e = 1, 1, 0, 5, 1, 3, 1, 2, 3
    n, k = 32 * nb + 16 * t + 8 * hh + g, 128 * c + 32 * s + 16 * h + 4 * tig + e
    signs = -torch.ones(2, 64, 256, dtype=torch.int64)
    signs[1, n, k] = 1
    from celine.kernels.shiftadd_format import pack_planes

    packed = repack_planes(pack_planes(signs))
    hit = (packed != 0).nonzero().tolist()
    assert hit == [[nb, c, 1, 4 * g + tig, 2 * t + hh]]
    word = int(packed[nb, c, 1, 4 * g + tig, 2 * t + hh]) & 0xFFFFFFFF
    assert word == 1 << (8 * e + 2 * s + h)
    # the kernel's A register of step s, half h: bit i = 2 s + h of every byte, as int8 b 2^i
    i = 2 * s + h
    byte = ((word & (0x01010101 << i)) >> (8 * e)) & 0xFF
    assert int(np.uint8(byte).astype(np.int8)) == (-128 if i == 7 else 2**i)


def emulate(x, planes, codes, col_group, row_group):
    """The kernel's arithmetic in fp64: u = rint(2 alpha x 2^(E - i)) (negated for i = 7, where
    a set bit reads -128), three signed 8-bit digits, exact sums over {0, 1} bits, the +-1
    correction, / 2^(E+1); one E per row group (the kernel: per block, the same bound)."""
    bits = (unpack_planes(planes) > 0).double()  # [q, N, K]
    q, n, k = bits.shape
    alpha = decode_apot(codes).double()  # [K/cg, NG, q]
    alpha = alpha.repeat_interleave(col_group, 0)[:k]  # [K, NG, q]
    i = ((torch.arange(k) % 128) // 16).double()  # 2 s + h
    avalue = torch.where(i == 7, -128.0, 2.0**i)  # the int8 a set bit reads as
    xd = x.double()[0]
    y = torch.zeros(1, n, dtype=torch.float64)
    for gi, r0 in enumerate(range(0, n, row_group)):
        a = alpha[:, gi, :]  # [K, q]
        m = 2 * float(a.abs().max()) * float(xd.abs().max())
        e = 22 - (int(np.frexp(m)[1]) if m > 0 else 0)
        tot = torch.zeros(min(row_group, n - r0), dtype=torch.float64)
        for b in range(q):
            u = torch.round(2 * a[:, b] * xd * 2.0 ** (e - i) * torch.sign(avalue))
            d0 = (u + 128) % 256 - 128
            d1 = ((u - d0) / 256 + 128) % 256 - 128
            d2 = (u - d0 - 256 * d1) / 65536
            assert float(d2.abs().max()) <= 127  # three digits hold every u
            ctot = bits[b, r0 : r0 + row_group] @ (avalue * (d0 + 256 * d1 + 65536 * d2))
            tot += 2 * ctot - float((u * avalue).sum())
        y[0, r0 : r0 + row_group] = tot / 2.0 ** (e + 1)
    return y


@pytest.mark.parametrize("q", [2, 3, 4])
def test_the_arithmetic_gives_the_product(q):
    x, planes, codes, w, _ = random_format(1, 64, 384, q, 8, 32, seed=40 + q)
    x = x.to(torch.bfloat16).float()
    ref = x.double() @ w.double().T
    err = float((emulate(x, planes, codes, 8, 32) - ref).norm() / ref.norm())
    assert err < 1e-4, err  # every product keeps >= 15 significant bits


def test_rows_per_block_fills_the_gpu_within_a_row_group():
    assert rows_per_block(4096, 512) == 1  # 128 blocks: one each
    assert rows_per_block(28672, 3584) == 4  # 896 row blocks -> 224 blocks
    assert rows_per_block(22016, 2752) == 3
    assert rows_per_block(1 << 20, 64) == 2  # never past its row group


@pytest.mark.parametrize(
    "m,rg,dtype,match",
    [
        (2, 32, torch.bfloat16, "batch M=2"),
        (1, 16, torch.bfloat16, "row_group=16"),
        (1, 32, torch.float32, "x dtype"),
    ],
)
def test_inputs_the_kernel_cannot_take_are_refused_by_name(m, rg, dtype, match):
    x, planes, codes, _, _ = random_format(m, 64, 128, 3, 8, rg, seed=3)
    with pytest.raises(KernelInputError, match=match):
        check_bcq_mma_inputs(x.to(dtype), repack_planes(planes), codes, 8, rg, 64)


def test_planes_repacked_for_other_rows_are_refused():
    x, planes, _, _, _ = random_format(1, 64, 128, 3, 8, 32, seed=3)
    codes = torch.zeros(16, 3, 3, dtype=torch.int32)  # codes for 96 rows
    with pytest.raises(KernelInputError, match=r"packed \(2, 1, 3, 32, 4\) for N=96"):
        check_bcq_mma_inputs(x.to(torch.bfloat16), repack_planes(planes), codes, 8, 32, 96)


def test_repack_refuses_rows_that_do_not_fill_a_block():
    _, planes, _, _, _ = random_format(1, 48, 64, 2, 8, 48, seed=4)
    with pytest.raises(KernelInputError, match="N=48"):
        repack_planes(planes)


def test_a_well_formed_call_passes_the_checks():
    x, planes, codes, _, _ = random_format(1, 64, 416, 3, 8, 32, seed=5)
    check_bcq_mma_inputs(x.to(torch.bfloat16), repack_planes(planes), codes, 8, 32, 64)


@pytest.mark.gpu
@pytest.mark.parametrize("q", [2, 3, 4])
@pytest.mark.parametrize(
    "n,k,rg,dtype",
    [
        (64, 4096, 32, torch.bfloat16),
        (128, 416, 64, torch.float16),  # K padded to 512: a partial last chunk
        (4096, 11008, 512, torch.bfloat16),  # Llama-7B down_proj
        (2048, 1024, 256, torch.bfloat16),  # 64 row blocks, 8 per group: R=2 leaves none over
        (96, 256, 96, torch.bfloat16),  # 3 row blocks per group: R=2 leaves a short last block
    ],
)
def test_cuda_kernel_equals_dense_matmul(q, n, k, rg, dtype):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from celine.kernels.bcq_mma_cuda import bcq_mma_gemv

    x, planes, codes, w, _ = random_format(1, n, k, q, 8, rg, seed=q + n + k)
    x = x.to(dtype)
    packed = repack_planes(planes).cuda()
    ref = x.double() @ w.double().T
    emu = emulate(x.float(), planes, codes, 8, rg)
    for depth, rows in ((2, None), (4, None), (4, 2)):
        y = bcq_mma_gemv(x.cuda(), packed, codes.cuda(), 8, rg, n, depth, rows)
        assert y.dtype == dtype and y.shape == (1, n)
        # the output's own rounding (fp16 / bf16) is all that separates it from the product
        tol = 2e-3 if dtype == torch.float16 else 8e-3
        assert float((y.double().cpu() - ref).norm() / ref.norm()) < tol
        assert float((y.double().cpu() - emu).norm() / emu.norm()) < tol
