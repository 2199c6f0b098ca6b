"""L1-L3, L5: lookahead (and Jacobi) decoding equal greedy `generate`, token for token."""

import random

import pytest
import torch

from celine.experiments.lookahead.baselines import greedy, prompt_lookup
from celine.experiments.lookahead.decoding import lookahead_generate


def _greedy(model, tok, prompts, max_new, eos=None):
    eos = tok.eos_token_id if eos is None else eos
    return greedy(model, prompts, max_new_tokens=max_new, eos_token_id=eos,
                  pad_token_id=tok.pad_token_id).tokens  # fmt: skip


def test_a_custom_4d_mask_reproduces_a_plain_forward(tiny, prompts):
    """transformers 5 takes our 4-D float mask and position ids as given: a prefix in the
    cache plus a causal block equals one plain forward of the whole sequence."""
    from transformers import DynamicCache

    from celine.experiments.lookahead.decoding import cache_argument

    model, _ = tiny
    ids = torch.tensor([prompts[0] + prompts[1]])
    n, split = ids.shape[1], len(prompts[0])
    ref = model(input_ids=ids).logits
    cache = DynamicCache()
    kw = cache_argument(model)
    model(input_ids=ids[:, :split], use_cache=True, **{kw: cache})
    q = n - split
    allowed = torch.ones(q, n, dtype=torch.bool)
    allowed[:, split:] = torch.tril(torch.ones(q, q, dtype=torch.bool))
    mask = torch.zeros(1, 1, q, n).masked_fill(~allowed, torch.finfo(torch.float32).min)
    pos = torch.arange(split, n)[None]
    out = model(input_ids=ids[:, split:], attention_mask=mask, position_ids=pos,
                use_cache=True, **{kw: cache}).logits  # fmt: skip
    torch.testing.assert_close(out, ref[:, split:], rtol=1e-5, atol=1e-5)


CASES = [(5, 7, 7, 1), (3, 4, 4, 4)]
SLOW_CASES = [(2, 1, 1, 1), (7, 3, 2, 4), (8, 60, 60, 2), (5, 15, 15, 5)]


@pytest.mark.parametrize(
    "level,window,g,batch",
    CASES + [pytest.param(*c, marks=pytest.mark.slow) for c in SLOW_CASES],
)
def test_lookahead_equals_greedy_on_every_prompt(tiny, prompts, level, window, g, batch):
    model, tok = tiny
    ref = _greedy(model, tok, prompts, 32)
    out = lookahead_generate(model, prompts, level=level, window=window, guess_set_size=g,
                             max_new_tokens=32, eos_token_id=tok.eos_token_id,
                             batch_size=batch, pool_from_prompt=True)  # fmt: skip
    assert out.tokens == ref
    # L2: every step commits 1..N tokens; S >= 1
    assert all(1 <= a <= level for acc in out.accepted for a in acc)
    assert all(s <= len(t) for s, t in zip(out.steps, out.tokens, strict=True))
    # L3: the N-2 warm-up steps commit exactly one token each
    assert all(acc[: level - 2] == [1] * min(level - 2, len(acc)) for acc in out.accepted)


@pytest.mark.parametrize("trials", [2, pytest.param(20, marks=pytest.mark.slow)])
def test_random_prompts_and_random_n_w_g_batch_1_and_4(tiny, trials):
    """Property-style: random token prompts of random lengths, random (N, W, G), batch 1 and 4,
    with and without the prompt pool, with EOS set to a token greedy actually emits (so EOS
    lands inside accepted runs) and budgets that cut runs mid-way."""
    model, tok = tiny
    rng = random.Random(0)
    vocab = len(tok)
    for trial in range(trials):
        prompts = [[rng.randrange(3, vocab) for _ in range(rng.randint(1, 24))] for _ in range(4)]
        max_new = rng.randint(5, 20)
        eos = rng.choice(_greedy(model, tok, prompts[:1], 30)[0])
        ref = _greedy(model, tok, prompts, max_new, eos=eos)
        level, window, g = rng.randint(2, 6), rng.randint(1, 8), rng.randint(0, 8)
        for batch in (1, 4):
            out = lookahead_generate(model, prompts, level=level, window=window,
                                     guess_set_size=g, max_new_tokens=max_new, eos_token_id=eos,
                                     batch_size=batch, pool_from_prompt=trial % 2 == 0,
                                     seed=trial)  # fmt: skip
            assert out.tokens == ref, (trial, level, window, g, batch)


def test_jacobi_and_prompt_lookup_equal_greedy(tiny, prompts):
    model, tok = tiny
    ref = _greedy(model, tok, prompts, 20)
    for batch in (1, 3):
        jac = lookahead_generate(model, prompts, level=2, window=5, guess_set_size=0,
                                 max_new_tokens=20, eos_token_id=tok.eos_token_id, jacobi=True,
                                 batch_size=batch)  # fmt: skip
        assert jac.tokens == ref
    pl = prompt_lookup(model, prompts, max_new_tokens=20, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id)  # fmt: skip
    assert pl.tokens == ref


