"""Greedy decoding of a linearized Llama: autoregressive, and speculative with tree verification.

One loop serves every case. The committed prefix lives in per-layer states (recurrent linear
state, or a KV cache for softmax); `root` is the target's own greedy next token, not yet fed.
Each step a drafter proposes a tree rooted at `root`; the target runs ONE forward over all tree
nodes (tree attention mask, true positions, unfolded conv), accepts the longest path whose every
token equals the target's argmax at its parent, and commits only that path to the states.
With a root-only tree this is plain autoregressive recurrent decoding (the baseline).
Greedy acceptance makes the output identical to plain greedy decoding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .linear_llama import Plan, attention_modules


class Tree:
    """Candidate tokens (node 0 is the root) and each node's parent (-1 for the root);
    parents come before children."""

    def __init__(self, tokens: list[int], parents: list[int], device, shape=None) -> None:
        self.token_list = [int(t) for t in tokens]
        self.tokens = torch.tensor(self.token_list, device=device)
        self.parents = parents
        self.depth, self.ancestors = shape if shape is not None else tree_shape(parents, device)


def tree_shape(parents: list[int], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(depth of each node, (n, n) bool ancestor-or-self matrix)."""
    n = len(parents)
    depth = [0] * n
    anc = torch.eye(n, dtype=torch.bool)
    for i, p in enumerate(parents):
        if p >= 0:
            depth[i] = depth[p] + 1
            anc[i] |= anc[p]
    return torch.tensor(depth, dtype=torch.long, device=device), anc.to(device)


class Decoder:
    """Runs a linearized LlamaForCausalLM with explicit state: prefill, verify, commit."""

    def __init__(self, model) -> None:
        self.model = model
        self.attns = attention_modules(model)

    def _run(self, ids: torch.Tensor, positions: torch.Tensor, plan: Plan) -> torch.Tensor:
        for a in self.attns:
            a.plan = plan
        try:
            out = self.model.model(input_ids=ids, position_ids=positions, use_cache=False)
        finally:
            for a in self.attns:
                a.plan = None
        return out.last_hidden_state

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(hidden)

    def new_states(self, batch: int = 1):
        w = self.model.lm_head.weight
        return [a.new_state(batch, w.device, w.dtype) for a in self.attns]

    def prefill(self, ids: torch.Tensor, states) -> torch.Tensor:
        """Chunked form over the prompt (states must be empty); returns hidden states."""
        assert states[0].length == 0, "prefill starts from an empty state"
        pos = torch.arange(ids.shape[1], device=ids.device)[None]
        return self._run(ids, pos, Plan("prefill", states))

    def verify(self, tree: Tree, states) -> tuple[torch.Tensor, Plan]:
        depth = tree.depth
        plan = Plan("tree", states, depth, tree.ancestors)
        pos = (states[0].length + depth)[None]
        return self._run(tree.tokens[None], pos, plan), plan

    def commit(self, plan: Plan, nodes: list[int]) -> None:
        idx = torch.tensor(nodes, dtype=torch.long, device=plan.depth.device)
        for a in self.attns:
            a.commit(plan, idx)


def accept_greedy(tree: Tree, predicted: list[int]) -> list[int]:
    """The longest root path whose every node's token is the target's argmax at its parent."""
    children: dict[int, list[int]] = {}
    for i, p in enumerate(tree.parents):
        children.setdefault(p, []).append(i)
    path = [0]
    while True:
        want = predicted[path[-1]]
        nxt = [c for c in children.get(path[-1], []) if tree.token_list[c] == want]
        if not nxt:
            return path
        path.append(nxt[0])


# ----------------------------------------------------------------------------- drafters


class NoDraft:
    """Root-only trees: plain autoregressive decoding with the same machinery."""

    name = "autoregressive"

    def start(self, prompt: torch.Tensor) -> None:
        pass

    def propose(self, root: int, hidden: torch.Tensor) -> Tree:
        return Tree([root], [-1], hidden.device)

    def accepted(self, tokens: list[int]) -> None:
        pass


class MedusaHeads(nn.Module):
    """K extra heads on the last hidden state; head k predicts the token k+1 places after the
    base model's next token. Each is one zero-initialised residual SiLU block plus an LM head
    initialised from the base model's (Medusa-1)."""

    def __init__(self, hidden: int, lm_head: nn.Linear, num_heads: int = 4) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(num_heads))
        self.heads = nn.ModuleList(
            nn.Linear(hidden, lm_head.out_features, bias=False) for _ in range(num_heads)
        )
        for block, head in zip(self.blocks, self.heads, strict=True):
            nn.init.zeros_(block.weight)
            nn.init.zeros_(block.bias)
            head.weight.data.copy_(lm_head.weight.data)

    def forward(self, h: torch.Tensor) -> list[torch.Tensor]:
        return [
            head(h + nn.functional.silu(block(h)))
            for block, head in zip(self.blocks, self.heads, strict=True)
        ]


