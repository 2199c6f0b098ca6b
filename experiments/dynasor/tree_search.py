"""Step-level tree search over the real reasoner: Rebase (reward-balanced expansion) and beam.

A step is one chain-of-thought line: generation of a child stops at the first token holding a
"." (the end of an arithmetic line), a "}" (the closing of the boxed answer) or eos, and at
`step_tokens` tokens otherwise (a fixed token chunk). A node scores its partial chain with the
built-in reward, the reasoner's own length-normalised likelihood exp(mean log p) of the tokens
so far (the quantity `pool.LikelihoodReward` scores, read here from the sampling logits, so no
second forward pass is needed), or with a pluggable `RewardScorer` on the text.

Rebase (Wu et al., "Inference Scaling Laws", 2024): every round expands the frontier; the
budget of a round is the tree's `width` minus the leaves already finished, and node i gets
round(B * softmax(r / T)_i) children (largest remainders, so the children sum to exactly B);
nodes that get none are pruned. Beam: the `beam_size` best nodes share the budget evenly.
A tree ends when its budget is spent or no node is left; its answer is the reward-weighted
majority over finished leaves (Rebase's aggregate).

All trees of all problems advance in lockstep, one batched `generate` per round. Tokens are
counted as a stop-string engine would generate them: the kept step tokens of every expanded
node (a shared prefix counts once; the tokens a batch sampled past a step's end do not count).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

EXPANSIONS = ("rebase", "beam")


@dataclass
class Tree:
    """One finished search: its leaves, their rewards, and what it cost."""

    answers: list  # parsed answer of each finished leaf (None: nothing parsable)
    rewards: list[float]  # reward of each leaf in [0, 1]
    tokens: int  # generated tokens over every expanded node
    rounds: int  # expansion rounds (depth reached)
    nodes: int  # nodes expanded
    # the requests of each expansion round, as a serving engine would see them: one
    # [prefix, generated] pair per expanded node, `prefix` = tokens of its parent's chain (after
    # the prompt), `generated` = the step's tokens (eos included); sum of `generated` = `tokens`.
    # A round's requests depend on the round before (Rebase reads every frontier reward first).
    steps: list = field(default_factory=list)


@dataclass
class TreePool:
    """`len(trees)` independent searches of one problem, replayed like the SC chain pool."""

    question: str
    answer: int | str
    steps: int
    prompt_len: int
    trees: list[Tree]

    def __post_init__(self) -> None:
        self.trees = [t if isinstance(t, Tree) else Tree(**t) for t in self.trees]

    @property
    def units(self) -> int:
        return len(self.trees)

    @property
    def correct(self) -> list[bool]:
        """Per search: its reward-weighted majority is the exact answer."""
        return [weighted_vote(t.answers, t.rewards) == self.answer for t in self.trees]


@dataclass
class Node:
    ids: list[int] = field(default_factory=list)  # generated ids (prompt excluded)
    logp: float = 0.0  # sum of log p of `ids`
    score: float = 0.0  # reward of the partial chain, in [0, 1]
    answer: object = None

    @property
    def likelihood(self) -> float:
        """exp(mean log p): the reasoner's own length-normalised likelihood of its chain."""
        return math.exp(self.logp / len(self.ids)) if self.ids else 0.0


def allocate(rewards: list[float], budget: int, expansion: str, temperature: float, beam: int):
    """Children per frontier node for one round. Rebase: B * softmax(r / T), rounded by
    largest remainders (sum = B). Beam: the `beam` best nodes share B evenly (the better
    ones take the remainder)."""
    n = len(rewards)
    if budget <= 0 or n == 0:
        return [0] * n
    r = np.asarray(rewards, dtype=float)
    if expansion == "beam":
        keep = np.argsort(-r, kind="stable")[: min(beam, n)]
        out = [0] * n
        for rank, i in enumerate(keep):
            out[i] = budget // len(keep) + (1 if rank < budget % len(keep) else 0)
        return out
    if expansion != "rebase":
        raise ValueError(f"expansion={expansion!r}: allowed {', '.join(EXPANSIONS)}")
    w = np.exp((r - r.max()) / max(temperature, 1e-9))
    share = budget * w / w.sum()
    out = np.floor(share).astype(int)
    rest = budget - int(out.sum())
    for i in np.argsort(-(share - out), kind="stable")[:rest]:
        out[i] += 1
    return out.tolist()


def weighted_vote(answers, weights):
    """Reward-weighted majority over non-missing answers (ties: the answer seen first)."""
    totals: dict = {}
    for a, w in zip(answers, weights, strict=True):
        if a is not None:
            totals[a] = totals.get(a, 0.0) + float(w)
    if not totals:
        return None
    best = max(totals.values())
    return next(a for a in totals if totals[a] == best)


@dataclass
class _Search:
    problem: int
    prompt_ids: list[int]
    frontier: list[Node]
    children: list[int]  # children each frontier node gets next round
    leaves: list[Node] = field(default_factory=list)
    tokens: int = 0
    rounds: int = 0
    nodes: int = 0
    steps: list = field(default_factory=list)  # per round: [prefix, generated] per node


def _boundary_ids(tokenizer) -> set[int]:
    """Token ids whose text ends a step: a '.' (end of an arithmetic line) or a '}'."""
    return {
        i
        for i in range(len(tokenizer))
        if any(c in tokenizer.decode([i], skip_special_tokens=True) for c in ".}")
    }


