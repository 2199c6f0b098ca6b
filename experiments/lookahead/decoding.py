"""Lookahead decoding (and plain Jacobi decoding) over a transformers causal LM and its KV cache.

One decoding step is ONE forward pass of [input token, lookahead branch, verification branch]
(see `layout.py`) with an explicit 4-D float mask and explicit position ids over a transformers
`DynamicCache`. The longest verified candidate prefix is accepted plus the model's own next
token (so a step commits 1..N tokens), the KV entries of the accepted candidate tokens are kept
and every other new entry is dropped.

Batches: every row has its own committed length, pool and window, and rows may accept different
numbers of tokens. The cache is one left-padded tensor per layer; after each step it is
re-gathered so that each row keeps exactly its committed prefix (positions are explicit, and
keys are stored after RoPE, so moving cache slots changes nothing). Finished rows leave the
batch. All rows share the window shape, so warm-up advances in lockstep.

Greedy: the output equals greedy decoding token for token (up to floating-point reassociation,
which float32 makes negligible and the tests check). Sampling (`sampling=Sampling(...)`): the
candidates are verified with the paper's sampling verification (Alg. 4, SpecInfer-style
multi-draft check with point-mass drafts), so each committed token is distributed exactly as
plain sampling under the same temperature / top-k / top-p warping (tested statistically).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch

from celine.experiments.lookahead.layout import StepLayout
from celine.experiments.lookahead.pool import NGramPool


@dataclass
class DecodeOutput:
    """What a decoder returns per prompt, in prompt order."""

    tokens: list[list[int]]  # new tokens (an EOS that ended the row is included)
    steps: list[int]  # forward passes that produced tokens for this prompt
    accepted: list[list[int]] = field(default_factory=list)  # tokens committed per step
    pool_hits: list[int] = field(default_factory=list)  # steps that accepted >= 1 pool token
    verify_steps: list[int] = field(default_factory=list)  # steps with a full window

    @property
    def total_tokens(self) -> int:
        return sum(len(t) for t in self.tokens)

    @property
    def total_steps(self) -> int:
        return sum(self.steps)


@dataclass(frozen=True)
class Sampling:
    """Plain sampling's warping, applied in transformers' order (temperature, top-k, top-p)."""

    temperature: float = 1.0
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1.0: off

    def warpers(self):
        from transformers import (
            LogitsProcessorList,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        out = LogitsProcessorList([TemperatureLogitsWarper(self.temperature)])
        if self.top_k > 0:
            out.append(TopKLogitsWarper(self.top_k))
        if self.top_p < 1.0:
            out.append(TopPLogitsWarper(self.top_p))
        return out

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., V) logits -> warped probabilities, float64 on the CPU (one transfer)."""
        flat = logits.reshape(-1, logits.shape[-1]).float()
        warped = self.warpers()(None, flat)
        return torch.softmax(warped, dim=-1).to("cpu", torch.float64).reshape(logits.shape)


@dataclass
class _Row:
    index: int
    prompt: list[int]
    generated: list[int]
    window: list[list[int]]  # row 0 (C-1 tokens) then rows 1..f (C tokens)
    pool: NGramPool
    rng: random.Random
    steps: int = 0
    accepted: list[int] = field(default_factory=list)
    pool_hits: int = 0
    verify_steps: int = 0

    @property
    def length(self) -> int:
        return len(self.prompt) + len(self.generated)

    @property
    def last(self) -> int:
        return self.generated[-1] if self.generated else self.prompt[-1]

    def random_tokens(self, n: int) -> list[int]:
        return [self.rng.choice(self.prompt) for _ in range(n)]


