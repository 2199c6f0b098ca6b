"""Bad user input fails early in one line naming the file or key, the value and what is allowed;
a user's checkpoint is never unpickled (issue #21)."""

from __future__ import annotations

import builtins
import re
import subprocess
from pathlib import Path

import pytest
from celine_testing import compose

from celine import validation
from celine.errors import CelineError, ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ checkpoints are not unpickled


class _Hostile:
    """Unpickling this runs code: it writes the file named by `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _hostile_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    import torch

    marker, path = tmp_path / "pwned", tmp_path / "model.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": _Hostile(marker)}, path)
    return path, marker


def test_a_checkpoint_that_would_run_code_is_refused_naming_the_key(tmp_path):
    from celine.api import load_checkpoint

    path, marker = _hostile_checkpoint(tmp_path)
    with pytest.raises(ConfigError, match=r"model\.path='.*model\.pt' is not allowed") as err:
        load_checkpoint(path, "model.path")
    assert not marker.exists()
    assert "\n" not in str(err.value)


def test_the_rooms_loaders_refuse_it_too(tmp_path):
    from torch import nn

    from celine.experiments.med_amalgamation.nets import load_target_checkpoint

    path, marker = _hostile_checkpoint(tmp_path)
    with pytest.raises(ConfigError, match="model.checkpoint"):
        load_target_checkpoint(nn.Linear(2, 2), str(path))
    assert not marker.exists()


def test_plain_state_dicts_load_from_pt_and_safetensors(tmp_path):
    import torch
    from safetensors.torch import save_file

    from celine.api import load_checkpoint

    state = {"w": torch.randn(3, 2), "b": torch.randn(3)}
    torch.save({"model": state, "epoch": 4}, tmp_path / "a.pt")
    save_file(state, str(tmp_path / "a.safetensors"))
    loaded = load_checkpoint(tmp_path / "a.pt", "model.path")
    assert loaded["epoch"] == 4 and torch.equal(loaded["model"]["w"], state["w"])
    loaded = load_checkpoint(tmp_path / "a.safetensors", "model.path")
    assert torch.equal(loaded["b"], state["b"])


def test_no_loader_unpickles_with_weights_only_false():
    out = subprocess.run(
        ["grep", "-rn", "--include=*.py", "weights_only=False", "celine", "experiments", "kernels"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert out.stdout == ""


# ------------------------------------------------------------------ config values


def _plan(overrides):
    return validation.plan(compose(overrides))


def test_seq_len_above_the_models_positions_is_refused():
    with pytest.raises(ConfigError) as err:
        _plan(["task=lm_pretrain", "model.size=smoke", "model.seq_len=100000"])
    assert str(err.value).startswith("model.seq_len=100000 is not allowed: expected at most 256")
    _plan(["task=lm_pretrain", "model.size=smoke", "model.seq_len=256"])  # the limit itself is fine


@pytest.mark.parametrize("lr", ["0.0", "-0.001"])
def test_a_learning_rate_of_zero_or_below_is_refused(lr):
    with pytest.raises(
        ConfigError, match=rf"model\.lr={re.escape(lr)} is not allowed: expected .*above 0"
    ):
        _plan(["task=lm_pretrain", f"model.lr={lr}"])


def test_a_missing_required_path_names_the_key_without_is_not_allowed():
    with pytest.raises(ConfigError) as err:
        _plan(["task=lm_pretrain", "method=evaluate", "model=hf", "task.corpus=code"])
    message = str(err.value)
    assert message.startswith("model.path is required: model 'hf' needs it")
    assert "is not allowed" not in message


# ------------------------------------------------------------------ data files


def test_an_empty_corpus_folder_is_a_one_line_data_error(tmp_path):
    from celine.llm.corpora import load_corpus

    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        load_corpus("text_dir", str(tmp_path / "empty"))
    assert isinstance(err.value, CelineError) and "\n" not in str(err.value)
    assert "no .txt files" in str(err.value) and str(tmp_path / "empty") in str(err.value)


def test_a_malformed_corpus_file_fails_the_run_with_one_line(tmp_path, outputs):
    # `celine run` prints a CelineError as one log line and exits 2 (tests/cli/test_cli.py)
    from celine_testing import run_in_process, runs_of

    bad = tmp_path / "corpus.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": broken\n')
    overrides = ["task=lm_pretrain", "model.size=smoke", "model.corpus=jsonl",
                 f"model.data_root={bad}"]  # fmt: skip
    with pytest.raises(DataError) as err:
        run_in_process(overrides, tmp_path / "run")
    assert isinstance(err.value, CelineError) and "\n" not in str(err.value)
    assert re.fullmatch(rf"'{re.escape(str(bad))}' line 2: not valid JSON .*", str(err.value))
    (run,) = runs_of(outputs, "lm_pretrain")
    assert run.info.status == "FAILED"
