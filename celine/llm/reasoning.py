"""Multi-step arithmetic word problems with a chain of thought and exact answers.

Why a generator: every machine can make the data, the ground truth is exact, and
difficulty (the number of steps, 1..8) is a knob we control. The problems are kept
learnable by a few-million-parameter model trained on the CPU (see
shared/methods/tiny_reasoner_probe.md): every value stays in 0..99, every step is one
small operation, and the chain of thought writes every intermediate result out.

A problem with 3 steps, as the model sees it (prompt, then the solution it must write)::

    Q: Ann has 17 pens. Ann gets 14 more. Ann gives away 22. Ann doubles them. How many pens?
    A: 17+14=31. 31-22=9. 9*2=18. \\boxed{18}

Text is compact on purpose: every token costs CPU time in training and generation.

This module also holds the answer parsers shared by all QA corpora: `parse_boxed`
(last ``\\boxed{...}``) and `parse_gsm8k_answer` (``#### N``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

# Bump when the problems or their text change: cached models trained on them are stale.
GENERATOR_VERSION = 2  # 2: chain-of-thought lines restate their sentence
MAX_STEPS = 8
MAX_VALUE = 99  # every start value, operand and intermediate result lies in 0..MAX_VALUE
MAX_OPERAND = 20  # operands of + and - are small: one easy operation per step

NAMES = ("Ann", "Bob", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal")
NOUNS = ("pens", "cards", "coins", "eggs", "books", "shells", "stamps", "apples")

# One template per operation kind; the model has to read which operation a sentence
# names and copy its operand. (kind, sentence template, function)
ADD_TEMPLATES = ("{name} gets {n} more.", "{name} finds {n} more.", "{name} buys {n} more.")
SUB_TEMPLATES = ("{name} gives away {n}.", "{name} loses {n}.", "{name} sells {n}.")
MUL_TEMPLATES = {2: "{name} doubles them.", 3: "{name} triples them."}
HALF_TEMPLATE = "{name} keeps half."


@dataclass(frozen=True)
class Problem:
    """One question with its worked solution.

    `chain` is the chain of thought without the final ``\\boxed{}``; `answer` is exact
    (an int for generated and GSM8K problems; MATH answers that are not integers are
    kept as their normalised string); `steps` is the difficulty (number of operations
    for generated problems, solution lines for GSM8K, the level for MATH, 0 if unknown).
    """

    question: str
    chain: str
    answer: int | str
    steps: int


def format_prompt(problem: Problem) -> str:
    """What the model is given: the question and the start of the answer."""
    return f"Q: {problem.question}\nA:"


def format_solution(problem: Problem) -> str:
    """Prompt + chain of thought + ``\\boxed{answer}``: one training document (the
    trainer appends eos). A chain that already ends in a box (MATH) is not boxed twice."""
    chain = problem.chain.strip()
    if "\\boxed" in chain:
        return f"{format_prompt(problem)} {chain}"
    sep = " " if chain else ""
    return f"{format_prompt(problem)} {chain}{sep}\\boxed{{{problem.answer}}}"


def _step(rng: random.Random, value: int, name: str) -> tuple[str, str, int]:
    """Draw one feasible operation on `value`; returns (sentence, cot line, new value).

    Feasible means the result stays in 0..MAX_VALUE, so no negative numbers ever
    appear and every intermediate result is a one- or two-digit number.
    """
    options = []
    if value < MAX_VALUE:
        options.append("add")
    if value > 0:
        options.append("sub")
    if 0 < value * 2 <= MAX_VALUE:
        options.append("mul")
    if value >= 2 and value % 2 == 0:
        options.append("half")
    kind = rng.choice(options)
    if kind == "add":
        n = rng.randint(1, min(MAX_OPERAND, MAX_VALUE - value))
        text = rng.choice(ADD_TEMPLATES).format(name=name, n=n)
        return text, f"{value}+{n}={value + n}.", value + n
    if kind == "sub":
        n = rng.randint(1, min(MAX_OPERAND, value))
        text = rng.choice(SUB_TEMPLATES).format(name=name, n=n)
        return text, f"{value}-{n}={value - n}.", value - n
    if kind == "mul":
        k = 3 if (value * 3 <= MAX_VALUE and rng.random() < 0.5) else 2
        text = MUL_TEMPLATES[k].format(name=name)
        return text, f"{value}*{k}={value * k}.", value * k
    text = HALF_TEMPLATE.format(name=name)
    return text, f"{value}/2={value // 2}.", value // 2


def make_problem(rng: random.Random, steps: int, restate: bool = True) -> Problem:
    """One problem with exactly `steps` operations, drawn from `rng`.

    With `restate` (the default) each chain-of-thought line first restates its sentence
    ("gets 14 more: 17+14=31."): the model then copies the question sentence by sentence
    (what induction heads do well) instead of having to count which sentence comes next.
    A 2M-parameter model trained on 2M tokens solved 36% of 1-step problems without it.
    The draws from `rng` do not depend on `restate`, so both styles give the same problems.
    """
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps={steps!r}: allowed 1..{MAX_STEPS}")
    name, noun = rng.choice(NAMES), rng.choice(NOUNS)
    value = rng.randint(1, 50)
    sentences = [f"{name} has {value} {noun}."]
    cot = []
    for _ in range(steps):
        text, line, value = _step(rng, value, name)
        sentences.append(text)
        cot.append(f"{text[len(name) + 1 : -1]}: {line}" if restate else line)
    sentences.append(f"How many {noun}?")
    return Problem(" ".join(sentences), " ".join(cot), value, steps)


def generate_problems(
    n: int, seed: int, steps: int | tuple[int, ...] | range | None = None, restate: bool = True
) -> list[Problem]:
    """`n` problems from one seed; difficulty uniform over `steps` (default 1..8) or fixed."""
    rng = random.Random(seed)
    if steps is None:
        choices: tuple[int, ...] = tuple(range(1, MAX_STEPS + 1))
    elif isinstance(steps, int):
        choices = (steps,)
    else:
        choices = tuple(steps)
    return [make_problem(rng, rng.choice(choices), restate) for _ in range(n)]


def generate_balanced(
    n_per_steps: int,
    seed: int,
    steps: range | tuple[int, ...] = range(1, MAX_STEPS + 1),
    restate: bool = True,
) -> list[Problem]:
    """`n_per_steps` problems for every difficulty in `steps` (for per-difficulty eval)."""
    rng = random.Random(seed)
    return [make_problem(rng, s, restate) for s in steps for _ in range(n_per_steps)]


_COT_LINE = re.compile(r"(\d+)([-+*/])(\d+)=(\d+)\.")


def check_chain(problem: Problem) -> bool:
    """Re-evaluate a generated chain independently: every line's arithmetic is right,
    each line starts from the previous result, and the last result is the answer."""
    lines = _COT_LINE.findall(problem.chain)
    if len(lines) != problem.steps:
        return False
    prev = None
    for a, op, b, c in lines:
        a, b, c = int(a), int(b), int(c)
        if prev is not None and a != prev:
            return False
        exact = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
        if exact != c or not 0 <= c <= MAX_VALUE:
            return False
        prev = c
    return prev == problem.answer


# ----------------------------------------------------------------------------- long chains

# A long chain of thought (R1-style self-verification), an option of the reasoning corpus
# (`load_reasoning(verify=True)`) that the dynasor room fine-tunes `tiny_reasoner_long` on.
# Dynasor-CoT's premise is a reasoner that keeps checking after it already has the answer
# ("self-doubt"); the plain chains end one token after the answer, so probing can save nothing.
# The check solves the problem again, line by line as the first pass does (a skill the plain
# reasoner already has, so a short fine-tune teaches only the glue), and only then boxes the
# answer: the first answer comes about half-way through the generated text, as in R1 chains
# (paper: the answer is there by a median ~830 of 2.7K tokens).
VERIFY_INTRO = "Wait, let me check again."


def _slipped(rng: random.Random, value: int) -> int:
    """A nearby wrong result in 0..MAX_VALUE: the kind of slip a second pass catches."""
    options = [v for v in (value - 2, value - 1, value + 1, value + 2) if 0 <= v <= MAX_VALUE]
    return rng.choice(options)


def format_long_solution(problem: Problem, slip_rng: random.Random | None = None) -> str:
    """Prompt + first pass + "So the answer is N." + a check that solves the problem again +
    ``\\boxed{answer}``. With `slip_rng`, the first pass's last result is a nearby wrong value
    (the check recomputes that line and the box holds the right answer, after "No,"); the
    caller draws whether a chain slips. The boxed answer is always `problem.answer`, so the
    answer and the eval problems are those of `format_solution`.

        A: doubles them: 17*2=34. So the answer is 34. Wait, let me check again. doubles
        them: 17*2=34. Yes, the answer is \\boxed{34}
    """
    lines = _COT_LINE.findall(problem.chain)
    if not lines or len(lines) != problem.steps:
        raise ValueError(f"not a generated chain with {problem.steps} arithmetic lines: {problem}")
    chain = problem.chain.strip()
    first_pass, first_answer = chain, problem.answer
    if slip_rng is not None:
        first_answer = _slipped(slip_rng, int(problem.answer))
        head, _, _ = chain.rpartition("=")  # the last line's result is the chain's end
        first_pass = f"{head}={first_answer}."
    verdict = "Yes" if first_answer == problem.answer else "No"
    return (
        f"{format_prompt(problem)} {first_pass} So the answer is {first_answer}. {VERIFY_INTRO} "
        f"{chain} {verdict}, the answer is \\boxed{{{problem.answer}}}"
    )


# ----------------------------------------------------------------------------- parsing


def _last_boxed_content(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with balanced braces, or None."""
    start = text.rfind("\\boxed")
    while start != -1:
        i = start + len("\\boxed")
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            depth, j = 0, i
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[i + 1 : j]
                j += 1
        # unclosed or not followed by a brace: try an earlier box
        start = text.rfind("\\boxed", 0, start)
    return None


