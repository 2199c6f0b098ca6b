"""Synthetic token-deprivation traces (notes §4.3): the offline-replay harness that made the
paper's Dynasor-CoT curves, fed with traces whose "self-doubt" is explicit instead of recorded
from a large reasoning model.

Per problem: a difficulty d, a first-correct time t* that grows with d, probes that answer
wrong or empty before t* and correctly after it (with a small flip probability), some problems
that never converge (a stable wrong answer, or none), and a natural end t_end well after t*
(the model keeps checking itself). Each probe is hesitant with a small probability.
"""

from __future__ import annotations

import numpy as np

from celine.experiments.dynasor.cot import ChainTrace


def synthetic_traces(
    n_problems: int,
    trials: int,
    *,
    step: int = 32,
    max_tokens: int = 16384,
    flip_prob: float = 0.05,
    hesitation_prob: float = 0.1,
    empty_prob: float = 0.3,
    seed: int = 0,
) -> list[ChainTrace]:
    rng = np.random.default_rng(seed)
    traces = []
    for k in range(n_problems):
        d = int(rng.integers(1, 9))
        answer = str(int(rng.integers(100, 1000)))
        never = rng.random() < 0.04 * d  # harder problems converge less often
        stable_wrong = str(int(rng.integers(1000, 2000)))
        for _ in range(trials):
            t_star = float(rng.lognormal(np.log(250.0 * d), 0.5))
            t_end = min(max_tokens, t_star * rng.uniform(1.5, 4.0) + 64)
            length = int(t_end)
            wrong_final = never and rng.random() < 0.5
            final = stable_wrong if never and wrong_final else ("" if never else answer)
            tr = ChainTrace(problem=k, answer=answer, length=length, final=final)
            for pos in range(step, min(length, max_tokens) + 1, step):
                if never:
                    probe = stable_wrong if rng.random() < 0.6 else str(int(rng.integers(0, 99)))
                elif pos < t_star:
                    probe = "" if rng.random() < empty_prob else str(int(rng.integers(0, 99)))
                else:
                    probe = answer if rng.random() > flip_prob else str(int(rng.integers(0, 99)))
                tr.positions.append(pos)
                tr.probes.append(probe)
                tr.hesitant.append(bool(rng.random() < hesitation_prob))
                # the truncated chain states its answer only once it has finished
                tr.truncated.append("")
                tr.probe_tokens.append(10)
            traces.append(tr)
    return traces
