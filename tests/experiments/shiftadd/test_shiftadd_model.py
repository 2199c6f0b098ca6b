"""ShiftAddLinear inside a transformers Llama, and `celine run task=shiftadd` end to end."""

import pytest
import torch
from celine_testing import client, run_in_process, runs_of

from celine.experiments.shiftadd.calibrate import block_linears, decoder_blocks, quantize_sequential
from celine.experiments.shiftadd.layer_quant import quantize_layer
from celine.experiments.shiftadd.qlinear import ShiftAddLinear
from celine.llm.tiny_llama import tiny_test_model

CFG = dict(groupsize=-1, blocksize=128, percdamp=0.01, act_order=True, bcq_rounds=5,
           apot_terms=3)  # fmt: skip


def quantized_tiny_model(bits=2):
    from types import SimpleNamespace

    model, _ = tiny_test_model(seed=0)
    calib = torch.randint(0, 300, (4, 32), generator=torch.Generator().manual_seed(0))
    dense = {}

    def quantize(b, name, lin, h):
        lq = quantize_layer("shiftadd_lat", SimpleNamespace(**CFG), lin.weight, h, bits, 0)
        dense[(b, name)] = lq.dequant
        p = lq.packed
        return ShiftAddLinear(p["planes"], p["codes"], 8, p["row_group"], lin.bias)

    with torch.no_grad():
        quantize_sequential(model, calib, quantize)
    return model, dense


