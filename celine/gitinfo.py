"""The commit a run came from, and whether the tree had uncommitted changes.

The commit, branch and remote are reported under MLflow's own tag names, so the MLflow UI shows
them in its "Version" column and links the commit; `celine.git_dirty` has no MLflow equivalent.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

GIT_COMMIT = "mlflow.source.git.commit"
GIT_BRANCH = "mlflow.source.git.branch"
GIT_REPO_URL = "mlflow.source.git.repoURL"
GIT_DIRTY = "celine.git_dirty"


def describe(root: Path | None) -> dict[str, str]:
    unknown = {GIT_COMMIT: "unknown", GIT_DIRTY: "unknown"}
    if root is None:
        return unknown

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        if not commit:
            return unknown
        tags = {
            GIT_COMMIT: commit,
            GIT_DIRTY: str(bool(git("status", "--porcelain", "--untracked-files=no"))).lower(),
        }
        if branch := git("rev-parse", "--abbrev-ref", "HEAD"):
            tags[GIT_BRANCH] = branch
        if url := git("config", "--get", "remote.origin.url"):
            tags[GIT_REPO_URL] = url
    except (OSError, subprocess.SubprocessError):
        return unknown
    return tags
