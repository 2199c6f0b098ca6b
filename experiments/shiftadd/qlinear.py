"""`ShiftAddLinear`: an nn.Linear replacement that stores packed binary planes + APoT scales.

On CUDA, batches of up to `MAX_LUT_ROWS` rows (decode) run through a LUT-GEMV: with
`kernel="triton"` the 4-input-table Triton kernel when a row tile shares one scale row (the Lat.
layout), else the paper's 8-input-table one; with `kernel="cuda"` the CUDA 4-input-table kernel
(shared-memory tables, built by nvcc on first use, 2-3x faster: bench/shiftadd), or the Triton
one with a warning when the shape is outside what the CUDA kernel takes. On the CPU they run
through the PyTorch reference (the same table build, lookups and scaling).

In-features that are not a multiple of 32 are stored padded: the planes hold `ceil(K/32)` words
(the padding bits and their zero scales multiply zero-padded activations), so every K that is a
multiple of 8 packs (`pad_to_words`).

Longer inputs (prompt processing, perplexity windows) use the dequantized weight, the same linear
map (the tests check both paths agree). Dense copies live in ONE cache shared by all layers,
bounded by `DENSE_CACHE_BYTES` (least recently used first out; `set_dense_cache_bytes(0)`
disables it), so a quantized model never quietly holds its dense weights again: at most that
many bytes are added beyond the packed format, whatever the model size.
"""

from __future__ import annotations

import itertools
import warnings
import weakref
from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

MAX_LUT_ROWS = 16
LUT4_BLOCK_N = 256  # the Triton 4-input-table kernel's row tile
# 64 MB: all the dense weights of the tiny models (tiny_llama: 7 MB in fp32), a few layers of a
# 7B model; set_dense_cache_bytes changes it (0: dequantize on every long call)
DENSE_CACHE_BYTES = 64 * 2**20


