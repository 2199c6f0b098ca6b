"""The GPTQ loop, incoherence rotations, and the Lat./Acc. scale layouts on random layers."""

import math
from types import SimpleNamespace

import pytest
import torch

from celine.experiments.shiftadd.gptq import gptq, inverse_cholesky, prepare_hessian
from celine.experiments.shiftadd.incoherence import make_incoherence
from celine.experiments.shiftadd.layer_quant import quantize_layer
from celine.experiments.shiftadd.quantizers import IdentityQuantizer, UniformQuantizer
from celine.kernels.shiftadd_format import decode_apot, dequantize, unpack_planes

CFG = dict(groupsize=-1, sym=False, blocksize=32, percdamp=0.01, act_order=True, bcq_rounds=10,
           apot_terms=3, incoherence=False)  # fmt: skip


def layer(n=64, k=96, seed=0):
    """A weight and the Hessian of correlated inputs with a few outlier channels."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * 0.02
    mix = torch.randn(k, k, generator=g) / math.sqrt(k) + torch.eye(k)
    x = torch.randn(2048, k, generator=g) @ mix
    x[:, :3] *= 20
    return w, (x.T @ x / x.shape[0]).double()


def out_err(w, q, h):
    d = (w - q).double()
    return float(torch.trace(d @ h @ d.T))


def test_identity_quantizer_returns_w_and_zero_loss():
    w, h = layer()
    out = gptq(w, h, IdentityQuantizer(), blocksize=32, act_order=True)
    assert torch.allclose(out.dequant, w, atol=1e-6) and out.loss == pytest.approx(0, abs=1e-12)


def test_logged_loss_is_the_sum_of_scaled_squared_errors_without_feedback_coupling():
    """With one column per block and a diagonal H there is no feedback: the loss is
    sum (w - q)^2 / d^2 / 2 with d the diagonal of chol(H^-1)."""
    w, _ = layer(16, 32, seed=1)
    h = torch.diag(torch.rand(32, dtype=torch.float64) + 0.5)
    out = gptq(w, h, UniformQuantizer(w, 3), blocksize=32, percdamp=0.01)
    hd, _ = prepare_hessian(h, w, 0.01)
    d = torch.diag(inverse_cholesky(hd))
    want = float((((w - out.dequant).double() / d[None, :]) ** 2).sum() / 2)
    assert out.loss == pytest.approx(want, rel=1e-6)


def test_incoherence_rotations_are_orthogonal_and_invert_exactly():
    w, h = layer(32, 64, seed=2)
    inc = make_incoherence(w, h, seed=0)
    for m in (inc.u, inc.v):
        assert torch.allclose(m @ m.T, torch.eye(m.shape[0], dtype=m.dtype), atol=1e-10)
    w_rot, _ = inc.to_rotated(w.double(), h)
    assert torch.allclose(inc.from_rotated(w_rot), w.double(), atol=1e-12)


def test_gptq_beats_rtn_on_the_calibration_objective():
    w, h = layer(seed=3)
    cfg = SimpleNamespace(**CFG)
    errs = {m: out_err(w, quantize_layer(m, cfg, w, h, 3, 0).dequant, h) for m in ("rtn", "gptq")}
    assert errs["gptq"] < errs["rtn"]


def test_lat_layout_packs_bit_exactly_with_one_apot_scale_per_tile():
    w, h = layer(seed=4)
    cfg = SimpleNamespace(**CFG)
    lq = quantize_layer("shiftadd_lat", cfg, w, h, 3, 0)
    p = lq.packed
    assert p["col_group"] == 8 and p["row_group"] == 64 // 8
    assert torch.equal(dequantize(p["planes"], p["codes"], 8, p["row_group"]), lq.dequant)
    # every entry of an 8-column x row_group tile uses the same q scales: |W| takes at most
    # 2^(q-1) distinct magnitudes per tile
    tiles = lq.dequant.abs().reshape(8, 8, 12, 8)  # [row groups, rows, col blocks, cols]
    for r in range(8):
        for c in range(12):
            assert tiles[r, :, c, :].unique().numel() <= 4
    alpha = decode_apot(p["codes"])  # [K/8, N/rg, q]: sorted, positive
    assert bool((alpha[..., :-1] >= alpha[..., 1:]).all()) and bool((alpha > 0).all())
    assert set(unpack_planes(p["planes"]).unique().tolist()) == {-1.0, 1.0}


def test_acc_without_incoherence_has_column_wise_scales_and_beats_lat_and_gptq():
    w, h = layer(seed=5)
    cfg = SimpleNamespace(**CFG)
    acc = quantize_layer("shiftadd_acc", cfg, w, h, 2, 0).dequant
    # each column has its own q scales: at most 2^q distinct values per column
    assert max(acc[:, j].unique().numel() for j in range(w.shape[1])) <= 4
    lat = quantize_layer("shiftadd_lat", cfg, w, h, 2, 0).dequant
    gq = quantize_layer("gptq", cfg, w, h, 2, 0).dequant
    assert out_err(w, acc, h) < out_err(w, lat, h) and out_err(w, acc, h) < out_err(w, gq, h)
