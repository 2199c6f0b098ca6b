"""The shared bench helper (`bench/common/llama7b.py`): its static-cache step loop must decode
exactly what transformers' greedy `generate` decodes (positions, mask over the static cache and
the argmax feedback are all in the step), and its step timing must accept T-token steps. CPU,
eager mode, a tiny Llama config; the CUDA-graph and compiled modes replay the same `_run` on the
GPU (the `gpu` test)."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from common.llama7b import (  # noqa: E402
    StaticDecoder,
    build_model,
    fuse_projections,
    llama_config,
    weight_bytes,
)


def _tiny(device="cpu", dtype=torch.float32):
    cfg = llama_config("7b", layers=2, hidden_size=64, intermediate_size=128,
                       num_attention_heads=4, num_key_value_heads=4, vocab_size=97)  # fmt: skip
    return build_model(cfg, device=device, dtype=dtype, seed=3), cfg


def _greedy_reference(model, prompt, new):
    out = model.generate(prompt, max_new_tokens=new, do_sample=False, min_new_tokens=new,
                         pad_token_id=0)  # fmt: skip
    return out[:, prompt.shape[1] :]


def test_llama7b_config_shapes_and_bad_size():
    cfg = llama_config("7b")
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers) == (4096, 11008, 32)
    with pytest.raises(ValueError, match="size='70b'"):
        llama_config("70b")


def test_static_decoder_equals_generate_greedy():
    torch.manual_seed(0)
    model, cfg = _tiny()
    # larger weights than 0.02 so that greedy does not repeat one token (a weak check)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(25)
    prompt = torch.randint(0, cfg.vocab_size, (2, 7))
    ref = _greedy_reference(model, prompt, 12)
    assert ref.unique().numel() > 3
    dec = StaticDecoder(model, batch=2, max_len=32, mode="eager")
    got = dec.decode(prompt, 12, repeats=1)["tokens"]
    assert torch.equal(got, ref)
    with pytest.raises(ValueError, match="max_len 32"):
        dec.decode(prompt, 30)
    with pytest.raises(ValueError, match="mode='fast'"):
        StaticDecoder(model, 1, 8, mode="fast")
    assert weight_bytes(model) < sum(p.numel() * 4 for p in model.parameters())


def test_fused_projections_compute_the_same_model():
    """q/k/v and gate/up fused into one product each: the same logits (GQA shapes: k/v narrower
    than q) and the same greedy decoding through the static cache; 4 linears per layer remain."""
    torch.manual_seed(1)
    cfg = llama_config("7b", layers=2, hidden_size=64, intermediate_size=96,
                       num_attention_heads=4, num_key_value_heads=2, vocab_size=97)  # fmt: skip
    model = build_model(cfg, device="cpu", dtype=torch.float64, seed=5)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(25)
    prompt = torch.randint(0, cfg.vocab_size, (2, 9))
    with torch.no_grad():
        before = model(prompt).logits
    ref = StaticDecoder(model, batch=2, max_len=24, mode="eager").decode(prompt, 10, repeats=1)
    n_before = sum(isinstance(m, torch.nn.Linear) for m in model.model.layers.modules())
    fuse_projections(model)
    with torch.no_grad():
        after = model(prompt).logits
    assert torch.allclose(after, before, atol=1e-10), float((after - before).abs().max())
    got = StaticDecoder(model, batch=2, max_len=24, mode="eager").decode(prompt, 10, repeats=1)
    assert torch.equal(got["tokens"], ref["tokens"])
    assert (
        sum(isinstance(m, torch.nn.Linear) for m in model.model.layers.modules())
        == n_before * 4 // 7
    )


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["graph", "compile"])
def test_static_decoder_graph_modes_equal_eager(mode):
    model, cfg = _tiny("cuda", torch.float32)
    prompt = torch.randint(0, cfg.vocab_size, (1, 5))
    eager = StaticDecoder(model, 1, 24, mode="eager").decode(prompt, 10, repeats=1)["tokens"]
    got = StaticDecoder(model, 1, 24, mode=mode).decode(prompt, 10, repeats=1)["tokens"]
    assert torch.equal(got, eager)
    StaticDecoder(model, 1, 64, mode=mode, max_step=8).step_ms(8, 10, reps=2)  # T-token graphs
