"""Core (celine/ outside the substrates) imports no substrate and no room: dependencies point one
way, rooms -> substrates -> core. Every import statement counts, the lazy ones inside functions
too; `registry.discover` finds substrates and rooms by name, as plugins."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import celine

CORE = Path(celine.__file__).resolve().parent
SUBSTRATES = ("llm", "serving", "vision")
FORBIDDEN = tuple(f"celine.{name}" for name in (*SUBSTRATES, "experiments", "kernels"))


def _core_files() -> list[Path]:
    return [
        p for p in sorted(CORE.rglob("*.py"))
        if p.relative_to(CORE).parts[0] not in SUBSTRATES
    ]  # fmt: skip


def _imported(path: Path) -> list[tuple[int, str]]:
    package = ".".join(("celine", *path.relative_to(CORE).parent.parts))
    return _imports_in(path.read_text(), package, str(path))


def _imports_in(source: str, package: str, filename: str = "<src>") -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a source, relative imports resolved."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from celine import llm` imports a substrate too
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _offends(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def test_core_files_import_no_substrate_and_no_room():
    files = _core_files()
    assert CORE / "api.py" in files and CORE / "registry.py" in files
    offences = [
        f"{path.relative_to(CORE.parent)}:{line} imports {module}"
        for path in files
        for line, module in _imported(path)
        if _offends(module)
    ]
    assert not offences, "\n".join(offences)


def test_the_checker_sees_each_spelling_of_a_substrate_import():
    """Guards the test above against passing vacuously: each spelling is caught, lazy ones too."""
    for source in (
        "import celine.llm.corpora",
        "from celine import vision",
        "from .serving import simulator",
        "def f():\n    from celine.experiments.fmt import task",
        "import celine.kernels.lut_gemv as k",
    ):
        modules = [m for _, m in _imports_in(source, "celine")]
        assert any(_offends(m) for m in modules), source
    assert not any(
        _offends(m) for _, m in _imports_in("from celine import api, registry", "celine")
    )


def test_importing_core_loads_no_substrate_or_room():
    """What a process holds after importing every core module (before any run discovers the
    registry): no substrate, no room, no torch."""
    modules = sorted(
        ".".join(("celine", *p.relative_to(CORE).with_suffix("").parts)).removesuffix(".__init__")
        for p in _core_files()
        if p.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}) or m == 'torch'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
