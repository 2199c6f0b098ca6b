"""`celine validate`: compose every task preset and type-check it against its schemas."""

from __future__ import annotations

import sys

from celine import configs, validation
from celine.errors import CelineError


def check_all(tasks: list[str]) -> list[tuple[str, str | None]]:
    """(preset, error or None) for each task preset; imports schemas only, never torch."""
    outcome = []
    with configs.hydra_context():
        for name in tasks:
            try:
                cfg = configs.compose([f"task={name}"])
                validation.plan(cfg)
                outcome.append((name, None))
            except CelineError as err:
                outcome.append((name, str(err)))
            except Exception as err:  # a composition error from Hydra
                outcome.append((name, f"{type(err).__name__}: {err}".splitlines()[0]))
    return outcome


def main(args: list[str]) -> int:
    tasks = args or configs.options("task")
    outcome = check_all(tasks)
    for name, error in outcome:
        print(
            f"{'ok  ' if error is None else 'FAIL'} task={name}" + (f": {error}" if error else "")
        )
    failed = sum(error is not None for _, error in outcome)
    print(f"{len(outcome) - failed} of {len(outcome)} task presets valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
