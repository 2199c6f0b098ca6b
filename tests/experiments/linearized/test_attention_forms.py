"""The three forms of augmented linear attention agree, are causal, and start as local-only."""

import pytest
import torch

from celine.experiments.linearized.attention import (
    VARIANTS,
    Variant,
    chunked_attention,
    depthwise_conv,
    naive_attention,
    normalize,
    recurrent_attention,
    unfolded_conv,
)

LINEAR = ["local", "global", "augmented"]


def _inputs(t, b=2, h=3, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, t, d, generator=g, dtype=torch.float64) for _ in range(3))
    w = 0.2 * torch.randn(h, 63, generator=g, dtype=torch.float64)
    return normalize(q), normalize(k), v, w, torch.tensor(0.7, dtype=torch.float64)


@pytest.mark.parametrize("variant", LINEAR)
@pytest.mark.parametrize("t", [1, 7, 8, 45])
def test_parallel_chunked_and_recurrent_forms_agree(variant, t):
    qh, kh, v, w, alpha = _inputs(t)
    var = VARIANTS[variant]
    naive = naive_attention(qh, kh, v, 8, alpha, w, var)
    chunked = chunked_attention(qh, kh, v, 8, alpha, w, var)
    recurrent, state = recurrent_attention(qh, kh, v, 8, alpha, w, var)
    torch.testing.assert_close(chunked, naive, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(recurrent, naive, rtol=1e-10, atol=1e-10)
    # the state is constant-size: S, an open chunk of t mod C tokens, <= 31 conv values
    assert state.k.shape[-2] == t % 8 and state.length == t
    assert state.conv_v.shape[-2] == (min(t, 31) if var.conv else 0)


def test_forms_agree_in_float32():
    qh, kh, v, w, alpha = (x.float() for x in _inputs(45))
    var = VARIANTS["augmented"]
    naive = naive_attention(qh, kh, v, 8, alpha, w, var)
    torch.testing.assert_close(chunked_attention(qh, kh, v, 8, alpha, w, var), naive)
    torch.testing.assert_close(recurrent_attention(qh, kh, v, 8, alpha, w, var)[0], naive)


@pytest.mark.parametrize("masked, causal", [(True, True), (False, False)])
def test_future_tokens_leave_past_outputs_bit_identical_only_with_the_masked_conv(masked, causal):
    """Negative control: the unmasked depthwise conv (as in vision LAs) leaks the future."""
    qh, kh, v, w, alpha = _inputs(40)
    var = Variant(global_=True, conv=True, conv_mask=masked)
    t = 21
    q2, k2, v2 = qh.clone(), kh.clone(), v.clone()
    q2[:, :, t + 1 :] = normalize(torch.randn_like(q2[:, :, t + 1 :]))
    k2[:, :, t + 1 :] = normalize(torch.randn_like(k2[:, :, t + 1 :]))
    v2[:, :, t + 1 :] += 1.0
    a = chunked_attention(qh, kh, v, 8, alpha, w, var)[:, :, : t + 1]
    b = chunked_attention(q2, k2, v2, 8, alpha, w, var)[:, :, : t + 1]
    assert torch.equal(a, b) is causal


def test_conv_and_mix_at_zero_give_exactly_local_only():
    qh, kh, v, w, _ = _inputs(45)
    zero = torch.zeros((), dtype=torch.float64)
    local = chunked_attention(qh, kh, v, 8, zero, None, VARIANTS["local"])
    aug = chunked_attention(qh, kh, v, 8, zero, torch.zeros_like(w), VARIANTS["augmented"])
    assert torch.equal(aug, local)


def test_unfolded_conv_matrix_is_the_masked_conv_and_follows_tree_paths():
    _, _, v, w, _ = _inputs(40)
    pos = torch.arange(40)
    causal = pos[:, None] >= pos[None, :]
    mat = unfolded_conv(w, pos, pos, causal)
    torch.testing.assert_close(mat @ v, depthwise_conv(v, w, masked=True))
    # a tree: 0 -> 1 -> 3 and 0 -> 2; node 3's row is the conv along its own path only
    depth = torch.tensor([0, 1, 1, 2])
    anc = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 0, 1]]).bool()
    tmat = unfolded_conv(w, depth, depth, anc)
    path = torch.tensor([0, 1, 3])
    seq = unfolded_conv(w, torch.arange(3), torch.arange(3), torch.ones(3, 3).tril().bool())
    torch.testing.assert_close(tmat[:, 3][:, path], seq[:, 2])
    assert torch.all(tmat[:, 3, 2] == 0)  # the sibling branch is invisible
