"""Headline presets: `conf/experiment/<task>_headline.yaml`, the sweep behind a room README's
headline table, run by `celine reproduce task=<task>`.

A preset is a Hydra experiment preset (`# @package _global_`, `override /task: <task>`, the sweep
in `hydra.sweeper.params`) plus a `reproduce:` block that only Celine reads:

    reproduce:
      baseline: fmt_random_prune     # the key baseline: every other method is paired against it
      metrics: [asr, ra, acc]        # the columns of the table, primary first (declared metrics)
      seed_key: seed                 # the config key that indexes replicates (pairs the runs)
      expected_minutes: 25           # wall time of the sweep on a 2-core CPU

The block is read here without composing the config (`celine reproduce --list` stays instant),
and it reaches the jobs' config as a plain `reproduce` node that nothing else uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from celine import paths
from celine.errors import ConfigError

SUFFIX = "_headline"
_KEYS = {"baseline", "metrics", "seed_key", "expected_minutes"}


@dataclass(frozen=True)
class HeadlinePreset:
    task: str
    path: Path
    baseline: str
    metrics: tuple[str, ...]
    seed_key: str
    expected_minutes: float | None
    sweep: dict[str, str]

    @property
    def experiment(self) -> str:
        return self.path.stem


def preset_path(task: str, conf: Path | None = None) -> Path:
    return (conf or paths.config_dir()) / "experiment" / f"{task}{SUFFIX}.yaml"


def available(conf: Path | None = None) -> list[str]:
    folder = (conf or paths.config_dir()) / "experiment"
    return sorted(p.stem[: -len(SUFFIX)] for p in folder.glob(f"*{SUFFIX}.yaml"))


def load(task: str, conf: Path | None = None) -> HeadlinePreset:
    """Read and check a task's headline preset; a bad one fails naming the file and the key."""
    from omegaconf import OmegaConf

    path = preset_path(task, conf)
    if not path.is_file():
        raise ConfigError(
            "task",
            task,
            "a task with a headline preset: " + (", ".join(available(conf)) or "none"),
            hint=f"no {path}",
        )
    doc = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    block = doc.get("reproduce")
    if not isinstance(block, dict):
        raise ConfigError(f"{path}: reproduce", block, "a mapping with " + ", ".join(sorted(_KEYS)))
    unknown = set(block) - _KEYS
    if unknown:
        raise ConfigError(
            f"{path}: reproduce.{sorted(unknown)[0]}", "(unknown key)", ", ".join(sorted(_KEYS))
        )
    for key in ("baseline", "metrics"):
        if not block.get(key):
            raise ConfigError(f"{path}: reproduce.{key}", block.get(key), "required")
    metrics = block["metrics"]
    if isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"{path}: reproduce.metrics", metrics, "a list of metric names")
    sweep = ((doc.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    seed_key = str(block.get("seed_key") or "seed")
    if seed_key not in sweep:
        raise ConfigError(
            f"{path}: reproduce.seed_key", seed_key, f"a swept key: {', '.join(sweep) or 'none'}"
        )
    minutes = block.get("expected_minutes")
    return HeadlinePreset(
        task=task,
        path=path,
        baseline=str(block["baseline"]),
        metrics=tuple(metrics),
        seed_key=seed_key,
        expected_minutes=float(minutes) if minutes is not None else None,
        sweep={str(k): str(v) for k, v in sweep.items()},
    )
