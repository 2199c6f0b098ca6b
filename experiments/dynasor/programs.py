"""Reasoning programs and Dynasor's intra-program allocation policy (paper App. D).

A program holds its `knob` (units granted so far: chains for self-consistency, whole tree
searches for Rebase/beam), its `certaindex` and its state. It runs in rounds: it asks for
resources, the policy grants some, the units run, `update_certaindex()` reads them.
Self-consistency aggregates by majority vote, tree search by reward-weighted majority. The units
come from a cached pool in a fixed order, so batch replay and the online simulator run the very
same program, and one policy object drives either program.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from celine.experiments.dynasor.certaindex import (
    entropy_certaindex,
    majority_vote,
    passes,
    reward_certaindex,
)
from celine.experiments.dynasor.pool import ProblemPool


@dataclass
class FixedBudgetPolicy:
    """Baseline-even: every program gets `cap` chains in one round."""

    cap: int
    name: str = "fixed_budget"

    def first_grant(self) -> int:
        return self.cap

    def next_grant(self, program) -> int:
        return 0


@dataclass
class CertaindexPolicy:
    """Dynasor's thresholding allocation: `detect_at` chains first; stop if every configured
    certaindex passes, else grant the rest up to `cap` (the paper's static policy)."""

    detect_at: int
    cap: int
    entropy_threshold: float | None = 0.7
    reward_threshold: float | None = None
    reward_aggregate: str = "mean"
    name: str = "certaindex"

    def first_grant(self) -> int:
        return self.detect_at

    def next_grant(self, program) -> int:
        if program.knob >= self.cap:
            return 0
        certain = passes(
            program.answers,
            program.rewards,
            entropy_threshold=self.entropy_threshold,
            reward_threshold=self.reward_threshold,
            reward_aggregate=self.reward_aggregate,
        )
        return 0 if certain else self.cap - program.knob


@dataclass
class LengthPolicy:
    """Baseline-length (paper §4): stop at `detect_at` when the chains so far are short
    (mean length <= max_tokens), the usual proxy for an easy problem."""

    detect_at: int
    cap: int
    max_tokens: float
    name: str = "baseline_length"

    def first_grant(self) -> int:
        return self.detect_at

    def next_grant(self, program) -> int:
        if program.knob >= self.cap:
            return 0
        mean = sum(program.tokens) / max(1, len(program.tokens))
        return 0 if mean <= self.max_tokens else self.cap - program.knob


@dataclass
class SelfConsistencyProgram:
    """n sampled chains and a majority vote, with the knob = number of chains."""

    pool: ProblemPool
    order: list[int]  # which pool chains, in the order this program draws them
    policy: object
    knob: int = 0
    certaindex: float | None = None
    answers: list = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    done: bool = False

    def request(self) -> list[int]:
        """Pool indices of the chains the next round runs (empty when the program is done)."""
        if self.done:
            return []
        grant = self.policy.first_grant() if self.knob == 0 else self.policy.next_grant(self)
        grant = min(grant, len(self.order) - self.knob)
        if grant <= 0:
            self.done = True
            return []
        chosen = self.order[self.knob : self.knob + grant]
        self.knob += grant
        return chosen

    def complete(self, chains: list[int]) -> None:
        """Record finished chains and refresh certaindex."""
        for i in chains:
            self.answers.append(self.pool.answers[i])
            self.tokens.append(self.pool.tokens[i])
            self.rewards.append(self.pool.rewards[i])
        self.update_certaindex()

    def update_certaindex(self) -> float | None:
        if len(self.answers) >= 2:
            self.certaindex = entropy_certaindex(self.answers)
        elif self.rewards:
            self.certaindex = reward_certaindex(self.rewards)
        return self.certaindex

    @property
    def answer(self):
        return majority_vote(self.answers)

    @property
    def correct(self) -> bool:
        return self.answer is not None and self.answer == self.pool.answer


@dataclass
class TreeSearchProgram(SelfConsistencyProgram):
    """A tree-search program (Rebase or beam, `tree_search.py`) with the knob = trees
    granted: each round grants whole searches of `width` leaves, and certaindex reads every
    finished leaf so far (entropy over their answers; the reward form over their rewards,
    the max for Rebase). The answer is the reward-weighted majority over leaves (Rebase's)."""

    def complete(self, trees: list[int]) -> None:
        for i in trees:
            tree = self.pool.trees[i]
            self.answers.extend(tree.answers)
            self.rewards.extend(tree.rewards)
            self.tokens.append(tree.tokens)
        self.update_certaindex()

    @property
    def answer(self):
        from celine.experiments.dynasor.tree_search import weighted_vote

        return weighted_vote(self.answers, self.rewards)


def run_to_completion(program: SelfConsistencyProgram) -> SelfConsistencyProgram:
    """Batch mode: run every round at once (no contention), as the batch experiments do."""
    while True:
        chains = program.request()
        if not chains:
            return program
        program.complete(chains)
