"""L4 (the mask and positions of one step) and L6 (the n-gram pool), exactly."""

import itertools

import numpy as np
import pytest

from celine.experiments.lookahead.layout import StepLayout
from celine.experiments.lookahead.pool import NGramPool


def test_small_layout_matches_the_papers_pattern():
    # W=3, N=4 (rows 1..2 filled), G=2: row 0 has 2 tokens, rows 1-2 three, candidates 3 each
    lay = StepLayout(columns=3, rows=2, candidates=2, cand_len=3)
    off, see = lay.offsets_and_mask()
    assert lay.lookahead_len == 2 + 2 * 3 and lay.tail_len == 8 + 6
    # positions: row 0 column j at p+1+j; row r column i at p+r+i; candidate token j at p+1+j
    assert off.tolist() == [1, 2] + [1, 2, 3] + [2, 3, 4] + [1, 2, 3] * 2
    r0, r1, r2 = (lay.row_slice(r) for r in range(3))
    # row 2, column 1 sees block 0 up to column 1 (row0[0]) and column 1 of rows 1 and 2
    q = r2.start + 1
    assert set(np.flatnonzero(see[q])) == {r0.start, r1.start + 1, r2.start + 1}
    # row 1, column 0 sees only itself (plus the input token, implicit)
    assert set(np.flatnonzero(see[r1.start])) == {r1.start}
    # candidates see only their own earlier tokens; nothing else sees them
    for g in range(2):
        cs = lay.cand_slice(g)
        for j in range(3):
            assert set(np.flatnonzero(see[cs.start + j])) == set(range(cs.start, cs.start + j + 1))
        others = [i for i in range(lay.tail_len) if not cs.start <= i < cs.stop]
        assert not see[np.ix_(others, range(cs.start, cs.stop))].any()


@pytest.mark.parametrize(
    "columns,rows,cands,cand_len",
    [(1, 0, 0, 1), (4, 0, 3, 1), (5, 3, 2, 4), (7, 1, 1, 2), (2, 5, 0, 6)],
)
def test_every_tail_token_sees_one_token_at_each_earlier_position(columns, rows, cands, cand_len):
    """The property the mask exists for: a query at position p+k sees exactly one token at each
    of p+1..p+k-1 (the input token covers p), i.e. a complete causal context, and itself."""
    lay = StepLayout(columns, rows, cands, cand_len)
    off, see = lay.offsets_and_mask()
    for q in range(lay.tail_len):
        seen = sorted(off[np.flatnonzero(see[q])].tolist())
        assert seen == list(range(1, off[q] + 1)), (q, seen)
        assert see[q, q]


def test_pool_keeps_the_most_recent_g_tuples_per_key_in_lru_order():
    pool = NGramPool(capacity=2, ngram=3)
    pool.add(5, (1, 2))
    pool.add(5, (3, 4))
    pool.add(5, (1, 2))  # duplicate: moves to the most recent end
    assert pool.candidates(5) == [(3, 4), (1, 2)]
    pool.add(5, (7, 8))  # full: the oldest, (3, 4), goes
    assert pool.candidates(5) == [(1, 2), (7, 8)]
    assert pool.candidates(9) == []
    with pytest.raises(ValueError):
        pool.add(5, (1, 2, 3))


def test_pool_from_a_sequence_holds_its_ngrams_and_respects_capacity():
    rng = np.random.default_rng(0)
    seq = rng.integers(0, 6, 200).tolist()
    for g, n in itertools.product((1, 3), (2, 4)):
        pool = NGramPool(g, n)
        pool.add_sequence(seq)
        for key in range(6):
            cands = pool.candidates(key)
            assert len(cands) <= g and all(len(c) == n - 1 for c in cands)
        # the last n-gram of the sequence is always the most recent of its key
        last = seq[-n:]
        assert pool.candidates(last[0])[-1] == tuple(last[1:])
    assert len(NGramPool(0, 3)) == 0
