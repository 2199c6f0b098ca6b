"""The tree-search reasoning program (Rebase / beam) and Dynasor's policy driving it."""

import pytest

from celine.experiments.dynasor.programs import (
    CertaindexPolicy,
    FixedBudgetPolicy,
    TreeSearchProgram,
    run_to_completion,
)
from celine.experiments.dynasor.tree_search import (
    Tree,
    TreePool,
    allocate,
    search_trees,
    weighted_vote,
)


def test_rebase_allocation_spends_exactly_the_budget_and_favours_high_rewards():
    out = allocate([0.9, 0.5, 0.7], 7, "rebase", 0.1, 2)
    assert sum(out) == 7
    assert out[0] > out[2] > out[1]
    # a flat softmax (high temperature) spreads the budget evenly
    assert allocate([0.9, 0.5, 0.7, 0.6], 8, "rebase", 1e6, 2) == [2, 2, 2, 2]
    # a sharp one (low temperature) gives everything to the best node
    assert allocate([0.9, 0.5, 0.7], 5, "rebase", 1e-4, 2) == [5, 0, 0]
    assert allocate([0.9, 0.5], 0, "rebase", 0.1, 2) == [0, 0]


def test_beam_allocation_keeps_the_top_nodes():
    assert allocate([0.2, 0.9, 0.5, 0.7], 5, "beam", 0.1, 2) == [0, 3, 0, 2]
    assert allocate([0.2], 3, "beam", 0.1, 2) == [3]
    with pytest.raises(ValueError, match="expansion"):
        allocate([0.2], 3, "mcts", 0.1, 2)


def test_weighted_vote_sums_rewards_per_answer():
    assert weighted_vote([3, 5, 5, None], [0.9, 0.4, 0.4, 1.0]) == 3  # 0.9 > 0.8
    assert weighted_vote([3, 5, 5], [0.7, 0.4, 0.4]) == 5
    assert weighted_vote([None], [1.0]) is None


def _pool(answers_per_tree, answer=7):
    trees = [Tree(a, [0.9] * len(a), tokens=10 * len(a), rounds=3, nodes=len(a) * 3)
             for a in answers_per_tree]  # fmt: skip
    return TreePool("q", answer, 2, 5, trees)


def test_dynasor_policy_stops_a_certain_tree_program_at_detection():
    certain = _pool([[7, 7], [7, 7], [7, 7], [8, 9]])
    policy = CertaindexPolicy(detect_at=2, cap=4, entropy_threshold=0.7)
    prog = run_to_completion(TreeSearchProgram(certain, [0, 1, 2, 3], policy))
    assert prog.knob == 2 and prog.certaindex == pytest.approx(1.0)
    assert sum(prog.tokens) == 40 and prog.correct
    # an uncertain one gets the cap, and the fixed budget always does
    unsure = _pool([[7, 8], [9, 7], [7, 7], [7, 7]])
    prog = run_to_completion(TreeSearchProgram(unsure, [0, 1, 2, 3], policy))
    assert prog.knob == 4 and prog.answer == 7 and len(prog.answers) == 8
    fixed = run_to_completion(TreeSearchProgram(certain, [0, 1, 2, 3], FixedBudgetPolicy(4)))
    assert fixed.knob == 4 and sum(fixed.tokens) == 80


@pytest.fixture(scope="module")
def tiny():
    from celine.llm.reasoning import generate_problems
    from celine.llm.tiny_llama import tiny_test_model

    model, tok = tiny_test_model()
    return model, tok, generate_problems(2, seed=0, steps=2)


@pytest.mark.parametrize("expansion", ["rebase", "beam"])
def test_search_on_a_real_model_finishes_within_its_budget(tiny, expansion):
    model, tok, problems = tiny
    width, step_tokens, max_new = 3, 4, 12
    pools = search_trees(
        model, tok, problems, trees=2, width=width, expansion=expansion, step_tokens=step_tokens,
        max_new_tokens=max_new, seed=0, batch_size=8,
    )  # fmt: skip
    assert [p.question for p in pools] == [p.question for p in problems]
    for pool in pools:
        assert pool.units == 2
        for tree in pool.trees:
            assert len(tree.answers) == width  # every leaf of the budget finished
            assert all(0.0 <= r <= 1.0 for r in tree.rewards)
            # each round expands at most `width` nodes, and every step is at most step_tokens
            # (+ eos); a chain cannot outgrow max_new_tokens
            assert tree.nodes <= width * tree.rounds
            assert 0 < tree.tokens <= tree.nodes * (step_tokens + 1)
            assert tree.rounds <= max_new
            # the per-round requests the online programs replay add up to the search: one
            # request per expanded node, their tokens the search's, the root's round `width`
            # requests from the prompt, later prefixes the chain of a node of the round before
            assert len(tree.steps) == tree.rounds
            assert sum(map(len, tree.steps)) == tree.nodes
            assert sum(out for stage in tree.steps for _, out in stage) == tree.tokens
            assert tree.steps[0] == [[0, out] for _, out in tree.steps[0]]
            assert len(tree.steps[0]) == width
            for before, stage in zip(tree.steps, tree.steps[1:], strict=False):
                ends = {prefix + out for prefix, out in before}
                assert {prefix for prefix, _ in stage} <= ends


def test_long_reasoner_starts_from_the_cached_tiny_reasoner_and_has_its_own_entry(tmp_path):
    from celine.experiments.dynasor.config import LongReasonerConfig
    from celine.experiments.dynasor.long_reasoner import base_spec, checkpoint_dir
    from celine.llm.builders import spec_of
    from celine.llm.cache import checkpoint_path
    from celine.llm.models import TinyLlamaConfig

    cfg = LongReasonerConfig()
    plain = spec_of(TinyLlamaConfig(name="tiny_reasoner", corpus="reasoning"))
    assert base_spec(cfg).key() == plain.key()  # fine-tuned from model=tiny_reasoner itself
    entry = checkpoint_dir(cfg, tmp_path)
    assert entry != checkpoint_path(plain, tmp_path)
    assert checkpoint_dir(LongReasonerConfig(slip_prob=0.1), tmp_path) != entry
    assert checkpoint_dir(LongReasonerConfig(steps=10), tmp_path) != entry
    assert checkpoint_dir(LongReasonerConfig(), tmp_path) == entry  # stable
