"""PyTorch reference of the ShiftAddLLM LUT-GEMV: the same computation as `lut_gemv.py`.

For every 8 consecutive activations it builds a table of the 256 signed sums
`T[key] = sum_j (2 * bit_j(key) - 1) * x_j`, reads each byte of the packed binary planes as a
key, and scales the looked-up sum by the APoT scale of that 8-column block, row group and bit:

    y[m, n] = sum_b sum_kb alpha[kb, n, b] * T[m, kb, key_b(n, kb)]

Memory grows as M x K/8 x 256, so this is for small batches (decode) and for checking the kernel;
`dequantize` + `x @ W.T` is the same function for long prompts.
"""

from __future__ import annotations

import torch

from celine.kernels.gemv_checks import check_gemv_inputs
from celine.kernels.shiftadd_format import decode_apot


def key_signs(device=None) -> torch.Tensor:
    """`[256, 8]` float: row `key` holds (2 * bit_j(key) - 1) for j = 0..7."""
    keys = torch.arange(256, device=device)
    bits = (keys[:, None] >> torch.arange(8, device=device)) & 1
    return 2.0 * bits.float() - 1.0


def build_luts(x: torch.Tensor) -> torch.Tensor:
    """`x [M, K]` -> tables `[M, K/8, 256]` in float32."""
    m, k = x.shape
    blocks = x.float().reshape(m, k // 8, 8)
    return blocks @ key_signs(x.device).T


def lut_gemv_reference(
    x: torch.Tensor,
    planes: torch.Tensor,
    codes: torch.Tensor,
    col_group: int,
    row_group: int,
) -> torch.Tensor:
    """`x [M, K]`, planes int32 `[q, K/32, N]`, codes int32 `[K/col_group, N/row_group, q]`
    -> `y [M, N]` float32 (fp32 tables and accumulation)."""
    m, n, k, q = check_gemv_inputs("lut_gemv_reference", x, planes, codes, col_group, row_group)
    luts = build_luts(x)  # [M, KB, 256]
    kb_count = k // 8
    shifts = 8 * torch.arange(4, device=planes.device)
    keys = (planes.transpose(1, 2).to(torch.int64)[..., None] >> shifts) & 255  # [q, N, K/32, 4]
    keys = keys.reshape(q, n, kb_count)  # key of block kb = byte kb % 4 of word kb // 4
    alpha = decode_apot(codes)  # [Kg, Ng, q]
    kb_idx = torch.arange(kb_count, device=x.device) * 8 // col_group
    n_idx = torch.arange(n, device=x.device) // row_group
    scale = alpha[kb_idx][:, n_idx]  # [KB, N, q]
    y = torch.zeros(m, n, dtype=torch.float32, device=x.device)
    kb_range = torch.arange(kb_count, device=x.device)
    for b in range(q):
        looked = luts[:, kb_range[None, :], keys[b]]  # [M, N, KB]
        y += (looked * scale[:, :, b].T[None]).sum(-1)
    return y