def _cache_checker(model):
    """An `on_step` hook asserting that each row's kept KV entries equal those of a plain
    forward over its committed prefix (all but the last token); records tokens per step."""
    accepted = []

    def check(rows, cache, valid):
        for b, row in enumerate(rows):
            seq = torch.tensor([row.prompt + row.generated[:-1]])
            ref = model(input_ids=seq, use_cache=True).past_key_values
            keep = valid[b]
            assert int(keep.sum()) == seq.shape[1]
            for layer, ref_layer in zip(cache.layers, ref.layers, strict=True):
                torch.testing.assert_close(
                    layer.keys[b][:, keep], ref_layer.keys[0], rtol=1e-4, atol=1e-5
                )
                torch.testing.assert_close(
                    layer.values[b][:, keep], ref_layer.values[0], rtol=1e-4, atol=1e-5
                )
            accepted.append(row.accepted[-1])

    return check, accepted


def test_the_cache_after_multi_token_accepts_equals_an_autoregressive_one(tiny, prompts):
    """L5: after every step each row's kept KV entries equal those of a plain forward over its
    committed prefix: rejected entries are gone, accepted ones kept (batch 3)."""
    model, tok = tiny
    check, accepted = _cache_checker(model)
    lookahead_generate(model, prompts[:3], level=4, window=4, guess_set_size=4,
                       max_new_tokens=24, eos_token_id=None, batch_size=3,
                       pool_from_prompt=True, on_step=check)  # fmt: skip
    assert max(accepted) > 1  # some steps did accept several tokens


def test_rows_that_finish_early_leave_a_correct_cache_for_the_others(tiny, prompts):
    """Regression: two rows accept different lengths (holes in the shared cache), then one
    finishes at EOS; the survivor keeps decoding alone, exactly, with its holes still masked."""
    model, tok = tiny
    rng = random.Random(1)
    pool = [[rng.randrange(3, len(tok)) for _ in range(rng.randint(4, 16))] for _ in range(16)]
    outs = greedy(model, pool, max_new_tokens=48, eos_token_id=None, batch_size=16).tokens
    # a pair of prompts and an EOS that ends the first mid-way but never occurs in the second
    pair, eos = next(
        ((i, j), t)
        for i in range(len(pool))
        for j in range(len(pool))
        if i != j
        for t in outs[i][12:30]
        if t not in outs[j] and t not in outs[i][:12]
    )
    chosen = [pool[pair[0]], pool[pair[1]]]
    ref = _greedy(model, tok, chosen, 48, eos=eos)
    assert len(ref[0]) < 31 and len(ref[1]) == 48
    check, _ = _cache_checker(model)
    holes = []
    out = lookahead_generate(model, chosen, level=3, window=3, guess_set_size=3,
                             max_new_tokens=48, eos_token_id=eos, batch_size=2,
                             pool_from_prompt=True, seed=1,
                             on_step=lambda r, c, v: (check(r, c, v), holes.append(bool((~v).any()))))  # fmt: skip
    assert out.tokens == ref
    assert any(holes)  # the cache really had holes while the rows decoded together


def test_compression_on_a_repetitive_continuation(tiny, prompts):
    """An untrained model's greedy output falls into one-token loops: with the text's own
    n-grams in the pool, lookahead commits up to N tokens a step (S well above 2), and
    the verified n-gram hit rate is high."""
    model, tok = tiny
    la = lookahead_generate(model, prompts[:3], level=5, window=4, guess_set_size=4,
                            max_new_tokens=48, eos_token_id=None, pool_from_prompt=True)  # fmt: skip
    assert la.total_tokens / la.total_steps > 2.5
    assert sum(la.pool_hits) / sum(la.verify_steps) > 0.5


def test_greedy_loop_through_lookaheads_step_code_equals_generate(tiny, prompts):
    """The benchmark's second greedy reference (one token a step through lookahead's own mask,
    cache and compaction code) is greedy decoding, one forward per token, batch 1 and 3."""
    from celine.experiments.lookahead.baselines import greedy_loop

    model, tok = tiny
    ref = _greedy(model, tok, prompts, 16)
    for batch in (1, 3):
        out = greedy_loop(model, prompts, max_new_tokens=16, eos_token_id=tok.eos_token_id,
                          batch_size=batch)  # fmt: skip
        assert out.tokens == ref
        assert out.steps == [len(t) for t in out.tokens]


def test_decoding_keeps_cudnn_attention_out_and_restores_the_callers_choice(tiny, prompts):
    """cuDNN attention plans per shape (every step has new shapes): the decoder pins flash,
    memory-efficient and math while it runs, and leaves the caller's setting as it was."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from celine.experiments.lookahead import decoding

    model, tok = tiny
    seen = []
    hook = model.register_forward_pre_hook(
        lambda *_: seen.append(torch.backends.cuda.cudnn_sdp_enabled())
    )
    try:
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH]):
            lookahead_generate(model, prompts[:1], level=3, window=2, guess_set_size=2,
                               max_new_tokens=4)  # fmt: skip
            assert torch.backends.cuda.cudnn_sdp_enabled()
    finally:
        hook.remove()
    assert seen and not any(seen)
    assert decoding.PIN_SDPA
