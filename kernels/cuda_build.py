"""Building the CUDA kernels: nvcc through `torch.utils.cpp_extension.load_inline` on first use
(GPU machines only; the CPU and CI never build them)."""

from __future__ import annotations

CUDA_FLAGS = ["-O3", "--use_fast_math", "-gencode=arch=compute_90,code=sm_90"]  # H100 / H200


def build_extension(
    name: str, cpp_src: str, cuda_src: str, function: str, extra_flags=(), verbose: bool = False
):
    """The compiled module exposing `function`, cached by torch under `name` and the sources."""
    from torch.utils.cpp_extension import load_inline

    return load_inline(
        name=name,
        cpp_sources=cpp_src,
        cuda_sources=cuda_src,
        functions=[function],
        extra_cuda_cflags=[*CUDA_FLAGS, *extra_flags],
        verbose=verbose,
    )
