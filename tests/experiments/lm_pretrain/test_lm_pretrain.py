"""lm_pretrain end to end on the CPU, with fixed seeds."""

import json

import numpy as np
import pytest
from celine_testing import client, run_in_process, runs_of

SMOKE = ["task=lm_pretrain", "model.size=smoke", "task.eval_tokens=20000"]


@pytest.fixture(scope="module")
def shared_outputs(tmp_path_factory, mlflow_template):
    """One outputs folder (and model cache) for the module, so the smoke model trains once."""
    import shutil

    out = tmp_path_factory.mktemp("lm_outputs")
    shutil.copy(mlflow_template, out / "mlflow.db")
    return out


@pytest.fixture
def outputs_env(shared_outputs, monkeypatch):
    monkeypatch.setenv("CELINE_OUTPUTS", str(shared_outputs))
    return shared_outputs


def test_pretrain_beats_the_unigram_baseline_and_logs_a_falling_curve(outputs_env, tmp_path):
    metrics = run_in_process(SMOKE, tmp_path / "run")
    assert metrics["test/perplexity"] < 0.95 * metrics["test/unigram_perplexity"]
    (run,) = [
        r for r in runs_of(outputs_env, "lm_pretrain") if r.data.tags["celine.method"] == "pretrain"
    ]
    assert run.info.status == "FINISHED"
    val = client(outputs_env).get_metric_history(run.info.run_id, "val/perplexity")
    curve = [m.value for m in sorted(val, key=lambda m: m.step)]
    assert len(curve) >= 2 and curve[-1] < curve[0]
    assert (tmp_path / "run" / "plots" / "learning_curves.png").is_file()


def test_second_run_reuses_the_cached_model_and_still_shows_its_curve(outputs_env, tmp_path):
    first = run_in_process(SMOKE, tmp_path / "a")
    again = run_in_process(SMOKE, tmp_path / "b")
    assert again["test/perplexity"] == pytest.approx(first["test/perplexity"], rel=1e-6)
    notes = json.loads((tmp_path / "b" / "results.json").read_text())["notes"]
    assert notes["cached"].startswith("true")
    run = runs_of(outputs_env, "lm_pretrain")[-1]
    assert len(client(outputs_env).get_metric_history(run.info.run_id, "train/loss")) > 1


def test_unigram_method_scores_the_cached_streams_like_a_fresh_encoding(outputs_env, tmp_path):
    """The baseline from the cached token streams equals one computed from a fresh encoding
    of the corpus with the model's own tokenizer (cache, slicing and tokenizer all agree)."""
    from celine.llm.evaluate import unigram_perplexity
    from celine.llm.tokenizer import load_tokenizer

    metrics = run_in_process([*SMOKE, "method=unigram"], tmp_path / "run")
    assert metrics["test/perplexity"] == metrics["test/unigram_perplexity"]
    # the smoke model trained above saved the same tokenizer the unigram used
    ckpt = next((outputs_env / "models").glob("tiny_llama-code-smoke-*[!k]"))
    tok = load_tokenizer(ckpt)
    from celine.llm.corpora import load_corpus
    from celine.llm.tokenizer import encode_documents
    from celine.llm.train import token_stream

    splits = load_corpus("code")
    train = token_stream(encode_documents(tok, splits.train))
    test = token_stream(encode_documents(tok, splits.test))[: 20000 + 1]
    ref = unigram_perplexity(train, test, len(tok))
    assert metrics["test/perplexity"] == pytest.approx(ref.perplexity, rel=1e-9)
    assert np.isfinite(metrics["val/perplexity"])


def test_reasoner_reports_accuracy_per_difficulty(outputs_env, tmp_path):
    overrides = [
        "task=lm_pretrain", "model=tiny_reasoner", "model.size=smoke", "model.steps=4",
        "task.eval_tokens=2000", "task.reasoning_per_difficulty=2", "task.reasoning_max_new_tokens=4",
    ]  # fmt: skip
    metrics = run_in_process(overrides, tmp_path / "run")
    assert 0.0 <= metrics["reasoning/accuracy"] <= 1.0
    assert {f"reasoning/accuracy_steps_{k}" for k in range(1, 9)} <= set(metrics)
    import pandas as pd

    table = pd.read_csv(tmp_path / "run" / "tables" / "reasoning_accuracy.csv")
    assert list(table["n"][:8]) == [2] * 8 and table["steps"].iloc[-1] == "all"


def test_evaluate_a_local_hugging_face_checkpoint(outputs_env, tmp_path):
    from celine.llm.tiny_llama import tiny_test_model

    model, tok = tiny_test_model()
    ckpt = tmp_path / "ckpt"
    model.save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    overrides = [
        "task=lm_pretrain", "method=evaluate", "model=hf", f"model.path={ckpt}",
        "task.corpus=reasoning", "task.eval_tokens=500", "task.reasoning_per_difficulty=1",
        "task.reasoning_max_new_tokens=2",
    ]  # fmt: skip
    metrics = run_in_process(overrides, tmp_path / "run")
    # an untrained model is close to uniform over its vocabulary: worse than the unigram
    assert metrics["test/perplexity"] > metrics["test/unigram_perplexity"]
    assert metrics["model/params"] == sum(p.numel() for p in model.parameters())
