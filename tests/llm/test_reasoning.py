"""The arithmetic word-problem generator and the answer parsers."""

import random

import pytest

from celine.llm import reasoning as R


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so \\boxed{42}", 42),
        ("\\boxed{ 42 }", 42),
        ("\\boxed {7}", 7),
        ("\\boxed{-3}", -3),
        ("\\boxed{1,234}", 1234),
        ("\\boxed{{18}}", 18),
        ("first \\boxed{1} then \\boxed{2}", 2),
        (
            "\\boxed{2} then a broken \\boxed{3",
            2,
        ),  # unclosed last box: fall back to the earlier one
        ("\\boxed{\\frac{1}{2}}", None),  # nested braces, not an integer
        ("\\boxed{12a}", None),
        ("\\boxed{}", None),
        ("no box here 42", None),
        ("\\boxed{", None),
        ("\\boxed{4.0}", 4),
        ("", None),
    ],
)
def test_parse_boxed(text, expected):
    assert R.parse_boxed(text) == expected


def test_parse_boxed_str_keeps_non_integers():
    assert R.parse_boxed_str("x = \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert R.answers_match("\\boxed{ \\frac{1}{2} }", "\\frac{1}{2}")
    assert not R.answers_match("\\boxed{3}", 4)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a\n#### 72", 72),
        ("#### 1,000", 1000),
        ("#### -5", -5),
        ("no marker", None),
        ("#### x", None),
    ],
)
def test_parse_gsm8k(text, expected):
    assert R.parse_gsm8k_answer(text) == expected


def _evaluate_question(q: str) -> int:
    """Independent ground truth: re-read the question's sentences, not the chain."""
    sentences = [s.strip() for s in q.split(".") if s.strip()]
    value = int(sentences[0].split()[2])
    for s in sentences[1:]:
        words = s.split()
        if s.startswith("How many"):
            break
        if "more" in words:
            value += int(words[2])
        elif words[1] in ("gives", "loses", "sells"):
            value -= int(words[-1])
        elif "doubles" in words:
            value *= 2
        elif "triples" in words:
            value *= 3
        elif "half" in words:
            assert value % 2 == 0
            value //= 2
        else:
            raise AssertionError(f"unknown sentence {s!r}")
        assert 0 <= value <= R.MAX_VALUE
    return value


def test_generator_exact_ground_truth_and_difficulty():
    problems = R.generate_problems(2000, seed=1)
    assert {p.steps for p in problems} == set(range(1, 9))
    for p in problems:
        assert _evaluate_question(p.question) == p.answer
        assert R.check_chain(p)
        assert p.chain.count("=") == p.steps
        assert p.question.count(".") == p.steps + 1
        sol = R.format_solution(p)
        assert sol.startswith(R.format_prompt(p))
        assert R.parse_boxed(sol) == p.answer


def test_restated_chain_copies_the_sentences_in_order():
    for restate in (True, False):
        for p in R.generate_problems(200, seed=2, restate=restate):
            ops = [s.strip()[4:] for s in p.question.split(".")[1:-1]]  # sentences minus the name
            lines = p.chain.split(". ")
            assert len(lines) == p.steps and R.check_chain(p)
            if restate:
                assert [line.split(":")[0] for line in lines] == ops
            else:
                assert ":" not in p.chain
    # both styles draw the same problems
    a, b = R.generate_problems(50, 5, restate=True), R.generate_problems(50, 5, restate=False)
    assert [(p.question, p.answer) for p in a] == [(p.question, p.answer) for p in b]


def test_check_chain_catches_a_wrong_step():
    p = R.make_problem(random.Random(0), 3)
    bad = R.Problem(p.question, p.chain.replace("=", "=1", 1), p.answer, p.steps)
    assert not R.check_chain(bad)


def test_generator_is_seeded_and_balanced():
    assert R.generate_problems(50, 3) == R.generate_problems(50, 3)
    assert R.generate_problems(50, 3) != R.generate_problems(50, 4)
    bal = R.generate_balanced(5, 0)
    assert [p.steps for p in bal] == [s for s in range(1, 9) for _ in range(5)]
    with pytest.raises(ValueError, match="steps=9"):
        R.make_problem(random.Random(0), 9)
