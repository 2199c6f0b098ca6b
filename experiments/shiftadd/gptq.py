"""The OPTQ/GPTQ loop shared by GPTQ, ShiftAddLLM-Lat and ShiftAddLLM-Acc.

Columns are quantized one at a time; the error of each column, divided by the diagonal of the
Cholesky factor of the damped inverse Hessian, is propagated to the columns not yet quantized
(lazy batches of `blocksize` columns). What "quantize a column" means is the quantizer's job:
`start(col, slab)` is called when column `col` opens a new span of `quantizer.span` columns
(with the span's current, already error-compensated weights), then `column(col, w)` returns the
quantized column. `col` is always the column's index in the ORIGINAL order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


class ColumnQuantizer(Protocol):
    span: int

    def start(self, cols: torch.Tensor, slab: torch.Tensor) -> None: ...
    def column(self, col: int, w: torch.Tensor) -> torch.Tensor: ...


@dataclass
class GPTQOutput:
    dequant: torch.Tensor  # [N, K] in the original column order
    loss: float  # sum (w - q)^2 / d^2 / 2, the reference's logged loss


def prepare_hessian(h: torch.Tensor, w: torch.Tensor, percdamp: float):
    """Dead inputs (H_ii = 0) get weight 0 and H_ii = 1; then H += percdamp * mean(diag H) I."""
    h = h.clone().double()
    w = w.clone().double()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += percdamp * torch.mean(torch.diag(h)) * torch.eye(h.shape[0], dtype=h.dtype)
    return h, w


def inverse_cholesky(h: torch.Tensor) -> torch.Tensor:
    """Upper Cholesky factor of H^-1."""
    hinv = torch.cholesky_inverse(torch.linalg.cholesky(h))
    return torch.linalg.cholesky(hinv, upper=True)


def column_order(h: torch.Tensor, act_order: bool, block: int = 1) -> torch.Tensor:
    """Act-order: columns (or whole blocks of `block` columns) by diag(H), descending."""
    k = h.shape[0]
    if not act_order:
        return torch.arange(k)
    if block == 1:
        return torch.argsort(torch.diag(h), descending=True)
    sums = torch.diag(h).reshape(k // block, block).sum(-1)
    blocks = torch.argsort(sums, descending=True)
    return (blocks[:, None] * block + torch.arange(block)).reshape(-1)


def gptq(
    w: torch.Tensor,
    h: torch.Tensor,
    quantizer: ColumnQuantizer,
    blocksize: int = 128,
    percdamp: float = 0.01,
    act_order: bool = False,
) -> GPTQOutput:
    """Quantize `w [N, K]` against the input Hessian `h [K, K]` (any positive scale)."""
    n, k = w.shape
    span = quantizer.span
    if blocksize % span:
        raise ValueError(f"blocksize={blocksize} must be a multiple of the quantizer span {span}")
    h, w = prepare_hessian(h, w, percdamp)
    perm = column_order(h, act_order, span)
    w, h = w[:, perm], h[perm][:, perm]
    hinv = inverse_cholesky(h)
    q = torch.zeros_like(w)
    loss = 0.0
    for i1 in range(0, k, blocksize):
        i2 = min(i1 + blocksize, k)
        w1, err1, hinv1 = (
            w[:, i1:i2].clone(),
            torch.zeros(n, i2 - i1, dtype=w.dtype),
            hinv[i1:i2, i1:i2],
        )
        for i in range(i2 - i1):
            if (i1 + i) % span == 0:
                quantizer.start(perm[i1 + i : i1 + i + span], w1[:, i : i + span].float())
            col = w1[:, i]
            d = hinv1[i, i]
            qc = quantizer.column(int(perm[i1 + i]), col.float()).double()
            q[:, i1 + i] = qc
            loss += float(((col - qc) ** 2).sum() / d**2 / 2)
            e = (col - qc) / d
            w1[:, i:] -= e[:, None] * hinv1[i, i:][None, :]
            err1[:, i] = e
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    inv = torch.argsort(perm)
    return GPTQOutput(q[:, inv].float(), loss)
