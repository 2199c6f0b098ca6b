"""Input checks shared by every GEMV over the ShiftAddLLM packed format (`shiftadd_format.py`).

The kernels index raw pointers, so an input they do not expect gives a silently wrong answer,
not an error: planes that are not contiguous int32 `[q, K/32, N]`, codes with too few row groups
or the wrong number of bits, `row_group=0`, a `col_group` that is not a multiple of 8. Every
launcher calls `check_gemv_inputs` first; each kernel adds its own limits (`require`).
"""

from __future__ import annotations

import torch


class KernelInputError(ValueError):
    """An input a GEMV kernel cannot compute with; the message names the argument."""


def require(ok: bool, kernel: str, what: str) -> None:
    if not ok:
        raise KernelInputError(f"{kernel}: {what}")


def check_gemv_inputs(
    kernel: str,
    x: torch.Tensor,
    planes: torch.Tensor,
    codes: torch.Tensor,
    col_group: int,
    row_group: int,
    bits: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8),
) -> tuple[int, int, int, int]:
    """Validate one GEMV call; returns (M, N, K, q). `x [M, K]` floating; `planes` contiguous
    int32 `[q, K/32, N]`; `codes` contiguous int32 `[ceil(K/col_group), ceil(N/row_group), q]`;
    all on one device."""
    require(x.dim() == 2, kernel, f"x must be 2-D [M, K], got shape {tuple(x.shape)}")
    require(x.is_floating_point(), kernel, f"x must be floating point, got {x.dtype}")
    require(planes.dim() == 3, kernel, f"planes must be [q, K/32, N], got {tuple(planes.shape)}")
    require(planes.dtype == torch.int32, kernel, f"planes must be int32, got {planes.dtype}")
    require(planes.is_contiguous(), kernel, "planes must be contiguous (call .contiguous())")
    require(codes.dim() == 3, kernel, f"codes must be [K/cg, N/rg, q], got {tuple(codes.shape)}")
    require(codes.dtype == torch.int32, kernel, f"codes must be int32, got {codes.dtype}")
    require(codes.is_contiguous(), kernel, "codes must be contiguous (call .contiguous())")
    q, kw, n = planes.shape
    m, k = x.shape
    require(q in bits, kernel, f"bits q={q} not supported (allowed: {list(bits)})")
    require(m > 0 and n > 0 and kw > 0, kernel, f"empty input: M={m}, N={n}, K/32={kw}")
    require(k == kw * 32, kernel, f"x has K={k} columns but the planes hold {kw * 32}")
    require(
        isinstance(col_group, int) and col_group > 0 and col_group % 8 == 0,
        kernel,
        f"col_group={col_group} must be a positive multiple of 8 (one scale per 8-column block)",
    )
    require(
        isinstance(row_group, int) and row_group > 0,
        kernel,
        f"row_group={row_group} must be a positive integer",
    )
    want = (-(-k // col_group), -(-n // row_group), q)
    require(
        tuple(codes.shape) == want,
        kernel,
        f"codes have shape {tuple(codes.shape)}, need {want} = (ceil(K/col_group), "
        f"ceil(N/row_group), q) for K={k}, N={n}, col_group={col_group}, row_group={row_group}",
    )
    require(
        x.device == planes.device == codes.device,
        kernel,
        f"x, planes and codes must share a device ({x.device}, {planes.device}, {codes.device})",
    )
    return m, n, k, q
