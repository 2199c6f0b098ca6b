"""A trace of the built-in prompts with the answer a well-trained reasoner gives: the gold chain
of thought. `python -m celine.experiments.llm_sched.gold_trace OUT.jsonl [N] [SEED]` writes flat
records (`prompt`, `output`) for `task.data_root=OUT.jsonl`.

Why: the built-in trace samples the served model itself, which needs the trained
`tiny_reasoner` (25-45 min of training on a loaded 2-core machine). When another model is
served (e.g. the code `tiny_llama` on the real engine), its samples on these prompts have
lengths unrelated to the question; the gold chains keep what the paper relies on (the question
decides the answer's length; few-shot examples make prompt length a weak predictor).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path


def gold_records(n: int, seed: int = 0, few_shot_fraction: float = 0.5, max_shots: int = 2):
    from celine.llm.reasoning import format_prompt, format_solution, generate_problems

    rng = random.Random(seed)
    pool = generate_problems(500, seed=seed + 1)
    for p in generate_problems(n, seed=seed):
        shots = rng.randint(1, max_shots) if max_shots and rng.random() < few_shot_fraction else 0
        examples = [format_solution(s) for s in rng.sample(pool, shots)]
        question = format_prompt(p)
        yield {"prompt": "\n".join([*examples, question]),
               "output": format_solution(p)[len(question):].strip(), "steps": p.steps}  # fmt: skip


def main(argv: list[str]) -> None:
    out = Path(argv[0])
    n = int(argv[1]) if len(argv) > 1 else 400
    seed = int(argv[2]) if len(argv) > 2 else 0
    out.write_text("".join(json.dumps(r) + "\n" for r in gold_records(n, seed)))
    print(f"{n} records -> {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
