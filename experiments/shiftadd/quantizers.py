"""Column quantizers plugged into the GPTQ loop (`gptq.py`), one per method."""

from __future__ import annotations

import torch

from celine.experiments.shiftadd.bcq import nearest_dequant, quantize_bcq
from celine.experiments.shiftadd.uniform import uniform_params, uniform_quantize


class IdentityQuantizer:
    """Returns every column unchanged (a test oracle: GPTQ must then return W)."""

    span = 1

    def start(self, cols, slab) -> None:
        pass

    def column(self, col: int, w: torch.Tensor) -> torch.Tensor:
        return w


class UniformQuantizer:
    """GPTQ's own grid: min-max per row, fitted once on the whole weight (groupsize -1) or on
    each span of `groupsize` columns when it opens (with the compensated weights)."""

    def __init__(self, w: torch.Tensor, bits: int, groupsize: int = -1, sym: bool = False):
        self.bits, self.sym = bits, sym
        self.span = groupsize if groupsize > 0 else 1
        self.per_group = groupsize > 0
        self.scale, self.zero = uniform_params(w.float(), bits, sym)

    def start(self, cols, slab) -> None:
        if self.per_group:
            self.scale, self.zero = uniform_params(slab, self.bits, self.sym)

    def column(self, col: int, w: torch.Tensor) -> torch.Tensor:
        return uniform_quantize(w[:, None], self.scale, self.zero, self.bits)[:, 0]


def lat_row_group(n: int, groupsize: int) -> int:
    """Rows per scale of the block-wise (Lat.) layout: N/8 for groupsize -1, else groupsize/8
    (so every scale covers 8 columns x row_group rows = N or groupsize weights)."""
    return n // 8 if groupsize <= 0 else groupsize // 8


class BlockwiseBCQ:
    """ShiftAddLLM (Lat.): one set of q APoT scales per 8-column x row_group tile, fitted on the
    tile's compensated weights when its first column comes up; then every column of the tile
    gets the nearest level under those fixed scales. Records what the packed format stores."""

    span = 8

    def __init__(self, n: int, k: int, bits: int, groupsize: int, rounds: int, apot_terms: int):
        self.bits, self.rounds, self.apot_terms = bits, rounds, apot_terms
        self.row_group = lat_row_group(n, groupsize)
        self.n_groups = n // self.row_group
        self.alpha = torch.zeros(k // 8, self.n_groups, bits)
        self.term_signs = torch.zeros(k // 8, self.n_groups, bits, max(apot_terms, 1))
        self.term_exps = torch.zeros_like(self.term_signs)
        self.signs = torch.ones(bits, n, k)
        self._current = None

    def start(self, cols, slab) -> None:
        kb = int(cols[0]) // 8
        tiles = slab.reshape(self.n_groups, self.row_group * 8)  # row-major N x 8 slab
        res = quantize_bcq(tiles, self.bits, self.rounds, self.apot_terms)
        self.alpha[kb] = res.alpha
        if res.term_signs is not None:
            self.term_signs[kb], self.term_exps[kb] = res.term_signs, res.term_exps
        self._current = res.alpha

    def column(self, col: int, w: torch.Tensor) -> torch.Tensor:
        q, signs = nearest_dequant(w.reshape(self.n_groups, self.row_group), self._current)
        self.signs[:, :, col] = signs.reshape(-1, self.bits).T
        return q.reshape(-1)


class ColumnwiseBCQ:
    """ShiftAddLLM (Acc.): every column (split into groups of `groupsize` rows, or whole) gets
    its own q APoT scales, fitted after the compensation from the columns before it."""

    span = 1

    def __init__(self, n: int, bits: int, groupsize: int, rounds: int, apot_terms: int):
        self.bits, self.rounds, self.apot_terms = bits, rounds, apot_terms
        self.rows = n if groupsize <= 0 else groupsize

    def start(self, cols, slab) -> None:
        pass

    def column(self, col: int, w: torch.Tensor) -> torch.Tensor:
        res = quantize_bcq(w.reshape(-1, self.rows), self.bits, self.rounds, self.apot_terms)
        return res.dequant.reshape(-1)
