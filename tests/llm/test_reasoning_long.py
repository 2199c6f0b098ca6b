"""The long-chain option of the reasoning corpus (`verify`, `slip_prob`): a verification tail
after the first answer, the boxed answer unchanged, and the default corpus byte-identical."""

import hashlib
import random

import pytest

from celine.llm import corpora as C
from celine.llm import reasoning as R

SMALL = dict(n_train=3000, n_val_per_steps=3, n_test_per_steps=3)


def test_default_corpus_is_byte_identical():
    """The plain corpus (what the cached tiny_reasoner was trained on) must not change: the
    hash was taken from the corpus before the long-chain option existed."""
    plain = C.load_corpus("reasoning", **SMALL)
    text = "\n".join(plain.train + plain.validation + plain.test)
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert digest == "da044d64eba56b36fd43ff1b64dffc5e642d2fe8938bf1fcdbee7000a79e0b4d"
    assert C.load_corpus("reasoning", verify=False, **SMALL).train == plain.train


def test_long_chains_restate_the_answer_after_a_check_of_every_step():
    plain = C.load_corpus("reasoning", **SMALL)
    long = C.load_corpus("reasoning", verify=True, **SMALL)
    # the same problems, so the same held-out eval problems
    assert long.test_problems == plain.test_problems
    assert long.validation_problems == plain.validation_problems
    for doc, base, p in zip(long.test, plain.test, long.test_problems, strict=True):
        first, _, tail = doc.partition(f" {R.VERIFY_INTRO} ")
        assert tail, "the verification tail is missing"
        # the first pass is the plain chain, then the answer in words
        assert first == base.rsplit(" \\boxed", 1)[0] + f" So the answer is {p.answer}."
        assert R.parse_boxed(doc) == p.answer  # the boxed answer is the first one
        assert tail.endswith(f"Yes, the answer is \\boxed{{{p.answer}}}")
        # the check solves the problem again, line by line
        assert tail.startswith(p.chain)
        assert R._COT_LINE.findall(tail) == R._COT_LINE.findall(p.chain)


def test_slips_are_corrected_by_the_check_and_leave_the_problems_alone():
    plain = C.load_corpus("reasoning", **SMALL)
    slipped = C.load_corpus("reasoning", verify=True, slip_prob=0.3, **SMALL)
    assert slipped.test_problems == plain.test_problems
    n_slips = 0
    for doc, p in zip(slipped.train, C.load_corpus("reasoning", **SMALL).train, strict=True):
        assert R.parse_boxed(doc) == R.parse_boxed(p)  # the box always holds the right answer
        if "No, the answer is" in doc:
            n_slips += 1
            stated = int(doc.split("So the answer is ")[1].split(".")[0])
            assert stated != R.parse_boxed(doc) and abs(stated - R.parse_boxed(doc)) <= 2
    assert 0.25 < n_slips / len(slipped.train) < 0.35
    with pytest.raises(ValueError, match="slip_prob"):
        C.load_corpus("reasoning", verify=True, slip_prob=1.5, **SMALL)


def test_format_long_solution_worked_example():
    p = R.Problem(
        "Ann has 17 pens. Ann doubles them. How many pens?", "doubles them: 17*2=34.", 34, 1
    )
    assert R.format_long_solution(p) == (
        "Q: Ann has 17 pens. Ann doubles them. How many pens?\nA: doubles them: 17*2=34. "
        "So the answer is 34. Wait, let me check again. doubles them: 17*2=34. "
        "Yes, the answer is \\boxed{34}"
    )
    slipped = R.format_long_solution(p, random.Random(0))
    assert "No, the answer is \\boxed{34}" in slipped and "So the answer is 34." not in slipped
