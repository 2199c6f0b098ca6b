"""The commit a run came from, and whether the tree had uncommitted changes."""

from __future__ import annotations

import subprocess
from pathlib import Path


def describe(root: Path | None) -> dict[str, str]:
    if root is None:
        return {"celine.git_commit": "unknown", "celine.git_dirty": "unknown"}

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD") or "unknown"
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"celine.git_commit": "unknown", "celine.git_dirty": "unknown"}
    return {"celine.git_commit": commit, "celine.git_dirty": str(dirty).lower()}
