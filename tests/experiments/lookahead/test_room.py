"""The room end to end (config, runner, MLflow) and its input checks."""

import json

import pytest
from celine_testing import compose, run_in_process, runs_of

from celine.api import ConfigError


@pytest.fixture(scope="module")
def hf_ckpt(tmp_path_factory):
    """The random-init test Llama saved as a local Hugging Face checkpoint (model=hf)."""
    from celine.llm.tiny_llama import tiny_test_model

    model, tok = tiny_test_model()
    path = tmp_path_factory.mktemp("ckpt")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _overrides(ckpt, *extra):
    return [
        "task=lookahead", "model=hf", f"model.path={ckpt}", "task.workload=reasoning",
        "task.num_prompts=2", "task.max_new_tokens=12", "task.warmup=false", *extra,
    ]  # fmt: skip


def test_lookahead_run_finishes_in_mlflow_with_its_metrics(outputs, tmp_path, hf_ckpt):
    metrics = run_in_process(
        _overrides(hf_ckpt, "method.level=3", "method.window=3"), tmp_path / "r"
    )
    assert metrics["decode/exact_match"] == 1.0
    (run,) = runs_of(outputs, "lookahead")
    assert run.info.status == "FINISHED"
    assert run.data.metrics["decode/exact_match"] == 1.0
    table = (tmp_path / "r" / "tables" / "per_prompt.csv").read_text()
    assert table.startswith("prompt,prompt_tokens,new_tokens,steps")
    assert (tmp_path / "r" / "plots" / "accepted_tokens.png").is_file()


@pytest.mark.parametrize(
    "method", ["prompt_lookup", "jacobi", pytest.param("greedy", marks=pytest.mark.slow)]
)
def test_baselines_run_and_equal_greedy(outputs, tmp_path, hf_ckpt, method):
    metrics = run_in_process(_overrides(hf_ckpt, f"method={method}"), tmp_path / method)
    assert metrics["decode/exact_match"] == 1.0
    notes = json.loads((tmp_path / method / "results.json").read_text())
    assert notes["metrics"]["decode/tokens"] == 24


def test_local_jsonl_prompts(tmp_path, hf_ckpt):
    from celine.experiments.lookahead.workloads import jsonl_texts

    f = tmp_path / "bench.jsonl"
    f.write_text('{"task_id": 1, "prompt": "def f(x):\\n"}\n{"turns": ["Hi there", "more"]}\n')
    assert jsonl_texts(str(f)) == ["def f(x):\n", "Hi there"]
    (tmp_path / "bad.jsonl").write_text('{"answer": 3}\n')
    with pytest.raises(ValueError, match="none of the fields"):
        jsonl_texts(str(tmp_path / "bad.jsonl"))


@pytest.mark.parametrize(
    "override,key",
    [
        ("method.level=1", "method.level"),
        ("method.window=0", "method.window"),
        ("method.guess_set_size=-1", "method.guess_set_size"),
        ("task.workload=tweets", "task.workload"),
        ("task.workload=jsonl", "task.data_root"),
        ("task.data_root=/no/such/file.jsonl", "task.data_root"),
    ],
)
def test_bad_input_is_refused_early_naming_the_key(override, key):
    from celine import validation

    cfg = compose(["task=lookahead", override])
    with pytest.raises(ConfigError) as err:
        validation.plan(cfg)
    assert err.value.key == key


@pytest.fixture(scope="module")
def ids_only_ckpt(tmp_path_factory):
    """config.json + model.safetensors only: a random LlamaForCausalLM, no tokenizer files."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        eos_token_id=95, bos_token_id=1,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("ids_only")
    LlamaForCausalLM(cfg).save_pretrained(path)
    for extra in set(p.name for p in path.iterdir()) - {"config.json", "model.safetensors"}:
        (path / extra).unlink()
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    return path


# `++key=value`: the new task keys live in the schema (the dataclass); conf/task/lookahead.yaml
# does not list them yet, and Hydra refuses a plain override of a key its YAML lacks.
def test_ids_prompts_run_on_a_checkpoint_without_tokenizer(outputs, tmp_path, ids_only_ckpt):
    ids = tmp_path / "ids.jsonl"
    ids.write_text('{"input_ids": [5, 6, 7, 8, 5, 6, 7]}\n[9, 10, 11, 12, 13]\n[3, 4, 3, 4, 3]\n')
    overrides = [
        "task=lookahead", "model=hf", f"model.path={ids_only_ckpt}", f"++task.prompts={ids}",
        "task.max_new_tokens=16", "task.warmup=false", "method.level=3", "method.window=3",
        "++task.attn_implementation=eager",
    ]  # fmt: skip
    metrics = run_in_process(overrides, tmp_path / "r")
    assert metrics["decode/exact_match"] == 1.0
    assert metrics["decode/tokens"] > 3 * 4  # more than a token or two per prompt
    (run,) = runs_of(outputs, "lookahead")
    assert run.info.status == "FINISHED"


def test_sampling_run_reports_speed_against_plain_sampling(outputs, tmp_path, hf_ckpt):
    metrics = run_in_process(
        _overrides(hf_ckpt, "method.level=3", "method.window=3", "++task.temperature=1.0",
                   "++task.top_p=0.95"), tmp_path / "s",
    )  # fmt: skip
    assert "decode/exact_match" not in metrics  # draws are not compared token for token
    assert metrics["sampling/compression_ratio"] == 1.0  # plain sampling: one token a forward
    assert {"decode/compression_ratio", "decode/speedup"} <= set(metrics)  # against plain sampling


@pytest.mark.parametrize(
    "override, key",
    [("++task.temperature=-1", "task.temperature"), ("++task.top_p=0", "task.top_p"),
     ("++task.attn_implementation=flash9", "task.attn_implementation"),
     ("++task.prompts=/no/such.jsonl", "task.prompts")],
)  # fmt: skip
def test_bad_decoding_settings_fail_early_naming_the_key(override, key):
    from celine.validation import plan

    cfg = compose(["task=lookahead", override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        plan(cfg)


def test_jacobi_refuses_sampling(tmp_path, hf_ckpt):
    with pytest.raises(ConfigError, match=r"task\.temperature"):
        run_in_process(_overrides(hf_ckpt, "method=jacobi", "++task.temperature=1"), tmp_path / "j")
