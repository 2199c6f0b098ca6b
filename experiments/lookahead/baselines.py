"""The baselines through transformers' own `generate`: greedy decoding and prompt-lookup
decoding, with the model's forward passes counted so that both report steps like lookahead."""

from __future__ import annotations

from contextlib import contextmanager

import torch

from celine.experiments.lookahead.decoding import DecodeOutput


@contextmanager
def count_forwards(model):
    """Counts calls of the model's top-level forward (one per decoding step)."""
    calls = [0]
    handle = model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        yield calls
    finally:
        handle.remove()


def _new_tokens(seq: list[int], eos: int | None) -> list[int]:
    if eos is not None and eos in seq:
        return seq[: seq.index(eos) + 1]
    return seq


@torch.no_grad()
def hf_generate(
    model,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    eos_token_id: int | None,
    pad_token_id: int | None = None,
    batch_size: int = 1,
    sampling=None,
    **generate_kwargs,
) -> DecodeOutput:
    """Greedy `generate` (plus e.g. `prompt_lookup_num_tokens=`) per prompt or per left-padded
    batch; with `sampling` (a `decoding.Sampling`), `generate(do_sample=True)` with its
    temperature / top-k / top-p. Steps per prompt are the forward passes of its batch."""
    if sampling is not None:
        generate_kwargs.update(
            do_sample=True, temperature=sampling.temperature, top_k=sampling.top_k or None,
            top_p=sampling.top_p,
        )  # fmt: skip
    else:
        generate_kwargs["do_sample"] = False
    device = next(model.parameters()).device
    pad = pad_token_id if pad_token_id is not None else (eos_token_id or 0)
    tokens, steps = [], []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        width = max(len(p) for p in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        attn = torch.zeros_like(ids)
        for i, p in enumerate(chunk):
            ids[i, width - len(p) :] = torch.tensor(p)
            attn[i, width - len(p) :] = 1
        with count_forwards(model) as calls:
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=attn.to(device),
                max_new_tokens=max_new_tokens,
                eos_token_id=eos_token_id,
                pad_token_id=pad,
                **generate_kwargs,
            )
        for row in out[:, width:].tolist():
            tokens.append(_new_tokens(row, eos_token_id))
            steps.append(calls[0])
    return DecodeOutput(
        tokens=tokens,
        steps=steps,
        accepted=[[] for _ in tokens],
        pool_hits=[0] * len(tokens),
        verify_steps=[0] * len(tokens),
    )


def greedy(model, prompts, *, max_new_tokens, eos_token_id, pad_token_id=None, batch_size=1):
    return hf_generate(
        model, prompts, max_new_tokens=max_new_tokens, eos_token_id=eos_token_id,
        pad_token_id=pad_token_id, batch_size=batch_size,
    )  # fmt: skip


def plain_sampling(
    model, prompts, *, max_new_tokens, eos_token_id, pad_token_id=None, batch_size=1,
    sampling, seed=0,
):  # fmt: skip
    """Plain sampling with transformers' `generate(do_sample=True)` (the reference under
    sampling), seeded through torch's global generator, which `generate` draws from."""
    torch.manual_seed(seed)
    return hf_generate(
        model, prompts, max_new_tokens=max_new_tokens, eos_token_id=eos_token_id,
        pad_token_id=pad_token_id, batch_size=batch_size, sampling=sampling,
    )  # fmt: skip


def prompt_lookup(
    model, prompts, *, max_new_tokens, eos_token_id, pad_token_id=None,
    prompt_lookup_num_tokens=10, max_matching_ngram_size=2, sampling=None,
):  # fmt: skip
    """transformers' prompt-lookup decoding; it supports batch 1 only, so prompt by prompt."""
    return hf_generate(
        model, prompts, max_new_tokens=max_new_tokens, eos_token_id=eos_token_id,
        pad_token_id=pad_token_id, batch_size=1,
        prompt_lookup_num_tokens=prompt_lookup_num_tokens,
        max_matching_ngram_size=max_matching_ngram_size, sampling=sampling,
    )  # fmt: skip


def greedy_loop(model, prompts, *, max_new_tokens, eos_token_id, pad_token_id=None, batch_size=1):
    """Greedy decoding through lookahead's own step code (one token in, one out; same cache,
    mask and compaction path), so `generate`'s overhead can be told apart from lookahead's."""
    from celine.experiments.lookahead.decoding import lookahead_generate

    return lookahead_generate(
        model, prompts, level=2, window=1, guess_set_size=0, jacobi=True,
        max_new_tokens=max_new_tokens, eos_token_id=eos_token_id, batch_size=batch_size,
    )  # fmt: skip
