#!/usr/bin/env bash
# The device tool sends the session's checkout (/work/main), not a helper's worktree: copy this
# worktree's tracked and untracked-unignored files, .whl and .carry into main's ignored build/
# folder (build/<branch>), to be named in `carry` and entered with `cd build/<branch>` there.
set -eu
src=$(git rev-parse --show-toplevel); branch=$(git rev-parse --abbrev-ref HEAD)
dst=/work/main/build/$branch
rm -rf "$dst"; mkdir -p "$dst"
(cd "$src" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$dst")
for d in .whl .carry; do [ -d "$src/$d" ] && cp -r "$src/$d" "$dst/"; done
du -sh "$dst"