class _DenseCache:
    """Least-recently-used dense weights of ShiftAddLinear layers, at most `budget` bytes."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.entries: OrderedDict[int, torch.Tensor] = OrderedDict()

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.entries.values())

    def get(self, key: int):
        t = self.entries.get(key)
        if t is not None:
            self.entries.move_to_end(key)
        return t

    def put(self, key: int, t: torch.Tensor) -> None:
        size = t.numel() * t.element_size()
        if size > self.budget:
            return
        self.entries[key] = t
        self.entries.move_to_end(key)
        while self.nbytes > self.budget:
            self.entries.popitem(last=False)

    def drop(self, key: int) -> None:
        self.entries.pop(key, None)


DENSE_CACHE = _DenseCache(DENSE_CACHE_BYTES)
_ids = itertools.count()


def set_dense_cache_bytes(budget: int) -> None:
    """Bound (in bytes) of the dense weights kept across all ShiftAddLinear layers."""
    DENSE_CACHE.budget = int(budget)
    while DENSE_CACHE.entries and DENSE_CACHE.nbytes > DENSE_CACHE.budget:
        DENSE_CACHE.entries.popitem(last=False)


def pad_to_words(signs: torch.Tensor, alpha_codes: torch.Tensor, col_group: int):
    """Pad `signs [q, N, K]` to K' = ceil(K/32)*32 columns (+1 bits) and `codes [K/cg, Ng, q]`
    to K'/cg column groups (code 0 = scale 0), so the padding contributes nothing."""
    q, n, k = signs.shape
    k_pad = -(-k // 32) * 32
    if k_pad == k:
        return signs, alpha_codes
    if k % col_group or k_pad % col_group:
        raise ValueError(f"K={k} must be a multiple of col_group={col_group} to pad to {k_pad}")
    signs = torch.cat([signs, signs.new_ones(q, n, k_pad - k)], -1)
    extra = alpha_codes.new_zeros(k_pad // col_group - alpha_codes.shape[0], *alpha_codes.shape[1:])
    return signs, torch.cat([alpha_codes, extra], 0)


class ShiftAddLinear(nn.Module):
    def __init__(
        self, planes, codes, col_group: int, row_group: int, bias=None, dtype=None,
        kernel: str = "triton", in_features: int | None = None,
    ):  # fmt: skip
        super().__init__()
        q, kw, n = planes.shape
        self.in_features = kw * 32 if in_features is None else in_features
        if not kw * 32 - 32 < self.in_features <= kw * 32:
            raise ValueError(f"in_features={in_features} does not fit {kw} words of 32 columns")
        self.out_features, self.bits = n, q
        self.col_group, self.row_group = col_group, row_group
        self.register_buffer("planes", planes.to(torch.int32).contiguous())
        self.register_buffer("codes", codes.to(torch.int32).contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.dtype = dtype or torch.float32
        self.lut_rows = MAX_LUT_ROWS  # 0 disables the LUT path (dequantized weight always)
        self.kernel = kernel
        self._cache_key = next(_ids)
        weakref.finalize(self, DENSE_CACHE.drop, self._cache_key)

    @property
    def padded_in_features(self) -> int:
        return self.planes.shape[1] * 32

    def dequantized(self) -> torch.Tensor:
        """The dense `[N, K]` weight in `self.dtype`, from the shared bounded cache."""
        from celine.kernels.shiftadd_format import dequantize

        w = DENSE_CACHE.get(self._cache_key)
        if w is None or w.device != self.planes.device:
            w = dequantize(self.planes, self.codes, self.col_group, self.row_group)
            w = w[:, : self.in_features].to(self.dtype).contiguous()
            DENSE_CACHE.put(self._cache_key, w)
        return w

    def packed_bytes(self) -> int:
        from celine.kernels.shiftadd_format import packed_bytes

        n, k = self.out_features, self.padded_in_features
        return packed_bytes(n, k, self.bits, self.col_group, self.row_group)

    def _kernel_for(self, x2d: torch.Tensor):
        """The GEMV this input runs through: (function, extra kwargs)."""
        if not x2d.is_cuda:
            from celine.kernels.lut_gemv_reference import lut_gemv_reference

            return lut_gemv_reference
        if self.kernel == "cuda":
            from celine.kernels.gemv_checks import KernelInputError
            from celine.kernels.lut4_cuda import (
                check_lut4_cuda_inputs,
                lut4_gemv_cuda,
                tile_for,
            )

            try:
                tile = tile_for(x2d.shape[0], self.planes, self.codes, self.row_group)
                check_lut4_cuda_inputs(
                    x2d, self.planes, self.codes, self.col_group, self.row_group, *tile
                )
                return lut4_gemv_cuda
            except KernelInputError as err:
                warnings.warn(f"{err}; using the Triton LUT kernel for this layer", stacklevel=3)
                self.kernel = "triton"  # decided once per layer
        if self.row_group % LUT4_BLOCK_N == 0:
            from celine.kernels.lut4_gemv import lut4_gemv

            return lambda *a: lut4_gemv(*a, block_n=LUT4_BLOCK_N)
        from celine.kernels.lut_gemv import lut_gemv

        return lut_gemv

    def lut_forward(self, x2d: torch.Tensor) -> torch.Tensor:
        pad = self.padded_in_features - self.in_features
        if pad:
            x2d = F.pad(x2d, (0, pad))
        # resolved once per device kind, so torch.compile traces straight into the kernel call
        # (the custom op) instead of the selection logic and its warnings
        key = (x2d.device.type, self.kernel)
        cached = getattr(self, "_resolved", None)
        if cached is None or cached[0] != key:
            self._resolved = cached = (key, self._kernel_for(x2d))
            if self.kernel != key[1]:  # _kernel_for fell back (CUDA kernel refused the shape)
                self._resolved = cached = ((x2d.device.type, self.kernel), cached[1])
        fn = cached[1]
        return fn(x2d, self.planes, self.codes, self.col_group, self.row_group).to(x2d.dtype)

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
