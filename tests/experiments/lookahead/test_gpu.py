"""On a CUDA device: lookahead decoding equals greedy in float32, batch 1 and 4."""

import pytest
import torch

from celine.experiments.lookahead.baselines import greedy
from celine.experiments.lookahead.decoding import lookahead_generate


@pytest.mark.gpu
def test_lookahead_equals_greedy_on_cuda(tiny, prompts):
    model, tok = tiny
    model = model.to("cuda")
    try:
        ref = greedy(model, prompts, max_new_tokens=32, eos_token_id=tok.eos_token_id,
                     pad_token_id=tok.pad_token_id).tokens  # fmt: skip
        for batch in (1, 4):
            out = lookahead_generate(model, prompts, level=5, window=7, guess_set_size=7,
                                     max_new_tokens=32, eos_token_id=tok.eos_token_id,
                                     batch_size=batch, pool_from_prompt=True)  # fmt: skip
            assert out.tokens == ref
    finally:
        model.to("cpu")
        torch.cuda.empty_cache()
