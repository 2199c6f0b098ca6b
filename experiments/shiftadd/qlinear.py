"""`ShiftAddLinear`: an nn.Linear replacement that stores packed binary planes + APoT scales.

On CUDA, batches of up to `MAX_LUT_ROWS` rows (decode) run through a LUT-GEMV: with
`kernel="triton"` the 4-input-table Triton kernel when a row tile shares one scale row (the Lat.
layout), else the paper's 8-input-table one; with `kernel="cuda"` the CUDA 4-input-table kernel
(shared-memory tables, built by nvcc on first use, 2-3x faster: bench/shiftadd). On the CPU
they run through the PyTorch reference (the same table build, lookups and scaling). Longer
inputs (prompt processing, perplexity windows) use the dequantized weight, which is the same
linear map (the tests check both paths agree); it is built once from the packed format and cached.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MAX_LUT_ROWS = 16
LUT4_BLOCK_N = 256  # the Triton 4-input-table kernel's row tile


class ShiftAddLinear(nn.Module):
    def __init__(
        self, planes, codes, col_group: int, row_group: int, bias=None, dtype=None,
        kernel: str = "triton",
    ):  # fmt: skip
        super().__init__()
        q, kw, n = planes.shape
        self.in_features, self.out_features, self.bits = kw * 32, n, q
        self.col_group, self.row_group = col_group, row_group
        self.register_buffer("planes", planes.to(torch.int32).contiguous())
        self.register_buffer("codes", codes.to(torch.int32).contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.dtype = dtype or torch.float32
        self.lut_rows = MAX_LUT_ROWS  # 0 disables the LUT path (dequantized weight always)
        self.kernel = kernel
        self._dense = None

    def dequantized(self) -> torch.Tensor:
        from celine.kernels.shiftadd_format import dequantize

        if self._dense is None or self._dense.device != self.planes.device:
            w = dequantize(self.planes, self.codes, self.col_group, self.row_group)
            self._dense = w.to(self.dtype)
        return self._dense

    def packed_bytes(self) -> int:
        from celine.kernels.shiftadd_format import packed_bytes

        n, k = self.out_features, self.in_features
        return packed_bytes(n, k, self.bits, self.col_group, self.row_group)

    def lut_forward(self, x2d: torch.Tensor) -> torch.Tensor:
        args = (self.planes, self.codes, self.col_group, self.row_group)
        if x2d.is_cuda and self.kernel == "cuda":
            from celine.kernels.lut4_cuda import lut4_gemv_cuda

            return lut4_gemv_cuda(x2d, *args)
        if x2d.is_cuda and self.row_group % LUT4_BLOCK_N == 0:
            from celine.kernels.lut4_gemv import lut4_gemv

            return lut4_gemv(x2d, *args, block_n=LUT4_BLOCK_N)
        if x2d.is_cuda:
            from celine.kernels.lut_gemv import lut_gemv

            return lut_gemv(x2d, *args)
        from celine.kernels.lut_gemv_reference import lut_gemv_reference

        return lut_gemv_reference(x2d, *args).to(x2d.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2d = x.reshape(-1, self.in_features)
        if 0 < x2d.shape[0] <= self.lut_rows:
            y = self.lut_forward(x2d)
            if self.bias is not None:
                y = y + self.bias
            return y.reshape(*x.shape[:-1], self.out_features)
        return F.linear(x, self.dequantized().to(x.dtype), self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bits={self.bits}, col_group={self.col_group}, row_group={self.row_group}"
        )
