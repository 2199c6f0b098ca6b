"""Training lowers the loss, resumes exactly after an interrupt, and caches by spec."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from celine.llm import reasoning
from celine.llm.cache import TinyLlamaSpec, checkpoint_path, get_or_train, load_trained, read_meta
from celine.llm.hf import load_local_causal_lm
from celine.llm.tiny_llama import PRESETS, Arch, build_model
from celine.llm.tokenizer import TokenizerSettings, encode_documents, train_tokenizer
from celine.llm.train import (
    STATE_FILE,
    TrainingInterrupted,
    get_batch,
    is_complete,
    token_stream,
    train,
)

ARCH = Arch(
    hidden=32, layers=1, heads=2, kv_heads=1, intermediate=64, vocab_size=300, max_positions=128
)
RECIPE = replace(
    PRESETS["smoke"].recipe,
    steps=12,
    batch_size=4,
    seq_len=32,
    warmup=2,
    lr=3e-3,
    eval_interval=6,
    eval_tokens=512,
    log_interval=2,
    checkpoint_interval=5,
)


@pytest.fixture(scope="module")
def data():
    docs = [reasoning.format_solution(p) for p in reasoning.generate_problems(400, seed=0)]
    tok = train_tokenizer(docs[:300], TokenizerSettings(vocab_size=300, individual_digits=True))
    ids = encode_documents(tok, docs)
    return tok, token_stream(ids[:350]), token_stream(ids[350:])


def _model(tok, seed=0):
    return build_model(ARCH, len(tok), seed=seed)


def test_batches_depend_only_on_seed_and_step():
    stream = np.arange(1000, dtype=np.int32)
    a, b = get_batch(stream, 4, 16, seed=1, step=7), get_batch(stream, 4, 16, seed=1, step=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(a[1][:, :-1], a[0][:, 1:])  # targets are inputs shifted by one
    assert not torch.equal(a[0], get_batch(stream, 4, 16, seed=1, step=8)[0])


def test_training_lowers_loss(data, tmp_path):
    tok, tr, va = data
    logs = []
    recipe = replace(RECIPE, steps=40, eval_interval=40, log_interval=5)
    model = build_model(PRESETS["smoke"].arch, len(tok), seed=0)  # the smoke preset's architecture
    m = train(
        model,
        tr,
        va,
        recipe,
        tmp_path,
        tokenizer=tok,
        progress=False,
        on_log=lambda s, d: logs.append((s, d)),
    )
    losses = [d["train/loss"] for s, d in logs if "train/loss" in d]
    assert losses[-1] < losses[0] - 1.0
    assert m["val/perplexity"] < len(tok) / 4
    assert {"train/lr", "train/tokens_per_s", "val/loss", "val/perplexity"} <= set(m)
    meta = json.loads((tmp_path / "celine_meta.json").read_text())
    assert (
        meta["complete"] and meta["final_step"] == 40 and (tmp_path / "model.safetensors").exists()
    )
    assert not (tmp_path / STATE_FILE).exists()


def _weights(path):
    model, _ = load_local_causal_lm(path)
    return model.state_dict()


def test_resume_after_interrupt_matches_uninterrupted_run(data, tmp_path):
    tok, tr, va = data
    full = train(
        _model(tok), tr, va, RECIPE, tmp_path / "full", seed=3, tokenizer=tok, progress=False
    )

    # stop after step 7 (state saved there), then rerun: resumes and ends at step 12
    with pytest.raises(TrainingInterrupted) as e:
        train(
            _model(tok),
            tr,
            va,
            RECIPE,
            tmp_path / "cut",
            seed=3,
            tokenizer=tok,
            progress=False,
            stop_after_step=7,
        )
    assert (
        e.value.step == 7
        and (tmp_path / "cut" / STATE_FILE).exists()
        and not is_complete(tmp_path / "cut")
    )
    resumed = train(
        _model(tok, seed=99),
        tr,
        va,
        RECIPE,
        tmp_path / "cut",
        seed=3,
        tokenizer=tok,
        progress=False,
    )
    assert resumed["final_step"] == full["final_step"] == RECIPE.steps

    # a KeyboardInterrupt from a callback after step 4 also leaves a resumable state
    def boom(step, m):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            _model(tok),
            tr,
            va,
            RECIPE,
            tmp_path / "kbd",
            seed=3,
            tokenizer=tok,
            progress=False,
            on_log=boom,
        )
    assert torch.load(tmp_path / "kbd" / STATE_FILE, weights_only=False)["step"] == 4
    train(_model(tok), tr, va, RECIPE, tmp_path / "kbd", seed=3, tokenizer=tok, progress=False)

    ref = _weights(tmp_path / "full")
    for run in ("cut", "kbd"):
        got = _weights(tmp_path / run)
        assert ref.keys() == got.keys()
        for k in ref:
            torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-6, msg=f"{run}: {k}")
    # and a different seed really gives different weights (the comparison can fail)
    train(_model(tok), tr, va, RECIPE, tmp_path / "other", seed=4, tokenizer=tok, progress=False)
    other = _weights(tmp_path / "other")
    assert not all(torch.allclose(other[k], ref[k]) for k in ref)


def test_get_or_train_caches(tmp_path, monkeypatch):
    spec = TinyLlamaSpec(
        corpus="reasoning",
        size="smoke",
        corpus_options={"n_train": 300, "n_val_per_steps": 2, "n_test_per_steps": 2},
        overrides={
            "steps": 4,
            "eval_interval": 4,
            "batch_size": 2,
            "seq_len": 32,
            "eval_tokens": 256,
        },
        vocab_size=300,
    )
    msgs = []
    path = get_or_train(spec, tmp_path, log=msgs.append, progress=False)
    assert path == checkpoint_path(spec, tmp_path) and path.name.startswith(
        "tiny_llama-reasoning-smoke-"
    )
    assert is_complete(path) and "training it first" in msgs[0]
    assert read_meta(path)["final_step"] == 4

    import celine.llm.train as T

    monkeypatch.setattr(T, "train", lambda *a, **k: pytest.fail("retrained a cached model"))
    msgs.clear()
    assert get_or_train(spec, tmp_path, log=msgs.append) == path and msgs == []
    model, tok = load_trained(path)
    assert model.config.vocab_size == len(tok)
    # anything that determines the model changes the key
    assert TinyLlamaSpec(**{**spec.__dict__, "seed": 1}).key() != spec.key()
    assert (
        TinyLlamaSpec(**{**spec.__dict__, "overrides": {**dict(spec.overrides), "lr": 1e-3}}).key()
        != spec.key()
    )
    assert TinyLlamaSpec(**{**spec.__dict__}).key() == spec.key()


def test_presets_per_corpus_and_keys():
    from celine.llm.tiny_llama import get_preset

    assert (
        get_preset("default", "reasoning").recipe.steps
        != get_preset("default", "code").recipe.steps
    )
    assert get_preset("default", "code") == PRESETS["default"]
    code = TinyLlamaSpec(corpus="code", size="default")
    reason = TinyLlamaSpec(corpus="reasoning", size="default")
    assert reason.preset().recipe.steps == get_preset("default", "reasoning").recipe.steps
    assert reason.resolved()["corpus"]["generator"] == reasoning.GENERATOR_VERSION
    assert "generator" not in code.resolved()["corpus"]
    assert (
        reason.tokenizer_settings().individual_digits
        and reason.tokenizer_settings().vocab_size == 512
    )
    assert (
        TinyLlamaSpec(corpus="reasoning", size="default", overrides={"steps": 7})
        .preset()
        .recipe.steps
        == 7
    )


def test_spec_errors():
    with pytest.raises(ValueError, match="'huge'"):
        TinyLlamaSpec(size="huge")
    with pytest.raises(ValueError, match="layerz"):
        TinyLlamaSpec(overrides={"layerz": 3})
    with pytest.raises(ValueError, match="'wiki'"):
        TinyLlamaSpec(corpus="wiki")


def test_hf_loader_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no/such/model"):
        load_local_causal_lm(tmp_path / "no" / "such" / "model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty.*config.json"):
        load_local_causal_lm(tmp_path / "empty")
    vit = tmp_path / "vit"
    vit.mkdir()
    (vit / "config.json").write_text(json.dumps({"model_type": "vit"}))
    from celine.llm.hf import check_causal_lm_dir

    with pytest.raises(ValueError, match="causal LM.*vit"):
        check_causal_lm_dir(vit)


def test_hf_loader_round_trip(tmp_path):
    from celine.llm.tiny_llama import tiny_test_model

    model, tok = tiny_test_model()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    m2, t2 = load_local_causal_lm(tmp_path, dtype="bfloat16")
    assert m2.dtype == torch.bfloat16 and not m2.training and t2.padding_side == "left"
    with pytest.raises(FileNotFoundError, match="not a complete"):
        load_trained(tmp_path)


SIGTERM_SCRIPT = """
import sys, numpy as np
from dataclasses import replace
from celine.llm.tiny_llama import PRESETS, Arch, build_model
from celine.llm.train import train
arch = Arch(hidden=32, layers=1, heads=2, kv_heads=1, intermediate=64, vocab_size=64, max_positions=64)
recipe = replace(PRESETS["smoke"].recipe, steps=int(sys.argv[2]), batch_size=2, seq_len=16, eval_interval=10**6,
                 eval_tokens=64, log_interval=1, checkpoint_interval=10**6)
stream = np.random.default_rng(0).integers(0, 64, 5000).astype(np.int32)
def on_log(step, m):
    print("STEP", step, flush=True)
train(build_model(arch, 64), stream, stream[:200], recipe, sys.argv[1], progress=False, on_log=on_log)
print("DONE", flush=True)
"""


@pytest.mark.slow
def test_sigterm_saves_state_and_rerun_finishes(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-c", SIGTERM_SCRIPT, str(tmp_path / "run"), "100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        if line.startswith("STEP 3"):
            proc.send_signal(signal.SIGTERM)
            break
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "DONE" not in out
    step = torch.load(tmp_path / "run" / STATE_FILE, weights_only=False)["step"]
    assert step >= 3
    # rerun with a reachable final step: resumes from the saved step and completes
    done = subprocess.run(
        cmd[:-1] + [str(step + 2)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["STEP", str(step + 1)] and "DONE" in done.stdout
    assert is_complete(tmp_path / "run")
