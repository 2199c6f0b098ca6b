"""Defaults are written once, in the config dataclasses: no preset under conf/task, conf/method or
conf/model repeats a default (or names a key its dataclass lacks), and what Hydra composes still
holds every default. Generic over the registry, so a room's new field is checked with no edit."""

from __future__ import annotations

import pytest
from celine_testing import compose
from omegaconf import OmegaConf

from celine import configs, paths, registry

GROUPS = configs.GROUPS


def _presets() -> list[tuple[str, str]]:
    return [(g, stem) for g in GROUPS for stem in configs.preset_files(g)]


def _leaves(node, prefix: str = ""):
    """(dotted key, value) of a nested mapping's leaves (lists are values)."""
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _get(node, dotted: str):
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def _choices(preset: dict) -> dict[str, str]:
    """What a preset's defaults list picks for the other groups (`override /model: small_cnn`)."""
    picks = {}
    for item in preset.get("defaults") or []:
        if isinstance(item, dict):
            for key, value in item.items():
                group = key.removeprefix("override ").lstrip("/").split("@")[0]
                if group in GROUPS and isinstance(value, str):
                    picks[group] = value
    return picks


def problems_of(group: str, stem: str) -> list[str]:
    """Every key of a preset that repeats its dataclass default or that its dataclass lacks."""
    preset = configs.read_preset(group, stem)
    entry = configs.preset_entry(group, stem)
    sections = {
        group: (entry, {k: v for k, v in preset.items() if k not in ("defaults", "_global_")})
    }
    if "_global_" in preset:  # a task preset may also set its method's and model's keys
        for other, chosen in _choices(preset).items():
            node = preset["_global_"].get(other)
            if other != group and node:
                sections[other] = (configs.preset_entry(other, chosen), node)
    found = []
    for section, (name, node) in sections.items():
        defaults = configs.dataclass_defaults(section, name)
        # the preset of an entry whose dataclass is its own (not shared with other names) may not
        # change a value: that would be a second default, contradicting the dataclass
        own = section == group and stem == name and _own_dataclass(section, name)
        for key, value in _leaves(node):
            if key == "name" and section == group:
                if stem == name:
                    found.append(f"{section}.name: repeats the preset's own name")
                continue  # a variant preset names the entry it configures
            try:
                default = _get(defaults, key)
            except KeyError:
                found.append(f"{section}.{key}: not a field of {section} '{name}'")
                continue
            if value == default and type(value) is type(default):
                found.append(f"{section}.{key}: repeats the default {value!r}")
            elif value == default:  # 1 vs 1.0: still the same number
                found.append(f"{section}.{key}: repeats the default {default!r} (as {value!r})")
            elif own:
                found.append(
                    f"{section}.{key}: {value!r} contradicts the dataclass default {default!r} "
                    "(change the default in the dataclass instead)"
                )
    return found


def _own_dataclass(group: str, name: str) -> bool:
    """Whether the entry's config dataclass says it is this entry's (its `name` default)."""
    from dataclasses import MISSING, fields

    table = {"task": registry.TASKS, "method": registry.METHODS, "model": registry.MODELS}[group]
    schema = registry.resolve(table[name].config)
    default = next((f.default for f in fields(schema) if f.name == "name"), MISSING)
    return default == name


@pytest.mark.parametrize(("group", "stem"), _presets(), ids=lambda x: x)
def test_preset_holds_only_what_it_changes(group, stem):
    problems = problems_of(group, stem)
    assert not problems, f"conf/{group}/{stem}.yaml:\n  " + "\n  ".join(problems)


def test_the_check_catches_a_repeated_and_an_unknown_key(tmp_path, monkeypatch):
    """Guards the test above against passing vacuously, on a copy of a real preset."""
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(paths.config_dir(), conf)
    registry.discover()
    name = sorted(registry.METHODS)[0]
    defaults = configs.dataclass_defaults("method", name)
    key = next(k for k, v in defaults.items() if k != "name" and isinstance(v, int | float | str))
    (conf / "method" / f"{name}.yaml").write_text(f"{key}: {defaults[key]!r}\nno_such_key: 1\n")
    monkeypatch.setenv("CELINE_CONFIG_DIR", str(conf))
    problems = problems_of("method", name)
    assert any("repeats the default" in p for p in problems), problems
    assert any("no_such_key" in p for p in problems), problems
    # a changed value in the entry's own preset is a second default
    own = next(n for n in sorted(registry.METHODS) if _own_dataclass("method", n))
    defaults = configs.dataclass_defaults("method", own)
    key = next(k for k, v in defaults.items() if k != "name" and type(v) in (int, float))
    (conf / "method" / f"{own}.yaml").write_text(f"{key}: {defaults[key] + 1}\n")
    assert any("contradicts" in p for p in problems_of("method", own))


@pytest.mark.parametrize("group", GROUPS)
def test_every_registered_name_has_its_defaults_and_an_option(group):
    """`method=<name>` works for every registered name, with or without a preset file."""
    table = {"task": registry.TASKS, "method": registry.METHODS, "model": registry.MODELS}[group]
    registry.discover()
    assert set(table) <= set(configs.options(group))


def test_composed_config_holds_every_default_of_the_dataclass():
    """What `--cfg job` prints, resolved_config.yaml keeps and MLflow logs as params: the full
    config, every dataclass default included, with the preset's and the command line's changes."""
    cfg = compose(["task=lm_pretrain", "method=unigram", "model.size=smoke"])
    for group in GROUPS:
        node = OmegaConf.to_container(cfg[group])
        name = node["name"]
        defaults = configs.dataclass_defaults(group, configs.preset_entry(group, name))
        missing = [k for k, _ in _leaves(defaults) if _missing(node, k)]
        assert not missing, f"{group} '{name}' lacks defaults {missing}"
    assert cfg.model.size == "smoke"  # the command line beats the default


def _missing(node, dotted):
    try:
        _get(node, dotted)
        return False
    except KeyError:
        return True