def parse_boxed_str(text: str) -> str | None:
    """The last boxed answer as a normalised string (spaces removed), or None."""
    content = _last_boxed_content(text)
    if content is None:
        return None
    content = re.sub(r"\s+", "", content)
    return content or None


_INT = re.compile(r"^[-+−]?\d+$")


def _to_int(s: str) -> int | None:
    s = s.replace(",", "").replace("−", "-")
    # strip a wrapping brace group such as {18} (nested braces) and a trailing ".0"
    while s.startswith("{") and s.endswith("}"):
        s = s[1:-1]
    s = s.rstrip(".")
    if s.endswith(".0"):
        s = s[:-2]
    if s.startswith("$"):
        s = s[1:]
    return int(s) if _INT.match(s) else None


def parse_boxed(text: str) -> int | None:
    """The integer in the last ``\\boxed{...}`` of `text`, or None if absent or not an
    integer. Tolerates spaces, a sign, thousands commas and redundant braces."""
    content = parse_boxed_str(text)
    return None if content is None else _to_int(content)


def parse_gsm8k_answer(answer: str) -> int | None:
    """The integer after GSM8K's ``#### `` marker (e.g. ``#### 1,234`` -> 1234), or None."""
    m = re.search(r"####\s*([^\n]+)", answer)
    return None if m is None else _to_int(m.group(1).strip())


def answers_match(predicted_text: str, answer: int | str) -> bool:
    """Does the last boxed answer in `predicted_text` equal `answer`?"""
    if isinstance(answer, int):
        return parse_boxed(predicted_text) == answer
    return parse_boxed_str(predicted_text) == re.sub(r"\s+", "", str(answer))
