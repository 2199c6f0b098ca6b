"""Greedy decoding of a linearized Llama: autoregressive, and speculative with tree verification.

One loop serves every case. The committed prefix lives in per-layer states (recurrent linear
state, or a KV cache for softmax); `root` is the target's own greedy next token, not yet fed.
Each step a drafter proposes a tree rooted at `root`; the target runs ONE forward over all tree
nodes (tree attention mask, true positions, unfolded conv), accepts the longest path whose every
token equals the target's argmax at its parent, and commits only that path to the states.
With a root-only tree this is plain autoregressive recurrent decoding (the baseline).
Greedy acceptance makes the output identical to plain greedy decoding.

Batches: every row keeps its own states and accepts its own path (ragged acceptance: rows
advance by different numbers of tokens, so their positions differ). One forward verifies all
rows' trees (same tree shape, per-row positions): embeddings, projections, MLPs and the LM head
run batched; inside each attention layer the tree attention over each row's own state is a
short loop over rows (the states have different lengths and open chunks). A row leaves the
batch when it has its tokens.
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

    def verify_rows(self, trees: list[Tree], rows: list[list]) -> tuple[torch.Tensor, Plan]:
        """One forward over B trees of the same shape, row b over its own states `rows[b]`
        (a list per layer); returns hidden states (B, n, hidden)."""
        depth = trees[0].depth
        by_layer = [[r[layer] for r in rows] for layer in range(len(self.attns))]
        plan = Plan("tree", by_layer, depth, trees[0].ancestors)
        lengths = torch.tensor([r[0].length for r in rows], device=depth.device)
        pos = lengths[:, None] + depth[None]
        ids = torch.stack([t.tokens for t in trees])
        return self._run(ids, pos, plan), plan

    def commit_rows(self, plan: Plan, paths: list[list[int]]) -> None:
        """Commit row b's accepted nodes `paths[b]` (ragged) to its own states."""
        device = plan.depth.device
        idx = [torch.tensor(p, dtype=torch.long, device=device) for p in paths]
        for a in self.attns:
            a.commit_rows(plan, idx)


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

    def start(self, prompts: list[torch.Tensor]) -> None:
        pass

    def propose(self, rows: list[int], roots: list[int], hidden: torch.Tensor) -> list[Tree]:
        return [Tree([r], [-1], hidden.device) for r in roots]

    def accepted(self, rows: list[int], tokens: list[list[int]]) -> None:
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


def tree_template(
    topk: int, depth: int, size: int, accuracy: list[list[float]] | None = None
) -> list[tuple[int, ...]]:
    """A sparse candidate tree: the `size` rank paths (r_1..r_d) of highest expected accuracy
    prod_i a[i][r_i], prefix-closed, parents before children; the root (empty path) is not
    included. `accuracy[i][r]` is head i's measured top-(r+1)-but-not-top-r accuracy (the
    Medusa paper's construction: adding the connected node of highest accuracy product, one
    at a time, maximises the expected acceptance length; with every a <= 1 a path's prefix
    scores at least as high, so taking the best paths in order keeps the tree connected).
    Without measurements, a geometric prior a[i][r] = 0.6^r * 0.75^(i+1) stands in."""
    import itertools

    def acc(i: int, r: int) -> float:
        if accuracy is None:
            return 0.6**r * 0.75 ** (i + 1)
        return accuracy[i][r]

    paths = []
    for d in range(1, depth + 1):
        for ranks in itertools.product(range(topk), repeat=d):
            score = 1.0
            for i, r in enumerate(ranks):
                score *= acc(i, r)
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


@torch.no_grad()
def head_accuracy(model, heads: MedusaHeads, stream, seq_len: int, topk: int, windows: int = 8):
    """Measured accuracy of each Medusa head at each rank: a[i][r] = the fraction of positions
    where head i's rank-r token is the true token i+2 places ahead, on held-out `stream`
    windows (the statistic the Medusa paper builds its tree from)."""
    device = model.lm_head.weight.device
    seq_len = min(seq_len, len(stream) - 1)
    span = len(stream) - seq_len - 1
    starts = torch.linspace(0, max(span, 0), windows).long().tolist()
    ids = torch.stack(
        [torch.as_tensor(stream[s : s + seq_len].astype("int64")) for s in starts]
    ).to(device)
    hidden = model.model(input_ids=ids).last_hidden_state
    hits = torch.zeros(len(heads.heads), topk)
    for i, logits in enumerate(heads(hidden)):
        ahead = i + 2  # head i predicts the token i+2 after the position (1 after the base's)
        guess = logits[:, : seq_len - ahead].topk(topk, dim=-1).indices  # (w, t, k)
        truth = ids[:, ahead:, None]
        hits[i] = (guess == truth).float().mean(dim=(0, 1)).cpu()
    return hits.tolist()


