"""Where the configs and outputs live, as absolute paths.

Hydra turns a relative `config_path` into a package path once `celine` runs as a console script,
so the config folder is always resolved here: $CELINE_CONFIG_DIR, else the checkout's `conf/`
(an editable install sees live YAML), else the copy shipped in the wheel as `celine.conf`.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The git checkout `celine` is imported from, if any (editable install or source tree)."""
    root = _PACKAGE_DIR.parent
    if (root / "conf" / "config.yaml").is_file() and (root / "pyproject.toml").is_file():
        return root
    return None


def config_dir() -> Path:
    if env := os.environ.get("CELINE_CONFIG_DIR"):
        return Path(env).resolve()
    root = checkout_root()
    if root is not None:
        return root / "conf"
    return Path(str(files("celine.conf")))


def outputs_dir() -> Path:
    """$CELINE_OUTPUTS, else <checkout>/outputs, else ./outputs (installed package)."""
    if env := os.environ.get("CELINE_OUTPUTS"):
        return Path(env).resolve()
    root = checkout_root()
    return (root if root is not None else Path.cwd()).resolve() / "outputs"


def default_tracking_uri(outputs: Path | None = None) -> str:
    return f"sqlite:///{(outputs or outputs_dir()) / 'mlflow.db'}"
