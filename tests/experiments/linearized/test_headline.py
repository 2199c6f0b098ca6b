"""The room's headline the CPU can pin: decoding the linearized model keeps a constant-size
state (S over completed chunks, the open chunk, the conv buffer) while the softmax baseline's
KV cache grows with the context, and speculative decoding over that state stays exact.

Fast: the random-init test Llama, contexts 64 and 512, two seeds. Slow twin: the README's
default run (`celine run task=linearized` on the cached tiny_llama), where Medusa accepts
more than one token per step (README: 2.25) with every output equal to the full recompute."""

import pytest
import torch

from celine.experiments.linearized.latency import decode_latency
from celine.experiments.linearized.linear_llama import linearize


@pytest.mark.parametrize("seed", [0, 1])
def test_headline_linear_state_stays_constant_while_softmax_cache_grows(seed):
    from celine.llm.tiny_llama import tiny_test_model

    state = {}
    for variant in ("softmax", "augmented"):
        model, tok = tiny_test_model(seed=seed)
        linearize(model.float(), variant, chunk=16).eval()
        rows = decode_latency(model, [64, 512], steps=1, vocab=len(tok), seed=seed)
        state[variant] = [r["state_bytes"] for r in rows]
    assert state["augmented"][0] == state["augmented"][1]
    assert state["softmax"][1] > 6 * state["softmax"][0]  # 8x the tokens, ~8x the cache
    assert state["augmented"][1] * 2 < state["softmax"][1]


@pytest.mark.slow
def test_headline_medusa_accepts_more_than_one_token_exactly_at_readme_size(tmp_path):
    import glob
    from pathlib import Path

    from celine_testing import run_in_process

    from celine.llm.train import is_complete

    cache = Path("outputs/models").resolve()
    if not any(is_complete(p) for p in glob.glob(f"{cache}/tiny_llama-code-default-*")):
        pytest.skip("no cached default tiny_llama (celine run task=lm_pretrain trains it)")
    torch.set_num_threads(1)
    overrides = ["task=linearized", "++task.decode_repeats=1", f"++model.cache_dir={cache}"]
    metrics = run_in_process(overrides, tmp_path / "run")
    assert metrics["decode/spec_equals_greedy"] == 1.0
    assert metrics["decode/medusa_mean_accepted"] > 1.3
    assert metrics["test/perplexity"] < metrics["linearized_init/test_perplexity"]
