"""The ListMLE-trained encoder learns a ranking the prompt determines; the classifier trains."""

from __future__ import annotations

import dataclasses

import numpy as np

from celine.experiments.llm_sched.config import ClassifierConfig, LTRConfig
from celine.experiments.llm_sched.predictor import pad_batch, rank_keys, train_predictor
from celine.experiments.llm_sched.ranking import kendall_tau_fast

TINY = dict(d_model=32, layers=1, heads=2, dim_feedforward=64, dropout=0.0, max_length=16,
            init_from_lm=False, lr=3e-3, list_size=16, epochs=4)  # fmt: skip


def synthetic(n, seed):
    """Prompts of random filler tokens; the output length is 10x the count of token 7."""
    rng = np.random.default_rng(seed)
    seqs, lengths = [], []
    for _ in range(n):
        k = int(rng.integers(0, 6))
        filler = rng.integers(10, 30, size=int(rng.integers(2, 10))).tolist()
        seq = filler + [7] * k
        rng.shuffle(seq)
        seqs.append(seq)
        lengths.append(10 * k + int(rng.integers(0, 10)))
    return seqs, np.array(lengths)


def test_listmle_ranker_learns_the_order_and_beats_prompt_length():
    tr, trl = synthetic(256, 0)
    te, tel = synthetic(80, 1)
    cfg = dataclasses.replace(LTRConfig(), **TINY)
    model, hist = train_predictor("listmle", cfg, tr, trl, te, tel, vocab=32, pad_id=0,
                                  max_len=100)  # fmt: skip
    tau = kendall_tau_fast(rank_keys("listmle", model, te, 0, cfg), tel)
    assert tau > 0.6
    assert tau > kendall_tau_fast([len(s) for s in te], tel) + 0.2
    assert hist[-1]["loss"] < hist[0]["loss"]


def test_classifier_trains_and_truncation_sides():
    tr, trl = synthetic(160, 2)
    cfg = dataclasses.replace(ClassifierConfig(label_group_size=20), **{**TINY, "epochs": 2})
    model, hist = train_predictor("class", cfg, tr, trl, tr[:20], trl[:20], vocab=32, pad_id=0,
                                  max_len=100)  # fmt: skip
    keys = rank_keys("class", model, tr[:20], 0, cfg)
    assert keys.shape == (20,) and set(np.unique(keys)) <= set(range(5))
    ids, valid = pad_batch([[1, 2, 3, 4], [5]], 0, 3, "left")
    assert ids.tolist() == [[2, 3, 4], [5, 0, 0]] and valid.sum() == 4
    ids, _ = pad_batch([[1, 2, 3, 4]], 0, 3, "right")
    assert ids.tolist() == [[1, 2, 3]]