class MedusaDraft:
    name = "medusa"

    def __init__(
        self, heads: MedusaHeads, tree_size: int = 63, topk: int = 4, accuracy=None
    ) -> None:
        self.heads = heads
        self.template = tree_template(topk, len(heads.heads), tree_size, accuracy)
        self.topk = topk
        index = {(): 0}
        self.parents = [-1]
        for i, ranks in enumerate(self.template, start=1):
            index[ranks] = i
            self.parents.append(index[ranks[:-1]])
        self._shape = None

    def start(self, prompts: list[torch.Tensor]) -> None:
        pass

    @torch.no_grad()
    def propose(self, rows: list[int], roots: list[int], hidden: torch.Tensor) -> list[Tree]:
        """hidden: (B, hidden) at each row's last accepted node."""
        top = torch.stack(
            [lg.topk(self.topk, dim=-1).indices for lg in self.heads(hidden)], dim=1
        ).tolist()  # (B, heads, topk)
        if self._shape is None:  # the template is fixed: build its mask once
            self._shape = tree_shape(self.parents, hidden.device)
        return [
            Tree(
                [root] + [t[len(r) - 1][r[-1]] for r in self.template],
                self.parents,
                hidden.device,
                self._shape,
            )  # fmt: skip
            for root, t in zip(roots, top, strict=True)
        ]

    def accepted(self, rows: list[int], tokens: list[list[int]]) -> None:
        pass


class ModelDraft:
    """A small draft model (here a truncated copy of the target) proposing a greedy chain of
    `gamma` tokens; its own per-row states are also fed only verified tokens."""

    name = "draft_model"

    def __init__(self, model, gamma: int = 4) -> None:
        self.dec = Decoder(model)
        self.gamma = gamma

    def start(self, prompts: list[torch.Tensor]) -> None:
        self.states = []
        for prompt in prompts:
            states = self.dec.new_states(1)
            self.dec.prefill(prompt, states)
            self.states.append(states)

    @torch.no_grad()
    def propose(self, rows: list[int], roots: list[int], hidden: torch.Tensor) -> list[Tree]:
        states = [[s.clone() for s in self.states[r]] for r in rows]
        chains = [[root] for root in roots]
        device = hidden.device
        for _ in range(self.gamma):
            ones = [Tree(c[-1:], [-1], device) for c in chains]
            h, plan = self.dec.verify_rows(ones, states)
            self.dec.commit_rows(plan, [[0]] * len(rows))
            for c, t in zip(chains, self.dec.logits(h[:, -1]).argmax(-1).tolist(), strict=True):
                c.append(t)
        return [Tree(c, list(range(-1, self.gamma)), device) for c in chains]

    @torch.no_grad()
    def accepted(self, rows: list[int], tokens: list[list[int]]) -> None:
        device = self.states[0][0].S.device
        for r, toks in zip(rows, tokens, strict=True):  # ragged: one short chain per row
            chain = Tree(toks, list(range(-1, len(toks) - 1)), device)
            _, plan = self.dec.verify(chain, self.states[r])
            self.dec.commit(plan, list(range(len(toks))))


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
    return generate_batch(model, [prompt], max_new_tokens, drafter)[0]


@torch.no_grad()
def generate_batch(
    model, prompts: list[torch.Tensor], max_new_tokens: int, drafter=None
) -> list[DecodeStats]:
    """Greedy speculative decoding of a batch of prompts (each (1, T_i), ragged lengths); each
    row accepts its own path every step. `seconds` of every row is the batch's wall time."""
    drafter = drafter or NoDraft()
    dec = Decoder(model)
    device = prompts[0].device
    _sync(device)
    t0 = time.perf_counter()
    states, hidden, roots = [], [], []
    for prompt in prompts:  # prefill row by row (ragged prompt lengths)
        st = dec.new_states(1)
        h = dec.prefill(prompt, st)[0, -1]
        states.append(st)
        hidden.append(h)
        roots.append(int(dec.logits(h).argmax()))
    drafter.start(prompts)
    out: list[list[int]] = [[] for _ in prompts]
    gained: list[list[int]] = [[] for _ in prompts]
    active = list(range(len(prompts)))
    h_active = torch.stack(hidden)
    while active:
        trees = drafter.propose(active, [roots[r] for r in active], h_active)
        h, plan = dec.verify_rows(trees, [states[r] for r in active])
        predicted = dec.logits(h).argmax(-1).tolist()  # (B, n): one sync per step
        paths = [accept_greedy(t, p) for t, p in zip(trees, predicted, strict=True)]
        dec.commit_rows(plan, paths)
        new = [[t.token_list[i] for i in path] for t, path in zip(trees, paths, strict=True)]
        drafter.accepted(active, new)
        keep, last = [], []
        for b, r in enumerate(active):
            out[r].extend(new[b])
            gained[r].append(len(new[b]))
            roots[r] = predicted[b][paths[b][-1]]
            if len(out[r]) < max_new_tokens:
                keep.append(b)
                last.append(h[b, paths[b][-1]])
        active = [active[b] for b in keep]
        h_active = torch.stack(last) if last else None
    _sync(device)
    seconds = time.perf_counter() - t0
    return [
        DecodeStats(o[:max_new_tokens], len(g), seconds, g)
        for o, g in zip(out, gained, strict=True)
    ]


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
