"""Compose configs without running them (for `celine validate`, `celine ls` and tests), and give
Hydra every registered task's, method's and model's defaults from its config dataclass.

Defaults are written once, in the dataclass. `register_defaults` stores each one in Hydra's
ConfigStore as `dataclass_defaults/<group>/<name>`, and conf/config.yaml merges the chosen one
under its group before the group's preset:

    defaults:
      - dataclass_defaults/method@method: ${method}   # FmtNadConfig(), with name=fmt_nad
      - method: null                                  # conf/method/fmt_nad.yaml: only changes

so a preset in conf/method, conf/model or conf/task holds only what it changes (a test checks
that no key repeats its default), and `--cfg job`, the run's resolved_config.yaml and its MLflow
params still show the full config. A registered name with no preset file gets an empty option
`<group>/<name>` in the ConfigStore, so `method=<name>` works with no YAML at all; none is stored
where a preset file exists (a ConfigStore node and a YAML of one name in one group collide: Hydra
would merge the two as a deprecated "schema").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from celine import paths

OmegaConf.register_new_resolver("celine_outputs", lambda: str(paths.outputs_dir()), replace=True)

DEFAULTS_GROUP = "dataclass_defaults"
GROUPS = ("task", "method", "model")  # the groups whose options are registry entries


def preset_files(group: str, config_dir: Path | None = None) -> list[str]:
    """The preset names of a config group that have a YAML file."""
    folder = (config_dir or paths.config_dir()) / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def options(group: str) -> list[str]:
    """What a user may choose for a group: its YAML presets, plus, for task/method/model, every
    registered name (a registered name needs no preset file)."""
    names = set(preset_files(group))
    if group in GROUPS:
        names |= set(_table(group))
    return sorted(names)


def _table(group: str) -> dict[str, Any]:
    from celine import registry

    registry.discover()
    return {"task": registry.TASKS, "method": registry.METHODS, "model": registry.MODELS}[group]


def read_preset(group: str, stem: str, config_dir: Path | None = None) -> dict[str, Any]:
    """A preset file as written (no composition): its node for `group` (a `# @package _global_`
    preset keeps it under the group's key) and, under "defaults", its defaults list."""
    import yaml

    path = (config_dir or paths.config_dir()) / group / f"{stem}.yaml"
    text = path.read_text()
    doc = yaml.safe_load(text) or {}
    if is_global(text):
        doc = {**(doc.get(group) or {}), "defaults": doc.get("defaults", []), "_global_": doc}
    return doc


def is_global(text: str) -> bool:
    """Whether a YAML's header (its comment lines before any content) says `@package _global_`."""
    for line in text.splitlines():
        if not line.startswith("#"):
            return False
        if line.lstrip("# ").startswith("@package _global_"):
            return True
    return False


def preset_entry(group: str, stem: str, config_dir: Path | None = None) -> str:
    """The registered entry a preset configures: its own name, or, for a variant preset such as
    model=tiny_reasoner_long, the registered `name:` it sets."""
    if stem in _table(group):
        return stem
    files = preset_files(group, config_dir)
    if stem in files:
        name = read_preset(group, stem, config_dir).get("name")
        if isinstance(name, str) and name in _table(group):
            return name
    raise KeyError(f"{group} preset '{stem}' names no registered {group} (set `name:` to one)")


def dataclass_defaults(group: str, name: str) -> dict[str, Any]:
    """The defaults of a registered entry as a plain config node: its dataclass's fields, with
    `name` set to the registered name (several names may share one dataclass)."""
    from celine import registry

    schema = registry.resolve(_table(group)[name].config)
    if not is_dataclass(schema):
        raise TypeError(f"{group} '{name}': config {schema!r} is not a dataclass")
    node = OmegaConf.to_container(OmegaConf.structured(schema), resolve=False)
    if any(f.name == "name" for f in fields(schema)):
        node["name"] = name
    return node


_stubs: list[tuple[str, str]] = []  # (group, name) of the empty options stored last time


def register_defaults(config_dir: Path | None = None) -> None:
    """Store every registered entry's dataclass defaults in Hydra's ConfigStore (see above)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for group, name in _stubs:  # another config folder may have a preset file for it now
        cs.repo.get(group, {}).pop(f"{name}.yaml", None)
    _stubs.clear()
    for group in GROUPS:
        files = set(preset_files(group, config_dir))
        for name in _table(group):
            if name not in files:
                cs.store(group=group, name=name, node={})
                _stubs.append((group, name))
        for stem in sorted(files | set(_table(group))):
            try:
                entry = preset_entry(group, stem, config_dir)
            except KeyError:
                continue  # validation names the problem if the preset is chosen
            node = dataclass_defaults(group, entry)
            cs.store(group=f"{DEFAULTS_GROUP}/{group}", name=stem, node=node, package=group)


@contextmanager
def hydra_context(config_dir: Path | None = None) -> Iterator[None]:
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    config_dir = Path(config_dir or paths.config_dir()).resolve()
    register_defaults(config_dir)
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir), job_name="celine", version_base="1.3"):
        yield


def compose(overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """Compose the primary config with overrides (call inside `hydra_context`)."""
    from hydra import compose as hydra_compose

    return hydra_compose("config", overrides=overrides, return_hydra_config=return_hydra_config)
