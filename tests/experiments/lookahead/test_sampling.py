"""L7: lookahead's sampling verification leaves the output distribution of plain sampling.

A random 16-token Llama, a prompt that repeats (so the pool's candidates start with the input
token and are often accepted), a few thousand independent draws of the first tokens with
lookahead sampling and with transformers' own `generate(do_sample=True)`, and a chi-square
test of homogeneity per position. The same test with the residual step broken (a rejected
draft keeps its probability) must see the difference: the test can fail."""

import numpy as np
import pytest
import torch
from scipy.stats import chi2_contingency

from celine.experiments.lookahead import decoding
from celine.experiments.lookahead.decoding import Sampling, lookahead_generate

VOCAB, NEW, DRAWS = 16, 5, 2000
PROMPT = [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3]


@pytest.fixture(scope="module")
def model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        initializer_range=0.3,  # peaked next-token distributions: drafts get accepted often
    )  # fmt: skip
    return LlamaForCausalLM(cfg).float().eval()


def _lookahead(model, sampling, seed=0):
    out = lookahead_generate(
        model, [PROMPT] * DRAWS, level=3, window=3, guess_set_size=3, max_new_tokens=NEW,
        pool_from_prompt=True, batch_size=DRAWS, seed=seed, sampling=sampling,
    )  # fmt: skip
    return np.array(out.tokens), out


def _plain(model, sampling, seed=0):
    torch.manual_seed(seed)
    ids = torch.tensor([PROMPT] * DRAWS)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
            max_new_tokens=NEW, min_new_tokens=NEW, temperature=sampling.temperature,
            top_k=sampling.top_k or None, top_p=sampling.top_p, pad_token_id=0,
            eos_token_id=None,
        )  # fmt: skip
    return out[:, len(PROMPT) :].numpy()


def _min_p(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest chi-square homogeneity p-value over the generated positions."""
    ps = []
    for pos in range(NEW):
        counts = np.stack([np.bincount(x[:, pos], minlength=VOCAB) for x in (a, b)])
        counts = counts[:, counts.sum(0) > 0]
        ps.append(chi2_contingency(counts)[1])
    return min(ps)


SETTINGS = [
    Sampling(temperature=1.0),
    pytest.param(Sampling(temperature=0.7, top_k=8, top_p=0.9), marks=pytest.mark.slow),
]


@pytest.mark.parametrize("sampling", SETTINGS, ids=["t1", "t0.7_k8_p0.9"])
def test_lookahead_sampling_matches_plain_sampling(model, sampling):
    ours, out = _lookahead(model, sampling)
    assert ours.shape == (DRAWS, NEW)
    accepted = sum(a - 1 for acc in out.accepted for a in acc)
    assert accepted > DRAWS // 4  # drafts were really accepted (the test exercises them)
    # Bonferroni over the positions at family-wise level 0.01
    assert _min_p(ours, _plain(model, sampling)) > 0.01 / NEW


def test_broken_verification_is_detected(model, monkeypatch):
    sampling = Sampling(temperature=1.0)
    # the classic bug: after a rejection, keep sampling from p instead of the residual
    monkeypatch.setattr(decoding, "_reject", lambda dist, token: dist)
    ours, _ = _lookahead(model, sampling)
    assert _min_p(ours, _plain(model, sampling)) < 1e-6