def tree_template(topk: int, depth: int, size: int) -> list[tuple[int, ...]]:
    """A sparse candidate tree: the `size` rank paths (r_1..r_d) of highest prior
    prod_i 0.6^{r_i} * 0.75^i (a geometric stand-in for measured head accuracies), prefix-
    closed, parents before children. The root (empty path) is not included."""
    import itertools

    paths = []
    for d in range(1, depth + 1):
        for ranks in itertools.product(range(topk), repeat=d):
            score = 1.0
            for i, r in enumerate(ranks):
                score *= 0.6**r * 0.75 ** (i + 1)
            paths.append((score, ranks))
    paths.sort(key=lambda x: (-x[0], len(x[1]), x[1]))
    chosen: list[tuple[int, ...]] = []
    have = {()}
    for _, ranks in paths:
        if len(chosen) == size:
            break
        if ranks[:-1] in have:
            chosen.append(ranks)
            have.add(ranks)
    return sorted(chosen, key=lambda r: (len(r), r))


class MedusaDraft:
    name = "medusa"

    def __init__(self, heads: MedusaHeads, tree_size: int = 63, topk: int = 4) -> None:
        self.heads = heads
        self.template = tree_template(topk, len(heads.heads), tree_size)
        self.topk = topk
        index = {(): 0}
        self.parents = [-1]
        for i, ranks in enumerate(self.template, start=1):
            index[ranks] = i
            self.parents.append(index[ranks[:-1]])
        self._shape = None

    def start(self, prompt: torch.Tensor) -> None:
        pass

    @torch.no_grad()
    def propose(self, root: int, hidden: torch.Tensor) -> Tree:
        top = torch.stack(
            [lg.topk(self.topk, dim=-1).indices.reshape(-1) for lg in self.heads(hidden)]
        ).tolist()
        tokens = [root] + [top[len(r) - 1][r[-1]] for r in self.template]
        if self._shape is None:  # the template is fixed: build its mask once
            self._shape = tree_shape(self.parents, hidden.device)
        return Tree(tokens, self.parents, hidden.device, self._shape)

    def accepted(self, tokens: list[int]) -> None:
        pass


class ModelDraft:
    """A small draft model (here a truncated copy of the target) proposing a greedy chain of
    `gamma` tokens; its own state is also fed only verified tokens."""

    name = "draft_model"

    def __init__(self, model, gamma: int = 4) -> None:
        self.dec = Decoder(model)
        self.gamma = gamma

    def start(self, prompt: torch.Tensor) -> None:
        self.states = self.dec.new_states(prompt.shape[0])
        self.dec.prefill(prompt, self.states)

    @torch.no_grad()
    def propose(self, root: int, hidden: torch.Tensor) -> Tree:
        states = [s.clone() for s in self.states]
        tokens = [root]
        for _ in range(self.gamma):
            one = Tree(tokens[-1:], [-1], hidden.device)
            h, plan = self.dec.verify(one, states)
            self.dec.commit(plan, [0])
            tokens.append(int(self.dec.logits(h[0, -1]).argmax()))
        return Tree(tokens, list(range(-1, self.gamma)), hidden.device)

    @torch.no_grad()
    def accepted(self, tokens: list[int]) -> None:
        device = self.states[0].S.device
        chain = Tree(tokens, list(range(-1, len(tokens) - 1)), device)
        _, plan = self.dec.verify(chain, self.states)
        self.dec.commit(plan, list(range(len(tokens))))


# ----------------------------------------------------------------------------- the loop


@dataclass
class DecodeStats:
    tokens: list[int]
    steps: int
    seconds: float
    accepted: list[int] = field(default_factory=list)  # tokens gained per step

    @property
    def mean_accepted(self) -> float:
        return sum(self.accepted) / max(1, len(self.accepted))

    @property
    def tokens_per_s(self) -> float:
        return len(self.tokens) / max(self.seconds, 1e-9)


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def generate(model, prompt: torch.Tensor, max_new_tokens: int, drafter=None) -> DecodeStats:
    """Greedy decoding of `prompt` (1, T) for exactly `max_new_tokens` tokens (no EOS stop, so
    every drafter produces the same length). drafter=None: autoregressive."""
    drafter = drafter or NoDraft()
    dec = Decoder(model)
    _sync(prompt.device)
    t0 = time.perf_counter()
    states = dec.new_states(prompt.shape[0])
    hidden = dec.prefill(prompt, states)[0, -1]
    drafter.start(prompt)
    root = int(dec.logits(hidden).argmax())
    out: list[int] = []
    gained: list[int] = []
    while len(out) < max_new_tokens:
        tree = drafter.propose(root, hidden)
        h, plan = dec.verify(tree, states)
        predicted = dec.logits(h[0]).argmax(-1).tolist()  # one sync per step
        path = accept_greedy(tree, predicted)
        dec.commit(plan, path)
        new = [tree.token_list[i] for i in path]
        drafter.accepted(new)
        out.extend(new)
        gained.append(len(new))
        hidden = h[0, path[-1]]
        root = predicted[path[-1]]
    _sync(prompt.device)
    return DecodeStats(out[:max_new_tokens], len(gained), time.perf_counter() - t0, gained)


@torch.no_grad()
def greedy_reference(model, prompt: torch.Tensor, max_new_tokens: int) -> list[int]:
    """Plain greedy decoding by full recomputation (no state, no cache): the oracle."""
    ids = prompt
    out = []
    for _ in range(max_new_tokens):
        nxt = model(input_ids=ids).logits[0, -1].argmax()
        out.append(int(nxt))
        ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
    return out
