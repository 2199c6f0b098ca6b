"""Shared fixtures: an MLflow store migrated once per session, a config folder with the test
room, environment isolation, and the gpu / triton / slow skips."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))  # the test room `toy_room`


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    markexpr = config.getoption("-m") or ""
    run_slow = config.getoption("--run-slow") or "slow" in markexpr
    cuda = _cuda_available()
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: run with --run-slow or -m slow"))
        if "gpu" in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
        if "triton" in item.keywords and not (cuda or interpret):
            item.add_marker(pytest.mark.skip(reason="needs a GPU or TRITON_INTERPRET=1"))


@pytest.fixture(scope="session")
def tiny_vllm_model(tmp_path_factory) -> Path:
    """The checkpoint folder the real-vLLM tests serve: a random-init smoke-size Llama
    (head_dim 32, a size vLLM's CPU attention has) and its tokenizer."""
    from celine.llm.tiny_llama import tiny_test_model

    model, tok = tiny_test_model(hidden=128)
    path = tmp_path_factory.mktemp("tiny_vllm")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def vllm_smoke_engine(tmp_path_factory, tiny_vllm_model):
    """ONE real vLLM engine per pytest session, shared by every test that needs one
    (tests/serving/test_vllm_engine.py, tests/experiments/dynasor/test_engine_programs.py):
    `tiny_vllm_model` with a one-sequence budget (max_num_seqs=1), so the order in which
    requests finish is decided by the scheduler alone. Starting it takes ~1-3 min on a loaded 2-core machine. A test may shut
    it down (the engine-processes-are-gone test); the `vllm_engine` fixture restarts it then."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (the `serve` extra: pip install -e '.[serve]')")
    from celine.serving.vllm_engine import VLLMEngine

    eng = VLLMEngine(tiny_vllm_model, work_dir=tmp_path_factory.mktemp("engine"), max_num_seqs=1,
                     max_num_batched_tokens=256, max_model_len=256, omp_threads=1)  # fmt: skip
    yield eng
    eng.shutdown()


@pytest.fixture
def vllm_engine(vllm_smoke_engine):
    """The shared engine, (re)started if it is not running."""
    if vllm_smoke_engine.engine is None:
        vllm_smoke_engine.start()
    return vllm_smoke_engine


@pytest.fixture(scope="session")
def vllm_http_session(tmp_path_factory, tiny_vllm_model):
    """ONE real `vllm serve` per pytest session (celine.serving.vllm_server: its own process
    group on 127.0.0.1 and a free port) serving `tiny_vllm_model`, for the OpenAI-compatible
    HTTP client tests (tests/serving/test_vllm_http.py). Starting it takes ~35 s on a quiet
    2-core machine, ~2 min on a loaded one. Its process group is killed when the session ends, also after a failure or
    Ctrl-C (the with-block's exit runs in the fixture's teardown)."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (the `serve` extra: pip install -e '.[serve]')")
    from celine.serving.vllm_server import VLLMServer

    server = VLLMServer(tiny_vllm_model, work_dir=tmp_path_factory.mktemp("vllm_server"),
                        max_model_len=256, max_num_seqs=4, omp_threads=1)  # fmt: skip
    with server:
        yield server


@pytest.fixture
def vllm_server(vllm_http_session):
    """The shared server, (re)started if a test stopped it."""
    if vllm_http_session.proc is None:
        vllm_http_session.start()
    return vllm_http_session


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """A migrated SQLite store: creating one costs ~7 s of migrations, copying it ~0.05 s."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def outputs(tmp_path, mlflow_template, monkeypatch) -> Path:
    """A fresh outputs folder holding a copy of the migrated store; CELINE_OUTPUTS points at it."""
    out = tmp_path / "outputs"
    out.mkdir()
    shutil.copy(mlflow_template, out / "mlflow.db")
    monkeypatch.setenv("CELINE_OUTPUTS", str(out))
    return out


@pytest.fixture
def toy_conf(tmp_path, monkeypatch) -> Path:
    """A copy of conf/ plus the test room's presets; CELINE_CONFIG_DIR points at it."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    shutil.copytree(FIXTURES / "toy_conf", conf, dirs_exist_ok=True)
    monkeypatch.setenv("CELINE_CONFIG_DIR", str(conf))
    monkeypatch.setenv("CELINE_PLUGINS", "toy_room")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")])
    )
    import toy_room  # noqa: F401  (registers the toy task in this process)

    return conf
