"""`celine run | ls | validate | compare | ui`.

`run` hands the rest of the command line to Hydra unchanged (overrides, -m, --cfg, --help).
`ls` and `validate` import neither torch nor MLflow, and answer in about a second.
"""

from __future__ import annotations

import sys

USAGE = """usage: celine <command> [args]

  run [overrides] [-m]     run one experiment, or a sweep with -m (Hydra overrides)
                           e.g. celine run task=lm_pretrain model.size=smoke
  ls [tasks|methods|models|hardware|metrics]
                           what can be run: tasks, the methods each accepts, models, presets
  validate [task ...]      compose and type-check every task preset (or the ones named)
  compare task=X [--baseline M] [--uri U] [--out DIR] [--all]
                           task X's runs by group: n seeds, mean, 95% interval, paired p
  reproduce task=X [overrides] | --list
                           a room's headline sweep and its table (intervals, paired p)
  ui [--uri U] [--port P]  the MLflow UI on the project's store
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "run":
        return _run(rest)
    if command == "ls":
        from celine.commands.listing import main as ls

        return ls(rest)
    if command == "validate":
        from celine.commands.validate import main as validate

        return validate(rest)
    if command == "compare":
        from celine.commands.compare import main as compare

        return compare(rest)
    if command == "reproduce":
        from celine.commands.reproduce import main as reproduce

        return reproduce(rest)
    if command == "ui":
        from celine.commands.ui import main as ui

        return ui(rest)
    print(f"celine: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


def _run(overrides: list[str]) -> int:
    # Hydra reads sys.argv itself: strip the subcommand and hand over the rest
    sys.argv = [sys.argv[0], *overrides]
    from celine.app import job
    from celine.tracking.callbacks import LAST_SWEEP

    job()
    if LAST_SWEEP.get("failed"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
