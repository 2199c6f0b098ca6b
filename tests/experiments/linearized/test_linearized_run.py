"""`celine run task=linearized` end to end on a tiny random model (no cached checkpoint)."""

import pandas as pd
import pytest
from celine_testing import compose, run_in_process, runs_of

from celine.api import ConfigError

TINY = [
    "task=linearized",
    "model=hf",
    "task.corpus=text_dir",
    "task.eval_tokens=400",
    "task.prompts=1",
    "task.prompt_tokens=12",
    "task.new_tokens=10",
    "task.latency_contexts=[40,64]",
    "task.latency_steps=2",
    "method.steps=3",
    "method.medusa_steps=2",
    "method.draft_steps=2",
    "method.batch_size=2",
    "method.medusa_batch_size=2",
    "method.seq_len=32",
    "method.tree_size=8",
    "method.medusa_num_heads=2",
    "method.group_size=8",
    "++task.decode_repeats=2",
    "++task.exact_prompts=1",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small local text_dir corpus (the built-in ones take ~30 s to tokenize)."""
    root = tmp_path_factory.mktemp("corpus")
    for i in range(120):
        body = "".join(f"def f{i}_{j}(a, b):\n    return a * {j} + b - {i}\n\n" for j in range(12))
        (root / f"doc{i:03d}.txt").write_text(body)
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from celine.llm.tiny_llama import tiny_test_model

    model, tok = tiny_test_model()
    path = tmp_path_factory.mktemp("ckpt")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_augmented_run_finishes_with_its_metrics_and_tables(outputs, tmp_path, checkpoint, corpus):
    overrides = [*TINY, f"model.path={checkpoint}", f"task.data_root={corpus}"]
    metrics = run_in_process(overrides, tmp_path / "run")
    (run,) = runs_of(outputs, "linearized")
    assert run.info.status == "FINISHED"
    assert run.data.tags["celine.method"] == "lin_augmented"
    assert metrics["decode/spec_equals_greedy"] == 1.0  # against the full recompute
    assert metrics["decode/medusa_mean_accepted"] >= 1.0
    assert metrics["decode/medusa_prior_mean_accepted"] >= 1.0  # the prior tree, beside
    assert "medusa/head0_top1_accuracy" in metrics  # the measured tree reports what it used
    lo, hi = metrics["decode/ar_tokens_per_s_min"], metrics["decode/ar_tokens_per_s_max"]
    assert lo <= metrics["decode/ar_tokens_per_s"] <= hi
    timing = pd.read_csv(tmp_path / "run" / "tables" / "decode_timing.csv")
    assert len(timing) == 2 * 4  # 2 repeats x (autoregressive, medusa, medusa_prior, draft)
    assert metrics["decode/draft_model_mean_accepted"] >= 1.0
    assert metrics["linearized_init/test_perplexity"] > 0
    latency = pd.read_csv(tmp_path / "run" / "tables" / "latency.csv")
    assert list(latency["context"]) == [40, 64]
    assert latency["state_bytes"].nunique() == 1  # the linear state does not grow
    assert (tmp_path / "run" / "plots" / "latency_vs_context.png").is_file()


@pytest.mark.parametrize(
    "override, key",
    [
        ("method=lin_augmented method.name=lin_quadratic", "method.name"),
        ("method.conv_kernel=64", "method.conv_kernel"),
        ("method.finetune=adapters", "method.finetune"),
    ],
)
def test_bad_method_settings_fail_early_naming_the_key(override, key):
    from celine.validation import plan

    cfg = compose(["task=linearized", *override.split()])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        plan(cfg)


@pytest.fixture(scope="module")
def sensitive_checkpoint(tmp_path_factory):
    """The test Llama with its attention output scaled up 20x: at init std 0.02 the random
    model's argmax ignores attention (it emits one token forever), so no attention bug, a
    broken mask included, could change its output."""
    import torch

    from celine.llm.tiny_llama import tiny_test_model

    model, tok = tiny_test_model()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.mul_(20.0)
            layer.self_attn.v_proj.weight.mul_(20.0)
    path = tmp_path_factory.mktemp("sensitive")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.parametrize(
    "broken",
    [pytest.param(False, marks=pytest.mark.slow), True],
    ids=["tree_mask", "broken_tree_mask"],
)
def test_batched_run_checks_exactness_against_a_full_recompute(
    outputs, tmp_path, sensitive_checkpoint, corpus, monkeypatch, broken
):
    """Every run checks its speculative outputs against a full recompute (not the tree code):
    a batch of 4 passes it; with tree nodes that see every other node, it must fail."""
    import torch

    from celine.experiments.linearized import decoding

    def sees_everything(parents, device):
        depth, anc = real(parents, device)
        return depth, torch.ones_like(anc)

    real = decoding.tree_shape
    if broken:
        monkeypatch.setattr(decoding, "tree_shape", sees_everything)
    overrides = [
        *TINY, f"model.path={sensitive_checkpoint}", f"task.data_root={corpus}", "task.prompts=4",
        "++task.decode_batch=4", "++task.exact_prompts=2", "method.draft_layers=0",
        "task.latency_contexts=[40]", "++task.decode_repeats=1",
    ]  # fmt: skip
    metrics = run_in_process(overrides, tmp_path / "run")
    if broken:
        assert metrics["decode/spec_equals_greedy"] < 1.0
    else:
        assert metrics["decode/spec_equals_greedy"] == 1.0
        assert metrics["decode/same_as_autoregressive"] == 1.0
