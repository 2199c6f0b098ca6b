"""The one-token decode kernel of the augmented linear attention (`kernels/linear_decode.py`)
against the room's recurrent form (`recurrent_attention`, itself tested against the O(n^2)
oracle): token by token through more than two chunks, with the conv ring wrapping, every output
and the final state S. Runs under TRITON_INTERPRET=1 on the CPU (marker `triton`)."""

import pytest
import torch

from celine.experiments.linearized.attention import VARIANTS, normalize, recurrent_attention


def _run(b, h, d, chunk, half, t, seed, variant="augmented"):
    from celine.kernels.linear_decode import LinearDecodeState, aug_linear_decode

    device = "cuda" if torch.cuda.is_available() else "cpu"
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, t, d, generator=g) for _ in range(3))
    alpha = torch.tensor(0.7)
    conv = torch.randn(h, 2 * half + 1, generator=g) if half else None
    var = VARIANTS[variant]
    ref, state_ref = recurrent_attention(normalize(q), normalize(k), v, chunk, alpha, conv, var)
    state = LinearDecodeState.empty(b, h, d, chunk, half, torch.float32, device)
    pos = torch.zeros((), dtype=torch.int64, device=device)
    outs = []
    for i in range(t):
        o = aug_linear_decode(
            q[:, :, i].to(device), k[:, :, i].to(device), v[:, :, i].to(device), state, pos,
            alpha.to(device), None if conv is None else conv.to(device), half,
        )  # fmt: skip
        pos += 1
        outs.append(o.cpu())
    out = torch.stack(outs, 2)
    return out, ref, state, state_ref


@pytest.mark.triton
@pytest.mark.parametrize("b,h,d,chunk,half,t", [(1, 2, 16, 16, 3, 37), (2, 1, 32, 16, 5, 20)])
def test_decode_kernel_equals_recurrent_form(b, h, d, chunk, half, t):
    out, ref, state, state_ref = _run(b, h, d, chunk, half, t, seed=b * 100 + t)
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4), float((out - ref).abs().max())
    assert torch.allclose(state.S.cpu(), state_ref.S, atol=1e-4)


@pytest.mark.triton
def test_decode_kernel_global_only_variant():
    """half = 0 (no conv term): the `global` variant."""
    out, ref, *_ = _run(1, 2, 16, 16, 0, 35, seed=5, variant="global")
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4)


def test_decode_kernel_refuses_odd_shapes():
    from celine.kernels.gemv_checks import KernelInputError
    from celine.kernels.linear_decode import LinearDecodeState, aug_linear_decode

    state = LinearDecodeState.empty(1, 2, 24, 16, 2, torch.float32, "cpu")
    q = torch.randn(1, 2, 24)
    with pytest.raises(KernelInputError, match="head_dim=24"):
        aug_linear_decode(q, q, q, state, torch.zeros((), dtype=torch.int64), torch.tensor(0.5),
                          torch.zeros(2, 5), 2)  # fmt: skip
    state = LinearDecodeState.empty(1, 2, 16, 12, 2, torch.float32, "cpu")
    q = torch.randn(1, 2, 16)
    with pytest.raises(KernelInputError, match="chunk=12"):
        aug_linear_decode(q, q, q, state, torch.zeros((), dtype=torch.int64), torch.tensor(0.5),
                          torch.zeros(2, 5), 2)  # fmt: skip
