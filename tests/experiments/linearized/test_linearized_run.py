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
    assert metrics["decode/spec_equals_greedy"] == 1.0
    assert metrics["decode/medusa_mean_accepted"] >= 1.0
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
