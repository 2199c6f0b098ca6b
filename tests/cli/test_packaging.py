"""`pip install .` ships the rooms, kernels and configs under `celine.*`, never as top-level names
(transformers imports an unrelated package called `kernels` when one is present)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_regular_install_ships_configs_and_rooms_under_celine(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(REPO)],
        check=True, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert not (target / "kernels").exists() and not (target / "experiments").exists()
    assert (target / "celine" / "conf" / "config.yaml").is_file()
    assert (target / "celine" / "conf" / "task" / "lm_pretrain.yaml").is_file()
    code = (
        "import importlib.util, sys\n"
        "from celine import paths\n"
        "import celine.experiments.lm_pretrain, celine.kernels\n"
        "assert importlib.util.find_spec('kernels') is None, 'top-level kernels'\n"
        "assert importlib.util.find_spec('experiments') is None, 'top-level experiments'\n"
        "print(paths.config_dir())\n"
        "from celine.cli import main\n"
        "sys.exit(main(['validate']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("CELINE_CONFIG_DIR", None)
    # run outside the checkout, so only the installed copy can be imported
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r})\n" + code],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    config_dir = Path(out.stdout.splitlines()[0])
    assert config_dir == target / "celine" / "conf"
    assert "task presets valid" in out.stdout


def test_editable_install_reads_the_checkout():
    import celine.experiments
    import celine.kernels
    from celine import paths

    assert Path(celine.experiments.__file__).parent == REPO / "experiments"
    assert Path(celine.kernels.__file__).parent == REPO / "kernels"
    assert paths.config_dir() == REPO / "conf"
