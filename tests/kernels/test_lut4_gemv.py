"""The 4-input-table GEMVs (Triton `lut4_gemv`, CUDA `lut4_gemv_cuda`)
against `x @ W_dequant.T` on fresh random shapes and formats.

The Triton kernel runs natively on a GPU or on the CPU with TRITON_INTERPRET=1 (`make test`
runs the `triton` marker that way); the CUDA kernels need nvcc and a GPU (`gpu` marker).
"""

import importlib.util
from pathlib import Path

import pytest
import torch

_spec = importlib.util.spec_from_file_location(
    "_lut_tests", Path(__file__).with_name("test_lut_gemv.py")
)
_lut_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_lut_tests)
random_format = _lut_tests.random_format


def _rel_err(y, x, w):
    ref = x.double() @ w.double().T
    return float((y.double().cpu() - ref).norm() / ref.norm())


@pytest.mark.triton
@pytest.mark.parametrize(
    "seed,m,q,n,k,cg,rg,block_n,block_w,split_k",
    [
        (1, 1, 3, 48, 96, 8, 16, 16, 2, 2),  # split-K, 3 row groups, words not a tile multiple
        (2, 2, 2, 40, 128, 8, 40, 8, 1, None),  # batch 2, partial last row tile
        (3, 1, 4, 32, 64, 16, 32, 16, 2, 1),  # 4 bits, 16-column scale groups
    ],
)
def test_triton_lut4_equals_dense_matmul(seed, m, q, n, k, cg, rg, block_n, block_w, split_k):
    from celine.kernels.lut4_gemv import lut4_gemv

    x, planes, codes, w, _ = random_format(m, n, k, q, cg, rg, seed=200 + seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    y = lut4_gemv(
        x.to(device), planes.to(device), codes.to(device), cg, rg,
        block_n=block_n, block_w=block_w, split_k=split_k,
    )  # fmt: skip
    assert y.shape == (m, n)
    assert _rel_err(y, x, w) < 1e-5  # fp32 tables and accumulation


@pytest.mark.triton
def test_triton_lut4_refuses_row_groups_finer_than_its_tile():
    from celine.kernels.lut4_gemv import lut4_gemv

    x, planes, codes, _, _ = random_format(1, 32, 32, 2, 8, 4, seed=7)
    with pytest.raises(ValueError, match="row_group"):
        lut4_gemv(x, planes, codes, 8, 4, block_n=16)


@pytest.mark.gpu
@pytest.mark.parametrize("q", [2, 3, 4])
@pytest.mark.parametrize(
    "shape,row_iters",
    [((1, 2048, 256, 128), 1), ((1, 1540, 96, 1540), 3), ((3, 520, 64, 260), 2)],
)
def test_cuda_lut4_equals_dense_matmul(q, shape, row_iters):
    from celine.kernels.lut4_cuda import lut4_gemv_cuda

    m, n, k, rg = shape
    x, planes, codes, w, _ = random_format(m, n, k, q, 8, rg, seed=q * n + k)
    args = (x.half().cuda(), planes.cuda(), codes.cuda(), 8, rg)
    for words, min_blocks in ((1, 8), (2, 6), (2, 4)):
        # twice: the split-K workspace each call leaves zeroed must serve the next one
        for _ in range(2):
            y = lut4_gemv_cuda(*args, row_iters=row_iters, words=words, min_blocks=min_blocks)
            assert y.dtype == torch.float16 and y.shape == (m, n)
            assert _rel_err(y, x.half().float(), w) < 2e-3


@pytest.mark.gpu
@pytest.mark.parametrize("m", [1, 4, 16])
def test_cuda_lut4_bf16_batches_compile_and_graph(m):
    """bf16 in/out without conversion launches, batch rows sharing a tile's weights through L2
    (blockIdx.x = tile * M + m), and the custom op under torch.compile and in a CUDA graph
    replay: all equal the dense product."""
    from celine.kernels.lut4_cuda import lut4_gemv_cuda

    n, k, rg = 1024, 512, 128
    x, planes, codes, w, _ = random_format(m, n, k, 3, 8, rg, seed=7 + m)
    xb, p, c = x.bfloat16().cuda(), planes.cuda(), codes.cuda()
    ref_in = xb.float().cpu()  # _rel_err takes the reference on the CPU, in float64
    y = lut4_gemv_cuda(xb, p, c, 8, rg)
    assert y.dtype == torch.bfloat16 and y.shape == (m, n)
    assert _rel_err(y, ref_in, w) < 1e-2  # bf16 output rounding
    compiled = torch.compile(lambda a: lut4_gemv_cuda(a, p, c, 8, rg), fullgraph=True)
    assert _rel_err(compiled(xb), ref_in, w) < 1e-2
    static_x = xb.clone()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = lut4_gemv_cuda(static_x, p, c, 8, rg)
    x2, *_ = random_format(m, n, k, 3, 8, rg, seed=99 + m)
    static_x.copy_(x2.bfloat16().cuda())
    for _ in range(2):  # each replay must leave the split-K workspace zeroed for the next
        graph.replay()
        torch.cuda.synchronize()
        assert _rel_err(static_y, static_x.float().cpu(), w) < 1e-2


@pytest.mark.gpu
@pytest.mark.parametrize("seed", [11, 12])
def test_cuda_lut4_fresh_inputs_odd_groups_every_config(seed):
    """Fresh random shapes (not the tuned ones): row groups of 20 rows (many per 512-row tile, so
    the per-tile row-group walk crosses several), N not a multiple of the tile, K not a multiple of
    `words`, batch 2, bf16 and fp16; every compiled (min_blocks, words) pair and 1-3 tiles a block."""
    from celine.kernels.lut4_cuda import lut4_gemv_cuda

    g = torch.Generator().manual_seed(seed)
    n = 4 * int(torch.randint(700, 1300, (1,), generator=g))  # 2800..5196 rows
    k = 32 * int(torch.randint(5, 12, (1,), generator=g)) + 32 * (seed % 2)  # odd word counts too
    x, planes, codes, w, _ = random_format(2, n, k, 3, 8, 20, seed=1000 + seed)
    for dtype in (torch.bfloat16, torch.float16):
        xin = x.to(dtype).cuda()
        ref_in = xin.float().cpu()
        for words, min_blocks in ((1, 8), (2, 6), (2, 4), (1, 4)):
            for row_iters in (1, 3):
                if row_iters == 3 and words == 2:
                    continue  # 3 tiles x 27 groups x 3 planes x 2 words x 4 > the scale buffer
                y = lut4_gemv_cuda(
                    xin, planes.cuda(), codes.cuda(), 8, 20,
                    min_blocks=min_blocks, row_iters=row_iters, words=words,
                )  # fmt: skip
                assert torch.isfinite(y).all()  # every output written
                assert _rel_err(y, ref_in, w) < 1e-2  # output rounding in 16 bits
