"""The 7B bench's decode path for the augmented linear attention (`bench/linearized/decode_7b.py`:
projections + RoPE + the fused Triton step per layer, position from a device tensor) decodes the
same logits, token by token, as the room's linearized model computes over the whole sequence
(chunked form), on a tiny Llama across a chunk fold (C = 16, 21 tokens). TRITON_INTERPRET=1 on the CPU."""

import copy
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


@pytest.mark.triton
def test_bench_decode_step_equals_room_chunked_forward():
    from common.llama7b import build_model, llama_config
    from linearized.decode_7b import LinearDecodeAttention

    from celine.experiments.linearized.linear_llama import linearize

    device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = llama_config("7b", layers=2, hidden_size=64, intermediate_size=96,
                       num_attention_heads=4, num_key_value_heads=4, vocab_size=50)  # fmt: skip
    base = build_model(cfg, device=device, dtype=torch.float32, seed=1)
    room = linearize(copy.deepcopy(base), "augmented", chunk=16, kernel=7, alpha=0.6)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in room.model.layers:
            layer.self_attn.conv_weight.copy_(torch.randn(4, 7, generator=g) * 0.3)
    ids = torch.randint(0, 50, (1, 21), generator=g).to(device)
    with torch.no_grad():
        want = room(ids).logits[0]
    pos = torch.zeros((), dtype=torch.int64, device=device)
    ours = copy.deepcopy(base)
    for layer, ref in zip(ours.model.layers, room.model.layers, strict=True):
        new = LinearDecodeAttention(layer.self_attn, pos, batch=1, chunk=16, kernel=7,
                                    alpha=0.6, random_state=False)  # fmt: skip
        with torch.no_grad():
            new.conv_weight.copy_(ref.self_attn.conv_weight)
        layer.self_attn = new
    mask = torch.ones(1, 1, 1, 1, dtype=torch.bool, device=device)
    got = []
    with torch.no_grad():
        for i in range(ids.shape[1]):
            out = ours(input_ids=ids[:, i : i + 1], position_ids=pos.view(1, 1),
                       attention_mask=mask, use_cache=False).logits  # fmt: skip
            got.append(out[0, -1])
            pos += 1
    got = torch.stack(got)
    assert torch.allclose(got, want, atol=2e-4, rtol=1e-3), float((got - want).abs().max())
