"""The prefill kernel of the augmented linear attention (`kernels/linear_prefill.py`) against the
room's chunked form (`chunked_attention`, itself tested against the O(n^2) oracle): lengths that
end inside a chunk, several chunks, the conv reaching into the previous chunk, every variant, and
the final state S over completed chunks. Runs under TRITON_INTERPRET=1 on the CPU (marker
`triton`); on a GPU (marker `gpu`) also in bf16 at a 7B head size."""

import pytest
import torch

from celine.experiments.linearized.attention import VARIANTS, chunked_attention, normalize

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # the interpreter runs on CPU tensors


def _inputs(b, h, t, d, half, seed, device=DEVICE, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, t, d, generator=g) for _ in range(3))
    conv = torch.randn(h, 2 * half + 1, generator=g) * 0.3 if half else None
    alpha = torch.tensor(0.7)
    to = dict(device=device, dtype=dtype)
    return (q.to(**to), k.to(**to), v.to(**to), alpha.to(**to),
            None if conv is None else conv.to(**to))  # fmt: skip


def _reference(q, k, v, chunk, alpha, conv, variant):
    q, k, v = q.double(), k.double(), v.double()  # on the inputs' device
    return chunked_attention(normalize(q), normalize(k), v, chunk, alpha.double(),
                             None if conv is None else conv.double(), VARIANTS[variant])  # fmt: skip


@pytest.mark.triton
@pytest.mark.parametrize(
    "b,h,t,d,chunk,half,variant",
    [
        (1, 2, 45, 16, 16, 3, "augmented"),  # ends inside the third chunk
        (2, 1, 64, 32, 16, 15, "augmented"),  # whole chunks; conv reaches 15 back, across chunks
        (1, 1, 7, 16, 16, 5, "augmented"),  # shorter than one chunk
        (1, 2, 40, 16, 16, 0, "global"),
        (1, 1, 33, 16, 16, 0, "local"),
    ],
)
def test_prefill_kernel_equals_chunked_form(b, h, t, d, chunk, half, variant):
    from celine.kernels.linear_prefill import aug_linear_prefill

    q, k, v, alpha, conv = _inputs(b, h, t, d, half, seed=b * 1000 + t * 10 + half)
    out, S = aug_linear_prefill(q, k, v, chunk, alpha, conv, global_=variant != "local",
                                return_state=True)  # fmt: skip
    ref = _reference(q, k, v, chunk, alpha, conv, variant).float()
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4), float((out - ref).abs().max())
    done = t // chunk * chunk  # S covers completed chunks only (the decode state's convention)
    S_ref = normalize(k[:, :, :done].double()).transpose(-1, -2) @ v[:, :, :done].double()
    assert torch.allclose(S, S_ref.float(), atol=1e-4), float((S - S_ref).abs().max())


@pytest.mark.triton
def test_prefill_kernel_value_blocks_split_columns():
    """Two programs per head (block_v < DV) give the same output as one."""
    from celine.kernels.linear_prefill import aug_linear_prefill

    q, k, v, alpha, conv = _inputs(1, 1, 40, 32, 4, seed=3)
    a = aug_linear_prefill(q, k, v, 16, alpha, conv, block_v=16)
    ref = _reference(q, k, v, 16, alpha, conv, "augmented").float()
    assert torch.allclose(a, ref, atol=1e-4, rtol=1e-4), float((a - ref).abs().max())


@pytest.mark.triton
@pytest.mark.parametrize(
    "change,match",
    [
        (dict(d=24), "head_dim=24"),
        (dict(chunk=24), "chunk=24"),
        (dict(half=16), "half=16"),
    ],
)
def test_prefill_kernel_refuses_odd_shapes(change, match):
    from celine.kernels.linear_prefill import aug_linear_prefill

    s = dict(d=16, chunk=16, half=3) | change
    q, k, v, alpha, conv = _inputs(1, 1, 20, s["d"], s["half"], seed=0)
    with pytest.raises(ValueError, match=match):
        aug_linear_prefill(q, k, v, s["chunk"], alpha, conv)


@pytest.mark.gpu
@pytest.mark.parametrize("d,seed", [(128, 7), (64, 8)])
def test_prefill_kernel_bf16_7b_head_on_gpu(d, seed):
    """bf16 at a 7B head (128) and a smaller one, the room's chunk/conv (64, 63 taps), on fresh
    random inputs, against the fp64 chunked form: bf16 rounding only (a miscompiled 32-column
    block was 0.7 off here)."""
    from celine.kernels.linear_prefill import aug_linear_prefill

    q, k, v, alpha, conv = _inputs(1, 4, 1000, d, 31, seed=seed, device="cuda",
                                   dtype=torch.bfloat16)  # fmt: skip
    out = aug_linear_prefill(q, k, v, 64, alpha, conv).double()
    ref = _reference(q, k, v, 64, alpha, conv, "augmented")
    err = (out - ref).abs().max() / ref.abs().max()
    assert err < 2e-2, float(err)
