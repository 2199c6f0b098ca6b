"""Compose configs without running them (for `celine validate`, `celine ls` and tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from celine import paths

OmegaConf.register_new_resolver("celine_outputs", lambda: str(paths.outputs_dir()), replace=True)


def options(group: str) -> list[str]:
    """The preset names of a config group, from the YAML files of the config folder."""
    folder = paths.config_dir() / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


@contextmanager
def hydra_context(config_dir: Path | None = None) -> Iterator[None]:
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir or paths.config_dir()), version_base="1.3"):
        yield


def compose(overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """Compose the primary config with overrides (call inside `hydra_context`)."""
    from hydra import compose as hydra_compose

    return hydra_compose("config", overrides=overrides, return_hydra_config=return_hydra_config)
