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


RUN_HELP = """usage: celine run task=NAME [group=option ...] [key=value ...] [-m] [Hydra flags]

  task=NAME          the task to run (required); `celine ls` lists tasks, methods and models
  method=, model=, hardware=, cluster=, tracking=, experiment=
                     pick a config group option; key=value overrides one setting
  -m, --multirun     a sweep: comma lists and range() values give one job per combination
  --cfg job          print the composed config instead of running (with a task)
  --info             print where each config came from (with a task)
  -sc install=bash   shell completion: eval "$(celine run -sc install=bash)"

tasks: {tasks}
A task's own options and defaults: celine run task=NAME --help
"""

COMPLETION_FLAGS = ("-sc", "--shell-completion")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except BrokenPipeError:
        # `celine ls | head`: the reader left; stop quietly (Python's recipe: point stdout at
        # /dev/null so the interpreter's final flush does not raise again)
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] in COMPLETION_FLAGS:
        # Hydra's bash completion calls the program's first word with `-sc query=bash`
        return _run(argv)
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


def _run(args: list[str]) -> int:
    if _wants_help_without_task(args):
        return _run_help()
    if any(flag in args for flag in COMPLETION_FLAGS):
        _strip_subcommand_from_completion_line()
    from celine.app import main as run
    from celine.tracking.callbacks import SweepCallback

    try:
        return run(args)  # the exit code comes from the runs' results (celine.api.run / multirun)
    except KeyboardInterrupt:
        # Ctrl-C (or SIGTERM) mid-sweep: Hydra skips its end hook, so close the parent run here
        SweepCallback.abort_open_sweeps("KILLED")
        print("celine: interrupted", file=sys.stderr)
        return 130
    except BaseException:
        SweepCallback.abort_open_sweeps("FAILED")
        raise


def _wants_help_without_task(overrides: list[str]) -> bool:
    """Hydra's --help composes the config first, and without a task that fails (task is
    required), so `celine run --help` answers here instead."""
    if not any(arg in ("-h", "--help") for arg in overrides):
        return False
    return not any(arg.split("=", 1)[0].lstrip("+~") in ("task", "experiment") for arg in overrides)


def _run_help() -> int:
    from celine import registry

    registry.discover()
    print(RUN_HELP.format(tasks=", ".join(sorted(registry.TASKS)) or "(none registered)"))
    return 0


def _strip_subcommand_from_completion_line() -> None:
    """Hydra completes COMP_LINE after dropping the program name; drop `run` as well, so that
    `celine run ta<TAB>` is completed like `app ta<TAB>`."""
    import os
    import re

    line = os.environ.get("COMP_LINE")
    if line is not None:
        os.environ["COMP_LINE"] = re.sub(r"^(\s*\S+)\s+run(\s|$)", r"\1\2", line, count=1)


if __name__ == "__main__":
    sys.exit(main())
