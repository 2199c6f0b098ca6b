"""The token layout of one lookahead step: which new token sees which, at which position.

One forward pass carries, after the input token (the last committed token, position p):

* the lookahead branch: row 0 holds C-1 tokens (block 0 = [input, row 0], causal inside), and
  rows 1..f hold C tokens each. Row r >= 1, column i sits at position p + r + i and sees block 0
  up to column i plus column i of rows 1..r, so every column is a diagonal Jacobi trajectory of
  contiguous positions;
* the verification branch: G candidates of N-1 tokens at positions p+1..p+N-1, each seeing the
  committed prefix, the input token and its own earlier tokens only.

Everything sees the committed prefix and the input token; nothing else is visible. `StepLayout`
holds that pattern for the tokens after the input (the "tail"); `decoding.py` adds the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepLayout:
    columns: int  # C: block-0 width including the input token (W once the window is full)
    rows: int  # f: filled rows after row 0 (N-2 once the window is full)
    candidates: int  # G: verification candidates (padded)
    cand_len: int  # N-1 tokens per candidate

    @property
    def row0_len(self) -> int:
        return self.columns - 1

    @property
    def lookahead_len(self) -> int:
        """Lookahead tokens after the input: (C-1) + f*C; (N-1)*W - 1 when full."""
        return self.row0_len + self.rows * self.columns

    @property
    def tail_len(self) -> int:
        return self.lookahead_len + self.candidates * self.cand_len

    def row_slice(self, r: int) -> slice:
        """Tail indices of lookahead row r (row 0 has C-1 tokens, the others C)."""
        if r == 0:
            return slice(0, self.row0_len)
        start = self.row0_len + (r - 1) * self.columns
        return slice(start, start + self.columns)

    def cand_slice(self, g: int) -> slice:
        start = self.lookahead_len + g * self.cand_len
        return slice(start, start + self.cand_len)

    def offsets_and_mask(self) -> tuple[np.ndarray, np.ndarray]:
        """(position offsets from p, shape (T,)), (tail-to-tail visibility, bool (T, T)).

        The input token (offset 0) and the prefix are visible to every tail token and are not
        part of these arrays."""
        t = self.tail_len
        offset = np.zeros(t, dtype=np.int64)
        see = np.zeros((t, t), dtype=bool)
        r0 = self.row_slice(0)
        for j in range(self.row0_len):  # block 0, causal
            offset[r0.start + j] = 1 + j
            see[r0.start + j, r0.start : r0.start + j + 1] = True
        for r in range(1, self.rows + 1):
            for i in range(self.columns):
                q = self.row_slice(r).start + i
                offset[q] = r + i
                see[q, r0.start : r0.start + i] = True  # block 0 columns 1..i
                for s in range(1, r + 1):  # column i of rows 1..r
                    see[q, self.row_slice(s).start + i] = True
        for g in range(self.candidates):
            cs = self.cand_slice(g)
            for j in range(self.cand_len):
                offset[cs.start + j] = 1 + j
                see[cs.start + j, cs.start : cs.start + j + 1] = True
        return offset, see
