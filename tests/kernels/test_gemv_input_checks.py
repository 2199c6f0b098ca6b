"""Every GEMV launcher refuses the inputs it cannot compute with, with an error naming them.

The kernels index raw pointers: before these checks, too few row groups, the wrong number of
bits, row_group=0 or non-contiguous planes gave relative errors of 1 to 1e17 instead of an
error. The reference and the CUDA kernel's host-side checks run on the CPU; the Triton kernels
are checked under TRITON_INTERPRET=1 (`triton` marker) or on a GPU.
"""

import importlib.util
from pathlib import Path

import pytest
import torch

from celine.kernels.gemv_checks import KernelInputError, check_gemv_inputs
from celine.kernels.lut_gemv_reference import lut_gemv_reference

_spec = importlib.util.spec_from_file_location(
    "_lut_tests", Path(__file__).with_name("test_lut_gemv.py")
)
_lut_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_lut_tests)
random_format = _lut_tests.random_format

N, K, Q, CG, RG = 32, 64, 3, 8, 8


def good():
    x, planes, codes, _, _ = random_format(1, N, K, Q, CG, RG, seed=11)
    return x, planes, codes, CG, RG


def bad_cases():
    """(label, args, message fragment): one refused input per case."""
    x, planes, codes, cg, rg = good()
    return [
        ("x 1-D", (x[0], planes, codes, cg, rg), "2-D"),
        ("x integer", (x.to(torch.int32), planes, codes, cg, rg), "floating"),
        ("x wrong K", (x[:, :32], planes, codes, cg, rg), "K=32"),
        ("planes int64", (x, planes.long(), codes, cg, rg), "int32"),
        ("planes 2-D", (x, planes[0], codes, cg, rg), "planes must be"),
        (
            "planes not contiguous",
            (x, planes.transpose(0, 2).contiguous().transpose(0, 2), codes, cg, rg),
            "contiguous",
        ),  # fmt: skip
        (
            "codes not contiguous",
            (x, planes, codes.transpose(0, 1).contiguous().transpose(0, 1), cg, rg),
            "contiguous",
        ),  # fmt: skip
        ("codes int64", (x, planes, codes.long(), cg, rg), "int32"),
        ("too few row groups", (x, planes, codes[:, :2].contiguous(), cg, rg), "row_group"),
        ("wrong number of bits", (x, planes, codes[..., :2].contiguous(), cg, rg), "codes have"),
        ("row_group 0", (x, planes, codes, cg, 0), "row_group=0"),
        ("row_group negative", (x, planes, codes, cg, -8), "row_group=-8"),
        ("col_group not a multiple of 8", (x, planes, codes, 12, rg), "col_group=12"),
        ("col_group 0", (x, planes, codes, 0, rg), "col_group=0"),
        (
            "bits 9",
            (
                x,
                torch.zeros(9, K // 32, N, dtype=torch.int32),
                torch.zeros(K // CG, N // RG, 9, dtype=torch.int32),
                cg,
                rg,
            ),
            "q=9",
        ),  # fmt: skip
    ]


CASES = bad_cases()


@pytest.mark.parametrize("label,args,match", CASES, ids=[c[0] for c in CASES])
def test_the_reference_refuses(label, args, match):
    with pytest.raises(KernelInputError, match=match):
        lut_gemv_reference(*args)


def test_good_inputs_pass_the_checks_and_the_reference_is_right():
    x, planes, codes, cg, rg = good()
    assert check_gemv_inputs("t", x, planes, codes, cg, rg) == (1, N, K, Q)
    w = _lut_tests.dequantize(planes, codes, cg, rg)
    assert torch.allclose(lut_gemv_reference(x, planes, codes, cg, rg), x @ w.T, atol=1e-4)


CUDA_ONLY = [
    ("N not a multiple of 4", dict(n=30, rg=10), "N=30"),
    ("row_group not a multiple of 4", dict(n=48, rg=6), "row_group=6"),
    ("bits 1", dict(q=1), "q=1"),
    ("words 3", dict(words=3), "words=3"),
    ("row_iters 0", dict(row_iters=0), "row_iters=0"),
    ("min_blocks 0", dict(min_blocks=0), "min_blocks=0"),
    ("scales overflow shared memory", dict(n=4096, rg=4, q=4, words=2), "shared buffer"),
]


@pytest.mark.parametrize("label,kw,match", CUDA_ONLY, ids=[c[0] for c in CUDA_ONLY])
def test_the_cuda_kernel_refuses_on_the_host(label, kw, match):
    # the checks run before any device work, so they are testable without a GPU
    from celine.kernels.lut4_cuda import lut4_gemv_cuda

    n, q, rg = kw.get("n", N), kw.get("q", Q), kw.get("rg", RG)
    x, planes, codes, _, _ = random_format(1, n, K, q, CG, rg, seed=12)
    knobs = {k: kw[k] for k in ("words", "row_iters", "min_blocks") if k in kw}
    with pytest.raises(KernelInputError, match=match):
        lut4_gemv_cuda(x, planes, codes, CG, rg, **knobs)


@pytest.mark.parametrize("label,args,match", CASES, ids=[c[0] for c in CASES])
def test_the_cuda_kernel_refuses_every_format_error(label, args, match):
    from celine.kernels.lut4_cuda import lut4_gemv_cuda

    with pytest.raises(KernelInputError, match=match if label != "bits 9" else "q=9"):
        lut4_gemv_cuda(*args)


def test_the_cuda_kernel_refuses_cpu_tensors_last():
    from celine.kernels.lut4_cuda import lut4_gemv_cuda

    with pytest.raises(KernelInputError, match="CUDA tensors only"):
        lut4_gemv_cuda(*good())


@pytest.mark.triton
@pytest.mark.parametrize("kernel", ["lut_gemv", "lut4_gemv", "bitserial_gemv"])
@pytest.mark.parametrize("label,args,match", CASES, ids=[c[0] for c in CASES])
def test_the_triton_kernels_refuse(kernel, label, args, match):
    import importlib

    fn = getattr(importlib.import_module(f"celine.kernels.{kernel}"), kernel)
    with pytest.raises(KernelInputError, match=match):
        fn(*args)
