"""tiny_test_model, generation with a KV cache, perplexity and the unigram baseline."""

import math
import time

import numpy as np
import pytest
import torch

from celine.llm import evaluate as E
from celine.llm.tiny_llama import PRESETS, arch_params, build_model, count_params, tiny_test_model


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return tiny_test_model(seed=0)


def test_tiny_test_model_builds_fast_and_generates(tiny):
    t = time.time()
    model, tok = tiny_test_model(seed=1)
    assert time.time() - t < 5
    g = E.generate(model, tok, ["def add(a, b):"], max_new_tokens=5)
    assert len(g) == 1 and 1 <= len(g[0].token_ids) <= 5
    assert g[0].text == tok.decode(g[0].token_ids, skip_special_tokens=True)
    # the same seed builds the same weights
    a, _ = tiny_test_model(seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), model.parameters(), strict=True))


def test_preset_param_counts_match_built_models():
    for name in ("smoke", "default"):
        arch = PRESETS[name].arch
        assert count_params(build_model(arch, 500)) == arch_params(arch, 500)
    sizes = [arch_params(p.arch) for p in PRESETS.values()]
    assert sizes == sorted(sizes)
    assert 20e6 <= arch_params(PRESETS["gpu"].arch) <= 50e6


def test_batched_left_padded_greedy_equals_unbatched(tiny):
    model, tok = tiny
    prompts = ["Q: Ann has 17 pens.", "def", "for i in range(10):\n    print(add(i", "A: 1", "x"]
    lengths = {len(tok(p)["input_ids"]) for p in prompts}
    assert len(lengths) > 2  # left padding is really exercised
    batched = E.generate(model, tok, prompts, max_new_tokens=12, batch_size=len(prompts))
    single = [E.generate(model, tok, [p], max_new_tokens=12, batch_size=1)[0] for p in prompts]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]
    # and greedy equals a manual argmax loop without any cache
    ids = tok(prompts[2], return_tensors="pt")["input_ids"]
    manual = []
    for _ in range(len(single[2].token_ids)):
        nxt = int(model(input_ids=ids).logits[0, -1].argmax())
        manual.append(nxt)
        ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
    assert manual == single[2].token_ids


def test_generate_stops_at_eos_and_sampling_is_seeded(tiny):
    import copy

    model, tok = tiny
    free = E.generate(model, tok, ["def"], max_new_tokens=6)[0]
    assert not free.stopped and len(free.token_ids) == 6
    # declare the 3rd greedy token to be eos: generation must stop right before it
    tok2 = copy.deepcopy(tok)
    tok2.eos_token = tok.convert_ids_to_tokens(free.token_ids[2])
    if free.token_ids[2] not in free.token_ids[:2]:
        cut = E.generate(model, tok2, ["def"], max_new_tokens=6)[0]
        assert cut.stopped and cut.token_ids == free.token_ids[:2]
    s1 = E.generate(model, tok, ["def", "Q:"], max_new_tokens=8, temperature=1.0, seed=3)
    s2 = E.generate(model, tok, ["def", "Q:"], max_new_tokens=8, temperature=1.0, seed=3)
    s3 = E.generate(model, tok, ["def", "Q:"], max_new_tokens=8, temperature=1.0, seed=4)
    assert [g.token_ids for g in s1] == [g.token_ids for g in s2]
    assert [g.token_ids for g in s1] != [g.token_ids for g in s3]
    for g in s1:
        assert tok.eos_token_id not in g.token_ids
        assert g.stopped or len(g.token_ids) == 8
    with pytest.raises(ValueError, match="temperature"):
        E.generate(model, tok, ["x"], temperature=-1)


class UniformLM(torch.nn.Module):
    """Constant logits: every token has probability 1/V."""

    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab

    def forward(self, input_ids):
        return type("Out", (), {"logits": torch.zeros(*input_ids.shape, self.vocab)})()


def test_uniform_model_perplexity_equals_vocab_size():
    ids = np.random.default_rng(0).integers(0, 37, size=1001)
    res = E.perplexity(UniformLM(37), ids, window=64, batch_size=4)
    assert res.perplexity == pytest.approx(37, rel=1e-5)
    assert res.tokens == 1000  # every token but the first, once (last window is partial)


def test_perplexity_windows_are_non_overlapping(tiny):
    model, tok = tiny
    ids = np.asarray(tok("def add(a, b):\n    return a + b\n" * 6)["input_ids"])
    # one window covering everything == the model's own full-sequence loss
    full = model(
        input_ids=torch.as_tensor(ids)[None], labels=torch.as_tensor(ids)[None]
    ).loss.item()
    assert E.perplexity(model, ids, window=len(ids), batch_size=1).mean_nll == pytest.approx(
        full, rel=1e-5
    )
    # small windows see less context: a random model changes, but the token count does not
    assert E.perplexity(model, ids, window=7, batch_size=3).tokens == len(ids) - 1


def test_unigram_baseline():
    rng = np.random.default_rng(0)
    assert E.unigram_perplexity(
        np.arange(10).repeat(5), rng.integers(0, 10, 500), 10
    ).perplexity == pytest.approx(10)
    # hand computation: counts+1 = [4, 2, 1] over 7
    res = E.unigram_perplexity([0, 0, 0, 1], [9, 0, 1], 3)
    assert res.mean_nll == pytest.approx(-(math.log(4 / 7) + math.log(2 / 7)) / 2)
    # a skewed distribution: unigram beats uniform, and equals the entropy in the limit
    p = np.array([0.7, 0.2, 0.1])
    train, test = rng.choice(3, 100_000, p=p), rng.choice(3, 100_000, p=p)
    res = E.unigram_perplexity(train, test, 3)
    assert (
        res.perplexity == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=0.01)
        and res.perplexity < 3
    )


def test_reasoning_accuracy_table(tiny):
    from celine.llm import reasoning as R

    model, tok = tiny
    probs = R.generate_balanced(2, seed=0, steps=range(1, 4))
    table = E.reasoning_accuracy(model, tok, probs, max_new_tokens=4, batch_size=4)
    assert list(table.columns) == ["steps", "n", "correct", "accuracy"]
    assert list(table["steps"]) == [1, 2, 3, "all"]
    assert list(table["n"]) == [2, 2, 2, 6]
    assert ((table["accuracy"] >= 0) & (table["accuracy"] <= 1)).all()


def test_model_size_names_match_the_light_schema():
    """celine.llm.models lists the sizes without importing torch; it must match the presets."""
    from celine.llm.models import TINY_LLAMA_SIZES
    from celine.llm.tiny_llama import PRESETS

    assert tuple(PRESETS) == TINY_LLAMA_SIZES