def search_trees(
    model,
    tokenizer,
    problems,
    *,
    trees: int,
    width: int,
    expansion: str = "rebase",
    balance_temperature: float = 0.1,
    beam_size: int = 2,
    step_tokens: int = 24,
    max_new_tokens: int = 160,
    temperature: float = 0.8,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 64,
    scorer=None,
    log=None,
) -> list[TreePool]:
    """`trees` independent searches of `width` leaves for every problem, on the real model."""
    import torch

    from celine.llm.reasoning import format_prompt, parse_boxed, parse_boxed_str

    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    stops = _boundary_ids(tokenizer)
    device = next(model.parameters()).device
    prompts = [tokenizer(format_prompt(p))["input_ids"] for p in problems]
    searches = [
        _Search(k, prompts[k], [Node()], [width])  # the root gets `width` children
        for k in range(len(problems))
        for _ in range(trees)
    ]
    gen = torch.Generator().manual_seed(seed)
    while True:
        rows = [
            (s, node)
            for s in searches
            for node, n in zip(s.frontier, s.children, strict=True)
            for _ in range(n)
        ]
        if not rows:
            break
        steps = _expand(
            model, rows, step_tokens, temperature, top_p, eos, pad, stops, device, gen, batch_size
        )
        for s in searches:
            if any(s.children):
                s.rounds += 1
                s.steps.append([])
            s.frontier = []
        new_nodes = []
        for (s, parent), (ids, logp, hit_eos) in zip(rows, steps, strict=True):
            child = Node(parent.ids + ids, parent.logp + logp)
            s.tokens += len(ids) + int(hit_eos)
            s.nodes += 1
            s.steps[-1].append([len(parent.ids), len(ids) + int(hit_eos)])
            new_nodes.append((s, child))
            text = tokenizer.decode(child.ids, skip_special_tokens=True)
            if hit_eos or parse_boxed_str(text) is not None or len(child.ids) >= max_new_tokens:
                exact = problems[s.problem].answer
                child.answer = (
                    parse_boxed(text) if isinstance(exact, int) else parse_boxed_str(text)
                )
                s.leaves.append(child)
            else:
                s.frontier.append(child)
        _score(new_nodes, scorer, tokenizer, problems)
        for s in searches:
            s.children = allocate(
                [n.score for n in s.frontier],
                width - len(s.leaves),
                expansion,
                balance_temperature,
                beam_size,
            )
        if log is not None:
            open_ = sum(1 for s in searches if any(s.children))
            log.info("tree search: %d nodes expanded, %d searches open", len(rows), open_)
    pools = []
    for k, p in enumerate(problems):
        own = searches[k * trees : (k + 1) * trees]
        pools.append(
            TreePool(
                question=p.question,
                answer=p.answer,
                steps=p.steps,
                prompt_len=len(prompts[k]),
                trees=[
                    Tree(
                        answers=[n.answer for n in s.leaves],
                        rewards=[n.score for n in s.leaves],
                        tokens=s.tokens,
                        rounds=s.rounds,
                        nodes=s.nodes,
                        steps=s.steps,
                    )
                    for s in own
                ],
            )
        )
    return pools


def _score(new_nodes, scorer, tokenizer, problems) -> None:
    """Set `node.score` of every new node: its likelihood, or the scorer's reward in [0, 1]."""
    if scorer is None:
        for _, n in new_nodes:
            n.score = n.likelihood
        return
    from celine.llm.reasoning import format_prompt

    prompts = [format_prompt(problems[s.problem]) for s, _ in new_nodes]
    texts = [tokenizer.decode(n.ids, skip_special_tokens=True) for _, n in new_nodes]
    for (_, n), r in zip(new_nodes, scorer.score(prompts, texts), strict=True):
        n.score = float(min(1.0, max(0.0, r)))


class _StepEnd:
    """Stops a row once it sampled a step-ending token (the batch ends when every row has),
    so no row generates much past its step: what a stop-string engine does."""

    def __init__(self, stop_ids) -> None:
        self.stop_ids = stop_ids

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.isin(input_ids[:, -1], self.stop_ids)


def _expand(model, rows, step_tokens, temperature, top_p, eos, pad, stops, device, gen, bs):
    """Sample one step for every (search, parent) row: (kept ids, their log p, ended at eos)."""
    import torch

    stop_tensor = torch.tensor(sorted(stops), device=device)
    out = []
    for b in range(0, len(rows), bs):
        seqs = [s.prompt_ids + parent.ids for s, parent in rows[b : b + bs]]
        wide = max(map(len, seqs))
        ids = torch.tensor([[pad] * (wide - len(q)) + q for q in seqs], device=device)
        mask = torch.tensor([[0] * (wide - len(q)) + [1] * len(q) for q in seqs], device=device)
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        with torch.no_grad():
            res = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=step_tokens,
                stopping_criteria=[_StepEnd(stop_tensor)],
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_p=top_p if temperature > 0 else None,
                top_k=0 if temperature > 0 else None,
                eos_token_id=eos,
                pad_token_id=pad,
                output_logits=True,
                return_dict_in_generate=True,
            )
        new = res.sequences[:, wide:]
        # log p of each sampled token under the model itself (raw logits, not temperature-scaled)
        logp = torch.stack(
            [torch.log_softmax(x.float(), -1) for x in res.logits], dim=1
        )  # batch x steps x vocab
        tok_lp = logp.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        for row, lps in zip(new.tolist(), tok_lp.tolist(), strict=True):
            kept, total, hit_eos = [], 0.0, False
            for t, lp in zip(row, lps, strict=True):
                if t == eos:
                    hit_eos = True
                    break
                kept.append(t)
                total += lp
                if t in stops:
                    break
            out.append((kept, total, hit_eos))
    return out


def save_tree_pool(path: Path, pools: list[TreePool]) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(p) for p in pools]))
    tmp.replace(path)


def load_tree_pool(path: Path) -> list[TreePool]:
    import json

    return [TreePool(**row) for row in json.loads(Path(path).read_text())]
