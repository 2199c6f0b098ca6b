"""One headline table from the two `celine reproduce task=med_amalgamation` sweeps (the preset's
rows, and `method=med_joint_decoder,ka2er_noskip,med_feature_avg`): the same seeds, so every
method pairs with the baseline seed by seed. The med_joint_decoder rows of the first sweep failed
(a bug fixed before the second sweep) and are not counted.

    python bench/med_amalgamation/combine.py SWEEP_DIR[=LABEL] [SWEEP_DIR[=LABEL] ...]

`=LABEL` renames the method of every row of that sweep (a sweep of `method=ka2er
method.fusion=none` would otherwise count as reruns of ka2er).
"""

import sys
from pathlib import Path

import pandas as pd

from celine import evidence, headline
from celine.commands.reproduce import sweep_rows


def main(dirs: list[str]) -> None:
    preset = headline.load("med_amalgamation")
    metrics = list(preset.metrics)
    parts = []
    for arg in dirs:
        folder, _, label = arg.partition("=")
        part = sweep_rows(Path(folder), preset.seed_key, metrics)
        if label:
            part["method"] = label
        parts.append(part)
    rows = pd.concat(parts, ignore_index=True)
    finished = rows[rows["status"] == "FINISHED"].drop(columns=["job", "status"])
    ev = evidence.summarise(finished, metrics, preset.baseline)
    print("\n".join(f"- `{d}`" for d in dirs) + "\n")
    print(evidence.markdown(ev))
    print(evidence.legend(ev))


if __name__ == "__main__":
    main(sys.argv[1:])