def test_packed_model_runs_the_lut_path_and_matches_the_dequantized_weights():
    model, dense = quantized_tiny_model()
    mods = {
        (b, n): m
        for b, blk in enumerate(decoder_blocks(model))
        for n, m in blk.named_modules()
        if isinstance(m, ShiftAddLinear)
    }
    assert set(mods) == set(dense) and len(mods) == 14  # 7 linears x 2 blocks, all replaced
    for key, mod in mods.items():
        assert torch.equal(mod.dequantized(), dense[key])
        x = torch.randn(3, mod.in_features)
        assert torch.allclose(mod(x), x @ dense[key].T, rtol=1e-5, atol=1e-6)  # LUT reference
    ids = torch.randint(0, 300, (1, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        lut_logits = model(input_ids=ids).logits  # 12 rows per linear: the LUT path
        for mod in mods.values():
            mod.lut_rows = 0  # force the dequantized-weight path
        dense_logits = model(input_ids=ids).logits
    assert torch.allclose(lut_logits, dense_logits, rtol=1e-4, atol=1e-5)
    assert not any(block_linears(b) for b in decoder_blocks(model))  # no nn.Linear left


@pytest.mark.gpu
@pytest.mark.parametrize("kernel", ["triton", "cuda"])
def test_decode_kernels_on_cuda_match_the_dequantized_weights(kernel):
    model, dense = quantized_tiny_model()
    mods = [
        m for blk in decoder_blocks(model) for m in blk.modules() if isinstance(m, ShiftAddLinear)
    ]
    for mod in mods:
        mod.kernel = kernel
        mod.cuda()
        x = torch.randn(2, mod.in_features, device="cuda")
        want = x @ mod.dequantized().float().T
        assert torch.allclose(mod(x).float(), want, rtol=2e-3, atol=2e-3)


@pytest.fixture
def hf_checkpoint(tmp_path):
    """The random tiny Llama as a local checkpoint, and a small text_dir corpus beside it."""
    from celine.llm.tiny_llama import _TINY_TEXT

    model, tok = tiny_test_model()
    ckpt = tmp_path / "ckpt"
    model.save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(12):
        (corpus / f"doc{i}.txt").write_text(_TINY_TEXT.replace("17", str(i)) * 2)
    return ckpt, corpus


def tiny(paths) -> list[str]:
    ckpt, corpus = paths
    return ["task=shiftadd", "model=hf", f"model.path={ckpt}", "task.corpus=text_dir",
            f"task.data_root={corpus}", "task.nsamples=4", "task.calib_seqlen=32",
            "task.eval_tokens=300", "task.window=64", "task.gemv_iters=1"]  # fmt: skip


def test_run_finishes_in_mlflow_with_its_metrics(outputs, tmp_path, hf_checkpoint):
    overrides = [*tiny(hf_checkpoint), "method.bits=2", "method.bcq_rounds=3",
                 "method.bit_alloc=ilp", "method.avg_bits=3"]  # fmt: skip
    metrics = run_in_process(overrides, tmp_path / "run")
    (run,) = runs_of(outputs, "shiftadd")
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test/perplexity"] == pytest.approx(metrics["test/perplexity"])
    assert 2.0 < metrics["model/avg_bits"] <= 3.0  # the budget is an upper bound
    # q bits + one fp16 scale per (8 columns x N/8 rows, bit) = q + 16 q / N: large for N = 32
    assert 3.0 < metrics["model/bits_per_weight"] < 4.0
    assert metrics["model/linear_mbytes"] < metrics["model/fp16_linear_mbytes"] / 3
    assert -1 <= metrics["alloc/kendall_tau"] <= 1 and metrics["gemv/lut_us"] > 0
    curve = client(outputs).get_metric_history(run.info.run_id, "quant/output_rel_err")
    assert len(curve) == 14
    assert (tmp_path / "run" / "tables" / "layers.csv").is_file()
    assert (tmp_path / "run" / "plots" / "layer_errors.png").is_file()


def test_bad_bits_fail_early_naming_the_key(outputs, tmp_path, hf_checkpoint):
    from celine.api import ConfigError

    with pytest.raises(ConfigError, match="method.bits"):
        run_in_process([*tiny(hf_checkpoint), "method.bits=9"], tmp_path / "r")


def test_unknown_gemv_kernel_is_refused_naming_the_choices():
    from celine.api import ConfigError
    from celine.experiments.shiftadd.config import ShiftAddLatConfig

    with pytest.raises(ConfigError, match="method.gemv_kernel.*triton \\| cuda"):
        ShiftAddLatConfig(gemv_kernel="cutlass")


def test_dense_copies_stay_within_the_shared_cache_bound():
    from celine.experiments.shiftadd import qlinear

    model, dense = quantized_tiny_model()
    mods = [m for m in model.modules() if isinstance(m, ShiftAddLinear)]
    one = max(d.numel() * 4 for d in dense.values())
    old = qlinear.DENSE_CACHE.budget
    try:
        for budget in (0, 2 * one):
            qlinear.set_dense_cache_bytes(budget)
            for mod in mods:  # 40 rows: the dense path of every layer
                x = torch.randn(40, mod.in_features)
                want = x @ mod.dequantized().T
                assert torch.allclose(mod(x), want, rtol=1e-5, atol=1e-6)
                assert qlinear.DENSE_CACHE.nbytes <= budget
            # no layer keeps a dense copy of its own: only the packed buffers
            for mod in mods:
                held = [t for t in vars(mod).values() if isinstance(t, torch.Tensor)]
                assert not held and {n for n, _ in mod.named_buffers()} <= {"planes", "codes"}
        assert len(qlinear.DENSE_CACHE.entries) == 2  # the budget holds two, LRU keeps the last
    finally:
        qlinear.set_dense_cache_bytes(old)


def test_in_features_not_a_multiple_of_32_are_packed_padded():
    from types import SimpleNamespace

    g = torch.Generator().manual_seed(4)
    w = torch.randn(64, 176, generator=g) * 0.05  # tiny_llama smoke's down_proj
    x = torch.randn(256, 176, generator=g)
    h = x.T @ x / 256
    lq = quantize_layer("shiftadd_lat", SimpleNamespace(**CFG), w, h, 3, 0)
    p = lq.packed
    assert p["planes"].shape == (3, 6, 64) and p["in_features"] == 176
    mod = ShiftAddLinear(p["planes"], p["codes"], 8, p["row_group"], in_features=176)
    assert torch.equal(mod.dequantized(), lq.dequant)
    xs = torch.randn(5, 176, generator=g)
    assert torch.allclose(mod(xs), xs @ lq.dequant.T, rtol=1e-5, atol=1e-5)  # LUT path
    assert mod(torch.randn(2, 20, 176)).shape == (2, 20, 64)  # dense path


def test_untileable_shapes_fail_before_calibration(outputs, tmp_path, hf_checkpoint, monkeypatch):
    from celine.api import ConfigError
    from celine.experiments.shiftadd.task import ShiftAddTask

    def no_calibration(*a, **k):
        raise AssertionError("calibration ran before the shape check")

    monkeypatch.setattr(ShiftAddTask, "calibration", no_calibration)
    with pytest.raises(ConfigError, match="method.groupsize"):
        # 48/8 = 6 rows per scale cannot tile the 64 output features
        run_in_process([*tiny(hf_checkpoint), "method.groupsize=48"], tmp_path / "r")