def no_cudnn_attention():
    """Limit torch's SDPA to the flash, memory-efficient and math kernels.

    With our explicit 4-D mask, torch 2.11 on an H200 picked cuDNN attention, which builds a plan
    per new (query, key) shape, and every decoding step has new shapes: a step of a 28M model took
    ~50 ms instead of ~7 ms (measured: greedy_loop 18 vs 136 tok/s, lookahead 33 vs 380 tok/s,
    bench/lookahead/results/h200). Flash takes unmasked calls (greedy), memory-efficient masked
    ones; on the CPU nothing changes."""
    from contextlib import nullcontext

    from torch.nn.attention import SDPBackend, sdpa_kernel

    if not PIN_SDPA:
        return nullcontext()
    return sdpa_kernel(
        [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    )


PIN_SDPA = True  # False: torch's own SDPA choice (the benchmark's probe compares both)


def cache_argument(model) -> str:
    """transformers 5.2x renamed `past_key_values` to `cache`; accept both releases."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def check_cache_support(cache) -> None:
    from transformers.cache_utils import DynamicLayer

    for layer in cache.layers:
        if type(layer) is not DynamicLayer:
            raise NotImplementedError(
                f"lookahead decoding needs full-attention DynamicCache layers, got {type(layer)}"
            )


@torch.no_grad()
def lookahead_generate(
    model,
    prompts: list[list[int]],
    *,
    level: int = 5,
    window: int = 7,
    guess_set_size: int = 7,
    max_new_tokens: int = 64,
    eos_token_id: int | None = None,
    pool_from_prompt: bool = False,
    jacobi: bool = False,
    batch_size: int = 1,
    seed: int = 0,
    sampling: Sampling | None = None,
    on_step=None,
) -> DecodeOutput:
    """Greedy lookahead decoding (N=`level`, W=`window`, G=`guess_set_size`) of each prompt.

    `jacobi=True` is the baseline without the pool: one row of W-1 guesses, verified against
    the model's own outputs in the same pass (plain Jacobi decoding). `on_step(rows, cache,
    valid)`, if given, sees the surviving rows, the compacted cache and its validity mask after
    every step (for tests). `sampling=None` decodes greedily; a `Sampling` verifies the
    candidates with the paper's sampling verification (`_sample_commit`), drawing every random
    number from the row's own seeded generator."""
    if sampling is not None and jacobi:
        raise ValueError("Jacobi decoding is greedy only (its fixed point is the greedy output)")
    if level < 2 or window < 1 or guess_set_size < 0:
        raise ValueError(
            f"need level >= 2, window >= 1, guess_set_size >= 0; got {level=}, {window=}, {guess_set_size=}"
        )
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    rows_out: dict[int, _Row] = {}
    for start in range(0, len(prompts), batch_size):
        chunk = range(start, min(start + batch_size, len(prompts)))
        rows = [
            _Row(
                index=i,
                prompt=list(prompts[i]),
                generated=[],
                window=[],
                pool=NGramPool(0 if jacobi else guess_set_size, level),
                rng=random.Random(seed * 1_000_003 + i),
            )
            for i in chunk
        ]
        with no_cudnn_attention():
            _decode(model, rows, level, window, guess_set_size, max_new_tokens, eos_token_id,
                    pool_from_prompt and not jacobi, jacobi, on_step, sampling)  # fmt: skip
        rows_out.update({r.index: r for r in rows})
    ordered = [rows_out[i] for i in range(len(prompts))]
    return DecodeOutput(
        tokens=[r.generated for r in ordered],
        steps=[r.steps for r in ordered],
        accepted=[r.accepted for r in ordered],
        pool_hits=[r.pool_hits for r in ordered],
        verify_steps=[r.verify_steps for r in ordered],
    )


def _decode(
    model, rows, N, W, G, max_new, eos, pool_from_prompt, jacobi, on_step, sampling=None
) -> None:
    from transformers import DynamicCache

    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    neg = torch.finfo(dtype).min
    # Window shape: Jacobi keeps one row of W-1 guesses; lookahead starts with row 0 of
    # W+N-3 random prompt tokens and shrinks by one column per warm-up step until C = W.
    columns, filled = (W, 0) if jacobi else (W + N - 2, 0)
    for row in rows:
        row.window = [row.random_tokens(columns - 1)]
        if pool_from_prompt:
            row.pool.add_sequence(row.prompt)
    cache = DynamicCache()
    cache_kw = cache_argument(model)
    valid = torch.zeros(len(rows), 0, dtype=torch.bool)  # CPU: which cache slots a row sees
    fresh = [r.prompt for r in rows]  # tokens not yet in the cache; the last is the input
    active = list(rows)
    checked = False
    while active:
        full = jacobi or filled == N - 2
        g_eff = 0 if (jacobi or not full) else G
        cands = [r.pool.candidates(r.last)[-g_eff:] if g_eff else [] for r in active]
        n_cand = max((len(c) for c in cands), default=0)
        layout = StepLayout(columns, filled, n_cand, N - 1)
        ids, pos, mask, fresh_valid = _step_inputs(
            active, fresh, cands, layout, valid, device, dtype, neg
        )
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=pos,
            use_cache=True,
            logits_to_keep=layout.tail_len + 1,
            **{cache_kw: cache},
        )
        if not checked:  # the first forward filled the cache in place
            check_cache_support(cache)
            checked = True
        # the step's only device->host transfer (and sync): (B, 1 + T) = input token, tail
        argmax = out.logits.argmax(-1).tolist()
        probs = None
        if sampling is not None:  # distributions at the input token and the candidate slots
            c0 = layout.lookahead_len + 1
            at = torch.cat([out.logits[:, :1], out.logits[:, c0 : c0 + n_cand * (N - 1)]], 1)
            probs = sampling.probs(at).numpy()

        keep_tail: list[list[int]] = []
        still: list[int] = []
        for b, row in enumerate(active):
            am = argmax[b]
            row.steps += 1
            if jacobi:
                commit, kept = _jacobi_commit(row, am, layout)
            elif probs is not None:
                commit, kept = _sample_commit(row, am, probs[b], layout, cands[b], full)
            else:
                commit, kept = _lookahead_commit(row, am, layout, cands[b], full)
            done = _append(row, commit, max_new, eos, N if pool_from_prompt else 0)
            keep_tail.append(kept)
            if not done:
                still.append(b)
        if not jacobi:
            columns, filled = (columns - 1, filled + 1) if filled < N - 2 else (columns, filled)
        cache, valid = _compact(cache, valid, fresh_valid, keep_tail, still)
        active = [active[b] for b in still]
        fresh = [[r.last] for r in active]
        if on_step is not None:
            on_step(active, cache, valid)


def _tail_tokens(row: _Row, cands, layout: StepLayout) -> list[int]:
    """[row 0, rows 1..f, candidates]; missing candidates are padded with copies of a real one
    (or the input token): the extra rows are never read."""
    tail = list(row.window[0])
    for r in range(1, layout.rows + 1):
        tail += row.window[r]
    for g in range(layout.candidates):
        c = cands[g] if g < len(cands) else (cands[0] if cands else None)
        tail += list(c) if c is not None else [row.last] * layout.cand_len
    return tail


def _step_inputs(active, fresh, cands, layout, valid, device, dtype, neg):
    """Token ids, position ids and the 4-D additive mask of one step for every active row.

    A step costs one small host->device copy (ids and positions together); the mask comes from
    a per-layout template already on the device. The common case (one row, one fresh token, a
    cache without holes) is a single pad of that template."""
    B, F = len(active), max(len(f) for f in fresh)
    tmpl = _template(layout, device, dtype, neg)
    if B == 1 and F == 1 and bool(valid.all()):
        L = valid.shape[1]
        ids = fresh[0] + _tail_tokens(active[0], cands[0], layout)
        pos = [L] + [L + o for o in tmpl.offsets_list]
        both = torch.tensor([ids, pos], dtype=torch.long).to(device)
        mask = torch.nn.functional.pad(tmpl.additive, (L, 0), value=0.0)[None, None]
        return both[0:1], both[1:2], mask, torch.ones(1, 1, dtype=torch.bool)
    T = layout.tail_len
    ids = torch.zeros(B, F + T, dtype=torch.long)
    fresh_valid = torch.zeros(B, F, dtype=torch.bool)
    past = valid.sum(-1)
    for b, row in enumerate(active):
        f = fresh[b]
        ids[b, F - len(f) : F] = torch.tensor(f)
        fresh_valid[b, F - len(f) :] = True
        ids[b, F:] = torch.tensor(_tail_tokens(row, cands[b], layout), dtype=torch.long)
    # positions: fresh tokens continue the row's prefix; the tail sits at p + offset
    fpos = past[:, None] + fresh_valid.long().cumsum(-1) - 1
    fpos = fpos.clamp(min=0)
    p = fpos[:, -1:]
    pos = torch.cat([fpos, p + tmpl.offsets[None, :]], dim=1)
    Q, L = F + T, valid.shape[1]
    both = torch.stack([ids, pos]).to(device)
    flags = torch.cat([valid, fresh_valid], dim=1).to(device)  # one copy for both masks
    ids, pos = both[0], both[1]
    valid_dev, fv = flags[:, :L], flags[:, L:]
    see = tmpl.see
    if F == 1:
        new = see.expand(B, Q, Q)
    else:
        new = torch.zeros(B, Q, Q, dtype=torch.bool, device=device)
        causal = torch.tril(torch.ones(F, F, dtype=torch.bool, device=device))
        new[:, :F, :F] = causal & fv[:, None, :]
        new[:, F:, :F] = fv[:, None, :]
        new[:, F:, F:] = see[1:, 1:]
        eye = torch.eye(Q, dtype=torch.bool, device=device)
        new |= eye  # a left-pad query sees itself, so no query row is empty
    allowed = torch.cat([valid_dev[:, None, :].expand(B, Q, L), new], dim=-1)
    mask = torch.zeros(B, 1, Q, L + Q, dtype=dtype, device=device)
    mask.masked_fill_(~allowed[:, None], neg)
    return ids, pos, mask, fresh_valid


@dataclass(frozen=True)
class _Template:
    offsets: torch.Tensor  # (T,) CPU: tail position offsets from the input token's position
    offsets_list: list[int]
    see: torch.Tensor  # (T+1, T+1) bool on the device: visibility over [input, tail]
    additive: torch.Tensor  # the same as an additive mask (0 / dtype min) on the device


_TEMPLATES: dict[tuple, _Template] = {}


def _template(layout: StepLayout, device, dtype, neg) -> _Template:
    """The layout's offsets and masks, built once per process (the Python loops of
    `offsets_and_mask` and the host->device copy are not paid again by later steps or prompts)."""
    key = (layout, str(device), dtype)
    if key not in _TEMPLATES:
        if len(_TEMPLATES) >= 4096:  # a long sweep in one process: start over, don't grow
            _TEMPLATES.clear()
        offsets, see = layout.offsets_and_mask()
        t = layout.tail_len
        full = np.zeros((t + 1, t + 1), dtype=bool)
        full[:, 0] = True  # everything sees the input token
        full[1:, 1:] = see
        see_dev = torch.as_tensor(full, device=device)
        additive = torch.zeros(t + 1, t + 1, dtype=dtype, device=device)
        additive.masked_fill_(~see_dev, neg)
        _TEMPLATES[key] = _Template(torch.as_tensor(offsets), offsets.tolist(), see_dev, additive)
    return _TEMPLATES[key]


def _lookahead_commit(row: _Row, am: list[int], layout: StepLayout, cands, full: bool):
    """Tokens to commit and the tail slots whose KV entries stay, plus pool and window updates."""
    commit, kept = [am[0]], []
    if full:
        row.verify_steps += 1
        best_k, best_g = 0, -1
        for g, cand in enumerate(cands):
            s = layout.cand_slice(g).start
            pred = [am[0]] + am[1 + s : 1 + s + layout.cand_len]
            k = 0
            while k < len(cand) and cand[k] == pred[k]:
                k += 1
            if k > best_k:
                best_k, best_g, best_pred = k, g, pred
        if best_k > 0:
            row.pool_hits += 1
            s = layout.cand_slice(best_g).start
            commit = list(cands[best_g][:best_k]) + [best_pred[best_k]]
            kept = list(range(s, s + best_k))
    _advance_window(row, am, layout, full)
    return commit, kept


def _advance_window(row: _Row, am: list[int], layout: StepLayout, full: bool) -> None:
    """The lookahead branch (always greedy, as in the reference): harvest n-grams, then slide
    the window by one column (or grow it by a row during warm-up)."""
    C, f = layout.columns, layout.rows
    r0 = layout.row_slice(0)
    block0_out = [am[0]] + am[1 + r0.start : 1 + r0.stop]
    new = block0_out if f == 0 else am[1 + layout.row_slice(f).start : 1 + layout.row_slice(f).stop]
    if full:
        for i in range(C):
            key = row.last if i == 0 else row.window[0][i - 1]
            row.pool.add(key, tuple(row.window[r][i] for r in range(1, f + 1)) + (new[i],))
        win = [*row.window[1:], list(new)]
        win[0] = win[0][1:]
        row.window = win
    else:
        row.window = [w[1:] for w in row.window] + [list(new[1:])]


def _draw(dist: np.ndarray, u: float) -> int:
    """The token at quantile u of `dist` (inverse CDF)."""
    cdf = np.cumsum(dist)
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), len(dist) - 1))


def _reject(dist: np.ndarray, token: int) -> np.ndarray:
    """The residual after a point-mass draft `token` was rejected: norm(max(0, p - q)) with
    q = one-hot, i.e. p with the token removed and renormalised (paper Alg. 4, line "p[d] = 0")."""
    dist = dist.copy()
    dist[token] = 0.0
    return dist / dist.sum()


def _sample_commit(row: _Row, am, probs: np.ndarray, layout: StepLayout, cands, full: bool):
    """Sampling verification (paper Alg. 4; SpecInfer's multi-draft check with the candidates
    as point-mass drafts, since the lookahead branch is greedy and keeps no draft distribution).

    Position j starts from the target distribution after the accepted prefix (`probs[0]` at the
    input token; candidate g's slot j-1 after j accepted tokens, the same for every candidate
    sharing that prefix). The surviving candidates are tried in order: draft d is accepted with
    probability p(d); a rejection zeroes p(d) and renormalises. When all are rejected, or all
    N-1 tokens were accepted, one token is drawn from the current distribution and the step
    ends. Each committed token is therefore distributed exactly as plain sampling's."""
    L = layout.cand_len
    alive = list(range(len(cands))) if full else []
    if full:
        row.verify_steps += 1
    dist = probs[0]
    commit: list[int] = []
    while True:
        accepted = None
        j = len(commit)
        if j < L:
            for g in alive:
                d = cands[g][j]
                if dist[d] <= 0.0:  # a duplicate of a rejected draft, or a warped-out token
                    continue
                if row.rng.random() < dist[d]:
                    accepted = d
                    break
                dist = _reject(dist, d)
        if accepted is None:
            commit.append(_draw(dist, row.rng.random()))
            break
        commit.append(accepted)
        alive = [g for g in alive if cands[g][j] == accepted]
        dist = probs[1 + alive[0] * L + j]
    k = len(commit) - 1
    kept = []
    if k:
        row.pool_hits += 1
        s = layout.cand_slice(alive[0]).start
        kept = list(range(s, s + k))
    _advance_window(row, am, layout, full)
    return commit, kept


def _jacobi_commit(row: _Row, am: list[int], layout: StepLayout):
    """Jacobi: accept the guesses that equal the model's outputs, plus one output."""
    guess = row.window[0]
    out = [am[0]] + am[1 : 1 + len(guess)]
    k = 0
    while k < len(guess) and guess[k] == out[k]:
        k += 1
    nxt = out[k + 1 :]
    row.window = [nxt + row.random_tokens(len(guess) - len(nxt))]
    return out[: k + 1], list(range(k))


def _append(row: _Row, commit: list[int], max_new: int, eos, ngram: int) -> bool:
    """Commit tokens up to EOS or the budget; True when the row is finished."""
    room = max_new - len(row.generated)
    taken = commit[:room]
    if eos is not None and eos in taken:
        taken = taken[: taken.index(eos) + 1]
    row.generated.extend(taken)
    row.accepted.append(len(taken))
    if ngram:  # prompt-as-reference pool: every newly completed n-gram of the text
        # only the last len(taken) + ngram - 1 tokens matter (no copy of the whole text)
        seq = (row.prompt[-ngram:] + row.generated)[-(len(taken) + ngram - 1) :]
        for t in range(ngram - 1, len(seq)):
            row.pool.add(seq[t - ngram + 1], tuple(seq[t - ngram + 2 : t + 1]))
    return len(row.generated) >= max_new or (eos is not None and eos in taken)


def _compact(cache, valid, fresh_valid, keep_tail, still):
    """Keep, per surviving row, its old prefix, its fresh tokens and its accepted tail slots.

    `valid` (CPU, (B, L)) marks the cache slots a row may see, so slots need not be contiguous:
    only the region this step appended is gathered, each row's kept entries packed to its
    front. When the holes this leaves (rows that accepted less than others) outgrow the real
    entries, the whole cache is packed again."""
    B, L = valid.shape
    F = fresh_valid.shape[1]
    if B == 1 and still == [0] and bool(fresh_valid.all()):
        # batch 1: the prefix stays (a view), and accepted tail slots are one contiguous run
        tail = keep_tail[0]
        for layer in cache.layers:
            for name in ("keys", "values"):
                t = getattr(layer, name)
                head = t[:, :, : L + F]
                if tail:
                    head = torch.cat([head, t[:, :, L + F + tail[0] : L + F + tail[-1] + 1]], dim=2)
                setattr(layer, name, head)
        # (the prefix may hold holes left from when the batch had more rows: keep its mask)
        return cache, torch.cat([valid, torch.ones(1, F + len(tail), dtype=torch.bool)], dim=1)
    keep = [
        torch.cat(
            [
                torch.nonzero(fresh_valid[b]).flatten(),
                F + torch.tensor(keep_tail[b], dtype=torch.long),
            ]
        )
        for b in still
    ]
    if not keep:
        return cache, valid[:0]
    width = max(len(k) for k in keep)
    index = torch.zeros(len(keep), width, dtype=torch.long)
    new_valid = torch.zeros(len(keep), width, dtype=torch.bool)
    for i, k in enumerate(keep):
        index[i, : len(k)] = k
        new_valid[i, : len(k)] = True
    valid = torch.cat([valid[still], new_valid], dim=1)
    counts = valid.sum(-1)
    repack = valid.shape[1] > 2 * int(counts.max()) + 32
    if repack:  # gather every row's valid slots, left-aligned to the longest row
        length = int(counts.max())
        full = torch.zeros(len(keep), length, dtype=torch.long)
        for i in range(len(keep)):
            slots = torch.nonzero(valid[i]).flatten()
            full[i, length - len(slots) :] = slots
            full[i, : length - len(slots)] = 0
        packed_valid = torch.arange(length)[None, :] >= (length - counts)[:, None]
    device = cache.layers[0].keys.device
    rows = None if still == list(range(B)) else torch.tensor(still, device=device)
    index = index.to(device)
    full_dev = full.to(device) if repack else None
    for layer in cache.layers:
        for name in ("keys", "values"):
            t = getattr(layer, name)
            if rows is not None:
                t = t.index_select(0, rows)
            h, d = t.shape[1], t.shape[3]
            new = t[:, :, L:].gather(2, index[:, None, :, None].expand(-1, h, -1, d))
            t = torch.cat([t[:, :, :L], new], dim=2)
            if repack:
                t = t.gather(2, full_dev[:, None, :, None].expand(-1, h, -1, d))
            setattr(layer, name, t)
    return cache, (packed_valid if repack else valid)
