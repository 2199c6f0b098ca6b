"""`celine ls`: what can be run. Reads the registry and the config folder; imports no torch."""

from __future__ import annotations

from celine import configs, registry

SECTIONS = ("tasks", "methods", "models", "hardware", "metrics")


def _goal(goal: str | None) -> str:
    return {"max": "higher is better", "min": "lower is better"}.get(goal or "", "informational")


def render(section: str) -> list[str]:
    registry.discover()
    lines: list[str] = []
    if section == "tasks":
        lines.append("tasks (celine run task=NAME; the first method is the preset's default):")
        for name, spec in sorted(registry.TASKS.items()):
            lines.append(f"  {name:<18} methods: {', '.join(spec.methods)}")
            if spec.description:
                lines.append(f"  {'':<18} {spec.description}")
    elif section == "metrics":
        lines.append("metrics each task reports (* = primary):")
        for name, spec in sorted(registry.TASKS.items()):
            lines.append(f"  {name}")
            for m in spec.metrics:
                star = "*" if m.name == spec.primary.name else " "
                req = "" if m.required else " (optional)"
                unit = f" [{m.unit}]" if m.unit else ""
                lines.append(f"    {star} {m.name:<28} {_goal(m.goal)}{unit}{req}")
    elif section == "methods":
        lines.append("methods (method=NAME):")
        accepted_by: dict[str, list[str]] = {}
        for tname, tspec in registry.TASKS.items():
            for m in tspec.methods:
                accepted_by.setdefault(m, []).append(tname)
        for name, spec in sorted(registry.METHODS.items()):
            tasks = ", ".join(sorted(accepted_by.get(name, []))) or "-"
            lines.append(f"  {name:<18} tasks: {tasks:<24} {spec.description}")
    elif section == "models":
        lines.append("models (model=NAME; presets in conf/model/):")
        presets = configs.options("model")
        for name in presets:
            lines.append(f"  {name}")
        for name, spec in sorted(registry.MODELS.items()):
            if name not in presets:
                lines.append(f"  {name:<18} (registered, no preset) {spec.description}")
    elif section == "hardware":
        lines.append("hardware presets (hardware=NAME):")
        lines += [f"  {name}" for name in configs.options("hardware")]
    return lines


def main(args: list[str]) -> int:
    wanted = args or list(SECTIONS)
    unknown = [a for a in wanted if a not in SECTIONS]
    if unknown:
        print(f"celine ls: unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
        return 2
    blocks = ["\n".join(render(section)) for section in wanted]
    print("\n\n".join(blocks))
    return 0
