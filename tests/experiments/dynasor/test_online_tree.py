"""Tree-search (Rebase) programs online: each expansion round of a recorded search is a stage
of requests that depends on the stage before it, so a program has many rounds for gang
scheduling and SJF to act on."""

import numpy as np
import pytest

from celine.experiments.dynasor.online import simulate
from celine.experiments.dynasor.programs import (
    CertaindexPolicy,
    TreeSearchProgram,
    run_to_completion,
)
from celine.experiments.dynasor.tree_search import Tree, TreePool

MS = 1e-3
PROMPT = 7


def _tree(steps, answers) -> Tree:
    """A search from its rounds of [prefix, generated] requests."""
    tokens = sum(out for stage in steps for _, out in stage)
    nodes = sum(map(len, steps))
    return Tree(list(answers), [0.9] * len(answers), tokens, len(steps), nodes, steps)


def _random_tree(rng, width, certain: bool) -> Tree:
    """Rounds of at most `width` requests whose prefixes extend a node of the round before."""
    steps, ends = [], [0]
    for _ in range(int(rng.integers(2, 7))):
        stage = []
        for _ in range(int(rng.integers(1, width + 1))):
            prefix = int(rng.choice(ends))
            stage.append([prefix, int(rng.integers(1, 9))])
        steps.append(stage)
        ends = [p + o for p, o in stage]
    answers = [5] * width if certain else rng.integers(0, 4, size=width).tolist()
    return _tree(steps, answers)


def _random_pools(seed: int, n: int = 6, trees: int = 4, width: int = 3):
    rng = np.random.default_rng(seed)
    return [
        TreePool("q", 5, 2, PROMPT, [_random_tree(rng, width, k % 2 == 0) for _ in range(trees)])
        for k in range(n)
    ]


@pytest.mark.parametrize("scheduler", ["fcfs", "certaindex_fcfs", "certaindex_gang", "dynasor"])
def test_a_tree_program_issues_a_round_only_after_the_round_before_finished(
    scheduler, online_setting
):
    pools = _random_pools(seed=3)
    rng = np.random.default_rng(0)
    picks = [0, 1, 2, 3, 4, 5, 1, 0]
    orders = [rng.permutation(4).tolist() for _ in picks]
    arrivals = np.cumsum(rng.exponential(0.004, size=len(picks))).tolist()
    log: list = []
    setting = online_setting()
    progs = simulate(scheduler, pools, picks, orders, arrivals, setting, TreeSearchProgram, log)
    uses_certaindex = scheduler != "fcfs"
    for p in progs:
        pool = pools[picks[p.pid]]
        own = [r for r in log if r.program == p.pid]
        # dependency: stage s+1 of a search is issued exactly when its stage s finished
        for unit in {r.meta["unit"] for r in own}:
            reqs = [r for r in own if r.meta["unit"] == unit]
            tree = pool.trees[unit]
            assert max(r.meta["stage"] for r in reqs) == len(tree.steps) - 1
            for s in range(1, len(tree.steps)):
                before = [r.finish_time for r in reqs if r.meta["stage"] == s - 1]
                after = {r.arrival for r in reqs if r.meta["stage"] == s}
                assert after == {max(before)}
            # the requests are the recorded ones: the prompt plus the parent's chain, and the
            # step's tokens (their sum is the search's batch-mode token count)
            got = sorted((r.meta["stage"], r.prompt_len, r.output_len) for r in reqs)
            want = sorted(
                (s, PROMPT + prefix, out) for s, st in enumerate(tree.steps) for prefix, out in st
            )
            assert got == want
        assert sum(r.output_len for r in own) == p.tokens
        # the program decides as the batch replay of the same order does
        policy = (
            CertaindexPolicy(setting.detect_at, setting.cap, entropy_threshold=setting.threshold)
            if uses_certaindex
            else None
        )
        if policy is None:
            from celine.experiments.dynasor.programs import FixedBudgetPolicy

            policy = FixedBudgetPolicy(setting.cap)
        batch = run_to_completion(TreeSearchProgram(pool, orders[p.pid], policy))
        assert p.program.knob == batch.knob
        assert p.tokens == sum(batch.tokens)
        assert p.program.answer == batch.answer and p.program.certaindex == batch.certaindex
        assert p.serial_rounds == sum(
            max(len(pool.trees[u].steps) for u in orders[p.pid][a:b])
            for a, b in (
                [(0, setting.detect_at), (setting.detect_at, batch.knob)]
                if uses_certaindex
                else [(0, setting.cap)]
            )  # fmt: skip
            if b > a
        )
    if uses_certaindex:  # certain pools (even index) stop at detection, the others go on
        assert {p.program.knob for p in progs if picks[p.pid] % 2 == 0} == {setting.detect_at}


def test_sjf_serves_a_short_program_before_a_long_one_that_arrived_first(online_setting):
    """Two programs, one request at a time, 1 ms per token. A (arrives at 0) has two searches
    of two 5-token rounds each and is uncertain after its first (answers 1, 2: granted the
    second); B (arrives at 0.5 ms) has one search of two 1-token rounds and is certain.

    Gang FIFO: A runs 1-20 ms, B 21-22 ms: latencies 20 and 21.5, mean 20.75 ms.
    Dynasor at 10 ms (A's first search done, A's own mean 10 tokens; B's is the running mean
    (prior 2 + 10) / 2 = 6): B's predicted remaining work 6 + 0.5 x 1 x 6 = 9 < A's 10, so B
    runs 11-12 ms and A's second search 13-22 ms: latencies 22 and 11.5, mean 16.75 ms."""
    a = TreePool("a", 1, 2, PROMPT, [_tree([[[0, 5]], [[5, 5]]], [1, 2])] * 2)
    b = TreePool("b", 3, 1, PROMPT, [_tree([[[0, 1]], [[1, 1]]], [3, 3])])
    setting = online_setting(max_num_seqs=1, detect_at=1, cap=2, continue_prob=0.5, prior_len=2.0)
    args = ([a, b], [0, 1], [[0, 1], [0]], [0.0, 0.5 * MS], setting, TreeSearchProgram)
    fifo = simulate("certaindex_gang", *args)
    sjf = simulate("dynasor", *args)
    assert [p.program.knob for p in fifo] == [p.program.knob for p in sjf] == [2, 1]
    assert [p.serial_rounds for p in sjf] == [4, 2]
    assert [(p.finish - p.arrival) / MS for p in fifo] == pytest.approx([20.0, 21.5])
    assert [(p.finish - p.arrival) / MS for p in sjf] == pytest.approx([22.0, 11.5])
    mean = {k: np.mean([p.finish - p.arrival for p in v]) / MS for k, v in
            (("fifo", fifo), ("sjf", sjf))}  # fmt: skip
    assert mean == {"fifo": pytest.approx(20.75), "sjf": pytest.approx(16.75)}


def test_bad_program_is_refused_in_one_line_naming_key_value_and_allowed():
    from celine.api import ConfigError
    from celine.experiments.dynasor.config import DynasorOnlineConfig

    with pytest.raises(ConfigError) as err:
        DynasorOnlineConfig(program="mcts")
    msg = str(err.value)
    assert err.value.key == "method.program" and "\n" not in msg
    assert "'mcts'" in msg and all(p in msg for p in ("sc", "rebase", "beam"))
    # each program's detect_at / cap come from its batch method, written once
    assert (DynasorOnlineConfig().detect_at, DynasorOnlineConfig().cap) == (3, 8)
    tree = DynasorOnlineConfig(program="rebase")
    assert (tree.detect_at, tree.cap, tree.entropy_threshold, tree.width) == (2, 4, 0.85, 4)
