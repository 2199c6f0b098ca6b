"""The LLM substrate on a CUDA GPU (skipped without one): same greedy tokens as the CPU, and
bf16-autocast training that learns."""

import pytest
import torch

pytestmark = pytest.mark.gpu


def test_greedy_generation_on_cuda_matches_the_cpu():
    from celine.llm.evaluate import generate
    from celine.llm.tiny_llama import tiny_test_model

    model, tok = tiny_test_model(seed=3)
    prompts = ["def add(a, b):", "Q: Ann has 17 pens.", "for i in"]
    cpu = generate(model, tok, prompts, max_new_tokens=24, batch_size=3)
    gpu = generate(model.to("cuda"), tok, prompts, max_new_tokens=24, batch_size=3)
    assert [g.token_ids for g in gpu] == [c.token_ids for c in cpu]


def test_bf16_training_on_cuda_lowers_the_loss(tmp_path):
    import numpy as np

    from celine.llm.tiny_llama import apply_overrides, build_model, get_preset
    from celine.llm.train import train

    preset = apply_overrides(get_preset("smoke"), {"steps": 40, "eval_interval": 20})
    rng = np.random.default_rng(0)
    # a learnable stream: a repeated random pattern of 97 tokens
    stream = np.tile(rng.integers(3, 200, 97), 400).astype(np.int32)
    model = build_model(preset.arch, 256, seed=0)
    seen = []
    train(model, stream, stream[:5000], preset.recipe, tmp_path, device="cuda", bf16=True,
          progress=False, on_log=lambda step, m: seen.append(m))  # fmt: skip
    losses = [m["train/loss"] for m in seen if "train/loss" in m]
    assert next(model.parameters()).device.type == "cuda"
    assert losses[-1] < 0.5 * losses[0]
    assert torch.isfinite(torch.tensor(losses)).all()
